/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <time.h>

#include "attempt-format.h"
#include "describe.h"
#include "escape.h"
#include "page.h"
#include "sequence.h"
#include "server.h"
#include "store.h"

#define RECENT_WINDOW_US (600 * USEC_PER_SEC)
#define RECENT_MAX 50

PageKind page_kind_from_target(const char *target, size_t len) {
        /* the query string does not matter */
        const char *q = memchr(target, '?', len);

        if (q)
                len = (size_t) (q - target);
        if (len == 1 && target[0] == '/')
                return PAGE_HTML;
        if ((len == 9 && memcmp(target, "/api/self", 9) == 0) ||
            (len == 10 && memcmp(target, "/api/self/", 10) == 0))
                return PAGE_JSON;
        return PAGE_NONE;
}

/* The shared writer of an attempt (attempt-format.h): absent columns are null. */
void attempt_json_fputs(FILE *f, const Attempt *a) {
        attempt_json_write(f, a, false);
}

/* What the page says about the visitor's recent attempts: found through the same grouping as
 * tlsreport's, so that both tell the same story. */
typedef struct Recent {
        Attempt **attempts; /* newest first */
        size_t n;
        const Attempt *self;
        unsigned earlier_failures; /* failed attempts in the visitor's sequence before this one */
        Pattern pattern;           /* of that sequence, ended by this (successful) attempt */
        bool have_sequence;
} Recent;

/* The sequence that this connection's own attempt ends is the one holding an attempt with its start time
 * and no id (it is not stored yet). */
static int recent_on_sequence(const Sequence *seq, void *userdata) {
        Recent *r = userdata;

        for (unsigned i = 0; i < seq->n_details; i++)
                if (seq->attempts[i].id == 0 && seq->attempts[i].started_us == r->self->started_us) {
                        r->earlier_failures = seq->n_failures;
                        r->pattern = seq->pattern;
                        r->have_sequence = true;
                }
        return 0;
}

static void recent_load(Server *s, const Attempt *self, Recent *ret) {
        _cleanup_(sequencer_freep) Sequencer *q = NULL;

        *ret = (Recent){.self = self};
        if (!s || !s->store)
                return;
        /* The store is write-only now: the recent attempts will come from memory (not here yet). */
        if (sequencer_new(NULL, recent_on_sequence, ret, &q) < 0)
                return;
        for (size_t i = ret->n; i > 0; i--) /* oldest first */
                if (ret->attempts[i - 1]->started_us <= self->started_us)
                        (void) sequencer_feed(q, ret->attempts[i - 1]);
        (void) sequencer_feed(q, self);
        (void) sequencer_flush(q, self->started_us);
}

static void recent_done(Recent *r) {
        FOREACH_ARRAY(a, r->attempts, r->n)
                attempt_free(*a);
        free(r->attempts);
}

static void html_escaped(FILE *f, const void *data, size_t len) {
        _cleanup_free_ char *e = escape_display(data, len);

        for (const char *c = e; c && *c; c++)
                switch (*c) {
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '&': fputs("&amp;", f); break;
                case '"': fputs("&quot;", f); break;
                case '\'': fputs("&#39;", f); break;
                default: fputc(*c, f);
                }
}

static void html_row(FILE *f, const char *name, const char *v) {
        fprintf(f, "<tr><th>%s</th><td>", name);
        if (v)
                html_escaped(f, v, strlen(v));
        else
                fputs("<i>none</i>", f);
        fputs("</td></tr>\n", f);
}

static void html_row_raw(FILE *f, const char *name, const RawString *v) {
        fprintf(f, "<tr><th>%s</th><td>", name);
        if (v->data)
                html_escaped(f, v->data, v->len);
        else
                fputs("<i>none</i>", f);
        fputs("</td></tr>\n", f);
}

static void format_local_time(int64_t us, char buf[static 32]) {
        time_t t = (time_t) (us / USEC_PER_SEC);
        struct tm tm;

        (void) localtime_r(&t, &tm);
        (void) strftime(buf, 32, "%H:%M:%S", &tm);
}

static void page_html(FILE *f, const Attempt *a, const Recent *recent) {
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
              "<title>tlswatch: your TLS handshake</title>\n"
              "<style>body{font-family:sans-serif;margin:2em;max-width:70em}th{text-align:left;padding-"
              "right:1em}"
              "td{font-family:monospace;overflow-wrap:anywhere;vertical-align:top}#recent "
              "td:nth-child(-n+2){white-space:nowrap}"
              ".fail{color:#b00}.ok{color:#070}</style>\n"
              "</head><body>\n<h1>Your TLS handshake with this server</h1>\n",
              f);
        if (recent->have_sequence && recent->earlier_failures > 0) {
                /* this attempt is the success that ends the sequence */
                fprintf(f,
                        "<p id=\"sequence\" class=\"fail\">Your client made %u failed attempt%s before this "
                        "one: %s</p>\n",
                        recent->earlier_failures,
                        recent->earlier_failures == 1 ? "" : "s",
                        pattern_diagnosis(recent->pattern));
        } else
                fputs("<p id=\"sequence\" class=\"ok\">Your client connected on its first attempt.</p>\n", f);

        fputs("<h2>This connection</h2>\n<table id=\"connection\">\n", f);
        html_row(f, "Client address", a->peer_addr);
        html_row(f, "TLS version", a->version);
        html_row(f, "Cipher suite", a->cipher);
        html_row(f, "Versions offered", a->offered_versions);
        html_row_raw(f, "SNI", &a->sni);
        html_row_raw(f, "ALPN offered", &a->alpn_offered);
        html_row_raw(f, "ALPN", &a->alpn);
        html_row(f, "Resumed", a->resumed ? "yes" : "no");
        html_row(f, "HelloRetryRequest", a->hello_retry ? "yes" : "no");
        html_row(f, "JA3", a->ja3);
        html_row(f, "JA3 string", a->ja3_full);
        html_row(f, "JA4", a->ja4);
        html_row(f, "JA4_r", a->ja4_r);
        html_row(f, "JA4_o", a->ja4_o);
        html_row(f, "JA4_ro", a->ja4_ro);
        html_row(f, "Stable JA4 (grouping key)", a->ja4_stable);
        html_row_raw(f, "User-Agent", &a->user_agent);
        fputs("</table>\n", f);

        fprintf(f,
                "<h2>Your recent attempts from %s (last 10 minutes)</h2>\n<table id=\"recent\">\n",
                a->peer_addr);
        if (recent->n == 0)
                fputs("<tr><td>none recorded yet</td></tr>\n", f);
        for (size_t i = 0; i < recent->n; i++) {
                const Attempt *r = recent->attempts[i];
                _cleanup_free_ char *d = attempt_describe(r);
                char when[32];

                format_local_time(r->started_us, when);
                fprintf(f,
                        "<tr class=\"%s\"><td>%s</td><td>%s</td><td>",
                        outcome_is_failure(r->outcome) ? "fail" : "ok",
                        when,
                        outcome_to_string(r->outcome));
                if (d)
                        html_escaped(f, d, strlen(d));
                fputs("</td><td>", f);
                if (r->ja4)
                        html_escaped(f, r->ja4, strlen(r->ja4));
                fputs("</td></tr>\n", f);
        }
        fputs("</table>\n<p>JSON: <a href=\"/api/self\">/api/self</a>. Server-side report: "
              "<code>tlsreport --since today</code>.</p>\n</body></html>\n",
              f);
}

static void page_json(FILE *f, const Attempt *a, const Recent *recent) {
        fputs("{\"connection\":", f);
        attempt_json_fputs(f, a);
        fputs(",\"recent\":[", f);
        for (size_t i = 0; i < recent->n; i++) {
                if (i > 0)
                        fputc(',', f);
                attempt_json_fputs(f, recent->attempts[i]);
        }
        fputs("]", f);
        if (recent->have_sequence) {
                const char *d = pattern_diagnosis(recent->pattern);

                fprintf(f,
                        ",\"sequence\":{\"failures_before\":%u,\"pattern\":\"%s\",\"diagnosis\":",
                        recent->earlier_failures,
                        pattern_to_string(recent->pattern));
                escape_json_fputs(f, d, strlen(d));
                fputc('}', f);
        }
        fputs("}\n", f);
}

int page_render(
        Server *s, const Attempt *a, PageKind kind, char **ret_body, size_t *ret_len, const char **ret_type) {
        Recent recent;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        if (!a)
                return -EINVAL;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        recent_load(s, a, &recent);
        if (kind == PAGE_JSON) {
                page_json(f, a, &recent);
                *ret_type = "application/json";
        } else {
                page_html(f, a, &recent);
                *ret_type = "text/html; charset=utf-8";
        }
        recent_done(&recent);
        if (ferror(f) || fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret_body = buf;
        *ret_len = len;
        return 0;
}
