/* SPDX-License-Identifier: MIT */
#include <stdint.h>

#include "ring.h"

int ring_init(Ring *r, size_t max) {
        *r = (Ring){};
        if (max == 0 || max > SIZE_MAX / sizeof(void *))
                return -EINVAL;
        r->items = calloc(max, sizeof(void *));
        if (!r->items)
                return -ENOMEM;
        r->max = max;
        return 0;
}

void ring_done(Ring *r) {
        free(r->items);
        *r = (Ring){};
}
