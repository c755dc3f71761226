/* SPDX-License-Identifier: MIT */
#include "attempt.h"
#include "attempt-format.h"
#include "decimal.h"
#include "escape.h"

void attempt_json_write(FILE *f, const Attempt *a, bool pretty) {
        fputc('{', f);
        FOREACH_ATTEMPT_COLUMN(c) {
                const char *p;
                size_t len;

                if (c != attempt_columns)
                        fputc(',', f);
                fputs(pretty ? "\n\t\"" : "\"", f);
                fputs(c->name, f);
                fputs(pretty ? "\" : " : "\":", f);
                if (attempt_column_is_null(a, c))
                        fputs("null", f);
                else if (attempt_column_is_text(c) || attempt_column_is_enum(c) || c->kind == ATTEMPT_KIND_ADDR) {
                        p = attempt_column_get_text(a, c, &len);
                        escape_json_fputs(f, p, len);
                } else
                        decimal_fput(f, attempt_column_get_int(a, c));
        }
        fputs(pretty ? "\n}" : "}", f);
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
                const char *p;
                size_t len;

                if (c != attempt_columns)
                        fputc(',', f);
                if (attempt_column_is_null(a, c))
                        continue;
                if (attempt_column_is_text(c) || attempt_column_is_enum(c) || c->kind == ATTEMPT_KIND_ADDR) {
                        p = attempt_column_get_text(a, c, &len);
                        escape_csv_fputs(f, p, len);
                } else
                        decimal_fput(f, attempt_column_get_int(a, c));
        }
        fputs("\r\n", f);
}
