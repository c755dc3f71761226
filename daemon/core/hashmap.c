/* SPDX-License-Identifier: MIT */
#include "hashmap.h"

uint64_t hash_bytes(uint64_t h, const void *data, size_t len) {
        const unsigned char *p = data;
        uint64_t w;

        for (; len >= 8; p += 8, len -= 8) {
                memcpy(&w, p, 8);
                h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
                h ^= h >> 32;
        }
        w = len;
        for (size_t i = 0; i < len; i++)
                w = w << 8 | p[i];
        h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
        return h ^ (h >> 29);
}

int hashmap_init(HashMap *m, size_t n_buckets) {
        size_t n = 1;

        while (n < n_buckets && n <= SIZE_MAX / 2 / sizeof(HashEntry *))
                n *= 2;
        *m = (HashMap){.buckets = calloc(n, sizeof(HashEntry *)), .n_buckets = n};
        return m->buckets ? 0 : -ENOMEM;
}

void hashmap_done(HashMap *m) {
        free(m->buckets);
        *m = (HashMap){};
}

void hashmap_clear(HashMap *m) {
        memset(m->buckets, 0, m->n_buckets * sizeof(HashEntry *));
        m->n = 0;
}

static int hashmap_grow(HashMap *m) {
        size_t n = m->n_buckets * 2;
        HashEntry **b;

        if (n > SIZE_MAX / sizeof *b)
                return -ENOMEM;
        b = calloc(n, sizeof *b);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (HashEntry *e = m->buckets[i], *next; e; e = next) {
                        next = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        free(m->buckets);
        m->buckets = b;
        m->n_buckets = n;
        return 0;
}

int hashmap_put(HashMap *m, HashEntry *e, uint64_t hash) {
        if (m->n >= m->n_buckets && hashmap_grow(m) < 0)
                return -ENOMEM;
        e->hash = hash;
        e->next = m->buckets[hash & (m->n_buckets - 1)];
        m->buckets[hash & (m->n_buckets - 1)] = e;
        m->n++;
        return 0;
}

void hashmap_remove(HashMap *m, HashEntry *e) {
        HashEntry **p = &m->buckets[e->hash & (m->n_buckets - 1)];

        while (*p != e)
                p = &(*p)->next;
        *p = e->next;
        m->n--;
}
