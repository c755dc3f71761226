/* SPDX-License-Identifier: MIT */
/* The column list (attempt-columns.h) against the schema that the store's migrations create: the same
 * columns in the same order with the same types and nullability, the covering index's columns flagged
 * ATTEMPT_GROUPING; and a record with every column set, and one with every nullable column NULL, written by
 * the store and read back by the shared row reader, column by column, through the journal fields and the
 * JSON and CSV writers too. Nothing here names a column: a new one is checked as soon as it is listed. */
#include <ftw.h>
#include <sqlite3.h>

#include "attempt.h"
#include "attempt-format.h"
#include "attempt-sql.h"
#include "journal.h"
#include "store.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-attempt-columns-XXXXXX";
static char dbpath[256];

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
        return remove(path);
}

/* Creates the database through the store (every migration) and writes the records. */
static bool store_records(Attempt *records[], size_t n) {
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *error = NULL;
        StoreStats st;

        if (!ok(store_open(dbpath, NULL, &s, &error) == 0, "store_open migrates a new database")) {
                diag("%s", strna(error));
                return false;
        }
        for (size_t i = 0; i < n; i++)
                if (store_enqueue(s, records[i]) < 0)
                        return ok(false, "store_enqueue");
        if (!is_int(store_stop(s), 0, "store_stop writes them"))
                return false;
        store_get_stats(s, &st);
        return is_int(st.written, n, "every record written");
}

static void test_schema(sqlite3 *db) {
        sqlite3_stmt *st = NULL;
        size_t i = 0;
        unsigned wrong = 0;
        uint64_t indexed = 0;

        ok(sqlite3_prepare_v2(
                   db,
                   "SELECT name, type, \"notnull\", pk FROM pragma_table_info('attempts') ORDER BY cid",
                   -1,
                   &st,
                   NULL) == SQLITE_OK,
           "PRAGMA table_info(attempts)");
        while (st && sqlite3_step(st) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(st, 0);
                const char *type = (const char *) sqlite3_column_text(st, 1);
                bool notnull = sqlite3_column_int(st, 2) != 0, pk = sqlite3_column_int(st, 3) != 0;
                const AttemptColumn *c = i < _ATTEMPT_COLUMN_MAX ? &attempt_columns[i] : NULL;

                if (!c) {
                        diag("column %zu of the table, %s, is not in the list", i, name);
                        wrong++;
                } else if (!streq_ptr(name, c->name)) {
                        diag("column %zu: the table has %s, the list %s", i, name, c->name);
                        wrong++;
                } else if (!streq_ptr(type, c->sql_type)) {
                        diag("column %s: the table's type is %s, the list's %s", name, type, c->sql_type);
                        wrong++;
                } else if (notnull == !!(c->flags & ATTEMPT_NULLABLE)) {
                        diag("column %s: NOT NULL in one of the table and the list only", name);
                        wrong++;
                } else if (pk != !!(c->flags & ATTEMPT_ROWID)) {
                        diag("column %s: the row id in one of the table and the list only", name);
                        wrong++;
                }
                i++;
        }
        sqlite3_finalize(st);
        is_int(wrong, 0, "every column of the table is the list's, in its order, type and nullability");
        is_int(i, _ATTEMPT_COLUMN_MAX, "as many columns in the table as in the list");

        st = NULL;
        ok(sqlite3_prepare_v2(
                   db, "SELECT name FROM pragma_index_info('attempts_started_grouping')", -1, &st, NULL) ==
                   SQLITE_OK,
           "PRAGMA index_info(attempts_started_grouping)");
        while (st && sqlite3_step(st) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(st, 0);

                FOREACH_ATTEMPT_COLUMN(c)
                        if (streq_ptr(name, c->name))
                                indexed |= ATTEMPT_COLUMN_BIT(c - attempt_columns);
        }
        sqlite3_finalize(st);
        is_int(indexed,
               attempt_columns_grouping(),
               "ATTEMPT_GROUPING flags exactly the covering index's columns");
}

/* A record with every column set, to a value of its own: column i holds something derived from i. */
static Attempt *make_full(void) {
        Attempt *a = attempt_new();

        if (!a)
                abort();
        FOREACH_ATTEMPT_COLUMN(c) {
                unsigned i = (unsigned) (c - attempt_columns);
                char *field = (char *) a + c->offset, buf[64];

                switch (c->kind) {
                case ATTEMPT_KIND_ADDR: (void) snprintf(field, 46, "2001:db8::%x", i); break;
                case ATTEMPT_KIND_TEXT:
                        (void) snprintf(buf, sizeof buf, "text of %s", c->name);
                        *(char **) field = strdup(buf);
                        if (!*(char **) field)
                                abort();
                        break;
                case ATTEMPT_KIND_RAW:
                        /* client bytes: a NUL, an escape, invalid UTF-8 */
                        (void) snprintf(buf, sizeof buf, "%s\x01\x1b[1m\xff", c->name);
                        buf[0] = '\0';
                        if (raw_string_set((RawString *) field, buf, strlen(buf + 1) + 1) < 0)
                                abort();
                        break;
                case ATTEMPT_KIND_OUTCOME:
                case ATTEMPT_KIND_STEP:
                case ATTEMPT_KIND_CLOSE_KIND:
                        /* the last value: the first is often the absent one */
                        attempt_column_set_int(a, c, attempt_column_enum_max(c) - 1);
                        break;
                case ATTEMPT_KIND_BOOL: attempt_column_set_int(a, c, 1); break;
                case ATTEMPT_KIND_UINT64: attempt_column_set_int(a, c, INT64_C(5000000000) + i); break;
                case ATTEMPT_KIND_INT64:
                        if (!(c->flags & ATTEMPT_ROWID))
                                attempt_column_set_int(a, c, INT64_C(1795771815000000) + i);
                        break;
                default: attempt_column_set_int(a, c, 1000 + i);
                }
        }
        return a;
}

/* A record with every nullable column NULL (attempt_new()), and the others set. */
static Attempt *make_empty(void) {
        Attempt *a = attempt_new();

        if (!a)
                abort();
        a->started_us = INT64_C(1795771815000000);
        (void) snprintf(a->peer_addr, sizeof a->peer_addr, "192.0.2.1");
        return a;
}

/* The first column in which a and b differ, NULL if none. */
static const char *column_mismatch(const Attempt *a, const Attempt *b) {
        FOREACH_ATTEMPT_COLUMN(c) {
                if (attempt_column_is_null(a, c) != attempt_column_is_null(b, c))
                        return c->name;
                if (attempt_column_is_null(a, c))
                        continue;
                if (attempt_column_is_text(c) || attempt_column_is_enum(c) || c->kind == ATTEMPT_KIND_ADDR) {
                        size_t la, lb;
                        const char *pa = attempt_column_get_text(a, c, &la),
                                   *pb = attempt_column_get_text(b, c, &lb);

                        if (la != lb || memcmp(pa, pb, la) != 0)
                                return c->name;
                } else if (attempt_column_get_int(a, c) != attempt_column_get_int(b, c))
                        return c->name;
        }
        return NULL;
}

static void test_roundtrip(sqlite3 *db, Attempt *want[], size_t n) {
        AttemptSelect sel;
        char cols[2048], sql[2200];
        sqlite3_stmt *st = NULL;
        size_t i = 0;

        ok(attempt_select_init(&sel, ATTEMPT_COLUMNS_ALL, cols, sizeof cols) > 0, "select every column");
        is_int(sel.n, _ATTEMPT_COLUMN_MAX, "every column selected");
        (void) snprintf(sql, sizeof sql, "SELECT %s FROM attempts ORDER BY id", cols);
        ok(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "prepare %s", sql);
        while (st && sqlite3_step(st) == SQLITE_ROW && i < n) {
                _cleanup_(attempt_freep) Attempt *copy = NULL;
                const char *bad;
                Attempt got;

                attempt_row_read(st, &sel, &got);
                is_int(got.id, (int64_t) i + 1, "record %zu: its id", i);
                want[i]->id = got.id; /* assigned by SQLite */
                bad = column_mismatch(&got, want[i]);
                ok(!bad, "record %zu: every column read back as written (first wrong: %s)", i, strna(bad));
                ok(attempt_dup(&got, &copy) == 0 && !column_mismatch(copy, want[i]),
                   "record %zu: its copy too",
                   i);
                i++;
        }
        sqlite3_finalize(st);
        is_int(i, n, "every record read back");
}

/* The NULL columns of a record, as each writer shows them. */
static void test_writers(const Attempt *full, const Attempt *empty) {
        JournalFields jf = {}, je = {};
        _cleanup_free_ char *json = NULL, *csv = NULL;
        size_t json_len = 0, csv_len = 0;
        unsigned wrong = 0;
        FILE *f;

        ok(journal_fields_build(full, &jf) == 0 && journal_fields_build(empty, &je) == 0, "journal fields");
        FOREACH_ATTEMPT_COLUMN(c) {
                bool in_full = journal_fields_get(&jf, c->journal, NULL) != NULL;
                bool in_empty = journal_fields_get(&je, c->journal, NULL) != NULL;

                if (!in_full || in_empty != !attempt_column_is_null(empty, c)) {
                        diag("journal field %s: %d in the full record, %d in the empty one",
                             c->journal,
                             in_full,
                             in_empty);
                        wrong++;
                }
        }
        is_int(wrong, 0, "a journal field for every column that is not NULL, none for the others");
        journal_fields_done(&jf);
        journal_fields_done(&je);

        f = open_memstream(&json, &json_len);
        if (!f)
                return (void) ok(false, "open_memstream");
        attempt_json_write(f, empty, false);
        fclose(f);
        f = open_memstream(&csv, &csv_len);
        if (!f)
                return (void) ok(false, "open_memstream");
        attempt_csv_write_header(f);
        attempt_csv_write(f, empty);
        fclose(f);
        wrong = 0;
        FOREACH_ATTEMPT_COLUMN(c) {
                char key[128];

                (void) snprintf(
                        key, sizeof key, "\"%s\":%s", c->name, attempt_column_is_null(empty, c) ? "null" : "");
                if (!strstr(json, key)) {
                        diag("JSON lacks %s", key);
                        wrong++;
                }
        }
        is_int(wrong, 0, "JSON: every column by its name, null when NULL");
        ok(json[0] == '{' && json[json_len - 1] == '}', "JSON: one object");
        ok(strstr(csv, "\r\n") && (size_t) (strstr(csv, "\r\n") - csv) > strlen(attempt_columns[0].name),
           "CSV: a header line");
}

int main(void) {
        Attempt *records[2], *want[2];

        if (!mkdtemp(tmpdir))
                return printf("Bail out! mkdtemp: %m\n"), 1;
        (void) snprintf(dbpath, sizeof dbpath, "%s/tlswatch.db", tmpdir);

        records[0] = make_full();
        records[1] = make_empty();
        want[0] = make_full();
        want[1] = make_empty();
        FOREACH_ATTEMPT_COLUMN(c)
                if (!(c->flags & ATTEMPT_ROWID) && attempt_column_is_null(want[0], c))
                        ok(false, "the full record sets %s", c->name);

        if (store_records(records, ELEMENTSOF(records))) {
                sqlite3 *db = NULL;

                ok(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open the database");
                test_schema(db);
                test_roundtrip(db, want, ELEMENTSOF(want));
                sqlite3_close(db);
        }
        test_writers(want[0], want[1]);

        FOREACH_ARRAY(a, want, ELEMENTSOF(want))
                attempt_free(*a);
        (void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}
