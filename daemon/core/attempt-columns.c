/* SPDX-License-Identifier: MIT */
#include <limits.h>

#include "attempt.h"

const AttemptColumn attempt_columns[_ATTEMPT_COLUMN_MAX] = {
#define ATTEMPT_COLUMN_ENTRY_(n, N, type, k, f, a) \
        [ATTEMPT_COLUMN_##n] = {                   \
                .name = #n,                        \
                .journal = "TLSWATCH_" #N,         \
                .sql_type = #type,                 \
                .kind = ATTEMPT_KIND_##k,          \
                .flags = (f),                      \
                .absent = (a),                     \
                .offset = offsetof(Attempt, n),    \
        },
        ATTEMPT_COLUMNS(ATTEMPT_COLUMN_ENTRY_)
#undef ATTEMPT_COLUMN_ENTRY_
};

#define FIELD(a, c, type) ((type *) ((char *) (a) + (c)->offset))
#define CFIELD(a, c, type) ((const type *) ((const char *) (a) + (c)->offset))

int64_t attempt_column_get_int(const Attempt *a, const AttemptColumn *c) {
        switch (c->kind) {
        case ATTEMPT_KIND_INT64: return *CFIELD(a, c, int64_t);
        case ATTEMPT_KIND_UINT16: return *CFIELD(a, c, uint16_t);
        case ATTEMPT_KIND_UINT: return *CFIELD(a, c, unsigned);
        case ATTEMPT_KIND_UINT64: return (int64_t) *CFIELD(a, c, uint64_t);
        case ATTEMPT_KIND_BOOL: return *CFIELD(a, c, bool);
        case ATTEMPT_KIND_INT:
        case ATTEMPT_KIND_OUTCOME:
        case ATTEMPT_KIND_STEP:
        case ATTEMPT_KIND_CLOSE_KIND: return *CFIELD(a, c, int);
        default: return 0;
        }
}

void attempt_column_set_int(Attempt *a, const AttemptColumn *c, int64_t v) {
        switch (c->kind) {
        case ATTEMPT_KIND_INT64: *FIELD(a, c, int64_t) = v; break;
        case ATTEMPT_KIND_UINT16: *FIELD(a, c, uint16_t) = (uint16_t) v; break;
        case ATTEMPT_KIND_UINT: *FIELD(a, c, unsigned) = (unsigned) v; break;
        case ATTEMPT_KIND_UINT64: *FIELD(a, c, uint64_t) = (uint64_t) v; break;
        case ATTEMPT_KIND_BOOL: *FIELD(a, c, bool) = v != 0; break;
        case ATTEMPT_KIND_INT:
        case ATTEMPT_KIND_OUTCOME:
        case ATTEMPT_KIND_STEP:
        case ATTEMPT_KIND_CLOSE_KIND: *FIELD(a, c, int) = (int) v; break;
        default: break;
        }
}

const char *attempt_column_enum_name(const AttemptColumn *c, int i) {
        switch (c->kind) {
        case ATTEMPT_KIND_OUTCOME: return outcome_to_string((Outcome) i);
        case ATTEMPT_KIND_STEP: return handshake_step_to_string((HandshakeStep) i);
        case ATTEMPT_KIND_CLOSE_KIND: return close_kind_to_string((CloseKind) i);
        default: return NULL;
        }
}

int attempt_column_enum_max(const AttemptColumn *c) {
        switch (c->kind) {
        case ATTEMPT_KIND_OUTCOME: return _OUTCOME_MAX;
        case ATTEMPT_KIND_STEP: return _STEP_MAX;
        case ATTEMPT_KIND_CLOSE_KIND: return _CLOSE_KIND_MAX;
        default: return 0;
        }
}

const char *attempt_column_get_text(const Attempt *a, const AttemptColumn *c, size_t *ret_len) {
        const char *p;
        size_t len = 0;

        switch (c->kind) {
        case ATTEMPT_KIND_ADDR:
                p = CFIELD(a, c, char);
                len = strnlen(p, 46);
                break;
        case ATTEMPT_KIND_TEXT:
                p = *CFIELD(a, c, char *);
                len = p ? strlen(p) : 0;
                break;
        case ATTEMPT_KIND_RAW:
                p = CFIELD(a, c, RawString)->data;
                len = p ? CFIELD(a, c, RawString)->len : 0;
                break;
        case ATTEMPT_KIND_OUTCOME:
        case ATTEMPT_KIND_STEP:
        case ATTEMPT_KIND_CLOSE_KIND:
                p = attempt_column_enum_name(c, *CFIELD(a, c, int));
                len = p ? strlen(p) : 0;
                break;
        default: p = NULL;
        }
        if (ret_len)
                *ret_len = len;
        return p;
}

bool attempt_column_is_null(const Attempt *a, const AttemptColumn *c) {
        switch (c->kind) {
        case ATTEMPT_KIND_ADDR: return false;
        case ATTEMPT_KIND_TEXT: return !*CFIELD(a, c, char *);
        case ATTEMPT_KIND_RAW: return !CFIELD(a, c, RawString)->data;
        case ATTEMPT_KIND_OUTCOME:
        case ATTEMPT_KIND_STEP:
        case ATTEMPT_KIND_CLOSE_KIND: return !attempt_column_enum_name(c, *CFIELD(a, c, int));
        default: return (c->flags & ATTEMPT_NULLABLE) && attempt_column_get_int(a, c) == c->absent;
        }
}

void attempt_init(Attempt *a) {
        *a = (Attempt){};
        FOREACH_ATTEMPT_COLUMN(c)
                if (c->absent != 0)
                        attempt_column_set_int(a, c, c->absent);
}
