/* SPDX-License-Identifier: MIT */
#pragma once

/* Escaping of client-chosen bytes for display. The data is stored raw; these make it safe to show:
 * no control byte (C0, DEL, C1), no invalid UTF-8 and no bidirectional override ever comes out. */

#include <stddef.h>
#include <stdio.h>

/* Printable ASCII and valid, non-control UTF-8 pass; '\\' becomes "\\\\"; everything else \xHH
 * (each byte of a UTF-8 sequence that encodes a C1 control or a bidi control is escaped).
 * Returns a malloc'ed NUL-terminated string, or NULL on out of memory. */
char *escape_display(const void *data, size_t len);

/* Writes data as a JSON string (with quotes) to f: valid JSON whatever the bytes; invalid UTF-8
 * bytes become \u00XX of the byte's value (so the output is UTF-8 and round-trips per byte for
 * ASCII), control characters become \uXXXX. */
void escape_json_fputs(FILE *f, const void *data, size_t len);

/* Writes one CSV field per RFC 4180 (quoted when needed, quotes doubled), after escape_display(),
 * so that a spreadsheet or terminal never sees control bytes. */
void escape_csv_fputs(FILE *f, const void *data, size_t len);
