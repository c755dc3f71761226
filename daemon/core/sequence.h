/* SPDX-License-Identifier: MIT */
#pragma once

/* Retry sequences: attempts grouped per client family, with a pattern from a closed set and a one-sentence
 * diagnosis. No SQLite and no I/O here: a Sequencer consumes Attempt records in started_us order and hands
 * finished sequences to a callback, in the order in which they started. It keeps only the sequences that
 * are still open (plus the finished ones that wait for an earlier, still open one), so memory is bounded by
 * what happened within the retry window, not by the number of attempts.
 *
 * Grouping (tlsreport(1), "Retry sequences"): the key is the client (IPv4 address, or the /64 of an IPv6
 * address), the SNI and the stable JA4; attempts without a ClientHello have none and group by client, SNI
 * and what they did instead (no_data, idle, not_tls, partial), so that a port check, an idle socket and a
 * plain-HTTP request from one host tell their own stories. An attempt joins its key's open sequence when it
 * starts within burst_gap of the previous attempt, or when the previous attempt failed and it starts within
 * retry_window of it (both limits inclusive). A sequence ends with its first successful attempt (included);
 * without success it is abandoned once retry_window has passed since its last attempt, and open until then.
 */

#include <stdbool.h>
#include <stdint.h>

#include "attempt.h"
#include "evidence.h"

#define SEQUENCE_BURST_GAP_DEFAULT_US (2 * USEC_PER_SEC)
#define SEQUENCE_RETRY_WINDOW_DEFAULT_US (600 * USEC_PER_SEC)
/* Attempts whose details (id, outcome, alerts) a sequence keeps; later ones are only counted. */
#define SEQUENCE_DETAILS_MAX 256
/* "2001:db8:1:2::/64" and the longest IPv4 address fit. */
#define SEQUENCE_CLIENT_MAX 64

typedef enum SequenceOutcome {
        SEQUENCE_OK,        /* ended with a successful attempt */
        SEQUENCE_ABANDONED, /* no success, and the retry window has passed */
        SEQUENCE_OPEN,      /* no success yet, the retry window has not passed */
        _SEQUENCE_OUTCOME_MAX,
        _SEQUENCE_OUTCOME_INVALID = -EINVAL,
} SequenceOutcome;

/* The closed set of patterns; each has one diagnosis sentence (pattern_diagnosis()). Documented in
 * man/tlsreport.1.scd, which must be kept in step. */
typedef enum Pattern {
        PATTERN_CLEAN,                 /* one successful attempt */
        PATTERN_CERT_REJECTED_THEN_OK, /* certificate rejections (alert or close after our flight), then ok */
        PATTERN_CERT_REJECTED_ABANDONED, /* certificate rejections, never a success, window passed */
        PATTERN_CERT_REJECTED_OPEN,      /* certificate rejections, no success yet, window still open */
        PATTERN_CERT_REJECTED_AFTER_OK,  /* rejections right after the key's success: parallel preconnects */
        PATTERN_VERSION_MISMATCH,        /* protocol_version alert either way */
        PATTERN_NO_SHARED_CIPHER,  /* handshake_failure/insufficient_security from us: nothing common */
        PATTERN_NOT_TLS,           /* the client did not speak TLS */
        PATTERN_PROBE,             /* connections that sent nothing */
        PATTERN_TIMEOUT,           /* handshakes started and not finished in time, no success */
        PATTERN_IDLE,              /* connections that sent nothing until our handshake timeout */
        PATTERN_FRAGMENTED_HELLO,  /* ClientHello header split across records: Mbed TLS 3.6 refuses it */
        PATTERN_TRANSIENT_THEN_OK, /* resets, closes or timeouts before our flight, then ok */
        PATTERN_BACKEND_ERROR,     /* one clean handshake, then forwarding failed (--backend): the backend */
        PATTERN_BAD_REQUEST,       /* one clean handshake, then a request refused or cut short (http mode) */
        PATTERN_FAILED,            /* anything else */
        _PATTERN_MAX,
        _PATTERN_INVALID = -EINVAL,
} Pattern;

/* What a sequence keeps of each of its attempts. */
typedef struct SequenceAttempt {
        int64_t id, started_us;
        Outcome outcome;
        HandshakeStep state_reached;
        int16_t alert_received, alert_sent; /* -1 if none */
        bool resumed;
        Evidence evidence;    /* attempt_evidence() */
        CloseKind close_kind; /* how the connection ended */
        int32_t after_hs_ms;  /* closed this long after the handshake completed; -1 if not known */
} SequenceAttempt;

typedef struct Sequence {
        char client[SEQUENCE_CLIENT_MAX]; /* "192.0.2.7" or "2001:db8:1:2::/64" */
        const char *host;                 /* the server (sequencer_feed_host()), NULL if not given */
        char *ja4;                        /* stable JA4, NULL for attempts without a ClientHello */
        const char *no_hello; /* without a ClientHello: "no_data", "idle", "not_tls", "partial" */
        RawString sni;        /* raw, as the client sent it; data NULL if absent */
        int64_t first_us, last_us;
        unsigned n_attempts, n_failures;
        SequenceAttempt *attempts; /* the first MIN(n_attempts, SEQUENCE_DETAILS_MAX) */
        unsigned n_details, n_details_allocated;
        bool after_ok; /* started within burst_gap after a success of the same key */
        /* Why its successful attempt's connection could not be forwarded (--backend; the attempt's
         * backend_error as printable ASCII, shortened), NULL when it was or without a backend. */
        char *backend_error;
        SequenceOutcome outcome;
        Pattern pattern; /* set when the sequence is handed out; sequence_classify() for open ones */

        /* private to the sequencer */
        SequenceAttempt attempts_inline[4];
        uint64_t serial;
        bool finished;
        struct Sequence *queue_next;
} Sequence;

typedef struct SequenceParams {
        int64_t burst_gap_us, retry_window_us;
} SequenceParams;

/* Called for every finished sequence, in order of first_us (ties: in order of the first attempt fed).
 * The sequence is freed when the callback returns. A negative return value stops the sequencer: the
 * feed/advance/flush call that triggered it returns it. */
typedef int (*SequenceHandler)(const Sequence *s, void *userdata);

typedef struct Sequencer Sequencer;

/* params NULL means the defaults. Returns 0, -EINVAL (negative or zero limits) or -ENOMEM. */
int sequencer_new(const SequenceParams *params, SequenceHandler handler, void *userdata, Sequencer **ret);
Sequencer *sequencer_free(Sequencer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sequencer *, sequencer_free);

/* Feeds one attempt; attempts must come in started_us order (an earlier one is treated as starting at the
 * latest time seen). Only the Attempt fields needed for grouping are read, and nothing is kept of it but
 * copies. Sequences that this makes finished are handed out before it returns. */
int sequencer_feed(Sequencer *s, const Attempt *a);
/* The same for attempts recorded by the server host: the host is part of the key, so that a sequence never
 * mixes servers, and the sequence names it. host is compared by pointer: one interned string per host,
 * which must outlive the sequencer (and the sequences handed out); NULL is a host of its own. */
int sequencer_feed_host(Sequencer *s, const Attempt *a, const char *host);
/* Tells the sequencer that time has advanced to now_us without attempts: hands out the sequences that
 * are abandoned by then. */
int sequencer_advance(Sequencer *s, int64_t now_us);
/* Hands out every remaining sequence: abandoned if the retry window has passed at now_us, else open. */
int sequencer_flush(Sequencer *s, int64_t now_us);

/* The open sequence that a's key currently has, or NULL (for the daemon's page: feed the address's recent
 * attempts, then look up the visitor's). Its pattern is not set: use sequence_classify(). */
const Sequence *sequencer_current(Sequencer *s, const Attempt *a);
/* Number of sequences held (open, or finished and waiting for an earlier one). */
size_t sequencer_held(Sequencer *s);

/* The fingerprint part of the key: the stable JA4, or what an attempt without a ClientHello did. */
static inline const char *sequence_key_fingerprint(const Sequence *s) {
        return s->ja4 ?: s->no_hello ?: "-";
}

/* Whether a sequence is one successful attempt whose connection was also served: what reports leave out
 * unless --all. A clean handshake whose forwarding failed (backend_error) is not clean. */
static inline bool sequence_is_clean(const Sequence *s) {
        return s->n_failures == 0 && !s->backend_error;
}

/* The pattern of a sequence as it stands (outcome and attempts as recorded). */
Pattern sequence_classify(const Sequence *s);

/* The compact attempts string: "✗46 ✗46 ✓", one token per kept attempt, "…+N" when some were only
 * counted. ascii selects "x46 x46 ok" instead. Writes at most size bytes including the NUL; returns the
 * length the full string has (like snprintf). */
size_t sequence_format_attempts(const Sequence *s, bool ascii, char *buf, size_t size);
/* The token of one attempt ("✗46", "✗rst", "✓", "✗46r" when resumed, ...; see tlsreport(1)). */
const char *sequence_attempt_token(const SequenceAttempt *a, bool ascii, char buf[static 24]);

/* The client part of the key for an address as the attempts table has it ("2001:db8:1:2::/64" for an
 * IPv6 address); an unparsable address is used as it is (truncated). */
void sequence_client_key(const char *peer_addr, char ret[static SEQUENCE_CLIENT_MAX]);

/* Whether an attempt failed because the client rejected our certificate: it sent a certificate alert
 * (42-46, 48), it reset/closed the connection right after our flight without answering it (what
 * Chromium's alert 46 looks like when the server never reads it, e.g. -0x50 with TLS 1.2), or it completed
 * the handshake and hung up at once without a request (GnuTLS-based tools, w3m). */
bool sequence_attempt_is_cert_rejection(const SequenceAttempt *a);
/* The key part of an attempt without a ClientHello ("no_data", "idle", "not_tls", "partial"); NULL for an
 * attempt that has a stable JA4. */
const char *sequence_no_hello_kind(const Attempt *a);

const char *sequence_outcome_to_string(SequenceOutcome o) _pure_;
SequenceOutcome sequence_outcome_from_string(const char *s) _pure_;
const char *pattern_to_string(Pattern p) _pure_;
Pattern pattern_from_string(const char *s) _pure_;
/* One plain sentence per pattern, the same for every client (diagnosis.h builds the one a report shows
 * from the evidence). */
const char *pattern_diagnosis(Pattern p) _pure_;
