/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "attempt-sql.h"
#include "log.h"
#include "ring.h"
#include "schema.h"
#include "sqlite-util.h"
#include "store.h"

#define STORE_FILE_MODE 0640
#define STORE_DIRECTORY_MODE 0750
#define STORE_DROP_LOG_INTERVAL_US (10 * USEC_PER_SEC)

#define sizeof_field(type, member) sizeof(((type *) 0)->member)
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

enum {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_INSERT,
        STMT_PRUNE,
        _STMT_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_BEGIN] = "BEGIN IMMEDIATE",
        [STMT_COMMIT] = "COMMIT",
        [STMT_ROLLBACK] = "ROLLBACK",
        [STMT_INSERT] = NULL, /* Store.insert_sql, from attempt-columns.h */
        [STMT_PRUNE] = ("DELETE FROM attempts WHERE id IN "
                        "(SELECT id FROM attempts WHERE started_us < ?1 ORDER BY started_us LIMIT ?2)"),
};

struct Store {
        char *path;
        char *insert_sql;
        StoreOptions opt;

        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_t thread;
        bool thread_started;

        /* The checkpointer: its own lock, so that it never holds up producers or the writer. */
        pthread_mutex_t ckpt_lock;
        pthread_cond_t ckpt_wake;
        pthread_t ckpt_thread;
        bool ckpt_started, ckpt_requested, ckpt_stopping;

        /* Protected by lock. The queue is a ring of queue_max records; the writer leaves the records of
         * the batch it is writing at the head until they are committed, so a failed batch stays queued. */
        Ring queue;       /* of Attempt * */
        int64_t *ring_us; /* by queue slot: CLOCK_MONOTONIC time each record was queued */
        bool stopping;
        int64_t stop_deadline_us;
        int stop_result;
        StoreStats stats;

        /* Writer thread only (and store_open() before the thread starts). */
        sqlite3 *db;
        struct stat db_stat; /* of the file at path when db was opened */
        sqlite3_stmt *stmt[_STMT_MAX];
        Attempt **batch;
        int64_t next_retry_us, next_prune_us, next_drop_log_us;
        bool prune_active, last_was_write;
        uint64_t dropped_logged;
        char error_text[sizeof_field(StoreStats, last_error_text)];
        struct {
                int level, error;
                char text[512];
        } pending[3];
        size_t n_pending;
};

static int64_t now_monotonic_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* a + b for times, saturating instead of overflowing (b >= 0). */
static int64_t usec_add(int64_t a, int64_t b) {
        return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Sets *ret_error (if not NULL) to a formatted reason, logs it at debug level, returns r. */
_printf_(3, 4) static int store_error(char **ret_error, int r, const char *format, ...) {
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

static int store_exec(sqlite3 *db, const char *sql) {
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

/* Reads the schema version and refuses a database newer than us. */
static int store_check_version(sqlite3 *db, const char *path, unsigned *ret_version, char **ret_error) {
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

/* Applies the missing migrations, each in its own transaction. */
static int store_migrate(sqlite3 *db, const char *path, char **ret_error) {
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

/* Checkpoints (copying the WAL into the database file, then two fsyncs) run on a thread and connection of
 * their own, so that the writer goes on inserting meanwhile: inline, they stalled the writer for up to
 * ~0.7 s on this machine's disk, long enough for the queue to overflow at 40,000 records/s. The writer
 * wakes the checkpointer once the WAL holds opt.checkpoint_pages pages (by default 64 MiB at 16 KiB
 * pages), and checkpoints inline itself only if the WAL grows to four times that anyway (the
 * checkpointer failing, say on a full disk).
 *
 * The WAL hook: called by SQLite on the writer's connection after each commit, with the WAL's size in
 * pages. */
static int store_wal_hook(void *userdata, sqlite3 *db, const char *schema, int pages) {
        Store *s = userdata;

        if (pages < 0 || (unsigned) pages >= 4 * s->opt.checkpoint_pages)
                (void) sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        else if ((unsigned) pages >= s->opt.checkpoint_pages) {
                pthread_mutex_lock(&s->ckpt_lock);
                if (!s->ckpt_requested) {
                        s->ckpt_requested = true;
                        pthread_cond_signal(&s->ckpt_wake);
                }
                pthread_mutex_unlock(&s->ckpt_lock);
        }
        return SQLITE_OK;
}

/* One PASSIVE checkpoint on a connection of its own, opened for the occasion: it never waits for the
 * writer or readers, and it always checkpoints the file the writer has open now (the writer reopens the
 * database after errors, or when the file was replaced). A failure is left to the next request: the
 * writer's own commits report what is wrong with the database. */
static void store_checkpoint_once(Store *s) {
        sqlite3 *db = NULL;
        int rc, frames = -1, done = -1;

        rc = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        /* A connection opens the WAL with its first read: until then a checkpoint does nothing (and
         * reports success, with -1 pages). */
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "PRAGMA user_version", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
        if (rc == SQLITE_OK && frames >= 0) {
                log_debug("Checkpoint of %s: %d of %d WAL pages copied.", s->path, done, frames);
                pthread_mutex_lock(&s->lock);
                s->stats.checkpoints++;
                pthread_mutex_unlock(&s->lock);
        } else
                log_debug(
                        "Checkpoint of %s failed: %s",
                        s->path,
                        rc != SQLITE_OK ? sqlite_message(db, rc) : "not in WAL mode");
        (void) sqlite3_close(db);
}

static void *store_checkpointer(void *userdata) {
        Store *s = userdata;

        pthread_mutex_lock(&s->ckpt_lock);
        for (;;) {
                while (!s->ckpt_requested && !s->ckpt_stopping)
                        pthread_cond_wait(&s->ckpt_wake, &s->ckpt_lock);
                if (s->ckpt_stopping)
                        break;
                s->ckpt_requested = false;
                pthread_mutex_unlock(&s->ckpt_lock);
                store_checkpoint_once(s);
                pthread_mutex_lock(&s->ckpt_lock);
        }
        pthread_mutex_unlock(&s->ckpt_lock);
        return NULL;
}

/* Before the writer's connection closes: that close, the last one, checkpoints everything itself. */
static void store_checkpointer_stop(Store *s) {
        if (!s->ckpt_started)
                return;
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stopping = true;
        pthread_cond_signal(&s->ckpt_wake);
        pthread_mutex_unlock(&s->ckpt_lock);
        (void) pthread_join(s->ckpt_thread, NULL);
        s->ckpt_started = false;
}

static void store_db_close(Store *s) {
        FOREACH_ARRAY(st, s->stmt, _STMT_MAX)
                *st = (sqlite3_finalize(*st), NULL);
        if (s->db) {
                (void) sqlite3_close(s->db);
                s->db = NULL;
        }
}

static int store_db_open(Store *s, char **ret_error) {
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

/* Writes s->batch[0..n) in one transaction. Records SQLite refuses for their own content (a
 * constraint, a string too big) are skipped and counted in *ret_rejected; any other error fails the
 * whole batch and closes the connection, so that the retry starts afresh. */
/* Whether the database file was removed or replaced since we opened it. SQLite in WAL mode would go
 * on writing into the removed file, and every row would be lost with it. */
static bool store_db_moved(Store *s) {
        struct stat st;

        if (stat(s->path, &st) < 0)
                return errno == ENOENT;
        return st.st_dev != s->db_stat.st_dev || st.st_ino != s->db_stat.st_ino;
}

static int store_write_batch(Store *s, size_t n, uint64_t *ret_rejected) {
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
static int store_prune_step(Store *s, uint64_t *ret_deleted) {
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

static void store_timed_wait(Store *s, int64_t until_us) {
        struct timespec ts;

        if (until_us == INT64_MAX) {
                (void) pthread_cond_wait(&s->wake, &s->lock);
                return;
        }
        ts.tv_sec = until_us / USEC_PER_SEC;
        ts.tv_nsec = (until_us % USEC_PER_SEC) * 1000;
        (void) pthread_cond_timedwait(&s->wake, &s->lock, &ts);
}

/* Called with the lock held, after a write attempt. */
/* Messages are formatted under the lock and logged after it is released (store_log_pending()). */
_printf_(4, 5) static void store_pending_log(Store *s, int level, int error, const char *format, ...) {
        va_list ap;

        if (s->n_pending >= ELEMENTSOF(s->pending))
                return;
        s->pending[s->n_pending].level = level;
        s->pending[s->n_pending].error = error;
        va_start(ap, format);
        (void) vsnprintf(s->pending[s->n_pending].text, sizeof s->pending[s->n_pending].text, format, ap);
        va_end(ap);
        s->n_pending++;
}

static void store_log_pending(Store *s) {
        FOREACH_ARRAY(p, s->pending, s->n_pending)
                (void) log_full_errno(p->level, p->error, "%s", p->text);
        s->n_pending = 0;
}

/* Called with the lock held, after a write attempt. */
static void store_account_write(Store *s, int r, size_t n, uint64_t rejected, int64_t now) {
        if (r >= 0) {
                ring_drop(&s->queue, n);
                s->stats.written += n - rejected;
                s->stats.dropped += rejected;
                if (s->stats.failing)
                        store_pending_log(
                                s,
                                LOG_NOTICE,
                                0,
                                "Database writes to %s resumed (%llu failed attempts), %zu queued.",
                                s->path,
                                (unsigned long long) s->stats.write_errors,
                                s->queue.n);
                s->stats.failing = false;
                return;
        }

        s->stats.write_errors++;
        s->stats.last_error = r;
        (void) snprintf(s->stats.last_error_text, sizeof s->stats.last_error_text, "%s", s->error_text);
        if (!s->stats.failing)
                store_pending_log(
                        s,
                        LOG_WARNING,
                        r,
                        "Database writes to %s failing, keeping up to %zu records queued and retrying: %s",
                        s->path,
                        s->opt.queue_max,
                        s->error_text);
        s->stats.failing = true;
        s->next_retry_us = usec_add(now, s->opt.retry_interval_us);
}

/* Called with the lock held: at most one message every 10 s about records that were dropped. */
static void store_account_drops(Store *s, int64_t now) {
        if (s->stats.dropped == s->dropped_logged || now < s->next_drop_log_us)
                return;
        store_pending_log(
                s,
                LOG_WARNING,
                0,
                "%" PRIu64 " attempt records could not be written to %s (queue full or refused), "
                "%" PRIu64 " in total.",
                s->stats.dropped - s->dropped_logged,
                s->path,
                s->stats.dropped);
        s->dropped_logged = s->stats.dropped;
        s->next_drop_log_us = usec_add(now, STORE_DROP_LOG_INTERVAL_US);
}

static void *store_writer(void *userdata) {
        Store *s = userdata;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                int64_t now = now_monotonic_us(), wait_until = INT64_MAX;
                uint64_t rejected = 0, deleted = 0;
                bool prune = false, prunable;
                size_t n = 0;
                int r;

                if (s->stopping && (s->queue.n == 0 || now >= s->stop_deadline_us))
                        break;

                if (s->queue.n > 0) {
                        int64_t due = usec_add(s->ring_us[s->queue.head], s->opt.commit_interval_us);

                        if (s->stats.failing)
                                due = s->next_retry_us;
                        else if (s->stopping || s->queue.n >= s->opt.batch_max)
                                due = now;
                        if (due <= now)
                                n = MIN(s->queue.n, s->opt.batch_max);
                        else
                                wait_until = due;
                }
                /* Pruning takes turns with writing, so neither stalls the other. */
                prunable = s->opt.retention_days > 0 && !s->stopping && !s->stats.failing && s->db;
                if (prunable && (s->prune_active || now >= s->next_prune_us) && (n == 0 || s->last_was_write)) {
                        prune = true;
                        n = 0;
                } else if (prunable && !s->prune_active)
                        wait_until = MIN(wait_until, s->next_prune_us);

                if (n == 0 && !prune) {
                        if (s->stopping)
                                wait_until = MIN(wait_until, s->stop_deadline_us);
                        store_timed_wait(s, wait_until);
                        continue;
                }

                for (size_t i = 0; i < n; i++)
                        s->batch[i] = ring_get(&s->queue, i);
                pthread_mutex_unlock(&s->lock);

                if (prune)
                        r = store_prune_step(s, &deleted);
                else
                        r = store_write_batch(s, n, &rejected);
                now = now_monotonic_us();

                pthread_mutex_lock(&s->lock);
                if (prune) {
                        s->last_was_write = false;
                        s->prune_active = r >= 0 && deleted >= s->opt.prune_batch;
                        if (!s->prune_active)
                                s->next_prune_us = usec_add(now, s->opt.prune_interval_us);
                        s->stats.pruned += deleted;
                        continue;
                }
                s->last_was_write = true;
                store_account_write(s, r, n, rejected, now);
                store_account_drops(s, now);
                pthread_mutex_unlock(&s->lock);

                /* Committed records are ours alone now: free them without holding up producers. */
                if (r >= 0)
                        FOREACH_ARRAY(a, s->batch, n)
                                *a = attempt_free(*a);
                store_log_pending(s);
                pthread_mutex_lock(&s->lock);
        }

        store_account_drops(s, INT64_MAX);
        s->stop_result = 0;
        if (s->queue.n > 0) {
                s->stop_result = s->stats.last_error ?: -EIO;
                store_pending_log(
                        s,
                        LOG_WARNING,
                        s->stop_result,
                        "Giving up on %zu queued attempt records, database %s is failing: %s",
                        s->queue.n,
                        s->path,
                        s->stats.last_error_text);
                s->stats.dropped += s->queue.n;
                while (s->queue.n > 0)
                        attempt_free(ring_pop(&s->queue));
        }
        pthread_mutex_unlock(&s->lock);
        store_log_pending(s);

        store_checkpointer_stop(s);
        store_db_close(s);
        return NULL;
}

static int store_start_thread(Store *s) {
        sigset_t all, saved;
        int r;

        /* Neither thread handles signals: the daemon's event loop does. */
        (void) sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = -pthread_create(&s->ckpt_thread, NULL, store_checkpointer, s);
        if (r >= 0) {
                s->ckpt_started = true;
                r = -pthread_create(&s->thread, NULL, store_writer, s);
        }
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r < 0)
                return r;
        /* top -H, ps -L */
        (void) pthread_setname_np(s->ckpt_thread, "tlsw-checkpoint");
        (void) pthread_setname_np(s->thread, "tlsw-store");
        s->thread_started = true;
        return 0;
}

static int store_options_check(const StoreOptions *o) {
        if (o->queue_max == 0 || o->batch_max == 0 || o->batch_max > o->queue_max || o->prune_batch == 0 ||
            o->checkpoint_pages == 0 || o->checkpoint_pages > INT_MAX / 4 || o->commit_interval_us < 0 ||
            o->retry_interval_us < 0 || o->stop_timeout_us < 0 || o->busy_timeout_ms < 0 ||
            o->retention_days > STORE_RETENTION_DAYS_MAX || o->prune_interval_us < 0 ||
            o->queue_max > SIZE_MAX / sizeof(Attempt *))
                return -EINVAL;
        return 0;
}

int store_open(const char *path, const StoreOptions *options, Store **ret_store, char **ret_error) {
        _cleanup_(store_freep) Store *s = NULL;
        pthread_condattr_t attr;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!path || !ret_store)
                return -EINVAL;
        if (options && store_options_check(options) < 0)
                return store_error(ret_error, -EINVAL, "Invalid store options");

        s = calloc(1, sizeof *s);
        if (!s)
                return store_error(ret_error, -ENOMEM, "Out of memory");
        s->opt = options ? *options : STORE_OPTIONS_DEFAULT;
        pthread_mutex_init(&s->lock, NULL);
        (void) pthread_condattr_init(&attr);
        (void) pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s->wake, &attr);
        (void) pthread_condattr_destroy(&attr);
        pthread_mutex_init(&s->ckpt_lock, NULL);
        pthread_cond_init(&s->ckpt_wake, NULL);

        s->path = strdup(path);
        s->insert_sql = attempt_insert_sql();
        r = ring_init(&s->queue, s->opt.queue_max);
        if (r < 0)
                return store_error(ret_error, r, "Out of memory");
        s->ring_us = calloc(s->opt.queue_max, sizeof *s->ring_us);
        s->batch = calloc(s->opt.batch_max, sizeof *s->batch);
        if (!s->path || !s->insert_sql || !s->ring_us || !s->batch)
                return store_error(ret_error, -ENOMEM, "Out of memory");

        r = store_db_open(s, ret_error);
        if (r < 0)
                return r;
        s->next_prune_us = now_monotonic_us();

        r = store_start_thread(s);
        if (r < 0)
                return store_error(
                        ret_error, r, "Failed to start the database writer thread: %s", strerror(-r));

        *ret_store = TAKE_PTR(s);
        return 0;
}

int store_enqueue(Store *s, Attempt *a) {
        int64_t now = now_monotonic_us();
        int r = 0;

        if (!s || !a) {
                attempt_free(a);
                return -EINVAL;
        }

        pthread_mutex_lock(&s->lock);
        if (!outcome_to_string(a->outcome) || !handshake_step_to_string(a->state_reached))
                r = -EINVAL;
        else if (s->stopping || !s->thread_started)
                r = -ESHUTDOWN;
        else if (ring_full(&s->queue))
                r = -ENOBUFS;
        else {
                s->ring_us[ring_push(&s->queue, a)] = now;
                /* The writer sleeps until the head is due; wake it for a new head or a full batch. */
                if (s->queue.n == 1 || s->queue.n == s->opt.batch_max)
                        pthread_cond_signal(&s->wake);
        }
        if (r < 0)
                s->stats.dropped++;
        pthread_mutex_unlock(&s->lock);

        if (r < 0)
                attempt_free(a);
        return r;
}

void store_get_stats(Store *s, StoreStats *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = s->stats;
        ret->queued = s->queue.n;
        pthread_mutex_unlock(&s->lock);
}

int store_stats_format(const StoreStats *st, char *buf, size_t size) {
        int n;

        if (st->failing) {
                errno = -st->last_error;
                n = snprintf(
                        buf,
                        size,
                        "database writes failing (%m: %s): %" PRIu64 " queued, %" PRIu64 " dropped",
                        st->last_error_text,
                        st->queued,
                        st->dropped);
        } else if (st->dropped > 0)
                n = snprintf(
                        buf,
                        size,
                        "database: %" PRIu64 " stored, %" PRIu64 " queued, %" PRIu64 " dropped",
                        st->written,
                        st->queued,
                        st->dropped);
        else
                n = snprintf(
                        buf, size, "database: %" PRIu64 " stored, %" PRIu64 " queued", st->written, st->queued);
        return n < 0 ? -EIO : (size_t) n >= size ? -ENOBUFS : 0;
}

int store_stop(Store *s) {
        if (!s)
                return 0;

        pthread_mutex_lock(&s->lock);
        if (!s->thread_started) {
                pthread_mutex_unlock(&s->lock);
                return s->stop_result;
        }
        if (!s->stopping) {
                s->stopping = true;
                s->stop_deadline_us = usec_add(now_monotonic_us(), s->opt.stop_timeout_us);
        }
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);

        (void) pthread_join(s->thread, NULL);
        pthread_mutex_lock(&s->lock);
        s->thread_started = false;
        pthread_mutex_unlock(&s->lock);
        return s->stop_result;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        (void) store_stop(s);
        store_checkpointer_stop(s);
        store_db_close(s);
        while (s->queue.n > 0)
                attempt_free(ring_pop(&s->queue));
        ring_done(&s->queue);
        free(s->ring_us);
        free(s->batch);
        free(s->path);
        free(s->insert_sql);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->ckpt_wake);
        pthread_mutex_destroy(&s->ckpt_lock);
        free(s);
        return NULL;
}
