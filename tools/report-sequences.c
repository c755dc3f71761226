/* SPDX-License-Identifier: MIT */
/* The sequences verb's output: one line per retry sequence, in every format, and the table's footer. */
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
        line_put_literal(&b, "{\"client\":");
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
                fputs("first_us,last_us,client,sni,ja4,label,attempts,failures,outcome,pattern,compact,"
                      "diagnosis,"
                      "attempt_ids",
                      o->f);
                csv_end(o);
                o->header_done = true;
        }
        fprintf(o->f, "%" PRId64 ",%" PRId64, q->first_us, q->last_us);
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

/* The CLIENT column fits the longest key, an IPv6 /64 ("ffff:ffff:ffff:ffff::/64"), so that IPv4 and IPv6
 * clients line up: the table is streamed, so the width cannot come from the sequences shown. */
#define TABLE_CLIENT_WIDTH 24

static void sequence_table(
        ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis, const char *compact) {
        char t[32];

        if (!o->header_done) {
                fprintf(o->f,
                        "%s%-23s  %-*s  %-16s  %-23s  %-36s  %s%s\n",
                        color(o, ANSI_BOLD),
                        "TIME",
                        TABLE_CLIENT_WIDTH,
                        "CLIENT",
                        "ATTEMPTS",
                        "PATTERN",
                        "CLIENT FAMILY (JA4, USER-AGENT)",
                        "DIAGNOSIS",
                        color(o, ANSI_RESET));
                o->header_done = true;
        }
        report_time_format(q->first_us, t);
        fputs(t, o->f);
        fputs("  ", o->f);
        table_padded(o, q->client, TABLE_CLIENT_WIDTH);
        fputs("  ", o->f);
        if (o->color) {
                size_t w = text_width(compact);

                /* colour each token, pad by the plain text's width */
                for (unsigned i = 0; i < q->n_details; i++) {
                        char tok[24];

                        fprintf(o->f,
                                "%s%s%s%s",
                                i > 0 ? " " : "",
                                q->attempts[i].outcome == OUTCOME_OK ? ANSI_GREEN : ANSI_RED,
                                sequence_attempt_token(&q->attempts[i], o->ascii, tok),
                                ANSI_RESET);
                }
                if (q->n_attempts > q->n_details)
                        fprintf(o->f, " %s+%u", o->ascii ? "..." : "\u2026", q->n_attempts - q->n_details);
                if (w < 16)
                        put_spaces(o->f, 16 - w);
        } else
                table_padded(o, compact, 16);
        /* fputs, not fprintf: this runs once per line of reports that have hundreds of thousands */
        fputs("  ", o->f);
        fputs(color(o, pattern_color(q->pattern)), o->f);
        table_padded(o, pattern_to_string(q->pattern), 23);
        fputs(color(o, ANSI_RESET), o->f);
        fputs("  ", o->f);
        if (q->ja4)
                fputs(q->ja4, o->f);
        else {
                fputs("(no ClientHello: ", o->f);
                fputs(strna(q->no_hello), o->f);
                fputc(')', o->f);
        }
        if (label) {
                fputs(" \"", o->f);
                fputs(label, o->f);
                fputc('"', o->f);
        }
        fputs("  ", o->f);
        fputs(color(o, ANSI_GREY), o->f);
        fputs(strempty(diagnosis), o->f);
        fputs(color(o, ANSI_RESET), o->f);
        fputc('\n', o->f);
}

void report_output_sequence(ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis) {
        char compact[SEQUENCE_DETAILS_MAX * 8 + 32];

        sequence_format_attempts(q, o->ascii, compact, sizeof compact);
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

        if (o->mode != OUTPUT_TABLE)
                return;
        fprintf(o->f,
                "%s%" PRIu64 " sequences, %" PRIu64 " shown; %" PRIu64 " attempts, %" PRIu64 " failed%s",
                o->rows > 0 ? "\n" : "",
                s->sequences,
                shown,
                s->attempts,
                s->failures,
                s->sequences > 0 ? ": " : ".\n");
        for (int p = 0; p < _PATTERN_MAX; p++)
                if (s->patterns[p] > 0) {
                        fprintf(o->f, "%s%s %" PRIu64, first ? "" : ", ", pattern_to_string(p), s->patterns[p]);
                        first = false;
                }
        if (!first)
                fputs(".\n", o->f);
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
