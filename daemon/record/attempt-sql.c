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
        FOREACH_ATTEMPT_COLUMN(c) /* the row id too: the store numbers the rows (store_reserve_id()) */
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
                const char *p = NULL;
                size_t len = 0;
                int64_t v = 0;

                i++;
                switch (attempt_column_value(a, c, &v, &p, &len)) {
                case ATTEMPT_VALUE_NULL: rc = sqlite3_bind_null(st, i); break;
                case ATTEMPT_VALUE_TEXT:
                        /* client-chosen bytes too: with their length, whatever they contain */
                        rc = sqlite3_bind_text64(st, i, p, len, SQLITE_STATIC, SQLITE_UTF8);
                        break;
                case ATTEMPT_VALUE_INT:
                        if (c->kind == ATTEMPT_KIND_UINT64 && v < 0) /* beyond INT64_MAX: clamped */
                                v = INT64_MAX;
                        rc = sqlite3_bind_int64(st, i, v);
                        break;
                }
                if (rc != SQLITE_OK)
                        return rc;
        }
        return rc;
}

int attempt_select_init(AttemptSelect *sel, uint64_t columns, char *buf, size_t size) {
        size_t len = 0;

        *sel = (AttemptSelect){};
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
                sel->by_kind[c->kind][sel->n_by_kind[c->kind]++] = (AttemptSelected){
                        .offset = (uint16_t) c->offset,
                        .result = (uint8_t) sel->n,
                        .ask_null = c->absent != 0,
                };
                sel->n++;
        }
        for (AttemptColumnKind kind = ATTEMPT_KIND_OUTCOME; kind <= ATTEMPT_KIND_CLOSE_KIND; kind++) {
                const AttemptColumn c = {.kind = kind};
                int max = attempt_column_enum_max(&c);

                if (max > ATTEMPT_ENUM_VALUES_MAX)
                        return -E2BIG;
                for (int v = 0; v < max; v++) {
                        const char *name = attempt_column_enum_name(&c, v);

                        if (!name) /* CLOSE_UNKNOWN: NULL in the database */
                                continue;
                        sel->enums[kind].names[sel->enums[kind].n] = name;
                        sel->enums[kind].lens[sel->enums[kind].n] = (uint8_t) strlen(name);
                        sel->enums[kind].values[sel->enums[kind].n++] = (uint8_t) v;
                }
        }
        return (int) len;
}

/* The selected columns of one kind: c is each, field its place in ret. */
#define FOREACH_SELECTED(sel, kind, c, field, ret)                                                            \
        for (const AttemptSelected *c = (sel)->by_kind[kind], *_end_ = c + (sel)->n_by_kind[kind]; c < _end_; \
             c++)                                                                                             \
                for (char *field = (char *) (ret) + c->offset; field; field = NULL)

/* An integer column, or -1 for NULL when NULL is not 0 (ask_null). */
#define COLUMN_INT(st, c, ret_null)                                             \
        ((c)->ask_null && sqlite3_column_type((st), (c)->result) == SQLITE_NULL \
                 ? (*(ret_null) = true, 0)                                      \
                 : sqlite3_column_int64((st), (c)->result))

/* The enum columns of one kind, by their names as SQLite hands them: lengths first, so that most names are
 * rejected without a byte compared; an unknown name leaves the absent value. */
static inline void read_enums(
        sqlite3_stmt *st, const AttemptSelect *restrict sel, AttemptColumnKind kind, Attempt *restrict ret) {
        FOREACH_SELECTED(sel, kind, c, field, ret) {
                const unsigned char *p = sqlite3_column_text(st, c->result);
                size_t n;

                if (!p)
                        continue;
                n = (size_t) sqlite3_column_bytes(st, c->result);
                for (unsigned k = 0; k < sel->enums[kind].n; k++)
                        if (sel->enums[kind].lens[k] == n && sel->enums[kind].names[k][0] == (char) p[0] &&
                            memcmp(sel->enums[kind].names[k], p, n) == 0) {
                                *(int *) field = sel->enums[kind].values[k];
                                break;
                        }
        }
}

void attempt_row_read(sqlite3_stmt *st, const AttemptSelect *restrict sel, Attempt *restrict ret) {
        memcpy(ret, &sel->blank, sizeof *ret);

        FOREACH_SELECTED(sel, ATTEMPT_KIND_INT64, c, field, ret) {
                bool null = false;
                int64_t v = COLUMN_INT(st, c, &null);

                if (!null)
                        *(int64_t *) field = v;
        }
        FOREACH_SELECTED(sel, ATTEMPT_KIND_INT, c, field, ret) {
                bool null = false;
                int64_t v = COLUMN_INT(st, c, &null);

                if (!null)
                        *(int *) field = (int) v;
        }
        FOREACH_SELECTED(sel, ATTEMPT_KIND_UINT16, c, field, ret)
        *(uint16_t *) field = (uint16_t) sqlite3_column_int64(st, c->result);
        FOREACH_SELECTED(sel, ATTEMPT_KIND_UINT, c, field, ret)
        *(unsigned *) field = (unsigned) sqlite3_column_int64(st, c->result);
        FOREACH_SELECTED(sel, ATTEMPT_KIND_UINT64, c, field, ret)
        *(uint64_t *) field = (uint64_t) sqlite3_column_int64(st, c->result);
        FOREACH_SELECTED(sel, ATTEMPT_KIND_BOOL, c, field, ret)
        *(bool *) field = sqlite3_column_int64(st, c->result) != 0;
        FOREACH_SELECTED(sel, ATTEMPT_KIND_ADDR, c, field, ret) {
                /* into the record's fixed buffer (truncated; the daemon never writes longer ones) */
                const unsigned char *p = sqlite3_column_text(st, c->result);
                size_t n = p ? MIN((size_t) sqlite3_column_bytes(st, c->result), sizeof(AttemptAddr) - 1) : 0;

                if (n > 0)
                        memcpy(field, p, n);
                field[n] = '\0';
        }
        FOREACH_SELECTED(sel, ATTEMPT_KIND_TEXT, c, field, ret)
        *(char **) field = (char *) sqlite3_column_text(st, c->result);
        FOREACH_SELECTED(sel, ATTEMPT_KIND_RAW, c, field, ret) {
                const unsigned char *p = sqlite3_column_text(st, c->result);

                *(RawString *) field = (RawString){
                        .data = (char *) p,
                        .len = p ? (size_t) sqlite3_column_bytes(st, c->result) : 0,
                };
        }
        read_enums(st, sel, ATTEMPT_KIND_OUTCOME, ret);
        read_enums(st, sel, ATTEMPT_KIND_STEP, ret);
        read_enums(st, sel, ATTEMPT_KIND_CLOSE_KIND, ret);
}
