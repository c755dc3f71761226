/* SPDX-License-Identifier: MIT */
/* The writer's connection: opened (the file created with our mode, WAL, migrated), its statements, one
 * batch written in a transaction, one pruning step. Used by the writer thread only. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "attempt-sql.h"
#include "log.h"
#include "sqlite-util.h"
#include "store-private.h"

#define IS_EITHER(x, a, b)                \
        ({                                \
                __typeof__(x) _x_ = (x);  \
                _x_ == (a) || _x_ == (b); \
        })

/* The writer's connection, after journal_mode = WAL. */
static const char store_pragmas[] =
        "PRAGMA synchronous = NORMAL;"           /* WAL: durable against a crash of the process */
        "PRAGMA cache_size = -16384;"            /* KiB: the three indexes' pages stay in memory */
        "PRAGMA journal_size_limit = 67108864;"; /* 64 MiB: the WAL file shrinks back after a burst */

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_BEGIN] = "BEGIN IMMEDIATE",
        [STMT_COMMIT] = "COMMIT",
        [STMT_ROLLBACK] = "ROLLBACK",
        [STMT_INSERT] = NULL, /* Store.insert_sql, from attempt-columns.h */
        [STMT_PRUNE] = ("DELETE FROM attempts WHERE id IN "
                        "(SELECT id FROM attempts WHERE started_us < ?1 ORDER BY started_us LIMIT ?2)"),
};

_printf_(3, 4) int store_error(char **ret_error, int r, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        log_debug_errno(r, "%s", strna(msg));
        if (ret_error) {
                free(*ret_error);
                *ret_error = TAKE_PTR(msg);
        }
        return r;
}

static int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *slash = '/';
        }
        return 0;
}

void store_db_close(Store *s) {
        FOREACH_ARRAY(st, s->stmt, _STMT_MAX)
                *st = (sqlite3_finalize(*st), NULL);
        if (s->db) {
                (void) sqlite3_close(s->db);
                s->db = NULL;
        }
}

/* The ids the store gives (store_reserve_id()) start above every row of the database, also of one that
 * replaced the file we had open (store_db_moved()). */
/* The host name in the table meta (migration 6): tlsreport names the server of a database's attempts by it,
 * as the journal does by _HOSTNAME. Written at every open: a renamed host's database follows it. */
static int store_record_host(sqlite3 *db, const char *path, char **ret_error) {
        char host[HOST_NAME_MAX + 1] = {};
        sqlite3_stmt *st = NULL;
        int rc;

        if (gethostname(host, sizeof host - 1) < 0 || !host[0])
                return 0; /* nothing to record: tlsreport falls back to the file name */
        rc = sqlite3_prepare_v2(
                db,
                "INSERT INTO meta (key, value) VALUES ('host', ?1) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value",
                -1,
                &st,
                NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                int r = sqlite_to_errno(db, rc) ?: -EIO;

                return store_error(
                        ret_error, r, "Failed to record the host name in %s: %s", path, sqlite3_errmsg(db));
        }
        return 0;
}

static int store_next_id_init(Store *s, sqlite3 *db, char **ret_error) {
        sqlite3_stmt *st = NULL;
        int64_t next, cur;
        int rc;

        rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) + 1 FROM attempts", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                int r = sqlite_to_errno(db, rc) ?: -EIO;

                sqlite3_finalize(st);
                return store_error(
                        ret_error, r, "Failed to read the last row id of %s: %s", s->path, sqlite3_errmsg(db));
        }
        next = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        cur = atomic_load(&s->next_id);
        while (cur < next && !atomic_compare_exchange_weak(&s->next_id, &cur, next))
                ;
        return 0;
}

int store_db_open(Store *s, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;
        unsigned version;
        int rc, r;

        r = mkdir_parents(s->path, STORE_DIRECTORY_MODE);
        if (r < 0)
                return store_error(
                        ret_error, r, "Failed to create the directory of %s: %s", s->path, strerror(-r));
        /* Create the file ourselves, so that its mode is ours and not SQLite's 0644; the -wal and -shm
         * files get the mode of the database file. */
        fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, STORE_FILE_MODE);
        if (fd < 0) {
                r = negative_errno();
                return store_error(ret_error, r, "Failed to open %s for writing: %s", s->path, strerror(-r));
        }
        fd = safe_close(fd);

        rc = sqlite3_open_v2(
                s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_to_errno(db, rc);
                (void) store_error(
                        ret_error, r, "Failed to open database %s: %s", s->path, sqlite_message(db, rc));
                goto fail;
        }
        if (sqlite3_db_readonly(db, "main") == 1) {
                r = store_error(ret_error, -EROFS, "Database %s can only be opened read-only", s->path);
                goto fail;
        }
        (void) sqlite3_busy_timeout(db, (int) MIN(s->opt.busy_timeout_ms, INT_MAX));

        /* Check the version before the first write, so that a newer database is not touched at all. */
        r = store_check_version(db, s->path, &version, ret_error);
        if (r < 0)
                goto fail;

        /* Rows are 1-2 KiB (the fingerprint strings): with 16 KiB pages they rarely spill into overflow
         * pages, which makes inserts about a fifth cheaper. Only takes effect on a new database. */
        (void) sqlite3_exec(db, "PRAGMA page_size = 16384", NULL, NULL, NULL);
        rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                r = sqlite_to_errno(db, rc) ?: -EIO;
                (void) store_error(ret_error, r, "Failed to switch %s to WAL: %s", s->path, sqlite3_errmsg(db));
                goto fail;
        }
        if (!streq_ptr((const char *) sqlite3_column_text(st, 0), "wal")) {
                r = store_error(ret_error, -EOPNOTSUPP, "Database %s cannot use WAL journaling", s->path);
                goto fail;
        }
        st = (sqlite3_finalize(st), NULL);

        r = store_exec(db, store_pragmas);
        if (r < 0) {
                (void) store_error(ret_error, r, "Failed to configure %s: %s", s->path, sqlite3_errmsg(db));
                goto fail;
        }
        /* Replaces SQLite's automatic checkpoints (wal_autocheckpoint) on this connection. */
        (void) sqlite3_wal_hook(db, store_wal_hook, s);

        r = store_migrate(db, s->path, ret_error);
        if (r < 0)
                goto fail;
        r = store_next_id_init(s, db, ret_error);
        if (r < 0)
                goto fail;
        r = store_record_host(db, s->path, ret_error);
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < _STMT_MAX; i++) {
                const char *sql = i == STMT_INSERT ? s->insert_sql : stmt_sql[i];

                rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i], NULL);
                if (rc != SQLITE_OK) {
                        r = sqlite_to_errno(db, rc);
                        (void) store_error(ret_error, r, "Failed to prepare statement: %s", sqlite3_errmsg(db));
                        goto fail;
                }
        }
        /* Which file we opened: see store_db_moved(). */
        if (stat(s->path, &s->db_stat) < 0) {
                r = negative_errno();
                (void) store_error(ret_error, r, "Failed to stat %s: %s", s->path, strerror(-r));
                goto fail;
        }
        s->db = db;
        return 0;

fail:
        sqlite3_finalize(st);
        s->db = db;
        store_db_close(s);
        return r;
}

static int store_insert(Store *s, const Attempt *a) {
        sqlite3_stmt *st = s->stmt[STMT_INSERT];
        int rc = attempt_bind(st, a);

        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        (void) sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : sqlite_to_errno(s->db, rc) ?: -EIO;
}

static int store_step(Store *s, int which) {
        sqlite3_stmt *st = s->stmt[which];
        int rc = sqlite3_step(st);

        (void) sqlite3_reset(st);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_to_errno(s->db, rc) ?: -EIO;
}

static void store_note_error(Store *s, const char *what) {
        (void) snprintf(
                s->error_text, sizeof s->error_text, "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "?");
}

/* Whether the database file was removed or replaced since we opened it. SQLite in WAL mode would go
 * on writing into the removed file, and every row would be lost with it. */
static bool store_db_moved(Store *s) {
        struct stat st;

        if (stat(s->path, &st) < 0)
                return errno == ENOENT;
        return st.st_dev != s->db_stat.st_dev || st.st_ino != s->db_stat.st_ino;
}

/* Writes s->batch[0..n) in one transaction. Records SQLite refuses for their own content (a
 * constraint, a string too big) are skipped and counted in *ret_rejected; any other error fails the
 * whole batch and closes the connection, so that the retry starts afresh. */
int store_write_batch(Store *s, size_t n, uint64_t *ret_rejected) {
        _cleanup_free_ char *error = NULL;
        uint64_t rejected = 0;
        int r;

        if (s->db && store_db_moved(s)) {
                log_notice("Database %s was removed or replaced, opening it anew.", s->path);
                /* Close first: closing checkpoints into and deletes the old file's -wal by name. */
                store_db_close(s);
        }
        if (!s->db) {
                r = store_db_open(s, &error);
                if (r < 0) {
                        (void) snprintf(s->error_text, sizeof s->error_text, "%s", strna(error));
                        return r;
                }
        }

        r = store_step(s, STMT_BEGIN);
        if (r < 0) {
                store_note_error(s, "Failed to begin a transaction");
                goto fail;
        }
        FOREACH_ARRAY(a, s->batch, n) {
                r = store_insert(s, *a);
                if (r == -EINVAL && sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
                        /* Another writer on this database took the id (its counter and ours both start
                         * from the largest id when opened): ours goes past its rows, the record gets a new
                         * id rather than being lost. We hold the write lock: the new id is free. */
                        log_debug(
                                "Row id %" PRIi64 " of %s was taken by another writer, renumbering.",
                                (*a)->id,
                                s->path);
                        r = store_next_id_init(s, s->db, NULL);
                        if (r >= 0) {
                                (*a)->id = store_reserve_id(s);
                                r = store_insert(s, *a);
                        }
                }
                if (IS_EITHER(r, -EINVAL, -E2BIG)) {
                        log_debug_errno(
                                r,
                                "Record from %s refused by the database, dropping it: %s",
                                (*a)->peer_addr,
                                sqlite3_errmsg(s->db));
                        rejected++;
                        continue;
                }
                if (r < 0) {
                        store_note_error(s, "Failed to insert a record");
                        goto fail;
                }
        }
        r = store_step(s, STMT_COMMIT);
        if (r < 0) {
                store_note_error(s, "Failed to commit");
                goto fail;
        }
        *ret_rejected = rejected;
        return 0;

fail:
        if (!sqlite3_get_autocommit(s->db))
                (void) store_step(s, STMT_ROLLBACK);
        store_db_close(s);
        return r;
}

/* Deletes one small batch of rows older than the retention period. Returns the number deleted. */
int store_prune_step(Store *s, uint64_t *ret_deleted) {
        sqlite3_stmt *st = s->stmt[STMT_PRUNE];
        int64_t cutoff = now_realtime_us() - (int64_t) s->opt.retention_days * 86400 * USEC_PER_SEC;
        int r;

        if (!s->db)
                return -ENOTCONN;
        if (sqlite3_bind_int64(st, 1, cutoff) != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, (int64_t) MIN(s->opt.prune_batch, (size_t) INT64_MAX)) != SQLITE_OK)
                return sqlite_to_errno(s->db, sqlite3_errcode(s->db)) ?: -EIO;
        r = store_step(s, STMT_PRUNE);
        if (r < 0)
                return log_debug_errno(r, "Failed to prune old rows: %s", sqlite3_errmsg(s->db));
        *ret_deleted = (uint64_t) sqlite3_changes64(s->db);
        return 0;
}
