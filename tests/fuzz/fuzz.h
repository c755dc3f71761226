/* SPDX-License-Identifier: MIT */
#pragma once

/* What every fuzz target shares: libFuzzer's entry point (fuzz-replay.c calls it for each seed in the
 * normal build) and check(), which aborts on a broken invariant so that libFuzzer (or the replay test)
 * reports the input. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(expr)                                                                                  \
        do {                                                                                         \
                if (!(expr)) {                                                                       \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                     \
                }                                                                                    \
        } while (0)
