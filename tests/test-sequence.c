/* SPDX-License-Identifier: MIT */
/* Grouping of attempts into retry sequences, on hand-built attempt lists modelled on the traces in
 * notes/chromium-retries.md. */
#include <arpa/inet.h>
#include <assert.h>

#include "sequence.h"
#include "tap.h"

#define MS(x) ((int64_t) (x) *USEC_PER_MSEC)
#define SEC(x) ((int64_t) (x) *USEC_PER_SEC)
#define assert_se_ok(x) is_int((x), 0, "%s", #x)
#define T0 INT64_C(1795000000000000) /* 2026-11-18, any fixed time */

#define CHROME "t13i1516h2_8daaf6152771_cb7bf5808d99"
#define FIREFOX "t13d1715h2_5b57614c22b0_3d5424432f57"

typedef struct Result {
        char client[SEQUENCE_CLIENT_MAX];
        char compact[4096];
        char ja4[64];
        Pattern pattern;
        SequenceOutcome outcome;
        unsigned n_attempts, n_failures;
        int64_t first_us, last_us, first_id;
        const char *host;
} Result;

static Result results[64];
static unsigned n_results;
static int64_t next_id;
static const char *feed_host; /* the server of the attempts fed (sequencer_feed_host()) */

static int collect(const Sequence *s, void *userdata) {
        Result *r;

        if (n_results >= ELEMENTSOF(results))
                return -E2BIG;
        r = &results[n_results++];
        *r = (Result){
                .pattern = s->pattern,
                .outcome = s->outcome,
                .n_attempts = s->n_attempts,
                .n_failures = s->n_failures,
                .first_us = s->first_us,
                .last_us = s->last_us,
                .first_id = s->n_details > 0 ? s->attempts[0].id : -1,
                .host = s->host,
        };
        memcpy(r->client, s->client, sizeof r->client);
        (void) snprintf(r->ja4, sizeof r->ja4, "%s", s->ja4 ?: "-");
        sequence_format_attempts(s, false, r->compact, sizeof r->compact);
        ok(pattern_to_string(sequence_classify(s)) != NULL, "classify agrees on a finished sequence");
        return 0;
}

static void reset(void) {
        n_results = 0;
        next_id = 1;
}

/* A compact description of an attempt: "A46" alert 46 after our flight, "OK", "R" reset after our flight,
 * "r" reset before it, "N" no data, "H" not TLS, "T" timeout after part of a hello, "I" timeout without a
 * byte (idle), "E70" we sent alert 70, "S" server error, "C" completed the handshake and hung up at once;
 * a trailing '+' marks a resumed hello. */
static int feed(Sequencer *sq, const char *client, const char *ja4, const char *sni, int64_t t, const char *what) {
        Attempt a = {
                .id = next_id++,
                .started_us = t,
                .ended_us = t + MS(5),
                .alert_received = -1,
                .alert_sent = -1,
                .state_reached = STEP_SERVER_FLIGHT,
                .ja4_stable = (char *) ja4,
        };

        (void) snprintf(a.peer_addr, sizeof a.peer_addr, "%s", client);
        if (sni) {
                a.sni.data = (char *) sni;
                a.sni.len = strlen(sni);
        }
        a.resumed = what[strlen(what) - 1] == '+';
        switch (what[0]) {
        case 'A':
                a.outcome = OUTCOME_PEER_ALERT;
                a.alert_received = atoi(what + 1);
                break;
        case 'O':
                a.outcome = OUTCOME_OK;
                a.state_reached = STEP_DONE;
                break;
        case 'R': a.outcome = OUTCOME_PEER_RESET; break;
        case 'r':
                a.outcome = OUTCOME_PEER_RESET;
                a.state_reached = STEP_CLIENT_HELLO;
                break;
        case 'N':
                a.outcome = OUTCOME_NO_DATA;
                a.state_reached = STEP_CONNECTED;
                a.ja4_stable = NULL;
                break;
        case 'H':
                a.outcome = OUTCOME_NOT_TLS;
                a.state_reached = STEP_CONNECTED;
                a.ja4_stable = NULL;
                break;
        case 'T':
                a.outcome = OUTCOME_TIMEOUT;
                a.state_reached = STEP_CONNECTED;
                a.bytes_in = 100;
                break;
        case 'I':
                a.outcome = OUTCOME_TIMEOUT;
                a.state_reached = STEP_CONNECTED;
                a.ja4_stable = NULL;
                break;
        case 'C':
                a.outcome = OUTCOME_PEER_CLOSED;
                a.state_reached = STEP_DONE;
                a.close_kind = CLOSE_FIN;
                a.closed_us = a.ended_us + MS(1);
                break;
        case 'E':
                a.outcome = OUTCOME_TLS_ERROR;
                a.state_reached = STEP_CLIENT_HELLO;
                a.alert_sent = atoi(what + 1);
                break;
        default: a.outcome = OUTCOME_SERVER_ERROR; break;
        }
        return feed_host ? sequencer_feed_host(sq, &a, feed_host) : sequencer_feed(sq, &a);
}

/* Feeds a space-separated list of attempts, step_ms apart, from t. Returns the time of the last one. */
static int64_t
feed_list(Sequencer *sq, const char *client, const char *ja4, int64_t t, int step_ms, const char *list) {
        char buf[512], *save = NULL;

        (void) snprintf(buf, sizeof buf, "%s", list);
        for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                is_int(feed(sq, client, ja4, NULL, t, w), 0, "feed %s at +%" PRId64 "ms", w, (t - T0) / 1000);
                t += MS(step_ms);
        }
        return t - MS(step_ms);
}

static void check(unsigned i, const char *compact, Pattern pattern, SequenceOutcome outcome) {
        if (!ok(i < n_results, "sequence %u exists (%u handed out)", i, n_results))
                return;
        is_str(results[i].compact, compact, "sequence %u attempts", i);
        is_str(pattern_to_string(results[i].pattern), pattern_to_string(pattern), "sequence %u pattern", i);
        is_str(sequence_outcome_to_string(results[i].outcome),
               sequence_outcome_to_string(outcome),
               "sequence %u outcome",
               i);
}

static void test_chromium_proceed(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        int64_t t;

        diag("Chromium e3c: failed load, Proceed 1.5 s later, second load 2 s later");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        t = feed_list(sq, "127.0.0.1", CHROME, T0, 40, "A46 A46");
        /* Proceed: main frame fails twice (a preconnect's socket) then succeeds; favicon fails once */
        t = feed_list(sq, "127.0.0.1", CHROME, t + MS(1500), 10, "A46 A46 OK");
        t = feed_list(sq, "127.0.0.1", CHROME, t + MS(20), 10, "A46 OK");
        is_int(n_results, 2, "two sequences finished by the successes");
        t = feed_list(sq, "127.0.0.1", CHROME, t + SEC(2), 10, "A46 A46 A46 OK");
        t = feed_list(sq, "127.0.0.1", CHROME, t + MS(30), 10, "A46+ OK+");
        is_int(sequencer_flush(sq, t + SEC(1)), 0, "flush");
        is_int(n_results, 4, "four sequences");
        /* the pre-Proceed failures were within the retry window of the post-Proceed ones */
        check(0, "\u271746 \u271746 \u271746 \u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        check(1, "\u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        check(2, "\u271746 \u271746 \u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        check(3, "\u271746r \u2713r", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        is_int(results[0].n_failures, 4, "four failures in the first");
        is_int(sequencer_held(sq), 0, "nothing held after flush");
}

static void test_preconnect_after_ok(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        int64_t t;

        diag("e3c-tls13 run 3: an unused preconnect fails right after the success");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        t = feed_list(sq, "127.0.0.1", CHROME, T0, 10, "A46 OK A46");
        is_int(sequencer_advance(sq, t + SEC(600)), 0, "advance to the window's end");
        is_int(n_results, 1, "the straggler is still open at the window's limit");
        is_int(sequencer_advance(sq, t + SEC(600) + 1), 0, "advance past the window");
        is_int(n_results, 2, "straggler abandoned");
        check(0, "\u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        check(1, "\u271746", PATTERN_CERT_REJECTED_AFTER_OK, SEQUENCE_ABANDONED);
}

/* curl -k, then curl within the burst gap: the second connection starts after the first ended, so it is
 * no preconnect of the first; its rejection is a sequence of its own. A success whose end is not known
 * (closed_us NULL: older rows, proxy-v2 rows) keeps the rule above. */
static void test_after_closed_ok(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        Attempt success = {
                .id = 1,
                .started_us = T0,
                .ended_us = T0 + MS(5),
                .closed_us = T0 + MS(30),
                .outcome = OUTCOME_OK,
                .state_reached = STEP_DONE,
                .alert_received = -1,
                .alert_sent = -1,
                .ja4_stable = (char *) CHROME,
                .peer_addr = "127.0.0.1"};
        Attempt later = success, parallel = success;

        later.id = 2;
        later.started_us = T0 + MS(200); /* after the success's connection closed */
        later.outcome = OUTCOME_PEER_ALERT;
        later.alert_received = 48;
        later.state_reached = STEP_SERVER_FLIGHT;
        later.closed_us = 0;
        parallel = later;
        parallel.id = 3;
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        assert_se_ok(sequencer_feed(sq, &success));
        assert_se_ok(sequencer_feed(sq, &later));
        assert_se_ok(sequencer_flush(sq, T0 + SEC(3600)));
        is_int(n_results, 2, "curl -k, then curl: two sequences");
        check(1, "\u271748", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED);

        reset();
        sequencer_free(sq);
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        success.closed_us = T0 + SEC(60); /* kept alive: the rejected one was opened while it was open */
        assert_se_ok(sequencer_feed(sq, &success));
        assert_se_ok(sequencer_feed(sq, &parallel));
        assert_se_ok(sequencer_flush(sq, T0 + SEC(3600)));
        is_int(n_results, 2, "a kept-alive success and a rejection 200 ms later: two sequences");
        check(1, "\u271748", PATTERN_CERT_REJECTED_AFTER_OK, SEQUENCE_ABANDONED);
}

static void test_firefox(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        int64_t t;

        diag("Firefox: three alert 42, no success");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        t = feed_list(sq, "192.0.2.7", FIREFOX, T0, 300, "A42 A42 A42");
        is_int(sequencer_flush(sq, t + SEC(10)), 0, "flush within the window");
        check(0, "\u271742 \u271742 \u271742", PATTERN_CERT_REJECTED_OPEN, SEQUENCE_OPEN);

        reset();
        sq = sequencer_free(sq);
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        t = feed_list(sq, "192.0.2.7", FIREFOX, T0, 300, "A42 A42 A42");
        is_int(sequencer_flush(sq, t + SEC(601)), 0, "flush after the window");
        check(0, "\u271742 \u271742 \u271742", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED);
}

static void test_no_hello_kinds(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        Pattern want[] = {PATTERN_PROBE, PATTERN_NOT_TLS, PATTERN_IDLE};

        diag("one host's port check, plain-HTTP request and idle socket: three stories, not one");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        feed_list(sq, "192.0.2.77", NULL, T0, 200, "N H I");
        is_int(sequencer_flush(sq, T0 + SEC(3600)), 0, "flush");
        is_int(n_results, 3, "three sequences");
        for (unsigned i = 0; i < MIN(n_results, 3u); i++)
                is_str(pattern_to_string(results[i].pattern), pattern_to_string(want[i]), "sequence %u", i);
}

static void test_tls12_reset(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;

        diag("TLS 1.2 through a record-splitting path: alert 46 + RST, the server sees only a reset");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        feed_list(sq, "10.0.0.1", CHROME, T0, 15, "R R+ OK");
        check(0, "\u2717rst \u2717rstr \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
}

static void test_patterns(void) {
        static const struct {
                const char *list;
                bool ja4;
                const char *compact;
                Pattern pattern;
                SequenceOutcome outcome;
        } cases[] = {
                {"OK", true, "\u2713", PATTERN_CLEAN, SEQUENCE_OK},
                {"E70 E70", true, "\u2717s70 \u2717s70", PATTERN_VERSION_MISMATCH, SEQUENCE_ABANDONED},
                {"A70", true, "\u271770", PATTERN_VERSION_MISMATCH, SEQUENCE_ABANDONED},
                {"E40", true, "\u2717s40", PATTERN_NO_SHARED_CIPHER, SEQUENCE_ABANDONED},
                {"H H", false, "\u2717tls \u2717tls", PATTERN_NOT_TLS, SEQUENCE_ABANDONED},
                {"I I", false, "\u2717time \u2717time", PATTERN_IDLE, SEQUENCE_ABANDONED},
                {"C C", true, "\u2717fin \u2717fin", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED},
                {"C OK", true, "\u2717fin \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK},
                {"N N N", false, "\u2717none \u2717none \u2717none", PATTERN_PROBE, SEQUENCE_ABANDONED},
                {"T T", true, "\u2717time \u2717time", PATTERN_TIMEOUT, SEQUENCE_ABANDONED},
                {"r T OK", true, "\u2717rst \u2717time \u2713", PATTERN_TRANSIENT_THEN_OK, SEQUENCE_OK},
                {"S", true, "\u2717srv", PATTERN_FAILED, SEQUENCE_ABANDONED},
                {"A80 OK", true, "\u271780 \u2713", PATTERN_FAILED, SEQUENCE_OK},
                {"T A48", true, "\u2717time \u271748", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED},
        };

        FOREACH_ARRAY(c, cases, ELEMENTSOF(cases)) {
                _cleanup_(sequencer_freep) Sequencer *sq = NULL;
                int64_t t;

                reset();
                assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
                t = feed_list(sq, "198.51.100.9", c->ja4 ? CHROME : NULL, T0, 100, c->list);
                is_int(sequencer_flush(sq, t + SEC(3600)), 0, "flush %s", c->list);
                is_int(n_results, 1, "%s is one sequence", c->list);
                check(0, c->compact, c->pattern, c->outcome);
        }
}

static void test_limits(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        SequenceParams p = {.burst_gap_us = SEC(2), .retry_window_us = SEC(600)};

        diag("gaps exactly at the limits");
        reset();
        assert_se_ok(sequencer_new(&p, collect, NULL, &sq));
        feed(sq, "10.1.1.1", CHROME, NULL, T0, "A46");
        feed(sq, "10.1.1.1", CHROME, NULL, T0 + SEC(600), "A46");      /* exactly the window: joins */
        feed(sq, "10.1.1.1", CHROME, NULL, T0 + SEC(1200) + 1, "A46"); /* 1 µs too late: new */
        is_int(n_results, 1, "first sequence abandoned when the late attempt arrives");
        check(0, "\u271746 \u271746", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED);
        is_int(results[0].last_us - results[0].first_us, SEC(600), "spans exactly the window");

        /* after a success, a failure within the burst gap is a straggler of that success */
        feed(sq, "10.1.1.2", CHROME, NULL, T0 + SEC(1300), "OK");
        feed(sq, "10.1.1.3", CHROME, NULL, T0 + SEC(1300), "OK");
        feed(sq, "10.1.1.2", CHROME, NULL, T0 + SEC(1302), "A46");
        feed(sq, "10.1.1.3", CHROME, NULL, T0 + SEC(1302) + 1, "A46");
        is_int(sequencer_flush(sq, T0 + SEC(5000)), 0, "flush");
        is_int(n_results, 6, "six sequences");
        check(1, "\u271746", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED);
        check(2, "\u2713", PATTERN_CLEAN, SEQUENCE_OK);
        check(3, "\u2713", PATTERN_CLEAN, SEQUENCE_OK);
        check(4, "\u271746", PATTERN_CERT_REJECTED_AFTER_OK, SEQUENCE_ABANDONED);
        is_str(results[4].client, "10.1.1.2", "the straggler at exactly the burst gap");
        check(5, "\u271746", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED);
        is_str(results[5].client, "10.1.1.3", "1 µs later it is not a straggler");

        diag("a retry window shorter than the burst gap: the burst gap still joins");
        reset();
        sq = sequencer_free(sq);
        p = (SequenceParams){.burst_gap_us = SEC(5), .retry_window_us = SEC(1)};
        assert_se_ok(sequencer_new(&p, collect, NULL, &sq));
        feed(sq, "10.1.1.1", CHROME, NULL, T0, "A46");
        feed(sq, "10.1.1.1", CHROME, NULL, T0 + SEC(5), "A46");
        feed(sq, "10.1.1.1", CHROME, NULL, T0 + SEC(10) + 1, "OK");
        sequencer_flush(sq, T0 + SEC(20));
        is_int(n_results, 2, "two sequences");
        check(0, "\u271746 \u271746", PATTERN_CERT_REJECTED_ABANDONED, SEQUENCE_ABANDONED);
        check(1, "\u2713", PATTERN_CLEAN, SEQUENCE_OK);

        SequenceParams bad = {.burst_gap_us = -1, .retry_window_us = 1};
        Sequencer *x = NULL;
        is_int(sequencer_new(&bad, collect, NULL, &x), -EINVAL, "negative gap refused");
}

static void test_interleaved(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;

        diag("interleaved clients, and output in order of start");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        feed(sq, "192.0.2.1", CHROME, NULL, T0, "A46");
        feed(sq, "192.0.2.2", CHROME, NULL, T0 + MS(1), "A46");
        feed(sq, "192.0.2.1", FIREFOX, NULL, T0 + MS(2), "A42"); /* same address, other client family */
        feed(sq, "192.0.2.2", CHROME, NULL, T0 + MS(3), "OK");
        feed(sq, "192.0.2.1", CHROME, "a.example", T0 + MS(4), "OK"); /* other SNI: other key */
        is_int(n_results, 0, "finished sequences wait for the earlier open one");
        feed(sq, "192.0.2.1", CHROME, NULL, T0 + MS(5), "OK");
        is_int(n_results, 2, "the first two handed out when the first finishes");
        is_int(sequencer_flush(sq, T0 + SEC(1)), 0, "flush");
        is_int(n_results, 4, "four sequences");
        check(0, "\u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        is_str(results[0].client, "192.0.2.1", "first is client 1");
        check(1, "\u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        is_str(results[1].client, "192.0.2.2", "second is client 2");
        check(2, "\u271742", PATTERN_CERT_REJECTED_OPEN, SEQUENCE_OPEN);
        is_str(results[2].ja4, FIREFOX, "third is the Firefox family");
        check(3, "\u2713", PATTERN_CLEAN, SEQUENCE_OK);
        for (unsigned i = 1; i < n_results; i++)
                ok(results[i].first_us >= results[i - 1].first_us, "sequence %u in start order", i);
}

/* The hand-written /64 formatting against inet_ntop() on the prefix, for addresses with zero groups in every
 * place (RFC 5952's "::" placement is where a formatter goes wrong). */
static void test_prefix64_matches_inet_ntop(void) {
        unsigned bad = 0, n = 0;
        uint64_t rng = 12345;

        diag("IPv6 /64 keys are what inet_ntop() writes");
        for (unsigned mask = 0; mask < 256; mask++)
                for (unsigned round = 0; round < 8; round++, n++) {
                        struct in6_addr a = {};
                        char text[INET6_ADDRSTRLEN], prefix[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN + 8],
                                key[SEQUENCE_CLIENT_MAX];

                        /* bits 0-3: which of the prefix's groups are non-zero; bits 4-7 the interface id's */
                        for (unsigned g = 0; g < 8; g++) {
                                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                                if (mask & (1u << g)) {
                                        unsigned w = (unsigned) (rng >> 33) & (round < 4 ? 0xffffu : 0xfu);

                                        a.s6_addr[2 * g] = (uint8_t) (w >> 8);
                                        a.s6_addr[2 * g + 1] = (uint8_t) (w | 1);
                                }
                        }
                        if (IN6_IS_ADDR_V4MAPPED(&a) || !inet_ntop(AF_INET6, &a, text, sizeof text))
                                continue;
                        memset(a.s6_addr + 8, 0, 8);
                        assert(inet_ntop(AF_INET6, &a, prefix, sizeof prefix));
                        (void) snprintf(want, sizeof want, "%s/64", prefix);
                        sequence_client_key(text, key);
                        if (!streq(key, want)) {
                                if (bad++ < 5)
                                        diag("%s: got %s, want %s", text, key, want);
                        }
                }
        is_int(bad, 0, "%u addresses: /64 key equals inet_ntop()'s prefix + \"/64\"", n);
}

static void test_ipv6(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        char key[SEQUENCE_CLIENT_MAX];

        diag("IPv6 clients group by /64");
        sequence_client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key);
        is_str(key, "2001:db8:1:2::/64", "/64 of an address");
        sequence_client_key("::ffff:192.0.2.1", key);
        is_str(key, "192.0.2.1", "IPv4-mapped becomes IPv4");
        sequence_client_key("192.0.2.1", key);
        is_str(key, "192.0.2.1", "IPv4 as it is");
        sequence_client_key("not an address", key);
        is_str(key, "not an address", "garbage as it is");

        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        feed(sq, "2001:db8:1:2::1", CHROME, NULL, T0, "A46");
        feed(sq, "2001:db8:1:3::1", CHROME, NULL, T0 + MS(1), "A46");     /* other /64 */
        feed(sq, "2001:db8:1:2:ffff::5", CHROME, NULL, T0 + MS(2), "OK"); /* privacy address, same /64 */
        sequencer_flush(sq, T0 + SEC(1));
        is_int(n_results, 2, "two sequences");
        check(0, "\u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        is_str(results[0].client, "2001:db8:1:2::/64", "keyed by the /64");
        check(1, "\u271746", PATTERN_CERT_REJECTED_OPEN, SEQUENCE_OPEN);
}

static void test_hosts(void) {
        static const char web1[] = "web1", web2[] = "web2";
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;

        diag("the host is part of the key: a client retrying on another server starts a sequence there");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        feed_host = web1;
        feed(sq, "192.0.2.1", CHROME, "example.com", T0, "A46");
        feed_host = web2;
        feed(sq, "192.0.2.1", CHROME, "example.com", T0 + MS(100), "A46");
        feed_host = web1;
        feed(sq, "192.0.2.1", CHROME, "example.com", T0 + MS(200), "OK");
        feed_host = NULL;
        feed(sq, "192.0.2.1", CHROME, "example.com", T0 + MS(300), "A46");
        sequencer_flush(sq, T0 + SEC(1));
        is_int(n_results, 3, "three sequences: one per host, and one without a host");
        check(0, "\u271746 \u2713", PATTERN_CERT_REJECTED_THEN_OK, SEQUENCE_OK);
        ok(results[0].host == web1, "the first is web1's");
        check(1, "\u271746", PATTERN_CERT_REJECTED_OPEN, SEQUENCE_OPEN);
        ok(results[1].host == web2, "web2's failure is its own, still open");
        check(2, "\u271746", PATTERN_CERT_REJECTED_OPEN, SEQUENCE_OPEN);
        ok(results[2].host == NULL, "no host is a host of its own");
}

static void test_current_and_cap(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        const Sequence *cur;
        Attempt a = {.ja4_stable = (char *) CHROME};
        int64_t t = T0;

        diag("the current sequence of a client, and the details cap");
        reset();
        assert_se_ok(sequencer_new(NULL, collect, NULL, &sq));
        for (unsigned i = 0; i < SEQUENCE_DETAILS_MAX + 44; i++, t += MS(100))
                feed(sq, "203.0.113.5", CHROME, NULL, t, "A46");
        strcpy(a.peer_addr, "203.0.113.5");
        cur = sequencer_current(sq, &a);
        if (ok(cur != NULL, "current sequence found")) {
                is_int(cur->n_attempts, SEQUENCE_DETAILS_MAX + 44, "all attempts counted");
                is_int(cur->n_details, SEQUENCE_DETAILS_MAX, "details capped");
                is_str(pattern_to_string(sequence_classify(cur)), "cert_rejected_open", "diagnosed while open");
        }
        strcpy(a.peer_addr, "203.0.113.6");
        ok(sequencer_current(sq, &a) == NULL, "no sequence for another client");
        feed(sq, "203.0.113.5", CHROME, NULL, t, "OK");
        is_int(n_results, 1, "one sequence");
        is_int(results[0].n_attempts, SEQUENCE_DETAILS_MAX + 45, "301 attempts");
        ok(strstr(results[0].compact, " \u2026+45") != NULL, "compact string says how many are left out");
        char small[8];
        Sequence s = {.n_attempts = 2, .n_details = 2};
        SequenceAttempt at[2] = {
                {.outcome = OUTCOME_PEER_ALERT, .alert_received = 46}, {.outcome = OUTCOME_OK}};
        s.attempts = at;
        is_int(sequence_format_attempts(&s, true, small, sizeof small), 6, "ascii length");
        is_str(small, "x46 ok", "ascii form");
        is_int(sequence_format_attempts(&s, false, small, 4), 9, "truncated output reports the full length");
        is_int(strlen(small), 3, "and is NUL-terminated");
}

static int fail_handler(const Sequence *s, void *userdata) {
        (*(unsigned *) userdata)++;
        return -ECANCELED;
}

static void test_handler_error(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        unsigned calls = 0;

        assert_se_ok(sequencer_new(NULL, fail_handler, &calls, &sq));
        is_int(feed(sq, "10.9.9.9", CHROME, NULL, T0, "OK"), -ECANCELED, "handler error is returned");
        is_int(calls, 1, "handler called once");
}

static void test_bounded(void) {
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        SequenceParams p = {.burst_gap_us = SEC(2), .retry_window_us = SEC(1)};
        size_t max_held = 0;
        char addr[46];
        int64_t t = T0;

        diag("memory is bounded by the window, not by the attempts");
        reset();
        assert_se_ok(sequencer_new(&p, NULL, NULL, &sq));
        for (unsigned i = 0; i < 200000; i++, t += MS(10)) {
                Attempt a = {.started_us = t, .outcome = OUTCOME_PEER_ALERT, .alert_received = 46};

                (void) snprintf(addr, sizeof addr, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                memcpy(a.peer_addr, addr, sizeof addr);
                if (sequencer_feed(sq, &a) < 0)
                        break;
                max_held = MAX(max_held, sequencer_held(sq));
        }
        ok(max_held <= 202, "at most the 2 s hold's worth of sequences held (%zu)", max_held);
}

/* Every token, fresh and resumed, in both alphabets, and the compact string's truncation at every size. */
static void test_tokens(void) {
        static const struct {
                SequenceAttempt a;
                const char *utf8, *ascii;
        } cases[] = {
                {{.outcome = OUTCOME_OK, .alert_received = -1, .alert_sent = -1}, "\u2713", "ok"},
                {{.outcome = OUTCOME_OK, .alert_received = -1, .alert_sent = -1, .resumed = true},
                 "\u2713r",
                 "okr"},
                {{.outcome = OUTCOME_PEER_ALERT, .alert_received = 46, .alert_sent = -1}, "\u271746", "x46"},
                {{.outcome = OUTCOME_PEER_ALERT, .alert_received = 46, .alert_sent = -1, .resumed = true},
                 "\u271746r",
                 "x46r"},
                {{.outcome = OUTCOME_PEER_ALERT, .alert_received = -1, .alert_sent = -1},
                 "\u2717alert",
                 "xalert"},
                {{.outcome = OUTCOME_TLS_ERROR, .alert_received = -1, .alert_sent = 70}, "\u2717s70", "xs70"},
                {{.outcome = OUTCOME_TLS_ERROR, .alert_received = -1, .alert_sent = 0}, "\u2717s0", "xs0"},
                {{.outcome = OUTCOME_TLS_ERROR, .alert_received = -1, .alert_sent = -1, .resumed = true},
                 "\u2717errr",
                 "xerrr"},
                {{.outcome = OUTCOME_PEER_RESET, .alert_received = -1, .alert_sent = -1}, "\u2717rst", "xrst"},
                {{.outcome = OUTCOME_PEER_RESET, .alert_received = 255, .alert_sent = -1}, "\u2717255", "x255"},
                {{.outcome = OUTCOME_PEER_CLOSED, .alert_received = -1, .alert_sent = -1, .resumed = true},
                 "\u2717finr",
                 "xfinr"},
                {{.outcome = OUTCOME_NO_DATA, .alert_received = -1, .alert_sent = -1, .resumed = true},
                 "\u2717none",
                 "xnone"},
                {{.outcome = OUTCOME_TIMEOUT, .alert_received = -1, .alert_sent = -1, .resumed = true},
                 "\u2717timer",
                 "xtimer"},
                {{.outcome = OUTCOME_NOT_TLS, .alert_received = -1, .alert_sent = -1, .resumed = true},
                 "\u2717tls",
                 "xtls"},
                {{.outcome = OUTCOME_SERVER_ERROR, .alert_received = -1, .alert_sent = -1}, "\u2717srv", "xsrv"},
        };
        SequenceAttempt at[3] = {cases[2].a, cases[5].a, cases[0].a};
        Sequence s = {.n_attempts = 5, .n_details = 3, .attempts = at};
        const char *full = "\u271746 \u2717s70 \u2713 \u2026+2";
        char buf[24];

        diag("attempt tokens");
        FOREACH_ARRAY(c, cases, ELEMENTSOF(cases)) {
                is_str(sequence_attempt_token(&c->a, false, buf), c->utf8, "token %s", c->ascii);
                is_str(sequence_attempt_token(&c->a, true, buf), c->ascii, "ascii token %s", c->ascii);
        }
        for (size_t size = 0; size <= strlen(full) + 1; size++) {
                char out[64], want[64];

                memset(out, '#', sizeof out);
                (void) snprintf(want, sizeof want, "%.*s", (int) (size > 0 ? size - 1 : 0), full);
                is_int(sequence_format_attempts(&s, false, out, size),
                       strlen(full),
                       "full length at size %zu",
                       size);
                if (size > 0)
                        is_str(out, want, "truncated like snprintf at size %zu", size);
                ok(out[size] == '#', "nothing written past size %zu", size);
        }
}

static void test_names(void) {
        for (int i = 0; i < _PATTERN_MAX; i++) {
                is_int(pattern_from_string(pattern_to_string(i)),
                       i,
                       "pattern %s round-trips",
                       pattern_to_string(i));
                ok(pattern_diagnosis(i) && strlen(pattern_diagnosis(i)) > 20, "pattern %d has a diagnosis", i);
        }
        is_int(pattern_from_string("nope"), _PATTERN_INVALID, "unknown pattern");
        for (int i = 0; i < _SEQUENCE_OUTCOME_MAX; i++)
                is_int(sequence_outcome_from_string(sequence_outcome_to_string(i)), i, "outcome round-trips");
}

int main(void) {
        test_chromium_proceed();
        test_preconnect_after_ok();
        test_after_closed_ok();
        test_firefox();
        test_no_hello_kinds();
        test_tls12_reset();
        test_patterns();
        test_limits();
        test_interleaved();
        test_ipv6();
        test_hosts();
        test_prefix64_matches_inet_ntop();
        test_current_and_cap();
        test_handler_error();
        test_bounded();
        test_tokens();
        test_names();
        return tap_done();
}
