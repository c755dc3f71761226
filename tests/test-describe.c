/* SPDX-License-Identifier: MIT */
#include "attempt.h"
#include "describe.h"
#include "tap.h"

static Attempt *make(Outcome outcome, HandshakeStep step) {
        Attempt *a = attempt_new();

        if (!a) {
                printf("Bail out! out of memory\n");
                exit(1);
        }
        a->outcome = outcome;
        a->state_reached = step;
        return a;
}

static void check(const Attempt *a, const char *want, const char *name) {
        _cleanup_free_ char *s = attempt_describe(a);

        is_str(s, want, "%s", name);
}

static void test_ok(void) {
        _cleanup_(attempt_freep) Attempt *a = make(OUTCOME_OK, STEP_DONE);

        check(a, "handshake complete", "ok without details");
        a->version = strdup("TLSv1.3");
        a->cipher = strdup("TLS1-3-AES-256-GCM-SHA384");
        a->resumed = true;
        check(a, "handshake complete (TLSv1.3, TLS1-3-AES-256-GCM-SHA384, resumed)", "ok resumed");
        a->resumed = false;
        a->hello_retry = true;
        raw_string_set(&a->alpn, "h2", 2);
        check(a,
              "handshake complete (TLSv1.3, TLS1-3-AES-256-GCM-SHA384, ALPN h2, after HelloRetryRequest)",
              "ok with ALPN and HRR");
        raw_string_set(&a->alpn, "h\x1b[2J\n", 6);
        check(a,
              "handshake complete (TLSv1.3, TLS1-3-AES-256-GCM-SHA384, ALPN h\\x1b[2J\\x0a, after "
              "HelloRetryRequest)",
              "hostile ALPN is escaped");
}

static void test_renegotiation(void) {
        _cleanup_(attempt_freep) Attempt *a = make(OUTCOME_PEER_ALERT, STEP_DONE);

        a->alert_received = 40;
        a->alert_sent = 100;
        check(a,
              "the client asked to renegotiate after the handshake and we refused (renegotiation is "
              "disabled; we "
              "sent alert no_renegotiation(100)); then it sent alert handshake_failure(40)",
              "refused renegotiation, then alert 40");
        a->outcome = OUTCOME_PEER_CLOSED;
        a->alert_received = -1;
        check(a,
              "the client asked to renegotiate after the handshake and we refused (renegotiation is "
              "disabled; we "
              "sent alert no_renegotiation(100)); then it closed the connection",
              "refused renegotiation, then FIN");
}

static void test_client_side(void) {
        _cleanup_(attempt_freep) Attempt *a = make(OUTCOME_PEER_ALERT, STEP_SERVER_FLIGHT);

        a->alert_received = 46;
        check(a, "client sent alert certificate_unknown(46) after our certificate", "Chromium's rejection");
        a->alert_received = 48;
        a->alert_sent = 20;
        check(a,
              "client sent alert unknown_ca(48) after our certificate; we sent alert bad_record_mac(20)",
              "OpenSSL's plaintext alert, our answer");
        a->alert_sent = -1;
        a->alert_received = 200;
        check(a, "client sent alert alert(200) after our certificate", "unnamed alert number");
        a->alert_received = -1;
        a->state_reached = STEP_CLIENT_HELLO;
        check(a,
              "client sent a fatal alert after its ClientHello, before our certificate",
              "alert without number");

        a->outcome = OUTCOME_PEER_RESET;
        a->state_reached = STEP_SERVER_FLIGHT;
        check(a, "client reset the connection after our certificate", "reset after certificate");
        a->alert_received = 46;
        check(a,
              "client reset the connection after our certificate; client sent alert certificate_unknown(46)",
              "reset with a drained alert");
        a->alert_received = -1;
        a->state_reached = STEP_CONNECTED;
        check(a, "client reset the connection before sending any data", "reset before data");
        a->resumed = true;
        a->state_reached = STEP_SERVER_FLIGHT;
        check(a, "client reset the connection after our Finished", "reset after abbreviated flight");
        a->resumed = false;

        a->outcome = OUTCOME_PEER_CLOSED;
        a->state_reached = STEP_CONNECTED;
        a->bytes_in = 100;
        check(a, "client closed the connection in the middle of its ClientHello", "half a hello, then FIN");
        a->state_reached = STEP_CLIENT_FLIGHT;
        check(a, "client closed the connection at the end of the handshake", "FIN after client flight");
        a->state_reached = STEP_DONE;
        check(a, "client closed the connection after the handshake completed", "FIN after done");

        a->outcome = OUTCOME_NO_DATA;
        a->state_reached = STEP_CONNECTED;
        a->bytes_in = 0;
        check(a, "connection closed without sending any data", "no data");
}

static void test_timeout(void) {
        _cleanup_(attempt_freep) Attempt *a = make(OUTCOME_TIMEOUT, STEP_CONNECTED);

        check(a, "handshake timed out waiting for the ClientHello", "stalled before hello");
        a->bytes_in = 10;
        check(a, "handshake timed out waiting for the rest of the ClientHello", "stalled mid hello");
        a->state_reached = STEP_CLIENT_HELLO;
        check(a, "handshake timed out while sending our certificate", "stalled while we send");
        a->state_reached = STEP_SERVER_FLIGHT;
        check(a,
              "handshake timed out waiting for the client's answer to our certificate",
              "stalled after flight");
}

static void test_ours(void) {
        _cleanup_(attempt_freep) Attempt *a = make(OUTCOME_TLS_ERROR, STEP_CLIENT_HELLO);

        a->alert_sent = 70;
        a->offered_versions = strdup("TLSv1.0");
        a->tls_error = -0x6E80;
        check(a,
              "no TLS version in common: client offers only TLSv1.0; we sent alert protocol_version(70)",
              "TLS 1.0 only client");
        free(a->offered_versions);
        a->offered_versions = strdup("TLSv1.1,TLSv1.0");
        check(a,
              "no TLS version in common: client offers TLSv1.1, TLSv1.0; we sent alert protocol_version(70)",
              "TLS 1.1/1.0 client");
        free(a->offered_versions);
        a->offered_versions = NULL;
        check(a, "no TLS version in common; we sent alert protocol_version(70)", "versions unknown");

        a->alert_sent = 40;
        a->tls_error = -0x6E00;
        check(a,
              "no usable cipher suite in common; we sent alert handshake_failure(40)",
              "no shared cipher suite");

        a->alert_sent = -1;
        a->tls_error = -0x7200;
        a->state_reached = STEP_CONNECTED;
        a->bytes_in = 20;
        check(a,
              "we aborted the handshake: Mbed TLS error -0x7200 in the middle of its ClientHello",
              "malformed hello without text");
        a->error_text = strdup("malformed\tClientHello");
        check(a,
              "we aborted the handshake: malformed\\x09ClientHello (-0x7200) in the middle of its "
              "ClientHello",
              "error text is escaped");

        a->outcome = OUTCOME_NOT_TLS;
        free(a->error_text);
        a->error_text = strdup("plain HTTP request");
        check(a, "plain HTTP sent to the TLS port", "plain HTTP");
        free(a->error_text);
        a->error_text = strdup("first byte 0x00");
        check(a, "the client sent something that is not TLS (first byte 0x00)", "other garbage");

        a->outcome = OUTCOME_SERVER_ERROR;
        free(a->error_text);
        a->error_text = strdup("connection limit reached");
        a->tls_error = 0;
        check(a, "server-side failure: connection limit reached", "server error");
}

int main(void) {
        test_ok();
        test_client_side();
        test_renegotiation();
        test_timeout();
        test_ours();
        return tap_done();
}
