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

void attempt_json_write(FILE *f, const Attempt *a, bool pretty) {
        attempt_json_write_host(f, a, pretty, false, NULL);
}

void attempt_json_write_host(FILE *f, const Attempt *a, bool pretty, bool with_host, const char *host) {
        const Key *keys = pretty ? json_pretty_keys : json_keys;

        fputc('{', f);
        if (with_host) {
                fputs(pretty ? "\n\t\"host\" : " : "\"host\":", f);
                if (host)
                        escape_json_fputs(f, host, strlen(host));
                else
                        fputs("null", f);
        }
        FOREACH_ATTEMPT_COLUMN(c) {
                const Key *k = &keys[c - attempt_columns];
                const char *p = NULL;
                size_t len = 0;
                int64_t v = 0;

                /* the first key without the comma before it */
                if (c == attempt_columns && !with_host)
                        fwrite(k->text + 1, 1, k->len - 1, f);
                else
                        fwrite(k->text, 1, k->len, f);
                switch (attempt_column_value(a, c, &v, &p, &len)) {
                case ATTEMPT_VALUE_NULL: fwrite("null", 1, 4, f); break;
                case ATTEMPT_VALUE_INT: decimal_fput(f, v); break;
                case ATTEMPT_VALUE_TEXT: escape_json_fputs(f, p, len); break;
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
                switch (attempt_column_value(a, c, &v, &p, &len)) {
                case ATTEMPT_VALUE_NULL: break;
                case ATTEMPT_VALUE_INT: decimal_fput(f, v); break;
                case ATTEMPT_VALUE_TEXT: escape_csv_fputs(f, p, len); break;
                }
        }
        fputs("\r\n", f);
}
