/* SPDX-License-Identifier: MIT */
#pragma once

/* Time specifications as journalctl --since/--until takes them, in local time (TZ):
 *   now, today, yesterday, tomorrow (midnight)
 *   +N / -N with units us, ms, s, min, h, d, w (and their long forms), several in a row: "-1h30min";
 *   "N unit ago" is the same as -N unit
 *   YYYY-MM-DD, YYYY-MM-DD HH:MM, YYYY-MM-DD HH:MM:SS[.ffffff] ('T' also separates), HH:MM[:SS] (today);
 *   with a trailing " UTC" or "Z" the time is UTC
 *   @EPOCH[.ffffff]
 * All results are µs since the epoch. */

#include <stdint.h>

/* Returns 0, or -EINVAL for anything else (also out-of-range fields such as 2026-02-30 or 24:00),
 * -ERANGE for times outside 1970..9999. */
int report_time_parse(const char *s, int64_t now_us, int64_t *ret_us);

/* The one-line help for the accepted forms, for error messages. */
#define REPORT_TIME_FORMS                                                                          \
        "now, today, yesterday, tomorrow, -N or +N with us, ms, s, min, h, d, w (e.g. -1h30min), " \
        "YYYY-MM-DD [HH:MM[:SS]], HH:MM[:SS] or @EPOCH"

/* Formats µs since the epoch as local "YYYY-MM-DD HH:MM:SS.mmm" (23 characters and a NUL). */
void report_time_format(int64_t us, char ret[static 32]);
