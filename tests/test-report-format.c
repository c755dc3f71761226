/* SPDX-License-Identifier: MIT */
/* The report against golden outputs (tests/golden/report-*): attempts with hostile client strings, written
 * to a database by the store and reported by tlsreport's own verbs (report_verb_run(): the reader, the
 * sequencer, labels, statistics and formatters, as the program runs them). TZ is Europe/Berlin.
 * TLSWATCH_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing (review the diff!). */
#include <ftw.h>
#include <locale.h>
#include <wchar.h>
#include <time.h>

#include "escape.h"
#include "report-output.h"
#include "report.h"
#include "store.h"
#include "tap.h"

#define T0 INT64_C(1795771815000000) /* 2026-11-27 10:30:15 Berlin */
#define MS(x) ((int64_t) (x) *1000)

#define CHROME "t13d15_8daaf6152771_0123456789ab"
#define CHROME_FULL "t13d1516h2_8daaf6152771_02713d6af862"
#define CHROME_UA                                                                                  \
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 " \
        "Safari/537.36"
/* SNI with an escape sequence, a NUL, an invalid byte, a quote and a comma; UA with CR LF and a bidi override */
#define EVIL_SNI "ev\x1b[2Jil\0x\xff\",y"
#define EVIL_UA "evil/1.0\r\nSet-Cookie: x\xe2\x80\xae"

typedef struct Spec {
        int64_t t;
        const char *addr;
        Outcome outcome;
        HandshakeStep state;
        int alert_received, alert_sent;
        const char *ja4, *ja4_stable;
        const char *sni;
        size_t sni_len;
        const char *ua;
        size_t ua_len;
        bool resumed;
} Spec;

#define EVIL(x) x, sizeof(x) - 1

static const Spec specs[] = {
        /* Chromium: fail, fail, ok, straggler */
        {T0,
         "192.0.2.10",
         OUTCOME_PEER_ALERT,
         STEP_SERVER_FLIGHT,
         46,
         -1,
         CHROME_FULL,
         CHROME,
         EVIL("localhost"),
         NULL,
         0,
         false},
        {T0 + MS(20),
         "192.0.2.10",
         OUTCOME_PEER_ALERT,
         STEP_SERVER_FLIGHT,
         46,
         -1,
         CHROME_FULL,
         CHROME,
         EVIL("localhost"),
         NULL,
         0,
         true},
        {T0 + MS(45),
         "192.0.2.10",
         OUTCOME_OK,
         STEP_DONE,
         -1,
         -1,
         CHROME_FULL,
         CHROME,
         EVIL("localhost"),
         EVIL(CHROME_UA),
         false},
        {T0 + MS(50),
         "192.0.2.10",
         OUTCOME_PEER_ALERT,
         STEP_SERVER_FLIGHT,
         46,
         -1,
         CHROME_FULL,
         CHROME,
         EVIL("localhost"),
         NULL,
         0,
         false},
        /* a hostile client: resets after our flight, then succeeds with an evil UA */
        {T0 + MS(100),
         "2001:db8:1:2::99",
         OUTCOME_PEER_RESET,
         STEP_SERVER_FLIGHT,
         -1,
         -1,
         "t13d0101h1_aaaaaaaaaaaa_bbbbbbbbbbbb",
         "t13d01_aaaaaaaaaaaa_bbbbbbbbbbbb",
         EVIL(EVIL_SNI),
         NULL,
         0,
         false},
        {T0 + MS(150),
         "2001:db8:1:2::98",
         OUTCOME_OK,
         STEP_DONE,
         -1,
         -1,
         "t13d0101h1_aaaaaaaaaaaa_bbbbbbbbbbbb",
         "t13d01_aaaaaaaaaaaa_bbbbbbbbbbbb",
         EVIL(EVIL_SNI),
         EVIL(EVIL_UA),
         false},
        /* a clean curl */
        {T0 + MS(300),
         "198.51.100.7",
         OUTCOME_OK,
         STEP_DONE,
         -1,
         -1,
         "t13d3112h2_e8f1e7e78f70_6bebaf5329ac",
         "t13d31_e8f1e7e78f70_4c8a1f2e0b7d",
         EVIL("localhost"),
         EVIL("curl/7.88.1"),
         false},
        /* an old client */
        {T0 + MS(400),
         "203.0.113.9",
         OUTCOME_TLS_ERROR,
         STEP_CLIENT_HELLO,
         -1,
         70,
         "t12d1207h1_c866b44c5a26_7fd5fd3a4d3b",
         "t12d12_c866b44c5a26_aa57c2f1d0e3",
         NULL,
         0,
         NULL,
         0,
         false},
        /* a port check */
        {T0 + MS(500), "203.0.113.10", OUTCOME_NO_DATA, STEP_CONNECTED, -1, -1, NULL, NULL, NULL, 0, NULL, 0, false},
};

/* For the tables that fit a width: the specs above and these. A second database, so that the goldens of
 * the other formats stay as they were. */
#define CHROME_FAIL(ms, addr)                                                                           \
        {                                                                                               \
                T0 + MS(ms), addr, OUTCOME_PEER_ALERT, STEP_SERVER_FLIGHT, 46, -1, CHROME_FULL, CHROME, \
                        EVIL("localhost"), NULL, 0, false                                               \
        }
/* East Asian wide characters and a combining accent (valid UTF-8: shown, two columns each for the wide) */
#define WIDE_SNI "\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88.cafe\xcc\x81"
/* 150 bytes of name, then a BEL and an escape sequence */
#define LONG_SNI                                                                                      \
        "a-very-long-server-name-that-no-column-can-hold.and-it-goes-on.and-on.and-on.and-on.and-on." \
        "example-of-a-hostile-client-name.example.org.example.net.example\x07\x1b]0;x"
#define CURL_FULL "t13d3112h2_e8f1e7e78f70_6bebaf5329ac"
#define CURL "t13d31_e8f1e7e78f70_4c8a1f2e0b7d"

static const Spec wide_specs[] = {
        /* a port check the day before: the day changes */
        {T0 - 86400 * INT64_C(1000000),
         "203.0.113.11",
         OUTCOME_NO_DATA,
         STEP_CONNECTED,
         -1,
         -1,
         NULL,
         NULL,
         NULL,
         0,
         NULL,
         0,
         false},
        /* Chromium again, 7 rejections then ok: its diagnosis has the wording of the first one's */
        CHROME_FAIL(1000, "192.0.2.20"),
        CHROME_FAIL(1010, "192.0.2.20"),
        CHROME_FAIL(1020, "192.0.2.20"),
        CHROME_FAIL(1030, "192.0.2.20"),
        CHROME_FAIL(1040, "192.0.2.20"),
        CHROME_FAIL(1050, "192.0.2.20"),
        CHROME_FAIL(1060, "192.0.2.20"),
        {T0 + MS(1070),
         "192.0.2.20",
         OUTCOME_OK,
         STEP_DONE,
         -1,
         -1,
         CHROME_FULL,
         CHROME,
         EVIL("localhost"),
         EVIL(CHROME_UA),
         false},
        /* wide characters in the SNI */
        {T0 + MS(2000),
         "198.51.100.20",
         OUTCOME_PEER_ALERT,
         STEP_SERVER_FLIGHT,
         48,
         -1,
         CURL_FULL,
         CURL,
         EVIL(WIDE_SNI),
         NULL,
         0,
         false},
        /* a very long SNI with control bytes */
        {T0 + MS(3000),
         "203.0.113.50",
         OUTCOME_PEER_ALERT,
         STEP_SERVER_FLIGHT,
         46,
         -1,
         CURL_FULL,
         CURL,
         EVIL(LONG_SNI),
         NULL,
         0,
         false},
};

static Attempt make(const Spec *s, int64_t id) {
        Attempt a = {
                .id = id,
                .started_us = s->t,
                .ended_us = s->t + MS(7),
                .peer_port = (uint16_t) (40000 + id),
                .local_port = 8443,
                .outcome = s->outcome,
                .state_reached = s->state,
                .alert_received = s->alert_received,
                .alert_sent = s->alert_sent,
                .tls_error = s->outcome == OUTCOME_OK ? 0 : -30592,
                .error_text = s->outcome == OUTCOME_OK ? NULL : (char *) "fatal alert received",
                .version = s->outcome == OUTCOME_OK ? (char *) "TLSv1.3" : NULL,
                .ja4 = (char *) s->ja4,
                .ja4_stable = (char *) s->ja4_stable,
                .sni = {.data = (char *) s->sni, .len = s->sni_len},
                .user_agent = {.data = (char *) s->ua, .len = s->ua_len},
                .resumed = s->resumed,
                .http_requests = s->ua ? 1 : 0,
        };

        (void) snprintf(a.peer_addr, sizeof a.peer_addr, "%s", s->addr);
        (void) snprintf(a.local_addr, sizeof a.local_addr, "127.0.0.1");
        return a;
}

static char tmpdir[] = "/tmp/test-report-format-XXXXXX";
static bool tmpdir_made = false;
static ReportDb *db, *db_wide;

/* The attempts of v in a database of this name in tmpdir, written by the store, as tlsreport reads them. */
static int write_database(const Spec *v, size_t n, const char *name, ReportDb **ret) {
        StoreOptions o = STORE_OPTIONS_DEFAULT;
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *error = NULL;
        char path[256];
        int r;

        if (!tmpdir_made) {
                if (!mkdtemp(tmpdir))
                        return -errno;
                tmpdir_made = true;
        }
        (void) snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        o.retention_days = 0; /* the specs are from 2026-11-27 */
        r = store_open(path, &o, &s, &error);
        if (r < 0) {
                diag("store_open: %s", strna(error));
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                Attempt a = make(&v[i], (int64_t) i + 1), *copy = NULL;

                a.id = 0; /* SQLite numbers them 1.. in this order */
                r = attempt_dup(&a, &copy);
                if (r < 0)
                        return r;
                r = store_enqueue(s, copy);
                if (r < 0)
                        return r;
        }
        r = store_stop(s);
        if (r < 0)
                return r;
        return report_db_open(path, ret);
}

/* Renders one command in one mode into a string, through tlsreport's verbs. */
static char *render_from(
        ReportDb *from, const char *command, OutputMode mode, bool all, bool color, unsigned width, bool full) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        ReportRun run = {
                .db = from,
                .params =
                        {.burst_gap_us = SEQUENCE_BURST_GAP_DEFAULT_US,
                         .retry_window_us = SEQUENCE_RETRY_WINDOW_DEFAULT_US},
                .all = all,
                .now_us = T0 + 3600 * INT64_C(1000000),
                .out = {.f = f, .mode = mode, .color = color, .width = width, .full = full},
        };
        int r;

        if (!f)
                return NULL;
        report_filter_init(&run.filter);
        r = report_verb_run(command, &run);
        fclose(f);
        if (r < 0) {
                diag("%s: %s", command, strerror(-r));
                free(buf);
                return NULL;
        }
        return buf;
}

static char *render(const char *command, OutputMode mode, bool all, bool color) {
        return render_from(db, command, mode, all, color, 0, false);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
        return remove(path);
}

static char *read_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;
        FILE *m;
        int ch;

        if (!f)
                return NULL;
        m = open_memstream(&buf, &size);
        if (!m)
                return NULL;
        while ((ch = fgetc(f)) != EOF)
                fputc(ch, m);
        fclose(m);
        return buf;
}

static bool no_raw_controls(const char *s, bool color, OutputMode mode) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (c == '\n' || (mode == OUTPUT_CSV && c == '\r') ||
                    (mode == OUTPUT_JSON_PRETTY && c == '\t') || (color && c == 0x1b && s[1] == '['))
                        continue;
                if (c < 0x20 || c == 0x7f)
                        return false;
        }
        return true;
}

static void golden_check(const char *path, const char *got, bool color, OutputMode mode) {
        _cleanup_free_ char *want = NULL;

        if (!ok(got != NULL, "%s rendered", path))
                return;
        ok(no_raw_controls(got, color, mode), "%s: no raw control bytes", path);
        if (getenv("TLSWATCH_UPDATE_GOLDEN")) {
                _cleanup_fclose_ FILE *f = fopen(path, "we");

                ok(f && fputs(got, f) >= 0, "%s updated", path);
                return;
        }
        want = read_file(path);
        if (!ok(want != NULL, "%s exists", path))
                return;
        if (!ok(streq(got, want), "%s matches", path)) {
                diag("got:");
                fputs(got, stdout);
        }
}

static void golden(const char *command, OutputMode mode, bool all, bool color) {
        _cleanup_free_ char *got = render(command, mode, all, color);
        char path[256];

        (void) snprintf(
                path,
                sizeof path,
                "golden/report-%s%s%s.%s",
                command,
                all ? "-all" : "",
                color ? "-color" : "",
                output_mode_to_string(mode));
        golden_check(path, got, color, mode);
}

/* The widest line in terminal columns, measured with the C library's wcwidth() (not the report's own
 * measure), colour codes skipped. */
static size_t widest_line(const char *s) {
        size_t widest = 0, w = 0;
        mbstate_t st = {};

        while (*s) {
                wchar_t wc;
                size_t n;

                if (*s == '\n') {
                        widest = MAX(widest, w);
                        w = 0;
                        s++;
                        continue;
                }
                if (s[0] == '\x1b' && s[1] == '[') {
                        s += 2 + strspn(s + 2, "0123456789;") + 1;
                        continue;
                }
                n = mbrtowc(&wc, s, MB_CUR_MAX, &st);
                if (n == 0 || n > 4)
                        return SIZE_MAX; /* not valid UTF-8 */
                w += (size_t) MAX(wcwidth(wc), 0);
                s += n;
        }
        return MAX(widest, w);
}

/* The table of a verb at a width (0 with full: --full) from the database with the wide specs. */
static void golden_width(const char *command, unsigned width, bool color, bool full) {
        _cleanup_free_ char *got = render_from(db_wide, command, OUTPUT_TABLE, false, color, width, full);
        char path[256];

        if (full)
                (void) snprintf(
                        path, sizeof path, "golden/report-%s-full%s.table", command, color ? "-color" : "");
        else
                (void) snprintf(
                        path, sizeof path, "golden/report-%s-w%u%s.table", command, width, color ? "-color" : "");
        if (got && width > 0) {
                size_t w = widest_line(got);

                ok(w <= width, "%s: the widest line is %zu columns", path, w);
        }
        golden_check(path, got, color, OUTPUT_TABLE);
}

static void test_labels(void) {
        char s[REPORT_LABEL_MAX];

        report_user_agent_summary(EVIL(CHROME_UA), s);
        is_str(s, "Chrome/156 (Linux)", "Chrome on Linux");
        report_user_agent_summary(
                EVIL("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"),
                s);
        is_str(s, "Edge/120 (Windows)", "Edge on Windows");
        report_user_agent_summary(
                EVIL("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
                     "like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"),
                s);
        is_str(s, "Safari/17 (iOS)", "Safari on iOS");
        report_user_agent_summary(
                EVIL("Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"), s);
        is_str(s, "Firefox/153 (Linux)", "Firefox");
        report_user_agent_summary(EVIL("curl/7.88.1"), s);
        is_str(s, "curl/7.88.1", "curl");
        report_user_agent_summary(EVIL("Java-http-client/17.0.9"), s);
        is_str(s, "Java-http-client/17.0.9", "Java");
        report_user_agent_summary(EVIL(EVIL_UA), s);
        is_str(s, "evil/1.0", "hostile UA cut at the first odd byte");
        report_user_agent_summary(EVIL("\x1b[31m"), s);
        is_str(s, "?", "nothing usable");
        report_user_agent_summary(
                EVIL("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/"
                     "BBBBBBBBBBBBBBBBBBBBBBBBB"),
                s);
        ok(strlen(s) < REPORT_LABEL_MAX, "long UA bounded (%s)", s);
}

/* The one-line JSON writes plain strings itself and hands the rest to escape_json_fputs(): whatever byte
 * sits wherever in the string (the plain-ASCII check works on 8-byte words), the field must be exactly
 * what escape_json_fputs() writes, and the key must be the escaped client|ja4|sni. */
static void test_json_line_escaping(void) {
        static const unsigned char bad[] = {0x00, 0x01, 0x1f, '"', '\\', 0x7f, 0x80, 0xc3, 0xff, 'a'};
        SequenceAttempt at = {.id = 7, .outcome = OUTCOME_PEER_ALERT, .alert_received = 46, .alert_sent = -1};
        unsigned mismatches = 0, n = 0;

        for (size_t b = 0; b < ELEMENTSOF(bad); b++)
                for (size_t pos = 0; pos < 17; pos++, n++) {
                        char sni[18], key[64];
                        _cleanup_free_ char *line = NULL, *want_sni = NULL;
                        size_t line_len = 0, want_sni_len = 0;
                        FILE *f;

                        memset(sni, 'a', sizeof sni);
                        sni[pos] = (char) bad[b];
                        Sequence q = {
                                .client = "192.0.2.1",
                                .sni = {.data = sni, .len = 17},
                                .n_attempts = 1,
                                .n_failures = 1,
                                .attempts = &at,
                                .n_details = 1,
                                .outcome = SEQUENCE_ABANDONED,
                                .pattern = PATTERN_CERT_REJECTED_ABANDONED,
                        };
                        ReportOutput o = {.mode = OUTPUT_JSON};

                        o.f = open_memstream(&line, &line_len);
                        f = open_memstream(&want_sni, &want_sni_len);
                        if (!o.f || !f) {
                                ok(false, "open_memstream");
                                return;
                        }
                        report_output_sequence(&o, &q, NULL, pattern_diagnosis(q.pattern));
                        fclose(o.f);

                        fputs("\"sni\":", f);
                        escape_json_fputs(f, sni, 17);
                        fputs(",\"ja4\":null,\"key\":", f);
                        memcpy(key, "192.0.2.1|-|", 12);
                        memcpy(key + 12, sni, 17);
                        escape_json_fputs(f, key, 12 + 17);
                        fputs(",\"first_us\"", f);
                        fclose(f);
                        if (!line || !want_sni || !strstr(line, want_sni) || line_len == 0 ||
                            line[line_len - 1] != '\n') {
                                if (mismatches++ < 3)
                                        diag("byte 0x%02x at %zu: got %s", bad[b], pos, line);
                        }
                }
        is_int(mismatches, 0, "%u one-line JSON objects escape sni and key exactly as escape_json_fputs()", n);
}

/* Streaming (tlsreport -f): each row is written by the call that gives it, with widths from the budget. */
static void test_streaming(void) {
        SequenceAttempt at[3] = {
                {.id = 1, .outcome = OUTCOME_PEER_ALERT, .alert_received = 46, .alert_sent = -1},
                {.id = 2, .outcome = OUTCOME_PEER_ALERT, .alert_received = 46, .alert_sent = -1},
                {.id = 3, .outcome = OUTCOME_OK, .alert_received = -1, .alert_sent = -1},
        };
        Sequence q = {
                .client = "192.0.2.1",
                .sni = {.data = (char *) "localhost", .len = 9},
                .first_us = T0,
                .last_us = T0,
                .n_attempts = 3,
                .n_failures = 2,
                .attempts = at,
                .n_details = 3,
                .outcome = SEQUENCE_OK,
                .pattern = PATTERN_CERT_REJECTED_THEN_OK,
        };
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, after_first;
        ReportOutput o = {.mode = OUTPUT_TABLE, .width = 80, .streaming = true};

        o.f = open_memstream(&buf, &size);
        if (!ok(o.f != NULL, "open_memstream"))
                return;
        report_output_sequence(&o, &q, "Chrome/156 (Linux)", pattern_diagnosis(q.pattern));
        fflush(o.f);
        after_first = size;
        ok(buf && strstr(buf, "TIME") && strstr(buf, "\u271746\u00d72 \u2713") && strstr(buf, "  [1] "),
           "streaming: the header, the row and its diagnosis are written by the first call");
        q.first_us += 60 * USEC_PER_SEC;
        report_output_sequence(&o, &q, "Chrome/156 (Linux)", pattern_diagnosis(q.pattern));
        fflush(o.f);
        ok(size > after_first && !strstr(buf + after_first, "  [1] ") && strstr(buf + after_first, "[1]"),
           "streaming: the second row at once, referring to the diagnosis above");
        report_output_done(&o);
        fclose(o.f);
        ok(widest_line(buf) <= 80, "streaming: within the width (%zu)", widest_line(buf));
}

/* The notes of the sequences table: a later diagnosis refers to an earlier one of the same wording, its
 * figures aside, but not to one that says something else in numbers (another TLS version). */
static void test_notes(void) {
        static const TableColumn columns[] = {{"A"}};
        ReportOutput o = {.mode = OUTPUT_TABLE, .width = 80, .f = stdout};
        unsigned a, b, c, d;
        bool first;

        if (!ok(table_ready(&o, columns, 1), "a table"))
                return;
        a = table_note(
                &o, "X rejected it (2 attempts), then connected 0.1 s later and hung up 3 ms later.", &first);
        b = table_note(
                &o, "X rejected it (7 attempts), then connected 12.5 s later and hung up 0 ms later.", &first);
        ok(a > 0 && a == b && !first, "counts and delays aside, the same note (%u, %u)", a, b);
        c = table_note(&o, "A client offers up to TLS 1.0, which Mbed TLS 3.6 does not implement.", &first);
        d = table_note(&o, "A client offers up to TLS 1.1, which Mbed TLS 3.6 does not implement.", &first);
        ok(c > 0 && d > 0 && c != d && first, "TLS 1.0 and TLS 1.1: two notes (%u, %u)", c, d);
        report_output_done(&o);
}

/* The HTML report's example of a long sequence: its tokens summarised, cut between tokens with "…", never
 * inside one (nor inside a character: a cut "✗" was shown as \xe2\x9c). */
static void test_html_tokens(void) {
        SequenceAttempt at[60];
        Sequence q = {
                .client = "192.0.2.1",
                .first_us = T0,
                .last_us = T0 + MS(59),
                .n_attempts = 60,
                .n_failures = 60,
                .attempts = at,
                .n_details = 60,
                .outcome = SEQUENCE_ABANDONED,
                .pattern = PATTERN_CERT_REJECTED_ABANDONED,
        };
        Attempt a;
        ReportSummary s;
        _cleanup_(report_html_freep) ReportHtml *h = NULL;
        _cleanup_free_ char *page = NULL;
        size_t size = 0;
        ReportOutput o = {.mode = OUTPUT_HTML};
        const char *tokens;

        for (size_t i = 0; i < 60; i++)
                at[i] = (SequenceAttempt){
                        .id = i + 1,
                        .started_us = T0 + MS(i),
                        .outcome = OUTCOME_PEER_ALERT,
                        .alert_received = i % 2 ? 46 : 48,
                        .alert_sent = -1,
                };
        at[0] = (SequenceAttempt){
                .id = 1, .started_us = T0, .outcome = OUTCOME_PEER_RESET, .alert_received = -1, .alert_sent = -1};
        report_summary_init(&s);
        attempt_init(&a);
        a.started_us = T0;
        a.outcome = OUTCOME_PEER_ALERT;
        a.alert_received = 48;
        report_summary_add_attempt(&s, &a);
        if (!ok(report_html_new(NULL, false, &h) == 0 && report_html_add_attempt(h, &a) == 0 &&
                        report_html_add_sequence(h, &q) == 0,
                "the HTML report takes a sequence of 60 attempts"))
                return;
        o.f = open_memstream(&page, &size);
        if (!ok(o.f && report_output_html(&o, h, &s, NULL) == 0, "the page written"))
                return;
        fclose(o.f);
        tokens = strstr(page, "192.0.2.1, <code>");
        ok(tokens && strncmp(tokens + 17, "\u2717rst \u271746 \u271748", 15) == 0 && !strstr(page, "\\x"),
           "the example's tokens, no byte escaped");
        ok(tokens && strstr(tokens, " \u2026</code>") &&
                   strstr(tokens, " \u2026</code>") < strstr(tokens, "</small>"),
           "cut between tokens, with \u2026");
}

/* Widths as the terminal counts them (the C library's wcwidth() in the UTF-8 locale): emoji of the
 * symbol blocks are wide, Thai vowel signs take no column. */
static void test_text_width(void) {
        static const char *const texts[] = {
                "\u2b50\u2705\u274c",
                "\U0001f680.example",
                "\u0e2a\u0e31x",
                "\u65e5\u672c e\u0301",
                "\u2717"
                "46\u00d77 \u2713\u2026",
        };

        FOREACH_ARRAY(t, texts, ELEMENTSOF(texts)) {
                size_t want = 0;
                mbstate_t st = {};

                for (const char *p = *t; *p;) {
                        wchar_t wc;
                        size_t n = mbrtowc(&wc, p, MB_CUR_MAX, &st);

                        want += (size_t) MAX(wcwidth(wc), 0);
                        p += n;
                }
                is_int(text_width(*t), want, "text_width(\"%s\") is wcwidth()'s", *t);
        }
}

int main(void) {
        static const char *const commands[] = {"sequences", "attempts", "clients", "summary"};
        static const unsigned widths[] = {80, 120, 200};

        if (!setlocale(LC_CTYPE, "C.UTF-8"))
                return diag("no C.UTF-8 locale"), tap_done();
        setenv("TZ", "Europe/Berlin", 1);
        tzset();
        if (!is_int(write_database(specs, ELEMENTSOF(specs), "tlswatch.db", &db),
                    0,
                    "the attempts written to a database by the store"))
                return tap_done();
        Spec all_specs[ELEMENTSOF(specs) + ELEMENTSOF(wide_specs)];
        memcpy(all_specs, specs, sizeof specs);
        memcpy(all_specs + ELEMENTSOF(specs), wide_specs, sizeof wide_specs);
        if (!is_int(write_database(all_specs, ELEMENTSOF(all_specs), "wide.db", &db_wide),
                    0,
                    "the attempts with wide and long names written to a second database"))
                return tap_done();
        test_labels();
        test_json_line_escaping();
        test_streaming();
        test_notes();
        test_text_width();
        test_html_tokens();
        FOREACH_ARRAY(cmd, commands, ELEMENTSOF(commands))
                for (OutputMode m = 0; m < _OUTPUT_MAX; m++)
                        if (m != OUTPUT_HTML) /* one page for every command */
                                golden(*cmd, m, false, false);
        golden("summary", OUTPUT_HTML, false, false); /* the page, whatever the command */
        golden("sequences", OUTPUT_TABLE, true, false);
        golden("sequences", OUTPUT_TABLE, false, true);
        FOREACH_ARRAY(w, widths, ELEMENTSOF(widths)) {
                golden_width("sequences", *w, false, false);
                golden_width("sequences", *w, true, false);
                golden_width("attempts", *w, false, false);
                golden_width("clients", *w, false, false);
                golden_width("summary", *w, false, false);
        }
        golden_width("sequences", 0, false, true);
        golden_width("sequences", 0, true, true);
        golden_width("attempts", 0, false, true);
        db = report_db_close(db);
        db_wide = report_db_close(db_wide);
        (void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}
