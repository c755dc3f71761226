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
        const char *p = NULL;
        size_t len = 0;
        int64_t v;

        if (attempt_column_value(a, c, &v, &p, &len) != ATTEMPT_VALUE_TEXT)
                p = NULL, len = 0;
        if (ret_len)
                *ret_len = len;
        return p;
}

bool attempt_column_is_null(const Attempt *a, const AttemptColumn *c) {
        const char *p;
        size_t len;
        int64_t v;

        return attempt_column_value(a, c, &v, &p, &len) == ATTEMPT_VALUE_NULL;
}

void attempt_init(Attempt *a) {
        *a = (Attempt){};
        FOREACH_ATTEMPT_COLUMN(c)
                if (c->absent != 0)
                        attempt_column_set_int(a, c, c->absent);
}
