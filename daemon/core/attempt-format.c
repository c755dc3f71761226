/* SPDX-License-Identifier: MIT */
#include "attempt-format.h"
#include "attempt.h"
#include "decimal.h"
#include "escape.h"

/* Each column's key with the separator before it, as one literal: a report writes millions of them. */
typedef struct Key {
        const char *text;
        size_t len;
} Key;

#define KEY_(s) \
        { s, sizeof(s) - 1 }

static const Key json_keys[_ATTEMPT_COLUMN_MAX] = {
#define JSON_KEY_(n, N, type, kind, flags, absent) [ATTEMPT_COLUMN_##n] = KEY_(",\"" #n "\":"),
        ATTEMPT_COLUMNS(JSON_KEY_)
#undef JSON_KEY_
};

static const Key json_pretty_keys[_ATTEMPT_COLUMN_MAX] = {
#define JSON_PRETTY_KEY_(n, N, type, kind, flags, absent) [ATTEMPT_COLUMN_##n] = KEY_(",\n\t\"" #n "\" : "),
        ATTEMPT_COLUMNS(JSON_PRETTY_KEY_)
#undef JSON_PRETTY_KEY_
};

typedef enum Value {
        VALUE_NULL,
        VALUE_INT,
        VALUE_TEXT,
} Value;

/* A column's value for a's writers: NULL, an integer in *ret_v, or bytes in *ret_p, *ret_len. */
static inline Value
column_value(const Attempt *a, const AttemptColumn *c, int64_t *ret_v, const char **ret_p, size_t *ret_len) {
        const char *field = (const char *) a + c->offset;

        switch (c->kind) {
        case ATTEMPT_KIND_ADDR:
                *ret_p = field;
                *ret_len = strnlen(field, sizeof(AttemptAddr));
                return VALUE_TEXT;
        case ATTEMPT_KIND_TEXT:
                *ret_p = *(char *const *) field;
                if (!*ret_p)
                        return VALUE_NULL;
                *ret_len = strlen(*ret_p);
                return VALUE_TEXT;
        case ATTEMPT_KIND_RAW:
                *ret_p = ((const RawString *) field)->data;
                *ret_len = ((const RawString *) field)->len;
                return *ret_p ? VALUE_TEXT : VALUE_NULL;
        case ATTEMPT_KIND_OUTCOME:
        case ATTEMPT_KIND_STEP:
        case ATTEMPT_KIND_CLOSE_KIND:
                *ret_p = attempt_column_enum_name(c, *(const int *) field);
                if (!*ret_p)
                        return VALUE_NULL;
                *ret_len = strlen(*ret_p);
                return VALUE_TEXT;
        case ATTEMPT_KIND_INT64: *ret_v = *(const int64_t *) field; break;
        case ATTEMPT_KIND_INT: *ret_v = *(const int *) field; break;
        case ATTEMPT_KIND_UINT16: *ret_v = *(const uint16_t *) field; break;
        case ATTEMPT_KIND_UINT: *ret_v = *(const unsigned *) field; break;
        case ATTEMPT_KIND_UINT64: *ret_v = (int64_t) * (const uint64_t *) field; break;
        case ATTEMPT_KIND_BOOL: *ret_v = *(const bool *) field; break;
        default: return VALUE_NULL;
        }
        return (c->flags & ATTEMPT_NULLABLE) && *ret_v == c->absent ? VALUE_NULL : VALUE_INT;
}

void attempt_json_write(FILE *f, const Attempt *a, bool pretty) {
        const Key *keys = pretty ? json_pretty_keys : json_keys;

        fputc('{', f);
        FOREACH_ATTEMPT_COLUMN(c) {
                const Key *k = &keys[c - attempt_columns];
                const char *p = NULL;
                size_t len = 0;
                int64_t v = 0;

                /* the first key without the comma before it */
                if (c == attempt_columns)
                        fwrite(k->text + 1, 1, k->len - 1, f);
                else
                        fwrite(k->text, 1, k->len, f);
                switch (column_value(a, c, &v, &p, &len)) {
                case VALUE_NULL: fwrite("null", 1, 4, f); break;
                case VALUE_INT: decimal_fput(f, v); break;
                case VALUE_TEXT: escape_json_fputs(f, p, len); break;
                }
        }
        if (pretty)
                fputc('\n', f);
        fputc('}', f);
}

void attempt_csv_write_header(FILE *f) {
        FOREACH_ATTEMPT_COLUMN(c) {
                if (c != attempt_columns)
                        fputc(',', f);
                fputs(c->name, f);
        }
        fputs("\r\n", f);
}

void attempt_csv_write(FILE *f, const Attempt *a) {
        FOREACH_ATTEMPT_COLUMN(c) {
                const char *p = NULL;
                size_t len = 0;
                int64_t v = 0;

                if (c != attempt_columns)
                        fputc(',', f);
                switch (column_value(a, c, &v, &p, &len)) {
                case VALUE_NULL: break;
                case VALUE_INT: decimal_fput(f, v); break;
                case VALUE_TEXT: escape_csv_fputs(f, p, len); break;
                }
        }
        fputs("\r\n", f);
}
