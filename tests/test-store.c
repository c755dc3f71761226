/* SPDX-License-Identifier: MIT */
/* The store against real SQLite in a temporary directory: exact round trip of every column, batch
 * timing, migrations, refusal of a newer database, a locked and a read-only database, queue overflow,
 * flush on stop, WAL readers, retention. */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <linux/capability.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "attempt-sql.h"
#include "schema.h"
#include "store.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-store-XXXXXX";
static char dbpath[256];
static int64_t base_us;
static bool dac_dropped;

static const char raw_sni[] = "a\0b\xff\xfe\x01host";      /* NUL, invalid UTF-8, a control byte */
static const char raw_ua[] = "curl/8.0\0\x1b[31m\xc3\x28"; /* NUL, ESC, invalid UTF-8 */

static void sleep_ms(unsigned ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};

        (void) nanosleep(&ts, NULL);
}

static int64_t mono_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *xstrdup(const char *s) {
        char *p = strdup(s);

        if (!p)
                abort();
        return p;
}

/* Record i of a test run: every column filled in some records, NULL in others. */
static Attempt *make_attempt(unsigned i, int64_t started_us) {
        Attempt *a = attempt_new();
        char buf[128];

        if (!a)
                abort();
        a->started_us = started_us;
        a->ended_us = started_us + 12345 + i;
        if (i % 2)
                (void) snprintf(a->peer_addr, sizeof a->peer_addr, "192.0.2.%u", i % 7);
        else
                (void) snprintf(a->peer_addr, sizeof a->peer_addr, "2001:db8::%x", i % 7);
        a->peer_port = (uint16_t) (40000 + i % 20000);
        (void) snprintf(a->local_addr, sizeof a->local_addr, "%s", i % 2 ? "127.0.0.1" : "::1");
        a->local_port = 8443;
        a->outcome = (Outcome) (i % _OUTCOME_MAX);
        a->state_reached = (HandshakeStep) (i % _STEP_MAX);
        a->alert_received = i % 3 == 0 ? -1 : i % 7 == 1 ? 0 : 46;
        a->alert_sent = i % 5 == 0 ? 70 : -1;
        a->tls_error = i % 2 ? -30592 : 0;
        a->error_text = i % 4 ? xstrdup("fatal alert received") : NULL;
        a->offered_versions = xstrdup("TLSv1.3,TLSv1.2");
        if (i % 3 != 1) {
                a->version = xstrdup("TLSv1.3");
                a->cipher = xstrdup("TLS_AES_128_GCM_SHA256");
        }
        if (i % 5 == 0)
                ; /* no SNI */
        else if (i % 7 == 0)
                (void) raw_string_set(&a->sni, "", 0);
        else if (i % 2)
                (void) raw_string_set(&a->sni, raw_sni, sizeof raw_sni - 1);
        else {
                (void) snprintf(buf, sizeof buf, "host%u.example", i);
                (void) raw_string_set(&a->sni, buf, strlen(buf));
        }
        (void) raw_string_set(&a->alpn_offered, "h2,http/1.1", 11);
        if (i % 3 == 0)
                (void) raw_string_set(&a->alpn, "h2", 2);
        (void) snprintf(buf, sizeof buf, "%032x", i);
        a->ja3 = xstrdup(buf);
        a->ja3_full = xstrdup("771,4865-4866-4867-49195-49199,0-23-65281-10-11-35-16-5-13-18-51-45-43-27-"
                              "17513,29-23-24,0");
        a->ja4 = xstrdup("t13d1517h2_8daaf6152771_cb7bf5808d99");
        a->ja4_r = xstrdup("t13d1517h2_002f,0035,009c_0005,000a,000b_0403,0804");
        a->ja4_o = xstrdup("t13d1517h2_acb858a92679_e7c1e2f9d5a1");
        a->ja4_ro = xstrdup("t13d1517h2_1301,1302_0000,0017_0403");
        a->ja4_stable = i % 9 ? xstrdup("t13d15_8daaf6152771_02713d6af862") : NULL;
        a->hello_retry = i % 11 == 0;
        a->resumed = i % 13 == 0;
        a->bytes_in = 517 + i;
        a->bytes_out = i == 5 ? UINT64_MAX : 2400 + i; /* clamped to INT64_MAX */
        a->http_requests = i % 4;
        if (i % 2)
                (void) raw_string_set(&a->user_agent, raw_ua, sizeof raw_ua - 1);
        return a;
}

static sqlite3 *db_open(const char *path) {
        sqlite3 *db = NULL;

        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
                abort();
        sqlite3_busy_timeout(db, 5000);
        return db;
}

static int64_t db_int(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st = NULL;
        int64_t v = -1;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static int64_t count_rows(const char *path) {
        sqlite3 *db = db_open(path);
        int64_t n = db_int(db, "SELECT count(*) FROM attempts");

        sqlite3_close(db);
        return n;
}

/* Compares one column with the expected bytes (NULL data: the column must be SQL NULL). */
static bool col_text(sqlite3_stmt *st, int i, const void *data, size_t len, const char **ret_bad) {
        if (!data) {
                if (sqlite3_column_type(st, i) == SQLITE_NULL)
                        return true;
        } else if (
                sqlite3_column_type(st, i) == SQLITE_TEXT && (size_t) sqlite3_column_bytes(st, i) == len &&
                (len == 0 || memcmp(sqlite3_column_blob(st, i), data, len) == 0))
                return true;
        *ret_bad = sqlite3_column_name(st, i);
        return false;
}

static bool col_str(sqlite3_stmt *st, int i, const char *s, const char **ret_bad) {
        return col_text(st, i, s, s ? strlen(s) : 0, ret_bad);
}

static bool col_int(sqlite3_stmt *st, int i, bool null, int64_t v, const char **ret_bad) {
        if (null ? sqlite3_column_type(st, i) == SQLITE_NULL
                 : sqlite3_column_type(st, i) == SQLITE_INTEGER && sqlite3_column_int64(st, i) == v)
                return true;
        *ret_bad = sqlite3_column_name(st, i);
        return false;
}

/* Checks every column of row id against want; returns the name of the first wrong column or NULL. */
static const char *row_mismatch(sqlite3 *db, int64_t id, const Attempt *want) {
        const char *bad = NULL;
        sqlite3_stmt *st = NULL;
        int i = 0;

        if (sqlite3_prepare_v2(
                    db,
                    "SELECT started_us, ended_us, peer_addr, peer_port, local_addr, local_port, outcome, "
                    "state_reached, alert_received, alert_sent, tls_error, error_text, offered_versions, "
                    "version, cipher, sni, alpn_offered, alpn, ja3, ja3_full, ja4, ja4_r, ja4_o, ja4_ro, "
                    "ja4_stable, hello_retry, resumed, bytes_in, bytes_out, http_requests, user_agent "
                    "FROM attempts WHERE id = ?",
                    -1,
                    &st,
                    NULL) != SQLITE_OK)
                return "prepare";
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_finalize(st);
                return "missing row";
        }
        (void) (col_int(st, i++, false, want->started_us, &bad) &&
                col_int(st, i++, false, want->ended_us, &bad) && col_str(st, i++, want->peer_addr, &bad) &&
                col_int(st, i++, false, want->peer_port, &bad) && col_str(st, i++, want->local_addr, &bad) &&
                col_int(st, i++, false, want->local_port, &bad) &&
                col_str(st, i++, outcome_to_string(want->outcome), &bad) &&
                col_str(st, i++, handshake_step_to_string(want->state_reached), &bad) &&
                col_int(st, i++, want->alert_received < 0, want->alert_received, &bad) &&
                col_int(st, i++, want->alert_sent < 0, want->alert_sent, &bad) &&
                col_int(st, i++, want->tls_error == 0, want->tls_error, &bad) &&
                col_str(st, i++, want->error_text, &bad) && col_str(st, i++, want->offered_versions, &bad) &&
                col_str(st, i++, want->version, &bad) && col_str(st, i++, want->cipher, &bad) &&
                col_text(st, i++, want->sni.data, want->sni.len, &bad) &&
                col_text(st, i++, want->alpn_offered.data, want->alpn_offered.len, &bad) &&
                col_text(st, i++, want->alpn.data, want->alpn.len, &bad) &&
                col_str(st, i++, want->ja3, &bad) && col_str(st, i++, want->ja3_full, &bad) &&
                col_str(st, i++, want->ja4, &bad) && col_str(st, i++, want->ja4_r, &bad) &&
                col_str(st, i++, want->ja4_o, &bad) && col_str(st, i++, want->ja4_ro, &bad) &&
                col_str(st, i++, want->ja4_stable, &bad) && col_int(st, i++, false, want->hello_retry, &bad) &&
                col_int(st, i++, false, want->resumed, &bad) &&
                col_int(st, i++, false, (int64_t) want->bytes_in, &bad) &&
                col_int(st, i++, false, want->bytes_out > INT64_MAX ? INT64_MAX : (int64_t) want->bytes_out, &bad) &&
                col_int(st, i++, false, want->http_requests, &bad) &&
                col_text(st, i++, want->user_agent.data, want->user_agent.len, &bad));
        sqlite3_finalize(st);
        return bad;
}

static void *mfree(void *p) {
        free(p);
        return NULL;
}

static bool raw_eq(const RawString *a, const RawString *b) {
        if (!a->data || !b->data)
                return a->data == b->data;
        return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static bool attempt_eq(const Attempt *a, const Attempt *b) {
        return a->started_us == b->started_us && a->ended_us == b->ended_us &&
                streq(a->peer_addr, b->peer_addr) && a->peer_port == b->peer_port &&
                streq(a->local_addr, b->local_addr) && a->local_port == b->local_port &&
                a->outcome == b->outcome && a->state_reached == b->state_reached &&
                a->alert_received == b->alert_received && a->alert_sent == b->alert_sent &&
                a->tls_error == b->tls_error && streq_ptr(a->error_text, b->error_text) &&
                streq_ptr(a->offered_versions, b->offered_versions) && streq_ptr(a->version, b->version) &&
                streq_ptr(a->cipher, b->cipher) && raw_eq(&a->sni, &b->sni) &&
                raw_eq(&a->alpn_offered, &b->alpn_offered) && raw_eq(&a->alpn, &b->alpn) &&
                streq_ptr(a->ja3, b->ja3) && streq_ptr(a->ja3_full, b->ja3_full) &&
                streq_ptr(a->ja4, b->ja4) && streq_ptr(a->ja4_r, b->ja4_r) && streq_ptr(a->ja4_o, b->ja4_o) &&
                streq_ptr(a->ja4_ro, b->ja4_ro) && streq_ptr(a->ja4_stable, b->ja4_stable) &&
                a->hello_retry == b->hello_retry && a->resumed == b->resumed && a->bytes_in == b->bytes_in &&
                a->http_requests == b->http_requests && raw_eq(&a->user_agent, &b->user_agent);
}

static StoreOptions test_options(void) {
        StoreOptions o = STORE_OPTIONS_DEFAULT;

        o.retry_interval_us = 50 * USEC_PER_MSEC;
        o.busy_timeout_ms = 50;
        o.stop_timeout_us = 5 * USEC_PER_SEC;
        o.retention_days = 0;
        return o;
}

static void fresh_db(const char *name) {
        (void) snprintf(dbpath, sizeof dbpath, "%s/%s/tlswatch.db", tmpdir, name);
}

/* Polls cond for up to 10 s: generous, so that a slow machine does not fail the test. */
#define POLL(cond)                                                 \
        ({                                                         \
                int64_t _deadline_ = mono_ms() + 10000;            \
                bool _ok_;                                         \
                while (!(_ok_ = (cond)) && mono_ms() < _deadline_) \
                        sleep_ms(5);                               \
                _ok_;                                              \
        })

static void test_roundtrip(void) {
        enum { N = 2500 };
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *error = NULL;
        unsigned bad_rows = 0, queued = 0;
        const char *first_bad = NULL;
        Attempt *recent[5] = {};
        StoreStats st;
        size_t n_recent = 0;
        struct stat sb;
        sqlite3 *db;

        diag("round trip of every column");
        fresh_db("roundtrip/sub");
        is_int(store_open(dbpath, &o, &s, &error), 0, "store_open creates the database and its directories");
        if (!s) {
                diag("%s", strna(error));
                return;
        }
        ok(stat(dbpath, &sb) == 0 && (sb.st_mode & 07777) == 0640, "database file is 0640");
        for (unsigned i = 0; i < N; i++)
                queued += store_enqueue(s, make_attempt(i, base_us + i * 1000)) == 0;
        is_int(queued, N, "all records queued");
        is_int(store_stop(s), 0, "store_stop succeeds");
        store_get_stats(s, &st);
        is_int(st.written, N, "written counter");
        is_int(st.dropped, 0, "nothing dropped");
        is_int(st.write_errors, 0, "no write errors");
        is_int(st.queued, 0, "nothing queued after stop");
        is_int(store_enqueue(s, make_attempt(0, base_us)), -ESHUTDOWN, "enqueue after stop is refused");

        db = db_open(dbpath);
        is_int(db_int(db, "SELECT count(*) FROM attempts"), N, "exactly N rows");
        is_int(db_int(db, "PRAGMA user_version"), schema_version, "schema version is current");
        is_int(db_int(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1, "WAL mode");
        for (unsigned i = 0; i < N; i++) {
                _cleanup_(attempt_freep) Attempt *want = make_attempt(i, base_us + i * 1000);
                const char *bad = row_mismatch(db, i + 1, want);

                if (bad) {
                        if (!first_bad)
                                diag("row %u: first wrong column %s", i + 1, bad);
                        first_bad = bad;
                        bad_rows++;
                }
        }
        is_int(bad_rows, 0, "every column of every row has exactly the values written");
        is_int(db_int(db, "SELECT bytes_out FROM attempts WHERE id = 6"),
               INT64_MAX,
               "bytes beyond INT64_MAX clamp");

        /* The views, in a fixed time zone. */
        setenv("TZ", "UTC", 1);
        tzset();
        {
                sqlite3_stmt *v = NULL;

                ok(sqlite3_prepare_v2(
                           db,
                           "SELECT started, alert_received_name, alert_sent_name, sni, tls_error_hex, peer, "
                           "user_agent FROM attempts_local WHERE id = 2",
                           -1,
                           &v,
                           NULL) == SQLITE_OK &&
                           sqlite3_step(v) == SQLITE_ROW,
                   "attempts_local view");
                /* id 2 is record 1: started base_us + 1000, alert_received 0, alert_sent none, raw SNI. */
                is_str((const char *) sqlite3_column_text(v, 0), "2026-11-27 10:00:00.001", "local start time");
                is_str((const char *) sqlite3_column_text(v, 1), "close_notify", "alert 0 named, not NULL");
                ok(sqlite3_column_type(v, 2) == SQLITE_NULL, "no alert sent: NULL name");
                is_str((const char *) sqlite3_column_text(v, 3),
                       "x'610062FFFE01686F7374'",
                       "hostile SNI shown as hex");
                is_str((const char *) sqlite3_column_text(v, 4), "-0x7780", "Mbed TLS error in hex");
                is_str((const char *) sqlite3_column_text(v, 5), "192.0.2.1:40001", "peer address and port");
                is_str((const char *) sqlite3_column_text(v, 6),
                       "x'6375726C2F382E30001B5B33316DC328'",
                       "hostile User-Agent shown as hex");
                sqlite3_finalize(v);
        }
        is_int(db_int(db, "SELECT count(*) FROM failures"),
               N - (N + _OUTCOME_MAX - 1) / _OUTCOME_MAX,
               "failures view: all but ok");
        is_int(db_int(db, "SELECT count(*) FROM attempts_local WHERE sni = 'host2.example'"),
               1,
               "plain SNI as is");
        is_int(db_int(db, "SELECT sum(attempts) FROM clients"), N, "clients view counts every attempt");
        sqlite3_close(db);

        /* Reading back through the shared row reader (attempt-sql.h), as tlsreport does. */
        {
                AttemptSelect sel;
                char cols[1024], sql[1200];
                sqlite3_stmt *q = NULL;

                ok(attempt_select_init(&sel, ATTEMPT_COLUMNS_ALL, cols, sizeof cols) > 0,
                   "select every column");
                (void) snprintf(
                        sql,
                        sizeof sql,
                        "SELECT %s FROM attempts WHERE peer_addr = '192.0.2.1' AND started_us >= %" PRId64
                        " ORDER BY started_us DESC LIMIT 5",
                        cols,
                        base_us + 1000);
                db = db_open(dbpath);
                ok(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK, "prepare the read");
                while (q && n_recent < 5 && sqlite3_step(q) == SQLITE_ROW) {
                        Attempt a;

                        attempt_row_read(q, &sel, &a);
                        if (attempt_dup(&a, &recent[n_recent]) < 0)
                                break;
                        n_recent++;
                }
                sqlite3_finalize(q);
                sqlite3_close(db);
        }
        is_int(n_recent, 5, "at most max records");
        if (n_recent == 5) {
                /* 192.0.2.1 is i odd with i % 7 == 1: i = 2493 is the newest. */
                _cleanup_(attempt_freep) Attempt *want = make_attempt(2493, base_us + 2493 * 1000);

                ok(attempt_eq(recent[0], want), "newest first, every field read back, raw bytes kept");
                is_int(recent[0]->id, 2494, "id read back");
                ok(recent[1]->started_us < recent[0]->started_us, "ordered newest first");
        }
        FOREACH_ARRAY(a, recent, n_recent)
                attempt_free(*a);
}

static void test_batch_timing(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        int64_t t0, elapsed;
        StoreStats st;

        diag("a single record is committed after commit_interval (200 ms)");
        fresh_db("timing");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        t0 = mono_ms();
        is_int(store_enqueue(s, make_attempt(1, base_us)), 0, "enqueue one record");
        ok(POLL(count_rows(dbpath) == 1), "the record appears");
        elapsed = mono_ms() - t0;
        diag("appeared after %" PRId64 " ms", elapsed);
        ok(elapsed < 5000, "within the commit interval plus (generous) slack");
        /* the writer counts a batch right after its COMMIT, which readers may see first */
        ok(POLL((store_get_stats(s, &st), st.written == 1)), "written counter");
        is_int(st.written, 1, "written counter is 1");
}

static void test_migration(void) {
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *error = NULL;
        sqlite3 *db;

        diag("migrating a version 1 database");
        fresh_db("migrate");
        (void) mkdir(strndupa(dbpath, strrchr(dbpath, '/') - dbpath), 0700);
        db = db_open(dbpath);
        ok(sqlite3_exec(db, schema_migrations[0], NULL, NULL, NULL) == SQLITE_OK,
           "create a version 1 database");
        /* A recent row: the store prunes rows older than 30 days by default. */
        ok(sqlite3_exec(
                   db,
                   "PRAGMA user_version = 1; "
                   "INSERT INTO attempts (started_us, ended_us, peer_addr, peer_port, local_addr, "
                   "local_port, outcome, state_reached, alert_received) VALUES ("
                   "strftime('%s', 'now') * 1000000, strftime('%s', 'now') * 1000000, "
                   "'198.51.100.1', 1, '::1', 8443, 'peer_alert', 'server_flight', 46)",
                   NULL,
                   NULL,
                   NULL) == SQLITE_OK,
           "with a row");
        sqlite3_close(db);

        is_int(store_open(dbpath, NULL, &s, &error), 0, "store_open migrates it");
        is_int(store_stop(s), 0, "stop");
        db = db_open(dbpath);
        is_int(db_int(db, "PRAGMA user_version"), schema_version, "now at the current version");
        is_int(db_int(db,
                      "SELECT count(*) FROM attempts "
                      "WHERE peer_addr = '198.51.100.1' AND alert_received = 46"),
               1,
               "the row is kept");
        is_int(db_int(db, "SELECT count(*) FROM failures WHERE alert_received_name = 'certificate_unknown'"),
               1,
               "and visible through the new views");
        sqlite3_close(db);
}

static void test_newer(void) {
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *error = NULL;
        char sql[64], v_new[16], v_ours[32];
        sqlite3 *db;

        diag("refusing a newer database");
        fresh_db("newer");
        (void) mkdir(strndupa(dbpath, strrchr(dbpath, '/') - dbpath), 0700);
        db = db_open(dbpath);
        (void) snprintf(sql, sizeof sql, "PRAGMA user_version = %u", schema_version + 7);
        ok(sqlite3_exec(db, "CREATE TABLE future (x INTEGER)", NULL, NULL, NULL) == SQLITE_OK &&
                   sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
           "a database from the future");
        sqlite3_close(db);

        is_int(store_open(dbpath, NULL, &s, &error), -EPROTONOSUPPORT, "store_open refuses it");
        ok(s == NULL, "no store");
        diag("message: %s", strna(error));
        (void) snprintf(v_new, sizeof v_new, "version %u", schema_version + 7);
        (void) snprintf(v_ours, sizeof v_ours, "version %u", schema_version);
        ok(error && strstr(error, v_new) && strstr(error, v_ours) && strstr(error, dbpath),
           "the message names the database and both versions");
        db = db_open(dbpath);
        is_int(db_int(db, "PRAGMA user_version"), schema_version + 7, "the database is untouched");
        is_int(db_int(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
               0,
               "not even WAL");
        sqlite3_close(db);
}

/* A locked database, then a read-only one: records stay queued, errors are counted, writing resumes. */
static void test_locked_readonly(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        char status[512];
        uint64_t errors;
        StoreStats st;
        sqlite3 *blocker;

        diag("locked, then read-only database");
        fresh_db("locked");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        blocker = db_open(dbpath);
        ok(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
           "another writer holds the lock");
        for (unsigned i = 0; i < 10; i++)
                (void) store_enqueue(s, make_attempt(i, base_us + i));
        ok(POLL((store_get_stats(s, &st), st.failing && st.write_errors >= 2)),
           "writes fail while locked, retried");
        is_int(st.queued, 10, "records stay queued");
        is_int(st.written, 0, "nothing written");
        is_int(st.last_error, -EBUSY, "last error is EBUSY");
        diag("last error: %s", st.last_error_text);
        ok(store_stats_format(&st, status, sizeof status) == 0 && strstr(status, "failing") &&
                   strstr(status, "10 queued"),
           "status line says so: %s",
           status);

        if (dac_dropped) {
                ok(chmod(dbpath, 0444) == 0, "chmod 0444 the database file");
                sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL);
                errors = st.write_errors;
                ok(POLL((store_get_stats(s, &st), st.write_errors >= errors + 2)),
                   "writes keep failing read-only");
                ok(st.failing && st.queued == 10 && st.written == 0, "still failing, records still queued");
                is_int(st.last_error, -EACCES, "last error is EACCES");
                diag("last error: %s", st.last_error_text);
                ok(chmod(dbpath, 0640) == 0, "chmod it back");
        } else {
                diag("cannot drop CAP_DAC_OVERRIDE: skipping the read-only part");
                sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL);
        }
        ok(POLL((store_get_stats(s, &st), st.written == 10)), "writing resumes");
        ok(!st.failing && st.queued == 0 && st.dropped == 0, "not failing, nothing queued, nothing dropped");
        is_int(store_stop(s), 0, "stop");
        sqlite3_close(blocker);
        is_int(count_rows(dbpath), 10, "all 10 rows are there");
}

static void test_overflow(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        unsigned accepted = 0, refused = 0;
        StoreStats st;
        sqlite3 *blocker;

        diag("queue overflow");
        o.queue_max = 100;
        o.batch_max = 100;
        fresh_db("overflow");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        blocker = db_open(dbpath);
        sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        for (unsigned i = 0; i < 150; i++) {
                int r = store_enqueue(s, make_attempt(i, base_us + i));

                accepted += r == 0;
                refused += r == -ENOBUFS;
        }
        is_int(accepted, 100, "the queue takes exactly its bound");
        is_int(refused, 50, "the rest is refused with ENOBUFS");
        store_get_stats(s, &st);
        is_int(st.dropped, 50, "and counted as dropped");
        is_int(store_enqueue(s, attempt_new()) == 0 ? 0 : -1, -1, "still full");
        sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(blocker);
        is_int(store_stop(s), 0, "stop flushes");
        store_get_stats(s, &st);
        is_int(st.written, 100, "100 written");
        is_int(st.dropped, 51, "51 dropped");
        is_int(count_rows(dbpath), 100, "100 rows");
}

static void test_stop_flush(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        StoreStats st;

        diag("store_stop writes every queued record");
        o.commit_interval_us = 3600 * USEC_PER_SEC;
        o.batch_max = 10000;
        fresh_db("flush");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        for (unsigned i = 0; i < 5000; i++)
                (void) store_enqueue(s, make_attempt(i, base_us + i));
        sleep_ms(50);
        store_get_stats(s, &st);
        is_int(st.written, 0, "nothing written before the (one hour) commit interval");
        is_int(store_stop(s), 0, "stop");
        is_int(store_stop(s), 0, "stop again is harmless");
        store_get_stats(s, &st);
        is_int(st.written, 5000, "all written by stop");
        is_int(count_rows(dbpath), 5000, "5000 rows");
}

static void test_reader(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        StoreStats st;
        sqlite3 *reader;

        diag("a reader holding a read transaction does not block the writer");
        fresh_db("reader");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        for (unsigned i = 0; i < 10; i++)
                (void) store_enqueue(s, make_attempt(i, base_us + i));
        ok(POLL((store_get_stats(s, &st), st.written == 10)), "first rows written");
        reader = db_open(dbpath);
        ok(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL) == SQLITE_OK, "reader begins");
        is_int(db_int(reader, "SELECT count(*) FROM attempts"), 10, "reader sees 10 rows");
        for (unsigned i = 0; i < 3000; i++)
                (void) store_enqueue(s, make_attempt(i, base_us + i));
        ok(POLL((store_get_stats(s, &st), st.written == 3010)), "writer commits while the reader reads");
        is_int(st.write_errors, 0, "without errors");
        is_int(db_int(reader, "SELECT count(*) FROM attempts"), 10, "the reader's snapshot is stable");
        sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
        is_int(db_int(reader, "SELECT count(*) FROM attempts"), 3010, "a new read sees everything");
        sqlite3_close(reader);
}

static int64_t file_size(const char *path) {
        struct stat st;

        return stat(path, &st) < 0 ? -1 : (int64_t) st.st_size;
}

static void test_checkpointer(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        char wal[sizeof dbpath + 8];
        int64_t db_size, wal_size;
        StoreStats st;
        sqlite3 *db;

        diag("WAL checkpoints run on their own thread while the writer goes on");
        o.checkpoint_pages = 8; /* 128 KiB: a checkpoint every few dozen records */
        o.commit_interval_us = 5 * USEC_PER_MSEC;
        fresh_db("checkpoint");
        (void) snprintf(wal, sizeof wal, "%s-wal", dbpath);
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        for (unsigned wave = 0; wave < 20; wave++) {
                uint64_t checkpoints;

                store_get_stats(s, &st);
                checkpoints = st.checkpoints;
                /* in four commits, whatever the load: a wave taken in one commit would add fewer WAL
                 * pages than checkpoint_pages, and the writer would rightly not ask for a checkpoint */
                for (unsigned i = 0; i < 100; i++) {
                        (void) store_enqueue(s, make_attempt(wave * 100 + i, base_us + wave * 100 + i));
                        if (i % 25 == 24 && !POLL((store_get_stats(s, &st), st.written == wave * 100 + i + 1)))
                                break;
                }
                if (st.written != (wave + 1) * 100)
                        break;
                /* the checkpointer catches up with this wave, so that the writer can restart the WAL */
                if (!POLL((store_get_stats(s, &st), st.checkpoints > checkpoints)))
                        break;
        }
        (void) POLL((store_get_stats(s, &st), st.checkpoints > 0));
        is_int(st.written, 2000, "2000 records written in 20 waves");
        ok(st.checkpoints > 0, "the checkpointer thread ran (%" PRIu64 " checkpoints)", st.checkpoints);
        is_int(st.write_errors, 0, "without errors");
        /* Without checkpoints the database file would still hold only the schema, and every page would
         * sit in the WAL until the store is closed. */
        db_size = file_size(dbpath);
        wal_size = file_size(wal);
        ok(db_size > 1024 * 1024,
           "the rows reached the database file while the store is open (%" PRId64 " bytes)",
           db_size);
        /* Never restarted, it would hold every commit's pages (80 commits of several 16 KiB pages: several
         * times the database); a restart skipped now and then on a loaded machine stays well below. */
        ok(wal_size >= 0 && wal_size < db_size,
           "the WAL was restarted instead of growing (%" PRId64 " bytes)",
           wal_size);
        db = db_open(dbpath);
        is_int(db_int(db, "SELECT count(*) FROM attempts"), 2000, "a reader sees all rows");
        sqlite3_close(db);
        is_int(store_stop(s), 0, "stop");
        db = db_open(dbpath);
        is_int(db_int(db, "SELECT count(*) FROM attempts"), 2000, "all rows after stop");
        is_int(db_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"),
               1,
               "integrity_check ok");
        sqlite3_close(db);
}

static void test_retention(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        int64_t now = now_realtime_us();
        StoreStats st;
        sqlite3 *db;

        diag("retention");
        o.retention_days = 1;
        o.prune_interval_us = 20 * USEC_PER_MSEC;
        o.prune_batch = 100;
        fresh_db("retention");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        for (unsigned i = 0; i < 350; i++) /* older than one day */
                (void) store_enqueue(s, make_attempt(i, now - 2 * 86400 * USEC_PER_SEC + i));
        for (unsigned i = 0; i < 30; i++) /* just inside the day */
                (void) store_enqueue(s, make_attempt(i, now - 86400 * USEC_PER_SEC + 60 * USEC_PER_SEC + i));
        ok(POLL((store_get_stats(s, &st), st.written == 380 && st.pruned == 350)),
           "old rows pruned in batches");
        sleep_ms(100); /* several more pruning passes */
        store_get_stats(s, &st);
        is_int(st.pruned, 350, "exactly the old rows");
        is_int(store_stop(s), 0, "stop");
        db = db_open(dbpath);
        is_int(db_int(db, "SELECT count(*) FROM attempts"), 30, "30 rows remain");
        is_int(db_int(db,
                      "SELECT count(*) FROM attempts "
                      "WHERE started_us < strftime('%s', 'now', '-1 day') * 1000000"),
               0,
               "none older than a day");
        sqlite3_close(db);
}

static void test_invalid(void) {
        _cleanup_(store_freep) Store *s = NULL;
        StoreOptions o = test_options();
        _cleanup_free_ char *error = NULL;
        Attempt *a;
        StoreStats st;

        diag("invalid input");
        fresh_db("invalid");
        o.batch_max = o.queue_max + 1;
        is_int(store_open(dbpath, &o, &s, &error), -EINVAL, "invalid options refused");
        error = mfree(error);
        o = test_options();
        o.retention_days = 100000;
        is_int(store_open(dbpath, &o, &s, &error), -EINVAL, "absurd retention refused");
        error = mfree(error);
        o = test_options();
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        a = make_attempt(1, base_us);
        a->outcome = _OUTCOME_MAX;
        is_int(store_enqueue(s, a), -EINVAL, "record with an invalid outcome refused");
        a = make_attempt(1, base_us);
        a->state_reached = (HandshakeStep) 77;
        is_int(store_enqueue(s, a), -EINVAL, "record with an invalid state refused");
        store_get_stats(s, &st);
        is_int(st.dropped, 2, "and counted as dropped");
        is_int(store_enqueue(s, NULL), -EINVAL, "NULL refused");
        store_free(TAKE_PTR(s));

        error = mfree(error);
        fresh_db("notadb");
        (void) mkdir(strndupa(dbpath, strrchr(dbpath, '/') - dbpath), 0700);
        {
                int fd = open(dbpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

                ok(fd >= 0 && write(fd, "this is not a database, just text, long enough to be read", 58) == 58,
                   "a file that is not a database");
                safe_close(fd);
        }
        is_int(store_open(dbpath, NULL, &s, &error), -EBADMSG, "refused with EBADMSG");
        diag("message: %s", strna(error));
        ok(error && strstr(error, dbpath), "message names the file");
}

/* The store numbers the rows, so that a row can be named before it is written (tlswatchd --backend): after
 * the rows already in the database, in the order the ids were taken. */
static void test_reserved_ids(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        Attempt *early, *late;
        int64_t id;
        sqlite3 *db;

        diag("row ids reserved before the record is written");
        fresh_db("ids");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        for (unsigned i = 0; i < 7; i++)
                (void) store_enqueue(s, make_attempt(i, base_us + i));
        is_int(store_stop(s), 0, "7 rows written");
        s = store_free(s);

        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open again");
        id = store_reserve_id(s);
        is_int(id, 8, "the first id reserved follows the rows in the database");
        early = make_attempt(100, base_us + 100);
        late = make_attempt(101, base_us + 101);
        early->id = id;
        is_int(store_enqueue(s, late), 0, "a record without an id, enqueued first");
        is_int(store_enqueue(s, early), 0, "the record with the reserved id, enqueued after it");
        is_int(store_stop(s), 0, "stop");
        db = db_open(dbpath);
        is_int(db_int(db, "SELECT id FROM attempts WHERE peer_port = 40100"), 8, "the reserved id is its row's");
        is_int(db_int(db, "SELECT id FROM attempts WHERE peer_port = 40101"), 9, "the other one got the next");
        is_int(db_int(db, "SELECT count(*) FROM attempts"), 9, "9 rows");
        sqlite3_close(db);
}

/* Two writers on one database (two daemons, or a daemon and another program): each numbers rows from the
 * largest id it saw when it opened, so both take the same ids. A row whose id another writer took first is
 * written with a new id, not dropped. */
static void test_two_writers(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *a = NULL, *b = NULL;
        StoreStats st;
        sqlite3 *db;

        diag("two stores writing to one database");
        fresh_db("two");
        if (store_open(dbpath, &o, &a, NULL) < 0 || store_open(dbpath, &o, &b, NULL) < 0)
                return (void) ok(false, "store_open twice");
        for (unsigned i = 0; i < 5; i++)
                (void) store_enqueue(a, make_attempt(i, base_us + i));
        is_int(store_stop(a), 0, "the first store wrote its 5 rows");
        for (unsigned i = 5; i < 10; i++)
                (void) store_enqueue(b, make_attempt(i, base_us + i));
        is_int(store_stop(b), 0, "the second store stops without error");
        store_get_stats(b, &st);
        is_int((int64_t) st.dropped, 0, "the second store dropped nothing");
        db = db_open(dbpath);
        is_int(db_int(db, "SELECT count(*) FROM attempts"), 10, "all 10 rows are there");
        is_int(db_int(db, "SELECT count(DISTINCT peer_port) FROM attempts"), 10, "each record once");
        sqlite3_close(db);
}

/* Ids follow the order in which rows are written, also with several threads enqueueing at once:
 * tlsreport -f reads the rows after the last id it saw, and would never see a row written after one
 * with a larger id. A trigger notes the order of the INSERTs. */
#define ORDER_THREADS 4
#define ORDER_PER_THREAD 5000
static Store *order_store;

static void *order_producer(void *userdata) {
        unsigned t = (unsigned) (uintptr_t) userdata;

        for (unsigned i = 0; i < ORDER_PER_THREAD; i++)
                (void) store_enqueue(order_store, make_attempt(t * ORDER_PER_THREAD + i, base_us + i));
        return NULL;
}

static void test_id_order(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        pthread_t threads[ORDER_THREADS];
        sqlite3 *db;

        diag("ids in the order the rows are written, several producers");
        fresh_db("order");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        s = store_free(s);
        db = db_open(dbpath);
        is_int(sqlite3_exec(
                       db,
                       "CREATE TABLE inserted (seq INTEGER PRIMARY KEY, aid INTEGER);"
                       "CREATE TRIGGER note_insert AFTER INSERT ON attempts "
                       "BEGIN INSERT INTO inserted (aid) VALUES (new.id); END;",
                       NULL,
                       NULL,
                       NULL),
               SQLITE_OK,
               "a trigger notes each INSERT");
        sqlite3_close(db);

        o.queue_max = ORDER_THREADS * ORDER_PER_THREAD;
        o.batch_max = 64;
        o.stop_timeout_us = 120 * USEC_PER_SEC; /* the order is tested here, not the speed: a loaded
                                                 * machine may need more than 5 s for 20,000 rows */
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open again");
        order_store = s;
        for (uintptr_t t = 0; t < ORDER_THREADS; t++)
                if (pthread_create(&threads[t], NULL, order_producer, (void *) t) != 0)
                        abort();
        for (unsigned t = 0; t < ORDER_THREADS; t++)
                (void) pthread_join(threads[t], NULL);
        is_int(store_stop(s), 0, "stop");
        db = db_open(dbpath);
        is_int(db_int(db, "SELECT count(*) FROM attempts"), ORDER_THREADS * ORDER_PER_THREAD, "all rows");
        is_int(db_int(db,
                      "SELECT count(*) FROM inserted a JOIN inserted b ON b.seq = a.seq + 1 "
                      "WHERE b.aid < a.aid"),
               0,
               "no row written after one with a larger id");
        sqlite3_close(db);
}

/* A writer killed with SIGKILL while records stream in: the database passes integrity_check, no row is
 * torn or missing in the middle, and only the last moments (~commit interval) are lost. */
static void test_kill(void) {
        int64_t killed_us, newest_us, rows, max_id, in_order;
        sqlite3_stmt *st = NULL;
        const char *integrity;
        pid_t pid;
        sqlite3 *db;

        diag("SIGKILL while writing");
        fresh_db("kill");
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return (void) ok(false, "fork");
        if (pid == 0) {
                StoreOptions o = test_options();
                Store *s = NULL;

                if (store_open(dbpath, &o, &s, NULL) < 0)
                        _exit(1);
                for (unsigned i = 0;; i++) {
                        (void) store_enqueue(s, make_attempt(i, now_realtime_us()));
                        sleep_ms(1);
                }
        }
        ok(POLL(access(dbpath, F_OK) == 0 && count_rows(dbpath) >= 100), "the child writes");
        sleep_ms(1000);
        killed_us = now_realtime_us();
        ok(kill(pid, SIGKILL) == 0 && waitpid(pid, NULL, 0) == pid, "SIGKILL");

        db = db_open(dbpath);
        ok(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
                   sqlite3_step(st) == SQLITE_ROW,
           "integrity_check runs");
        integrity = (const char *) sqlite3_column_text(st, 0);
        is_str(integrity, "ok", "integrity_check passes");
        sqlite3_finalize(st);
        rows = db_int(db, "SELECT count(*) FROM attempts");
        max_id = db_int(db, "SELECT max(id) FROM attempts");
        in_order = db_int(
                db,
                "SELECT count(*) FROM attempts AS a JOIN attempts AS b ON b.id = a.id + 1 "
                "WHERE b.started_us > a.started_us");
        newest_us = db_int(db, "SELECT max(started_us) FROM attempts");
        sqlite3_close(db);
        ok(rows > 100 && rows == max_id && in_order == rows - 1,
           "%" PRId64 " rows, none missing in between",
           rows);
        diag("the newest row was queued %" PRId64 " ms before SIGKILL", (killed_us - newest_us) / 1000);
        ok(killed_us - newest_us < 1500 * USEC_PER_MSEC,
           "only the last moments are lost (commit interval 200 ms)");
}

/* Someone removes the database while the daemon runs: the store notices and writes into a new one. */
static void test_removed(void) {
        StoreOptions o = test_options();
        _cleanup_(store_freep) Store *s = NULL;
        StoreStats st;

        diag("database removed while running");
        fresh_db("removed");
        if (store_open(dbpath, &o, &s, NULL) < 0)
                return (void) ok(false, "store_open");
        for (unsigned i = 0; i < 10; i++)
                (void) store_enqueue(s, make_attempt(i, base_us + i));
        ok(POLL((store_get_stats(s, &st), st.written == 10)), "10 rows written");
        ok(unlink(dbpath) == 0, "remove the database file");
        for (unsigned i = 0; i < 7; i++)
                (void) store_enqueue(s, make_attempt(i, base_us + i));
        ok(POLL((store_get_stats(s, &st), st.written == 17)), "7 more written");
        is_int(store_stop(s), 0, "stop");
        is_int(count_rows(dbpath), 7, "into a new database at the same path");
}

/* Root ignores file modes; without CAP_DAC_OVERRIDE a 0444 file is read-only for us too. */
static bool drop_dac_override(void) {
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {};
        char probe[sizeof tmpdir + 16];
        int fd;

        if (syscall(SYS_capget, &h, d) == 0) {
                d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
                (void) syscall(SYS_capset, &h, d);
        }
        /* Whoever we are: do file modes apply to us now? */
        (void) snprintf(probe, sizeof probe, "%s/probe", tmpdir);
        fd = open(probe, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
        safe_close(fd);
        fd = open(probe, O_WRONLY | O_CLOEXEC);
        safe_close(fd);
        (void) unlink(probe);
        return fd < 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

int main(void) {
        struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 27, .tm_hour = 10};

        base_us = (int64_t) timegm(&tm) * USEC_PER_SEC; /* 2026-11-27 10:00:00 UTC */
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        /* Threads inherit capabilities: drop them before any store thread exists. */
        dac_dropped = drop_dac_override();

        test_roundtrip();
        test_batch_timing();
        test_migration();
        test_newer();
        test_locked_readonly();
        test_overflow();
        test_stop_flush();
        test_reserved_ids();
        test_two_writers();
        test_id_order();
        test_reader();
        test_checkpointer();
        test_retention();
        test_invalid();
        test_kill();
        test_removed();

        if (!getenv("KEEP"))
                (void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}
