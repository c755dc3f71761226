/* SPDX-License-Identifier: MIT */
/* The queue and the writer thread: records wait in the queue until their batch is due, the writer writes
 * them (store-db.c) and takes turns with pruning; opening and stopping the store. */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>

#include "attempt-sql.h"
#include "log.h"
#include "store-private.h"

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
        atomic_init(&s->next_id, 1);
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

int64_t store_reserve_id(Store *s) {
        return atomic_fetch_add(&s->next_id, 1);
}

int store_enqueue(Store *s, Attempt *a) {
        return store_enqueue_id(s, a, NULL);
}

int store_enqueue_id(Store *s, Attempt *a, int64_t *ret_id) {
        int64_t now = now_monotonic_us(), id = 0;
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
                /* under the lock: the queue's order, which is the order of the INSERTs, is the ids' order
                 * (tlsreport -f reads the rows after the last id it saw) */
                if (a->id <= 0)
                        a->id = store_reserve_id(s);
                id = a->id; /* a is the writer's once the lock is let go */
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
        if (ret_id)
                *ret_id = id;
        return r;
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
