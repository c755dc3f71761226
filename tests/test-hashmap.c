/* SPDX-License-Identifier: MIT */
/* The one hash map (the sequencer's keys, tlsreport's families and labels): entries found by hash and
 * key, growth, removal, colliding hashes, iteration. */
#include "hashmap.h"
#include "tap.h"

typedef struct Item {
        HashEntry map;
        unsigned key;
        bool seen;
} Item;

enum { N = 5000 };

static Item *find(HashMap *m, uint64_t h, unsigned key) {
        HASHMAP_FOREACH_CHAIN(e, m, h)
        if (e->hash == h && container_of(e, Item, map)->key == key)
                return container_of(e, Item, map);
        return NULL;
}

static uint64_t item_hash(unsigned key) {
        /* every tenth key shares its hash with the key before it: the chains must tell them apart */
        return hash_bytes(HASH_SEED, &(unsigned){key - (key % 10 == 9)}, sizeof key);
}

int main(void) {
        static Item items[N];
        unsigned missing = 0, wrong = 0, seen = 0;
        HashMap m;

        is_int(hashmap_init(&m, 5), 0, "a map");
        is_int(m.n_buckets, 8, "buckets rounded up to a power of two");
        for (unsigned i = 0; i < N; i++) {
                items[i].key = i;
                if (hashmap_put(&m, &items[i].map, item_hash(i)) < 0)
                        return ok(false, "hashmap_put"), tap_done();
        }
        is_int(m.n, N, "every entry in");
        ok(m.n_buckets >= N && (m.n_buckets & (m.n_buckets - 1)) == 0, "grown to %zu buckets", m.n_buckets);
        for (unsigned i = 0; i < N; i++) {
                Item *it = find(&m, item_hash(i), i);

                missing += !it;
                wrong += it && it != &items[i];
        }
        is_int(missing, 0, "every entry found after growing");
        is_int(wrong, 0, "each its own, colliding hashes included");
        ok(!find(&m, item_hash(N + 1), N + 1), "a key not in it is not found");

        for (unsigned i = 0; i < N; i += 2)
                hashmap_remove(&m, &items[i].map);
        is_int(m.n, N / 2, "half removed");
        missing = wrong = 0;
        for (unsigned i = 0; i < N; i++) {
                Item *it = find(&m, item_hash(i), i);

                if (i % 2 == 0)
                        wrong += it != NULL;
                else
                        missing += it != &items[i];
        }
        is_int(wrong, 0, "the removed ones are gone");
        is_int(missing, 0, "the others stay");
        HASHMAP_FOREACH(e, &m) {
                Item *it = container_of(e, Item, map);

                wrong += it->seen || it->key % 2 == 0;
                it->seen = true;
                seen++;
        }
        is_int(seen, N / 2, "iteration sees every entry");
        is_int(wrong, 0, "once each, and only those in the map");
        hashmap_clear(&m);
        is_int(m.n, 0, "cleared");
        ok(!find(&m, item_hash(1), 1), "nothing found after clear");
        ok(hash_string("t13d1516h2") != hash_string("t13d1517h2") && hash_string("") == hash_string(""),
           "hash_string tells strings apart and is a function");
        hashmap_done(&m);
        return tap_done();
}
