/* SPDX-License-Identifier: MIT */
#pragma once

/* The SQL migrations in schema/NNNN-*.sql, embedded at build time. schema_migrations[i] brings a
 * database from PRAGMA user_version i to i + 1; schema_version is the newest version. */

extern const char *const schema_migrations[];
extern const unsigned schema_version;
