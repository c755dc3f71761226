/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the benchmark programs. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Nanoseconds of clock (CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID, ...). */
static inline int64_t clock_ns(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* For qsort() of doubles, ascending. */
static inline int compare_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/* A decimal number in [lo, hi], or -EINVAL. */
static inline int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *ret) {
        unsigned long v;
        char *end;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}
