/* SPDX-License-Identifier: MIT */
#pragma once

/* Sans-I/O: how an attempt ended, as its record says it (outcome, alert_received, alert_sent, tls_error,
 * error_text, resumed, hello_retry, and the close_kind to note), decided from the facts the connection
 * gathered: the error code Mbed TLS returned, the alerts Mbed TLS or the record scanners saw, what the
 * ClientHello capture holds, which handshake messages we wrote, the times. daemon/server/conn.c gathers
 * them and calls these functions; it keeps the timestamps (ended_us, closed_us) and state_reached. See
 * tlswatchd(8), "THE ATTEMPT RECORD". */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attempt.h"
#include "clienthello.h"

/* The Mbed TLS 3.6 error codes the classification tells apart. The core does not link Mbed TLS's TLS
 * library; daemon/server/conn.c checks at compile time that these equal Mbed TLS's MBEDTLS_ERR_*. */
#define OUTCOME_ERR_NET_RECV_FAILED (-0x004C)
#define OUTCOME_ERR_NET_SEND_FAILED (-0x004E)
#define OUTCOME_ERR_NET_CONN_RESET (-0x0050)
#define OUTCOME_ERR_SSL_INVALID_MAC (-0x7180)
#define OUTCOME_ERR_SSL_INVALID_RECORD (-0x7200)
#define OUTCOME_ERR_SSL_CONN_EOF (-0x7280)
#define OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE (-0x7780)
#define OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY (-0x7880)
#define OUTCOME_ERR_SSL_ALLOC_FAILED (-0x7F00)
#define OUTCOME_ERR_SSL_BAD_PROTOCOL_VERSION (-0x6E80)
#define OUTCOME_ERR_SSL_HANDSHAKE_FAILURE (-0x6E00)
#define OUTCOME_ERR_SSL_INTERNAL_ERROR (-0x6C00)
#define OUTCOME_ERR_SSL_BUFFER_TOO_SMALL (-0x6A00) /* conn.c: a handshake message too large */
/* MBEDTLS_SSL_IN_CONTENT_LEN: the largest handshake message Mbed TLS accepts (checked in conn.c too). */
#define OUTCOME_MBEDTLS_IN_CONTENT_LEN 16384

/* Whether the ClientHello's handshake header, as far as the capture has it, announces more than Mbed TLS
 * accepts (a body of more than OUTCOME_MBEDTLS_IN_CONTENT_LEN bytes; more than CLIENTHELLO_CAPTURE_MAX is
 * CAPTURE_TOO_BIG). Mbed TLS would wait for the whole message before it fails, so a client announcing
 * 16 MB and sending one record would hold its connection until the handshake timeout: conn.c refuses it
 * as soon as the header is in, and outcome_handshake_failed() records it as a tls_error with the
 * announced length. */
static inline bool outcome_hello_too_large(const ClientHelloCapture *c) {
        return c->state == CAPTURE_TOO_BIG ||
                (c->state == CAPTURE_NEED_MORE && c->hs_header_len == TLS_HANDSHAKE_HEADER_SIZE &&
                 c->announced_len > OUTCOME_MBEDTLS_IN_CONTENT_LEN);
}

/* A client that completes the handshake and closes within this time without sending a request has
 * rejected the connection after the handshake (it checks the certificate only then: GnuTLS-based tools
 * and w3m hang up 0-4 ms after it), unless another connection of the same client (address and stable JA4)
 * served requests while this one was open: then it was a spare one, like a browser's unused preconnect
 * (measured: Chromium and Firefox close theirs 0.3-1 s after the handshake when they exit right after a
 * page, else they keep them for seconds). See tlswatchd(8), "Rejected after the handshake". */
#define REJECT_AFTER_HANDSHAKE_US (1 * USEC_PER_SEC)

/* What the connection knows when its handshake ends, whichever way. */
typedef struct HandshakeFacts {
        int tls_error;                     /* what the failing handshake step returned; 0 if none failed */
        int alert_read;                    /* the fatal alert Mbed TLS read for tls_error, -1 if none */
        int alert_sent_scanned;            /* the last plaintext alert in our output, -1 if none */
        int alert_pending;                 /* Mbed TLS's queued (pending) alert, -1 if none or no TLS yet */
        const ClientHelloCapture *capture; /* the inbound stream: its scanner, first bytes and ClientHello */
        bool hello_seen;                   /* a complete ClientHello was captured */
        bool failed_in_hrr;   /* the step that failed was the one writing our HelloRetryRequest */
        bool local_fault;     /* a socket error that is ours (out of memory or buffers), not the peer's */
        bool saw_server_cert; /* we reached the step writing our Certificate */
        bool saw_server_finished;   /* we reached the step writing our Finished */
        bool saw_hrr;               /* we wrote a HelloRetryRequest */
        uint32_t message_too_large; /* a later handshake message announced this many bytes, too many */
        /* for outcome_handshake_timed_out() only */
        int64_t handshake_timeout_us; /* --handshake-timeout */
        bool drain_cut;               /* the server is shutting down and cut the handshake time short */
} HandshakeFacts;

/* What the connection knows when the client ends it (or sends an alert) after the handshake. */
typedef struct HttpEndFacts {
        int tls_error;         /* what mbedtls_ssl_read() returned: 0 for EOF, or an error */
        int alert_read;        /* the fatal alert Mbed TLS read for tls_error, -1 if none */
        unsigned requests;     /* requests received on the connection */
        size_t request_bytes;  /* bytes of a next request received and not answered */
        bool served_elsewhere; /* another connection of the client served requests while this one was open */
        /* The client sent a handshake record after the handshake (in TLS 1.2 only a ClientHello asking to
         * renegotiate is one) and we answered with an alert: Mbed TLS refuses renegotiation, which is
         * disabled, with a warning no_renegotiation(100); the client then usually ends with a fatal
         * handshake_failure(40), which is not a rejection of our certificate. */
        bool renegotiation_refused;
} HttpEndFacts;

/* How the client ended the connection, from the error Mbed TLS or the BIO returned (0: EOF). */
CloseKind outcome_close_kind(int tls_error) _pure_;

/* The handshake completed: ok, done, resumed, hello_retry, alert_sent. */
void outcome_handshake_done(Attempt *a, const HandshakeFacts *f);

/* A handshake step failed with f->tls_error: sets outcome, alert_received, alert_sent, tls_error,
 * error_text, resumed and hello_retry. Returns how the connection ended, for the caller to note. */
CloseKind outcome_handshake_failed(Attempt *a, const HandshakeFacts *f);

/* The handshake did not complete within its time (f->handshake_timeout_us, or less when f->drain_cut).
 * Sets outcome, alert_sent, tls_error (0), error_text, resumed and hello_retry; returns how the
 * connection ended. */
CloseKind outcome_handshake_timed_out(Attempt *a, const HandshakeFacts *f);

/* We end the connection during the handshake for a reason of ours (out of memory, event loop error,
 * shutdown): server_error with reason as error_text. */
void outcome_handshake_aborted(Attempt *a, const char *reason);

/* The client ended the connection after the handshake, or sent an alert; a->close_kind, closed_us and
 * ended_us must be set already. Sets alert_received for an alert; and, before any request, the outcome
 * for a client that rejected us after the handshake (an alert, or a close within
 * REJECT_AFTER_HANDSHAKE_US unless f->served_elsewhere). After a refused renegotiation: alert_sent
 * no_renegotiation(100) and an error_text that says so; before any request, the outcome of how the
 * client then ended (peer_alert, peer_closed or peer_reset), whenever it did. */
void outcome_http_ended(Attempt *a, const HttpEndFacts *f);
