/* SPDX-License-Identifier: MIT */
/* evidence: what one attempt shows, table-driven; diagnosis: the sentence built from a sequence's evidence
 * and the client's identity. The rows are the shapes real clients produced (tlsreport(1), "What clients do
 * when they reject a certificate"). */
#include "diagnosis.h"
#include "evidence.h"
#include "tap.h"

#define MS(x) ((int64_t) (x) *1000)

typedef struct Row {
        const char *what;
        Outcome outcome;
        HandshakeStep step;
        int alert_received, alert_sent, tls_error;
        uint64_t bytes_in, bytes_out;
        bool hello;
        Evidence want;
} Row;

static const Row rows[] = {
        {"curl, Python, PHP: alert 48 after our certificate",
         OUTCOME_PEER_ALERT,
         STEP_SERVER_FLIGHT,
         48,
         -1,
         -0x7180,
         500,
         900,
         true,
         EVIDENCE_CERT_ALERT},
        {"Java: alert 46", OUTCOME_PEER_ALERT, STEP_SERVER_FLIGHT, 46, -1, -0x7780, 500, 900, true, EVIDENCE_CERT_ALERT},
        {"Firefox TLS 1.2: alert 42 after the handshake",
         OUTCOME_PEER_ALERT,
         STEP_DONE,
         42,
         -1,
         -0x7780,
         500,
         900,
         true,
         EVIDENCE_CERT_ALERT},
        {"Node: FIN right after our certificate",
         OUTCOME_PEER_CLOSED,
         STEP_SERVER_FLIGHT,
         -1,
         -1,
         -0x7280,
         500,
         900,
         true,
         EVIDENCE_CLOSED_AFTER_FLIGHT},
        {"Chromium TLS 1.2: RST after our certificate",
         OUTCOME_PEER_RESET,
         STEP_SERVER_FLIGHT,
         -1,
         -1,
         -0x50,
         500,
         900,
         true,
         EVIDENCE_CLOSED_AFTER_FLIGHT},
        {"wget: FIN right after the handshake",
         OUTCOME_PEER_CLOSED,
         STEP_DONE,
         -1,
         -1,
         -0x7280,
         600,
         1200,
         true,
         EVIDENCE_CLOSED_AFTER_HANDSHAKE},
        {"TLS 1.1 client: we sent protocol_version",
         OUTCOME_TLS_ERROR,
         STEP_CLIENT_HELLO,
         -1,
         70,
         -0x6E80,
         200,
         7,
         true,
         EVIDENCE_VERSION},
        {"TLS 1.1 client: Mbed TLS without an alert",
         OUTCOME_TLS_ERROR,
         STEP_CLIENT_HELLO,
         -1,
         -1,
         -0x6E80,
         200,
         0,
         true,
         EVIDENCE_VERSION},
        {"no cipher in common: handshake_failure",
         OUTCOME_TLS_ERROR,
         STEP_CLIENT_HELLO,
         -1,
         40,
         -0x6E00,
         200,
         7,
         true,
         EVIDENCE_NO_SHARED},
        {"only ffdhe groups: no alert at all",
         OUTCOME_TLS_ERROR,
         STEP_CLIENT_HELLO,
         -1,
         -1,
         -0x6E00,
         200,
         0,
         true,
         EVIDENCE_NO_SHARED},
        {"header split across records",
         OUTCOME_TLS_ERROR,
         STEP_CLIENT_HELLO,
         -1,
         -1,
         -0x7200,
         300,
         0,
         true,
         EVIDENCE_FRAGMENTED_HELLO},
        {"a truncated hello is not a fragmented one",
         OUTCOME_TLS_ERROR,
         STEP_CONNECTED,
         -1,
         -1,
         -0x7200,
         30,
         0,
         false,
         EVIDENCE_OTHER},
        {"plain HTTP, answered with 400",
         OUTCOME_NOT_TLS,
         STEP_CONNECTED,
         -1,
         -1,
         -0x7200,
         80,
         150,
         false,
         EVIDENCE_PLAIN_HTTP},
        {"SSH banner", OUTCOME_NOT_TLS, STEP_CONNECTED, -1, -1, -0x7200, 30, 0, false, EVIDENCE_NOT_TLS},
        {"port check", OUTCOME_NO_DATA, STEP_CONNECTED, -1, -1, -0x7280, 0, 0, false, EVIDENCE_NO_DATA},
        {"idle socket", OUTCOME_TIMEOUT, STEP_CONNECTED, -1, -1, 0, 0, 0, false, EVIDENCE_IDLE},
        {"stalled hello", OUTCOME_TIMEOUT, STEP_CONNECTED, -1, -1, 0, 20, 0, false, EVIDENCE_STALLED},
        {"reset before our flight", OUTCOME_PEER_RESET, STEP_CLIENT_HELLO, -1, -1, -0x50, 300, 0, true, EVIDENCE_BROKE_OFF},
        {"decode_error from the client",
         OUTCOME_PEER_ALERT,
         STEP_SERVER_FLIGHT,
         50,
         -1,
         -0x7780,
         300,
         900,
         true,
         EVIDENCE_OTHER_ALERT},
        {"openssl s_client R: renegotiation refused, then alert 40",
         OUTCOME_PEER_ALERT,
         STEP_DONE,
         40,
         100,
         -0x7780,
         900,
         1400,
         true,
         EVIDENCE_RENEGOTIATION},
        {"renegotiation refused, then FIN: not a hang-up after the handshake",
         OUTCOME_PEER_CLOSED,
         STEP_DONE,
         -1,
         100,
         0,
         900,
         1400,
         true,
         EVIDENCE_RENEGOTIATION},
        {"connection limit", OUTCOME_SERVER_ERROR, STEP_CONNECTED, -1, -1, 0, 0, 0, false, EVIDENCE_SERVER},
        {"success", OUTCOME_OK, STEP_DONE, -1, -1, 0, 700, 4000, true, EVIDENCE_OK},
};

static void test_table(void) {
        FOREACH_ARRAY(r, rows, ELEMENTSOF(rows)) {
                Attempt a = {
                        .outcome = r->outcome,
                        .state_reached = r->step,
                        .alert_received = r->alert_received,
                        .alert_sent = r->alert_sent,
                        .tls_error = r->tls_error,
                        .bytes_in = r->bytes_in,
                        .bytes_out = r->bytes_out,
                        .ja4_stable = r->hello ? (char *) "t13i2900_723694b0fccc_c3d874a01b3d" : NULL,
                };

                is_str(evidence_to_string(attempt_evidence(&a)), evidence_to_string(r->want), "%s", r->what);
        }
        for (int e = 0; e < _EVIDENCE_MAX; e++)
                ok(evidence_to_string((Evidence) e) != NULL, "evidence %d has a name", e);
}

/* Feeds attempts of one client, collects the sequences' sentences. */
typedef struct Collected {
        Pattern pattern[8];
        char *text[8];
        unsigned n;
        const ClientIdentity *who;
} Collected;

static int collect(const Sequence *s, void *userdata) {
        Collected *c = userdata;

        if (c->n < ELEMENTSOF(c->text)) {
                c->pattern[c->n] = s->pattern;
                char buf[SEQUENCE_DIAGNOSIS_MAX];
                size_t n = sequence_diagnose(s, c->who, buf, sizeof buf);

                ok(n < sizeof buf, "the sentence fits SEQUENCE_DIAGNOSIS_MAX (%zu bytes)", n);
                c->text[c->n++] = strdup(buf);
        }
        return 0;
}

static Attempt attempt(int64_t t, Outcome o, HandshakeStep step, int alert, const char *ja4) {
        Attempt a = {
                .started_us = t,
                .ended_us = t + MS(5),
                .outcome = o,
                .state_reached = step,
                .alert_received = alert,
                .alert_sent = -1,
                .bytes_in = 500,
                .ja4_stable = (char *) ja4,
                .peer_addr = "192.0.2.5",
        };
        return a;
}

static void contains(const char *text, const char *const *words, const char *what) {
        bool all = text != NULL;

        for (const char *const *w = words; all && *w; w++)
                all = strstr(text, *w) != NULL;
        ok(all, "%s: %s", what, strna(text));
}

static void collected_done(Collected *c) {
        for (unsigned i = 0; i < c->n; i++)
                free(c->text[i]);
}

static void test_sentences(void) {
        static const char *const ja4 = "t13i2900_723694b0fccc_c3d874a01b3d";
        const int64_t t0 = INT64_C(1795771815000000);

        {
                /* wget: hangs up after the handshake, then succeeds with --no-check-certificate */
                ClientIdentity who = {.name = "Wget/1.21.3", .n_names = 1};
                Collected c = {.who = &who};
                _cleanup_(sequencer_freep) Sequencer *sq = NULL;
                Attempt a = attempt(t0, OUTCOME_PEER_CLOSED, STEP_DONE, -1, ja4),
                        b = attempt(t0 + MS(300), OUTCOME_OK, STEP_DONE, -1, ja4);

                a.close_kind = CLOSE_FIN;
                a.closed_us = a.ended_us + 400;
                b.http_requests = 1;
                ok(sequencer_new(NULL, collect, &c, &sq) == 0, "sequencer");
                sequencer_feed(sq, &a);
                sequencer_feed(sq, &b);
                sequencer_flush(sq, t0 + MS(1000));
                contains(
                        c.n == 1 ? c.text[0] : NULL,
                        (const char *const[]){
                                "Wget/1.21.3",
                                "completed the handshake, then hung up 0 ms later (fin)",
                                "switched off",
                                "security finding",
                                "--ca-certificate",
                                NULL},
                        "wget then --no-check-certificate");
                collected_done(&c);
        }
        {
                /* Chromium: alert 46 twice, then Proceed */
                ClientIdentity who = {.name = "Chrome/156 (Linux)", .n_names = 1};
                Collected c = {.who = &who};
                _cleanup_(sequencer_freep) Sequencer *sq = NULL;
                Attempt a = attempt(t0, OUTCOME_PEER_ALERT, STEP_SERVER_FLIGHT, 46, ja4);
                Attempt b = attempt(t0 + MS(20), OUTCOME_PEER_ALERT, STEP_SERVER_FLIGHT, 46, ja4);
                Attempt d = attempt(t0 + MS(40), OUTCOME_OK, STEP_DONE, -1, ja4);

                ok(sequencer_new(NULL, collect, &c, &sq) == 0, "sequencer");
                sequencer_feed(sq, &a);
                sequencer_feed(sq, &b);
                sequencer_feed(sq, &d);
                sequencer_flush(sq, t0 + MS(1000));
                contains(
                        c.n == 1 ? c.text[0] : NULL,
                        (const char *const[]){
                                "Chrome/156", "certificate_unknown(46)", "(2 attempts)", "Proceed", NULL},
                        "Chromium proceeds");
                ok(c.n == 1 && !strstr(c.text[0], "switched off"),
                   "a browser is not told its check was switched off");
                collected_done(&c);
        }
        {
                /* unidentified, window still open; and one shared by two programs */
                ClientIdentity shared = {.name = "ELinks/0.13.2", .other = "Lynx/2.9.0", .n_names = 2};
                Collected c = {.who = NULL}, s = {.who = &shared};
                _cleanup_(sequencer_freep) Sequencer *sq = NULL, *sq2 = NULL;
                Attempt a = attempt(t0, OUTCOME_PEER_ALERT, STEP_SERVER_FLIGHT, 48, ja4);

                ok(sequencer_new(NULL, collect, &c, &sq) == 0 && sequencer_new(NULL, collect, &s, &sq2) == 0,
                   "sequencers");
                sequencer_feed(sq, &a);
                sequencer_flush(sq, t0 + MS(1000));
                ok(c.n == 1 && c.pattern[0] == PATTERN_CERT_REJECTED_OPEN, "open window: cert_rejected_open");
                contains(
                        c.n == 1 ? c.text[0] : NULL,
                        (const char *const[]){"sent no User-Agent", "unknown_ca(48)", "not connected yet", NULL},
                        "unidentified, window open");
                sequencer_feed(sq2, &a);
                sequencer_flush(sq2, t0 + MS(3600 * 1000));
                contains(
                        s.n == 1 ? s.text[0] : NULL,
                        (const char *const[]){
                                "shared by 2 programs",
                                "ELinks/0.13.2",
                                "Lynx/2.9.0",
                                "never connected",
                                "cannot tell these programs apart",
                                NULL},
                        "shared fingerprint, window passed");
                collected_done(&c);
                collected_done(&s);
        }
        {
                /* openssl s_client -tls1_2 typing R: we refuse the renegotiation, it ends with alert 40 */
                Collected c = {};
                _cleanup_(sequencer_freep) Sequencer *sq = NULL;
                Attempt a = attempt(t0, OUTCOME_PEER_ALERT, STEP_DONE, 40, ja4);

                a.alert_sent = 100;
                ok(sequencer_new(NULL, collect, &c, &sq) == 0, "sequencer");
                sequencer_feed(sq, &a);
                sequencer_flush(sq, t0 + MS(3600 * 1000));
                ok(c.n == 1 && c.pattern[0] == PATTERN_FAILED,
                   "a refused renegotiation is no certificate pattern");
                contains(
                        c.n == 1 ? c.text[0] : NULL,
                        (const char *const[]){
                                "asked to renegotiate",
                                "we refused (alert no_renegotiation)",
                                "not a rejection of our certificate",
                                NULL},
                        "refused renegotiation");
                ok(c.n == 1 && !strstr(c.text[0], "rejected our certificate"), "no certificate rejection");
                collected_done(&c);
        }
        {
                /* TLS 1.1 only: no --tls-min advice */
                Collected c = {};
                _cleanup_(sequencer_freep) Sequencer *sq = NULL;
                Attempt a = attempt(
                        t0, OUTCOME_TLS_ERROR, STEP_CLIENT_HELLO, -1, "t11i0900_c491f621fb4c_d4d584b446d3");

                a.alert_sent = 70;
                ok(sequencer_new(NULL, collect, &c, &sq) == 0, "sequencer");
                sequencer_feed(sq, &a);
                sequencer_flush(sq, t0 + MS(1000));
                contains(
                        c.n == 1 ? c.text[0] : NULL,
                        (const char *const[]){
                                "offers at most TLS 1.1", "does not implement", "upgrade the client", NULL},
                        "TLS 1.1 only");
                ok(c.n == 1 && !strstr(c.text[0], "--tls-min"), "TLS 1.1 only: no --tls-min advice");
                collected_done(&c);
        }
}

/* A clean handshake whose connection was not served (--backend): not clean, and why. */
static void test_forwarding(void) {
        static const char *const ja4 = "t13i2900_723694b0fccc_c3d874a01b3d";
        const int64_t t0 = INT64_C(1795771815000000);
        static const struct {
                const char *error;
                Pattern pattern;
                const char *words[3];
        } cases[] = {
                {NULL, PATTERN_CLEAN, {"one successful attempt", NULL}},
                {"connect to 127.0.0.1:8080: Connection refused",
                 PATTERN_BACKEND_ERROR,
                 {"forwarding to the backend failed (connect to 127.0.0.1:8080: Connection refused)",
                  "--backend",
                  NULL}},
                /* maybe after requests it served (keep-alive): the sentence must not say nothing was */
                {"the backend sent nothing for 300 s",
                 PATTERN_BACKEND_ERROR,
                 {"(the backend sent nothing for 300 s)", "a cut answer", NULL}},
                {"request refused (400): Content-Length duplicated",
                 PATTERN_BAD_REQUEST,
                 {"tlswatchd refused its HTTP request (request refused (400): Content-Length duplicated)",
                  "smuggle",
                  NULL}},
                /* cut short or too slow: the client's (or its network's) doing, no request to fix */
                {"the client closed the connection within a request's body",
                 PATTERN_BAD_REQUEST,
                 {"did not finish an HTTP request of its own (the client closed",
                  "not the service's fault",
                  NULL}},
                {"the client read nothing of its answer for 300 s",
                 PATTERN_BAD_REQUEST,
                 {"(the client read nothing of its answer for 300 s)", "--backend-client-idle-timeout", NULL}},
                /* a collector's journal may carry anything: the sentence stays printable ASCII and bounded */
                {"connect to \x1b[31mx\n\xff"
                 "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
                 "0123456789"
                 "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
                 "0123456789",
                 PATTERN_BACKEND_ERROR,
                 {"connect to ?[31mx??0123", "...)", NULL}},
        };

        FOREACH_ARRAY(k, cases, ELEMENTSOF(cases)) {
                ClientIdentity who = {.name = "curl/7.88.1", .n_names = 1};
                Collected c = {.who = &who};
                _cleanup_(sequencer_freep) Sequencer *sq = NULL;
                Attempt a = attempt(t0, OUTCOME_OK, STEP_DONE, -1, ja4);

                a.backend_error = (char *) k->error;
                ok(sequencer_new(NULL, collect, &c, &sq) == 0, "sequencer");
                sequencer_feed(sq, &a);
                sequencer_flush(sq, t0 + MS(1000));
                is_str(c.n == 1 ? pattern_to_string(c.pattern[0]) : NULL,
                       pattern_to_string(k->pattern),
                       "forwarding case %zu: pattern",
                       (size_t) (k - cases));
                if (k->error) {
                        contains(c.n == 1 ? c.text[0] : NULL, k->words, "the sentence quotes it");
                        /* a connection may have served requests before the one that failed */
                        ok(c.n == 1 && !strstr(c.text[0], "could not be forwarded") &&
                                   !strstr(c.text[0], "was not forwarded"),
                           "forwarding case %zu: no claim that nothing was forwarded",
                           (size_t) (k - cases));
                        ok(c.n == 1 &&
                                   (k->pattern == PATTERN_BAD_REQUEST && strstr(k->error, "request refused")) ==
                                           !!strstr(c.text[0], "fix the client's request"),
                           "forwarding case %zu: a request to fix only when one was refused",
                           (size_t) (k - cases));
                }
                for (const char *p = c.n == 1 ? c.text[0] : ""; *p; p++)
                        if (*p < 0x20 || *p >= 0x7f) {
                                ok(false, "printable ASCII only: byte 0x%02x", (unsigned char) *p);
                                break;
                        }
                collected_done(&c);
        }
        {
                /* rejections, then a success whose backend was down: both stories, in order */
                ClientIdentity who = {.name = "Chrome/156 (Linux)", .n_names = 1};
                Collected c = {.who = &who};
                _cleanup_(sequencer_freep) Sequencer *sq = NULL;
                Attempt a = attempt(t0, OUTCOME_PEER_ALERT, STEP_SERVER_FLIGHT, 46, ja4);
                Attempt b = attempt(t0 + MS(20), OUTCOME_OK, STEP_DONE, -1, ja4);

                b.backend_error = (char *) "connect to [::1]:8080: Connection refused";
                ok(sequencer_new(NULL, collect, &c, &sq) == 0, "sequencer");
                sequencer_feed(sq, &a);
                sequencer_feed(sq, &b);
                sequencer_flush(sq, t0 + MS(1000));
                ok(c.n == 1 && c.pattern[0] == PATTERN_CERT_REJECTED_THEN_OK,
                   "the handshakes' pattern stays cert_rejected_then_ok");
                contains(
                        c.n == 1 ? c.text[0] : NULL,
                        (const char *const[]){
                                "certificate_unknown(46)",
                                "Proceed",
                                "; then forwarding failed (connect to [::1]:8080",
                                NULL},
                        "rejection, then the backend");
                ok(c.n == 1 && strstr(c.text[0], "Proceed") < strstr(c.text[0], "forwarding"),
                   "the handshakes come first");
                collected_done(&c);
        }
}

/* A failed attempt's backend_error (a client that hung up after the handshake while the backend was
 * down) is not what became of the connection that got through: a later served success stays unblamed. */
static void test_forwarding_failed_attempt(void) {
        static const char *const ja4 = "t13i2900_723694b0fccc_c3d874a01b3d";
        const int64_t t0 = INT64_C(1795771815000000);
        ClientIdentity who = {.name = "Chrome/156 (Linux)", .n_names = 1};
        Collected c = {.who = &who};
        _cleanup_(sequencer_freep) Sequencer *sq = NULL;
        Attempt a = attempt(t0, OUTCOME_PEER_CLOSED, STEP_DONE, -1, ja4);
        Attempt b = attempt(t0 + MS(300), OUTCOME_OK, STEP_DONE, -1, ja4);

        a.close_kind = CLOSE_FIN;
        a.backend_error = (char *) "connect to [::1]:8080: Connection refused";
        ok(sequencer_new(NULL, collect, &c, &sq) == 0, "sequencer");
        sequencer_feed(sq, &a);
        sequencer_feed(sq, &b);
        sequencer_flush(sq, t0 + MS(1000));
        ok(c.n == 1 && c.pattern[0] != PATTERN_BACKEND_ERROR && c.pattern[0] != PATTERN_BAD_REQUEST,
           "a failed attempt's backend_error does not make the pattern");
        ok(c.n == 1 && !strstr(c.text[0], "forwarding") && !strstr(c.text[0], "8080"),
           "nor the diagnosis of the served success: %s",
           c.n == 1 ? c.text[0] : "(none)");
        collected_done(&c);
}

int main(void) {
        test_table();
        test_sentences();
        test_forwarding();
        test_forwarding_failed_attempt();
        return tap_done();
}
