/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers used everywhere: cleanup attributes, array sizes, saturating arithmetic. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _unused_ __attribute__((unused))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _pure_ __attribute__((pure))
#define _noreturn_ __attribute__((noreturn))
#define _sentinel_ __attribute__((sentinel))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_MSEC INT64_C(1000)

/* Take ownership of a pointer out of a _cleanup_ variable. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })

#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -EBADF;   \
                _fd_;            \
        })

/* Define a cleanup function for a type whose destructor returns NULL, e.g. Foo *foo_free(Foo *). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)        \
        _unused_ static inline void func##p(type *p) { \
                if (*p)                                \
                        *p = func(*p);                 \
        }

#define FOREACH_ARRAY(i, array, num) \
        for (__typeof__(array[0]) *i = (array), *_end_##i = (array) + (num); i && i < _end_##i; i++)

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

/* Wipe memory that held secrets, such that the compiler cannot elide it. */
static inline void explicit_wipe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

/* Negative errno from a libc call that sets errno, never 0. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

#include <fcntl.h>

static inline int fd_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0)
                return -errno;
        if (flags & O_NONBLOCK)
                return 0;
        return fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}
