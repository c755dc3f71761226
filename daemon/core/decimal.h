/* SPDX-License-Identifier: MIT */
#pragma once

/* Integers in decimal, without printf: most of what the JSON and CSV output and the journal fields hold,
 * millions of times in a big report. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "-9223372036854775808" and its NUL */
#define DECIMAL_MAX 21

/* Writes v NUL-terminated into buf, returns its length. */
size_t decimal_from_int64(int64_t v, char buf[static DECIMAL_MAX]);
size_t decimal_from_uint64(uint64_t v, char buf[static DECIMAL_MAX]);

/* Writes v to f. */
void decimal_fput(FILE *f, int64_t v);
