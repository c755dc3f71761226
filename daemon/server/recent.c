/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"
#include "hashmap.h"
#include "recent.h"

/* Attempts of one fingerprint (hash of the stable JA4, "" without a ClientHello) that a client's ring
 * dropped, the newest started then. */
typedef struct RecentLostKey {
        uint64_t ja4_hash;
        int64_t lost_us; /* 0 while unused */
} RecentLostKey;

typedef struct RecentClient {
        char key[SEQUENCE_CLIENT_MAX]; /* "" while unused */
        int64_t active_us;             /* when it last got an attempt: the least recent one makes room */
        int64_t lost_us; /* attempts of any fingerprint may be lost up to then (see recent_record_get()) */
        RecentLostKey lost[RECENT_LOST_KEYS]; /* those its ring dropped, per fingerprint */
        bool hello;                           /* one of its attempts sent a ClientHello */
        RecentEntry *ring[RECENT_PER_CLIENT];
        unsigned head, n; /* ring[head] is the oldest of n, in the order in which they were added */
} RecentClient;

typedef struct RecentBucket {
        pthread_mutex_t lock;
        RecentClient clients[RECENT_WAYS];
        int64_t lost_us; /* the newest attempt of a client it pushed out or refused: any client of this
                          * bucket without a place may have lost attempts up to then */
} RecentBucket;

typedef struct RecentFamily {
        char ja4[JA4_STABLE_SIZE]; /* "" while unused */
        int64_t seen_us;
        RecentAgent agents[RECENT_AGENTS_MAX];
        size_t n_agents;
} RecentFamily;

#define FAMILY_WAYS 2
#define FAMILY_LOCKS 64

struct RecentRecord {
        RecentBucket buckets[RECENT_BUCKETS];
        pthread_mutex_t family_locks[FAMILY_LOCKS]; /* family set i is under lock i % FAMILY_LOCKS */
        RecentFamily families[RECENT_FAMILIES / FAMILY_WAYS][FAMILY_WAYS];
};

static void entry_unref(RecentEntry *e) {
        if (e && atomic_fetch_sub(&e->n_ref, 1) == 1) {
                attempt_free(e->attempt);
                free(e);
        }
}

void recent_entries_unref(RecentEntry **entries, size_t n) {
        for (size_t i = 0; i < n; i++)
                entry_unref(entries[i]);
}

int recent_record_new(RecentRecord **ret) {
        RecentRecord *r = calloc(1, sizeof *r);

        if (!r)
                return -ENOMEM;
        for (size_t i = 0; i < RECENT_BUCKETS; i++)
                pthread_mutex_init(&r->buckets[i].lock, NULL);
        for (size_t i = 0; i < FAMILY_LOCKS; i++)
                pthread_mutex_init(&r->family_locks[i], NULL);
        *ret = r;
        return 0;
}

RecentRecord *recent_record_free(RecentRecord *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < RECENT_BUCKETS; i++) {
                for (size_t w = 0; w < RECENT_WAYS; w++) {
                        RecentClient *c = &r->buckets[i].clients[w];

                        for (unsigned k = 0; k < c->n; k++)
                                entry_unref(c->ring[(c->head + k) % RECENT_PER_CLIENT]);
                }
                pthread_mutex_destroy(&r->buckets[i].lock);
        }
        for (size_t i = 0; i < FAMILY_LOCKS; i++)
                pthread_mutex_destroy(&r->family_locks[i]);
        free(r);
        return NULL;
}

static RecentBucket *bucket_of(RecentRecord *r, const char *key) {
        return &r->buckets[hash_string(key) % RECENT_BUCKETS];
}

void recent_agents_add(RecentAgent agents[static RECENT_AGENTS_MAX], size_t *n, const char *summary) {
        size_t rarest = 0;

        for (size_t i = 0; i < *n; i++)
                if (streq(agents[i].summary, summary)) {
                        agents[i].count++;
                        return;
                }
        if (*n < RECENT_AGENTS_MAX) {
                (void) snprintf(agents[*n].summary, sizeof agents[*n].summary, "%s", summary);
                agents[(*n)++].count = 1;
                return;
        }
        for (size_t i = 1; i < *n; i++)
                if (agents[i].count < agents[rarest].count)
                        rarest = i;
        (void) snprintf(agents[rarest].summary, sizeof agents[rarest].summary, "%s", summary);
        agents[rarest].count++;
}

/* The family set of ja4, its lock taken. */
static RecentFamily *families_lock(RecentRecord *r, const char *ja4, pthread_mutex_t **ret_lock) {
        size_t set = hash_string(ja4) % (RECENT_FAMILIES / FAMILY_WAYS);

        *ret_lock = &r->family_locks[set % FAMILY_LOCKS];
        pthread_mutex_lock(*ret_lock);
        return r->families[set];
}

static void family_note_agent(RecentRecord *r, const Attempt *a) {
        char summary[USER_AGENT_SUMMARY_MAX];
        pthread_mutex_t *lock;
        RecentFamily *set, *f = NULL;

        if (a->outcome != OUTCOME_OK || !a->ja4_stable || !a->user_agent.data ||
            strlen(a->ja4_stable) >= JA4_STABLE_SIZE)
                return;
        user_agent_summary(a->user_agent.data, a->user_agent.len, summary);
        set = families_lock(r, a->ja4_stable, &lock);
        for (size_t w = 0; w < FAMILY_WAYS && !f; w++)
                if (streq(set[w].ja4, a->ja4_stable))
                        f = &set[w];
        if (!f) { /* a new fingerprint takes the place of the least recently seen one */
                f = &set[0];
                for (size_t w = 1; w < FAMILY_WAYS; w++)
                        if (set[w].seen_us < f->seen_us)
                                f = &set[w];
                *f = (RecentFamily){};
                strcpy(f->ja4, a->ja4_stable);
        }
        f->seen_us = MAX(f->seen_us, a->started_us);
        recent_agents_add(f->agents, &f->n_agents, summary);
        pthread_mutex_unlock(lock);
}

size_t recent_record_agents(RecentRecord *r, const char *ja4, RecentAgent ret[static RECENT_AGENTS_MAX]) {
        pthread_mutex_t *lock;
        RecentFamily *set;
        size_t n = 0;

        if (!ja4)
                return 0;
        set = families_lock(r, ja4, &lock);
        for (size_t w = 0; w < FAMILY_WAYS; w++)
                if (streq(set[w].ja4, ja4)) {
                        n = set[w].n_agents;
                        memcpy(ret, set[w].agents, n * sizeof *ret);
                }
        pthread_mutex_unlock(lock);
        return n;
}

static RecentClient *bucket_find(RecentBucket *b, const char *key) {
        for (size_t w = 0; w < RECENT_WAYS; w++)
                if (streq(b->clients[w].key, key))
                        return &b->clients[w];
        return NULL;
}

static uint64_t ja4_hash(const char *ja4_stable) {
        return hash_string(strempty(ja4_stable));
}

/* Notes that the client's ring dropped a: a failure (when a fingerprint's slot has to make room, its loss
 * counts for every fingerprint), or a success, which makes the failures of its fingerprint dropped before it
 * irrelevant to a later sequence. */
static void client_note_dropped(RecentClient *c, const Attempt *a) {
        uint64_t h = ja4_hash(a->ja4_stable);
        RecentLostKey *k = &c->lost[0];

        if (a->outcome == OUTCOME_OK) {
                /* a success ends its sequence: what was lost before it belongs to a finished one */
                for (size_t i = 0; i < RECENT_LOST_KEYS; i++)
                        if (c->lost[i].lost_us != 0 && c->lost[i].ja4_hash == h)
                                c->lost[i].lost_us = 0;
                return;
        }

        for (size_t i = 0; i < RECENT_LOST_KEYS; i++) {
                if (c->lost[i].lost_us != 0 && c->lost[i].ja4_hash == h) {
                        k = &c->lost[i];
                        break;
                }
                if (c->lost[i].lost_us < k->lost_us)
                        k = &c->lost[i];
        }
        if (k->lost_us != 0 && k->ja4_hash != h) {
                c->lost_us = MAX(c->lost_us, k->lost_us);
                k->lost_us = 0;
        }
        k->ja4_hash = h;
        k->lost_us = MAX(k->lost_us, a->started_us);
}

/* The place for a new client whose attempt a is: a free one, else the least recently active client. An
 * attempt without a ClientHello (a port scan, an idle connection) may take only the place of a client
 * that never sent one either, or of one inactive for longer than a retry sequence lasts: a flood of them
 * does not push out the history of the clients that can visit the page. NULL: no place. */
static RecentClient *bucket_place(RecentBucket *b, const Attempt *a) {
        bool hello = a->ja4_stable;
        RecentClient *c = NULL;

        for (size_t w = 0; w < RECENT_WAYS; w++) {
                RecentClient *x = &b->clients[w];

                if (x->key[0] == '\0')
                        return x;
                if (!hello && x->hello && x->active_us >= a->started_us - SEQUENCE_RETRY_WINDOW_DEFAULT_US)
                        continue;
                if (!c || x->active_us < c->active_us)
                        c = x;
        }
        return c;
}

/* The bytes of the attempt's text columns, whichever columns there are. */
static size_t attempt_detail_bytes(const Attempt *a) {
        size_t n = 0;

        FOREACH_ATTEMPT_COLUMN(c)
                if (attempt_column_is_text(c)) {
                        size_t len = 0;

                        if (attempt_column_get_text(a, c, &len))
                                n += len;
                }
        return n;
}

/* Drops what only the page's list of attempts shows, and cuts the SNI (see recent.h). */
static int attempt_slim(Attempt *a) {
        char **details[] = {&a->ja3_full, &a->ja4_r, &a->ja4_o, &a->ja4_ro, &a->offered_versions};

        FOREACH_ARRAY(d, details, ELEMENTSOF(details)) {
                free(**d);
                **d = NULL;
        }
        raw_string_clear(&a->alpn_offered);
        raw_string_clear(&a->user_agent);
        if (a->error_text && strlen(a->error_text) > RECENT_ERROR_TEXT_MAX) {
                /* e.g. "no key-exchange group in common" lists every group the client offered */
                memcpy(a->error_text + RECENT_ERROR_TEXT_MAX - strlen("..."), "...", strlen("...") + 1);
        }
        if (a->sni.len > RECENT_SNI_MAX) {
                RawString cut = {};

                if (raw_string_set(&cut, a->sni.data, RECENT_SNI_MAX) < 0)
                        return -ENOMEM;
                raw_string_clear(&a->sni);
                a->sni = cut;
        }
        return 0;
}

int recent_record_add(RecentRecord *r, const Attempt *a) {
        RecentEntry *e, *dropped[RECENT_PER_CLIENT];
        char key[SEQUENCE_CLIENT_MAX];
        size_t n_dropped = 0;
        RecentBucket *b;
        RecentClient *c;
        int k;

        e = malloc(sizeof *e);
        if (!e)
                return -ENOMEM;
        k = attempt_dup(a, &e->attempt);
        if (k >= 0 && attempt_detail_bytes(a) > RECENT_DETAIL_MAX)
                k = attempt_slim(e->attempt);
        if (k < 0) {
                attempt_free(e->attempt);
                free(e);
                return k;
        }
        atomic_init(&e->n_ref, 1);
        sequence_client_key(a->peer_addr, key);
        b = bucket_of(r, key);

        pthread_mutex_lock(&b->lock);
        c = bucket_find(b, key);
        if (!c) {
                c = bucket_place(b, a);
                if (!c) {
                        b->lost_us = MAX(b->lost_us, a->started_us);
                        pthread_mutex_unlock(&b->lock);
                        entry_unref(e);
                        return 0;
                }
                if (c->key[0] != '\0')
                        b->lost_us = MAX(b->lost_us, c->active_us);
                for (unsigned i = 0; i < c->n; i++)
                        dropped[n_dropped++] = c->ring[(c->head + i) % RECENT_PER_CLIENT];
                *c = (RecentClient){.lost_us = b->lost_us};
                memcpy(c->key, key, sizeof key);
        }
        if (c->n == RECENT_PER_CLIENT) {
                dropped[n_dropped++] = c->ring[c->head];
                client_note_dropped(c, c->ring[c->head]->attempt);
                c->head = (c->head + 1) % RECENT_PER_CLIENT;
                c->n--;
        }
        c->ring[(c->head + c->n) % RECENT_PER_CLIENT] = e;
        c->n++;
        c->active_us = MAX(c->active_us, a->started_us);
        c->hello = c->hello || a->ja4_stable;
        pthread_mutex_unlock(&b->lock);

        recent_entries_unref(dropped, n_dropped);
        family_note_agent(r, a);
        return 0;
}

size_t recent_record_get(
        RecentRecord *r,
        const char *peer_addr,
        const char *ja4_stable,
        RecentEntry *ret[static RECENT_PER_CLIENT],
        int64_t *ret_lost_us) {
        uint64_t h = ja4_hash(ja4_stable);
        char key[SEQUENCE_CLIENT_MAX];
        int64_t lost_us = 0;
        RecentBucket *b;
        RecentClient *c;
        size_t n = 0;

        sequence_client_key(peer_addr, key);
        b = bucket_of(r, key);
        pthread_mutex_lock(&b->lock);
        c = bucket_find(b, key);
        lost_us = c ? c->lost_us : b->lost_us;
        for (size_t i = 0; c && i < RECENT_LOST_KEYS; i++)
                if (c->lost[i].lost_us != 0 && c->lost[i].ja4_hash == h)
                        lost_us = MAX(lost_us, c->lost[i].lost_us);
        for (unsigned i = 0; c && i < c->n; i++) {
                ret[n] = c->ring[(c->head + i) % RECENT_PER_CLIENT];
                atomic_fetch_add(&ret[n]->n_ref, 1);
                n++;
        }
        pthread_mutex_unlock(&b->lock);
        if (ret_lost_us)
                *ret_lost_us = lost_us;

        /* insertion sort by started_us, stable: they were added in the order in which they ended, which is
         * nearly the order in which they started */
        for (size_t i = 1; i < n; i++) {
                RecentEntry *x = ret[i];
                size_t j = i;

                for (; j > 0 && ret[j - 1]->attempt->started_us > x->attempt->started_us; j--)
                        ret[j] = ret[j - 1];
                ret[j] = x;
        }
        return n;
}
