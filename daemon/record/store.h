/* SPDX-License-Identifier: MIT */
#pragma once

/* The SQLite store: one writer thread fed by a bounded queue of finished attempt records.
 *
 * store_enqueue() never waits on SQLite: it takes a mutex that the writer holds only to move
 * pointers, appends the record and returns. The writer commits a batch when batch_max records are
 * waiting or when the oldest waiting record is commit_interval old, whichever comes first, in one
 * transaction (WAL, synchronous=NORMAL, so readers never block it). When the database fails (disk
 * full, read-only, locked, I/O error, out of memory) the records stay queued up to the queue bound,
 * the writer closes the connection and retries every retry_interval with a fresh one, counts the
 * failures, logs a warning once when writing stops and a notice when it resumes. Records that do not
 * fit into the queue are freed and counted as dropped. A database file removed or replaced while
 * running is noticed before the next batch and opened (created, migrated) anew. Old rows are pruned
 * in small batches between write batches. WAL checkpoints run on a thread and connection of their own,
 * so that the writer goes on committing while the database file is written and synced. Functions return 0 or
 * a negative errno; SQLite's codes stay inside record/ (sqlite-util.h).
 * The store only writes: tlsreport reads the database (attempt-sql.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attempt.h"

typedef struct Store Store;

/* 100 years: keeps the cutoff arithmetic far from overflow. --retention-days takes no more. */
#define STORE_RETENTION_DAYS_MAX 36500u

typedef struct StoreOptions {
        size_t queue_max;           /* records waiting (including the batch being written); default 32768 */
        size_t batch_max;           /* records per transaction; default 8192 */
        int64_t commit_interval_us; /* longest a record waits before its batch is committed; default 200 ms */
        int64_t retry_interval_us;  /* after a failed write; default 1 s */
        int64_t stop_timeout_us;    /* how long store_stop() retries a failing database; default 10 s */
        int64_t busy_timeout_ms;    /* SQLite busy timeout on the writer's connection; default 1000 */
        unsigned retention_days; /* rows older than this are pruned; 0 keeps everything; default 30; at most
                                  * STORE_RETENTION_DAYS_MAX */
        int64_t prune_interval_us; /* a pruning pass starts at most this often; default 60 s */
        size_t prune_batch;        /* rows deleted per pruning transaction; default 1000 */
        unsigned checkpoint_pages; /* WAL size that wakes the checkpointer thread; default 4096 */
} StoreOptions;

#define STORE_OPTIONS_DEFAULT                              \
        ((StoreOptions){                                   \
                .queue_max = 32768,                        \
                .batch_max = 8192,                         \
                .commit_interval_us = 200 * USEC_PER_MSEC, \
                .retry_interval_us = 1 * USEC_PER_SEC,     \
                .stop_timeout_us = 10 * USEC_PER_SEC,      \
                .busy_timeout_ms = 1000,                   \
                .retention_days = 30,                      \
                .prune_interval_us = 60 * USEC_PER_SEC,    \
                .prune_batch = 1000,                       \
                .checkpoint_pages = 4096,                  \
        })

typedef struct StoreStats {
        uint64_t written; /* rows committed */
        uint64_t queued;  /* records waiting now, including a batch being written */
        uint64_t dropped; /* records that will never be written: queue full, rejected, given up at stop */
        uint64_t write_errors;     /* failed attempts to open the database or to commit a batch */
        uint64_t pruned;           /* rows deleted by retention */
        uint64_t checkpoints;      /* WAL checkpoints completed by the checkpointer thread */
        bool failing;              /* the last write attempt failed */
        int last_error;            /* negative errno of the last failure, 0 if none yet */
        char last_error_text[256]; /* SQLite's message for it, "" if none yet */
} StoreStats;

/* Opens (creating the file 0640 and its directory 0750 if needed) and migrates the database, then
 * starts the writer thread. options may be NULL for the defaults. On failure returns a negative errno
 * and, if ret_error is not NULL, a malloc'ed human-readable reason in *ret_error (e.g. the database
 * is newer than this program, naming both schema versions). */
int store_open(const char *path, const StoreOptions *options, Store **ret_store, char **ret_error);

/* A row id for a record enqueued later (store_enqueue() takes one for a record without): the store, not
 * SQLite, numbers the rows, so that a row can be named before it is written (tlswatchd --backend says it
 * to the backend). Ids grow; an id whose record is dropped is a gap. store_enqueue() numbers a record
 * without an id under the queue's lock, so that rows are written in the order of their ids (tlsreport -f
 * reads the rows after the last id it saw); a reserved id is out of that order if another record is
 * enqueued between its reservation and its own store_enqueue(). With another writer on the same
 * database, an id it took first is replaced by a new one when the row is written (the row is kept; who
 * was told the reserved id was told a wrong one). Thread-safe. */
int64_t store_reserve_id(Store *s);

/* Takes ownership of a. Never blocks on the database. Returns 0 when queued; -ENOBUFS when the
 * queue is full, -ESHUTDOWN after store_stop(), -EINVAL for a record with an invalid outcome or
 * state: in these cases a is freed and counted as dropped. */
int store_enqueue(Store *s, Attempt *a);
/* The same, and the row id the record was given in *ret_id (0 when it was dropped): the journal entry of
 * the record names its row (TLSWATCH_ID) without the id being taken out of the queue's order. */
int store_enqueue_id(Store *s, Attempt *a, int64_t *ret_id);

void store_get_stats(Store *s, StoreStats *ret);

/* A short line for systemd's STATUS=, e.g. "database: 1234 stored, 3 queued" or
 * "database writes failing (No space left on device: database or disk is full): 812 queued, 0 dropped". */
int store_stats_format(const StoreStats *st, char *buf, size_t size);

/* Writes every queued record (retrying a failing database for up to stop_timeout), then stops the
 * writer. Returns 0 when everything was written, otherwise the last error (the records that could not
 * be written are counted as dropped). Idempotent. */
int store_stop(Store *s);

/* Stops (as store_stop()) if needed and frees everything. NULL-safe, returns NULL. */
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);
