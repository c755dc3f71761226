/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "attempt-sql.h"

uint64_t attempt_columns_grouping(void) {
        uint64_t set = 0;

        FOREACH_ATTEMPT_COLUMN(c)
                if (c->flags & ATTEMPT_GROUPING)
                        set |= ATTEMPT_COLUMN_BIT(c - attempt_columns);
        return set;
}

char *attempt_insert_sql(void) {
        char *sql = NULL;
        size_t size = 0;
        unsigned n = 0;
        FILE *f = open_memstream(&sql, &size);
        bool failed;

        if (!f)
                return NULL;
        fputs("INSERT INTO attempts (", f);
        FOREACH_ATTEMPT_COLUMN(c)
                if (!(c->flags & ATTEMPT_ROWID))
                        fprintf(f, "%s%s", n++ > 0 ? ", " : "", c->name);
        fputs(") VALUES (", f);
        for (unsigned i = 1; i <= n; i++)
                fprintf(f, "%s?%u", i > 1 ? ", " : "", i);
        fputc(')', f);
        failed = ferror(f);
        if (fclose(f) != 0 || failed) {
                free(sql);
                return NULL;
        }
        return sql;
}

int attempt_bind(sqlite3_stmt *st, const Attempt *a) {
        int rc = SQLITE_OK, i = 0;

        FOREACH_ATTEMPT_COLUMN(c) {
                const char *p;
                size_t len;
                int64_t v;

                if (c->flags & ATTEMPT_ROWID)
                        continue;
                i++;
                if (attempt_column_is_null(a, c)) {
                        rc = sqlite3_bind_null(st, i);
                } else if (attempt_column_is_text(c) || attempt_column_is_enum(c) || c->kind == ATTEMPT_KIND_ADDR) {
                        /* client-chosen bytes too: with their length, whatever they contain */
                        p = attempt_column_get_text(a, c, &len);
                        rc = sqlite3_bind_text64(st, i, p, len, SQLITE_STATIC, SQLITE_UTF8);
                } else {
                        v = attempt_column_get_int(a, c);
                        if (c->kind == ATTEMPT_KIND_UINT64 && v < 0) /* beyond INT64_MAX: clamped */
                                v = INT64_MAX;
                        rc = sqlite3_bind_int64(st, i, v);
                }
                if (rc != SQLITE_OK)
                        return rc;
        }
        return rc;
}

int attempt_select_init(AttemptSelect *sel, uint64_t columns, char *buf, size_t size) {
        size_t len = 0;

        sel->n = 0;
        attempt_init(&sel->blank);
        if (size > 0)
                buf[0] = '\0';
        FOREACH_ATTEMPT_COLUMN(c) {
                size_t id = (size_t) (c - attempt_columns);
                int k;

                if (!(columns & ATTEMPT_COLUMN_BIT(id))) {
                        sel->at[id] = -1;
                        continue;
                }
                k = snprintf(buf + len, size - len, "%s%s", sel->n > 0 ? ", " : "", c->name);
                if (k < 0 || (size_t) k >= size - len)
                        return -ENOBUFS;
                len += (size_t) k;
                sel->at[id] = (int8_t) sel->n;
                sel->selected[sel->n].column = c;
                sel->selected[sel->n].n_names = 0;
                if (attempt_column_is_enum(c)) {
                        int max = attempt_column_enum_max(c);

                        if (max > ATTEMPT_ENUM_VALUES_MAX)
                                return -E2BIG;
                        for (int v = 0; v < max; v++) {
                                const char *name = attempt_column_enum_name(c, v);

                                sel->selected[sel->n].names[v] = name;
                                sel->selected[sel->n].name_lens[v] = (uint8_t) (name ? strlen(name) : 0);
                        }
                        sel->selected[sel->n].n_names = max;
                }
                sel->n++;
        }
        return (int) len;
}

void attempt_row_read(sqlite3_stmt *st, const AttemptSelect *sel, Attempt *ret) {
        *ret = sel->blank;
        for (unsigned i = 0; i < sel->n; i++) {
                const AttemptColumn *c = sel->selected[i].column;
                char *field = (char *) ret + c->offset;
                const unsigned char *p;
                size_t n;
                int64_t v;

                switch (c->kind) {
                case ATTEMPT_KIND_ADDR:
                        /* into the record's fixed buffer (truncated; the daemon never writes longer ones) */
                        p = sqlite3_column_text(st, (int) i);
                        n = p ? MIN((size_t) sqlite3_column_bytes(st, (int) i), sizeof(AttemptAddr) - 1) : 0;
                        if (n > 0)
                                memcpy(field, p, n);
                        field[n] = '\0';
                        break;
                case ATTEMPT_KIND_TEXT: *(char **) field = (char *) sqlite3_column_text(st, (int) i); break;
                case ATTEMPT_KIND_RAW:
                        p = sqlite3_column_text(st, (int) i);
                        *(RawString *) field = (RawString){
                                .data = (char *) p,
                                .len = p ? (size_t) sqlite3_column_bytes(st, (int) i) : 0,
                        };
                        break;
                case ATTEMPT_KIND_OUTCOME:
                case ATTEMPT_KIND_STEP:
                case ATTEMPT_KIND_CLOSE_KIND:
                        /* by its name as SQLite hands it: lengths first, so that most names are rejected
                         * without a byte compared; an unknown name leaves the absent value */
                        p = sqlite3_column_text(st, (int) i);
                        if (!p)
                                break;
                        n = (size_t) sqlite3_column_bytes(st, (int) i);
                        for (int k = 0; k < sel->selected[i].n_names; k++) {
                                const char *name = sel->selected[i].names[k];

                                if (name && sel->selected[i].name_lens[k] == n && name[0] == (char) p[0] &&
                                    memcmp(name, p, n) == 0) {
                                        *(int *) field = k;
                                        break;
                                }
                        }
                        break;
                default:
                        /* NULL reads as 0: only a column whose absent value is not 0 needs to ask */
                        if (c->absent != 0 && sqlite3_column_type(st, (int) i) == SQLITE_NULL)
                                break;
                        v = sqlite3_column_int64(st, (int) i);
                        switch (c->kind) {
                        case ATTEMPT_KIND_INT64: *(int64_t *) field = v; break;
                        case ATTEMPT_KIND_UINT64: *(uint64_t *) field = (uint64_t) v; break;
                        case ATTEMPT_KIND_UINT16: *(uint16_t *) field = (uint16_t) v; break;
                        case ATTEMPT_KIND_UINT: *(unsigned *) field = (unsigned) v; break;
                        case ATTEMPT_KIND_BOOL: *(bool *) field = v != 0; break;
                        default: *(int *) field = (int) v;
                        }
                }
        }
}
