/* SPDX-License-Identifier: MIT */
#pragma once

/* A timeline of handshake attempts drawn as inline SVG, for tlsreport's HTML report (one per client
 * family) and for the daemon's self page (the visitor's own attempts). Sans-I/O beyond the FILE * it
 * writes to: no script, no external reference, every colour in the SVG itself, so that the picture
 * shows under a Content-Security-Policy of default-src 'none' and prints.
 *
 * Each attempt is a mark on a time axis, coloured by outcome, with a <title> (the tooltip) saying when,
 * what and which alert; marks far enough apart also carry their token ("46", "ok") as text. Sequences are
 * spans under the marks. When there are more marks than max_marks the attempts are drawn as time bins
 * instead (stacked counts per outcome, each bin with its counts in its <title>), and spans that would
 * touch on screen are drawn as one with their number: the size of the SVG is bounded by its width,
 * not by the number of attempts.
 *
 * Elements the tests count: marks are <rect class="mark" data-outcome=...>, bins are <g class="bin"
 * data-n=COUNT>, spans <rect class="span" data-n=SEQUENCES> (or, when there are more sequences than
 * max_marks, <g class="span" data-n=SEQUENCES>: a bin of them). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "attempt.h"

typedef struct TimelineMark {
        int64_t t_us;
        int16_t alert_received, alert_sent; /* -1 if none */
        int8_t outcome;                     /* Outcome */
        bool self;                          /* the page's own connection: outlined */
} TimelineMark;

typedef struct TimelineSpan {
        int64_t first_us, last_us;
        bool ok;            /* the sequence ended with a success */
        bool open;          /* no success, and its retry window has not passed */
        uint32_t title_len; /* bytes of title (it may hold raw client bytes, NUL included); 0: strlen() */
        const char *title; /* tooltip: raw text, escaped here (escape_display(), then HTML); NULL for none */
} TimelineSpan;

typedef struct TimelineParams {
        int64_t t0_us, t1_us; /* the axis; t1_us > t0_us (timeline_svg() widens an empty range) */
        unsigned width;       /* of the whole SVG, in px; at least 200 */
        unsigned max_marks;   /* more marks than this: bins; 0 means width / 4 */
        bool utc;             /* axis labels in UTC instead of local time */
        const char *id;       /* the SVG's id attribute (ours, not escaped); NULL for none */
        const char *label;    /* aria-label (escaped here); NULL for none */
} TimelineParams;

/* The fill colour of an outcome ("#rrggbb"): the marks, the bins and the report's charts use it. */
const char *timeline_outcome_color(Outcome o) _pure_;

/* Writes the SVG element. marks in any order (sorted by the caller is cheaper: they are read in order and
 * not copied); spans in order of first_us. Returns 0, or -ENOMEM. */
int timeline_svg(
        FILE *f,
        const TimelineParams *p,
        const TimelineMark *marks,
        size_t n_marks,
        const TimelineSpan *spans,
        size_t n_spans);

/* Writes text with the HTML/XML special characters as entities, after escape_display() (no control
 * byte, no invalid UTF-8, no bidi control comes out). data may hold NUL bytes. */
void timeline_html_escaped(FILE *f, const void *data, size_t len);
