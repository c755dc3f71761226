/* SPDX-License-Identifier: MIT */
#include "evidence.h"

/* Mbed TLS's codes, as stored in tls_error (the record keeps the raw code; no Mbed TLS header here). */
#define TLS_ERR_HANDSHAKE_FAILURE (-0x6E00)    /* no cipher suite / group / signature in common */
#define TLS_ERR_INVALID_RECORD (-0x7200)       /* also: a ClientHello whose header spans records */
#define TLS_ERR_BAD_PROTOCOL_VERSION (-0x6E80) /* no version in common; Mbed TLS sends no alert then */
#define ALERT_NO_RENEGOTIATION 100             /* what Mbed TLS answers a renegotiation request with */

static const char *const evidence_table[_EVIDENCE_MAX] = {
        [EVIDENCE_OK] = "ok",
        [EVIDENCE_CERT_ALERT] = "cert_alert",
        [EVIDENCE_CLOSED_AFTER_FLIGHT] = "closed_after_flight",
        [EVIDENCE_CLOSED_AFTER_HANDSHAKE] = "closed_after_handshake",
        [EVIDENCE_VERSION] = "version",
        [EVIDENCE_NO_SHARED] = "no_shared",
        [EVIDENCE_FRAGMENTED_HELLO] = "fragmented_hello",
        [EVIDENCE_PLAIN_HTTP] = "plain_http",
        [EVIDENCE_NOT_TLS] = "not_tls",
        [EVIDENCE_NO_DATA] = "no_data",
        [EVIDENCE_IDLE] = "idle",
        [EVIDENCE_STALLED] = "stalled",
        [EVIDENCE_BROKE_OFF] = "broke_off",
        [EVIDENCE_OTHER_ALERT] = "other_alert",
        [EVIDENCE_SERVER] = "server",
        [EVIDENCE_OTHER] = "other",
        [EVIDENCE_RENEGOTIATION] = "renegotiation",
};

const char *evidence_to_string(Evidence e) {
        return e >= 0 && e < _EVIDENCE_MAX ? evidence_table[e] : NULL;
}

Evidence attempt_evidence(const Attempt *a) {
        switch (a->outcome) {
        case OUTCOME_OK: return EVIDENCE_OK;
        case OUTCOME_NOT_TLS: return a->bytes_out > 0 ? EVIDENCE_PLAIN_HTTP : EVIDENCE_NOT_TLS;
        case OUTCOME_NO_DATA: return EVIDENCE_NO_DATA;
        case OUTCOME_TIMEOUT: return a->bytes_in == 0 ? EVIDENCE_IDLE : EVIDENCE_STALLED;
        case OUTCOME_SERVER_ERROR: return EVIDENCE_SERVER;
        default: break;
        }
        /* whatever the client then did (alert 40, a close right after): not a rejection of our certificate */
        if (a->alert_sent == ALERT_NO_RENEGOTIATION && a->state_reached == STEP_DONE)
                return EVIDENCE_RENEGOTIATION;
        if (a->alert_received == 70 || a->alert_sent == 70 ||
            (a->outcome == OUTCOME_TLS_ERROR && a->tls_error == TLS_ERR_BAD_PROTOCOL_VERSION))
                return EVIDENCE_VERSION;
        /* Mbed TLS answers "nothing in common" with handshake_failure (40), or, TLS 1.3 with no group in
         * common, closes without an alert; insufficient_security (71) means the same from either side. */
        if ((a->outcome == OUTCOME_TLS_ERROR &&
             (a->alert_sent == 40 || a->tls_error == TLS_ERR_HANDSHAKE_FAILURE)) ||
            a->alert_sent == 71 || (a->outcome == OUTCOME_PEER_ALERT && a->alert_received == 71))
                return EVIDENCE_NO_SHARED;
        if (a->outcome == OUTCOME_TLS_ERROR && a->tls_error == TLS_ERR_INVALID_RECORD && a->ja4_stable &&
            a->state_reached == STEP_CLIENT_HELLO)
                return EVIDENCE_FRAGMENTED_HELLO; /* a whole hello, parsed by us, refused by Mbed TLS */
        if (alert_is_certificate(a->alert_received))
                return EVIDENCE_CERT_ALERT;
        if (a->outcome == OUTCOME_PEER_RESET || a->outcome == OUTCOME_PEER_CLOSED) {
                if (a->state_reached == STEP_DONE)
                        return EVIDENCE_CLOSED_AFTER_HANDSHAKE;
                if (a->state_reached >= STEP_SERVER_FLIGHT)
                        return EVIDENCE_CLOSED_AFTER_FLIGHT;
                return EVIDENCE_BROKE_OFF;
        }
        if (a->outcome == OUTCOME_PEER_ALERT)
                return EVIDENCE_OTHER_ALERT;
        return EVIDENCE_OTHER;
}
