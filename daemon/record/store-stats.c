/* SPDX-License-Identifier: MIT */
/* The store's counters, and the line that says them in systemd's STATUS=. */
#include <inttypes.h>

#include "store-private.h"

void store_get_stats(Store *s, StoreStats *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = s->stats;
        ret->queued = s->queue.n;
        pthread_mutex_unlock(&s->lock);
}

int store_stats_format(const StoreStats *st, char *buf, size_t size) {
        int n;

        if (st->failing) {
                errno = -st->last_error;
                n = snprintf(
                        buf,
                        size,
                        "database writes failing (%m: %s): %" PRIu64 " queued, %" PRIu64 " dropped",
                        st->last_error_text,
                        st->queued,
                        st->dropped);
        } else if (st->dropped > 0)
                n = snprintf(
                        buf,
                        size,
                        "database: %" PRIu64 " stored, %" PRIu64 " queued, %" PRIu64 " dropped",
                        st->written,
                        st->queued,
                        st->dropped);
        else
                n = snprintf(
                        buf, size, "database: %" PRIu64 " stored, %" PRIu64 " queued", st->written, st->queued);
        return n < 0 ? -EIO : (size_t) n >= size ? -ENOBUFS : 0;
}
