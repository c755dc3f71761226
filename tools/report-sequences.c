/* SPDX-License-Identifier: MIT */
/* The sequences verb's output: one line per retry sequence, in every format, and the table's footer. */
#include <assert.h>
#include <inttypes.h>

#include "diagnosis.h"
#include "report-output.h"
#include "report-time.h"

static char *sequence_key(const Sequence *q) {
        size_t l = strlen(q->client) + strlen(sequence_key_fingerprint(q)) + q->sni.len + 4;
        char *k = malloc(l);

        if (!k)
                return NULL;
        (void) snprintf(k, l, "%s|%s|", q->client, sequence_key_fingerprint(q));
        if (q->sni.data)
                memcpy(k + strlen(k), q->sni.data, q->sni.len + 1);
        return k;
}

static void sequence_json(
        ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis, const char *compact) {
        _cleanup_free_ char *key = sequence_key(q);
        Json j;

        json_begin(&j, o);
        json_str(&j, "host", q->host);
        json_str(&j, "client", q->client);
        json_raw(&j, "sni", &q->sni);
        json_str(&j, "ja4", q->ja4);
        json_key(&j, "key");
        if (key)
                escape_json_fputs(
                        o->f, key, strlen(q->client) + strlen(sequence_key_fingerprint(q)) + 2 + q->sni.len);
        else
                fputs("null", o->f);
        json_int(&j, "first_us", q->first_us);
        json_int(&j, "last_us", q->last_us);
        json_int(&j, "attempts", q->n_attempts);
        json_int(&j, "failures", q->n_failures);
        json_str(&j, "outcome", sequence_outcome_to_string(q->outcome));
        json_str(&j, "pattern", pattern_to_string(q->pattern));
        json_str(&j, "diagnosis", diagnosis);
        json_key(&j, "attempt_ids");
        fputc('[', o->f);
        for (unsigned i = 0; i < q->n_details; i++) {
                if (i > 0)
                        fputc(',', o->f);
                decimal_fput(o->f, q->attempts[i].id);
        }
        fputc(']', o->f);
        json_str(&j, "label", label);
        json_str(&j, "compact", compact);
        json_end(&j);
}

/* ---- one-line JSON of a sequence, built in a buffer: a busy day has hundreds of thousands of them, and
 * one fwrite() per object costs a fraction of one stdio call per field ---- */

typedef struct LineBuf {
        FILE *f;
        size_t n;
        char data[4096];
} LineBuf;

static void line_flush(LineBuf *b) {
        if (b->n > 0)
                fwrite(b->data, 1, b->n, b->f);
        b->n = 0;
}

static void line_put(LineBuf *b, const void *p, size_t n) {
        if (n > sizeof b->data - b->n) {
                line_flush(b);
                if (n > sizeof b->data) {
                        fwrite(p, 1, n, b->f);
                        return;
                }
        }
        memcpy(b->data + b->n, p, n);
        b->n += n;
}

#define line_put_literal(b, s) line_put((b), "" s, sizeof(s) - 1)

static void line_put_int(LineBuf *b, int64_t v) {
        char buf[DECIMAL_MAX];

        line_put(b, buf, decimal_from_int64(v, buf));
}

static bool json_plain_byte(unsigned char c) {
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
/* Whether a byte of w is less than n (n <= 0x80), exactly: the borrow starts only at such a byte. */
#define HAS_LESS(w, n) (((w) -ONES * (n)) & ~(w) &HIGHS)

/* Whether escape_json_fputs() would write these bytes as they are: printable ASCII but '"' and '\\'.
 * Eight bytes at a time, because this checks every string of every sequence. */
static bool json_plain(const char *p, size_t len) {
        size_t i = 0;

        for (; i + 8 <= len; i += 8) {
                uint64_t w;

                memcpy(&w, p + i, 8);
                if (HAS_LESS(w, 0x20) | (w & HIGHS) | HAS_LESS(w ^ (ONES * 0x7f), 1) |
                    HAS_LESS(w ^ (ONES * '"'), 1) | HAS_LESS(w ^ (ONES * '\\'), 1))
                        return false;
        }
        for (; i < len; i++)
                if (!json_plain_byte((unsigned char) p[i]))
                        return false;
        return true;
}

/* A JSON string or null; anything but plain ASCII goes through escape_json_fputs(). Returns whether the
 * string was plain (absent counts as plain). */
static bool line_put_json(LineBuf *b, const char *p, size_t len) {
        if (!p)
                line_put_literal(b, "null");
        else if (json_plain(p, len)) {
                line_put_literal(b, "\"");
                line_put(b, p, len);
                line_put_literal(b, "\"");
        } else {
                line_flush(b);
                escape_json_fputs(b->f, p, len);
                return false;
        }
        return true;
}

/* Whether bytes are printable ASCII (quotes and backslashes allowed), eight at a time. */
static bool json_ascii(const char *p, size_t len) {
        size_t i = 0;

        for (; i + 8 <= len; i += 8) {
                uint64_t w;

                memcpy(&w, p + i, 8);
                if (HAS_LESS(w, 0x20) | (w & HIGHS) | HAS_LESS(w ^ (ONES * 0x7f), 1))
                        return false;
        }
        for (; i < len; i++)
                if ((unsigned char) p[i] < 0x20 || (unsigned char) p[i] >= 0x7f)
                        return false;
        return true;
}

/* Our own NUL-terminated text (a diagnosis: printable ASCII, with quotes) as a JSON string: only '"' and
 * '\\' need a backslash. Anything else goes the general way. */
static void line_put_json_text(LineBuf *b, const char *p) {
        size_t len = strlen(p);

        if (!json_ascii(p, len)) {
                line_put_json(b, p, len);
                return;
        }
        line_put_literal(b, "\"");
        for (;;) {
                size_t k = strcspn(p, "\"\\");

                line_put(b, p, k);
                if (p[k] == '\0')
                        break;
                line_put_literal(b, "\\");
                line_put(b, p + k, 1);
                p += k + 1;
        }
        line_put_literal(b, "\"");
}

static void sequence_json_line(
        ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis, const char *compact) {
        const char *ja4 = sequence_key_fingerprint(q), *pattern;
        size_t client_len = strlen(q->client), ja4_len = strlen(ja4);
        LineBuf b; /* not zero-initialised: 4 KiB of stores per sequence */
        bool plain;

        b.f = o->f;
        b.n = 0;
        line_put_literal(&b, "{\"host\":");
        if (q->host)
                line_put_json_text(&b, q->host);
        else
                line_put_literal(&b, "null");
        line_put_literal(&b, ",\"client\":");
        plain = line_put_json(&b, q->client, client_len);
        line_put_literal(&b, ",\"sni\":");
        plain = line_put_json(&b, q->sni.data, q->sni.len) && plain;
        line_put_literal(&b, ",\"ja4\":");
        plain = line_put_json(&b, q->ja4, q->ja4 ? ja4_len : 0) && plain; /* the no-hello kinds are plain */
        line_put_literal(&b, ",\"key\":");
        if (plain) { /* the key is the three joined by '|': plain too */
                line_put_literal(&b, "\"");
                line_put(&b, q->client, client_len);
                line_put_literal(&b, "|");
                line_put(&b, ja4, ja4_len);
                line_put_literal(&b, "|");
                if (q->sni.data)
                        line_put(&b, q->sni.data, q->sni.len);
                line_put_literal(&b, "\"");
        } else {
                _cleanup_free_ char *key = sequence_key(q);

                line_flush(&b);
                if (key)
                        escape_json_fputs(o->f, key, client_len + ja4_len + 2 + q->sni.len);
                else
                        fputs("null", o->f);
        }
        line_put_literal(&b, ",\"first_us\":");
        line_put_int(&b, q->first_us);
        line_put_literal(&b, ",\"last_us\":");
        line_put_int(&b, q->last_us);
        line_put_literal(&b, ",\"attempts\":");
        line_put_int(&b, q->n_attempts);
        line_put_literal(&b, ",\"failures\":");
        line_put_int(&b, q->n_failures);
        line_put_literal(&b, ",\"outcome\":");
        pattern = sequence_outcome_to_string(q->outcome);
        line_put_json(&b, pattern, pattern ? strlen(pattern) : 0);
        pattern = pattern_to_string(q->pattern);
        line_put_literal(&b, ",\"pattern\":");
        line_put_json(&b, pattern, pattern ? strlen(pattern) : 0);
        line_put_literal(&b, ",\"diagnosis\":");
        if (diagnosis)
                line_put_json_text(&b, diagnosis);
        else
                line_put_literal(&b, "null");
        line_put_literal(&b, ",\"attempt_ids\":[");
        for (unsigned i = 0; i < q->n_details; i++) {
                if (i > 0)
                        line_put_literal(&b, ",");
                line_put_int(&b, q->attempts[i].id);
        }
        line_put_literal(&b, "],\"label\":");
        line_put_json(&b, label, label ? strlen(label) : 0);
        /* our own tokens: ASCII letters, digits, spaces and the valid UTF-8 of ✓ ✗ …, which JSON takes as
         * they are (the golden files check that this equals escape_json_fputs()'s output) */
        line_put_literal(&b, ",\"compact\":\"");
        line_put(&b, compact, strlen(compact));
        line_put_literal(&b, "\"");
        line_put_literal(&b, "}\n");
        line_flush(&b);
}

static void sequence_csv(
        ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis, const char *compact) {
        if (!o->header_done) {
                fputs("host,first_us,last_us,client,sni,ja4,label,attempts,failures,outcome,pattern,compact,"
                      "diagnosis,"
                      "attempt_ids",
                      o->f);
                csv_end(o);
                o->header_done = true;
        }
        csv_str(o, true, q->host);
        fprintf(o->f, ",%" PRId64 ",%" PRId64, q->first_us, q->last_us);
        csv_str(o, false, q->client);
        csv_raw(o, false, &q->sni);
        csv_str(o, false, q->ja4);
        csv_str(o, false, label);
        csv_int(o, q->n_attempts, false);
        csv_int(o, q->n_failures, false);
        csv_str(o, false, sequence_outcome_to_string(q->outcome));
        csv_str(o, false, pattern_to_string(q->pattern));
        csv_str(o, false, compact);
        csv_str(o, false, diagnosis);
        fputc(',', o->f);
        for (unsigned i = 0; i < q->n_details; i++)
                fprintf(o->f, "%s%" PRId64, i > 0 ? " " : "", q->attempts[i].id);
        csv_end(o);
}

/* The table: who, what happened, and a note number ("[1]") whose diagnosis is word-wrapped under the first
 * sequence that has it; later sequences whose diagnosis has the same wording (figures such as counts and
 * delays aside) only carry the number. The day is a line of its own when it changes. */
static const TableColumn sequence_columns[] = {
        {"TIME", .stream = 8},
        {"HOST", .cap = 24, .shrink = 4, .soft = 12, .hard = 8, .stream = 12},
        {"CLIENT", .cap = 24, .shrink = 4, .soft = 15, .hard = 9, .stream = 17},
        {"SNI", .cap = 24, .shrink = 1, .soft = 12, .hard = 8, .stream = 12},
        {"CLIENT FAMILY", .cap = 24, .shrink = 2, .soft = 18, .hard = 10, .stream = 20},
        {"ATTEMPTS", .cap = 24, .shrink = 3, .soft = 10, .hard = 8, .stream = 14, .tokens = true},
        {"PATTERN", .shrink = 5, .soft = 23, .hard = 12, .stream = 23},
        {"WHY", .hard = 3, .stream = 4},
};

/* --full: everything, nothing summarised, every diagnosis in full under its sequence. */
static const TableColumn sequence_columns_full[] = {
        {"TIME", .stream = 23},
        {"HOST", .stream = 16},
        {"CLIENT", .stream = 24},
        {"SNI", .stream = 16},
        {"CLIENT FAMILY", .stream = 20},
        {"JA4", .stream = 36},
        {"ATTEMPTS", .stream = 16, .tokens = true},
        {"PATTERN", .stream = 23},
};

void sequence_tokens_summarised(const Sequence *q, bool ascii, char *buf, size_t size) {
        const char *times = ascii ? "*" : "\u00d7";
        char prev[24] = "", tok[24];
        size_t n = 0;
        unsigned run = 0;

        /* 24 bytes per token and its count, at most SEQUENCE_DETAILS_MAX of them, then "…+N" */
        assert(size >= SEQUENCE_TOKENS_SUMMARISED_MAX);
        for (unsigned i = 0; i <= q->n_details; i++) {
                if (i < q->n_details)
                        sequence_attempt_token(&q->attempts[i], ascii, tok);
                if (i < q->n_details && run > 0 && streq(tok, prev)) {
                        run++;
                        continue;
                }
                if (run > 0) {
                        size_t l = strlen(prev);

                        if (n > 0)
                                buf[n++] = ' ';
                        memcpy(buf + n, prev, l);
                        n += l;
                        if (run > 1) {
                                memcpy(buf + n, times, strlen(times));
                                n += strlen(times);
                                n += decimal_from_uint64(run, buf + n);
                        }
                }
                if (i < q->n_details) {
                        memcpy(prev, tok, sizeof prev);
                        run = 1;
                }
        }
        buf[n] = '\0';
        if (q->n_attempts > q->n_details)
                (void) snprintf(
                        buf + n, size - n, " %s+%u", ascii ? "..." : "\u2026", q->n_attempts - q->n_details);
}

static void sequence_table(
        ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis, const char *compact) {
        static TableColumn without[2][TABLE_COLUMNS_MAX];
        size_t n_columns;
        const TableColumn *columns = o->full
                ? table_columns_host(
                          o, sequence_columns_full, ELEMENTSOF(sequence_columns_full), without[1], &n_columns)
                : table_columns_host(o, sequence_columns, ELEMENTSOF(sequence_columns), without[0], &n_columns);
        const char *cells[TABLE_COLUMNS_MAX] = {}, *colors[TABLE_COLUMNS_MAX] = {}, *above = NULL,
                   *tag = NULL, *below = NULL;
        char t[32], day[32], note_text[DECIMAL_MAX + 2], no_hello[64], tokens[SEQUENCE_TOKENS_SUMMARISED_MAX];
        _cleanup_free_ char *sni_escaped = NULL, *host_escaped = NULL;
        const char *sni = display_cell(&q->sni, o->ascii, &sni_escaped);
        const char *host = display_host(q->host, o->ascii, &host_escaped);
        size_t k = 0;

        if (!table_ready(o, columns, n_columns))
                return;
        report_time_format(q->first_us, t);
        if (o->full)
                cells[k++] = t;
        else {
                t[10] = '\0';
                t[19] = '\0'; /* HH:MM:SS */
                above = table_day_change(o, t, day);
                cells[k++] = t + 11;
        }
        if (o->hosts)
                cells[k++] = host ?: "-";
        cells[k++] = q->client;
        cells[k++] = sni;
        if (o->full) {
                cells[k++] = label;
                (void) snprintf(no_hello, sizeof no_hello, "(no ClientHello: %s)", strna(q->no_hello));
                cells[k++] = q->ja4 ?: no_hello;
                cells[k++] = compact;
        } else {
                cells[k++] = label ?: q->ja4 ?: "(no ClientHello)";
                sequence_tokens_summarised(q, o->ascii, tokens, sizeof tokens);
                cells[k++] = tokens;
        }
        colors[k] = pattern_color(q->pattern);
        cells[k++] = pattern_to_string(q->pattern);
        if (diagnosis && o->full)
                below = diagnosis;
        else if (diagnosis) {
                bool first;
                unsigned note = table_note(o, diagnosis, &first);

                if (note > 0) {
                        note_text[0] = '[';
                        memcpy(note_text + 1 + decimal_from_uint64(note, note_text + 1), "]", 2);
                        colors[k] = ANSI_GREY;
                        cells[k] = note_text;
                        tag = first ? note_text : NULL;
                }
                k++;
                below = first ? diagnosis : NULL;
        }
        (void) table_add(o, columns, n_columns, cells, colors, above, tag, below, ANSI_GREY);
}

void report_output_sequence(ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis) {
        char compact[SEQUENCE_DETAILS_MAX * 8 + 32];

        if (o->mode != OUTPUT_TABLE || o->full) /* the table summarises the tokens itself */
                sequence_format_attempts(q, o->ascii, compact, sizeof compact);
        else
                compact[0] = '\0';
        switch (o->mode) {
        case OUTPUT_JSON: sequence_json_line(o, q, label, diagnosis, compact); break;
        case OUTPUT_JSON_PRETTY: sequence_json(o, q, label, diagnosis, compact); break;
        case OUTPUT_CSV: sequence_csv(o, q, label, diagnosis, compact); break;
        default: sequence_table(o, q, label, diagnosis, compact); break;
        }
        o->rows++;
}

void report_output_sequences_footer(ReportOutput *o, const ReportSummary *s, uint64_t shown) {
        bool first = true;

        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;

        if (o->mode != OUTPUT_TABLE)
                return;
        table_flush(o);
        f = open_memstream(&text, &size);
        if (!f)
                return;
        fprintf(f,
                "%s%" PRIu64 " sequence%s, %" PRIu64 " shown; %" PRIu64 " attempt%s, %" PRIu64 " failed",
                o->rows > 0 ? "\n" : "",
                s->sequences,
                s->sequences == 1 ? "" : "s",
                shown,
                s->attempts,
                s->attempts == 1 ? "" : "s",
                s->failures);
        if (s->forwarding_errors > 0)
                fprintf(f, ", %" PRIu64 " with a forwarding error", s->forwarding_errors);
        fputs(s->sequences > 0 ? ": " : ".\n", f);
        for (int p = 0; p < _PATTERN_MAX; p++)
                if (s->patterns[p] > 0) {
                        fprintf(f, "%s%s %" PRIu64, first ? "" : ", ", pattern_to_string(p), s->patterns[p]);
                        first = false;
                }
        if (!first)
                fputs(".\n", f);
        if (fclose(f) == 0)
                table_wrap_lines(o, text);
}

void report_output_sequence_labelled(ReportOutput *o, const Sequence *q, ReportLabels *l) {
        const ReportAgentCount *agents = NULL;
        size_t n = 0;
        const char *label = q->ja4 ? report_labels_get(l, q->ja4, &agents, &n) : NULL;
        ClientIdentity who = {
                .name = label,
                .other = n > 1 ? agents[1].summary : NULL,
                .n_names = (unsigned) n,
        };
        char diagnosis[SEQUENCE_DIAGNOSIS_MAX], several[2 * REPORT_LABEL_MAX + 16];

        (void) sequence_diagnose(q, &who, diagnosis, sizeof diagnosis);
        if (n > 1) { /* one TLS configuration, several programs: say so */
                (void) snprintf(
                        several, sizeof several, "%s or %s%s", label, agents[1].summary, n > 2 ? " or ..." : "");
                label = several;
        }
        report_output_sequence(o, q, label, diagnosis);
}
