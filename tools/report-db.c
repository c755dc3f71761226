/* SPDX-License-Identifier: MIT */
#include <sqlite3.h>
#include <sys/stat.h>

#include "report.h"
#include "schema.h"

struct ReportDb {
        sqlite3 *db;
};

/* The attempts columns in the order Attempt is filled from; "light" reads NULL instead of the ones that
 * grouping and statistics do not use. */
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
        {"tls_error", false},
        {"error_text", false},
        {"offered_versions", false},
        {"version", false},
        {"cipher", false},
        {"sni", true},
        {"alpn_offered", false},
        {"alpn", false},
        {"ja3", false},
        {"ja3_full", false},
        {"ja4", true},
        {"ja4_r", false},
        {"ja4_o", false},
        {"ja4_ro", false},
        {"ja4_stable", true},
        {"hello_retry", false},
        {"resumed", true},
        {"bytes_in", false},
        {"bytes_out", false},
        {"http_requests", false},
        {"user_agent", false},
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

        r = sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &st, NULL);
        if (r != SQLITE_OK)
                return -EMEDIUMTYPE; /* "file is not a database" */
        r = sqlite3_step(st);
        version = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        if (r != SQLITE_ROW)
                return -EMEDIUMTYPE;
        if (version < 1)
                return -EMEDIUMTYPE;
        (void) schema_version; /* newer schemas only add columns and views: still readable */

        r = sqlite3_prepare_v2(d->db, "SELECT id, started_us, outcome FROM attempts LIMIT 0", -1, &st, NULL);
        sqlite3_finalize(st);
        if (r != SQLITE_OK)
                return -EMEDIUMTYPE;

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

static char *column_text(sqlite3_stmt *st, int i) {
        return (char *) sqlite3_column_text(st, i);
}

static RawString column_raw(sqlite3_stmt *st, int i) {
        const unsigned char *p = sqlite3_column_text(st, i);

        return (RawString){.data = (char *) p, .len = p ? (size_t) sqlite3_column_bytes(st, i) : 0};
}

static int column_int_or(sqlite3_stmt *st, int i, int dflt) {
        return sqlite3_column_type(st, i) == SQLITE_NULL ? dflt : sqlite3_column_int(st, i);
}

/* An address column into the record's fixed buffer (truncated; the daemon never writes longer ones). */
static void copy_addr(sqlite3_stmt *st, int i, char ret[static 46]) {
        const unsigned char *p = sqlite3_column_text(st, i);
        size_t n = p ? MIN((size_t) sqlite3_column_bytes(st, i), (size_t) 45) : 0;

        if (n > 0)
                memcpy(ret, p, n);
        ret[n] = '\0';
}

static void row_to_attempt(sqlite3_stmt *st, bool full, Attempt *a) {
        Outcome o;
        HandshakeStep step;

        *a = (Attempt){
                .id = sqlite3_column_int64(st, COL_ID),
                .started_us = sqlite3_column_int64(st, COL_STARTED),
                .ended_us = sqlite3_column_int64(st, COL_ENDED),
                .alert_received = column_int_or(st, COL_ALERT_RECEIVED, -1),
                .alert_sent = column_int_or(st, COL_ALERT_SENT, -1),
                .sni = column_raw(st, COL_SNI),
                .ja4 = column_text(st, COL_JA4),
                .ja4_stable = column_text(st, COL_JA4_STABLE),
                .resumed = sqlite3_column_int(st, COL_RESUMED) != 0,
        };
        copy_addr(st, COL_PEER_ADDR, a->peer_addr);
        o = outcome_from_string(column_text(st, COL_OUTCOME));
        a->outcome = o >= 0 ? o : OUTCOME_SERVER_ERROR;
        step = handshake_step_from_string(column_text(st, COL_STATE));
        a->state_reached = step >= 0 ? step : STEP_CONNECTED;
        if (!full)
                return; /* the other columns were not selected */

        a->peer_port = (uint16_t) sqlite3_column_int(st, COL_PEER_PORT);
        a->local_port = (uint16_t) sqlite3_column_int(st, COL_LOCAL_PORT);
        copy_addr(st, COL_LOCAL_ADDR, a->local_addr);
        a->tls_error = column_int_or(st, COL_TLS_ERROR, 0);
        a->error_text = column_text(st, COL_ERROR_TEXT);
        a->offered_versions = column_text(st, COL_OFFERED_VERSIONS);
        a->version = column_text(st, COL_VERSION);
        a->cipher = column_text(st, COL_CIPHER);
        a->alpn_offered = column_raw(st, COL_ALPN_OFFERED);
        a->alpn = column_raw(st, COL_ALPN);
        a->ja3 = column_text(st, COL_JA3);
        a->ja3_full = column_text(st, COL_JA3_FULL);
        a->ja4_r = column_text(st, COL_JA4_R);
        a->ja4_o = column_text(st, COL_JA4_O);
        a->ja4_ro = column_text(st, COL_JA4_RO);
        a->hello_retry = sqlite3_column_int(st, COL_HELLO_RETRY) != 0;
        a->bytes_in = (uint64_t) sqlite3_column_int64(st, COL_BYTES_IN);
        a->bytes_out = (uint64_t) sqlite3_column_int64(st, COL_BYTES_OUT);
        a->http_requests = (unsigned) sqlite3_column_int(st, COL_HTTP_REQUESTS);
        a->user_agent = column_raw(st, COL_USER_AGENT);
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
        int r;

        len += (size_t) snprintf(sql + len, sizeof sql - len, "SELECT ");
        for (size_t i = 0; i < _COL_MAX; i++)
                len += (size_t) snprintf(
                        sql + len,
                        sizeof sql - len,
                        "%s%s",
                        i > 0 ? ", " : "",
                        full || columns[i].light ? columns[i].name : "NULL");
        (void) snprintf(
                sql + len,
                sizeof sql - len,
                " FROM attempts INDEXED BY attempts_started WHERE started_us >= ?1 AND started_us < ?2"
                " ORDER BY started_us, id");

        r = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
        if (r != SQLITE_OK)
                return sqlite_to_errno(r);
        sqlite3_bind_int64(st, 1, f->since_us);
        sqlite3_bind_int64(st, 2, f->until_us);

        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                Attempt a;

                row_to_attempt(st, full, &a);
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

int report_db_foreach_user_agent(ReportDb *d, const ReportFilter *f, ReportUserAgentHandler h, void *userdata) {
        sqlite3_stmt *st = NULL;
        int r;

        r = sqlite3_prepare_v2(
                d->db,
                /* aggregated by the caller: cheaper than a GROUP BY, which would sort every row */
                "SELECT ja4_stable, user_agent FROM attempts INDEXED BY attempts_started"
                " WHERE started_us >= ?1 AND started_us < ?2 AND outcome = 'ok'"
                " AND ja4_stable IS NOT NULL AND user_agent IS NOT NULL",
                -1,
                &st,
                NULL);
        if (r != SQLITE_OK)
                return sqlite_to_errno(r);
        sqlite3_bind_int64(st, 1, f->since_us);
        sqlite3_bind_int64(st, 2, f->until_us);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                RawString ua = column_raw(st, 1);

                r = h(column_text(st, 0), &ua, 1, userdata);
                if (r < 0) {
                        sqlite3_finalize(st);
                        return r;
                }
        }
        sqlite3_finalize(st);
        return r == SQLITE_DONE ? 0 : sqlite_to_errno(r);
}
