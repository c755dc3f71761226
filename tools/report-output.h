/* SPDX-License-Identifier: MIT */
#pragma once

/* What the formatters of tlsreport share (report-sequences.c, report-attempts.c, report-clients.c,
 * report-summary.c): colours, JSON objects, CSV fields, table cells. Inline: they run for every field of
 * reports with hundreds of thousands of lines. */

#include "decimal.h"
#include "escape.h"
#include "hashmap.h"
#include "report.h"

#define ANSI_RED "\x1b[31m"
#define ANSI_GREEN "\x1b[32m"
#define ANSI_YELLOW "\x1b[33m"
#define ANSI_BOLD "\x1b[1m"
#define ANSI_GREY "\x1b[2m"
#define ANSI_RESET "\x1b[0m"

static inline const char *color(const ReportOutput *o, const char *c) {
        return o->color && c ? c : "";
}

/* ---- JSON: flat objects, one per line, or indented with json-pretty ---- */

typedef struct Json {
        ReportOutput *o;
        unsigned fields, depth;
} Json;

static inline void json_begin(Json *j, ReportOutput *o) {
        *j = (Json){.o = o};
        fputc('{', o->f);
}

static inline void json_key(Json *j, const char *key) {
        FILE *f = j->o->f;

        if (j->fields++ > 0)
                fputc(',', f);
        if (j->o->mode == OUTPUT_JSON_PRETTY) {
                fputc('\n', f);
                for (unsigned i = 0; i <= j->depth; i++)
                        fputc('\t', f);
                fputc('"', f);
                fputs(key, f);
                fputs("\" : ", f);
        } else {
                fputc('"', f);
                fputs(key, f);
                fputs("\":", f);
        }
}

static inline void json_end(Json *j) {
        if (j->o->mode == OUTPUT_JSON_PRETTY) {
                fputc('\n', j->o->f);
                for (unsigned i = 0; i < j->depth; i++)
                        fputc('\t', j->o->f);
        }
        fputc('}', j->o->f);
        if (j->depth == 0)
                fputc('\n', j->o->f);
}

static inline void json_str(Json *j, const char *key, const char *value) {
        json_key(j, key);
        if (value)
                escape_json_fputs(j->o->f, value, strlen(value));
        else
                fputs("null", j->o->f);
}

static inline void json_raw(Json *j, const char *key, const RawString *value) {
        json_key(j, key);
        if (value->data)
                escape_json_fputs(j->o->f, value->data, value->len);
        else
                fputs("null", j->o->f);
}

static inline void json_int(Json *j, const char *key, int64_t v) {
        json_key(j, key);
        decimal_fput(j->o->f, v);
}

static inline void json_int_or_null(Json *j, const char *key, int64_t v, bool null) {
        json_key(j, key);
        if (null)
                fputs("null", j->o->f);
        else
                decimal_fput(j->o->f, v);
}

static inline void json_double(Json *j, const char *key, double v, bool null) {
        json_key(j, key);
        if (null)
                fputs("null", j->o->f);
        else
                fprintf(j->o->f, "%.4g", v);
}

/* ---- CSV (RFC 4180: CRLF line ends, quoted fields) ---- */

static inline void csv_str(ReportOutput *o, bool first, const char *s) {
        if (!first)
                fputc(',', o->f);
        if (s)
                escape_csv_fputs(o->f, s, strlen(s));
}

static inline void csv_raw(ReportOutput *o, bool first, const RawString *s) {
        if (!first)
                fputc(',', o->f);
        if (s->data)
                escape_csv_fputs(o->f, s->data, s->len);
}

static inline void csv_int(ReportOutput *o, int64_t v, bool null) {
        fputc(',', o->f);
        if (!null)
                decimal_fput(o->f, v);
}

static inline void csv_end(ReportOutput *o) {
        fputs("\r\n", o->f);
}

/* ---- table helpers ---- */

/* Display width of UTF-8 text that escape_display() produced (no control bytes, no bidi overrides): East
 * Asian wide characters and emoji count 2, combining marks 0. */
size_t text_width(const char *s) _pure_;

/* A raw string for a table cell without a copy where it can: printable ASCII without a backslash as it
 * is, anything else escaped into *ret_alloc (to free); NULL when absent (the cell shows "-"). ascii (not a
 * UTF-8 locale): every byte over 0x7f escaped too, since a terminal that does not decode UTF-8 takes the
 * bytes 0x80-0x9f inside a character (U+045B is d1 9b: 0x9b is CSI) for C1 control codes. */
static inline const char *display_cell(const RawString *s, bool ascii, char **ret_alloc) {
        *ret_alloc = NULL;
        if (!s->data)
                return NULL;
        for (size_t i = 0; i < s->len; i++) {
                unsigned char c = (unsigned char) s->data[i];

                if (c < 0x20 || c >= 0x7f || c == '\\') {
                        char *e = escape_display(s->data, s->len), *o;

                        if (!e || !ascii)
                                return *ret_alloc = e;
                        /* then the UTF-8 that escape_display() kept, byte by byte */
                        *ret_alloc = o = malloc(strlen(e) * 4 + 1);
                        if (!o) {
                                free(e);
                                return NULL;
                        }
                        for (const unsigned char *p = (const unsigned char *) e; *p; p++)
                                if (*p >= 0x80)
                                        o += sprintf(o, "\\x%02x", *p);
                                else
                                        *o++ = (char) *p;
                        *o = '\0';
                        free(e);
                        return *ret_alloc;
                }
        }
        return s->data; /* NUL-terminated (attempt.h) */
}

/* A host name as display_cell() shows a raw string: on a collector it is whatever _HOSTNAME a sender
 * claimed. NULL when absent. */
static inline const char *display_host(const char *host, bool ascii, char **ret_alloc) {
        *ret_alloc = NULL;
        if (!host)
                return NULL;
        return display_cell(&(RawString){.data = (char *) host, .len = strlen(host)}, ascii, ret_alloc);
}

static inline const char *pattern_color(Pattern p) {
        switch (p) {
        case PATTERN_CLEAN: return ANSI_GREEN;
        case PATTERN_CERT_REJECTED_THEN_OK:
        case PATTERN_CERT_REJECTED_AFTER_OK:
        case PATTERN_TRANSIENT_THEN_OK:
        case PATTERN_PROBE: return ANSI_YELLOW;
        default: return ANSI_RED;
        }
}

/* The attempt tokens with runs of the same token summarised: "✗46×7 ✓" ("x46*7 ok" in ASCII), in buf of
 * at least SEQUENCE_TOKENS_SUMMARISED_MAX bytes (24 per token and its count, then "…+N"). The table and
 * the HTML report show them (report-sequences.c). */
#define SEQUENCE_TOKENS_SUMMARISED_MAX (SEQUENCE_DETAILS_MAX * 48 + 32)
void sequence_tokens_summarised(const Sequence *q, bool ascii, char *buf, size_t size);

/* ---- tables that fit the width (report-table.c) ---- */

#define TABLE_COLUMNS_MAX 10

typedef struct TableColumn {
        const char *header;
        unsigned cap;    /* widest when the width is limited (0: the content's) */
        unsigned shrink; /* when the row is too wide, columns give way in this order (1 first; 0: never) */
        unsigned soft;   /* shrink to this first, */
        unsigned hard;   /* then to this */
        unsigned stream; /* the width when streaming (no lookahead) */
        bool right;      /* right-aligned (numbers) */
        bool tokens;     /* attempt tokens: shortened between tokens, coloured by outcome */
} TableColumn;

/* A table whose second column is HOST, without that column when the attempts are one server's (!o->hosts).
 * without: the caller's static array of TABLE_COLUMNS_MAX, filled on first use (the table knows its
 * columns by address). */
static inline const TableColumn *table_columns_host(
        const ReportOutput *o, const TableColumn *all, size_t n, TableColumn *without, size_t *ret_n) {
        if (o->hosts) {
                *ret_n = n;
                return all;
        }
        if (!without[0].header) {
                without[0] = all[0];
                memcpy(without + 1, all + 2, (n - 2) * sizeof *all);
        }
        *ret_n = n - 1;
        return without;
}

/* Adds a row: cells[] (n_columns of them, NULL is "-"), above (a line before it), tag and below (a text
 * word-wrapped on indented lines under it, after the tag if any), colors (optional) per cell. The strings
 * are copied when the row is held: the rows are held until the widths are known (the first
 * TABLE_LOOKAHEAD rows, or none when streaming), then written. */
int table_add(
        ReportOutput *o,
        const TableColumn *columns,
        size_t n_columns,
        const char *const cells[],
        const char *const colors[],
        const char *above,
        const char *tag,
        const char *below,
        const char *below_color);
/* Writes the rows held back. */
void table_flush(ReportOutput *o);
/* Sets the table up (before table_day_change() and table_note(), which keep their state in it). */
bool table_ready(ReportOutput *o, const TableColumn *columns, size_t n_columns);
/* "-- YYYY-MM-DD --" in buf when day differs from the previous row's, else NULL. */
const char *table_day_change(ReportOutput *o, const char *day, char buf[static 32]);
/* The number of the note for this text: texts that differ only in their figures (counts of attempts and
 * programs, delays) share one; other numbers ("TLS 1.0") tell texts apart. *ret_new
 * says it is the first time. 0 when no number is left (write the text in full). */
unsigned table_note(ReportOutput *o, const char *text, bool *ret_new);
/* Writes text from column col of the current line (what is before it is written), word-wrapped at the
 * width, later lines indented by hang columns; never cut mid-word but a word wider than a line, with "…". */
void table_wrap(ReportOutput *o, const char *text, size_t col, size_t hang, const char *color_on);
/* Each line of text, wrapped where it is wider than the width (continuation indented by 4 more). */
void table_wrap_lines(ReportOutput *o, const char *text);
