/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <time.h>

#include "escape.h"
#include "timeline.h"

/* Geometry of the SVG, in px (see timeline.h for what is drawn). */
#define PAD_X 12
#define TOKEN_Y 11      /* baseline of the marks' tokens */
#define MARK_Y 14       /* top of a mark */
#define MARK_H 22       /* height of a mark; the bins stand on MARK_Y + MARK_H */
#define MARK_W 3        /* width of a mark */
#define BIN_W 6         /* width of a bin */
#define BIN_H 32        /* height of the fullest bin */
#define SPAN_Y 42       /* top of the spans */
#define SPAN_H 8        /* height of a span */
#define AXIS_Y 56       /* the axis line */
#define LABEL_Y 71      /* baseline of the axis labels */
#define HEIGHT 76       /* of the SVG */
#define TOKEN_GAP 16    /* a mark's token is written when it is this far from the last one written */
#define TICK_LABEL_W 80 /* axis labels at least this far apart */

/* The spans' colours: lighter than the marks', so that a span is never taken for an attempt. */
#define SPAN_OK "#9fd89f"
#define SPAN_ABANDONED "#f2a3a3"
#define SPAN_OPEN "#f5cf8f" /* or several spans drawn as one */

static const char *const outcome_colors[_OUTCOME_MAX] = {
        [OUTCOME_OK] = "#2ca02c",
        [OUTCOME_PEER_ALERT] = "#d62728",
        [OUTCOME_PEER_RESET] = "#ff7f0e",
        [OUTCOME_PEER_CLOSED] = "#9467bd",
        [OUTCOME_NO_DATA] = "#bcbd22",
        [OUTCOME_TIMEOUT] = "#8c564b",
        [OUTCOME_NOT_TLS] = "#1f77b4",
        [OUTCOME_TLS_ERROR] = "#e377c2",
        [OUTCOME_SERVER_ERROR] = "#17becf",
};

const char *timeline_outcome_color(Outcome o) {
        if (o < 0 || o >= _OUTCOME_MAX)
                return "#000000";
        return outcome_colors[o];
}

/* Whether escape_display() would return data as it is: printable ASCII without '\\'. */
static bool display_as_is(const char *data, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) data[i] < 0x20 || (unsigned char) data[i] >= 0x7f || data[i] == '\\')
                        return false;
        return true;
}

void timeline_html_escaped(FILE *f, const void *data, size_t len) {
        _cleanup_free_ char *copy = NULL;
        const char *c;

        if (display_as_is(data, len)) {
                c = data; /* the common case (our own strings): no copy; it ends at len */
        } else {
                copy = escape_display(data, len);
                if (!copy)
                        return;
                c = copy;
                len = strlen(copy);
        }
        for (const char *end = c + len; c < end;) {
                size_t n = 0;
                const char *special;

                while (c + n < end && !strchr("<>&\"'", c[n]))
                        n++;
                fwrite(c, 1, n, f); /* a run that needs no escaping */
                c += n;
                if (c >= end)
                        break;
                switch (*c) {
                case '<': special = "&lt;"; break;
                case '>': special = "&gt;"; break;
                case '&': special = "&amp;"; break;
                case '"': special = "&quot;"; break;
                default: special = "&#39;"; break;
                }
                fputs(special, f);
                c++;
        }
}

static void escaped_string(FILE *f, const char *s) {
        timeline_html_escaped(f, s, strlen(s));
}

/* ---- time ---- */

static struct tm time_split(int64_t us, bool utc, long *ret_gmtoff) {
        time_t t = (time_t) (us >= 0 ? us / USEC_PER_SEC : (us - (USEC_PER_SEC - 1)) / USEC_PER_SEC);
        struct tm tm = {};

        if (utc)
                (void) gmtime_r(&t, &tm);
        else
                (void) localtime_r(&t, &tm);
        if (ret_gmtoff)
                *ret_gmtoff = utc ? 0 : tm.tm_gmtoff;
        return tm;
}

/* "HH:MM:SS.mmm" */
static void time_format_ms(int64_t us, bool utc, char buf[static 32]) {
        struct tm tm = time_split(us, utc, NULL);
        int64_t ms = ((us % USEC_PER_SEC) + USEC_PER_SEC) % USEC_PER_SEC / 1000;

        (void) snprintf(buf, 32, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, (int) ms);
}

static const int64_t tick_steps_us[] = {
        100000,      200000,      500000,      1000000,      2000000,      5000000,
        10000000,    15000000,    30000000,    60000000,     120000000,    300000000,
        600000000,   900000000,   1800000000,  3600000000,   7200000000,   10800000000,
        21600000000, 43200000000, 86400000000, 172800000000, 604800000000,
};

static void axis_label(int64_t us, int64_t step_us, bool utc, char buf[static 32]) {
        struct tm tm = time_split(us, utc, NULL);

        /* a tick at midnight is labelled with its day: an axis across days says which day each hour is on */
        if (tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0 && us % USEC_PER_SEC == 0)
                (void) strftime(buf, 32, "%m-%d", &tm);
        else if (step_us < USEC_PER_SEC)
                time_format_ms(us, utc, buf);
        else if (step_us < 60 * USEC_PER_SEC)
                (void) strftime(buf, 32, "%H:%M:%S", &tm);
        else if (step_us < 86400 * USEC_PER_SEC)
                (void) strftime(buf, 32, "%H:%M", &tm);
        else
                (void) strftime(buf, 32, "%m-%d", &tm);
}

/* ---- drawing ---- */

typedef struct Scale {
        int64_t t0_us, t1_us;
        double x0, w; /* the plot area */
        bool utc;
        bool dated; /* the axis spans more than one day: tooltips' times carry their day */
} Scale;

/* A tooltip's time: "HH:MM:SS.mmm", "MM-DD HH:MM:SS.mmm" on an axis over several days. */
static void when_format(const Scale *s, int64_t us, char buf[static 32]) {
        size_t n = 0;

        if (s->dated) {
                struct tm tm = time_split(us, s->utc, NULL);

                n = strftime(buf, 32, "%m-%d ", &tm);
        }
        time_format_ms(us, s->utc, buf + n);
}

static double scale_x(const Scale *s, int64_t t_us) {
        double x = s->x0 + (double) (t_us - s->t0_us) * s->w / (double) (s->t1_us - s->t0_us);

        return MAX(s->x0, MIN(s->x0 + s->w, x));
}

static void draw_axis(FILE *f, const Scale *s, bool utc) {
        int64_t range = s->t1_us - s->t0_us, step = tick_steps_us[ELEMENTSOF(tick_steps_us) - 1];
        unsigned max_ticks = MAX(2u, (unsigned) (s->w / TICK_LABEL_W));
        double last_end = -1e9;
        long gmtoff;
        int64_t first;

        FOREACH_ARRAY(st, tick_steps_us, ELEMENTSOF(tick_steps_us))
                if (range / *st <= (int64_t) max_ticks) {
                        step = *st;
                        break;
                }
        /* ticks at round local times: aligned in the time zone's offset at t0 */
        (void) time_split(s->t0_us, utc, &gmtoff);
        first = s->t0_us + (int64_t) gmtoff * USEC_PER_SEC;
        first = (first / step + (first % step > 0)) * step - (int64_t) gmtoff * USEC_PER_SEC;
        fprintf(f,
                "<g class=\"axis\"><line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#555\"/>",
                s->x0,
                AXIS_Y,
                s->x0 + s->w,
                AXIS_Y);
        for (int64_t t = first; t <= s->t1_us; t += step) {
                double x = scale_x(s, t), w, start;
                const char *anchor;
                char label[32];

                axis_label(t, step, utc, label);
                /* labels at the ends stay inside the picture; one that would touch the last is left out */
                w = 6.5 * (double) strlen(label);
                anchor = x < s->x0 + w / 2 ? "start" : x > s->x0 + s->w - w / 2 ? "end" : "middle";
                start = streq(anchor, "start") ? x : streq(anchor, "end") ? x - w : x - w / 2;
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#555\"/>",
                        x,
                        AXIS_Y,
                        x,
                        AXIS_Y + 4);
                if (start < last_end + 8)
                        continue;
                fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">%s</text>", x, LABEL_Y, anchor, label);
                last_end = start + w;
        }
        fputs("</g>\n", f);
}

/* "46", "s40" (an alert we sent), "ok", or a short word for the outcome */
static const char *mark_token(const TimelineMark *m, char buf[static 8]) {
        static const char *const words[_OUTCOME_MAX] = {
                [OUTCOME_OK] = "ok",
                [OUTCOME_PEER_ALERT] = "alert",
                [OUTCOME_PEER_RESET] = "rst",
                [OUTCOME_PEER_CLOSED] = "fin",
                [OUTCOME_NO_DATA] = "-",
                [OUTCOME_TIMEOUT] = "t/o",
                [OUTCOME_NOT_TLS] = "http",
                [OUTCOME_TLS_ERROR] = "err",
                [OUTCOME_SERVER_ERROR] = "srv",
        };

        if (m->alert_received >= 0)
                (void) snprintf(buf, 8, "%d", m->alert_received);
        else if (m->alert_sent >= 0)
                (void) snprintf(buf, 8, "s%d", m->alert_sent);
        else
                return m->outcome >= 0 && m->outcome < _OUTCOME_MAX ? words[m->outcome] : "?";
        return buf;
}

static void mark_title(FILE *f, const TimelineMark *m, const Scale *s) {
        char when[32];

        when_format(s, m->t_us, when);
        fprintf(f, "%s %s", when, strna(outcome_to_string(m->outcome)));
        if (m->alert_received >= 0)
                fprintf(f,
                        ", alert %d %s received",
                        m->alert_received,
                        strna(tls_alert_to_string(m->alert_received)));
        if (m->alert_sent >= 0)
                fprintf(f, ", alert %d %s sent", m->alert_sent, strna(tls_alert_to_string(m->alert_sent)));
        if (m->self)
                fputs(" (this connection)", f);
}

static void draw_marks(FILE *f, const Scale *s, const TimelineMark *marks, size_t n, bool utc) {
        double last_token_x = -1e9;

        fputs("<g class=\"marks\">", f);
        for (size_t i = 0; i < n; i++) {
                const TimelineMark *m = &marks[i];
                double x = scale_x(s, m->t_us) - MARK_W / 2.0;
                char tok[8];

                fprintf(f,
                        "<rect class=\"mark\" data-outcome=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%d\" "
                        "height=\"%d\" fill=\"%s\"%s><title>",
                        strna(outcome_to_string(m->outcome)),
                        x,
                        MARK_Y,
                        MARK_W,
                        MARK_H,
                        timeline_outcome_color(m->outcome),
                        m->self ? " stroke=\"#000\" stroke-width=\"1.5\"" : "");
                mark_title(f, m, s);
                fputs("</title></rect>", f);
                if (x - last_token_x >= TOKEN_GAP) {
                        fprintf(f,
                                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"9\">%s</text>",
                                x + MARK_W / 2.0,
                                TOKEN_Y,
                                mark_token(m, tok));
                        last_token_x = x;
                }
        }
        fputs("</g>\n", f);
}

static int draw_bins(FILE *f, const Scale *s, const TimelineMark *marks, size_t n, bool utc) {
        size_t n_bins = MAX((size_t) 1, (size_t) (s->w / BIN_W));
        _cleanup_free_ uint32_t *counts = calloc(n_bins * _OUTCOME_MAX, sizeof *counts);
        uint64_t fullest = 1;

        if (!counts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                double x = scale_x(s, marks[i].t_us) - s->x0;
                size_t b = MIN(n_bins - 1, (size_t) (x / s->w * (double) n_bins));
                int o = marks[i].outcome >= 0 && marks[i].outcome < _OUTCOME_MAX ? marks[i].outcome
                                                                                 : OUTCOME_SERVER_ERROR;

                counts[b * _OUTCOME_MAX + o]++;
        }
        for (size_t b = 0; b < n_bins; b++) {
                uint64_t total = 0;

                for (int o = 0; o < _OUTCOME_MAX; o++)
                        total += counts[b * _OUTCOME_MAX + o];
                fullest = MAX(fullest, total);
        }

        fputs("<g class=\"bins\">", f);
        for (size_t b = 0; b < n_bins; b++) {
                const uint32_t *c = &counts[b * _OUTCOME_MAX];
                int64_t from = s->t0_us +
                        (int64_t) ((double) (s->t1_us - s->t0_us) * (double) b / (double) n_bins),
                        to = s->t0_us +
                        (int64_t) ((double) (s->t1_us - s->t0_us) * (double) (b + 1) / (double) n_bins);
                double x = s->x0 + s->w * (double) b / (double) n_bins;
                int y = MARK_Y + MARK_H;
                uint64_t total = 0;
                char a[32], z[32];

                for (int o = 0; o < _OUTCOME_MAX; o++)
                        total += c[o];
                if (total == 0)
                        continue;
                when_format(s, from, a);
                when_format(s, to, z);
                fprintf(f,
                        "<g class=\"bin\" data-n=\"%" PRIu64 "\"><title>%s to %s: %" PRIu64 " attempts:",
                        total,
                        a,
                        z,
                        total);
                for (int o = 0; o < _OUTCOME_MAX; o++)
                        if (c[o] > 0)
                                fprintf(f, " %s %" PRIu32, outcome_to_string(o), c[o]);
                fputs("</title>", f);
                for (int o = 0; o < _OUTCOME_MAX; o++) {
                        int h;

                        if (c[o] == 0)
                                continue;
                        /* whole pixels, at least 2: every outcome of a bin shows, in its own colour */
                        h = MAX(2, (int) ((double) c[o] * BIN_H / (double) fullest + 0.5));
                        y -= h;
                        fprintf(f,
                                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>",
                                (int) x,
                                y,
                                BIN_W - 1,
                                h,
                                outcome_colors[o]);
                }
                fputs("</g>", f);
        }
        fputs("</g>\n", f);
        return 0;
}

typedef struct SpanGroup {
        double x0, x1;
        int64_t first_us, last_us;
        size_t n, n_ok, n_open;
        const TimelineSpan *only;
} SpanGroup;

static void span_group_draw(FILE *f, const SpanGroup *g, const Scale *s) {
        const char *fill = g->n_ok == g->n       ? "#9fd89f"
                : g->n_ok == 0 && g->n_open == 0 ? "#f2a3a3"
                                                 : "#f5cf8f";
        char a[32], z[32];

        fprintf(f,
                "<rect class=\"span\" data-n=\"%zu\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                "fill=\"%s\" stroke=\"#666\" stroke-width=\"0.5\"><title>",
                g->n,
                g->x0,
                SPAN_Y,
                MAX(3.0, g->x1 - g->x0),
                SPAN_H,
                fill);
        if (g->n == 1 && g->only->title)
                timeline_html_escaped(
                        f,
                        g->only->title,
                        g->only->title_len > 0 ? g->only->title_len : strlen(g->only->title));
        else {
                when_format(s, g->first_us, a);
                when_format(s, g->last_us, z);
                fprintf(f,
                        "%zu sequence%s %s to %s: %zu ended ok, %zu failed, %zu open",
                        g->n,
                        g->n == 1 ? "" : "s",
                        a,
                        z,
                        g->n_ok,
                        g->n - g->n_ok - g->n_open,
                        g->n_open);
        }
        fputs("</title></rect>", f);
}

static void draw_spans(FILE *f, const Scale *s, const TimelineSpan *spans, size_t n, bool utc) {
        SpanGroup g = {};

        fputs("<g class=\"spans\">", f);
        for (size_t i = 0; i < n; i++) {
                const TimelineSpan *sp = &spans[i];
                double x0 = scale_x(s, sp->first_us), x1 = MAX(x0 + 3, scale_x(s, sp->last_us));

                /* spans that would touch on screen are drawn as one: at most one per few pixels */
                if (g.n > 0 && x0 > g.x1 + 2) {
                        span_group_draw(f, &g, s);
                        g = (SpanGroup){};
                }
                if (g.n == 0)
                        g = (SpanGroup){.x0 = x0, .x1 = x1, .first_us = sp->first_us, .last_us = sp->last_us};
                g.x1 = MAX(g.x1, x1);
                g.first_us = MIN(g.first_us, sp->first_us);
                g.last_us = MAX(g.last_us, sp->last_us);
                g.n++;
                g.n_ok += sp->ok;
                g.n_open += !sp->ok && sp->open;
                g.only = sp;
        }
        if (g.n > 0)
                span_group_draw(f, &g, s);
        fputs("</g>\n", f);
}

/* More sequences than marks fit: per bin (by when they started) a strip split by how they ended, ok
 * (green), abandoned (red) and open (amber), with the counts in its title. */
static int draw_span_bins(FILE *f, const Scale *s, const TimelineSpan *spans, size_t n, bool utc) {
        size_t n_bins = MAX((size_t) 1, (size_t) (s->w / BIN_W));
        _cleanup_free_ uint32_t *counts = calloc(n_bins * 3, sizeof *counts);
        static const char *const fills[3] = {SPAN_OK, SPAN_ABANDONED, SPAN_OPEN};
        static const char *const words[3] = {"ended ok", "abandoned", "open"};

        if (!counts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t b = MIN(
                        n_bins - 1,
                        (size_t) ((scale_x(s, spans[i].first_us) - s->x0) / s->w * (double) n_bins));

                counts[b * 3 + (spans[i].ok ? 0 : spans[i].open ? 2 : 1)]++;
        }
        fputs("<g class=\"spans\">", f);
        for (size_t b = 0; b < n_bins; b++) {
                const uint32_t *c = &counts[b * 3];
                uint32_t total = c[0] + c[1] + c[2];
                int x = (int) (s->x0 + s->w * (double) b / (double) n_bins), y = SPAN_Y;
                int64_t from = s->t0_us +
                        (int64_t) ((double) (s->t1_us - s->t0_us) * (double) b / (double) n_bins);
                char a[32];

                if (total == 0)
                        continue;
                when_format(s, from, a);
                fprintf(f, "<g class=\"span\" data-n=\"%" PRIu32 "\"><title>", total);
                fprintf(f, "%" PRIu32 " sequence%s from %s:", total, total == 1 ? "" : "s", a);
                for (int k = 0; k < 3; k++)
                        if (c[k] > 0)
                                fprintf(f, " %" PRIu32 " %s", c[k], words[k]);
                fputs("</title>", f);
                /* whole pixels, each kind present at least one; the commonest takes what is left */
                int h[3], most = 0, used = 0;

                for (int k = 0; k < 3; k++) {
                        h[k] = c[k] == 0 ? 0 : MAX(1, (int) ((double) c[k] * SPAN_H / total + 0.5));
                        most = c[k] > c[most] ? k : most;
                        used += h[k];
                }
                h[most] += SPAN_H - used;
                for (int k = 0; k < 3; k++) {
                        if (h[k] <= 0)
                                continue;
                        fprintf(f,
                                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>",
                                x,
                                y,
                                BIN_W - 1,
                                h[k],
                                fills[k]);
                        y += h[k];
                }
                fputs("</g>", f);
        }
        fputs("</g>\n", f);
        return 0;
}

int timeline_svg(
        FILE *f,
        const TimelineParams *p,
        const TimelineMark *marks,
        size_t n_marks,
        const TimelineSpan *spans,
        size_t n_spans) {
        unsigned width = MAX(200u, p->width), max_marks = p->max_marks > 0 ? p->max_marks : width / 4;
        Scale s = {
                .t0_us = p->t0_us,
                .t1_us = p->t1_us,
                .x0 = PAD_X,
                .w = width - 2 * PAD_X,
        };
        int r = 0;

        if (s.t1_us <= s.t0_us) { /* one instant: a second around it */
                s.t0_us -= USEC_PER_SEC / 2;
                s.t1_us = s.t0_us + USEC_PER_SEC;
        }
        s.utc = p->utc;
        {
                struct tm a = time_split(s.t0_us, s.utc, NULL), z = time_split(s.t1_us, s.utc, NULL);

                s.dated = a.tm_year != z.tm_year || a.tm_yday != z.tm_yday;
        }
        fprintf(f,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"%u\" height=\"%d\" "
                "viewBox=\"0 0 %u %d\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\"",
                width,
                HEIGHT,
                width,
                HEIGHT);
        if (p->id)
                fprintf(f, " id=\"%s\"", p->id);
        if (p->label) {
                fputs(" aria-label=\"", f);
                escaped_string(f, p->label);
                fputc('"', f);
        }
        fputs(">\n", f);
        if (n_spans <= max_marks)
                draw_spans(f, &s, spans, n_spans, p->utc);
        else
                r = draw_span_bins(f, &s, spans, n_spans, p->utc);
        if (r < 0)
                return r;
        if (n_marks <= max_marks)
                draw_marks(f, &s, marks, n_marks, p->utc);
        else
                r = draw_bins(f, &s, marks, n_marks, p->utc);
        draw_axis(f, &s, p->utc);
        fputs("</svg>\n", f);
        return r;
}
