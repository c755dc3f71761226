/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio_ext.h>
#include <time.h>

#include "attempt-format.h"
#include "describe.h"
#include "diagnosis.h"
#include "escape.h"
#include "fingerprint.h"
#include "page.h"
#include "sequence.h"
#include "timeline.h"
#include "useragent.h"

/* The id that marks this connection's own attempt among those fed to the sequencer. */
#define PAGE_SELF_ID INT64_C(-1)

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

/* What the page says about the visitor's recent attempts: grouped from the server's in-memory record by
 * the core sequencer with the client key, window and gap that tlsreport uses, and worded by
 * sequence_diagnose(), so that the page and `tlsreport sequences` tell the same story.
 *
 * A visitor sees only its own story: the attempts of its own sequence (its key: address or /64, stable JA4,
 * SNI), and of those only how the handshake went (time, outcome, step, alerts), never another attempt's
 * SNI, User-Agent, port or error text: several people behind one NAT or proxy share an address. The client
 * is named by this connection's own User-Agent only (tlsreport also counts those of other connections of
 * the same fingerprint). */
typedef struct Recent {
        RecentEntry *held[RECENT_PER_CLIENT]; /* the client's held attempts, oldest first */
        size_t n_held;
        const Attempt *self;
        char client[SEQUENCE_CLIENT_MAX];
        unsigned earlier_failures; /* failed attempts in the visitor's sequence before this one */
        Pattern pattern;           /* of that sequence, ended by this (successful) attempt */
        bool have_sequence;
        bool incomplete;     /* attempts of the last 10 minutes that may be the visitor's were not kept */
        int64_t boundary_us; /* when the last earlier sequence with the visitor's key ended */
        char ja4[JA4_STABLE_SIZE]; /* of that sequence's key, as tlsreport's "ja4"; "" without a ClientHello */
        char diagnosis[SEQUENCE_DIAGNOSIS_MAX];
        char agent[USER_AGENT_SUMMARY_MAX]; /* this connection's User-Agent, summarised */
        /* the other attempts of the visitor's sequence, oldest first, as the sequencer keeps them */
        SequenceAttempt earlier[RECENT_PER_CLIENT];
        size_t n_earlier;
} Recent;

/* Who the client of the visitor's sequence is: what this connection's request said (a success's
 * User-Agent; the sequence's failed attempts sent none). */
static void recent_identify(Recent *r, ClientIdentity *ret) {
        *ret = (ClientIdentity){};
        if (r->self->outcome != OUTCOME_OK || !r->self->user_agent.data)
                return;
        user_agent_summary(r->self->user_agent.data, r->self->user_agent.len, r->agent);
        *ret = (ClientIdentity){.name = r->agent, .n_names = 1};
}

/* The sequence that this connection's own attempt ends is the one holding the attempt fed with
 * PAGE_SELF_ID (held attempts have no id: they are copies made before the store gave them one). */
static int recent_on_sequence(const Sequence *seq, void *userdata) {
        Recent *r = userdata;
        ClientIdentity who;
        bool self = false;

        for (unsigned i = 0; i < seq->n_details && !self; i++)
                self = seq->attempts[i].id == PAGE_SELF_ID;
        if (!self) {
                if (streq_ptr(seq->ja4, r->self->ja4_stable) && seq->sni.len == r->self->sni.len &&
                    (seq->sni.len == 0 || memcmp(seq->sni.data, r->self->sni.data, seq->sni.len) == 0))
                        r->boundary_us = MAX(r->boundary_us, seq->last_us); /* an earlier one of its key */
                return 0;
        }
        r->earlier_failures = seq->n_failures;
        r->pattern = seq->pattern;
        r->have_sequence = true;
        (void) snprintf(r->ja4, sizeof r->ja4, "%s", strempty(seq->ja4));
        for (unsigned i = 0; i < seq->n_details && r->n_earlier < ELEMENTSOF(r->earlier); i++)
                if (seq->attempts[i].id != PAGE_SELF_ID)
                        r->earlier[r->n_earlier++] = seq->attempts[i];
        recent_identify(r, &who);
        (void) sequence_diagnose(seq, &who, r->diagnosis, sizeof r->diagnosis);
        return 0;
}

static void recent_load(RecentRecord *record, const Attempt *self, Recent *ret) {
        _cleanup_(sequencer_freep) Sequencer *q = NULL;
        Attempt marked = *self; /* a shallow copy: the sequencer only reads it */
        int64_t lost_us = 0;

        *ret = (Recent){.self = self};
        sequence_client_key(self->peer_addr, ret->client);
        if (!record)
                return;
        ret->n_held = recent_record_get(record, self->peer_addr, self->ja4_stable, ret->held, &lost_us);
        if (sequencer_new(NULL, recent_on_sequence, ret, &q) < 0)
                return;
        for (size_t i = 0; i < ret->n_held; i++) /* oldest first */
                if (ret->held[i]->attempt->started_us <= self->started_us)
                        (void) sequencer_feed(q, ret->held[i]->attempt);
        marked.id = PAGE_SELF_ID;
        (void) sequencer_feed(q, &marked);
        (void) sequencer_flush(q, self->started_us);
        /* Attempts that were not kept matter if they are recent and no sequence of the visitor's key ended
         * after them (they could be the start of the visitor's own). */
        ret->incomplete = lost_us > 0 && lost_us >= self->started_us - SEQUENCE_RETRY_WINDOW_DEFAULT_US &&
                lost_us >= ret->boundary_us;
}

/* The sentence for one earlier attempt of the sequence, from what the page may show of it. */
static char *earlier_describe(const SequenceAttempt *e) {
        Attempt a;

        attempt_init(&a);
        a.started_us = e->started_us;
        a.outcome = e->outcome;
        a.state_reached = e->state_reached;
        a.alert_received = e->alert_received;
        a.alert_sent = e->alert_sent;
        a.resumed = e->resumed;
        a.close_kind = e->close_kind;
        return attempt_describe(&a); /* a holds no string */
}

static void recent_done(Recent *r) {
        recent_entries_unref(r->held, r->n_held);
}

static void html_escaped(FILE *f, const void *data, size_t len) {
        timeline_html_escaped(f, data, len);
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

/* The visitor's own attempts on a time axis, as tlsreport's HTML report draws a client family: its
 * earlier attempts in this sequence and this connection (outlined), the sequence as a span. Nothing of
 * any other client. */
static void page_timeline(FILE *f, const Attempt *a, const Recent *recent) {
        TimelineMark marks[RECENT_PER_CLIENT + 1];
        TimelineSpan span;
        size_t n = 0;
        char title[128];
        int64_t t0 = a->started_us, range;

        for (size_t i = 0; i < recent->n_earlier; i++) {
                const SequenceAttempt *e = &recent->earlier[i];

                marks[n++] = (TimelineMark){
                        .t_us = e->started_us,
                        .outcome = (int8_t) e->outcome,
                        .alert_received = e->alert_received,
                        .alert_sent = e->alert_sent,
                };
                t0 = MIN(t0, e->started_us);
        }
        marks[n++] = (TimelineMark){
                .t_us = a->started_us,
                .outcome = (int8_t) a->outcome,
                .alert_received = (int16_t) a->alert_received,
                .alert_sent = (int16_t) a->alert_sent,
                .self = true,
        };
        (void) snprintf(
                title,
                sizeof title,
                "your sequence: %s, %zu attempt%s",
                recent->have_sequence ? pattern_to_string(recent->pattern) : "clean",
                n,
                n == 1 ? "" : "s");
        span = (TimelineSpan){
                .first_us = t0, .last_us = a->started_us, .ok = !outcome_is_failure(a->outcome), .title = title};
        range = MAX(a->started_us - t0, USEC_PER_SEC);
        fputs("<h2>Your attempts on a timeline</h2>\n", f);
        (void) timeline_svg(
                f,
                &(TimelineParams){
                        .t0_us = t0 - range / 20,
                        .t1_us = a->started_us + range / 20,
                        .width = 800,
                        .max_marks = RECENT_PER_CLIENT + 1, /* every attempt a mark */
                        .id = "self-timeline",
                        .label = "your attempts",
                },
                marks,
                n,
                &span,
                1);
        fputs("<p class=\"legend\"><span style=\"color:#d62728\">&#9632;</span> alert from your client "
              "(its number above the mark), <span style=\"color:#2ca02c\">&#9632;</span> ok; "
              "the outlined mark is this connection. Hover a mark for details.</p>\n",
              f);
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
                        "<p id=\"sequence\" class=\"fail\">"
                        "Your client made %u failed attempt%s before this one: ",
                        recent->earlier_failures,
                        recent->earlier_failures == 1 ? "" : "s");
                html_escaped(f, recent->diagnosis, strlen(recent->diagnosis));
                fputs("</p>\n", f);
        } else if (!recent->incomplete)
                fputs("<p id=\"sequence\" class=\"ok\">Your client connected on its first attempt.</p>\n", f);
        if (recent->incomplete)
                fprintf(f,
                        "<p id=\"incomplete\" class=\"fail\">This server's memory of recent clients "
                        "was full: attempts of the last 10 minutes from %s may be missing here, so "
                        "this page cannot tell all your client did before this connection. On the "
                        "server, <code>tlsreport --client=%s sequences</code> reads them all from "
                        "the database.</p>\n",
                        recent->client,
                        recent->client);

        page_timeline(f, a, recent);

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

        fputs("<h2>Your client's earlier attempts in this sequence</h2>\n<table id=\"sequence-attempts\">\n",
              f);
        if (recent->n_earlier == 0)
                fputs("<tr><td>none</td></tr>\n", f);
        for (size_t i = 0; i < recent->n_earlier; i++) {
                const SequenceAttempt *e = &recent->earlier[i];
                _cleanup_free_ char *d = earlier_describe(e);
                char when[32];

                format_local_time(e->started_us, when);
                fprintf(f,
                        "<tr class=\"%s\"><td>%s</td><td>%s</td><td>",
                        outcome_is_failure(e->outcome) ? "fail" : "ok",
                        when,
                        outcome_to_string(e->outcome));
                if (d)
                        html_escaped(f, d, strlen(d));
                fputs("</td></tr>\n", f);
        }
        fputs("</table>\n<p>JSON: <a href=\"/api/self\">/api/self</a>. Server-side report: "
              "<code>tlsreport --since today</code>.</p>\n</body></html>\n",
              f);
}

static void json_alert(FILE *f, const char *key, int alert) {
        if (alert >= 0)
                fprintf(f, ",\"%s\":%d", key, alert);
        else
                fprintf(f, ",\"%s\":null", key);
}

/* One earlier attempt of the visitor's sequence: only how its handshake went. */
static void earlier_json(FILE *f, const SequenceAttempt *e, bool comma) {
        _cleanup_free_ char *d = earlier_describe(e);

        fprintf(f,
                "%s{\"started_us\":%" PRId64 ",\"outcome\":\"%s\",\"state_reached\":\"%s\"",
                comma ? "," : "",
                e->started_us,
                outcome_to_string(e->outcome),
                handshake_step_to_string(e->state_reached));
        json_alert(f, "alert_received", e->alert_received);
        json_alert(f, "alert_sent", e->alert_sent);
        fputs(",\"description\":", f);
        if (d)
                escape_json_fputs(f, d, strlen(d));
        else
                fputs("null", f);
        fputc('}', f);
}

static void page_json(FILE *f, const Attempt *a, const Recent *recent) {
        fputs("{\"connection\":", f);
        attempt_json_write(f, a, false); /* as tlsreport writes it */
        fprintf(f, ",\"history_complete\":%s", recent->incomplete ? "false" : "true");
        if (recent->have_sequence) {
                fprintf(f, ",\"sequence\":{\"client\":\"%s\",\"ja4\":", recent->client);
                if (recent->ja4[0] != '\0')
                        fprintf(f, "\"%s\"", recent->ja4);
                else
                        fputs("null", f);
                fprintf(f,
                        ",\"failures_before\":%u,\"pattern\":\"%s\",\"diagnosis\":",
                        recent->earlier_failures,
                        pattern_to_string(recent->pattern));
                escape_json_fputs(f, recent->diagnosis, strlen(recent->diagnosis));
                fputs(",\"earlier_attempts\":[", f);
                for (size_t i = 0; i < recent->n_earlier; i++)
                        earlier_json(f, &recent->earlier[i], i > 0);
                fputs("]}", f);
        }
        fputs("}\n", f);
}

int page_render(
        RecentRecord *record,
        const Attempt *a,
        PageKind kind,
        char **ret_body,
        size_t *ret_len,
        const char **ret_type) {
        Recent recent;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        if (!a)
                return -EINVAL;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        (void) __fsetlocking(f, FSETLOCKING_BYCALLER); /* only this thread sees f: no lock per fputc() */
        recent_load(record, a, &recent);
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

unsigned page_prior_failures(RecentRecord *record, const Attempt *a) {
        Recent r;
        unsigned n;

        recent_load(record, a, &r);
        n = r.have_sequence ? r.earlier_failures : 0;
        recent_done(&r);
        return n;
}
