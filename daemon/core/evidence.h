/* SPDX-License-Identifier: MIT */
#pragma once

/* What one attempt shows, as one of a closed set of kinds: the facts a diagnosis is built from. Pure: it
 * reads only the record (outcome, state_reached, alerts, tls_error, how and when the connection closed,
 * byte counts), so the daemon's page and tlsreport classify the same row the same way, also a row read
 * back from the database or a journal. */

#include "attempt.h"

typedef enum Evidence {
        EVIDENCE_OK,                     /* the handshake completed (the connection used or not) */
        EVIDENCE_CERT_ALERT,             /* the client sent a certificate alert (42-46, 48) */
        EVIDENCE_CLOSED_AFTER_FLIGHT,    /* it closed or reset right after our flight, without an alert */
        EVIDENCE_CLOSED_AFTER_HANDSHAKE, /* it completed the handshake, then hung up at once, no request */
        EVIDENCE_VERSION,                /* protocol_version, either way */
        EVIDENCE_NO_SHARED,              /* nothing in common: cipher suite, group or signature algorithm */
        EVIDENCE_FRAGMENTED_HELLO,       /* a ClientHello header split across records: Mbed TLS 3.6 fails */
        EVIDENCE_PLAIN_HTTP,             /* plain HTTP on the TLS port (we answered 400) */
        EVIDENCE_NOT_TLS,                /* other bytes that are not TLS */
        EVIDENCE_NO_DATA,                /* closed without sending a byte (port check, unused preconnect) */
        EVIDENCE_IDLE,                   /* sent nothing until our handshake timeout */
        EVIDENCE_STALLED,                /* started the handshake, did not finish it in time */
        EVIDENCE_BROKE_OFF,              /* reset or closed before our flight, after sending something */
        EVIDENCE_OTHER_ALERT,            /* another fatal alert from the client */
        EVIDENCE_SERVER,                 /* our side: limits, memory, shutdown */
        EVIDENCE_OTHER,                  /* a TLS error of another kind */
        EVIDENCE_RENEGOTIATION, /* it asked to renegotiate, we refused (no_renegotiation), it gave up */
        _EVIDENCE_MAX,
        _EVIDENCE_INVALID = -EINVAL,
} Evidence;

Evidence attempt_evidence(const Attempt *a) _pure_;
const char *evidence_to_string(Evidence e) _pure_;

/* Whether the evidence says that the client rejected our certificate (alert, or a close right after our
 * flight or right after the handshake). */
static inline bool evidence_is_cert_rejection(Evidence e) {
        return e == EVIDENCE_CERT_ALERT || e == EVIDENCE_CLOSED_AFTER_FLIGHT ||
                e == EVIDENCE_CLOSED_AFTER_HANDSHAKE;
}

/* A certificate alert: bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired,
 * certificate_unknown, unknown_ca. */
static inline bool alert_is_certificate(int alert) {
        return (alert >= 42 && alert <= 46) || alert == 48;
}
