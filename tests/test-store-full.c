/* SPDX-License-Identifier: MIT */
/* The store on a full filesystem: run by test-store-full.sh with a directory on a small, private
 * tmpfs. Fill the filesystem, keep queueing records (store_enqueue never blocks), watch the writes
 * fail and be counted with nothing dropped, free the space, and check that writing resumes and every
 * queued record reaches the database. */
#include <fcntl.h>
#include <sqlite3.h>
#include <time.h>

#include "store.h"
#include "tap.h"

enum {
        BEFORE = 100,
        DURING = 2000,
};

static int64_t mono_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

#define POLL(cond)                                                  \
        ({                                                          \
                int64_t _deadline_ = mono_us() + 20 * USEC_PER_SEC; \
                bool _ok_;                                          \
                while (!(_ok_ = (cond)) && mono_us() < _deadline_)  \
                        (void) usleep(5000);                        \
                _ok_;                                               \
        })

static Attempt *make_attempt(unsigned i) {
        Attempt *a = attempt_new();
        char ua[1024];

        if (!a)
                abort();
        a->started_us = now_realtime_us();
        a->ended_us = a->started_us + 1500;
        (void) snprintf(a->peer_addr, sizeof a->peer_addr, "198.51.100.%u", i % 250);
        (void) snprintf(a->local_addr, sizeof a->local_addr, "127.0.0.1");
        a->outcome = OUTCOME_OK;
        a->state_reached = STEP_DONE;
        a->ja4 = strdup("t13d1517h2_8daaf6152771_cb7bf5808d99");
        /* about 1 KB per record, so that the records need new pages */
        memset(ua, 'a' + (int) (i % 26), sizeof ua);
        if (!a->ja4 || raw_string_set(&a->user_agent, ua, sizeof ua) < 0)
                abort();
        return a;
}

/* Writes zeros into path until the filesystem is full. Returns the bytes written. */
static int64_t fill(const char *path) {
        static char block[64 * 1024];
        int64_t total = 0;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ssize_t n;

        if (fd < 0)
                return -1;
        for (size_t size = sizeof block; size > 0;) {
                n = write(fd, block, size);
                if (n > 0)
                        total += n;
                else
                        size /= 2; /* down to the last byte */
        }
        safe_close(fd);
        return total;
}

static int64_t db_rows_ok(const char *path) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;
        int64_t rows = -1;

        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW && streq_ptr((const char *) sqlite3_column_text(st, 0), "ok")) {
                sqlite3_finalize(st);
                st = NULL;
                if (sqlite3_prepare_v2(db, "SELECT count(*) FROM attempts", -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW)
                        rows = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return rows;
}

int main(int argc, char **argv) {
        StoreOptions o = STORE_OPTIONS_DEFAULT;
        _cleanup_free_ char *error = NULL;
        char db[512], filler[512], status[512];
        Store *s = NULL;
        int64_t filled, worst = 0;
        unsigned refused = 0;
        StoreStats st;

        if (argc != 2)
                return printf("Bail out! usage: test-store-full DIRECTORY-ON-A-SMALL-TMPFS\n"), 1;
        (void) snprintf(db, sizeof db, "%s/state/tlswatch.db", argv[1]);
        (void) snprintf(filler, sizeof filler, "%s/filler", argv[1]);

        o.retry_interval_us = 50 * USEC_PER_MSEC;
        if (!ok(store_open(db, &o, &s, &error) == 0, "store_open on the small tmpfs"))
                return diag("%s", strna(error)), tap_done();
        for (unsigned i = 0; i < BEFORE; i++)
                (void) store_enqueue(s, make_attempt(i));
        ok(POLL((store_get_stats(s, &st), st.written == BEFORE)), "records written while there is space");

        filled = fill(filler);
        ok(filled > 0, "filesystem filled up (%" PRId64 " bytes)", filled);

        for (unsigned i = 0; i < DURING; i++) {
                int64_t t0 = mono_us();

                refused += store_enqueue(s, make_attempt(i)) != 0;
                worst = MAX(worst, mono_us() - t0);
        }
        is_int(refused, 0, "store_enqueue accepts every record while the disk is full");
        diag("slowest store_enqueue: %" PRId64 " us", worst);
        ok(POLL((store_get_stats(s, &st), st.failing && st.write_errors >= 2)), "writes fail and are retried");
        is_int(st.last_error, -ENOSPC, "the error is ENOSPC");
        diag("last error: %s", st.last_error_text);
        ok(st.queued > 0 && st.written + st.queued == BEFORE + DURING, "records not written stay queued");
        is_int(st.dropped, 0, "nothing dropped");
        ok(store_stats_format(&st, status, sizeof status) == 0 && strstr(status, "failing"),
           "status: %s",
           status);

        ok(unlink(filler) == 0, "free the space");
        ok(POLL((store_get_stats(s, &st), st.written == BEFORE + DURING)),
           "writing resumes, every record written");
        ok(!st.failing && st.queued == 0 && st.dropped == 0, "not failing, nothing queued or dropped");
        is_int(store_stop(s), 0, "store_stop");
        s = store_free(s);
        is_int(db_rows_ok(db), BEFORE + DURING, "database passes integrity_check and holds every row");
        return tap_done();
}
