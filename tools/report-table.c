/* SPDX-License-Identifier: MIT */
/* Tables that fit the terminal, as systemctl's do: the columns are sized to the content of the first rows
 * (TABLE_LOOKAHEAD of them are held back for that) and to the width budget (ReportOutput.width), cells
 * that do not fit end in "…", text under a row (a diagnosis) is word-wrapped. Alignment is computed on the
 * plain text's display width; colour codes are written around it. */
#include <assert.h>
#include <wchar.h>

#include "report-output.h"

#define TABLE_LOOKAHEAD 1000
#define TABLE_GAP_WIDE 2

typedef struct TableRow {
        const char *cells[TABLE_COLUMNS_MAX];
        const char *colors[TABLE_COLUMNS_MAX];
        const char *above; /* a line before the row (the day when it changes), or NULL */
        const char *tag;   /* "[1]": written before the text below, which hangs after it */
        const char *below; /* text on indented lines of its own under the row, or NULL */
        const char *below_color;
        char *block; /* a held row's copies of its strings, in one allocation */
} TableRow;

struct ReportTable {
        TableColumn columns[TABLE_COLUMNS_MAX];
        size_t n_columns;
        size_t natural[TABLE_COLUMNS_MAX], widths[TABLE_COLUMNS_MAX];
        size_t gap;
        bool laid_out;
        TableRow *rows;
        size_t n_rows, n_allocated;

        /* what the formatters keep from row to row */
        char day[16];       /* the local day of the last row, "YYYY-MM-DD" */
        uint64_t *notes;    /* hashes of the diagnoses' wording, slot = note number - 1 (open addressing) */
        unsigned *note_ids; /* their numbers */
        unsigned n_notes;
};

/* ---- display width ---- */

static size_t utf8_next(const char *s, uint32_t *ret_cp) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = p[0] < 0x80 ? 1 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
        uint32_t cp = n == 1 ? p[0] : p[0] & (0x7f >> n);

        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80) { /* not valid UTF-8 (never from escape_display()) */
                        *ret_cp = 0xfffd;
                        return i;
                }
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        *ret_cp = cp;
        return n;
}

/* Columns a code point takes: the C library's wcwidth() in a UTF-8 locale (as the terminal counts: emoji
 * such as ⭐ ✅ 🚀 take 2, Thai and Devanagari vowel signs 0), else, outside one (tlsreport writes ASCII
 * then, but client strings pass as UTF-8), 2 for East Asian wide and fullwidth characters and emoji, 0 for
 * combining marks and zero-width characters, else 1 (the ranges of wcwidth() that matter most). */
static size_t cp_width(uint32_t cp) {
        static const uint32_t wide[][2] = {
                {0x1100, 0x115f},
                {0x2e80, 0x303e},
                {0x3041, 0x33ff},
                {0x3400, 0x4dbf},
                {0x4e00, 0x9fff},
                {0xa000, 0xa4cf},
                {0xac00, 0xd7a3},
                {0xf900, 0xfaff},
                {0xfe30, 0xfe4f},
                {0xff00, 0xff60},
                {0xffe0, 0xffe6},
                {0x1f300, 0x1f64f},
                {0x1f900, 0x1f9ff},
                {0x20000, 0x2fffd},
                {0x30000, 0x3fffd},
        };
        static const uint32_t zero[][2] = {
                {0x0300, 0x036f},
                {0x0483, 0x0489},
                {0x0591, 0x05bd},
                {0x0610, 0x061a},
                {0x064b, 0x065f},
                {0x200b, 0x200f},
                {0x20d0, 0x20ff},
                {0xfe00, 0xfe0f},
                {0xfe20, 0xfe2f},
        };

        int w;

        if (cp < 0x300)
                return 1;
        w = wcwidth((wchar_t) cp);
        if (w >= 0)
                return (size_t) w;
        if (cp >= 0x2010 && cp < 0x20d0) /* punctuation, arrows: ✓ ✗ … are here */
                return 1;
        if (cp >= 0x2100 && cp < 0x2e80)
                return 1;
        FOREACH_ARRAY(r, zero, ELEMENTSOF(zero))
                if (cp >= (*r)[0] && cp <= (*r)[1])
                        return 0;
        FOREACH_ARRAY(r, wide, ELEMENTSOF(wide))
                if (cp >= (*r)[0] && cp <= (*r)[1])
                        return 2;
        return 1;
}

size_t text_width(const char *s) {
        size_t w = 0;

        while (*s) {
                uint32_t cp;

                if ((unsigned char) *s < 0x80) { /* the common case */
                        w++;
                        s++;
                        continue;
                }
                s += utf8_next(s, &cp);
                w += cp_width(cp);
        }
        return w;
}

/* The bytes of s that fit in width columns (whole code points). */
static size_t text_prefix(const char *s, size_t width, size_t *ret_width) {
        size_t w = 0, i = 0;

        while (s[i]) {
                uint32_t cp;
                size_t n = utf8_next(s + i, &cp), cw = cp_width(cp);

                if (w + cw > width)
                        break;
                w += cw;
                i += n;
        }
        if (ret_width)
                *ret_width = w;
        return i;
}

static const char *ellipsis(const ReportOutput *o) {
        return o->ascii ? "..." : "\u2026";
}

/* ---- output, a line at a time: one fwrite() per line instead of one stdio call per piece ---- */

typedef struct Sink {
        FILE *f; /* NULL: only the buffer */
        size_t n;
        char buf[4096];
} Sink;

static void sink_flush(Sink *k) {
        if (k->f && k->n > 0)
                (void) fwrite(k->buf, 1, k->n, k->f);
        k->n = 0;
}

static void sink_write(Sink *k, const char *s, size_t n) {
        if (n > sizeof k->buf - 1 - k->n) {
                sink_flush(k);
                if (n > sizeof k->buf - 1) {
                        if (k->f)
                                (void) fwrite(s, 1, n, k->f);
                        return;
                }
        }
        memcpy(k->buf + k->n, s, n);
        k->n += n;
}

static void sink_puts(Sink *k, const char *s) {
        sink_write(k, s, strlen(s));
}

static void sink_putc(Sink *k, char c) {
        sink_write(k, &c, 1);
}

static void sink_spaces(Sink *k, size_t n) {
        static const char spaces[] = "                                ";

        for (size_t m; n > 0; n -= m) {
                m = MIN(n, sizeof spaces - 1);
                sink_write(k, spaces, m);
        }
}

/* Writes s, w columns wide, in at most width columns: cut with "…" when longer (not when the width is
 * unlimited). Returns the columns written. */
static size_t put_fitted_width(ReportOutput *o, Sink *k, const char *s, size_t w, size_t width) {
        size_t ew = o->ascii ? 3 : 1, n, nw;

        if (o->width == 0 || w <= width) {
                sink_puts(k, s);
                return w;
        }
        if (width < ew) {
                sink_spaces(k, width);
                return width;
        }
        n = text_prefix(s, width - ew, &nw);
        sink_write(k, s, n);
        sink_puts(k, ellipsis(o));
        return nw + ew;
}

static size_t put_fitted(ReportOutput *o, Sink *k, const char *s, size_t width) {
        return put_fitted_width(o, k, s, text_width(s), width);
}

/* ---- word wrapping ---- */

static void sink_wrap(ReportOutput *o, Sink *k, const char *text, size_t col, size_t hang, const char *color_on) {
        const char *off = color_on ? color(o, ANSI_RESET) : "";
        size_t start = col;

        sink_puts(k, color(o, color_on));
        if (o->width == 0) { /* no limit: one line */
                sink_puts(k, text);
                sink_puts(k, off);
                sink_putc(k, '\n');
                return;
        }
        for (const char *p = text; *p;) {
                size_t len = strcspn(p, " "), w;
                char word[512];

                if (len == 0) {
                        p++;
                        continue;
                }
                /* a number stays with the word before it: "probe 2", "0.1 s" */
                while (p[len] == ' ' && p[len + 1] >= '0' && p[len + 1] <= '9')
                        len += 1 + strcspn(p + len + 1, " ");
                (void) snprintf(word, sizeof word, "%.*s", (int) MIN(len, sizeof word - 1), p);
                w = text_width(word);
                if (col > start && col + 1 + w > o->width) {
                        sink_puts(k, off);
                        sink_putc(k, '\n');
                        sink_spaces(k, hang);
                        sink_puts(k, color(o, color_on));
                        col = start = hang;
                } else if (col > start) {
                        sink_putc(k, ' ');
                        col++;
                }
                /* a word wider than a whole line is cut */
                col += put_fitted(o, k, word, o->width > col ? o->width - col : 1);
                p += len;
        }
        sink_puts(k, off);
        sink_putc(k, '\n');
}

void table_wrap(ReportOutput *o, const char *text, size_t col, size_t hang, const char *color_on) {
        Sink k = {.f = o->f};

        sink_wrap(o, &k, text, col, hang, color_on);
        sink_flush(&k);
}

void table_wrap_lines(ReportOutput *o, const char *text) {
        Sink k = {.f = o->f};

        while (*text) {
                size_t len = strcspn(text, "\n"), indent = strspn(text, " ");
                _cleanup_free_ char *line = strndup(text, len);

                if (!line)
                        break;
                /* colour codes count as width here: at worst a line is wrapped a little early */
                if (o->width == 0 || text_width(line) <= o->width) {
                        sink_puts(&k, line);
                        sink_putc(&k, '\n');
                } else {
                        sink_spaces(&k, indent);
                        sink_wrap(o, &k, line + indent, indent, indent + 4, NULL);
                }
                text += len + (text[len] == '\n');
        }
        sink_flush(&k);
}

/* ---- the table ---- */

static ReportTable *table_get(ReportOutput *o, const TableColumn *columns, size_t n) {
        ReportTable *t = o->table;

        if (t)
                return t;
        t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        assert(n <= TABLE_COLUMNS_MAX);
        memcpy(t->columns, columns, n * sizeof *columns);
        t->n_columns = n;
        for (size_t i = 0; i < n; i++)
                t->natural[i] = text_width(columns[i].header);
        return o->table = t;
}

static void table_row_free(TableRow *r) {
        free(r->block);
        r->block = NULL;
}

/* Copies the row's strings into one block of its own, to hold it. */
static int table_row_hold(TableRow *r, size_t n_columns) {
        const char **strings[TABLE_COLUMNS_MAX + 3];
        size_t n = 0, size = 0;
        char *p;

        for (size_t i = 0; i < n_columns; i++)
                strings[n++] = &r->cells[i];
        strings[n++] = &r->above;
        strings[n++] = &r->tag;
        strings[n++] = &r->below;
        for (size_t i = 0; i < n; i++)
                size += *strings[i] ? strlen(*strings[i]) + 1 : 0;
        p = r->block = malloc(MAX(size, (size_t) 1));
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (*strings[i]) {
                        size_t l = strlen(*strings[i]) + 1;

                        memcpy(p, *strings[i], l);
                        *strings[i] = p;
                        p += l;
                }
        return 0;
}

/* The widths: the content's (capped when the width is limited), then, while the row is wider than the
 * budget, a narrower gap, then each column in turn down to its soft minimum, then to its hard minimum, then
 * to one character and "…" (only the columns that never shrink are kept whole). The
 * last column is not padded: it takes what is left. */
static void table_layout(ReportOutput *o, ReportTable *t) {
        size_t n = t->n_columns, total;

        t->gap = TABLE_GAP_WIDE;
        for (size_t i = 0; i < n; i++) {
                size_t w = o->streaming ? MAX(t->columns[i].stream, text_width(t->columns[i].header))
                                        : t->natural[i];

                if (o->width > 0 && t->columns[i].cap > 0)
                        w = MIN(w, MAX(t->columns[i].cap, text_width(t->columns[i].header)));
                t->widths[i] = w;
        }
        t->laid_out = true;
        if (o->width == 0)
                return;
        total = (n - 1) * t->gap;
        for (size_t i = 0; i < n; i++)
                total += t->widths[i];
        if (total > o->width) {
                total -= n - 1;
                t->gap = 1;
        }
        /* the last pass, for narrow terminals (60 columns), goes below the floors: a character and "…" */
        for (int pass = 0; pass < 3 && total > o->width; pass++)
                for (size_t k = 0; k < n && total > o->width; k++) {
                        /* columns shrink in their order of .shrink (1 first), 0: never */
                        for (size_t i = 0; i < n && total > o->width; i++) {
                                const TableColumn *c = &t->columns[i];
                                size_t min = pass == 0 ? c->soft
                                        : pass == 1    ? c->hard
                                                       : MIN((size_t) c->hard, strlen(ellipsis(o)) + 1),
                                       cut;

                                if (c->shrink != k + 1 || t->widths[i] <= min)
                                        continue;
                                cut = MIN(t->widths[i] - min, total - o->width);
                                t->widths[i] -= cut;
                                total -= cut;
                        }
                }
}

/* The attempt tokens in width columns: the first ones, "…" and the last one ("✗46×7 ✗rst … ✓"), each
 * coloured by its outcome. Returns the columns written. */
static size_t put_tokens(ReportOutput *o, Sink *k, const char *s, size_t sw, size_t width) {
        size_t ew = o->ascii ? 3 : 1, n_keep = 0, used = 0, written;
        const char *sp = NULL;
        Sink plain = {};
        char buf[512];

        if (o->width > 0 && sw > width && (sp = strrchr(s, ' ')) && text_width(sp + 1) + 2 + ew <= width) {
                size_t lw = text_width(sp + 1);

                /* whole tokens from the start while they fit before " … last" */
                for (const char *p = s; p < sp;) {
                        size_t len = strcspn(p, " "), tw;
                        char tok[64];

                        (void) snprintf(tok, sizeof tok, "%.*s", (int) MIN(len, sizeof tok - 1), p);
                        tw = text_width(tok) + (used > 0);
                        if (used + tw + 1 + ew + 1 + lw > width)
                                break;
                        used += tw;
                        n_keep = (size_t) (p - s) + len;
                        p += len + 1;
                }
                (void) snprintf(
                        buf, sizeof buf, "%.*s%s%s %s", (int) n_keep, s, n_keep > 0 ? " " : "", ellipsis(o), sp + 1);
                s = buf;
                sw = text_width(s);
        }
        if (!o->color)
                return put_fitted_width(o, k, s, sw, width);
        written = put_fitted_width(o, &plain, s, sw, width);
        plain.buf[plain.n] = '\0';
        for (const char *p = plain.buf; *p;) {
                size_t len = strcspn(p, " ");
                bool good = strncmp(p, "\u2713", 3) == 0 || strncmp(p, "ok", 2) == 0,
                     other = strncmp(p, "\u2026", 3) == 0 || strncmp(p, "...", 3) == 0;

                sink_puts(k, good ? ANSI_GREEN : other ? ANSI_GREY : ANSI_RED);
                sink_write(k, p, len);
                sink_puts(k, ANSI_RESET);
                p += len;
                if (*p == ' ') {
                        sink_putc(k, ' ');
                        p++;
                }
        }
        return written;
}

static void table_write_row(ReportOutput *o, ReportTable *t, TableRow *r) {
        Sink k = {.f = o->f};
        size_t col = 0, start = 0;

        if (r->above) {
                sink_puts(&k, color(o, ANSI_GREY));
                put_fitted(o, &k, r->above, o->width > 0 ? o->width : SIZE_MAX);
                sink_puts(&k, color(o, ANSI_RESET));
                sink_putc(&k, '\n');
        }
        for (size_t i = 0; i < t->n_columns; i++) {
                const TableColumn *c = &t->columns[i];
                const char *s = r->cells[i] ?: "-";
                size_t w = t->widths[i], sw;

                if (i > 0) {
                        /* a cell wider than its column (no width limit) pushes the rest: keep a space */
                        size_t pad;

                        start += t->widths[i - 1] + t->gap;
                        pad = col < start ? start - col : 1;
                        sink_spaces(&k, pad);
                        col += pad;
                }
                if (i + 1 == t->n_columns && o->width > 0) /* the last column takes what is left */
                        w = o->width > col + c->hard ? o->width - col : c->hard;
                sw = text_width(s);
                if (c->right && sw < w) {
                        sink_spaces(&k, w - sw);
                        col += w - sw;
                }
                if (c->tokens)
                        col += put_tokens(o, &k, s, sw, w);
                else {
                        sink_puts(&k, color(o, r->colors[i]));
                        col += put_fitted_width(o, &k, s, sw, w);
                        sink_puts(&k, r->colors[i] ? color(o, ANSI_RESET) : "");
                }
        }
        sink_putc(&k, '\n');
        if (r->below) {
                sink_puts(&k, "  ");
                if (r->tag) {
                        size_t hang = 2 + text_width(r->tag) + 1;

                        sink_puts(&k, color(o, ANSI_BOLD));
                        sink_puts(&k, r->tag);
                        sink_puts(&k, color(o, ANSI_RESET));
                        sink_putc(&k, ' ');
                        sink_wrap(o, &k, r->below, hang, hang, r->below_color);
                } else
                        sink_wrap(o, &k, r->below, 2, 4, r->below_color);
        }
        sink_flush(&k);
}

static void table_write_header(ReportOutput *o, ReportTable *t) {
        Sink k = {.f = o->f};

        sink_puts(&k, color(o, ANSI_BOLD));
        for (size_t i = 0; i < t->n_columns; i++) {
                const TableColumn *c = &t->columns[i];
                size_t w = t->widths[i], hw = MIN(text_width(c->header), w);

                if (i > 0)
                        sink_spaces(&k, t->gap);
                if (c->right && hw < w)
                        sink_spaces(&k, w - hw);
                put_fitted(o, &k, c->header, w);
                if (i + 1 < t->n_columns && !c->right && hw < w)
                        sink_spaces(&k, w - hw);
        }
        sink_puts(&k, color(o, ANSI_RESET));
        sink_putc(&k, '\n');
        sink_flush(&k);
}

void table_flush(ReportOutput *o) {
        ReportTable *t = o->table;

        if (!t || o->mode != OUTPUT_TABLE)
                return;
        if (!t->laid_out) {
                if (t->n_rows == 0)
                        return;
                table_layout(o, t);
                if (!o->header_done) /* tlsreport -f's sequences come under a headline of their own */
                        table_write_header(o, t);
                o->header_done = true;
        }
        for (size_t i = 0; i < t->n_rows; i++) {
                table_write_row(o, t, &t->rows[i]);
                table_row_free(&t->rows[i]);
        }
        t->n_rows = 0;
}

int table_add(
        ReportOutput *o,
        const TableColumn *columns,
        size_t n_columns,
        const char *const cells[],
        const char *const colors[],
        const char *above,
        const char *tag,
        const char *below,
        const char *below_color) {
        ReportTable *t = table_get(o, columns, n_columns);
        TableRow r = {.above = above, .tag = tag, .below = below, .below_color = below_color};

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n_columns; i++) {
                r.cells[i] = cells[i];
                r.colors[i] = colors ? colors[i] : NULL;
        }
        if (t->laid_out) { /* the widths are known: write at once */
                table_write_row(o, t, &r);
                return 0;
        }
        for (size_t i = 0; i < n_columns; i++)
                if (cells[i])
                        t->natural[i] = MAX(t->natural[i], text_width(cells[i]));
        if (t->n_rows == t->n_allocated) {
                size_t n = MAX(t->n_allocated * 2, (size_t) 64);
                TableRow *v = reallocarray(t->rows, n, sizeof *v);

                if (!v)
                        return -ENOMEM;
                t->rows = v;
                t->n_allocated = n;
        }
        if (table_row_hold(&r, n_columns) < 0)
                return -ENOMEM;
        t->rows[t->n_rows++] = r;
        if (o->streaming || t->n_rows >= TABLE_LOOKAHEAD)
                table_flush(o);
        return 0;
}

/* ---- what the formatters keep ---- */

const char *table_day_change(ReportOutput *o, const char *day, char buf[static 32]) {
        ReportTable *t = o->table;

        if (!t || streq(t->day, day))
                return NULL;
        (void) snprintf(t->day, sizeof t->day, "%s", day);
        (void) snprintf(buf, 32, "-- %s --", day);
        return buf;
}

/* The length of the figure at s: a count or a delay of a diagnosis ("2 attempts", "0 ms", "0.7 s", "3
 * programs"), or 0. */
static size_t note_figure(const char *s) {
        static const char *const units[] = {" attempt", " ms ", " s ", " program"};
        size_t d = strspn(s, "0123456789.");

        if (d == 0 || !strchr("0123456789", s[0]))
                return 0;
        FOREACH_ARRAY(u, units, ELEMENTSOF(units))
                if (strncmp(s + d, *u, strlen(*u)) == 0)
                        return d;
        return 0;
}

#define NOTES_MAX 4096 /* distinct wordings remembered; later ones are written in full each time */

unsigned table_note(ReportOutput *o, const char *text, bool *ret_new) {
        ReportTable *t = o->table;
        uint64_t h = HASH_SEED;
        size_t slot;

        *ret_new = true;
        if (!t)
                return 0;
        /* the wording: the figures count as one '#', other numbers (TLS 1.0, an alert's) as they are */
        for (const char *p = text; *p;) {
                size_t d = p == text || p[-1] == ' ' || p[-1] == '(' ? note_figure(p) : 0, k;

                if (d > 0) {
                        h = hash_bytes(h, "#", 1);
                        p += d;
                        continue;
                }
                k = 1 + strcspn(p + 1, "0123456789");
                h = hash_bytes(h, p, k);
                p += k;
        }
        h = hash_finish(h) | 1; /* 0 marks a free slot */
        if (!t->notes) {
                t->notes = calloc(NOTES_MAX * 2, sizeof *t->notes);
                t->note_ids = calloc(NOTES_MAX * 2, sizeof *t->note_ids);
                if (!t->notes || !t->note_ids)
                        return 0;
        }
        for (slot = h % (NOTES_MAX * 2); t->notes[slot] != 0; slot = (slot + 1) % (NOTES_MAX * 2))
                if (t->notes[slot] == h) {
                        *ret_new = false;
                        return t->note_ids[slot];
                }
        if (t->n_notes >= NOTES_MAX)
                return 0;
        t->notes[slot] = h;
        t->note_ids[slot] = ++t->n_notes;
        return t->n_notes;
}

bool table_ready(ReportOutput *o, const TableColumn *columns, size_t n_columns) {
        return table_get(o, columns, n_columns) != NULL;
}

void report_output_done(ReportOutput *o) {
        ReportTable *t = o->table;

        table_flush(o);
        if (!t)
                return;
        for (size_t i = 0; i < t->n_rows; i++)
                table_row_free(&t->rows[i]);
        free(t->rows);
        free(t->notes);
        free(t->note_ids);
        free(t);
        o->table = NULL;
}
