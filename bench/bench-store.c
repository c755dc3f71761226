/* SPDX-License-Identifier: MIT */
/* Records per second through the store (store_enqueue() -> writer thread -> SQLite, WAL,
 * synchronous=NORMAL, the schema's 3 indexes on attempts), against a baseline of raw sqlite3 inserts
 * in batched transactions on the same schema, in the same run, rounds interleaved (the machine is
 * noisy: compare the ratio, not absolute figures from different runs).
 *
 *   bench-store [RECORDS [ROUNDS [DIRECTORY [RATE]]]]     defaults: 200000 3 /tmp
 *
 * With RATE (records/s), the producer offers records at that pace instead of waiting for room in the
 * queue, as the daemon's workers do, and the figure is how many of them the store had to drop (its queue
 * full): what it sustains is the highest rate with none dropped. */
#include <inttypes.h>
#include <sqlite3.h>
#include <time.h>

#include "bench-util.h"
#include "schema.h"
#include "store.h"

enum { BASELINE_BATCH = 1000 };

static char *xstrdup(const char *s) {
        char *p = strdup(s);

        if (!p)
                abort();
        return p;
}

/* A realistic record: a Chromium-like failed attempt, every fingerprint filled. */
static Attempt *make_attempt(unsigned i, int64_t now_us) {
        static const char ua[] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                 "Chrome/131.0.0.0 Safari/537.36";
        Attempt *a = attempt_new();
        char ja3[33];

        if (!a)
                abort();
        a->started_us = now_us + i;
        a->ended_us = a->started_us + 2345;
        (void) snprintf(a->peer_addr, sizeof a->peer_addr, "192.0.2.%u", i % 254);
        a->peer_port = (uint16_t) (32768 + i % 28000);
        (void) snprintf(a->local_addr, sizeof a->local_addr, "192.0.2.254");
        a->local_port = 8443;
        a->outcome = i % 4 ? OUTCOME_PEER_ALERT : OUTCOME_OK;
        a->state_reached = i % 4 ? STEP_SERVER_FLIGHT : STEP_DONE;
        a->alert_received = i % 4 ? 46 : -1;
        a->tls_error = i % 4 ? -30592 : 0;
        a->error_text = i % 4 ? xstrdup("client sent alert certificate_unknown(46)") : NULL;
        a->offered_versions = xstrdup("TLSv1.3,TLSv1.2");
        a->version = xstrdup("TLSv1.3");
        a->cipher = xstrdup("TLS_AES_128_GCM_SHA256");
        (void) snprintf(ja3, sizeof ja3, "%08x%024x", i, 0x5c7f6bu);
        a->ja3 = xstrdup(ja3);
        a->ja3_full = xstrdup("771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-"
                              "157-47-53,0-23-65281-10-11-35-16-5-13-18-51-45-43-27-17513-65037-21,"
                              "25497-29-23-24,0");
        a->ja4 = xstrdup("t13d1516h2_8daaf6152771_02713d6af862");
        a->ja4_r = xstrdup("t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,"
                           "cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,"
                           "fe0d,ff01_0403,0804,0401,0503,0805,0501,0806,0601");
        a->ja4_o = xstrdup("t13d1516h2_acb858a92679_5bb8d1a0a9b5");
        a->ja4_ro = xstrdup("t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,"
                            "002f,0035_0000,0017,ff01,000a,000b,0023,0010,0005,000d,0012,0033,002d,002b,"
                            "001b,4469,fe0d,0015_0403,0804,0401,0503,0805,0501,0806,0601");
        a->ja4_stable = xstrdup("t13d15_8daaf6152771_9f3d6f6f2a11");
        if (raw_string_set(&a->sni, "service.example.internal", 24) < 0 ||
            raw_string_set(&a->alpn_offered, "h2,http/1.1", 11) < 0)
                abort();
        if (i % 4 == 0 &&
            (raw_string_set(&a->alpn, "h2", 2) < 0 || raw_string_set(&a->user_agent, ua, sizeof ua - 1) < 0))
                abort();
        a->bytes_in = 1780 + i % 300;
        a->bytes_out = 1450;
        a->http_requests = i % 4 == 0;
        return a;
}

static void die(const char *what, const char *detail) {
        fprintf(stderr, "bench-store: %s: %s\n", what, detail);
        exit(1);
}

static int64_t count_rows(const char *path) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;
        int64_t n = -1;

        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT count(*) FROM attempts", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

static void remove_db(const char *path) {
        (void) unlink(path);
        for (const char *const *suffix = (const char *const[]){"-wal", "-shm", NULL}; *suffix; suffix++) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s%s", path, *suffix) >= 0)
                        (void) unlink(p);
        }
}

/* Before a round, untimed: the previous round's dirty pages (hundreds of MiB) would otherwise be written
 * back by the kernel during this one and bill it for the other's I/O. */
static void quiesce_disk(void) {
        sync();
}

static int bind_text(sqlite3_stmt *st, int i, const char *s) {
        return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int bind_raw(sqlite3_stmt *st, int i, const RawString *s) {
        return s->data ? sqlite3_bind_text64(st, i, s->data, s->len, SQLITE_STATIC, SQLITE_UTF8)
                       : sqlite3_bind_null(st, i);
}

/* Raw sqlite3: same schema and pragmas, one thread, BASELINE_BATCH rows per transaction. */
static double run_baseline(const char *path, unsigned n, double *ret_cpu_us) {
        sqlite3_stmt *ins = NULL;
        sqlite3 *db = NULL;
        int64_t now = now_realtime_us(), t0, c0;

        remove_db(path);
        quiesce_disk();
        if (sqlite3_open(path, &db) != SQLITE_OK)
                die("baseline open", sqlite3_errmsg(db));
        if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", NULL, NULL, NULL) !=
            SQLITE_OK)
                die("baseline pragmas", sqlite3_errmsg(db));
        for (unsigned v = 0; v < schema_version; v++)
                if (sqlite3_exec(db, schema_migrations[v], NULL, NULL, NULL) != SQLITE_OK)
                        die("baseline schema", sqlite3_errmsg(db));
        if (sqlite3_prepare_v2(
                    db,
                    "INSERT INTO attempts (started_us, ended_us, peer_addr, peer_port, local_addr, "
                    "local_port, outcome, state_reached, alert_received, alert_sent, tls_error, "
                    "error_text, offered_versions, version, cipher, sni, alpn_offered, alpn, ja3, "
                    "ja3_full, ja4, ja4_r, ja4_o, ja4_ro, ja4_stable, hello_retry, resumed, bytes_in, "
                    "bytes_out, http_requests, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    -1,
                    &ins,
                    NULL) != SQLITE_OK)
                die("baseline prepare", sqlite3_errmsg(db));

        t0 = clock_ns(CLOCK_MONOTONIC);
        c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned i = 0; i < n; i++) {
                Attempt *a = make_attempt(i, now);
                int k = 1;

                if (i % BASELINE_BATCH == 0)
                        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
                sqlite3_bind_int64(ins, k++, a->started_us);
                sqlite3_bind_int64(ins, k++, a->ended_us);
                bind_text(ins, k++, a->peer_addr);
                sqlite3_bind_int(ins, k++, a->peer_port);
                bind_text(ins, k++, a->local_addr);
                sqlite3_bind_int(ins, k++, a->local_port);
                bind_text(ins, k++, outcome_to_string(a->outcome));
                bind_text(ins, k++, handshake_step_to_string(a->state_reached));
                a->alert_received < 0 ? sqlite3_bind_null(ins, k++)
                                      : sqlite3_bind_int(ins, k++, a->alert_received);
                a->alert_sent < 0 ? sqlite3_bind_null(ins, k++) : sqlite3_bind_int(ins, k++, a->alert_sent);
                a->tls_error == 0 ? sqlite3_bind_null(ins, k++) : sqlite3_bind_int(ins, k++, a->tls_error);
                bind_text(ins, k++, a->error_text);
                bind_text(ins, k++, a->offered_versions);
                bind_text(ins, k++, a->version);
                bind_text(ins, k++, a->cipher);
                bind_raw(ins, k++, &a->sni);
                bind_raw(ins, k++, &a->alpn_offered);
                bind_raw(ins, k++, &a->alpn);
                bind_text(ins, k++, a->ja3);
                bind_text(ins, k++, a->ja3_full);
                bind_text(ins, k++, a->ja4);
                bind_text(ins, k++, a->ja4_r);
                bind_text(ins, k++, a->ja4_o);
                bind_text(ins, k++, a->ja4_ro);
                bind_text(ins, k++, a->ja4_stable);
                sqlite3_bind_int(ins, k++, a->hello_retry);
                sqlite3_bind_int(ins, k++, a->resumed);
                sqlite3_bind_int64(ins, k++, (int64_t) a->bytes_in);
                sqlite3_bind_int64(ins, k++, (int64_t) a->bytes_out);
                sqlite3_bind_int64(ins, k++, a->http_requests);
                bind_raw(ins, k++, &a->user_agent);
                if (sqlite3_step(ins) != SQLITE_DONE)
                        die("baseline insert", sqlite3_errmsg(db));
                sqlite3_reset(ins);
                attempt_free(a);
                if (i % BASELINE_BATCH == BASELINE_BATCH - 1 || i == n - 1)
                        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                                die("baseline commit", sqlite3_errmsg(db));
        }
        sqlite3_finalize(ins);
        sqlite3_close(db); /* the final checkpoint is part of the cost, as in store_stop() */
        *ret_cpu_us = (double) (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1000.0 / n;
        return (double) n * 1e9 / (double) (clock_ns(CLOCK_MONOTONIC) - t0);
}

/* A store on a new database, the disk quiet: each round starts from the same state. */
static Store *store_open_fresh(const char *path, const StoreOptions *o) {
        _cleanup_free_ char *error = NULL;
        Store *s = NULL;

        remove_db(path);
        quiesce_disk();
        if (store_open(path, o, &s, &error) < 0)
                die("store_open", strna(error));
        return s;
}

/* Through the store: the producer never lets the queue overflow (it waits instead), so the figure is
 * what the writer sustains. Also reports what store_enqueue() costs the caller. */
static double run_store(
        const char *path,
        unsigned n,
        double *ret_cpu_us,
        double *ret_writer_cpu_us,
        double *ret_enqueue_ns,
        double *ret_enqueue_max_us) {
        StoreOptions o = STORE_OPTIONS_DEFAULT;
        int64_t now = now_realtime_us(), t0, c0, p0, in_enqueue = 0, worst = 0;
        Store *s;
        StoreStats st;
        double rate;

        s = store_open_fresh(path, &o);
        t0 = clock_ns(CLOCK_MONOTONIC);
        c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        p0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (unsigned i = 0; i < n; i++) {
                Attempt *a = make_attempt(i, now);
                int64_t e0, e;

                if (i % 256 == 0)
                        for (;;) {
                                store_get_stats(s, &st);
                                if (st.queued + 256 < o.queue_max)
                                        break;
                                (void) usleep(200);
                        }
                e0 = clock_ns(CLOCK_MONOTONIC);
                if (store_enqueue(s, a) < 0)
                        die("store_enqueue", "refused a record");
                e = clock_ns(CLOCK_MONOTONIC) - e0;
                in_enqueue += e;
                worst = MAX(worst, e);
        }
        if (store_stop(s) < 0)
                die("store_stop", "failed");
        rate = (double) n * 1e9 / (double) (clock_ns(CLOCK_MONOTONIC) - t0);
        *ret_cpu_us = (double) (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1000.0 / n;
        /* everything but this (the producer's) thread: the writer and the checkpointer */
        *ret_writer_cpu_us = *ret_cpu_us - (double) (clock_ns(CLOCK_THREAD_CPUTIME_ID) - p0) / 1000.0 / n;
        store_get_stats(s, &st);
        if (st.written != n || st.dropped != 0)
                die("store", "not every record was written");
        store_free(s);
        *ret_enqueue_ns = (double) in_enqueue / n;
        *ret_enqueue_max_us = (double) worst / 1000.0;
        return rate;
}

/* Records offered at a fixed pace; the queue is the store's default. Returns the number dropped. */
static uint64_t
run_store_paced(const char *path, unsigned n, double rate, double *ret_rate, uint64_t *ret_queue_max) {
        StoreOptions o = STORE_OPTIONS_DEFAULT;
        int64_t now = now_realtime_us(), t0;
        uint64_t dropped = 0, deepest = 0;
        Store *s;
        StoreStats st;

        s = store_open_fresh(path, &o);
        t0 = clock_ns(CLOCK_MONOTONIC);
        for (unsigned i = 0; i < n; i++) {
                int64_t due = t0 + (int64_t) ((double) i * 1e9 / rate), wait = due - clock_ns(CLOCK_MONOTONIC);

                if (wait > 50000) {
                        struct timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};

                        (void) nanosleep(&ts, NULL);
                }
                if (store_enqueue(s, make_attempt(i, now)) < 0)
                        dropped++;
                if (i % 1024 == 0) {
                        store_get_stats(s, &st);
                        deepest = MAX(deepest, st.queued);
                }
        }
        *ret_rate = (double) n * 1e9 / (double) (clock_ns(CLOCK_MONOTONIC) - t0);
        if (store_stop(s) < 0)
                die("store_stop", "failed");
        store_get_stats(s, &st);
        if (st.written + st.dropped != n || st.dropped != dropped)
                die("store", "records unaccounted for");
        store_free(s);
        *ret_queue_max = deepest;
        return dropped;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

int main(int argc, char **argv) {
        unsigned n = argc > 1 ? (unsigned) strtoul(argv[1], NULL, 10) : 200000;
        unsigned rounds = argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 3;
        const char *parent = argc > 3 ? argv[3] : "/tmp";
        double rate = argc > 4 ? strtod(argv[4], NULL) : 0;
        double base[16], store[16], ratio[16], capacity[16];
        char dir[512], path[600];

        if (n == 0 || rounds == 0 || rounds > ELEMENTSOF(base))
                die("usage", "bench-store [RECORDS (>0) [ROUNDS (1..16) [DIRECTORY [RATE]]]]");
        (void) snprintf(dir, sizeof dir, "%s/bench-store-XXXXXX", parent);
        if (!mkdtemp(dir))
                die("mkdtemp", strerror(errno));
        (void) snprintf(path, sizeof path, "%s/tlswatch.db", dir);

        if (rate > 0) {
                unsigned failed = 0;

                printf("records per round: %u offered at %.0f/s, rounds: %u, database: %s\n",
                       n,
                       rate,
                       rounds,
                       path);
                for (unsigned r = 0; r < rounds; r++) {
                        uint64_t deepest, dropped;
                        double offered;

                        dropped = run_store_paced(path, n, rate, &offered, &deepest);
                        failed += dropped > 0;
                        printf("round %u: offered %.0f records/s, dropped %" PRIu64, r + 1, offered, dropped);
                        printf(" (queue of %zu: at most %" PRIu64 " waiting)\n",
                               STORE_OPTIONS_DEFAULT.queue_max,
                               deepest);
                        fflush(stdout);
                }
                printf("%u of %u rounds without a dropped record at %.0f records/s\n",
                       rounds - failed,
                       rounds,
                       rate);
                remove_db(path);
                (void) rmdir(dir);
                return failed == 0 ? 0 : 2;
        }

        printf("records per round: %u, rounds: %u, database: %s (3 indexes on attempts)\n", n, rounds, path);
        for (unsigned r = 0; r < rounds; r++) {
                double enq_ns, enq_max_us, base_cpu, store_cpu, writer_cpu;

                base[r] = run_baseline(path, n, &base_cpu);
                if (count_rows(path) != n)
                        die("baseline", "wrong row count");
                store[r] = run_store(path, n, &store_cpu, &writer_cpu, &enq_ns, &enq_max_us);
                capacity[r] = 1e6 / writer_cpu;
                if (count_rows(path) != n)
                        die("store", "wrong row count");
                ratio[r] = store[r] / base[r];
                printf("round %u: raw sqlite3 %.0f records/s (%.1f us CPU each), "
                       "store %.0f records/s (%.1f us CPU each, %.1f us of it in the writer and "
                       "checkpointer threads: "
                       "%.0f records/s per CPU second), ratio %.2f; "
                       "store_enqueue %.0f ns average, %.1f us worst\n",
                       r + 1,
                       base[r],
                       base_cpu,
                       store[r],
                       store_cpu,
                       writer_cpu,
                       capacity[r],
                       ratio[r],
                       enq_ns,
                       enq_max_us);
                fflush(stdout);
        }
        qsort(base, rounds, sizeof base[0], cmp_double);
        qsort(store, rounds, sizeof store[0], cmp_double);
        qsort(ratio, rounds, sizeof ratio[0], cmp_double);
        qsort(capacity, rounds, sizeof capacity[0], cmp_double);
        printf("median: raw sqlite3 %.0f records/s, store %.0f records/s, ratio %.2f, "
               "store threads %.0f records per CPU second (target: store >= 50000)\n",
               base[rounds / 2],
               store[rounds / 2],
               ratio[rounds / 2],
               capacity[rounds / 2]);
        remove_db(path);
        (void) rmdir(dir);
        return store[rounds / 2] >= 50000 ? 0 : 2;
}
