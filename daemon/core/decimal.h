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

/* Writes v's digits at p (no NUL, at most DECIMAL_MAX - 1 bytes) and returns the end. */
char *decimal_put_int64(char *p, int64_t v);
char *decimal_put_uint64(char *p, uint64_t v);

/* Writes v to f. */
void decimal_fput(FILE *f, int64_t v);
