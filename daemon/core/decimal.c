/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <string.h>

#include "decimal.h"

size_t decimal_from_uint64(uint64_t v, char buf[static DECIMAL_MAX]) {
        char tmp[DECIMAL_MAX], *p = decimal_digits(v, false, tmp + sizeof tmp);
        size_t n = (size_t) (tmp + sizeof tmp - p);

        memcpy(buf, p, n);
        buf[n] = '\0';
        return n;
}

size_t decimal_from_int64(int64_t v, char buf[static DECIMAL_MAX]) {
        char tmp[DECIMAL_MAX],
                *p = decimal_digits(v < 0 ? -(uint64_t) v : (uint64_t) v, v < 0, tmp + sizeof tmp);
        size_t n = (size_t) (tmp + sizeof tmp - p);

        memcpy(buf, p, n);
        buf[n] = '\0';
        return n;
}

void decimal_fput(FILE *f, int64_t v) {
        char tmp[DECIMAL_MAX],
                *p = decimal_digits(v < 0 ? -(uint64_t) v : (uint64_t) v, v < 0, tmp + sizeof tmp);

        (void) fwrite(p, 1, (size_t) (tmp + sizeof tmp - p), f);
}
