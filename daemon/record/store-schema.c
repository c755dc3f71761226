/* SPDX-License-Identifier: MIT */
/* The schema: its version, and the migrations that bring a database to ours (schema/). */
#include <limits.h>

#include "log.h"
#include "schema.h"
#include "sqlite-util.h"
#include "store-private.h"

int store_exec(sqlite3 *db, const char *sql) {
        return sqlite_to_errno(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int store_user_version(sqlite3 *db, unsigned *ret) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                int64_t v = sqlite3_column_int64(st, 0);
                *ret = v < 0 || v > UINT_MAX ? UINT_MAX : (unsigned) v;
                r = 0;
        } else
                r = sqlite_to_errno(db, rc) ?: -EIO;
        sqlite3_finalize(st);
        return r;
}

int store_check_version(sqlite3 *db, const char *path, unsigned *ret_version, char **ret_error) {
        unsigned v = 0;
        int r;

        r = store_user_version(db, &v);
        if (r < 0)
                return store_error(
                        ret_error, r, "Failed to read the schema version of %s: %s", path, sqlite3_errmsg(db));
        if (v > schema_version)
                return store_error(
                        ret_error,
                        -EPROTONOSUPPORT,
                        "Database %s has schema version %u, newer than version %u that this tlswatch knows; "
                        "refusing to use it (upgrade tlswatch or use another database)",
                        path,
                        v,
                        schema_version);
        *ret_version = v;
        return 0;
}

int store_migrate(sqlite3 *db, const char *path, char **ret_error) {
        unsigned v = 0;
        int r;

        for (;;) {
                r = store_check_version(db, path, &v, ret_error);
                if (r < 0)
                        return r;
                if (v == schema_version)
                        return 0;

                r = store_exec(db, "BEGIN IMMEDIATE");
                if (r < 0)
                        return store_error(
                                ret_error, r, "Failed to start migrating %s: %s", path, sqlite3_errmsg(db));
                /* Another process may have migrated it between our read and our lock. */
                r = store_user_version(db, &v);
                if (r >= 0 && v < schema_version) {
                        char sql[64];

                        r = store_exec(db, schema_migrations[v]);
                        if (r >= 0) {
                                (void) snprintf(sql, sizeof sql, "PRAGMA user_version = %u", v + 1);
                                r = store_exec(db, sql);
                        }
                }
                if (r >= 0)
                        r = store_exec(db, "COMMIT");
                if (r < 0) {
                        (void) store_error(
                                ret_error,
                                r,
                                "Failed to migrate %s from schema version %u to %u: %s",
                                path,
                                v,
                                v + 1,
                                sqlite3_errmsg(db));
                        if (!sqlite3_get_autocommit(db))
                                (void) store_exec(db, "ROLLBACK");
                        return r;
                }
                log_debug("Migrated %s to schema version %u.", path, v + 1);
        }
}
