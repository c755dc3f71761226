/* SPDX-License-Identifier: MIT */
#pragma once

/* The attempt record: one per accepted TCP connection, whatever happened on it. Its fields are the
 * columns of the SQLite table `attempts` and the TLSWATCH_* journal fields (see schema/README.md).
 * Strings are owned by the record and freed by attempt_free(). Client-chosen strings (sni, alpn_offered,
 * alpn, user_agent) are raw bytes, may hold anything including NUL, and so carry a length. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef enum Outcome {
        OUTCOME_OK,
        OUTCOME_PEER_ALERT,
        OUTCOME_PEER_RESET,
        OUTCOME_PEER_CLOSED,
        OUTCOME_NO_DATA,
        OUTCOME_TIMEOUT,
        OUTCOME_NOT_TLS,
        OUTCOME_TLS_ERROR,
        OUTCOME_SERVER_ERROR,
        _OUTCOME_MAX,
        _OUTCOME_INVALID = -EINVAL,
} Outcome;

/* Furthest handshake step reached, in order. */
typedef enum HandshakeStep {
        STEP_CONNECTED,     /* TCP accepted */
        STEP_CLIENT_HELLO,  /* a complete ClientHello was received */
        STEP_SERVER_FLIGHT, /* our flight (certificate, or Finished when resuming) was sent */
        STEP_CLIENT_FLIGHT, /* the client's answer to it was received */
        STEP_DONE,          /* handshake complete */
        _STEP_MAX,
        _STEP_INVALID = -EINVAL,
} HandshakeStep;

/* How the connection ended, whoever ended it. */
typedef enum CloseKind {
        CLOSE_UNKNOWN,           /* not recorded (rows written before tlswatch recorded it: NULL) */
        CLOSE_CLOSE_NOTIFY,      /* the client sent close_notify */
        CLOSE_FIN,               /* the client closed its side (FIN) without close_notify */
        CLOSE_RESET,             /* the client reset the connection (RST) */
        CLOSE_ALERT,             /* the client sent a fatal alert */
        CLOSE_SERVER,            /* we closed: after our answer, our alert, or an error of ours */
        CLOSE_IDLE_TIMEOUT,      /* we closed a connection that was idle after the handshake */
        CLOSE_HANDSHAKE_TIMEOUT, /* we closed a handshake that did not complete in time */
        CLOSE_SHUTDOWN,          /* we closed it because the server stopped */
        _CLOSE_KIND_MAX,
        _CLOSE_KIND_INVALID = -EINVAL,
} CloseKind;

/* A byte string chosen by the client, kept exactly as received. data is NUL-terminated for
 * convenience, but may contain NUL bytes: always use len. data == NULL means "absent" (SQL NULL). */
typedef struct RawString {
        char *data;
        size_t len;
} RawString;

/* A numeric address, no brackets, IPv4-mapped shown as IPv4. */
typedef char AttemptAddr[46];

#include "attempt-columns.h"

/* Its fields are the columns, named and typed as attempt-columns.h lists them:
 *   id: 0 until stored; started_us, ended_us; peer_addr, peer_port, local_addr, local_port;
 *   outcome, state_reached (the furthest step); alert_received, alert_sent: the TLS alert description, -1
 *   if none; tls_error: the Mbed TLS return code, 0 (stored as NULL) on success; error_text;
 *   offered_versions: "TLSv1.3,TLSv1.2", GREASE removed, client order; version, cipher: negotiated, NULL if
 *   not reached; sni, alpn_offered, alpn (raw); ja3, ja3_full, ja4, ja4_r, ja4_o, ja4_ro; ja4_stable: the
 *   grouping key's fingerprint part (fingerprint.h); hello_retry, resumed; bytes_in, bytes_out;
 *   http_requests; user_agent (raw); closed_us: when the connection ended, 0 (NULL) if not known;
 *   close_kind: how it ended; backend_error: why the connection could not be forwarded (--backend), NULL
 *   when it was or without a backend. What the client did wrong (--backend-protocol http) starts with
 *   BACKEND_ERROR_REFUSED_PREFIX ("request refused (400): ...") or BACKEND_ERROR_CLIENT_PREFIX ("the client
 *   closed the connection within a request's body"); the backend's failures and ours start otherwise
 *   (backend_error_is_client()). */
#define BACKEND_ERROR_REFUSED_PREFIX "request refused ("
#define BACKEND_ERROR_CLIENT_PREFIX "the client "
typedef struct Attempt {
#define ATTEMPT_FIELD_(name, NAME, type, kind, flags, absent) ATTEMPT_CTYPE_##kind name;
        ATTEMPT_COLUMNS(ATTEMPT_FIELD_)
#undef ATTEMPT_FIELD_
} Attempt;

typedef enum AttemptValue {
        ATTEMPT_VALUE_NULL,
        ATTEMPT_VALUE_INT,
        ATTEMPT_VALUE_TEXT,
} AttemptValue;

/* A column's value, as every writer (the INSERT, the journal, JSON, CSV) wants it: NULL, an integer in
 * *ret_v (uint64_t as is: the INSERT clamps), or bytes in *ret_p, *ret_len (an enum's name). Inline: it runs
 * for every column of every record written or shown. */
static inline AttemptValue attempt_column_value(
        const Attempt *a, const AttemptColumn *c, int64_t *ret_v, const char **ret_p, size_t *ret_len) {
        const char *field = (const char *) a + c->offset;

        switch (c->kind) {
        case ATTEMPT_KIND_ADDR:
                *ret_p = field;
                *ret_len = strnlen(field, sizeof(AttemptAddr));
                return ATTEMPT_VALUE_TEXT;
        case ATTEMPT_KIND_TEXT:
                *ret_p = *(char *const *) field;
                if (!*ret_p)
                        return ATTEMPT_VALUE_NULL;
                *ret_len = strlen(*ret_p);
                return ATTEMPT_VALUE_TEXT;
        case ATTEMPT_KIND_RAW:
                *ret_p = ((const RawString *) field)->data;
                *ret_len = ((const RawString *) field)->len;
                return *ret_p ? ATTEMPT_VALUE_TEXT : ATTEMPT_VALUE_NULL;
        case ATTEMPT_KIND_OUTCOME:
        case ATTEMPT_KIND_STEP:
        case ATTEMPT_KIND_CLOSE_KIND:
                *ret_p = attempt_column_enum_name(c, *(const int *) field);
                if (!*ret_p)
                        return ATTEMPT_VALUE_NULL;
                *ret_len = strlen(*ret_p);
                return ATTEMPT_VALUE_TEXT;
        case ATTEMPT_KIND_INT64: *ret_v = *(const int64_t *) field; break;
        case ATTEMPT_KIND_INT: *ret_v = *(const int *) field; break;
        case ATTEMPT_KIND_UINT16: *ret_v = *(const uint16_t *) field; break;
        case ATTEMPT_KIND_UINT: *ret_v = *(const unsigned *) field; break;
        case ATTEMPT_KIND_UINT64: *ret_v = (int64_t) * (const uint64_t *) field; break;
        case ATTEMPT_KIND_BOOL: *ret_v = *(const bool *) field; break;
        default: return ATTEMPT_VALUE_NULL;
        }
        /* NULL: the absent value; with a negative absent value (the alerts' -1), any negative one; a row
         * id that SQLite has not assigned (0 or less) */
        return (c->flags & ATTEMPT_NULLABLE) &&
                        (*ret_v == c->absent || (c->absent < 0 && *ret_v < 0) ||
                         ((c->flags & ATTEMPT_ROWID) && *ret_v <= 0))
                ? ATTEMPT_VALUE_NULL
                : ATTEMPT_VALUE_INT;
}

Attempt *attempt_new(void);
Attempt *attempt_free(Attempt *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Attempt *, attempt_free);

/* A deep copy. Returns 0 or -ENOMEM. */
int attempt_dup(const Attempt *a, Attempt **ret);
/* A deep copy of the ATTEMPT_GROUPING columns only (what the sequencer reads); every other column holds its
 * absent value (no port, no User-Agent, no JA3, no error text). Returns 0 or -ENOMEM. */
int attempt_dup_grouping(const Attempt *a, Attempt **ret);

/* Stores a copy of len bytes of data (NULL data clears it). Returns 0 or -ENOMEM. */
int raw_string_set(RawString *s, const void *data, size_t len);
void raw_string_clear(RawString *s);

const char *outcome_to_string(Outcome o) _pure_;
Outcome outcome_from_string(const char *s) _pure_;
const char *handshake_step_to_string(HandshakeStep s) _pure_;
/* "close_notify", "fin", ...; NULL for CLOSE_UNKNOWN (stored as NULL) */
const char *close_kind_to_string(CloseKind k) _pure_;
CloseKind close_kind_from_string(const char *s) _pure_;
/* "x25519", "ffdhe2048", ... (IANA TLS Supported Groups); NULL for a number it does not name. */
const char *tls_group_to_string(unsigned group) _pure_;
HandshakeStep handshake_step_from_string(const char *s) _pure_;

/* "certificate_unknown" for 46; NULL for a number that names no alert. */
const char *tls_alert_to_string(int alert) _pure_;

/* Whether this outcome is a failed handshake attempt (everything but OUTCOME_OK). */
static inline bool outcome_is_failure(Outcome o) {
        return o != OUTCOME_OK;
}

/* Whether a backend_error says what the client did wrong (a refused request, a request cut short), rather
 * than what the backend or this server failed to do. */
static inline bool backend_error_is_client(const char *e) {
        return e &&
                (strncmp(e, BACKEND_ERROR_REFUSED_PREFIX, strlen(BACKEND_ERROR_REFUSED_PREFIX)) == 0 ||
                 strncmp(e, BACKEND_ERROR_CLIENT_PREFIX, strlen(BACKEND_ERROR_CLIENT_PREFIX)) == 0);
}

/* Formats an address as the record wants it: numeric, no brackets, IPv4-mapped IPv6 as IPv4.
 * sa is a struct sockaddr_in or sockaddr_in6. */
struct sockaddr;
int sockaddr_to_attempt_addr(const struct sockaddr *sa, char ret_addr[static 46], uint16_t *ret_port);

/* Microseconds since the epoch, CLOCK_REALTIME. */
int64_t now_realtime_us(void);
