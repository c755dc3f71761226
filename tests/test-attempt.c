/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "attempt.h"
#include "tap.h"

static void test_enums(void) {
        for (int i = 0; i < _OUTCOME_MAX; i++)
                is_int(outcome_from_string(outcome_to_string(i)),
                       i,
                       "outcome %s round-trips",
                       outcome_to_string(i));
        for (int i = 0; i < _STEP_MAX; i++)
                is_int(handshake_step_from_string(handshake_step_to_string(i)),
                       i,
                       "step %s round-trips",
                       handshake_step_to_string(i));
        is_int(outcome_from_string("nonsense"), _OUTCOME_INVALID, "unknown outcome is refused");
        is_int(outcome_from_string(NULL), _OUTCOME_INVALID, "NULL outcome is refused");
        ok(outcome_to_string(_OUTCOME_MAX) == NULL, "out-of-range outcome has no name");
        is_str(tls_alert_to_string(46), "certificate_unknown", "alert 46");
        is_str(tls_alert_to_string(70), "protocol_version", "alert 70");
        ok(tls_alert_to_string(7) == NULL, "alert 7 has no name");
}

static void test_addr(void) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(8443)};
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(443)};
        char addr[46];
        uint16_t port;

        inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr);
        is_int(sockaddr_to_attempt_addr((struct sockaddr *) &in6, addr, &port), 0, "mapped v6 formats");
        is_str(addr, "192.0.2.7", "IPv4-mapped IPv6 is shown as IPv4");
        is_int(port, 8443, "port of mapped address");
        inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
        sockaddr_to_attempt_addr((struct sockaddr *) &in6, addr, &port);
        is_str(addr, "2001:db8::1", "IPv6 without brackets");
        inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
        sockaddr_to_attempt_addr((struct sockaddr *) &in, addr, &port);
        is_str(addr, "127.0.0.1", "IPv4");
        is_int(port, 443, "IPv4 port");
}

static void test_raw_string(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();

        ok(a != NULL, "attempt_new");
        is_int(a->alert_received, -1, "no alert received by default");
        is_int(raw_string_set(&a->sni, "a\0b", 3), 0, "raw string with NUL");
        is_int(a->sni.len, 3, "length kept");
        ok(memcmp(a->sni.data, "a\0b", 4) == 0, "bytes kept, NUL-terminated");
        is_int(raw_string_set(&a->sni, NULL, 5), 0, "clear");
        ok(a->sni.data == NULL && a->sni.len == 0, "cleared is absent");
        is_int(raw_string_set(&a->alpn, "", 0), 0, "empty string");
        ok(a->alpn.data && a->alpn.len == 0, "empty is present, not absent");
}

static void test_dup(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new(), *c = NULL;

        a->started_us = 123;
        a->peer_port = 4433;
        snprintf(a->peer_addr, sizeof a->peer_addr, "192.0.2.9");
        a->outcome = OUTCOME_PEER_ALERT;
        a->alert_received = 46;
        a->error_text = strdup("client sent alert");
        a->ja4 = strdup("t13d1516h2_8daaf6152771_cb7bf5808d99");
        raw_string_set(&a->sni, "x\0y", 3);
        raw_string_set(&a->user_agent, "UA", 2);
        is_int(attempt_dup(a, &c), 0, "attempt_dup");
        is_int(c->started_us, 123, "numbers copied");
        is_str(c->peer_addr, "192.0.2.9", "address copied");
        is_int(c->alert_received, 46, "alert copied");
        is_str(c->ja4, a->ja4, "string copied");
        ok(c->ja4 != a->ja4 && c->error_text != a->error_text && c->sni.data != a->sni.data, "not shared");
        ok(c->sni.len == 3 && memcmp(c->sni.data, "x\0y", 3) == 0, "raw string with NUL copied");
        ok(c->cipher == NULL && c->alpn.data == NULL, "absent stays absent");
        free(a->ja4);
        a->ja4 = NULL;
        is_str(c->ja4, "t13d1516h2_8daaf6152771_cb7bf5808d99", "the copy is independent");
}

/* Which values are NULL in the database, the journal, JSON and CSV: as before the column list, any negative
 * alert (not only -1), an unassigned id, tls_error 0. */
static void test_null(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();
        const AttemptColumn *alert = &attempt_columns[ATTEMPT_COLUMN_alert_received],
                            *id = &attempt_columns[ATTEMPT_COLUMN_id],
                            *tls_error = &attempt_columns[ATTEMPT_COLUMN_tls_error];

        if (!a)
                return (void) ok(false, "attempt_new");
        ok(attempt_column_is_null(a, alert) && attempt_column_is_null(a, id) &&
                   attempt_column_is_null(a, tls_error),
           "a new attempt: no alert, no id, no error");
        a->alert_received = -5;
        a->id = -3;
        ok(attempt_column_is_null(a, alert) && attempt_column_is_null(a, id), "alert -5 and id -3 are NULL");
        a->alert_received = 0;
        a->id = 7;
        a->tls_error = -30592;
        ok(!attempt_column_is_null(a, alert) && !attempt_column_is_null(a, id) &&
                   !attempt_column_is_null(a, tls_error),
           "alert 0 (close_notify), id 7 and a TLS error are values");
}

int main(void) {
        test_enums();
        test_addr();
        test_raw_string();
        test_dup();
        test_null();
        return tap_done();
}
