/* SPDX-License-Identifier: MIT */
/* The HTML report (-o html): one self-contained page, whatever the verb: the summary figures as small
 * charts and a timeline per client family (timeline.h draws it), with the commonest diagnoses beside it.
 * No script and no external reference; a Content-Security-Policy meta forbids any fetch, so a browser
 * proves that none happens. Every client-chosen string (SNI, labels from User-Agents) is escaped.
 *
 * Bounded at any size: the attempts are kept as small marks (16 bytes each) until the page is written,
 * a family's timeline bins them when there are more than it has room for, at most
 * HTML_TIMELINES_MAX families get a timeline (the next ones a row of a table), and each family keeps at
 * most HTML_DIAGNOSES_MAX distinct diagnoses (the rest counted). */
#include <inttypes.h>

#include "diagnosis.h"
#include "hashmap.h"
#include "report-output.h"
#include "report-time.h"
#include "timeline.h"

#define HTML_WIDTH 1000                 /* of a timeline, px */
#define HTML_MARKS_MAX (HTML_WIDTH / 4) /* more attempts (or sequences) in a family: bins */
#define HTML_TIMELINES_MAX 16           /* families with a timeline; the next ones get a table row */
#define HTML_TABLE_MAX 50               /* rows of that table; the rest counted */
#define HTML_DIAGNOSES_MAX 32           /* distinct diagnoses kept per family */
#define HTML_DIAGNOSES_SHOWN 5          /* listed per family, commonest first */
#define HTML_SNIS_MAX 4                 /* distinct SNIs named per family */
#define HTML_TOKENS_MAX 160             /* of an example's attempts string */

typedef struct HtmlDiagnosis {
        char *text;
        uint64_t count;
        Pattern pattern;
        /* the first sequence that had it, as an example */
        int64_t first_us;
        char client[SEQUENCE_CLIENT_MAX];
        const char *host; /* the source's interned name: valid until the page is written; NULL if none */
        RawString sni;
        char tokens[HTML_TOKENS_MAX];
} HtmlDiagnosis;

typedef struct HtmlFamily {
        HashEntry map; /* first: a HashEntry * is an HtmlFamily * */
        char *key;     /* stable JA4, or what attempts without a ClientHello did */
        bool hello;
        uint64_t attempts, failures, sequences, failed_sequences;
        TimelineMark *marks;
        size_t n_marks, n_marks_allocated;
        TimelineSpan *spans; /* titles malloc'ed */
        size_t n_spans, n_spans_allocated;
        HtmlDiagnosis diagnoses[HTML_DIAGNOSES_MAX];
        size_t n_diagnoses;
        uint64_t other_diagnoses; /* sequences whose diagnosis was not kept */
        RawString snis[HTML_SNIS_MAX];
        size_t n_snis;
        bool more_snis;
} HtmlFamily;

struct ReportHtml {
        HashMap families;
        ReportLabels *labels; /* not owned */
        bool all;
};

int report_html_new(ReportLabels *labels, bool all, ReportHtml **ret) {
        ReportHtml *h = calloc(1, sizeof *h);

        if (!h)
                return -ENOMEM;
        if (hashmap_init(&h->families, 64) < 0) {
                free(h);
                return -ENOMEM;
        }
        h->labels = labels;
        h->all = all;
        *ret = h;
        return 0;
}

static void family_free(HtmlFamily *fam) {
        free(fam->key);
        free(fam->marks);
        for (size_t i = 0; i < fam->n_spans; i++)
                free((char *) fam->spans[i].title);
        free(fam->spans);
        for (size_t i = 0; i < fam->n_diagnoses; i++) {
                free(fam->diagnoses[i].text);
                free(fam->diagnoses[i].sni.data);
        }
        for (size_t i = 0; i < fam->n_snis; i++)
                free(fam->snis[i].data);
        free(fam);
}

ReportHtml *report_html_free(ReportHtml *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->families.n_buckets; i++)
                for (HashEntry *m = h->families.buckets[i], *next; m; m = next) {
                        next = m->next;
                        family_free((HtmlFamily *) m);
                }
        hashmap_done(&h->families);
        free(h);
        return NULL;
}

static int family_get(ReportHtml *h, const char *key, bool hello, HtmlFamily **ret) {
        uint64_t hash = hash_string(key);
        HtmlFamily *fam;

        HASHMAP_FOREACH_CHAIN(m, &h->families, hash)
        if (m->hash == hash && streq(((HtmlFamily *) m)->key, key)) {
                *ret = (HtmlFamily *) m;
                return 0;
        }
        fam = calloc(1, sizeof *fam);
        if (!fam)
                return -ENOMEM;
        fam->key = strdup(key);
        fam->hello = hello;
        if (!fam->key || hashmap_put(&h->families, &fam->map, hash) < 0) {
                family_free(fam);
                return -ENOMEM;
        }
        *ret = fam;
        return 0;
}

/* A copy of raw bytes (which may hold NUL), NUL-terminated. */
static char *strndup_raw(const char *data, size_t len) {
        char *p = malloc(len + 1);

        if (!p)
                return NULL;
        memcpy(p, data, len);
        p[len] = '\0';
        return p;
}

static int grow(void **array, size_t *allocated, size_t n, size_t size) {
        void *p;
        size_t k;

        if (n < *allocated)
                return 0;
        k = MAX((size_t) 64, *allocated * 2);
        p = reallocarray(*array, k, size);
        if (!p)
                return -ENOMEM;
        *array = p;
        *allocated = k;
        return 0;
}

int report_html_add_attempt(ReportHtml *h, const Attempt *a) {
        const char *key = a->ja4_stable && a->ja4_stable[0] ? a->ja4_stable : sequence_no_hello_kind(a);
        HtmlFamily *fam;
        int r;

        r = family_get(h, strna(key), a->ja4_stable && a->ja4_stable[0], &fam);
        if (r < 0)
                return r;
        r = grow((void **) &fam->marks, &fam->n_marks_allocated, fam->n_marks, sizeof *fam->marks);
        if (r < 0)
                return r;
        fam->marks[fam->n_marks++] = (TimelineMark){
                .t_us = a->started_us,
                .outcome = (int8_t) a->outcome,
                .alert_received = (int16_t) a->alert_received,
                .alert_sent = (int16_t) a->alert_sent,
        };
        fam->attempts++;
        fam->failures += outcome_is_failure(a->outcome);
        return 0;
}

static void family_add_sni(HtmlFamily *fam, const RawString *sni) {
        if (!sni->data)
                return;
        for (size_t i = 0; i < fam->n_snis; i++)
                if (fam->snis[i].len == sni->len && memcmp(fam->snis[i].data, sni->data, sni->len) == 0)
                        return;
        if (fam->n_snis >= HTML_SNIS_MAX) {
                fam->more_snis = true;
                return;
        }
        fam->snis[fam->n_snis].data = strndup_raw(sni->data, sni->len);
        if (fam->snis[fam->n_snis].data)
                fam->snis[fam->n_snis++].len = sni->len;
}

static int family_add_diagnosis(HtmlFamily *fam, const Sequence *q, const char *text) {
        HtmlDiagnosis *d;

        for (size_t i = 0; i < fam->n_diagnoses; i++)
                if (streq(fam->diagnoses[i].text, text)) {
                        fam->diagnoses[i].count++;
                        return 0;
                }
        if (fam->n_diagnoses >= HTML_DIAGNOSES_MAX) {
                fam->other_diagnoses++;
                return 0;
        }
        d = &fam->diagnoses[fam->n_diagnoses];
        *d = (HtmlDiagnosis){.count = 1, .pattern = q->pattern, .first_us = q->first_us};
        d->text = strdup(text);
        if (!d->text)
                return -ENOMEM;
        memcpy(d->client, q->client, sizeof d->client);
        d->host = q->host;
        if (q->sni.data) {
                d->sni.data = strndup_raw(q->sni.data, q->sni.len);
                d->sni.len = q->sni.len;
        }
        /* summarised as the table does ("✗46×7 ✓"); when still too long, cut between tokens, with "…" */
        char all[SEQUENCE_TOKENS_SUMMARISED_MAX];

        sequence_tokens_summarised(q, false, all, sizeof all);
        if (strlen(all) >= sizeof d->tokens) {
                size_t cut = sizeof d->tokens - sizeof " \u2026";

                while (cut > 0 && all[cut] != ' ')
                        cut--;
                memcpy(all + cut, " \u2026", sizeof " \u2026");
        }
        memcpy(d->tokens, all, strlen(all) + 1);
        fam->n_diagnoses++;
        return 0;
}

/* "07:04:14.924 to 07:04:18.169, 127.0.0.1, SNI example.org: cert_rejected_then_ok, 8 attempts (7 failed)",
 * with the SNI's raw bytes (NUL included): timeline_svg() escapes the title once, as it writes it. */
static char *span_title(const Sequence *q, uint32_t *ret_len) {
        char a[32], z[32], *t = NULL;
        size_t len = 0;
        FILE *f;

        *ret_len = 0;
        f = open_memstream(&t, &len);
        if (!f)
                return NULL;
        report_time_format(q->first_us, a);
        report_time_format(q->last_us, z);
        fprintf(f, "%s to %s, %s", a, z, q->client);
        if (q->host)
                fprintf(f, " on %s", q->host);
        if (q->sni.data) {
                fputs(", SNI ", f);
                fwrite(q->sni.data, 1, q->sni.len, f);
        }
        fprintf(f,
                ": %s, %u attempt%s (%u failed)",
                pattern_to_string(q->pattern),
                q->n_attempts,
                q->n_attempts == 1 ? "" : "s",
                q->n_failures);
        if (fclose(f) != 0) {
                free(t);
                return NULL;
        }
        *ret_len = (uint32_t) len;
        return t;
}

int report_html_add_sequence(ReportHtml *h, const Sequence *q) {
        const char *key = sequence_key_fingerprint(q);
        const ReportAgentCount *agents = NULL;
        size_t n = 0;
        const char *label = q->ja4 ? report_labels_get(h->labels, q->ja4, &agents, &n) : NULL;
        ClientIdentity who = {
                .name = label, .other = n > 1 ? agents[1].summary : NULL, .n_names = (unsigned) n};
        char diagnosis[SEQUENCE_DIAGNOSIS_MAX];
        HtmlFamily *fam;
        int r;

        r = family_get(h, key, q->ja4 != NULL, &fam);
        if (r < 0)
                return r;
        fam->sequences++;
        fam->failed_sequences += !sequence_is_clean(q);
        family_add_sni(fam, &q->sni);
        r = grow((void **) &fam->spans, &fam->n_spans_allocated, fam->n_spans, sizeof *fam->spans);
        if (r < 0)
                return r;
        /* A family with more sequences than the timeline draws one by one gets them binned, without
         * titles: keep none then (they were most of the memory at 10^6 attempts) */
        if (fam->n_spans == HTML_MARKS_MAX)
                for (size_t i = 0; i < fam->n_spans; i++) {
                        free((char *) fam->spans[i].title);
                        fam->spans[i].title = NULL;
                }
        fam->spans[fam->n_spans] = (TimelineSpan){
                .first_us = q->first_us,
                .last_us = q->last_us,
                .ok = q->outcome == SEQUENCE_OK,
                .open = q->outcome == SEQUENCE_OPEN,
        };
        if (fam->n_spans < HTML_MARKS_MAX)
                fam->spans[fam->n_spans].title = span_title(q, &fam->spans[fam->n_spans].title_len);
        fam->n_spans++;
        if (!h->all && sequence_is_clean(q))
                return 0; /* the clean ones are drawn, not explained */
        (void) sequence_diagnose(q, &who, diagnosis, sizeof diagnosis);
        return family_add_diagnosis(fam, q, diagnosis);
}

/* ---- writing ---- */

static void esc(FILE *f, const char *s) {
        timeline_html_escaped(f, s, strlen(s));
}

static void esc_raw(FILE *f, const RawString *s) {
        timeline_html_escaped(f, s->data, s->len);
}

typedef struct Bar {
        char name[64];
        uint64_t count;
        const char *color;
} Bar;

/* A small horizontal bar chart: one row per bar with its name and count. */
static void chart(FILE *f, const char *id, const char *title, const Bar *bars, size_t n) {
        uint64_t most = 1;
        int height = 16 * (int) MAX(n, (size_t) 1) + 4;

        for (size_t i = 0; i < n; i++)
                most = MAX(most, bars[i].count);
        fprintf(f,
                "<figure class=\"chart\" id=\"%s\"><figcaption>%s</figcaption>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"440\" height=\"%d\" viewBox=\"0 0 440 "
                "%d\" "
                "font-family=\"sans-serif\" font-size=\"11\">",
                id,
                title,
                height,
                height);
        if (n == 0)
                fputs("<text x=\"0\" y=\"13\">none</text>", f);
        for (size_t i = 0; i < n; i++) {
                int y = 2 + 16 * (int) i;
                double w = MAX(1.0, (double) bars[i].count * 200.0 / (double) most);

                fprintf(f, "<g class=\"bar\" data-n=\"%" PRIu64 "\">", bars[i].count);
                fprintf(f, "<text x=\"168\" y=\"%d\" text-anchor=\"end\">", y + 11);
                esc(f, bars[i].name);
                fprintf(f,
                        "</text><rect x=\"174\" y=\"%d\" width=\"%.1f\" height=\"12\" fill=\"%s\"/>"
                        "<text x=\"%.1f\" y=\"%d\">%" PRIu64 "</text></g>",
                        y,
                        w,
                        bars[i].color,
                        174 + w + 4,
                        y + 11,
                        bars[i].count);
        }
        fputs("</svg></figure>\n", f);
}

static void summary_charts(FILE *f, const ReportSummary *s) {
        Bar bars[256];
        size_t n = 0;

        fputs("<section id=\"summary\"><h2>Summary</h2><div class=\"charts\">\n", f);
        for (int i = 0; i < _OUTCOME_MAX; i++)
                if (s->outcomes[i] > 0) {
                        bars[n] = (Bar){.count = s->outcomes[i], .color = timeline_outcome_color(i)};
                        (void) snprintf(bars[n++].name, sizeof bars[0].name, "%s", outcome_to_string(i));
                }
        chart(f, "chart-outcomes", "Attempts by outcome", bars, n);

        n = 0;
        for (int i = 0; i < 256; i++)
                if (s->alerts_received[i] > 0) {
                        bars[n] = (Bar){.count = s->alerts_received[i], .color = "#d62728"};
                        (void) snprintf(
                                bars[n++].name, sizeof bars[0].name, "%d %s", i, strna(tls_alert_to_string(i)));
                }
        for (int i = 0; i < 256; i++)
                if (s->alerts_sent[i] > 0) {
                        bars[n] = (Bar){.count = s->alerts_sent[i], .color = "#e377c2"};
                        (void) snprintf(
                                bars[n++].name,
                                sizeof bars[0].name,
                                "sent %d %s",
                                i,
                                strna(tls_alert_to_string(i)));
                }
        chart(f, "chart-alerts", "Alerts of failed attempts (received, and sent by us)", bars, n);

        n = 0;
        for (int i = 0; i < _PATTERN_MAX; i++)
                if (s->patterns[i] > 0) {
                        bars[n] = (Bar){.count = s->patterns[i], .color = "#555555"};
                        (void) snprintf(bars[n++].name, sizeof bars[0].name, "%s", pattern_to_string(i));
                }
        chart(f, "chart-patterns", "Sequences by pattern", bars, n);

        n = 0;
        for (int i = 1; i <= REPORT_RETRY_BUCKETS; i++)
                if (s->retries_ok[i] > 0) {
                        bars[n] = (Bar){.count = s->retries_ok[i], .color = i == 1 ? "#2ca02c" : "#ff7f0e"};
                        (void) snprintf(
                                bars[n++].name,
                                sizeof bars[0].name,
                                "%d%s attempt%s",
                                i,
                                i == REPORT_RETRY_BUCKETS ? "+" : "",
                                i == 1 ? "" : "s");
                }
        chart(f, "chart-attempts-needed", "Attempts needed by successful sequences", bars, n);
        fputs("</div></section>\n", f);
}

static void legend(FILE *f) {
        fputs("<p class=\"legend\">", f);
        for (int i = 0; i < _OUTCOME_MAX; i++)
                fprintf(f,
                        "<span><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\">"
                        "<rect width=\"10\" height=\"10\" fill=\"%s\"/></svg> %s</span> ",
                        timeline_outcome_color(i),
                        outcome_to_string(i));
        fputs("<span>Under the marks, the sequences: a span each (green: ended ok; red: abandoned; amber: "
              "open, or several drawn as one), or with many, per time bin the share of those that started "
              "then, by how they ended.</span> <span>Hover a mark, bin or span for its "
              "details.</span></p>\n",
              f);
}

static int family_compare(const void *a, const void *b) {
        const HtmlFamily *x = *(HtmlFamily *const *) a, *y = *(HtmlFamily *const *) b;

        if (x->attempts != y->attempts)
                return x->attempts < y->attempts ? 1 : -1;
        return strcmp(x->key, y->key);
}

static int diagnosis_compare(const void *a, const void *b) {
        const HtmlDiagnosis *x = a, *y = b;

        if (x->count != y->count)
                return x->count < y->count ? 1 : -1;
        return x->first_us < y->first_us ? -1 : x->first_us > y->first_us;
}

static int mark_compare(const void *a, const void *b) {
        const TimelineMark *x = a, *y = b;

        return x->t_us < y->t_us ? -1 : x->t_us > y->t_us;
}

/* The family's name: its label from the User-Agents (several when its successes carried several). */
static void family_label(FILE *f, ReportHtml *h, const HtmlFamily *fam) {
        const ReportAgentCount *agents = NULL;
        size_t n = 0;
        const char *label = fam->hello ? report_labels_get(h->labels, fam->key, &agents, &n) : NULL;

        if (!fam->hello) {
                fprintf(f, "Connections without a ClientHello (%s)", fam->key);
                return;
        }
        if (!label) {
                fputs("A client that sent no User-Agent", f);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        fputs(" or ", f);
                esc(f, agents[i].summary);
        }
}

static int family_write(FILE *f, ReportHtml *h, HtmlFamily *fam, const ReportSummary *s, size_t index) {
        char id[32];
        int r;

        fprintf(f, "<section class=\"family\" data-family=\"");
        esc(f, fam->key);
        fprintf(f, "\" data-attempts=\"%" PRIu64 "\">\n<h3>", fam->attempts);
        family_label(f, h, fam);
        fputs(" <code>", f);
        esc(f, fam->key);
        fprintf(f,
                "</code></h3>\n<p class=\"figures\">%" PRIu64 " attempt%s, %" PRIu64 " failed; %" PRIu64
                " sequence%s, %" PRIu64 " with failures",
                fam->attempts,
                fam->attempts == 1 ? "" : "s",
                fam->failures,
                fam->sequences,
                fam->sequences == 1 ? "" : "s",
                fam->failed_sequences);
        if (fam->n_snis > 0) {
                fputs("; SNI: ", f);
                for (size_t i = 0; i < fam->n_snis; i++) {
                        fputs(i > 0 ? ", <code>" : "<code>", f);
                        esc_raw(f, &fam->snis[i]);
                        fputs("</code>", f);
                }
                if (fam->more_snis)
                        fputs(" and more", f);
        }
        fputs(fam->n_marks > HTML_MARKS_MAX ? " (attempts drawn as time bins)" : "", f);
        fputs("</p>\n", f);

        if (fam->n_marks > 0) /* no attempt of the family read: its marks are NULL */
                qsort(fam->marks, fam->n_marks, sizeof *fam->marks, mark_compare);
        (void) snprintf(id, sizeof id, "timeline-%zu", index);
        r = timeline_svg(
                f,
                &(TimelineParams){
                        .t0_us = s->first_us,
                        .t1_us = s->last_us,
                        .width = HTML_WIDTH,
                        .max_marks = HTML_MARKS_MAX,
                        .id = id,
                        .label = fam->key,
                },
                fam->marks,
                fam->n_marks,
                fam->spans,
                fam->n_spans);
        if (r < 0)
                return r;

        if (fam->n_diagnoses > 0) {
                uint64_t rest = fam->other_diagnoses;

                qsort(fam->diagnoses, fam->n_diagnoses, sizeof *fam->diagnoses, diagnosis_compare);
                fputs("<ol class=\"diagnoses\">\n", f);
                for (size_t i = 0; i < fam->n_diagnoses; i++) {
                        const HtmlDiagnosis *d = &fam->diagnoses[i];
                        char when[32];

                        if (i >= HTML_DIAGNOSES_SHOWN) {
                                rest += d->count;
                                continue;
                        }
                        report_time_format(d->first_us, when);
                        fprintf(f,
                                "<li><span class=\"count\">%" PRIu64 "&#215;</span> <b>%s</b> ",
                                d->count,
                                pattern_to_string(d->pattern));
                        esc(f, d->text);
                        fprintf(f, "<br><small>first: %s, ", when);
                        esc(f, d->client);
                        if (d->host) {
                                fputs(" on ", f);
                                esc(f, d->host);
                        }
                        if (d->sni.data) {
                                fputs(", SNI <code>", f);
                                esc_raw(f, &d->sni);
                                fputs("</code>", f);
                        }
                        fputs(", <code>", f);
                        esc(f, d->tokens);
                        fputs("</code></small></li>\n", f);
                }
                fputs("</ol>\n", f);
                if (rest > 0)
                        fprintf(f,
                                "<p class=\"rest\">and %" PRIu64 " sequence%s with other diagnoses.</p>\n",
                                rest,
                                rest == 1 ? "" : "s");
        }
        fputs("</section>\n", f);
        return 0;
}

static const char *page_style = "body{font-family:sans-serif;margin:1.5em;color:#222}"
                                "h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccc}"
                                "h3{font-size:1.05em;margin:1.2em 0 .2em}code{font-size:.9em}"
                                ".charts{display:flex;flex-wrap:wrap;gap:0 2em}figure{margin:.5em 0}"
                                "figcaption{font-weight:bold;font-size:.9em}"
                                "svg.timeline{max-width:100%;height:auto;display:block}"
                                ".figures,.rest{margin:.2em 0;font-size:.9em}.legend "
                                "span{margin-right:1em;font-size:.9em}"
                                "ol.diagnoses{margin:.2em 0;font-size:.9em}ol.diagnoses small{color:#555}"
                                ".count{font-weight:bold}table{border-collapse:collapse;font-size:.9em}"
                                "td,th{text-align:left;padding:.1em .8em .1em 0}"
                                "@media print{section.family,figure{break-inside:avoid}body{margin:0}}";

/* The fleet: on how many hosts each client family fails, and where first (as summary's table says). */
static int fleet_write(FILE *f, ReportHtml *h, const ReportSummary *s, ReportClients *c) {
        _cleanup_free_ ReportClient **fleet = NULL;
        size_t n = report_clients_sorted_by_hosts(c, REPORT_FLEET_FAMILIES, &fleet);
        char t[32];

        if (!fleet && n > 0)
                return -ENOMEM;
        fprintf(f,
                "<section id=\"fleet\"><h2>Hosts</h2>\n<p>%" PRIu64 " hosts. Client families failing on the "
                "most hosts:</p>\n",
                s->hosts);
        if (n == 0)
                fputs("<p>none</p>\n", f);
        else
                fputs("<table id=\"fleet-families\"><tr><th>Family</th><th>Failing on</th><th>First on</th>"
                      "<th>At</th></tr>\n",
                      f);
        for (size_t i = 0; i < n; i++) {
                const char *label = h->labels ? report_labels_get(h->labels, fleet[i]->ja4, NULL, NULL) : NULL;

                fputs("<tr><td>", f);
                esc(f, label ?: fleet[i]->ja4 ?: "(no ClientHello)");
                fprintf(f, "</td><td>%zu of %" PRIu64 " hosts</td><td>", fleet[i]->n_failing_hosts, s->hosts);
                esc(f, fleet[i]->first_failure_host ?: "(unknown host)");
                report_time_format(fleet[i]->first_failure_us, t);
                fprintf(f, "</td><td>%s</td></tr>\n", t);
        }
        if (n > 0)
                fputs("</table>\n", f);
        fputs("</section>\n", f);
        return 0;
}

int report_output_html(ReportOutput *o, ReportHtml *h, const ReportSummary *s, ReportClients *fleet) {
        _cleanup_free_ HtmlFamily **v = calloc(h->families.n + 1, sizeof *v);
        FILE *f = o->f;
        char a[32], z[32];
        size_t n = 0;
        uint64_t rest_attempts = 0;
        int r;

        if (!v)
                return -ENOMEM;
        HASHMAP_FOREACH(m, &h->families)
        v[n++] = (HtmlFamily *) m;
        qsort(v, n, sizeof *v, family_compare);

        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
              "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
              "style-src 'unsafe-inline'; img-src data:\">\n"
              "<meta name=\"viewport\" content=\"width=device-width\">\n"
              "<title>tlswatch: TLS handshake report</title>\n<style>",
              f);
        fputs(page_style, f);
        fputs("</style>\n</head><body>\n<h1>TLS handshake report</h1>\n<p id=\"range\">", f);
        if (s->attempts > 0) {
                report_time_format(s->first_us, a);
                report_time_format(s->last_us, z);
                fprintf(f, "%" PRIu64 " attempts (%" PRIu64 " failed) ", s->attempts, s->failures);
                fprintf(f,
                        "from %s to %s, in %" PRIu64 " sequence%s",
                        a,
                        z,
                        s->sequences,
                        s->sequences == 1 ? "" : "s");
                fprintf(f, " of %zu client famil%s.", n, n == 1 ? "y" : "ies");
        } else
                fputs("No attempts matched.", f);
        fputs("</p>\n", f);
        summary_charts(f, s);
        if (fleet) {
                r = fleet_write(f, h, s, fleet);
                if (r < 0)
                        return r;
        }

        fputs("<section id=\"families\"><h2>Timelines per client family</h2>\n", f);
        legend(f);
        for (size_t i = 0; i < n && i < HTML_TIMELINES_MAX; i++) {
                r = family_write(f, h, v[i], s, i);
                if (r < 0)
                        return r;
        }
        if (n > HTML_TIMELINES_MAX) {
                fprintf(f,
                        "<h3>%zu more famil%s</h3>\n<table id=\"more-families\"><tr><th>Family</th>"
                        "<th>Stable JA4</th><th>Attempts</th><th>Failed</th><th>Sequences</th></tr>\n",
                        n - HTML_TIMELINES_MAX,
                        n - HTML_TIMELINES_MAX == 1 ? "y" : "ies");
                for (size_t i = HTML_TIMELINES_MAX; i < n; i++) {
                        if (i >= HTML_TIMELINES_MAX + HTML_TABLE_MAX) {
                                rest_attempts += v[i]->attempts;
                                continue;
                        }
                        fputs("<tr><td>", f);
                        family_label(f, h, v[i]);
                        fputs("</td><td><code>", f);
                        esc(f, v[i]->key);
                        fputs("</code></td>", f);
                        fprintf(f, "<td>%" PRIu64 "</td><td>%" PRIu64 "</td>", v[i]->attempts, v[i]->failures);
                        fprintf(f, "<td>%" PRIu64 "</td></tr>\n", v[i]->sequences);
                }
                fputs("</table>\n", f);
                if (n > HTML_TIMELINES_MAX + HTML_TABLE_MAX)
                        fprintf(f,
                                "<p class=\"rest\">and %zu more families with %" PRIu64 " attempts.</p>\n",
                                n - HTML_TIMELINES_MAX - HTML_TABLE_MAX,
                                rest_attempts);
        }
        fputs("</section>\n<p><small>Written by tlsreport. Times are local. Details: <code>tlsreport "
              "--since ... sequences</code>.</small></p>\n"
              "</body></html>\n",
              f);
        o->rows++;
        return 0;
}
