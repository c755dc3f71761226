/* SPDX-License-Identifier: MIT */
#include <ctype.h>

#include "hashmap.h"
#include "report.h"

#define LAST_UA_MAX 160

typedef struct LabelEntry {
        char *ja4;
        HashEntry map;
        ReportAgentCount agents[REPORT_LABEL_AGENTS];
        size_t n_agents;
        /* the last User-Agent added and its summary: rows of one family mostly repeat one UA */
        char last_ua[LAST_UA_MAX];
        size_t last_ua_len;
        char last_summary[REPORT_LABEL_MAX];
} LabelEntry;

struct ReportLabels {
        LabelEntry *entries;
        size_t n, allocated;
        HashMap index; /* of entries, while loading (then sorted, for bsearch()) */
        bool sealed;
        size_t last; /* the entry found last: rows and sequences of one family come in runs */
};

/* The index anew, after the entries moved. */
static int labels_reindex(ReportLabels *l) {
        hashmap_clear(&l->index);
        for (size_t i = 0; i < l->n; i++)
                if (hashmap_put(&l->index, &l->entries[i].map, l->entries[i].map.hash) < 0)
                        return -ENOMEM;
        return 0;
}

int report_labels_new(ReportLabels **ret) {
        *ret = calloc(1, sizeof(ReportLabels));
        return *ret ? 0 : -ENOMEM;
}

ReportLabels *report_labels_free(ReportLabels *l) {
        if (!l)
                return NULL;
        FOREACH_ARRAY(e, l->entries, l->n)
                free(e->ja4);
        free(l->entries);
        hashmap_done(&l->index);
        free(l);
        return NULL;
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const LabelEntry *) a)->ja4, ((const LabelEntry *) b)->ja4);
}

static int agent_compare(const void *a, const void *b) {
        const ReportAgentCount *x = a, *y = b;

        if (x->count != y->count)
                return x->count < y->count ? 1 : -1;
        return strcmp(x->summary, y->summary);
}

static LabelEntry *labels_find(ReportLabels *l, const char *ja4) {
        LabelEntry key = {.ja4 = (char *) ja4}, *e;

        if (l->last < l->n && streq(l->entries[l->last].ja4, ja4))
                return &l->entries[l->last];
        if (!l->sealed) {
                uint64_t h = hash_string(ja4);

                if (!l->index.buckets)
                        return NULL;
                HASHMAP_FOREACH_CHAIN(m, &l->index, h) {
                        e = container_of(m, LabelEntry, map);
                        if (m->hash == h && streq(e->ja4, ja4)) {
                                l->last = (size_t) (e - l->entries);
                                return e;
                        }
                }
                return NULL;
        }
        if (l->n == 0)
                return NULL; /* and bsearch() must not see the NULL array */
        e = bsearch(&key, l->entries, l->n, sizeof *l->entries, entry_compare);
        if (e)
                l->last = (size_t) (e - l->entries);
        return e;
}

static int labels_append(ReportLabels *l, const char *ja4, LabelEntry **ret) {
        LabelEntry *e;

        if (!l->index.buckets && hashmap_init(&l->index, 64) < 0)
                return -ENOMEM;
        if (l->n >= l->allocated) {
                size_t n = MAX(l->allocated * 2, (size_t) 16);
                LabelEntry *p = realloc(l->entries, n * sizeof *p);

                if (!p)
                        return -ENOMEM;
                l->entries = p;
                l->allocated = n;
                if (labels_reindex(l) < 0) /* the entries moved */
                        return -ENOMEM;
        }
        e = &l->entries[l->n];
        *e = (LabelEntry){.ja4 = strdup(ja4)};
        if (!e->ja4)
                return -ENOMEM;
        if (hashmap_put(&l->index, &e->map, hash_string(ja4)) < 0) {
                free(e->ja4);
                return -ENOMEM;
        }
        l->n++;
        *ret = e;
        return 0;
}

int report_labels_add(ReportLabels *l, const char *ja4, const RawString *ua, uint64_t count) {
        char summary[REPORT_LABEL_MAX];
        LabelEntry *e;
        int r;

        if (!ja4 || !ua->data || l->sealed)
                return 0;
        e = labels_find(l, ja4);
        if (!e) {
                if (l->n >= REPORT_FAMILIES_MAX)
                        return 0;
                r = labels_append(l, ja4, &e);
                if (r < 0)
                        return r;
        }
        if (e->last_ua_len > 0 && ua->len == e->last_ua_len && memcmp(ua->data, e->last_ua, ua->len) == 0)
                memcpy(summary, e->last_summary, sizeof summary);
        else {
                report_user_agent_summary(ua->data, ua->len, summary);
                if (ua->len > 0 && ua->len <= LAST_UA_MAX) {
                        memcpy(e->last_ua, ua->data, ua->len);
                        e->last_ua_len = ua->len;
                        memcpy(e->last_summary, summary, sizeof summary);
                } else
                        e->last_ua_len = 0;
        }
        for (size_t i = 0; i < e->n_agents; i++)
                if (streq(e->agents[i].summary, summary)) {
                        e->agents[i].count += count;
                        return 0;
                }
        if (e->n_agents < REPORT_LABEL_AGENTS) {
                memcpy(e->agents[e->n_agents].summary, summary, sizeof summary);
                e->agents[e->n_agents++].count = count;
                return 0;
        }
        /* full: "space saving" (Metwally et al.): the rarest makes room and the newcomer inherits its count,
         * so memory stays bounded whatever a client sends and the commonest summaries survive */
        size_t rarest = 0;
        for (size_t i = 1; i < e->n_agents; i++)
                if (e->agents[i].count < e->agents[rarest].count)
                        rarest = i;
        memcpy(e->agents[rarest].summary, summary, sizeof summary);
        e->agents[rarest].count += count;
        return 0;
}

void report_labels_seal(ReportLabels *l) {
        size_t j = 0;

        if (l->n > 0) /* qsort() must not see the NULL array of an empty set */
                qsort(l->entries, l->n, sizeof *l->entries, entry_compare);
        /* merge families that arrived in more than one run */
        for (size_t i = 0; i < l->n; i++) {
                if (j > 0 && streq(l->entries[j - 1].ja4, l->entries[i].ja4)) {
                        LabelEntry *d = &l->entries[j - 1], *s = &l->entries[i];

                        for (size_t k = 0; k < s->n_agents; k++) {
                                size_t m;

                                for (m = 0; m < d->n_agents; m++)
                                        if (streq(d->agents[m].summary, s->agents[k].summary))
                                                break;
                                if (m < d->n_agents)
                                        d->agents[m].count += s->agents[k].count;
                                else if (d->n_agents < REPORT_LABEL_AGENTS)
                                        d->agents[d->n_agents++] = s->agents[k];
                        }
                        free(s->ja4);
                        continue;
                }
                l->entries[j++] = l->entries[i];
        }
        l->n = j;
        hashmap_done(&l->index);
        FOREACH_ARRAY(e, l->entries, l->n)
                qsort(e->agents, e->n_agents, sizeof *e->agents, agent_compare);
        l->sealed = true;
}

int report_labels_unseal(ReportLabels *l) {
        if (!l->sealed)
                return 0;
        if (hashmap_init(&l->index, MAX(l->n, (size_t) 64)) < 0)
                return -ENOMEM;
        l->sealed = false;
        return labels_reindex(l);
}

const char *
report_labels_get(ReportLabels *l, const char *ja4, const ReportAgentCount **ret_agents, size_t *ret_n) {
        LabelEntry *e = l && ja4 && l->sealed ? labels_find(l, ja4) : NULL;

        if (ret_agents)
                *ret_agents = e ? e->agents : NULL;
        if (ret_n)
                *ret_n = e ? e->n_agents : 0;
        return e && e->n_agents > 0 ? e->agents[0].summary : NULL;
}
