/* SPDX-License-Identifier: MIT */
#include "attempt.h"
#include "journal.h"
#include "tap.h"

/* The value of a field as a NUL-terminated copy (NULL if absent), for is_str(). */
static char *field(const JournalFields *f, const char *name) {
        size_t len;
        const char *v = journal_fields_get(f, name, &len);

        return v ? strndup(v, len) : NULL;
}

#define is_field(f, name, want)                            \
        ({                                                 \
                _cleanup_free_ char *_v_ = field(f, name); \
                is_str(_v_, want, "%s", name);             \
        })

static bool has_control(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return true;
        return false;
}

static void test_modes(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();

        for (int i = 0; i < _JOURNAL_MODE_MAX; i++)
                is_int(journal_mode_from_string(journal_mode_to_string(i)),
                       i,
                       "mode %s",
                       journal_mode_to_string(i));
        is_int(journal_mode_from_string("some"), _JOURNAL_MODE_INVALID, "unknown mode refused");
        is_int(journal_mode_from_string(NULL), _JOURNAL_MODE_INVALID, "NULL mode refused");
        a->outcome = OUTCOME_OK;
        ok(journal_mode_wants(JOURNAL_ALL, a), "all: success logged");
        ok(!journal_mode_wants(JOURNAL_FAILURES, a), "failures: success not logged");
        ok(!journal_mode_wants(JOURNAL_NONE, a), "none: success not logged");
        a->backend_error = strdup("connect to 127.0.0.1:9: Connection refused");
        ok(journal_mode_wants(JOURNAL_FAILURES, a), "failures: success with a backend error logged");
        ok(!journal_mode_wants(JOURNAL_NONE, a), "none: backend error not logged");
        {
                _cleanup_free_ char *msg = NULL;
                JournalFields f;

                is_int(journal_fields_build(a, &f), 0, "entry with a backend error built");
                msg = field(&f, "MESSAGE");
                ok(msg && strstr(msg, "forwarding failed: connect to 127.0.0.1:9"), "the message says why");
                is_field(&f, "PRIORITY", "6");
                journal_fields_done(&f);
        }
        free(a->backend_error);
        a->backend_error = NULL;
        a->outcome = OUTCOME_PEER_ALERT;
        ok(journal_mode_wants(JOURNAL_ALL, a), "all: failure logged");
        ok(journal_mode_wants(JOURNAL_FAILURES, a), "failures: failure logged");
        ok(!journal_mode_wants(JOURNAL_NONE, a), "none: failure not logged");
        {
                JournalSink *sink = (JournalSink *) 1;

                is_int(journal_sink_new(JOURNAL_NONE, 16, &sink), 0, "none: no sender");
                ok(sink == NULL, "none: no sender thread");
                is_int(journal_sink_submit(sink, a), 0, "none sends nothing");
                is_int(journal_sink_new(JOURNAL_ALL, 0, &sink), -EINVAL, "a queue of 0 is refused");
        }
}

static void test_failure(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();
        _cleanup_(journal_fields_done) JournalFields f = {};
        size_t len;
        const char *v;

        a->started_us = 1764201600123456;
        a->ended_us = 1764201600150000;
        strcpy(a->peer_addr, "127.0.0.1");
        a->peer_port = 51234;
        strcpy(a->local_addr, "127.0.0.1");
        a->local_port = 8443;
        a->outcome = OUTCOME_PEER_ALERT;
        a->state_reached = STEP_SERVER_FLIGHT;
        a->alert_received = 46;
        a->tls_error = -30592;
        a->version = strdup("TLSv1.3");
        a->ja4 = strdup("t13d1517h2_8daaf6152771_cb7bf5808d99");
        raw_string_set(&a->sni, "bad\0\n\x1b[31m\xff", 10);
        a->bytes_in = 1800;
        a->bytes_out = 1200;

        is_int(journal_fields_build(a, &f), 0, "build failure entry");
        is_field(
                &f,
                "MESSAGE",
                "TLS handshake from 127.0.0.1:51234 failed: client sent alert certificate_unknown(46) after "
                "our "
                "certificate (TLSv1.3, JA4 t13d1517h2_8daaf6152771_cb7bf5808d99)");
        is_field(&f, "MESSAGE_ID", TLSWATCH_MESSAGE_ID_HANDSHAKE_FAILED);
        is_field(&f, "PRIORITY", "6");
        is_field(&f, "SYSLOG_IDENTIFIER", "tlswatchd");
        is_field(&f, "TLSWATCH_STARTED_US", "1764201600123456");
        is_field(&f, "TLSWATCH_ENDED_US", "1764201600150000");
        is_field(&f, "TLSWATCH_PEER_ADDR", "127.0.0.1");
        is_field(&f, "TLSWATCH_PEER_PORT", "51234");
        is_field(&f, "TLSWATCH_LOCAL_PORT", "8443");
        is_field(&f, "TLSWATCH_OUTCOME", "peer_alert");
        is_field(&f, "TLSWATCH_STATE_REACHED", "server_flight");
        is_field(&f, "TLSWATCH_ALERT_RECEIVED", "46");
        is_field(&f, "TLSWATCH_ALERT_SENT", NULL);
        is_field(&f, "TLSWATCH_TLS_ERROR", "-30592");
        is_field(&f, "TLSWATCH_CIPHER", NULL);
        is_field(&f, "TLSWATCH_ID", NULL);
        is_field(&f, "TLSWATCH_HELLO_RETRY", "0");
        is_field(&f, "TLSWATCH_RESUMED", "0");
        is_field(&f, "TLSWATCH_BYTES_IN", "1800");
        is_field(&f, "TLSWATCH_HTTP_REQUESTS", "0");
        is_field(&f, "TLSWATCH_USER_AGENT", NULL);
        v = journal_fields_get(&f, "TLSWATCH_SNI", &len);
        ok(v && len == 10 && memcmp(v, "bad\0\n\x1b[31m\xff", 10) == 0,
           "SNI raw, with NUL, newline, ESC, 0xff");
        is_int(f.n, 4 + 18, "4 fixed fields and the 18 non-NULL columns");
        for (size_t i = 0; i < f.n; i++) {
                const char *p = f.iov[i].iov_base;
                const char *eq = memchr(p, '=', f.iov[i].iov_len);
                bool name_ok = eq && eq > p;

                for (const char *c = p; name_ok && c < eq; c++)
                        name_ok = (*c >= 'A' && *c <= 'Z') || *c == '_' || (*c >= '0' && *c <= '9');
                if (!name_ok)
                        ok(false, "field %zu has a valid journal field name", i);
        }
        v = journal_fields_get(&f, "MESSAGE", &len);
        ok(v && !has_control(v, len), "MESSAGE free of control characters");
}

static void test_success_v6(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();
        _cleanup_(journal_fields_done) JournalFields f = {};

        strcpy(a->peer_addr, "2001:db8::1");
        a->peer_port = 443;
        strcpy(a->local_addr, "::1");
        a->outcome = OUTCOME_OK;
        a->state_reached = STEP_DONE;
        a->id = 42;
        a->version = strdup("TLSv1.2");
        a->cipher = strdup("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
        raw_string_set(&a->alpn, "h2\x07", 3);
        a->resumed = a->hello_retry = true;
        a->http_requests = 3;
        raw_string_set(&a->user_agent, "curl/7.88.1", 11);

        is_int(journal_fields_build(a, &f), 0, "build success entry");
        is_field(
                &f,
                "MESSAGE",
                "TLS handshake from [2001:db8::1]:443 completed (TLSv1.2, "
                "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256, ALPN h2\\x07, resumed, after HelloRetryRequest)");
        is_field(&f, "MESSAGE_ID", TLSWATCH_MESSAGE_ID_HANDSHAKE_OK);
        is_field(&f, "PRIORITY", "7");
        is_field(&f, "TLSWATCH_ID", "42");
        is_field(&f, "TLSWATCH_PEER_ADDR", "2001:db8::1");
        is_field(&f, "TLSWATCH_OUTCOME", "ok");
        is_field(&f, "TLSWATCH_STATE_REACHED", "done");
        is_field(&f, "TLSWATCH_TLS_ERROR", NULL);
        is_field(&f, "TLSWATCH_RESUMED", "1");
        is_field(&f, "TLSWATCH_HELLO_RETRY", "1");
        is_field(&f, "TLSWATCH_HTTP_REQUESTS", "3");
        is_field(&f, "TLSWATCH_USER_AGENT", "curl/7.88.1");
        is_field(&f, "TLSWATCH_ALPN", "h2\x07");
}

static void test_empty_raw(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();
        _cleanup_(journal_fields_done) JournalFields f = {};
        size_t len = 99;

        raw_string_set(&a->sni, "", 0);
        is_int(journal_fields_build(a, &f), 0, "build entry with empty SNI");
        ok(journal_fields_get(&f, "TLSWATCH_SNI", &len) && len == 0, "empty SNI is present and empty");
        ok(!journal_fields_get(&f, "TLSWATCH_ALPN", NULL), "absent ALPN is absent");
        is_field(&f, "TLSWATCH_OUTCOME", "server_error");
}

/* The row id: the record's own if it has one, else given after the build (the store numbers the row
 * once the entry exists); left out when there is none. Every other field stays as built. */
static void test_row_id(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();
        _cleanup_(journal_fields_done) JournalFields f = {}, g = {};
        size_t n;

        a->outcome = OUTCOME_PEER_RESET;
        is_int(journal_fields_build(a, &f), 0, "build entry without an id");
        ok(!journal_fields_get(&f, "TLSWATCH_ID", NULL), "no id yet: TLSWATCH_ID absent");
        n = f.n;
        journal_fields_set_id(&f, INT64_MAX);
        is_int((int) f.n, (int) n + 1, "an id adds one field");
        is_field(&f, "TLSWATCH_ID", "9223372036854775807");
        journal_fields_set_id(&f, 42);
        is_field(&f, "TLSWATCH_ID", "42");
        is_field(&f, "TLSWATCH_OUTCOME", "peer_reset");
        journal_fields_set_id(&f, 0);
        ok(!journal_fields_get(&f, "TLSWATCH_ID", NULL) && f.n == n, "id 0 (a dropped record): absent again");

        a->id = 7;
        is_int(journal_fields_build(a, &g), 0, "build entry with an id");
        is_field(&g, "TLSWATCH_ID", "7");
}

int main(void) {
        test_modes();
        test_row_id();
        test_failure();
        test_success_v6();
        test_empty_raw();
        return tap_done();
}
