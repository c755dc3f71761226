/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "attempt-format.h"
#include "escape.h"
#include "report-time.h"
#include "diagnosis.h"
#include "report.h"

#define ANSI_RED "\x1b[31m"
#define ANSI_GREEN "\x1b[32m"
#define ANSI_YELLOW "\x1b[33m"
#define ANSI_BOLD "\x1b[1m"
#define ANSI_GREY "\x1b[2m"
#define ANSI_RESET "\x1b[0m"

static const char *const output_mode_table[_OUTPUT_MAX] = {
        [OUTPUT_TABLE] = "table",
        [OUTPUT_JSON] = "json",
        [OUTPUT_JSON_PRETTY] = "json-pretty",
        [OUTPUT_CSV] = "csv",
};

const char *output_mode_to_string(OutputMode m) {
        return m >= 0 && m < _OUTPUT_MAX ? output_mode_table[m] : NULL;
}

OutputMode output_mode_from_string(const char *s) {
        for (int i = 0; s && i < _OUTPUT_MAX; i++)
                if (streq(s, output_mode_table[i]))
                        return (OutputMode) i;
        return _OUTPUT_INVALID;
}

static const char *color(const ReportOutput *o, const char *c) {
        return o->color ? c : "";
}

/* ---- JSON: flat objects, one per line, or indented with json-pretty ---- */

typedef struct Json {
        ReportOutput *o;
        unsigned fields, depth;
} Json;

static void json_begin(Json *j, ReportOutput *o) {
        *j = (Json){.o = o};
        fputc('{', o->f);
}

static void json_key(Json *j, const char *key) {
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

/* Integers are most of what the JSON and CSV output holds: format them without printf. */
static void put_int(FILE *f, int64_t v) {
        char buf[24], *p = buf + sizeof buf;
        uint64_t u = v < 0 ? -(uint64_t) v : (uint64_t) v;

        do
                *--p = (char) ('0' + u % 10);
        while ((u /= 10) > 0);
        if (v < 0)
                *--p = '-';
        fwrite(p, 1, (size_t) (buf + sizeof buf - p), f);
}

static void json_end(Json *j) {
        if (j->o->mode == OUTPUT_JSON_PRETTY) {
                fputc('\n', j->o->f);
                for (unsigned i = 0; i < j->depth; i++)
                        fputc('\t', j->o->f);
        }
        fputc('}', j->o->f);
        if (j->depth == 0)
                fputc('\n', j->o->f);
}

static void json_str(Json *j, const char *key, const char *value) {
        json_key(j, key);
        if (value)
                escape_json_fputs(j->o->f, value, strlen(value));
        else
                fputs("null", j->o->f);
}

static void json_raw(Json *j, const char *key, const RawString *value) {
        json_key(j, key);
        if (value->data)
                escape_json_fputs(j->o->f, value->data, value->len);
        else
                fputs("null", j->o->f);
}

static void json_int(Json *j, const char *key, int64_t v) {
        json_key(j, key);
        put_int(j->o->f, v);
}

static void json_int_or_null(Json *j, const char *key, int64_t v, bool null) {
        json_key(j, key);
        if (null)
                fputs("null", j->o->f);
        else
                put_int(j->o->f, v);
}

static void json_double(Json *j, const char *key, double v, bool null) {
        json_key(j, key);
        if (null)
                fputs("null", j->o->f);
        else
                fprintf(j->o->f, "%.4g", v);
}

/* ---- CSV (RFC 4180: CRLF line ends, quoted fields) ---- */

static void csv_str(ReportOutput *o, bool first, const char *s) {
        if (!first)
                fputc(',', o->f);
        if (s)
                escape_csv_fputs(o->f, s, strlen(s));
}

static void csv_raw(ReportOutput *o, bool first, const RawString *s) {
        if (!first)
                fputc(',', o->f);
        if (s->data)
                escape_csv_fputs(o->f, s->data, s->len);
}

static void csv_int(ReportOutput *o, int64_t v, bool null) {
        fputc(',', o->f);
        if (!null)
                put_int(o->f, v);
}

static void csv_end(ReportOutput *o) {
        fputs("\r\n", o->f);
}

/* ---- table helpers ---- */

/* Display width of UTF-8 text that escape_display() produced (no control or combining trickery). */
static size_t text_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                w += ((unsigned char) *s & 0xc0) != 0x80;
        return w;
}

static void put_spaces(FILE *f, size_t n) {
        static const char spaces[] = "                                ";

        for (size_t k; n > 0; n -= k) {
                k = MIN(n, sizeof spaces - 1);
                (void) fwrite(spaces, 1, k, f);
        }
}

static void table_padded(ReportOutput *o, const char *s, size_t width) {
        size_t w = text_width(s);

        fputs(s, o->f);
        if (w < width)
                put_spaces(o->f, width - w);
}

/* Escaped raw string for a table cell; "-" when absent. */
static char *display(const RawString *s) {
        return s->data ? escape_display(s->data, s->len) : strdup("-");
}

static const char *pattern_color(Pattern p) {
        switch (p) {
        case PATTERN_CLEAN: return ANSI_GREEN;
        case PATTERN_CERT_REJECTED_THEN_OK:
        case PATTERN_CERT_REJECTED_AFTER_OK:
        case PATTERN_TRANSIENT_THEN_OK:
        case PATTERN_PROBE: return ANSI_YELLOW;
        default: return ANSI_RED;
        }
}

/* ---- sequences ---- */

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
                put_int(o->f, q->attempts[i].id);
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
        char buf[24], *p = buf + sizeof buf;
        uint64_t u = v < 0 ? -(uint64_t) v : (uint64_t) v;

        do
                *--p = (char) ('0' + u % 10);
        while ((u /= 10) > 0);
        if (v < 0)
                *--p = '-';
        line_put(b, p, (size_t) (buf + sizeof buf - p));
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

/* ---- attempts ---- */

/* JSON and CSV: the shared writer of an attempt, as the daemon's page writes it too. */
static void attempt_json(ReportOutput *o, const Attempt *a) {
        attempt_json_write(o->f, a, o->mode == OUTPUT_JSON_PRETTY);
        fputc('\n', o->f);
}

static void attempt_csv(ReportOutput *o, const Attempt *a) {
        if (!o->header_done) {
                attempt_csv_write_header(o->f);
                o->header_done = true;
        }
        attempt_csv_write(o->f, a);
}

static void attempt_table(ReportOutput *o, const Attempt *a) {
        _cleanup_free_ char *sni = display(&a->sni), *ua = display(&a->user_agent);
        SequenceAttempt sa = {
                .outcome = a->outcome,
                .alert_received = (int16_t) a->alert_received,
                .alert_sent = (int16_t) a->alert_sent,
                .resumed = a->resumed,
        };
        char t[32], tok[24];

        if (!o->header_done) {
                fprintf(o->f,
                        "%s%-23s  %-21s  %-8s  %-13s  %-7s  %-36s  %-20s  %s%s\n",
                        color(o, ANSI_BOLD),
                        "TIME",
                        "CLIENT",
                        "RESULT",
                        "STATE",
                        "VERSION",
                        "JA4",
                        "SNI",
                        "USER-AGENT",
                        color(o, ANSI_RESET));
                o->header_done = true;
        }
        report_time_format(a->started_us, t);
        fprintf(o->f, "%s  %s", t, strchr(a->peer_addr, ':') ? "[" : "");
        fprintf(o->f, "%s%s:%u", a->peer_addr, strchr(a->peer_addr, ':') ? "]" : "", a->peer_port);
        for (size_t w = strlen(a->peer_addr) + 1 + (strchr(a->peer_addr, ':') ? 2 : 0) +
                     (size_t) snprintf(NULL, 0, "%u", a->peer_port);
             w < 21;
             w++)
                fputc(' ', o->f);
        fprintf(o->f, "  %s", color(o, a->outcome == OUTCOME_OK ? ANSI_GREEN : ANSI_RED));
        table_padded(o, sequence_attempt_token(&sa, o->ascii, tok), 8);
        fprintf(o->f,
                "%s  %-13s  %-7s  %-36s  ",
                color(o, ANSI_RESET),
                handshake_step_to_string(a->state_reached),
                a->version ?: "-",
                a->ja4 ?: "-");
        table_padded(o, sni, 20);
        fprintf(o->f, "  %s\n", ua);
}

void report_output_attempt(ReportOutput *o, const Attempt *a) {
        switch (o->mode) {
        case OUTPUT_JSON:
        case OUTPUT_JSON_PRETTY: attempt_json(o, a); break;
        case OUTPUT_CSV: attempt_csv(o, a); break;
        default: attempt_table(o, a); break;
        }
        o->rows++;
}

/* ---- clients ---- */

void report_output_clients(ReportOutput *o, ReportClients *c, ReportLabels *l) {
        _cleanup_free_ ReportClient **v = NULL;
        size_t n = report_clients_sorted(c, &v);

        if (o->mode == OUTPUT_TABLE && n > 0)
                fprintf(o->f,
                        "%s%-36s  %-24s  %8s  %7s  %9s  %s%s\n",
                        color(o, ANSI_BOLD),
                        "CLIENT FAMILY (STABLE JA4)",
                        "USER-AGENT",
                        "ATTEMPTS",
                        "SUCCESS",
                        "RETRIES/OK",
                        "COMMONEST FAILURE",
                        color(o, ANSI_RESET));
        if (o->mode == OUTPUT_CSV && n > 0) {
                fputs("ja4,label,attempts,successes,success_rate,sequences,ok_sequences,retries_per_success,"
                      "commonest_failure",
                      o->f);
                csv_end(o);
        }
        for (size_t i = 0; i < n; i++) {
                const ReportClient *cl = v[i];
                const ReportAgentCount *agents;
                size_t n_agents;
                const char *label = report_labels_get(l, cl->ja4, &agents, &n_agents);
                char fb[64];
                const char *failure = report_client_commonest_failure(cl, fb);
                double rate = cl->attempts ? (double) cl->successes / (double) cl->attempts : 0;
                double retries = cl->ok_sequences ? (double) cl->retries / (double) cl->ok_sequences : 0;
                Json j;

                switch (o->mode) {
                case OUTPUT_JSON:
                case OUTPUT_JSON_PRETTY:
                        json_begin(&j, o);
                        json_str(&j, "ja4", cl->ja4);
                        json_str(&j, "label", label);
                        json_key(&j, "user_agents");
                        fputc('[', o->f);
                        for (size_t k = 0; k < n_agents; k++) {
                                Json a;

                                if (k > 0)
                                        fputc(',', o->f);
                                json_begin(&a, o);
                                a.depth = j.depth + 1;
                                json_str(&a, "summary", agents[k].summary);
                                json_int(&a, "count", (int64_t) agents[k].count);
                                json_end(&a);
                        }
                        fputc(']', o->f);
                        json_int(&j, "attempts", (int64_t) cl->attempts);
                        json_int(&j, "successes", (int64_t) cl->successes);
                        json_double(&j, "success_rate", rate, cl->attempts == 0);
                        json_int(&j, "sequences", (int64_t) cl->sequences);
                        json_int(&j, "ok_sequences", (int64_t) cl->ok_sequences);
                        json_double(&j, "retries_per_success", retries, cl->ok_sequences == 0);
                        json_str(&j, "commonest_failure", failure);
                        json_end(&j);
                        break;
                case OUTPUT_CSV:
                        csv_str(o, true, cl->ja4);
                        csv_str(o, false, label);
                        csv_int(o, (int64_t) cl->attempts, false);
                        csv_int(o, (int64_t) cl->successes, false);
                        fprintf(o->f, ",%.4g", rate);
                        csv_int(o, (int64_t) cl->sequences, false);
                        csv_int(o, (int64_t) cl->ok_sequences, false);
                        fprintf(o->f, ",%.4g", retries);
                        csv_str(o, false, failure);
                        csv_end(o);
                        break;
                default:
                        fprintf(o->f,
                                "%-36s  %-24s  %8" PRIu64 "  %6.1f%%  %9.2f   %s\n",
                                cl->ja4 ?: "(no ClientHello)",
                                label ?: "-",
                                cl->attempts,
                                rate * 100,
                                retries,
                                failure ?: "-");
                }
                o->rows++;
        }
}

/* ---- summary ---- */

void report_output_summary(ReportOutput *o, const ReportSummary *s) {
        char a[32], b[32];
        Json j;

        if (o->mode == OUTPUT_CSV) {
                fputs("section,name,count", o->f);
                csv_end(o);
                fprintf(o->f,
                        "total,attempts,%" PRIu64 "\r\ntotal,failures,%" PRIu64 "\r\ntotal,sequences,"
                        "%" PRIu64 "\r\n",
                        s->attempts,
                        s->failures,
                        s->sequences);
                for (int i = 0; i < _OUTCOME_MAX; i++)
                        fprintf(o->f, "outcome,%s,%" PRIu64 "\r\n", outcome_to_string(i), s->outcomes[i]);
                for (int i = 0; i < 256; i++)
                        if (s->alerts_received[i])
                                fprintf(o->f, "alert_received,%d,%" PRIu64 "\r\n", i, s->alerts_received[i]);
                for (int i = 0; i < 256; i++)
                        if (s->alerts_sent[i])
                                fprintf(o->f, "alert_sent,%d,%" PRIu64 "\r\n", i, s->alerts_sent[i]);
                for (int i = 0; i < _SEQUENCE_OUTCOME_MAX; i++)
                        fprintf(o->f,
                                "sequence_outcome,%s,%" PRIu64 "\r\n",
                                sequence_outcome_to_string(i),
                                s->sequence_outcomes[i]);
                for (int i = 0; i < _PATTERN_MAX; i++)
                        fprintf(o->f, "pattern,%s,%" PRIu64 "\r\n", pattern_to_string(i), s->patterns[i]);
                for (int i = 1; i <= REPORT_RETRY_BUCKETS; i++)
                        if (s->retries_ok[i])
                                fprintf(o->f,
                                        "attempts_to_success,%d%s,%" PRIu64 "\r\n",
                                        i,
                                        i == REPORT_RETRY_BUCKETS ? "+" : "",
                                        s->retries_ok[i]);
                o->rows++;
                return;
        }
        if (o->mode == OUTPUT_JSON || o->mode == OUTPUT_JSON_PRETTY) {
                Json sub;

                json_begin(&j, o);
                json_int(&j, "attempts", (int64_t) s->attempts);
                json_int(&j, "failures", (int64_t) s->failures);
                json_int_or_null(&j, "first_us", s->first_us, s->attempts == 0);
                json_int_or_null(&j, "last_us", s->last_us, s->attempts == 0);
#define JSON_MAP(key, cond, name_expr, value_expr, count)                          \
        do {                                                                       \
                json_key(&j, key);                                                 \
                json_begin(&sub, o);                                               \
                sub.depth = 1;                                                     \
                for (int i = 0; i < (count); i++)                                  \
                        if (cond) {                                                \
                                char _n_[32];                                      \
                                (void) snprintf(_n_, sizeof _n_, "%s", name_expr); \
                                json_int(&sub, _n_, (int64_t) (value_expr));       \
                        }                                                          \
                json_end(&sub);                                                    \
        } while (0)
                JSON_MAP("outcomes", true, outcome_to_string(i), s->outcomes[i], _OUTCOME_MAX);
                char num[8];
                JSON_MAP(
                        "alerts_received",
                        s->alerts_received[i] > 0,
                        (snprintf(num, sizeof num, "%d", i), num),
                        s->alerts_received[i],
                        256);
                JSON_MAP(
                        "alerts_sent",
                        s->alerts_sent[i] > 0,
                        (snprintf(num, sizeof num, "%d", i), num),
                        s->alerts_sent[i],
                        256);
                json_int(&j, "sequences", (int64_t) s->sequences);
                JSON_MAP(
                        "sequence_outcomes",
                        true,
                        sequence_outcome_to_string(i),
                        s->sequence_outcomes[i],
                        _SEQUENCE_OUTCOME_MAX);
                JSON_MAP("patterns", true, pattern_to_string(i), s->patterns[i], _PATTERN_MAX);
                JSON_MAP(
                        "attempts_to_success",
                        i > 0 && s->retries_ok[i] > 0,
                        (snprintf(num, sizeof num, "%d%s", i, i == REPORT_RETRY_BUCKETS ? "+" : ""), num),
                        s->retries_ok[i],
                        REPORT_RETRY_BUCKETS + 1);
#undef JSON_MAP
                json_end(&j);
                o->rows++;
                return;
        }

        if (s->attempts > 0) {
                report_time_format(s->first_us, a);
                report_time_format(s->last_us, b);
        }
        fprintf(o->f,
                "%sAttempts:%s %" PRIu64 ", %" PRIu64 " failed",
                color(o, ANSI_BOLD),
                color(o, ANSI_RESET),
                s->attempts,
                s->failures);
        if (s->attempts > 0)
                fprintf(o->f, " (%s to %s)", a, b);
        fputs("\n  by outcome:", o->f);
        for (int i = 0; i < _OUTCOME_MAX; i++)
                if (s->outcomes[i])
                        fprintf(o->f, " %s %" PRIu64, outcome_to_string(i), s->outcomes[i]);
        fputs("\n  alerts received:", o->f);
        for (int i = 0; i < 256; i++)
                if (s->alerts_received[i])
                        fprintf(o->f,
                                " %d %s %" PRIu64 ";",
                                i,
                                strna(tls_alert_to_string(i)),
                                s->alerts_received[i]);
        fputs("\n  alerts sent:", o->f);
        for (int i = 0; i < 256; i++)
                if (s->alerts_sent[i])
                        fprintf(o->f, " %d %s %" PRIu64 ";", i, strna(tls_alert_to_string(i)), s->alerts_sent[i]);
        fprintf(o->f,
                "\n%sSequences:%s %" PRIu64 " (ok %" PRIu64 ", abandoned %" PRIu64 ", open %" PRIu64 ")\n  "
                "by "
                "patter"
                "n:",
                color(o, ANSI_BOLD),
                color(o, ANSI_RESET),
                s->sequences,
                s->sequence_outcomes[SEQUENCE_OK],
                s->sequence_outcomes[SEQUENCE_ABANDONED],
                s->sequence_outcomes[SEQUENCE_OPEN]);
        for (int i = 0; i < _PATTERN_MAX; i++)
                if (s->patterns[i])
                        fprintf(o->f, " %s %" PRIu64 ";", pattern_to_string(i), s->patterns[i]);
        fputs("\n  attempts needed by successful sequences:", o->f);
        for (int i = 1; i <= REPORT_RETRY_BUCKETS; i++)
                if (s->retries_ok[i])
                        fprintf(o->f,
                                " %d%s: %" PRIu64 ";",
                                i,
                                i == REPORT_RETRY_BUCKETS ? "+" : "",
                                s->retries_ok[i]);
        fputc('\n', o->f);
        o->rows++;
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
