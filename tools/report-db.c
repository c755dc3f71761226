/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "attempt-sql.h"
#include "report.h"
#include "schema.h"
#include "sqlite-util.h"

struct ReportDb {
        sqlite3 *db;
        uint64_t columns; /* the attempt columns the database has (one not migrated yet lacks newer ones) */
        sqlite3_stmt *after; /* report_db_foreach_attempt_after()'s, prepared once: --follow runs it often */
        AttemptSelect after_sel;
};

void report_filter_init(ReportFilter *f) {
        *f = (ReportFilter){.since_us = INT64_MIN, .until_us = INT64_MAX};
}

/* Whether the first bits bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits) {
        unsigned whole = bits / 8, rest = bits % 8;

        if (memcmp(a, b, whole) != 0)
                return false;
        return rest == 0 || ((a[whole] ^ b[whole]) & (uint8_t) (0xff00 >> rest)) == 0;
}

int report_filter_set_client(ReportFilter *f, const char *s) {
        _cleanup_free_ char *addr = NULL;
        const char *slash = strchr(s, '/');
        unsigned max, prefix;

        addr = slash ? strndup(s, (size_t) (slash - s)) : strdup(s);
        if (!addr)
                return -ENOMEM;
        if (inet_pton(AF_INET, addr, f->client_addr) == 1) {
                f->client_family = AF_INET;
                max = prefix = 32;
        } else if (inet_pton(AF_INET6, addr, f->client_addr) == 1) {
                f->client_family = AF_INET6;
                max = 128;
                prefix = 64; /* an IPv6 client is its /64, as in the grouping */
        } else
                return -EINVAL;
        if (slash) {
                const char *p = slash + 1;
                char *end;
                unsigned long v;

                if (*p < '0' || *p > '9' || strlen(p) > 3)
                        return -EINVAL;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno != 0 || *end != '\0' || v > max)
                        return -EINVAL;
                prefix = (unsigned) v;
        }
        /* an IPv4-mapped IPv6 prefix (::ffff:192.0.2.0/120) is an IPv4 one: the record shows such peers as
         * IPv4 */
        if (f->client_family == AF_INET6 && prefix >= 96 &&
            IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) f->client_addr)) {
                memmove(f->client_addr, f->client_addr + 12, 4);
                f->client_family = AF_INET;
                prefix -= 96;
        }
        f->client_prefix = prefix;
        f->client = s;
        return 0;
}

static bool client_match(const ReportFilter *f, const char *peer_addr) {
        uint8_t a[16];

        if (!peer_addr || inet_pton(f->client_family, peer_addr, a) != 1)
                return false;
        return prefix_equal(a, f->client_addr, f->client_prefix);
}

bool report_filter_match(const ReportFilter *f, const Attempt *a) {
        if (f->client && !client_match(f, a->peer_addr))
                return false;
        if (f->ja4 && !streq_ptr(a->ja4, f->ja4) && !streq_ptr(a->ja4_stable, f->ja4))
                return false;
        if (f->sni &&
            (!a->sni.data || a->sni.len != strlen(f->sni) || memcmp(a->sni.data, f->sni, a->sni.len) != 0))
                return false;
        return true;
}

bool report_filter_match_host(const ReportFilter *f, const char *host) {
        if (f->n_hosts == 0)
                return true;
        for (size_t i = 0; i < f->n_hosts; i++)
                if (streq_ptr(f->hosts[i], host))
                        return true;
        return false;
}

/* The attempt columns that a database of schema version v has: those of the table that migrations 1..v
 * make, applied to an empty database in memory. */
static int columns_of_version(unsigned v, uint64_t *ret) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t columns = 0;
        int r;

        r = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        for (unsigned i = 0; r == SQLITE_OK && i < v && i < schema_version; i++)
                r = sqlite3_exec(db, schema_migrations[i], NULL, NULL, NULL);
        if (r == SQLITE_OK)
                r = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('attempts')", -1, &st, NULL);
        while (r == SQLITE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(st, 0);

                r = SQLITE_OK;
                FOREACH_ATTEMPT_COLUMN(c)
                        if (streq_ptr(name, c->name))
                                columns |= ATTEMPT_COLUMN_BIT(c - attempt_columns);
        }
        sqlite3_finalize(st);
        if (r != SQLITE_DONE) {
                r = sqlite_to_errno(db, r) ?: -EIO;
                sqlite3_close_v2(db);
                return r;
        }
        sqlite3_close_v2(db);
        *ret = columns;
        return 0;
}

int report_db_open(const char *path, ReportDb **ret) {
        _cleanup_(report_db_closep) ReportDb *d = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t expected = 0;
        struct stat sb;
        int r, version;

        if (stat(path, &sb) < 0)
                return negative_errno();
        if (!S_ISREG(sb.st_mode))
                return -EMEDIUMTYPE;
        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        r = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (r != SQLITE_OK)
                return sqlite_to_errno(d->db, r) ?: -EIO;
        (void) sqlite3_busy_timeout(d->db, 5000);

        /* a database another process holds locked (past the busy timeout) is not "not a database" */
        r = sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &st, NULL);
        if (r == SQLITE_BUSY || r == SQLITE_LOCKED)
                return -EBUSY;
        if (r != SQLITE_OK)
                return -EMEDIUMTYPE; /* "file is not a database" */
        r = sqlite3_step(st);
        version = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        if (r == SQLITE_BUSY || r == SQLITE_LOCKED)
                return -EBUSY;
        if (r != SQLITE_ROW)
                return -EMEDIUMTYPE;
        if (version < 1)
                return -EMEDIUMTYPE;
        (void) schema_version; /* newer schemas only add columns and views: still readable */

        r = sqlite3_prepare_v2(d->db, "SELECT id, started_us, outcome FROM attempts LIMIT 0", -1, &st, NULL);
        sqlite3_finalize(st);
        if (r != SQLITE_OK)
                return -EMEDIUMTYPE;
        /* a database the daemon has not migrated yet (we open read-only) lacks the newer columns */
        r = sqlite3_prepare_v2(d->db, "SELECT name FROM pragma_table_info('attempts')", -1, &st, NULL);
        if (r != SQLITE_OK)
                return sqlite_to_errno(d->db, r);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(st, 0);

                FOREACH_ATTEMPT_COLUMN(c)
                        if (streq_ptr(name, c->name))
                                d->columns |= ATTEMPT_COLUMN_BIT(c - attempt_columns);
        }
        sqlite3_finalize(st);
        if (r != SQLITE_DONE)
                return sqlite_to_errno(d->db, r);
        /* but it has every column of the schema version it says it has */
        r = columns_of_version((unsigned) version, &expected);
        if (r < 0)
                return r;
        if ((d->columns & expected) != expected)
                return -EMEDIUMTYPE;

        *ret = TAKE_PTR(d);
        return 0;
}

ReportDb *report_db_close(ReportDb *d) {
        if (!d)
                return NULL;
        sqlite3_finalize(d->after);
        sqlite3_close_v2(d->db);
        free(d);
        return NULL;
}

const char *report_db_error(ReportDb *d) {
        return d && d->db ? sqlite3_errmsg(d->db) : "no database";
}

struct ReportDbCursor {
        ReportDb *db;
        const ReportFilter *f;
        sqlite3_stmt *st;
        AttemptSelect sel;
};

ReportDbCursor *report_db_cursor_free(ReportDbCursor *c) {
        if (!c)
                return NULL;
        sqlite3_finalize(c->st);
        free(c);
        return NULL;
}

int report_db_cursor_open(ReportDb *d, const ReportFilter *f, bool full, ReportDbCursor **ret) {
        _cleanup_(report_db_cursor_freep) ReportDbCursor *c = NULL;
        char sql[2048] = "SELECT ";
        size_t len = strlen(sql);
        uint64_t want;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->db = d;
        c->f = f;
        /* Only the columns needed: every selected column costs SQLite work on every row. Without full, those
         * that grouping, statistics and the diagnosis use (all in the covering index), and ja4 for --ja4. */
        want = full ? ATTEMPT_COLUMNS_ALL : attempt_columns_grouping();
        if (f->ja4)
                want |= ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_ja4);
        r = attempt_select_init(&c->sel, want & d->columns, sql + len, sizeof sql - len);
        if (r < 0)
                return r;
        len += (size_t) r;
        /* The light columns are all in migration 3's covering index attempts_started_grouping: reading it
         * instead of the table reads a fraction of the bytes and no table page. Otherwise (all columns, or a
         * database not migrated yet: the daemon migrates at start, we open read-only) SQLite picks the time
         * index the database has. */
        r = SQLITE_ERROR;
        if (!full && !f->ja4) {
                (void) snprintf(
                        sql + len,
                        sizeof sql - len,
                        " FROM attempts INDEXED BY attempts_started_grouping"
                        " WHERE started_us >= ?1 AND started_us < ?2 ORDER BY started_us, id");
                r = sqlite3_prepare_v2(d->db, sql, -1, &c->st, NULL);
        }
        if (r != SQLITE_OK) {
                (void) snprintf(
                        sql + len,
                        sizeof sql - len,
                        " FROM attempts WHERE started_us >= ?1 AND started_us < ?2 ORDER BY started_us, id");
                r = sqlite3_prepare_v2(d->db, sql, -1, &c->st, NULL);
        }
        if (r != SQLITE_OK)
                return sqlite_to_errno(d->db, r) ?: -EIO;
        sqlite3_bind_int64(c->st, 1, f->since_us);
        sqlite3_bind_int64(c->st, 2, f->until_us);
        *ret = TAKE_PTR(c);
        return 0;
}

int report_db_cursor_next(ReportDbCursor *c, Attempt *ret) {
        int r;

        while ((r = sqlite3_step(c->st)) == SQLITE_ROW) {
                attempt_row_read(c->st, &c->sel, ret);
                if (report_filter_match(c->f, ret))
                        return 1;
        }
        return r == SQLITE_DONE ? 0 : sqlite_to_errno(c->db->db, r) ?: -EIO;
}

int report_db_foreach_attempt(
        ReportDb *d, const ReportFilter *f, bool full, ReportAttemptHandler h, void *userdata) {
        _cleanup_(report_db_cursor_freep) ReportDbCursor *c = NULL;
        Attempt a;
        int r;

        r = report_db_cursor_open(d, f, full, &c);
        if (r < 0)
                return r;
        while ((r = report_db_cursor_next(c, &a)) > 0) {
                r = h(&a, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

int report_db_host(ReportDb *d, const char *path, char **ret) {
        sqlite3_stmt *st = NULL;
        const char *base, *dot;
        char *host = NULL;
        int r;

        /* migration 6: the daemon's host name; a database without it (older, or not migrated yet) is named
         * by its file: /srv/copies/web1.db is "web1" */
        r = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = 'host'", -1, &st, NULL);
        if (r == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
            sqlite3_column_bytes(st, 0) > 0)
                host = strdup((const char *) sqlite3_column_text(st, 0));
        else {
                base = strrchr(path, '/');
                base = base ? base + 1 : path;
                dot = strrchr(base, '.');
                host = dot && dot > base ? strndup(base, (size_t) (dot - base)) : strdup(base);
        }
        sqlite3_finalize(st);
        if (!host)
                return -ENOMEM;
        *ret = host;
        return 0;
}

#define USER_AGENT_WHERE                                                                                   \
        " WHERE outcome = 'ok' AND ja4_stable IS NOT NULL AND user_agent IS NOT NULL AND started_us >= ?1" \
        " AND started_us < ?2"

int report_db_foreach_user_agent(ReportDb *d, const ReportFilter *f, ReportUserAgentHandler h, void *userdata) {
        sqlite3_stmt *st = NULL;
        int r;

        /* Migration 3's partial index holds exactly these rows, in time order, and both values: the table
         * is not read. A database that has not been migrated yet (the daemon migrates it at start; we open
         * it read-only) is read over the time index instead. Aggregated by the caller: cheaper than a
         * GROUP BY, which would sort every row. */
        r = sqlite3_prepare_v2(
                d->db,
                "SELECT ja4_stable, user_agent FROM attempts INDEXED BY "
                "attempts_ok_started_labels" USER_AGENT_WHERE,
                -1,
                &st,
                NULL);
        if (r != SQLITE_OK) /* over whichever time index the database has */
                r = sqlite3_prepare_v2(
                        d->db, "SELECT ja4_stable, user_agent FROM attempts" USER_AGENT_WHERE, -1, &st, NULL);
        if (r != SQLITE_OK)
                return sqlite_to_errno(d->db, r) ?: -EIO;
        sqlite3_bind_int64(st, 1, f->since_us);
        sqlite3_bind_int64(st, 2, f->until_us);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                const unsigned char *ja4 = sqlite3_column_text(st, 0), *p = sqlite3_column_text(st, 1);
                RawString ua = {.data = (char *) p, .len = p ? (size_t) sqlite3_column_bytes(st, 1) : 0};

                r = h((const char *) ja4, &ua, 1, userdata);
                if (r < 0) {
                        sqlite3_finalize(st);
                        return r;
                }
        }
        sqlite3_finalize(st);
        return r == SQLITE_DONE ? 0 : sqlite_to_errno(d->db, r) ?: -EIO;
}

int report_db_snapshot_begin(ReportDb *d, int64_t *ret_last_id) {
        sqlite3_stmt *st = NULL;
        int r;

        r = sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL);
        if (r != SQLITE_OK)
                return sqlite_to_errno(d->db, r) ?: -EIO;
        /* the first read starts the transaction's snapshot: every later read sees this one */
        r = sqlite3_prepare_v2(d->db, "SELECT COALESCE(MAX(id), 0) FROM attempts", -1, &st, NULL);
        if (r == SQLITE_OK)
                r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                *ret_last_id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (r != SQLITE_ROW) {
                r = sqlite_to_errno(d->db, r) ?: -EIO;
                report_db_snapshot_end(d);
                return r;
        }
        return 0;
}

void report_db_snapshot_end(ReportDb *d) {
        (void) sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
}

int report_db_peek_last_id(const char *path, int64_t *ret) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int r;

        r = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (r == SQLITE_OK)
                r = sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(id), 0) FROM attempts", -1, &st, NULL);
        if (r == SQLITE_OK)
                r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close_v2(db);
        return r == SQLITE_ROW ? 0 : -EIO;
}

int report_db_data_version(ReportDb *d, int64_t *ret) {
        sqlite3_stmt *st = NULL;
        int r;

        r = sqlite3_prepare_v2(d->db, "PRAGMA data_version", -1, &st, NULL);
        if (r == SQLITE_OK)
                r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return r == SQLITE_ROW ? 0 : sqlite_to_errno(d->db, r) ?: -EIO;
}

bool report_db_is_wal(ReportDb *d) {
        sqlite3_stmt *st = NULL;
        bool wal = false;

        if (sqlite3_prepare_v2(d->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                wal = streq_ptr((const char *) sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        return wal;
}

int report_db_foreach_attempt_after(
        ReportDb *d, int64_t after_id, ReportAttemptHandler h, void *userdata, int64_t *ret_last_id) {
        int64_t last = after_id;
        int r;

        if (!d->after) {
                char sql[2048] = "SELECT ";
                size_t len = strlen(sql);

                r = attempt_select_init(
                        &d->after_sel, ATTEMPT_COLUMNS_ALL & d->columns, sql + len, sizeof sql - len);
                if (r < 0)
                        return r;
                len += (size_t) r;
                /* over the rowid: the newest rows are at the end of the table's B-tree */
                (void) snprintf(sql + len, sizeof sql - len, " FROM attempts WHERE id > ?1 ORDER BY id");
                r = sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &d->after, NULL);
                if (r != SQLITE_OK)
                        return sqlite_to_errno(d->db, r) ?: -EIO;
        }
        sqlite3_bind_int64(d->after, 1, after_id);
        while ((r = sqlite3_step(d->after)) == SQLITE_ROW) {
                Attempt a;

                attempt_row_read(d->after, &d->after_sel, &a);
                last = MAX(last, a.id);
                r = h(&a, userdata);
                if (r < 0)
                        break;
        }
        (void) sqlite3_reset(d->after);
        *ret_last_id = last;
        if (r < 0)
                return r;
        return r == SQLITE_DONE ? 0 : sqlite_to_errno(d->db, r) ?: -EIO;
}
