/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct RecentRecord {
        RecentBucket buckets[RECENT_BUCKETS];
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
        free(r);
        return NULL;
}

static RecentBucket *bucket_of(RecentRecord *r, const char *key) {
        return &r->buckets[hash_string(key) % RECENT_BUCKETS];
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

/* What the record keeps of a: what the sequencer reads (the grouping columns), the SNI cut (see recent.h). */
static int recent_copy(const Attempt *a, Attempt **ret) {
        _cleanup_(attempt_freep) Attempt *c = NULL;
        int r;

        r = attempt_dup_grouping(a, &c);
        if (r < 0)
                return r;
        if (c->sni.len > RECENT_SNI_MAX) {
                RawString cut = {};

                if (raw_string_set(&cut, c->sni.data, RECENT_SNI_MAX) < 0)
                        return -ENOMEM;
                raw_string_clear(&c->sni);
                c->sni = cut;
        }
        *ret = TAKE_PTR(c);
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
        k = recent_copy(a, &e->attempt);
        if (k < 0) {
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
