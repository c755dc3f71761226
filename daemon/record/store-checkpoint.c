/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "sqlite-util.h"
#include "store-private.h"

/* Checkpoints (copying the WAL into the database file, then two fsyncs) run on a thread and connection of
 * their own, so that the writer goes on inserting meanwhile: inline, they stalled the writer for up to
 * ~0.7 s on this machine's disk, long enough for the queue to overflow at 40,000 records/s. The writer
 * wakes the checkpointer once the WAL holds opt.checkpoint_pages pages (by default 64 MiB at 16 KiB
 * pages), and checkpoints inline itself only if the WAL grows to four times that anyway (the
 * checkpointer failing, say on a full disk).
 *
 * The WAL hook: called by SQLite on the writer's connection after each commit, with the WAL's size in
 * pages. */
int store_wal_hook(void *userdata, sqlite3 *db, const char *schema, int pages) {
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

void *store_checkpointer(void *userdata) {
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
void store_checkpointer_stop(Store *s) {
        if (!s->ckpt_started)
                return;
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stopping = true;
        pthread_cond_signal(&s->ckpt_wake);
        pthread_mutex_unlock(&s->ckpt_lock);
        (void) pthread_join(s->ckpt_thread, NULL);
        s->ckpt_started = false;
}
