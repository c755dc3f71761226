/* SPDX-License-Identifier: MIT */
#pragma once

/* Integers in decimal, without printf: most of what the JSON and CSV output and the journal fields hold,
 * millions of times in a big report. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* "-9223372036854775808" and its NUL */
#define DECIMAL_MAX 21

/* Writes v NUL-terminated into buf, returns its length. */
size_t decimal_from_int64(int64_t v, char buf[static DECIMAL_MAX]);
size_t decimal_from_uint64(uint64_t v, char buf[static DECIMAL_MAX]);

/* The digits of u, backwards from end (exclusive), with a '-' when negative. Returns the first byte. */
static inline char *decimal_digits(uint64_t u, bool negative, char *end) {
        char *p = end;

        do
                *--p = (char) ('0' + u % 10);
        while ((u /= 10) > 0);
        if (negative)
                *--p = '-';
        return p;
}

/* Writes v's digits at p (no NUL, at most DECIMAL_MAX - 1 bytes) and returns the end. Inline: the report
 * writes one for every attempt of every sequence, the fingerprints dozens per ClientHello. */
static inline __attribute__((always_inline)) char *decimal_put_uint64(char *p, uint64_t v) {
        size_t n = 1;

        if (v <= UINT32_MAX) { /* 32-bit arithmetic: ports, lengths, TLS numbers */
                uint32_t u = (uint32_t) v;
                char tmp[10];
                size_t k = 0;

                do
                        tmp[k++] = (char) ('0' + u % 10);
                while ((u /= 10) > 0);
                while (k > 0)
                        *p++ = tmp[--k];
                return p;
        }
        for (uint64_t x = v; x >= 10; x /= 10)
                n++;
        (void) decimal_digits(v, false, p + n);
        return p + n;
}

static inline __attribute__((always_inline)) char *decimal_put_int64(char *p, int64_t v) {
        if (v < 0) {
                *p++ = '-';
                return decimal_put_uint64(p, -(uint64_t) v);
        }
        return decimal_put_uint64(p, (uint64_t) v);
}

/* Writes v to f. */
void decimal_fput(FILE *f, int64_t v);
