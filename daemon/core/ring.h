/* SPDX-License-Identifier: MIT */
#pragma once

/* A bounded FIFO of pointers in a ring of slots: the store's queue of records and the journal's queue of
 * entries. It does not lock (its owner does) and does not own what it holds. A slot number stays the same
 * while its item is queued, so that a caller may keep per-item data in an array of its own (ring_slot()). */

#include <stddef.h>

#include "macro.h"

typedef struct Ring {
        void **items;
        size_t max;  /* slots */
        size_t head; /* slot of the oldest item */
        size_t n;    /* items queued */
} Ring;

/* Returns 0, -EINVAL for max 0 or beyond what can be allocated, -ENOMEM. */
int ring_init(Ring *r, size_t max);
/* Frees the slots (not the items). */
void ring_done(Ring *r);

/* The slot of the i-th oldest item. */
static inline size_t ring_slot(const Ring *r, size_t i) {
        return (r->head + i) % r->max;
}

/* The i-th oldest item (i < n). */
static inline void *ring_get(const Ring *r, size_t i) {
        return r->items[ring_slot(r, i)];
}

static inline bool ring_full(const Ring *r) {
        return r->n >= r->max;
}

/* Appends p as the newest item and returns its slot, or -ENOBUFS when full. */
static inline long ring_push(Ring *r, void *p) {
        size_t slot;

        if (ring_full(r))
                return -ENOBUFS;
        slot = ring_slot(r, r->n);
        r->items[slot] = p;
        r->n++;
        return (long) slot;
}

/* Removes the n oldest items (n at most the number queued). */
static inline void ring_drop(Ring *r, size_t n) {
        r->head = ring_slot(r, n);
        r->n -= n;
}

/* Removes and returns the oldest item, NULL when empty. */
static inline void *ring_pop(Ring *r) {
        void *p;

        if (r->n == 0)
                return NULL;
        p = r->items[r->head];
        ring_drop(r, 1);
        return p;
}
