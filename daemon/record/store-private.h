/* SPDX-License-Identifier: MIT */
#pragma once

/* The store's parts (store.h): store-schema.c (the schema version and the migrations), store-db.c (the
 * writer's connection: opening, statements, writing a batch, pruning), store-checkpoint.c (the checkpointer
 * thread), store-writer.c (the queue, the writer thread, opening and stopping the store), store-stats.c. */

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "ring.h"
#include "store.h"

#define STORE_FILE_MODE 0640
#define STORE_DIRECTORY_MODE 0750
#define STORE_DROP_LOG_INTERVAL_US (10 * USEC_PER_SEC)

#define sizeof_field(type, member) sizeof(((type *) 0)->member)

enum {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_INSERT,
        STMT_PRUNE,
        _STMT_MAX,
};

struct Store {
        char *path;
        char *insert_sql;
        StoreOptions opt;

        /* the next row id (store_reserve_id()): ids are ours, not SQLite's, so that a row can be named
         * before it is written; at least the largest in the database plus one (store_db_open()) */
        atomic_int_fast64_t next_id;

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

static inline int64_t now_monotonic_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* a + b for times, saturating instead of overflowing (b >= 0). */
static inline int64_t usec_add(int64_t a, int64_t b) {
        return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* store-schema.c */
int store_exec(sqlite3 *db, const char *sql);
/* Reads the schema version and refuses a database newer than us. */
int store_check_version(sqlite3 *db, const char *path, unsigned *ret_version, char **ret_error);
/* Applies the missing migrations, each in its own transaction. */
int store_migrate(sqlite3 *db, const char *path, char **ret_error);

/* store-db.c */
/* Sets *ret_error (if not NULL) to a formatted reason, logs it at debug level, returns r. */
_printf_(3, 4) int store_error(char **ret_error, int r, const char *format, ...);
int store_db_open(Store *s, char **ret_error);
void store_db_close(Store *s);
int store_write_batch(Store *s, size_t n, uint64_t *ret_rejected);
int store_prune_step(Store *s, uint64_t *ret_deleted);

/* store-checkpoint.c */
int store_wal_hook(void *userdata, sqlite3 *db, const char *schema, int pages);
void *store_checkpointer(void *userdata);
void store_checkpointer_stop(Store *s);
