/* SPDX-License-Identifier: MIT */
#include <sqlite3.h>
#include <sys/stat.h>

#include "report.h"
#include "schema.h"

struct ReportDb {
        sqlite3 *db;
        bool has_close; /* closed_us and close_kind exist (migration 4) */
};

/* The attempts columns in the order Attempt is filled from; "light" reads NULL instead of the ones that
 * grouping, statistics and the diagnosis do not use. */
static const struct {
        const char *name;
        bool light;
} columns[] = {
        {"id", true},
        {"started_us", true},
        {"ended_us", true},
        {"peer_addr", true},
        {"peer_port", false},
        {"local_addr", false},
        {"local_port", false},
        {"outcome", true},
        {"state_reached", true},
        {"alert_received", true},
        {"alert_sent", true},
        {"tls_error", true},
        {"error_text", false},
        {"offered_versions", false},
        {"version", false},
        {"cipher", false},
        {"sni", true},
        {"alpn_offered", false},
        {"alpn", false},
        {"ja3", false},
        {"ja3_full", false},
        {"ja4", false}, /* selected when the --ja4 filter needs it */
        {"ja4_r", false},
        {"ja4_o", false},
        {"ja4_ro", false},
        {"ja4_stable", true},
        {"hello_retry", false},
        {"resumed", true},
        {"bytes_in", true},
        {"bytes_out", true},
        {"http_requests", false},
        {"user_agent", false},
        {"closed_us", true},  /* migration 4 */
        {"close_kind", true}, /* migration 4 */
};

enum {
        COL_ID,
        COL_STARTED,
        COL_ENDED,
        COL_PEER_ADDR,
        COL_PEER_PORT,
        COL_LOCAL_ADDR,
        COL_LOCAL_PORT,
        COL_OUTCOME,
        COL_STATE,
        COL_ALERT_RECEIVED,
        COL_ALERT_SENT,
        COL_TLS_ERROR,
        COL_ERROR_TEXT,
        COL_OFFERED_VERSIONS,
        COL_VERSION,
        COL_CIPHER,
        COL_SNI,
        COL_ALPN_OFFERED,
        COL_ALPN,
        COL_JA3,
        COL_JA3_FULL,
        COL_JA4,
        COL_JA4_R,
        COL_JA4_O,
        COL_JA4_RO,
        COL_JA4_STABLE,
        COL_HELLO_RETRY,
        COL_RESUMED,
        COL_BYTES_IN,
        COL_BYTES_OUT,
        COL_HTTP_REQUESTS,
        COL_USER_AGENT,
        COL_CLOSED,
        COL_CLOSE_KIND,
        _COL_MAX,
};

_Static_assert(ELEMENTSOF(columns) == _COL_MAX, "column table");

void report_filter_init(ReportFilter *f) {
        *f = (ReportFilter){.since_us = INT64_MIN, .until_us = INT64_MAX};
}

bool report_filter_match(const ReportFilter *f, const Attempt *a) {
        if (f->client) {
                char key[SEQUENCE_CLIENT_MAX];

                if (!streq(a->peer_addr, f->client)) {
                        sequence_client_key(a->peer_addr, key);
                        if (!streq(key, f->client_key))
                                return false;
                }
        }
        if (f->ja4 && !streq_ptr(a->ja4, f->ja4) && !streq_ptr(a->ja4_stable, f->ja4))
                return false;
        if (f->sni &&
            (!a->sni.data || a->sni.len != strlen(f->sni) || memcmp(a->sni.data, f->sni, a->sni.len) != 0))
                return false;
        return true;
}

int report_db_open(const char *path, ReportDb **ret) {
        _cleanup_(report_db_closep) ReportDb *d = NULL;
        sqlite3_stmt *st = NULL;
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
                return r == SQLITE_NOMEM ? -ENOMEM : -EIO;
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
        /* a database the daemon has not migrated to 4 yet (we open read-only) lacks them */
        r = sqlite3_prepare_v2(d->db, "SELECT closed_us, close_kind FROM attempts LIMIT 0", -1, &st, NULL);
        sqlite3_finalize(st);
        d->has_close = r == SQLITE_OK;

        *ret = TAKE_PTR(d);
        return 0;
}

ReportDb *report_db_close(ReportDb *d) {
        if (!d)
                return NULL;
        sqlite3_close_v2(d->db);
        free(d);
        return NULL;
}

const char *report_db_error(ReportDb *d) {
        return d && d->db ? sqlite3_errmsg(d->db) : "no database";
}

/* Result column numbers of one statement: the attempts columns it selects, -1 for the others. */
typedef struct ColumnMap {
        int8_t at[_COL_MAX];
} ColumnMap;

static char *column_text(sqlite3_stmt *st, const ColumnMap *m, int c) {
        return m->at[c] < 0 ? NULL : (char *) sqlite3_column_text(st, m->at[c]);
}

static RawString column_raw(sqlite3_stmt *st, const ColumnMap *m, int c) {
        const unsigned char *p;

        if (m->at[c] < 0)
                return (RawString){};
        p = sqlite3_column_text(st, m->at[c]);
        return (RawString){.data = (char *) p, .len = p ? (size_t) sqlite3_column_bytes(st, m->at[c]) : 0};
}

static int64_t column_int64(sqlite3_stmt *st, const ColumnMap *m, int c) {
        return m->at[c] < 0 ? 0 : sqlite3_column_int64(st, m->at[c]);
}

static int column_int_or(sqlite3_stmt *st, const ColumnMap *m, int c, int dflt) {
        return m->at[c] < 0 || sqlite3_column_type(st, m->at[c]) == SQLITE_NULL
                ? dflt
                : sqlite3_column_int(st, m->at[c]);
}

/* An address column into the record's fixed buffer (truncated; the daemon never writes longer ones). */
static void copy_addr(sqlite3_stmt *st, const ColumnMap *m, int c, char ret[static 46]) {
        const unsigned char *p = m->at[c] < 0 ? NULL : sqlite3_column_text(st, m->at[c]);
        size_t n = p ? MIN((size_t) sqlite3_column_bytes(st, m->at[c]), (size_t) 45) : 0;

        if (n > 0)
                memcpy(ret, p, n);
        ret[n] = '\0';
}

/* A value of a closed set (outcome, state_reached) from its text as SQLite hands it: lengths first, so that
 * most names are rejected without a byte compared. -1 if it is none of them. */
static int column_enum(sqlite3_stmt *st, const ColumnMap *m, int c, const char *(*to_string)(int), int max) {
        const char *p;
        size_t n;

        if (m->at[c] < 0 || !(p = (const char *) sqlite3_column_text(st, m->at[c])))
                return -1;
        n = (size_t) sqlite3_column_bytes(st, m->at[c]);
        for (int i = 0; i < max; i++) {
                const char *name = to_string(i);

                if (name[0] == p[0] && strlen(name) == n && memcmp(name, p, n) == 0)
                        return i;
        }
        return -1;
}

static const char *outcome_name(int i) {
        return outcome_to_string((Outcome) i);
}

static const char *step_name(int i) {
        return handshake_step_to_string((HandshakeStep) i);
}

static const char *close_kind_name(int i) {
        return i == CLOSE_UNKNOWN ? "" : close_kind_to_string((CloseKind) i);
}

static void row_to_attempt(sqlite3_stmt *st, const ColumnMap *m, bool full, Attempt *a) {
        int o, step;

        *a = (Attempt){
                .id = column_int64(st, m, COL_ID),
                .started_us = column_int64(st, m, COL_STARTED),
                .ended_us = column_int64(st, m, COL_ENDED),
                .alert_received = column_int_or(st, m, COL_ALERT_RECEIVED, -1),
                .alert_sent = column_int_or(st, m, COL_ALERT_SENT, -1),
                .tls_error = column_int_or(st, m, COL_TLS_ERROR, 0),
                .sni = column_raw(st, m, COL_SNI),
                .ja4 = column_text(st, m, COL_JA4),
                .ja4_stable = column_text(st, m, COL_JA4_STABLE),
                .resumed = column_int64(st, m, COL_RESUMED) != 0,
                .bytes_in = (uint64_t) column_int64(st, m, COL_BYTES_IN),
                .bytes_out = (uint64_t) column_int64(st, m, COL_BYTES_OUT),
                .closed_us = column_int64(st, m, COL_CLOSED),
        };
        copy_addr(st, m, COL_PEER_ADDR, a->peer_addr);
        o = column_enum(st, m, COL_OUTCOME, outcome_name, _OUTCOME_MAX);
        a->outcome = o >= 0 ? (Outcome) o : OUTCOME_SERVER_ERROR;
        step = column_enum(st, m, COL_STATE, step_name, _STEP_MAX);
        a->state_reached = step >= 0 ? (HandshakeStep) step : STEP_CONNECTED;
        o = column_enum(st, m, COL_CLOSE_KIND, close_kind_name, _CLOSE_KIND_MAX);
        a->close_kind = o >= 0 ? (CloseKind) o : CLOSE_UNKNOWN;
        if (!full)
                return; /* the other columns were not selected */

        a->peer_port = (uint16_t) column_int64(st, m, COL_PEER_PORT);
        a->local_port = (uint16_t) column_int64(st, m, COL_LOCAL_PORT);
        copy_addr(st, m, COL_LOCAL_ADDR, a->local_addr);
        a->error_text = column_text(st, m, COL_ERROR_TEXT);
        a->offered_versions = column_text(st, m, COL_OFFERED_VERSIONS);
        a->version = column_text(st, m, COL_VERSION);
        a->cipher = column_text(st, m, COL_CIPHER);
        a->alpn_offered = column_raw(st, m, COL_ALPN_OFFERED);
        a->alpn = column_raw(st, m, COL_ALPN);
        a->ja3 = column_text(st, m, COL_JA3);
        a->ja3_full = column_text(st, m, COL_JA3_FULL);
        a->ja4_r = column_text(st, m, COL_JA4_R);
        a->ja4_o = column_text(st, m, COL_JA4_O);
        a->ja4_ro = column_text(st, m, COL_JA4_RO);
        a->hello_retry = column_int64(st, m, COL_HELLO_RETRY) != 0;
        a->http_requests = (unsigned) column_int64(st, m, COL_HTTP_REQUESTS);
        a->user_agent = column_raw(st, m, COL_USER_AGENT);
}

static int sqlite_to_errno(int r) {
        switch (r) {
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_PERM:
        case SQLITE_READONLY:
        case SQLITE_CANTOPEN: return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB: return -EBADMSG;
        default: return -EIO;
        }
}

int report_db_foreach_attempt(
        ReportDb *d, const ReportFilter *f, bool full, ReportAttemptHandler h, void *userdata) {
        char sql[2048];
        size_t len = 0;
        sqlite3_stmt *st = NULL;
        ColumnMap map;
        int r, n = 0;

        /* Only the columns needed: every selected column costs SQLite work on every row. */
        len += (size_t) snprintf(sql + len, sizeof sql - len, "SELECT ");
        for (size_t i = 0; i < _COL_MAX; i++) {
                if ((!full && !columns[i].light && !(i == COL_JA4 && f->ja4)) ||
                    (!d->has_close && (i == COL_CLOSED || i == COL_CLOSE_KIND))) {
                        map.at[i] = -1;
                        continue;
                }
                map.at[i] = (int8_t) n;
                len += (size_t) snprintf(
                        sql + len, sizeof sql - len, "%s%s", n++ > 0 ? ", " : "", columns[i].name);
        }
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
                r = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
        }
        if (r != SQLITE_OK) {
                (void) snprintf(
                        sql + len,
                        sizeof sql - len,
                        " FROM attempts WHERE started_us >= ?1 AND started_us < ?2 ORDER BY started_us, id");
                r = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
        }
        if (r != SQLITE_OK)
                return sqlite_to_errno(r);
        sqlite3_bind_int64(st, 1, f->since_us);
        sqlite3_bind_int64(st, 2, f->until_us);

        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                Attempt a;

                row_to_attempt(st, &map, full, &a);
                if (!report_filter_match(f, &a))
                        continue;
                r = h(&a, userdata);
                if (r < 0) {
                        sqlite3_finalize(st);
                        return r;
                }
        }
        sqlite3_finalize(st);
        return r == SQLITE_DONE ? 0 : sqlite_to_errno(r);
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
                return sqlite_to_errno(r);
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
        return r == SQLITE_DONE ? 0 : sqlite_to_errno(r);
}
