/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <mbedtls/error.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"

static void set_error(Attempt *a, int tls_error, const char *fmt, ...) _printf_(3, 4);
static void set_error(Attempt *a, int tls_error, const char *fmt, ...) {
        va_list ap;
        char *text = NULL;

        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        va_end(ap);
        free(a->error_text);
        a->error_text = text;
        a->tls_error = tls_error;
}

/* Mbed TLS's text for an error code, e.g. "SSL - The connection indicated an EOF" (mbedtls_strerror() is
 * in libmbedcrypto, which knows the TLS library's codes as well). */
static const char *tls_error_text(int ret, char *buf, size_t size) {
        mbedtls_strerror(ret, buf, size);
        return buf;
}

CloseKind outcome_close_kind(int tls_error) {
        switch (tls_error) {
        case 0: /* mbedtls_ssl_read(): EOF */
        case OUTCOME_ERR_SSL_CONN_EOF: return CLOSE_FIN;
        case OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY: return CLOSE_CLOSE_NOTIFY;
        case OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE: return CLOSE_ALERT;
        case OUTCOME_ERR_NET_CONN_RESET:
        case OUTCOME_ERR_NET_RECV_FAILED:
        case OUTCOME_ERR_NET_SEND_FAILED: return CLOSE_RESET;
        default: return CLOSE_SERVER;
        }
}

/* An abbreviated handshake: our Finished without a Certificate before it (TLS 1.2 session resumption,
 * TLS 1.3 PSK). Known as soon as we reach our Finished, so a failed resumption is marked too. */
static bool resumed(const HandshakeFacts *f) {
        return f->saw_server_finished && !f->saw_server_cert;
}

static void note_alert_sent(Attempt *a, const HandshakeFacts *f) {
        if (f->alert_sent_scanned >= 0)
                a->alert_sent = f->alert_sent_scanned;
        else if (f->alert_pending >= 0)
                a->alert_sent = f->alert_pending;
}

/* The client's first bytes are not a TLS handshake record (also when too few came to tell which method
 * of plain HTTP it might be, e.g. "GE" and then nothing). */
static bool capture_not_tls(const ClientHelloCapture *c) {
        return c->state == CAPTURE_NOT_TLS || (c->prefix_len > 0 && c->prefix[0] != TLS_CONTENT_HANDSHAKE);
}

static void set_not_tls(Attempt *a, const ClientHelloCapture *c, int ret) {
        a->outcome = OUTCOME_NOT_TLS;
        if (c->looks_like_http)
                set_error(a, ret, "plain HTTP request on the TLS port (answered with HTTP 400)");
        else
                set_error(a, ret, "first bytes are not a TLS handshake record");
}

/* The supported_groups of the captured ClientHello, "ffdhe2048,ffdhe3072" (GREASE left out), or NULL. */
static char *offered_groups(const ClientHelloCapture *c) {
        _cleanup_free_ char *s = NULL;
        ClientHello ch = {};
        size_t len = 0, size;

        if (!c->msg || clienthello_parse(c->msg, c->msg_len, &ch) < 0 || !ch.has_supported_groups)
                return NULL;
        size = ch.supported_groups.n * 24 + 1; /* the longest name, a comma and a NUL fit in 24 */
        s = malloc(size);
        if (!s)
                return NULL;
        for (size_t i = 0; i < ch.supported_groups.n; i++) {
                unsigned g = u16_list_get(&ch.supported_groups, i);
                const char *name = tls_group_to_string(g);
                char hex[8];

                if ((g & 0x0f0f) == 0x0a0a) /* GREASE */
                        continue;
                if (!name) {
                        (void) snprintf(hex, sizeof hex, "0x%04x", g);
                        name = hex;
                }
                len += (size_t) snprintf(s + len, size - len, "%s%s", len > 0 ? "," : "", name);
        }
        return len > 0 ? TAKE_PTR(s) : NULL;
}

void outcome_handshake_done(Attempt *a, const HandshakeFacts *f) {
        a->outcome = OUTCOME_OK;
        a->state_reached = STEP_DONE;
        a->resumed = resumed(f);
        a->hello_retry = f->saw_hrr;
        note_alert_sent(a, f);
}

CloseKind outcome_handshake_failed(Attempt *a, const HandshakeFacts *f) {
        const ClientHelloCapture *cap = f->capture;
        int ret = f->tls_error, alert;
        char buf[160];

        a->resumed = resumed(f);
        a->hello_retry = f->saw_hrr;
        note_alert_sent(a, f);

        alert = f->alert_read;
        if (alert < 0 && cap->scanner.alert_description >= 0 && cap->scanner.alert_level == 2)
                alert = cap->scanner.alert_description; /* plaintext alert Mbed TLS did not report */
        if (alert < 0 && ret == OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY)
                alert = 0;
        a->alert_received = alert;

        if (capture_not_tls(cap))
                set_not_tls(a, cap, ret);
        else if (
                f->local_fault || cap->state == CAPTURE_NO_MEMORY || ret == OUTCOME_ERR_SSL_ALLOC_FAILED ||
                ret == OUTCOME_ERR_SSL_INTERNAL_ERROR) {
                a->outcome = OUTCOME_SERVER_ERROR; /* our side failed, not the client */
                set_error(a, ret, "server error: %s", tls_error_text(ret, buf, sizeof buf));
        } else if (alert > 0) {
                a->outcome = OUTCOME_PEER_ALERT;
                set_error(a, ret, "client sent fatal alert %s(%d)", strna(tls_alert_to_string(alert)), alert);
        } else if (ret == OUTCOME_ERR_SSL_CONN_EOF || alert == 0) {
                a->outcome = cap->scanner.bytes == 0 ? OUTCOME_NO_DATA : OUTCOME_PEER_CLOSED;
                set_error(
                        a,
                        ret,
                        cap->scanner.bytes == 0 ? "connection closed without data"
                                                : "connection closed by the client");
        } else if (ret == OUTCOME_ERR_NET_CONN_RESET && cap->scanner.encrypted_alerts > 0) {
                /* e.g. Firefox on TLS 1.2 with False Start: its encrypted alert and RST arrive while we still
                 * write our Finished; the alert is in the bytes we drained but Mbed TLS never decrypts it. */
                a->outcome = OUTCOME_PEER_ALERT;
                set_error(a, ret, "client sent an encrypted alert, then reset the connection");
        } else if (ret == OUTCOME_ERR_NET_CONN_RESET || ret == OUTCOME_ERR_NET_RECV_FAILED || ret == OUTCOME_ERR_NET_SEND_FAILED) {
                a->outcome = cap->scanner.bytes == 0 ? OUTCOME_NO_DATA : OUTCOME_PEER_RESET;
                set_error(a, ret, "connection reset by the client");
        } else if (ret == OUTCOME_ERR_SSL_INVALID_RECORD && f->hello_seen && cap->header_split) {
                a->outcome = OUTCOME_TLS_ERROR;
                set_error(
                        a,
                        ret,
                        "ClientHello's handshake header is split across TLS records (legal, RFC 8446 5.1), "
                        "which Mbed TLS 3.6 cannot reassemble");
        } else if (ret == OUTCOME_ERR_SSL_HANDSHAKE_FAILURE && f->failed_in_hrr) {
                _cleanup_free_ char *groups = offered_groups(cap);

                a->outcome = OUTCOME_TLS_ERROR; /* Mbed TLS sends no alert here: it just closes */
                set_error(
                        a,
                        ret,
                        "no key-exchange group in common: the client offers %s",
                        groups ?: "none we know");
        } else if (cap->state == CAPTURE_MALFORMED) {
                a->outcome = OUTCOME_TLS_ERROR;
                set_error(a, ret, "ClientHello %s", strna(cap->reason));
        } else if (outcome_hello_too_large(cap)) {
                a->outcome = OUTCOME_TLS_ERROR;
                set_error(
                        a,
                        ret,
                        "ClientHello of %" PRIu32 " bytes is larger than Mbed TLS accepts (%d)",
                        cap->announced_len,
                        OUTCOME_MBEDTLS_IN_CONTENT_LEN);
        } else if (f->message_too_large > OUTCOME_MBEDTLS_IN_CONTENT_LEN) {
                a->outcome = OUTCOME_TLS_ERROR; /* e.g. the ClientHello after our HelloRetryRequest */
                set_error(
                        a,
                        ret,
                        "handshake message of %" PRIu32 " bytes is larger than Mbed TLS accepts (%d)",
                        f->message_too_large,
                        OUTCOME_MBEDTLS_IN_CONTENT_LEN);
        } else {
                const char *t = tls_error_text(ret, buf, sizeof buf);

                a->outcome = OUTCOME_TLS_ERROR;
                if (strncmp(t, "SSL - ", 6) == 0)
                        t += 6;
                set_error(a, ret, "%s", t);
        }
        return a->outcome == OUTCOME_PEER_ALERT ? CLOSE_ALERT : outcome_close_kind(ret);
}

CloseKind outcome_handshake_timed_out(Attempt *a, const HandshakeFacts *f) {
        const ClientHelloCapture *cap = f->capture;

        a->outcome = OUTCOME_TIMEOUT;
        a->resumed = resumed(f);
        a->hello_retry = f->saw_hrr;
        note_alert_sent(a, f);
        if (capture_not_tls(cap))
                set_not_tls(a, cap, 0);
        else if (f->drain_cut) {
                a->outcome = OUTCOME_SERVER_ERROR;
                set_error(a, 0, "server shut down before the handshake completed");
        } else
                set_error(
                        a,
                        0,
                        cap->scanner.bytes == 0 ? "client sent nothing within %" PRIi64 " s"
                                                : "handshake not completed within %" PRIi64 " s",
                        f->handshake_timeout_us / USEC_PER_SEC);
        return f->drain_cut ? CLOSE_SHUTDOWN : CLOSE_HANDSHAKE_TIMEOUT;
}

void outcome_handshake_aborted(Attempt *a, const char *reason) {
        a->outcome = OUTCOME_SERVER_ERROR;
        set_error(a, 0, "%s", reason);
}

#define ALERT_NO_RENEGOTIATION 100

/* The client asked to renegotiate, we refused, and it ended the connection (or sent an alert). */
static void renegotiation_refused(Attempt *a, const HttpEndFacts *f) {
        char then[64];

        a->alert_sent = ALERT_NO_RENEGOTIATION;
        if (f->tls_error == OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE) {
                a->alert_received = f->alert_read;
                (void) snprintf(
                        then,
                        sizeof then,
                        "closed with alert %s(%d)",
                        strna(tls_alert_to_string(f->alert_read)),
                        f->alert_read);
        } else
                (void) snprintf(
                        then, sizeof then, "closed the connection (%s)", close_kind_to_string(a->close_kind));
        if (f->requests == 0) /* it was served nothing: it gave up when we refused */
                switch (a->close_kind) {
                case CLOSE_ALERT: a->outcome = OUTCOME_PEER_ALERT; break;
                case CLOSE_RESET: a->outcome = OUTCOME_PEER_RESET; break;
                case CLOSE_FIN:
                case CLOSE_CLOSE_NOTIFY: a->outcome = OUTCOME_PEER_CLOSED; break;
                default: break;
                }
        set_error(
                a,
                f->tls_error,
                "the client asked to renegotiate the TLS session%s; renegotiation is disabled, "
                "so we refused (alert no_renegotiation(100)); the client then %s",
                f->requests == 0 ? " before any request" : "",
                then);
}

void outcome_http_ended(Attempt *a, const HttpEndFacts *f) {
        int64_t after = a->closed_us - a->ended_us;

        /* the client ended it after our refusal (not an error of Mbed TLS's, e.g. a bad MAC, that we
         * answered with an alert of our own) */
        if (f->renegotiation_refused && a->close_kind != CLOSE_SERVER) {
                renegotiation_refused(a, f);
                return;
        }
        if (f->tls_error == OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE) {
                int alert = f->alert_read;

                a->alert_received = alert;
                if (f->requests == 0) {
                        /* e.g. Firefox on TLS 1.2: it completes the handshake, then rejects our certificate. */
                        a->outcome = OUTCOME_PEER_ALERT;
                        set_error(
                                a,
                                f->tls_error,
                                "client sent fatal alert %s(%d) after the handshake, before any request",
                                strna(tls_alert_to_string(alert)),
                                alert);
                }
        } else if (
                f->requests == 0 && f->request_bytes == 0 && after <= REJECT_AFTER_HANDSHAKE_US &&
                (a->close_kind == CLOSE_FIN || a->close_kind == CLOSE_CLOSE_NOTIFY ||
                 a->close_kind == CLOSE_RESET) &&
                !f->served_elsewhere) {
                /* e.g. wget, git, lynx, w3m: they check the certificate after the handshake and hang up */
                a->outcome = a->close_kind == CLOSE_RESET ? OUTCOME_PEER_RESET : OUTCOME_PEER_CLOSED;
                set_error(
                        a,
                        f->tls_error,
                        "client closed the connection %" PRIi64 ".%" PRIi64 " ms after the handshake, "
                        "without a request (%s)",
                        after / USEC_PER_MSEC,
                        after % USEC_PER_MSEC / 100,
                        close_kind_to_string(a->close_kind));
        }
}
