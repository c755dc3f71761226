/* SPDX-License-Identifier: MIT */
#pragma once

/* A minimal TAP producer for unit tests (meson test protocol: 'tap'). Tests call ok()/is_int()/is_str()
 * and end with return tap_done(); a failed check prints what was expected and what came. */

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static unsigned tap_n, tap_failed;

__attribute__((format(printf, 2, 3))) static inline bool ok(bool cond, const char *fmt, ...) {
        va_list ap;

        tap_n++;
        printf("%sok %u - ", cond ? "" : "not ", tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        if (!cond)
                tap_failed++;
        fflush(stdout);
        return cond;
}

#define is_int(got, want, ...)                                                                     \
        ({                                                                                         \
                long long _g_ = (long long) (got), _w_ = (long long) (want);                       \
                bool _r_ = ok(_g_ == _w_, __VA_ARGS__);                                            \
                if (!_r_)                                                                          \
                        printf("#   got %lld, want %lld (%s:%d)\n", _g_, _w_, __FILE__, __LINE__); \
                _r_;                                                                               \
        })

#define is_str(got, want, ...)                                                                 \
        ({                                                                                     \
                const char *_g_ = (got), *_w_ = (want);                                        \
                bool _r_ = ok((_g_ && _w_) ? strcmp(_g_, _w_) == 0 : _g_ == _w_, __VA_ARGS__); \
                if (!_r_)                                                                      \
                        printf("#   got \"%s\", want \"%s\" (%s:%d)\n",                        \
                               _g_ ? _g_ : "(null)",                                           \
                               _w_ ? _w_ : "(null)",                                           \
                               __FILE__,                                                       \
                               __LINE__);                                                      \
                _r_;                                                                           \
        })

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...) {
        va_list ap;

        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
}

/* Ends the TAP stream. A test that checked nothing has failed: it proves nothing. */
static inline int tap_done(void) {
        if (tap_n == 0) {
                printf("Bail out! no check ran\n");
                return 1;
        }
        printf("1..%u\n", tap_n);
        return tap_failed ? 1 : 0;
}
