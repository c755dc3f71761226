/* SPDX-License-Identifier: MIT */
#pragma once

/* The columns of an attempt (included by attempt.h; include that): the one description of the table
 * `attempts` (schema/NNNN-*.sql) as the code sees it. Everything that handles every column is driven by it:
 * the INSERT and its binding (record/attempt-sql.c), the row reader of tlsreport (same file), the TLSWATCH_*
 * journal fields (record/journal.c), attempt_free() and attempt_dup() (attempt.c), and the JSON and CSV of
 * an attempt (attempt-format.c) that both the daemon's page and tlsreport write.
 * tests/test-attempt-columns.c checks it against the migrated schema.
 *
 * Adding a column: a migration (schema/), one line below in the table's order, and the docs
 * (schema/README.md, man/tlswatchd.8.scd); then the code that sets the new field. The list declares the
 * fields of Attempt (attempt.h) too. See schema/README.md.
 *
 * X(name, NAME, SQL type, kind, flags, absent):
 *   name    the column, the Attempt field, the JSON key and the CSV header; NAME gives the journal field
 *           TLSWATCH_NAME
 *   kind    the field's C type (ATTEMPT_CTYPE_kind), see AttemptColumnKind
 *   flags   ATTEMPT_NULLABLE: the column may be NULL, which the field says by holding `absent` (integer
 *           and enum kinds) or NULL (text kinds); ATTEMPT_ROWID: the row id, which the store gives
 *           (store_reserve_id()); ATTEMPT_GROUPING: in the covering index attempts_started_grouping,
 *           which tlsreport reads alone when it groups
 *   absent  what the field holds when the column is NULL, not read, or not a known name (enum kinds);
 *           attempt_new() starts with it */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define ATTEMPT_COLUMNS(X)                                                                              \
        X(id, ID, INTEGER, INT64, ATTEMPT_ROWID | ATTEMPT_NULLABLE | ATTEMPT_GROUPING, 0)               \
        X(started_us, STARTED_US, INTEGER, INT64, ATTEMPT_GROUPING, 0)                                  \
        X(ended_us, ENDED_US, INTEGER, INT64, ATTEMPT_GROUPING, 0)                                      \
        X(peer_addr, PEER_ADDR, TEXT, ADDR, ATTEMPT_GROUPING, 0)                                        \
        X(peer_port, PEER_PORT, INTEGER, UINT16, 0, 0)                                                  \
        X(local_addr, LOCAL_ADDR, TEXT, ADDR, 0, 0)                                                     \
        X(local_port, LOCAL_PORT, INTEGER, UINT16, 0, 0)                                                \
        X(outcome, OUTCOME, TEXT, OUTCOME, ATTEMPT_GROUPING, OUTCOME_SERVER_ERROR)                      \
        X(state_reached, STATE_REACHED, TEXT, STEP, ATTEMPT_GROUPING, STEP_CONNECTED)                   \
        X(alert_received, ALERT_RECEIVED, INTEGER, INT, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, -1)        \
        X(alert_sent, ALERT_SENT, INTEGER, INT, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, -1)                \
        X(tls_error, TLS_ERROR, INTEGER, INT, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, 0)                   \
        X(error_text, ERROR_TEXT, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                      \
        X(offered_versions, OFFERED_VERSIONS, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                          \
        X(version, VERSION, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                            \
        X(cipher, CIPHER, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                              \
        X(sni, SNI, TEXT, RAW, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, 0)                                  \
        X(alpn_offered, ALPN_OFFERED, TEXT, RAW, ATTEMPT_NULLABLE, 0)                                   \
        X(alpn, ALPN, TEXT, RAW, ATTEMPT_NULLABLE, 0)                                                   \
        X(ja3, JA3, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                                    \
        X(ja3_full, JA3_FULL, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                          \
        X(ja4, JA4, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                                    \
        X(ja4_r, JA4_R, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                                \
        X(ja4_o, JA4_O, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                                \
        X(ja4_ro, JA4_RO, TEXT, TEXT, ATTEMPT_NULLABLE, 0)                                              \
        X(ja4_stable, JA4_STABLE, TEXT, TEXT, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, 0)                   \
        X(hello_retry, HELLO_RETRY, INTEGER, BOOL, 0, 0)                                                \
        X(resumed, RESUMED, INTEGER, BOOL, ATTEMPT_GROUPING, 0)                                         \
        X(bytes_in, BYTES_IN, INTEGER, UINT64, ATTEMPT_GROUPING, 0)                                     \
        X(bytes_out, BYTES_OUT, INTEGER, UINT64, ATTEMPT_GROUPING, 0)                                   \
        X(http_requests, HTTP_REQUESTS, INTEGER, UINT, 0, 0)                                            \
        X(user_agent, USER_AGENT, TEXT, RAW, ATTEMPT_NULLABLE, 0)                                       \
        X(closed_us, CLOSED_US, INTEGER, INT64, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, 0)                 \
        X(close_kind, CLOSE_KIND, TEXT, CLOSE_KIND, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, CLOSE_UNKNOWN) \
        X(backend_error, BACKEND_ERROR, TEXT, TEXT, ATTEMPT_NULLABLE | ATTEMPT_GROUPING, 0)

#define ATTEMPT_CTYPE_INT64 int64_t
#define ATTEMPT_CTYPE_INT int
#define ATTEMPT_CTYPE_UINT16 uint16_t
#define ATTEMPT_CTYPE_UINT unsigned
#define ATTEMPT_CTYPE_UINT64 uint64_t
#define ATTEMPT_CTYPE_BOOL bool
#define ATTEMPT_CTYPE_ADDR AttemptAddr
#define ATTEMPT_CTYPE_TEXT char *
#define ATTEMPT_CTYPE_RAW RawString
#define ATTEMPT_CTYPE_OUTCOME Outcome
#define ATTEMPT_CTYPE_STEP HandshakeStep
#define ATTEMPT_CTYPE_CLOSE_KIND CloseKind

typedef struct Attempt Attempt;

typedef enum AttemptColumnKind {
        ATTEMPT_KIND_INT64,      /* int64_t */
        ATTEMPT_KIND_INT,        /* int */
        ATTEMPT_KIND_UINT16,     /* uint16_t */
        ATTEMPT_KIND_UINT,       /* unsigned */
        ATTEMPT_KIND_UINT64,     /* uint64_t, stored clamped to INT64_MAX */
        ATTEMPT_KIND_BOOL,       /* bool, stored as 0 or 1 */
        ATTEMPT_KIND_ADDR,       /* char[46], a numeric address, never NULL */
        ATTEMPT_KIND_TEXT,       /* char *, our own text */
        ATTEMPT_KIND_RAW,        /* RawString: client-chosen bytes, stored exactly as received */
        ATTEMPT_KIND_OUTCOME,    /* Outcome, stored by name */
        ATTEMPT_KIND_STEP,       /* HandshakeStep, stored by name */
        ATTEMPT_KIND_CLOSE_KIND, /* CloseKind, stored by name */
        _ATTEMPT_KIND_MAX,
} AttemptColumnKind;

enum {
        ATTEMPT_NULLABLE = 1 << 0,
        ATTEMPT_ROWID = 1 << 1,
        ATTEMPT_GROUPING = 1 << 2,
};

/* ATTEMPT_COLUMN_id, ATTEMPT_COLUMN_started_us, ...: a column's index in attempt_columns[]. */
typedef enum AttemptColumnId {
#define ATTEMPT_COLUMN_ID_(name, NAME, type, kind, flags, absent) ATTEMPT_COLUMN_##name,
        ATTEMPT_COLUMNS(ATTEMPT_COLUMN_ID_)
#undef ATTEMPT_COLUMN_ID_
                _ATTEMPT_COLUMN_MAX,
} AttemptColumnId;

typedef struct AttemptColumn {
        const char *name;     /* column, field, JSON key, CSV header */
        const char *journal;  /* "TLSWATCH_NAME" */
        const char *sql_type; /* "INTEGER" or "TEXT", as PRAGMA table_info() shows it */
        AttemptColumnKind kind;
        unsigned flags;
        int64_t absent;
        size_t offset; /* of the field in Attempt */
} AttemptColumn;

extern const AttemptColumn attempt_columns[_ATTEMPT_COLUMN_MAX];

#define FOREACH_ATTEMPT_COLUMN(c) FOREACH_ARRAY(c, attempt_columns, _ATTEMPT_COLUMN_MAX)

static inline bool attempt_column_is_text(const AttemptColumn *c) {
        return c->kind == ATTEMPT_KIND_TEXT || c->kind == ATTEMPT_KIND_RAW;
}

static inline bool attempt_column_is_enum(const AttemptColumn *c) {
        return c->kind == ATTEMPT_KIND_OUTCOME || c->kind == ATTEMPT_KIND_STEP ||
                c->kind == ATTEMPT_KIND_CLOSE_KIND;
}

/* An integer, bool or enum column's value, as the database holds it (uint64_t as is: callers that store it
 * clamp). Only for those kinds. */
int64_t attempt_column_get_int(const Attempt *a, const AttemptColumn *c) _pure_;
void attempt_column_set_int(Attempt *a, const AttemptColumn *c, int64_t v);

/* Whether the column is NULL for this attempt: a nullable column holding its absent value (or NULL
 * text), or an enum holding no known value. */
bool attempt_column_is_null(const Attempt *a, const AttemptColumn *c) _pure_;

/* The bytes of a text, raw, address or enum column (an enum's name); NULL when NULL. */
const char *attempt_column_get_text(const Attempt *a, const AttemptColumn *c, size_t *ret_len);

/* The name of value i of an enum column, NULL if it names nothing (CLOSE_UNKNOWN included). */
const char *attempt_column_enum_name(const AttemptColumn *c, int i) _pure_;
/* The number of values of an enum column. */
int attempt_column_enum_max(const AttemptColumn *c) _pure_;

/* Sets every integer and enum field to its absent value, every string to NULL. */
void attempt_init(Attempt *a);
