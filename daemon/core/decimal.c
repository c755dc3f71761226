/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <string.h>

#include "decimal.h"

/* The digits of u, backwards from end (exclusive), with a '-' when negative. Returns the first byte. */
static char *digits(uint64_t u, bool negative, char *end) {
        char *p = end;

        do
                *--p = (char) ('0' + u % 10);
        while ((u /= 10) > 0);
        if (negative)
                *--p = '-';
        return p;
}

size_t decimal_from_uint64(uint64_t v, char buf[static DECIMAL_MAX]) {
        char tmp[DECIMAL_MAX], *p = digits(v, false, tmp + sizeof tmp);
        size_t n = (size_t) (tmp + sizeof tmp - p);

        memcpy(buf, p, n);
        buf[n] = '\0';
        return n;
}

size_t decimal_from_int64(int64_t v, char buf[static DECIMAL_MAX]) {
        char tmp[DECIMAL_MAX], *p = digits(v < 0 ? -(uint64_t) v : (uint64_t) v, v < 0, tmp + sizeof tmp);
        size_t n = (size_t) (tmp + sizeof tmp - p);

        memcpy(buf, p, n);
        buf[n] = '\0';
        return n;
}

char *decimal_put_int64(char *p, int64_t v) {
        char tmp[DECIMAL_MAX], *d = digits(v < 0 ? -(uint64_t) v : (uint64_t) v, v < 0, tmp + sizeof tmp);
        size_t n = (size_t) (tmp + sizeof tmp - d);

        memcpy(p, d, n);
        return p + n;
}

char *decimal_put_uint64(char *p, uint64_t v) {
        char tmp[DECIMAL_MAX], *d = digits(v, false, tmp + sizeof tmp);
        size_t n = (size_t) (tmp + sizeof tmp - d);

        memcpy(p, d, n);
        return p + n;
}

void decimal_fput(FILE *f, int64_t v) {
        char tmp[DECIMAL_MAX], *p = digits(v < 0 ? -(uint64_t) v : (uint64_t) v, v < 0, tmp + sizeof tmp);

        (void) fwrite(p, 1, (size_t) (tmp + sizeof tmp - p), f);
}
