/* SPDX-License-Identifier: MIT */
#pragma once

/* What the formatters of tlsreport share (report-sequences.c, report-attempts.c, report-clients.c,
 * report-summary.c): colours, JSON objects, CSV fields, table cells. Inline: they run for every field of
 * reports with hundreds of thousands of lines. */

#include "decimal.h"
#include "escape.h"
#include "report.h"

#define ANSI_RED "\x1b[31m"
#define ANSI_GREEN "\x1b[32m"
#define ANSI_YELLOW "\x1b[33m"
#define ANSI_BOLD "\x1b[1m"
#define ANSI_GREY "\x1b[2m"
#define ANSI_RESET "\x1b[0m"

static inline const char *color(const ReportOutput *o, const char *c) {
        return o->color ? c : "";
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

/* Display width of UTF-8 text that escape_display() produced (no control or combining trickery). */
static inline size_t text_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                w += ((unsigned char) *s & 0xc0) != 0x80;
        return w;
}

static inline void put_spaces(FILE *f, size_t n) {
        static const char spaces[] = "                                ";

        for (size_t k; n > 0; n -= k) {
                k = MIN(n, sizeof spaces - 1);
                (void) fwrite(spaces, 1, k, f);
        }
}

static inline void table_padded(ReportOutput *o, const char *s, size_t width) {
        size_t w = text_width(s);

        fputs(s, o->f);
        if (w < width)
                put_spaces(o->f, width - w);
}

/* Escaped raw string for a table cell; "-" when absent. */
static inline char *display(const RawString *s) {
        return s->data ? escape_display(s->data, s->len) : strdup("-");
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
