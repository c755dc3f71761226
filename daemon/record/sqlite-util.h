/* SPDX-License-Identifier: MIT */
#pragma once

/* SQLite's result codes stay in record/ and tools/report-db.c: everything else sees negative errno. */

#include <sqlite3.h>

/* rc as a negative errno (0 for SQLITE_OK, SQLITE_ROW and SQLITE_DONE): SQLITE_FULL is -ENOSPC,
 * SQLITE_READONLY -EROFS, SQLITE_BUSY and SQLITE_LOCKED -EBUSY, an I/O error or a file that cannot be
 * opened the system's errno behind it (db may be NULL), a corrupt file or not a database -EBADMSG, ... */
int sqlite_to_errno(sqlite3 *db, int rc);

/* SQLite's message for the last failure on db, or for rc when there is no db. */
const char *sqlite_message(sqlite3 *db, int rc);
