/* SPDX-License-Identifier: MIT */
#include "hashmap.h"
#include "report.h"

void report_summary_init(ReportSummary *s) {
        *s = (ReportSummary){.first_us = INT64_MAX, .last_us = INT64_MIN};
}

void report_summary_add_attempt(ReportSummary *s, const Attempt *a) {
        s->attempts++;
        if (a->outcome >= 0 && a->outcome < _OUTCOME_MAX)
                s->outcomes[a->outcome]++;
        if (outcome_is_failure(a->outcome)) {
                s->failures++;
                if (a->alert_received >= 0 && a->alert_received < 256)
                        s->alerts_received[a->alert_received]++;
                if (a->alert_sent >= 0 && a->alert_sent < 256)
                        s->alerts_sent[a->alert_sent]++;
        }
        s->forwarding_errors += a->backend_error != NULL;
        s->first_us = MIN(s->first_us, a->started_us);
        s->last_us = MAX(s->last_us, a->started_us);
}

void report_summary_add_sequence(ReportSummary *s, const Sequence *q) {
        s->sequences++;
        if (q->outcome >= 0 && q->outcome < _SEQUENCE_OUTCOME_MAX)
                s->sequence_outcomes[q->outcome]++;
        if (q->pattern >= 0 && q->pattern < _PATTERN_MAX)
                s->patterns[q->pattern]++;
        if (q->outcome == SEQUENCE_OK)
                s->retries_ok[MIN(q->n_attempts, (unsigned) REPORT_RETRY_BUCKETS)]++;
}

/* ---- per client family ---- */

typedef struct ClientEntry {
        HashEntry map; /* first: a HashEntry * is a ClientEntry * */
        ReportClient c;
} ClientEntry;

struct ReportClients {
        HashMap families;   /* of ClientEntry, by ja4 */
        ClientEntry *other; /* families beyond REPORT_FAMILIES_MAX */
};

int report_clients_new(ReportClients **ret) {
        ReportClients *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        if (hashmap_init(&c->families, 1024) < 0) {
                free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

ReportClients *report_clients_free(ReportClients *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->families.n_buckets; i++)
                for (HashEntry *m = c->families.buckets[i], *next; m; m = next) {
                        ClientEntry *e = (ClientEntry *) m;

                        next = m->next;
                        free(e->c.ja4);
                        free(e->c.failing_hosts);
                        free(e);
                }
        if (c->other) {
                free(c->other->c.ja4);
                free(c->other->c.failing_hosts);
        }
        free(c->other);
        hashmap_done(&c->families);
        free(c);
        return NULL;
}

static int clients_get(ReportClients *c, const char *ja4, ReportClient **ret) {
        uint64_t h;
        ClientEntry *e;

        if (ja4 && !ja4[0])
                ja4 = NULL;
        h = ja4 ? hash_string(ja4) : 0;
        HASHMAP_FOREACH_CHAIN(m, &c->families, h)
        if (m->hash == h && streq_ptr(((ClientEntry *) m)->c.ja4, ja4)) {
                *ret = &((ClientEntry *) m)->c;
                return 0;
        }
        if (c->families.n >= REPORT_FAMILIES_MAX) {
                if (!c->other) {
                        c->other = calloc(1, sizeof *c->other);
                        if (!c->other)
                                return -ENOMEM;
                        c->other->c.first_failure_us = INT64_MAX;
                        c->other->c.ja4 = strdup("(other families)");
                        if (!c->other->c.ja4)
                                return -ENOMEM;
                }
                *ret = &c->other->c;
                return 0;
        }
        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->c.first_failure_us = INT64_MAX;
        if (ja4) {
                e->c.ja4 = strdup(ja4);
                if (!e->c.ja4) {
                        free(e);
                        return -ENOMEM;
                }
        }
        if (hashmap_put(&c->families, &e->map, h) < 0) {
                free(e->c.ja4);
                free(e);
                return -ENOMEM;
        }
        *ret = &e->c;
        return 0;
}

/* A failure kind: the outcome and the alert that explains it. */
static int failure_kind(Outcome o, int alert_received, int alert_sent) {
        if (alert_received >= 0 && alert_received < 256)
                return (int) o * 1024 + alert_received;
        if (alert_sent >= 0 && alert_sent < 256)
                return (int) o * 1024 + 512 + alert_sent;
        return (int) o * 1024 + 1023;
}

int report_clients_add_attempt(ReportClients *c, const Attempt *a) {
        ReportClient *cl;
        int r, kind;
        size_t i, rarest = 0;

        r = clients_get(c, a->ja4_stable, &cl);
        if (r < 0)
                return r;
        cl->attempts++;
        if (!outcome_is_failure(a->outcome)) {
                cl->successes++;
                return 0;
        }
        kind = failure_kind(a->outcome, a->alert_received, a->alert_sent);
        for (i = 0; i < ELEMENTSOF(cl->failure_counts) && cl->failure_counts[i] > 0; i++) {
                if (cl->failure_kinds[i] == kind) {
                        cl->failure_counts[i]++;
                        return 0;
                }
                if (cl->failure_counts[i] < cl->failure_counts[rarest])
                        rarest = i;
        }
        if (i < ELEMENTSOF(cl->failure_counts)) {
                cl->failure_kinds[i] = kind;
                cl->failure_counts[i] = 1;
        } else if (cl->failure_counts[rarest] <= 1) {
                /* all slots used: a newcomer replaces a kind seen once (bounded, approximate) */
                cl->failure_kinds[rarest] = kind;
                cl->failure_counts[rarest] = 1;
        }
        return 0;
}

/* Adds host to the set (n a power of two, not full); returns whether it was new. */
static bool host_set_put(const char **set, size_t n, const char *host) {
        size_t i = (size_t) hash_finish((uint64_t) (uintptr_t) host) & (n - 1);

        for (; set[i]; i = (i + 1) & (n - 1))
                if (set[i] == host)
                        return false;
        set[i] = host;
        return true;
}

int report_clients_add_sequence(ReportClients *c, const Sequence *q) {
        ReportClient *cl;
        int r = clients_get(c, q->ja4, &cl);

        if (r < 0)
                return r;
        cl->sequences++;
        if (q->outcome == SEQUENCE_OK) {
                cl->ok_sequences++;
                cl->retries += q->n_failures;
        }
        if (q->n_failures == 0)
                return 0;
        /* the fleet: where it fails (a family fails on few hosts; the latest is the likeliest) */
        for (unsigned i = 0; i < q->n_details; i++)
                if (outcome_is_failure(q->attempts[i].outcome)) {
                        if (q->attempts[i].started_us < cl->first_failure_us) {
                                cl->first_failure_us = q->attempts[i].started_us;
                                cl->first_failure_host = q->host;
                        }
                        break;
                }
        if (!q->host)
                return 0;
        /* a set of pointers (the hosts are interned), open addressing, at most half full */
        if (2 * (cl->n_failing_hosts + 1) > cl->n_failing_hosts_allocated) {
                size_t n = MAX(cl->n_failing_hosts_allocated * 2, 8u);
                const char **p = calloc(n, sizeof *p);

                if (!p)
                        return -ENOMEM;
                for (size_t i = 0; i < cl->n_failing_hosts_allocated; i++)
                        if (cl->failing_hosts[i])
                                host_set_put(p, n, cl->failing_hosts[i]);
                free(cl->failing_hosts);
                cl->failing_hosts = p;
                cl->n_failing_hosts_allocated = n;
        }
        cl->n_failing_hosts += host_set_put(cl->failing_hosts, cl->n_failing_hosts_allocated, q->host);
        return 0;
}

static int client_compare(const void *a, const void *b) {
        const ReportClient *x = *(ReportClient *const *) a, *y = *(ReportClient *const *) b;

        if (x->attempts != y->attempts)
                return x->attempts < y->attempts ? 1 : -1;
        if (!x->ja4 || !y->ja4)
                return !x->ja4 - !y->ja4;
        return strcmp(x->ja4, y->ja4);
}

size_t report_clients_sorted(ReportClients *c, ReportClient ***ret) {
        ReportClient **v = calloc(c->families.n + 1, sizeof *v);
        size_t n = 0;

        if (!v) {
                *ret = NULL;
                return 0;
        }
        HASHMAP_FOREACH(m, &c->families)
        v[n++] = &((ClientEntry *) m)->c;
        qsort(v, n, sizeof *v, client_compare);
        if (c->other)
                v[n++] = &c->other->c;
        *ret = v;
        return n;
}

static int client_compare_hosts(const void *a, const void *b) {
        const ReportClient *x = *(ReportClient *const *) a, *y = *(ReportClient *const *) b;

        if (x->n_failing_hosts != y->n_failing_hosts)
                return x->n_failing_hosts < y->n_failing_hosts ? 1 : -1;
        return client_compare(a, b);
}

size_t report_clients_sorted_by_hosts(ReportClients *c, size_t max, ReportClient ***ret) {
        ReportClient **v = NULL;
        size_t n = report_clients_sorted(c, &v), k = 0;

        for (size_t i = 0; i < n; i++)
                if (v[i]->first_failure_us != INT64_MAX)
                        v[k++] = v[i];
        qsort(v, k, sizeof *v, client_compare_hosts);
        *ret = v;
        return MIN(k, max);
}

const char *report_client_commonest_failure(const ReportClient *cl, char buf[static 64]) {
        size_t best = SIZE_MAX;
        int kind, alert;
        Outcome o;

        for (size_t i = 0; i < ELEMENTSOF(cl->failure_counts) && cl->failure_counts[i] > 0; i++)
                if (best == SIZE_MAX || cl->failure_counts[i] > cl->failure_counts[best])
                        best = i;
        if (best == SIZE_MAX)
                return NULL;
        kind = cl->failure_kinds[best];
        o = (Outcome) (kind / 1024);
        alert = kind % 1024;
        if (alert < 256)
                (void) snprintf(
                        buf, 64, "%s %d %s", outcome_to_string(o), alert, strna(tls_alert_to_string(alert)));
        else if (alert < 1023)
                (void) snprintf(
                        buf,
                        64,
                        "%s sent %d %s",
                        outcome_to_string(o),
                        alert - 512,
                        strna(tls_alert_to_string(alert - 512)));
        else
                (void) snprintf(buf, 64, "%s", outcome_to_string(o));
        return buf;
}
