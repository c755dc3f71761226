/* SPDX-License-Identifier: MIT */
#pragma once

/* An attempt as JSON and as CSV: every column of attempt-columns.h, in its order, named as the column.
 * One writer for everything that shows an attempt: the daemon's /api/self and tlsreport. A NULL column is
 * JSON null and an empty CSV field; client-chosen strings are escaped (escape.h). */

#include <stdbool.h>
#include <stdio.h>

#include "attempt.h"

/* One JSON object, no newline after it. pretty: one key per line, indented by a tab, "key" : value. */
void attempt_json_write(FILE *f, const Attempt *a, bool pretty);
/* The same with a "host" key first (tlsreport: the server the attempt is from; null if not known). */
void attempt_json_write_host(FILE *f, const Attempt *a, bool pretty, bool with_host, const char *host);

/* The CSV header line (the column names) and a record's line, each ending in CRLF (RFC 4180). */
void attempt_csv_write_header(FILE *f);
void attempt_csv_write(FILE *f, const Attempt *a);
