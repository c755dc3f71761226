/* SPDX-License-Identifier: MIT */
/* The bounded FIFO of the store and the journal sink: order, bounds, wrap-around, stable slots. */
#include "ring.h"
#include "tap.h"

int main(void) {
        int v[10];
        Ring r;
        long slot;
        bool in_order = true;

        is_int(ring_init(&r, 0), -EINVAL, "no ring of 0 slots");
        is_int(ring_init(&r, SIZE_MAX), -EINVAL, "no ring beyond what can be allocated");
        is_int(ring_init(&r, 4), 0, "a ring of 4");
        ok(ring_pop(&r) == NULL, "empty: nothing to pop");
        for (int i = 0; i < 4; i++)
                is_int(ring_push(&r, &v[i]), i, "push %d into slot %d", i, i);
        ok(ring_full(&r), "full after 4");
        is_int(ring_push(&r, &v[4]), -ENOBUFS, "a fifth is refused");
        ok(ring_get(&r, 0) == &v[0] && ring_get(&r, 3) == &v[3], "oldest first");
        ring_drop(&r, 3);
        is_int(r.n, 1, "drop 3: one left");
        ok(ring_get(&r, 0) == &v[3], "the newest is the oldest now");
        /* wrap around: slots 0..2 are free again */
        for (int i = 4; i < 7; i++) {
                slot = ring_push(&r, &v[i]);
                is_int(slot, i - 4, "push %d wraps into slot %d", i, i - 4);
                ok(r.items[slot] == &v[i] && ring_slot(&r, r.n - 1) == (size_t) slot, "its slot holds it");
        }
        for (int i = 3; i < 7; i++)
                in_order = ring_pop(&r) == &v[i] && in_order;
        ok(in_order, "popped in the order pushed, across the wrap");
        ok(ring_pop(&r) == NULL && r.n == 0, "empty again");
        ring_done(&r);
        ok(r.items == NULL && r.max == 0, "done");
        return tap_done();
}
