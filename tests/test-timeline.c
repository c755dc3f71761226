/* SPDX-License-Identifier: MIT */
/* The SVG timeline (core/timeline.c): a mark per attempt while they fit, time bins whose counts add up
 * to the attempts when they do not, spans merged on screen, bounded output, escaped text. What the
 * browser makes of it is tests/browser/test-html-report.sh's part. */
#include <stdlib.h>

#include "macro.h"
#include "tap.h"
#include "timeline.h"

static char *
draw(const TimelineParams *p, const TimelineMark *m, size_t n, const TimelineSpan *s, size_t ns, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                abort();
        if (timeline_svg(f, p, m, n, s, ns) < 0)
                abort();
        fclose(f);
        *ret_len = len;
        return buf;
}

static size_t count(const char *s, const char *needle) {
        size_t n = 0;

        for (const char *p = s; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* the sum of the numbers after each needle */
static uint64_t sum(const char *s, const char *needle) {
        uint64_t n = 0;

        for (const char *p = s; (p = strstr(p, needle)); p++)
                n += strtoull(p + strlen(needle), NULL, 10);
        return n;
}

int main(void) {
        TimelineParams p = {.t0_us = 1000 * USEC_PER_SEC, .t1_us = 1060 * USEC_PER_SEC, .width = 800};
        TimelineMark few[3] = {
                {.t_us = 1001 * USEC_PER_SEC,
                 .outcome = OUTCOME_PEER_ALERT,
                 .alert_received = 46,
                 .alert_sent = -1},
                {.t_us = 1030 * USEC_PER_SEC,
                 .outcome = OUTCOME_PEER_ALERT,
                 .alert_received = 46,
                 .alert_sent = -1},
                {.t_us = 1059 * USEC_PER_SEC,
                 .outcome = OUTCOME_OK,
                 .alert_received = -1,
                 .alert_sent = -1,
                 .self = true},
        };
        TimelineSpan span = {
                .first_us = 1001 * USEC_PER_SEC,
                .last_us = 1059 * USEC_PER_SEC,
                .ok = true,
                .title = "<script>x</script> \x1b[31m \"q\" & 'a'"};
        _cleanup_free_ TimelineMark *many = calloc(100000, sizeof *many);
        _cleanup_free_ TimelineSpan *spans = calloc(20000, sizeof *spans);
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        size_t len;

        /* few attempts: one mark each, coloured by outcome, with its alert */
        a = draw(
                &(TimelineParams){.t0_us = p.t0_us, .t1_us = p.t1_us, .width = 800, .id = "t", .label = "a<b"},
                few,
                3,
                &span,
                1,
                &len);
        is_int(count(a, "<rect class=\"mark\""), 3, "a mark per attempt");
        is_int(count(a, "data-outcome=\"peer_alert\""), 2, "two marks are peer_alert");
        is_int(count(a, "fill=\"#d62728\""), 2, "in peer_alert's colour");
        ok(strstr(a, "alert 46 certificate_unknown received") != NULL, "the alert in the mark's title");
        ok(strstr(a, ">46</text>") != NULL, "the alert's number as the mark's token");
        ok(strstr(a, "(this connection)") && strstr(a, "stroke=\"#000\""), "the page's own attempt outlined");
        is_int(count(a, "class=\"bin\""), 0, "no bins");
        is_int(count(a, "<rect class=\"span\""), 1, "one span");
        ok(strstr(a, "&lt;script&gt;x&lt;/script&gt; \\x1b[31m &quot;q&quot; &amp; &#39;a&#39;") != NULL,
           "the span's title escaped for HTML, the control byte shown as \\x1b");
        ok(!strchr(a, '\x1b') && !strstr(a, "<script"), "no control byte or tag of the title comes out");
        ok(strstr(a, "aria-label=\"a&lt;b\"") != NULL, "the label escaped");
        ok(count(a, "<text") >= 4, "axis labels");

        /* a title with raw client bytes (a NUL, a backslash) is escaped once, whole */
        {
                static const char raw[] = "SNI a\\b\0c\x1b"
                                          "d";
                TimelineSpan t = {
                        .first_us = p.t0_us, .last_us = p.t1_us, .title = raw, .title_len = sizeof raw - 1};
                _cleanup_free_ char *d = draw(&p, NULL, 0, &t, 1, &len);

                ok(strstr(d, "<title>SNI a\\\\b\\x00c\\x1bd</title>") != NULL,
                   "a raw title escaped once: its backslash doubled once, its NUL and ESC as \\xHH, nothing "
                   "cut");
        }

        /* an axis across midnight names the day at midnight (HH:MM alone repeats from one day to the next) */
        {
                int64_t day = INT64_C(1795737600) * USEC_PER_SEC; /* 2026-11-27 00:00 UTC */
                TimelineMark late = {
                        .t_us = day + 3600 * USEC_PER_SEC,
                        .outcome = OUTCOME_OK,
                        .alert_received = -1,
                        .alert_sent = -1};
                _cleanup_free_ char *d = draw(
                        &(TimelineParams){
                                .t0_us = day - 6 * 3600 * USEC_PER_SEC,
                                .t1_us = day + 30 * 3600 * USEC_PER_SEC,
                                .width = 1000,
                                .utc = true},
                        &late,
                        1,
                        NULL,
                        0,
                        &len);

                ok(strstr(d, "<title>11-27 01:00:00.000 ok</title>") != NULL,
                   "a mark's tooltip on an axis over days carries its day");
                ok(strstr(d, ">11-27</text>") && strstr(d, ">11-28</text>") && !strstr(d, ">00:00</text>"),
                   "the midnight ticks labelled 11-27 and 11-28, not 00:00");
                ok(strstr(d, ">06:00</text>") != NULL, "other ticks by their time");
        }

        /* 10^5 attempts: time bins whose counts are the attempts, and a bounded size */
        for (size_t i = 0; i < 100000; i++)
                many[i] = (TimelineMark){
                        .t_us = p.t0_us + (int64_t) (i * 600),
                        .outcome = i % 3 == 0 ? OUTCOME_OK
                                : i % 7 == 0  ? OUTCOME_PEER_RESET
                                              : OUTCOME_PEER_ALERT,
                        .alert_received = 46,
                        .alert_sent = -1,
                };
        b = draw(&p, many, 100000, NULL, 0, &len);
        is_int(count(b, "class=\"mark\""), 0, "no marks at 10^5 attempts");
        ok(count(b, "class=\"bin\"") > 50 && count(b, "class=\"bin\"") <= 800 / 6,
           "bins, at most one per 6 px (%zu)",
           count(b, "class=\"bin\""));
        is_int(sum(b, "class=\"bin\" data-n=\""), 100000, "the bins' counts add up to the attempts");
        ok(strstr(b, "fill=\"#ff7f0e\"") != NULL, "the rarer outcome still has its colour");
        ok(len < 64 * 1024, "bounded: %zu bytes", len);

        /* 2*10^4 sequences: drawn as at most one span per few px, their numbers adding up */
        for (size_t i = 0; i < 20000; i++)
                spans[i] = (TimelineSpan){
                        .first_us = p.t0_us + (int64_t) i * 3000,
                        .last_us = p.t0_us + (int64_t) i * 3000 + 1000,
                        .ok = i % 2,
                };
        c = draw(&p, NULL, 0, spans, 20000, &len);
        ok(count(c, "class=\"span\"") <= 800 / 3, "spans merged or binned (%zu)", count(c, "class=\"span\""));
        is_int(sum(c, "class=\"span\" data-n=\""), 20000, "the spans' counts add up to the sequences");
        ok(len < 64 * 1024, "bounded: %zu bytes", len);
        return tap_done();
}
