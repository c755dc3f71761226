/* SPDX-License-Identifier: MIT */
#pragma once

/* One hash map for everything that looks things up by key: the sequencer's keys, tlsreport's client
 * families and labels. Intrusive and chained: an entry embeds a HashEntry (first, or found back with
 * container_of()), the caller computes the hash (hash_bytes(), hash_string()) and compares its own keys
 * along the chain. The map only holds pointers: it never allocates or frees entries. It doubles its
 * buckets once it holds as many entries as buckets. */

#include <stdint.h>

#include "macro.h"

typedef struct HashEntry {
        struct HashEntry *next;
        uint64_t hash;
} HashEntry;

typedef struct HashMap {
        HashEntry **buckets;
        size_t n_buckets; /* a power of two */
        size_t n;
} HashMap;

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) -offsetof(type, member)))

/* A cheap hash over 8-byte words (multiply and fold), chained through h: the chains compare the keys
 * anyway. */
uint64_t hash_bytes(uint64_t h, const void *data, size_t len) _pure_;
/* The final mix, after the last hash_bytes() of a key made of several parts. */
static inline uint64_t hash_finish(uint64_t h) {
        h ^= h >> 31;
        return h * UINT64_C(0xbf58476d1ce4e5b9);
}
#define HASH_SEED UINT64_C(0x243f6a8885a308d3)
static inline uint64_t hash_string(const char *s) {
        return hash_finish(hash_bytes(HASH_SEED, s, strlen(s)));
}

/* n_buckets: the initial number, rounded up to a power of two. Returns 0 or -ENOMEM. */
int hashmap_init(HashMap *m, size_t n_buckets);
/* Frees the buckets, not the entries. */
void hashmap_done(HashMap *m);
/* Forgets every entry (they are the caller's), keeps the buckets. */
void hashmap_clear(HashMap *m);

/* The chain that entries of this hash are on. */
static inline HashEntry *hashmap_chain(const HashMap *m, uint64_t hash) {
        return m->buckets[hash & (m->n_buckets - 1)];
}

#define HASHMAP_FOREACH_CHAIN(e, m, h) for (HashEntry *e = hashmap_chain((m), (h)); e; e = e->next)

/* Every entry, in no particular order. Do not add or remove while iterating. */
#define HASHMAP_FOREACH(e, m)                                      \
        for (size_t _i_##e = 0; _i_##e < (m)->n_buckets; _i_##e++) \
                for (HashEntry *e = (m)->buckets[_i_##e]; e; e = e->next)

/* Adds e with this hash (growing first if needed). Returns 0, or -ENOMEM (then e is not added). */
int hashmap_put(HashMap *m, HashEntry *e, uint64_t hash);
/* Removes e, which must be in the map. */
void hashmap_remove(HashMap *m, HashEntry *e);
