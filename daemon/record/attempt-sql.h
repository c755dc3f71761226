/* SPDX-License-Identifier: MIT */
#pragma once

/* Attempts to and from SQLite, column by column as attempt-columns.h lists them: the INSERT statement and
 * its binding (the store), and the one row reader (tlsreport, the tests). */

#include <sqlite3.h>
#include <stdint.h>

#include "attempt.h"

_Static_assert(_ATTEMPT_COLUMN_MAX <= 64, "a column set is a 64-bit mask");

/* A set of columns: bit i is attempt_columns[i]. */
#define ATTEMPT_COLUMN_BIT(id) (UINT64_C(1) << (id))
#define ATTEMPT_COLUMNS_ALL ((_ATTEMPT_COLUMN_MAX == 64 ? 0 : UINT64_C(1) << _ATTEMPT_COLUMN_MAX) - 1)
/* The columns in tlsreport's covering index (ATTEMPT_GROUPING). */
uint64_t attempt_columns_grouping(void) _pure_;

/* "INSERT INTO attempts (started_us, ...) VALUES (?1, ...)": every column SQLite does not assign. Returns a
 * malloc'ed string, NULL on out of memory. */
char *attempt_insert_sql(void);
/* Binds a's columns to such a statement. Returns an SQLite result code. The strings are bound without a
 * copy: a must outlive the statement's next step. */
int attempt_bind(sqlite3_stmt *st, const Attempt *a);

#define ATTEMPT_ENUM_VALUES_MAX 16

/* Which result column of a SELECT holds which attempt column, grouped by kind with what reading needs at
 * hand: the reader runs for every column of millions of rows, and a loop per kind dispatches once per kind
 * instead of once per column. */
typedef struct AttemptSelected {
        uint16_t offset; /* of the field in Attempt */
        uint8_t result;  /* result column */
        bool ask_null;   /* NULL must be told from 0: the absent value is not 0 */
} AttemptSelected;

typedef struct AttemptSelect {
        int8_t at[_ATTEMPT_COLUMN_MAX]; /* result column, -1 if not selected */
        unsigned n; /* selected columns: result columns 0..n-1; further ones are the caller's */
        AttemptSelected by_kind[_ATTEMPT_KIND_MAX][_ATTEMPT_COLUMN_MAX];
        uint8_t n_by_kind[_ATTEMPT_KIND_MAX];
        struct {
                uint8_t n; /* the named values of an enum kind */
                uint8_t lens[ATTEMPT_ENUM_VALUES_MAX], values[ATTEMPT_ENUM_VALUES_MAX];
                const char *names[ATTEMPT_ENUM_VALUES_MAX];
        } enums[_ATTEMPT_KIND_MAX];
        Attempt blank; /* an attempt with every column absent */
} AttemptSelect;

/* Selects the columns of the set, in the table's order. Writes their comma-separated names to buf ("id,
 * started_us, ...") and returns the length written, or -ENOBUFS. */
int attempt_select_init(AttemptSelect *sel, uint64_t columns, char *buf, size_t size);

/* The current row of st (a SELECT of sel's columns first) as an attempt. The strings point into SQLite's
 * row: valid until the next step, reset or finalize (attempt_dup() keeps a copy). A column not selected
 * or NULL reads as its absent value; an unknown enum name as its absent value too. */
void attempt_row_read(sqlite3_stmt *st, const AttemptSelect *sel, Attempt *ret);
