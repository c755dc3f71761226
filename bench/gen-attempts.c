/* SPDX-License-Identifier: MIT */
/* Generates a realistic attempts database for benchmarks and manual tests:
 *   gen-attempts DB [ATTEMPTS [DAY_START_EPOCH [SEED [DAYS]]]]
 * ATTEMPTS (default 1000000) spread over DAYS days (default 1; may be a fraction) from DAY_START (default:
 * today's local midnight), as episodes: Chromium-like clients against an untrusted certificate (alert 46
 * bursts around a success, resumed hellos among them), clean clients, Firefox's alert 42, probes, plain
 * HTTP, version mismatches (gen-episodes.h). The schema comes from the embedded migrations. */
#include <inttypes.h>
#include <sqlite3.h>
#include <time.h>

#include "attempt-sql.h"
#include "attempt.h"
#include "schema.h"

static sqlite3_stmt *ins;
static uint64_t n_rows;

#include "gen-episodes.h"

/* Through the column list's INSERT and binding (attempt-sql.h), as the store writes. */
static int insert(const Row *r) {
        Attempt a;

        gen_row_to_attempt(r, &a);
        sqlite3_reset(ins);
        if (attempt_bind(ins, &a) != SQLITE_OK || sqlite3_step(ins) != SQLITE_DONE)
                return -EIO;
        n_rows++;
        return 0;
}

int main(int argc, char *argv[]) {
        sqlite3 *db = NULL;
        uint64_t target = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
        double days = argc > 5 ? strtod(argv[5], NULL) : 1;
        int64_t day_start, step;
        _cleanup_free_ char *insert_sql = NULL;
        char *err = NULL;

        if (argc < 2 || target == 0 || !(days > 0 && days <= 3650)) {
                fprintf(stderr, "usage: %s DB [ATTEMPTS [DAY_START_EPOCH [SEED [DAYS (0-3650)]]]]\n", argv[0]);
                return EXIT_FAILURE;
        }
        if (argc > 3)
                day_start = strtoll(argv[3], NULL, 10) * USEC_PER_SEC;
        else {
                time_t now = time(NULL);
                struct tm tm;

                localtime_r(&now, &tm);
                tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                tm.tm_isdst = -1;
                day_start = (int64_t) mktime(&tm) * USEC_PER_SEC;
        }
        if (argc > 4)
                rng_state ^= strtoull(argv[4], NULL, 10) * 0x9e3779b97f4a7c15ULL;

        (void) unlink(argv[1]);
        if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
                fprintf(stderr, "cannot create %s: %s\n", argv[1], sqlite3_errmsg(db));
                return EXIT_FAILURE;
        }
        for (unsigned v = 0; v < schema_version; v++)
                if (sqlite3_exec(db, schema_migrations[v], NULL, NULL, &err) != SQLITE_OK) {
                        fprintf(stderr, "migration %u failed: %s\n", v + 1, err);
                        return EXIT_FAILURE;
                }
        char pragma[64];
        (void) snprintf(pragma, sizeof pragma, "PRAGMA user_version = %u", schema_version);
        sqlite3_exec(db, pragma, NULL, NULL, NULL);
        sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF", NULL, NULL, NULL);
        insert_sql = attempt_insert_sql();
        if (!insert_sql || sqlite3_prepare_v2(db, insert_sql, -1, &ins, NULL) != SQLITE_OK) {
                fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db));
                return EXIT_FAILURE;
        }
        /* about 1.9 attempts per episode */
        step = (int64_t) (86400 * USEC_PER_SEC * days * 1.9 / (double) target);
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int64_t t = day_start; n_rows < target; t += 1 + (int64_t) rnd_below((unsigned) (2 * step))) {
                if (episode(t) < 0) {
                        fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
                        return EXIT_FAILURE;
                }
                if (n_rows % 50000 < 4)
                        sqlite3_exec(db, "COMMIT; BEGIN", NULL, NULL, NULL);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_finalize(ins);
        sqlite3_close(db);
        printf("%" PRIu64 " attempts written to %s\n", n_rows, argv[1]);
        return EXIT_SUCCESS;
}
