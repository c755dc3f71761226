/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "decimal.h"
#include "hashmap.h"
#include "sequence.h"

/* One per key that had an attempt within the hold time: its open sequence and when it last succeeded. */
typedef struct KeyEntry {
        HashEntry map; /* first: a HashEntry * is a KeyEntry * */
        char client[SEQUENCE_CLIENT_MAX];
        const char *host; /* the caller's interned string (sequencer_feed_host()), or NULL */
        char *ja4;
        const char *no_hello; /* static: sequence_no_hello_kind() */
        RawString sni;
        Sequence *open;
        int64_t last_us, last_ok_us; /* last_ok_us is INT64_MIN without a success */
        int64_t last_ok_closed_us;   /* when that success's connection ended; 0 if not known */
        struct KeyEntry *lru_prev, *lru_next;
} KeyEntry;

struct Sequencer {
        SequenceParams params;
        SequenceHandler handler;
        void *userdata;

        HashMap keys;                  /* of KeyEntry */
        KeyEntry *lru_head, *lru_tail; /* ordered by last_us, since time only advances */

        Sequence *queue_head, *queue_tail; /* every held sequence, in order of creation */
        size_t n_queued;
        uint64_t next_serial;
        int64_t now_us;
};

static const char *const sequence_outcome_table[_SEQUENCE_OUTCOME_MAX] = {
        [SEQUENCE_OK] = "ok",
        [SEQUENCE_ABANDONED] = "abandoned",
        [SEQUENCE_OPEN] = "open",
};

static const struct {
        const char *name;
        const char *diagnosis;
} pattern_table[_PATTERN_MAX] = {
        [PATTERN_CLEAN] = {"clean", "The handshake succeeded at the first attempt; nothing to fix."},
        [PATTERN_CERT_REJECTED_THEN_OK] =
                {
                        "cert_rejected_then_ok",
                        "The client does not trust the certificate and was let through by the user (a "
                        "browser fails each new connection once or more before a remembered \"Proceed\"); "
                        "install the CA in the client's trust store or use a certificate from a CA it "
                        "trusts.",
                },
        [PATTERN_CERT_REJECTED_ABANDONED] =
                {
                        "cert_rejected_abandoned",
                        "The client rejected the certificate (alert 42, 46 or 48, or a close right after "
                        "it) and never connected; install the CA in the client's trust store or use a "
                        "certificate from a CA it trusts, valid for the name the client uses.",
                },
        [PATTERN_CERT_REJECTED_OPEN] =
                {
                        "cert_rejected_open",
                        "The client rejected the certificate and has not connected yet; its retry window "
                        "is still open. Install the CA in the client's trust store or use a certificate "
                        "from a CA it trusts.",
                },
        [PATTERN_CERT_REJECTED_AFTER_OK] =
                {
                        "cert_rejected_after_ok",
                        "Connections the client had opened in parallel (preconnects) before it accepted "
                        "the certificate were rejected right after its success; same cause and fix as "
                        "cert_rejected_then_ok: use a certificate the client trusts.",
                },
        [PATTERN_VERSION_MISMATCH] =
                {
                        "version_mismatch",
                        "Client and server have no TLS version in common; if the client offers TLS 1.2 or "
                        "1.3, allow it (--tls-min/--tls-max), else upgrade the client: Mbed TLS 3.6 "
                        "implements only TLS 1.2 and 1.3.",
                },
        [PATTERN_NO_SHARED_CIPHER] =
                {
                        "no_shared_cipher",
                        "Client and server have no cipher suite, group or signature algorithm in common; "
                        "compare the client's offer with the server's configuration and enable one they "
                        "share.",
                },
        [PATTERN_NOT_TLS] =
                {
                        "not_tls",
                        "The client did not speak TLS (usually plain HTTP to the HTTPS port); use an "
                        "https:// URL or serve a redirect on a plain-HTTP port.",
                },
        [PATTERN_PROBE] =
                {
                        "probe",
                        "Connections were closed without a byte sent (port checks, health checks or unused "
                        "browser preconnects); harmless, nothing to fix unless they are unexpected.",
                },
        [PATTERN_TIMEOUT] =
                {
                        "timeout",
                        "The client started the handshake but did not finish it in time; look for packet "
                        "loss, a middlebox or an MTU problem on the path, or raise --handshake-timeout for "
                        "slow clients.",
                },
        [PATTERN_IDLE] =
                {
                        "idle",
                        "The client opened connections and sent nothing until the handshake timeout "
                        "(sockets opened ahead of time, or a client that waits for the server to speak "
                        "first, which TLS servers never do).",
                },
        [PATTERN_FRAGMENTED_HELLO] =
                {
                        "fragmented_hello",
                        "The client split its ClientHello's handshake header across TLS records (legal, "
                        "RFC 8446 section 5.1), which Mbed TLS 3.6 cannot reassemble; the client cannot "
                        "connect to any Mbed TLS 3.6 server until it sends the header in one record.",
                },
        [PATTERN_TRANSIENT_THEN_OK] =
                {
                        "transient_then_ok",
                        "The first attempts broke off before the certificate was sent (reset, close or "
                        "timeout) and a retry succeeded; a flaky network or a client fallback, nothing to "
                        "fix unless it repeats.",
                },
        [PATTERN_BACKEND_ERROR] =
                {
                        "backend_error",
                        "The handshake succeeded, but forwarding to the backend failed (down, refusing, too "
                        "slow or answering wrongly; perhaps after requests it served) and the client got a "
                        "502 or 504, a cut answer or a closed connection; check the service that --backend "
                        "names.",
                },
        [PATTERN_BAD_REQUEST] =
                {
                        "bad_request",
                        "The handshake succeeded, but the client's HTTP request was not served to "
                        "its end through no fault of the service: tlswatchd refused it (framing that "
                        "could smuggle a request past it, or a malformed head), or the client sent it "
                        "or read its answer too slowly, or cut it short; fix the client, or nothing if "
                        "it is a scanner or a cancelled request.",
                },
        [PATTERN_FAILED] =
                {
                        "failed",
                        "The handshakes failed in a way that matches no known pattern; read the attempts' "
                        "outcome, alerts and error_text with \"tlsreport attempts --client ADDR\".",
                },
};

const char *sequence_outcome_to_string(SequenceOutcome o) {
        return o >= 0 && o < _SEQUENCE_OUTCOME_MAX ? sequence_outcome_table[o] : NULL;
}

SequenceOutcome sequence_outcome_from_string(const char *s) {
        for (int i = 0; s && i < _SEQUENCE_OUTCOME_MAX; i++)
                if (streq(s, sequence_outcome_table[i]))
                        return (SequenceOutcome) i;
        return _SEQUENCE_OUTCOME_INVALID;
}

const char *pattern_to_string(Pattern p) {
        return p >= 0 && p < _PATTERN_MAX ? pattern_table[p].name : NULL;
}

Pattern pattern_from_string(const char *s) {
        for (int i = 0; s && i < _PATTERN_MAX; i++)
                if (streq(s, pattern_table[i].name))
                        return (Pattern) i;
        return _PATTERN_INVALID;
}

const char *pattern_diagnosis(Pattern p) {
        return p >= 0 && p < _PATTERN_MAX ? pattern_table[p].diagnosis : NULL;
}

/* The /64 prefix of an address as inet_ntop() writes it (RFC 5952), followed by "/64": the last four groups
 * are zero, so the longest run of zero groups is always the one that ends the address, which "::" replaces.
 * Written by hand because this runs for every attempt and inet_ntop() costs several times more. */
static void format_prefix64(const struct in6_addr *a, char ret[static SEQUENCE_CLIENT_MAX]) {
        static const char hex[] = "0123456789abcdef";
        unsigned k = 4; /* groups before the final run of zeros */
        char *p = ret;

        while (k > 0 && a->s6_addr[2 * (k - 1)] == 0 && a->s6_addr[2 * (k - 1) + 1] == 0)
                k--;
        for (unsigned i = 0; i < k; i++) {
                unsigned w = (unsigned) a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1];
                bool digits = false;

                if (i > 0)
                        *p++ = ':';
                for (int shift = 12; shift >= 0; shift -= 4) {
                        unsigned d = (w >> shift) & 0xf;

                        if (d != 0 || digits || shift == 0) {
                                *p++ = hex[d];
                                digits = true;
                        }
                }
        }
        memcpy(p, "::/64", sizeof "::/64");
}

void sequence_client_key(const char *peer_addr, char ret[static SEQUENCE_CLIENT_MAX]) {
        struct in6_addr in6;

        if (peer_addr && strchr(peer_addr, ':') && inet_pton(AF_INET6, peer_addr, &in6) == 1) {
                if (!IN6_IS_ADDR_V4MAPPED(&in6)) {
                        memset(in6.s6_addr + 8, 0, 8);
                        format_prefix64(&in6, ret);
                        return;
                }
                if (inet_ntop(AF_INET, in6.s6_addr + 12, ret, SEQUENCE_CLIENT_MAX))
                        return; /* ::ffff:a.b.c.d, should the record not have converted it */
        }
        size_t n = peer_addr ? strnlen(peer_addr, SEQUENCE_CLIENT_MAX - 1) : 0;

        memcpy(ret, strempty(peer_addr), n);
        ret[n] = '\0';
}

bool sequence_attempt_is_cert_rejection(const SequenceAttempt *a) {
        return evidence_is_cert_rejection(a->evidence);
}

/* The evidence is passed in: the sequencer computes it once per attempt. */
static const char *no_hello_kind(const Attempt *a, Evidence e) {
        if (a->ja4_stable && a->ja4_stable[0])
                return NULL;
        switch (e) {
        case EVIDENCE_NO_DATA: return "no_data";
        case EVIDENCE_IDLE: return "idle";
        case EVIDENCE_PLAIN_HTTP:
        case EVIDENCE_NOT_TLS: return "not_tls";
        default: return "partial"; /* some TLS bytes, no whole ClientHello */
        }
}

const char *sequence_no_hello_kind(const Attempt *a) {
        return no_hello_kind(a, attempt_evidence(a));
}

Pattern sequence_classify(const Sequence *s) {
        unsigned n[_EVIDENCE_MAX] = {}, failures = 0, cert = 0, transient;

        FOREACH_ARRAY(a, s->attempts, s->n_details) {
                if (a->outcome == OUTCOME_OK)
                        continue;
                failures++;
                n[a->evidence]++;
                cert += sequence_attempt_is_cert_rejection(a);
        }

        if (failures == 0 && s->outcome == SEQUENCE_OK && s->backend_error)
                return backend_error_is_client(s->backend_error) ? PATTERN_BAD_REQUEST : PATTERN_BACKEND_ERROR;
        if (failures == 0)
                return s->outcome == SEQUENCE_OK ? PATTERN_CLEAN : PATTERN_FAILED;
        if (cert > 0) {
                if (s->outcome == SEQUENCE_OK)
                        return PATTERN_CERT_REJECTED_THEN_OK;
                if (s->after_ok)
                        return PATTERN_CERT_REJECTED_AFTER_OK;
                return s->outcome == SEQUENCE_OPEN ? PATTERN_CERT_REJECTED_OPEN
                                                   : PATTERN_CERT_REJECTED_ABANDONED;
        }
        if (n[EVIDENCE_VERSION] > 0)
                return PATTERN_VERSION_MISMATCH;
        if (n[EVIDENCE_NO_SHARED] > 0)
                return PATTERN_NO_SHARED_CIPHER;
        if (n[EVIDENCE_FRAGMENTED_HELLO] > 0)
                return PATTERN_FRAGMENTED_HELLO;
        /* connections without a byte sent go along with whatever else the client did wrong */
        if (n[EVIDENCE_PLAIN_HTTP] + n[EVIDENCE_NOT_TLS] > 0 &&
            n[EVIDENCE_PLAIN_HTTP] + n[EVIDENCE_NOT_TLS] + n[EVIDENCE_NO_DATA] == failures)
                return PATTERN_NOT_TLS;
        if (n[EVIDENCE_NO_DATA] == failures)
                return PATTERN_PROBE;
        transient = n[EVIDENCE_NO_DATA] + n[EVIDENCE_IDLE] + n[EVIDENCE_STALLED] + n[EVIDENCE_BROKE_OFF];
        if (s->outcome == SEQUENCE_OK && transient == failures)
                return PATTERN_TRANSIENT_THEN_OK;
        if (n[EVIDENCE_IDLE] > 0 && n[EVIDENCE_IDLE] + n[EVIDENCE_NO_DATA] == failures)
                return PATTERN_IDLE;
        if (n[EVIDENCE_STALLED] > 0 && n[EVIDENCE_STALLED] + n[EVIDENCE_IDLE] + n[EVIDENCE_NO_DATA] == failures)
                return PATTERN_TIMEOUT;
        return PATTERN_FAILED;
}

/* Appends to a token buffer of 24 bytes (the longest token is 3 + 5 + 1 bytes); no printf, because the
 * report writes one token per attempt. */
static char *token_put(char *p, const char *s) {
        size_t n = strlen(s);

        memcpy(p, s, n);
        return p + n;
}

const char *sequence_attempt_token(const SequenceAttempt *a, bool ascii, char buf[static 24]) {
        const char *x = ascii ? "x" : "\u2717";
        bool resumed_mark = true;
        char *p = buf;

        switch (a->outcome) {
        case OUTCOME_OK: p = token_put(p, ascii ? "ok" : "\u2713"); break;
        case OUTCOME_PEER_ALERT:
                p = token_put(p, x);
                p = a->alert_received >= 0 ? decimal_put_int64(p, a->alert_received) : token_put(p, "alert");
                break;
        case OUTCOME_TLS_ERROR:
                p = token_put(p, x);
                p = a->alert_sent >= 0 ? decimal_put_int64(token_put(p, "s"), a->alert_sent)
                                       : token_put(p, "err");
                break;
        case OUTCOME_PEER_RESET:
        case OUTCOME_PEER_CLOSED:
                /* a reset/close that carried an alert first shows the alert */
                p = token_put(p, x);
                if (a->alert_received >= 0)
                        p = decimal_put_int64(p, a->alert_received);
                else
                        p = token_put(p, a->outcome == OUTCOME_PEER_RESET ? "rst" : "fin");
                break;
        case OUTCOME_NO_DATA:
                p = token_put(token_put(p, x), "none");
                resumed_mark = false;
                break;
        case OUTCOME_TIMEOUT: p = token_put(token_put(p, x), "time"); break;
        case OUTCOME_NOT_TLS:
                p = token_put(token_put(p, x), "tls");
                resumed_mark = false;
                break;
        default: p = token_put(token_put(p, x), "srv"); break;
        }
        if (resumed_mark && a->resumed)
                *p++ = 'r';
        *p = '\0';
        return buf;
}

size_t sequence_format_attempts(const Sequence *s, bool ascii, char *buf, size_t size) {
        size_t len = 0;

        if (size > 0)
                buf[0] = '\0';
        for (unsigned i = 0; i < s->n_details; i++) {
                char token[24];
                size_t n;

                sequence_attempt_token(&s->attempts[i], ascii, token);
                n = strlen(token) + (i > 0);
                if (len + n < size) {
                        if (i > 0)
                                buf[len] = ' ';
                        memcpy(buf + len + (i > 0), token, n - (i > 0) + 1);
                } else if (len < size) /* truncated like snprintf(): as much as fits, NUL-terminated */
                        (void) snprintf(buf + len, size - len, "%s%s", i > 0 ? " " : "", token);
                len += n;
        }
        if (s->n_attempts > s->n_details) {
                int n = snprintf(
                        size > len ? buf + len : NULL,
                        size > len ? size - len : 0,
                        " %s+%u",
                        ascii ? "..." : "\u2026",
                        s->n_attempts - s->n_details);
                len += (size_t) MAX(n, 0);
        }
        return len;
}

static Sequence *sequence_free(Sequence *s) {
        if (!s)
                return NULL;
        if (s->attempts != s->attempts_inline)
                free(s->attempts);
        free(s->backend_error);
        free(s);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Sequence *, sequence_free);

/* ja4 is the stable JA4, or else the no-hello kind: the two never look alike. */
static uint64_t key_hash(const char *host, const char *client, const char *ja4, const RawString *sni) {
        uint64_t h = HASH_SEED;

        if (host) /* interned: the pointer is the host */
                h = hash_bytes(h, &host, sizeof host);

        h = hash_bytes(h, client, strlen(client));
        h = hash_bytes(h, ja4, strlen(ja4));
        h = sni->data ? hash_bytes(h, sni->data, sni->len) : h * 5 + 2;
        return hash_finish(h);
}

static bool
key_equal(const KeyEntry *e, const char *host, const char *client, const char *ja4, const RawString *sni) {
        return e->host == host && streq(e->client, client) && streq(e->ja4 ?: e->no_hello, ja4) &&
                !!e->sni.data == !!sni->data && e->sni.len == sni->len &&
                (e->sni.len == 0 || memcmp(e->sni.data, sni->data, sni->len) == 0);
}

static KeyEntry *key_entry_free(KeyEntry *e) {
        if (!e)
                return NULL;
        free(e);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(KeyEntry *, key_entry_free);

int sequencer_new(const SequenceParams *params, SequenceHandler handler, void *userdata, Sequencer **ret) {
        _cleanup_free_ Sequencer *s = NULL;

        if (params && (params->burst_gap_us < 0 || params->retry_window_us < 0))
                return -EINVAL;
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->params = params ? *params
                           : (SequenceParams){
                                     .burst_gap_us = SEQUENCE_BURST_GAP_DEFAULT_US,
                                     .retry_window_us = SEQUENCE_RETRY_WINDOW_DEFAULT_US,
                             };
        s->handler = handler;
        s->userdata = userdata;
        if (hashmap_init(&s->keys, 64) < 0)
                return -ENOMEM;
        s->now_us = INT64_MIN;
        *ret = TAKE_PTR(s);
        return 0;
}

static void lru_unlink(Sequencer *s, KeyEntry *e) {
        if (e->lru_prev)
                e->lru_prev->lru_next = e->lru_next;
        else
                s->lru_head = e->lru_next;
        if (e->lru_next)
                e->lru_next->lru_prev = e->lru_prev;
        else
                s->lru_tail = e->lru_prev;
        e->lru_prev = e->lru_next = NULL;
}

static void lru_append(Sequencer *s, KeyEntry *e) {
        e->lru_prev = s->lru_tail;
        e->lru_next = NULL;
        if (s->lru_tail)
                s->lru_tail->lru_next = e;
        else
                s->lru_head = e;
        s->lru_tail = e;
}

static void sequencer_remove_entry(Sequencer *s, KeyEntry *e) {
        hashmap_remove(&s->keys, &e->map);
        lru_unlink(s, e);
        key_entry_free(e);
}

Sequencer *sequencer_free(Sequencer *s) {
        if (!s)
                return NULL;
        while (s->lru_head)
                sequencer_remove_entry(s, s->lru_head);
        for (Sequence *q = s->queue_head, *next; q; q = next) {
                next = q->queue_next;
                sequence_free(q);
        }
        hashmap_done(&s->keys);
        free(s);
        return NULL;
}

static void sequence_finish(Sequence *q, SequenceOutcome outcome) {
        q->finished = true;
        q->outcome = outcome;
        q->pattern = sequence_classify(q);
}

/* Hands out the finished sequences at the head of the queue. */
static int sequencer_drain(Sequencer *s) {
        int r = 0;

        while (s->queue_head && s->queue_head->finished) {
                Sequence *q = s->queue_head;

                s->queue_head = q->queue_next;
                if (!s->queue_head)
                        s->queue_tail = NULL;
                s->n_queued--;
                if (r >= 0 && s->handler)
                        r = s->handler(q, s->userdata);
                sequence_free(q);
        }
        return MIN(r, 0);
}

static int64_t sequencer_hold_us(const Sequencer *s) {
        return MAX(s->params.burst_gap_us, s->params.retry_window_us);
}

static void sequencer_expire(Sequencer *s) {
        int64_t hold = sequencer_hold_us(s);

        while (s->lru_head && s->now_us - s->lru_head->last_us > hold) {
                KeyEntry *e = s->lru_head;

                if (e->open)
                        sequence_finish(e->open, SEQUENCE_ABANDONED);
                sequencer_remove_entry(s, e);
        }
}

static KeyEntry *sequencer_find(
        Sequencer *s, uint64_t h, const char *host, const char *client, const char *ja4, const RawString *sni) {
        HASHMAP_FOREACH_CHAIN(m, &s->keys, h) {
                KeyEntry *e = (KeyEntry *) m;

                if (m->hash == h && key_equal(e, host, client, ja4, sni))
                        return e;
        }
        return NULL;
}

/* One allocation for a struct and its key strings, which follow it: ja4 (NUL-terminated) and the SNI's
 * bytes (plus a NUL). */
static void *
alloc_with_key(size_t size, const char *ja4, const RawString *sni, char **ret_ja4, RawString *ret_sni) {
        size_t l = ja4 ? strlen(ja4) + 1 : 0;
        /* malloc() and memset(), not calloc(): glibc's calloc() bypasses the per-thread cache, and this
         * runs once per sequence */
        char *p = malloc(size + l + sni->len + 1);

        if (!p)
                return NULL;
        memset(p, 0, size);
        p[size + l + sni->len] = '\0';
        *ret_ja4 = ja4 ? memcpy(p + size, ja4, l) : NULL;
        *ret_sni = (RawString){.data = sni->data ? p + size + l : NULL, .len = sni->data ? sni->len : 0};
        if (sni->data && sni->len > 0)
                memcpy(p + size + l, sni->data, sni->len);
        return p;
}

static int sequencer_add_entry(
        Sequencer *s,
        uint64_t h,
        const char *host,
        const char *client,
        const char *ja4,
        const char *no_hello,
        const RawString *sni,
        KeyEntry **ret) {
        _cleanup_(key_entry_freep) KeyEntry *e = NULL;
        RawString sni_copy;
        char *ja4_copy;

        e = alloc_with_key(sizeof *e, ja4, sni, &ja4_copy, &sni_copy);
        if (!e)
                return -ENOMEM;
        e->ja4 = ja4_copy;
        e->no_hello = no_hello;
        e->sni = sni_copy;
        e->host = host;
        memcpy(e->client, client, SEQUENCE_CLIENT_MAX);
        e->last_ok_us = INT64_MIN;
        if (hashmap_put(&s->keys, &e->map, h) < 0)
                return -ENOMEM;
        lru_append(s, e);
        *ret = TAKE_PTR(e);
        return 0;
}

static int sequence_new(Sequencer *s, const KeyEntry *e, int64_t t, Sequence **ret) {
        RawString sni_copy;
        char *ja4_copy;
        Sequence *q = alloc_with_key(sizeof *q, e->ja4, &e->sni, &ja4_copy, &sni_copy);

        if (!q)
                return -ENOMEM;
        q->ja4 = ja4_copy;
        q->no_hello = e->no_hello;
        q->sni = sni_copy;
        q->host = e->host;
        q->attempts = q->attempts_inline;
        q->n_details_allocated = ELEMENTSOF(q->attempts_inline);
        memcpy(q->client, e->client, SEQUENCE_CLIENT_MAX);
        q->first_us = q->last_us = t;
        q->outcome = SEQUENCE_OPEN;
        q->pattern = _PATTERN_INVALID;
        /* A connection opened in parallel with the success (a preconnect) starts before the success's
         * connection ends; one that starts after it ended is the client's next, separate attempt (curl -k,
         * then curl: not a preconnect). */
        q->after_ok = e->last_ok_us != INT64_MIN && t - e->last_ok_us <= s->params.burst_gap_us &&
                (e->last_ok_closed_us <= 0 || t < e->last_ok_closed_us);
        q->serial = s->next_serial++;
        *ret = q;
        return 0;
}

/* A backend error as a diagnosis may quote it: printable ASCII (a journal on a collector may carry
 * anything), at most 160 bytes. */
static char *backend_error_copy(const char *e) {
        size_t n = strlen(e), max = 160;
        char *c = malloc(MIN(n, max) + 1);

        if (!c)
                return NULL;
        for (size_t i = 0; i < MIN(n, max); i++)
                c[i] = e[i] >= 0x20 && e[i] < 0x7f ? e[i] : '?';
        c[MIN(n, max)] = '\0';
        if (n > max)
                memcpy(c + max - 3, "...", 3);
        return c;
}

static int sequence_add(Sequence *q, const Attempt *a, Evidence evidence, int64_t t) {
        /* what became of the connection that got through: a failed attempt's (a handshake that completed,
         * then a close without a request) is no story of forwarding */
        if (a->backend_error && !q->backend_error && !outcome_is_failure(a->outcome)) {
                q->backend_error = backend_error_copy(a->backend_error);
                if (!q->backend_error)
                        return -ENOMEM;
        }
        q->n_attempts++;
        q->n_failures += outcome_is_failure(a->outcome);
        q->last_us = t;
        if (q->n_details >= SEQUENCE_DETAILS_MAX)
                return 0;
        if (q->n_details >= q->n_details_allocated) {
                unsigned n = MIN(MAX(q->n_details_allocated * 2, 4u), (unsigned) SEQUENCE_DETAILS_MAX);
                SequenceAttempt *p = realloc(
                        q->attempts == q->attempts_inline ? NULL : q->attempts, n * sizeof *p);

                if (!p)
                        return -ENOMEM;
                if (q->attempts == q->attempts_inline)
                        memcpy(p, q->attempts_inline, sizeof q->attempts_inline);
                q->attempts = p;
                q->n_details_allocated = n;
        }
        q->attempts[q->n_details++] = (SequenceAttempt){
                .id = a->id,
                .started_us = a->started_us,
                .outcome = a->outcome,
                .state_reached = a->state_reached,
                .alert_received =
                        (int16_t) (a->alert_received >= 0 && a->alert_received < 256 ? a->alert_received : -1),
                .alert_sent = (int16_t) (a->alert_sent >= 0 && a->alert_sent < 256 ? a->alert_sent : -1),
                .resumed = a->resumed,
                .evidence = evidence,
                .close_kind = a->close_kind,
                .after_hs_ms = a->closed_us > 0 && a->ended_us > 0 && a->closed_us >= a->ended_us
                        ? (int32_t) MIN((a->closed_us - a->ended_us) / USEC_PER_MSEC, (int64_t) INT32_MAX)
                        : -1,
        };
        return 0;
}

static void sequencer_queue(Sequencer *s, Sequence *q) {
        if (s->queue_tail)
                s->queue_tail->queue_next = q;
        else
                s->queue_head = q;
        s->queue_tail = q;
        s->n_queued++;
}

int sequencer_feed(Sequencer *s, const Attempt *a) {
        return sequencer_feed_host(s, a, NULL);
}

int sequencer_feed_host(Sequencer *s, const Attempt *a, const char *host) {
        char client[SEQUENCE_CLIENT_MAX];
        const char *ja4, *no_hello;
        Evidence evidence;
        KeyEntry *e;
        uint64_t h;
        int64_t t;
        int r;

        if (!s || !a)
                return -EINVAL;
        t = s->now_us = MAX(s->now_us, a->started_us);
        sequencer_expire(s);

        sequence_client_key(a->peer_addr, client);
        evidence = attempt_evidence(a);
        no_hello = no_hello_kind(a, evidence);
        ja4 = no_hello ? NULL : a->ja4_stable;
        h = key_hash(host, client, ja4 ?: no_hello, &a->sni);
        e = sequencer_find(s, h, host, client, ja4 ?: no_hello, &a->sni);
        if (!e) {
                r = sequencer_add_entry(s, h, host, client, ja4, no_hello, &a->sni, &e);
                if (r < 0)
                        return r;
        } else {
                /* An open sequence's last attempt failed, so both rules reduce to the larger limit. */
                if (e->open && t - e->last_us > sequencer_hold_us(s)) {
                        sequence_finish(e->open, SEQUENCE_ABANDONED);
                        e->open = NULL;
                }
                lru_unlink(s, e);
                lru_append(s, e);
        }
        e->last_us = t;

        if (!e->open) {
                r = sequence_new(s, e, t, &e->open);
                if (r < 0)
                        return r;
                sequencer_queue(s, e->open);
        }
        r = sequence_add(e->open, a, evidence, t);
        if (r < 0)
                return r;
        if (!outcome_is_failure(a->outcome)) {
                e->last_ok_us = t;
                e->last_ok_closed_us = a->closed_us > 0 ? a->closed_us : 0;
                sequence_finish(e->open, SEQUENCE_OK);
                e->open = NULL;
        }
        return sequencer_drain(s);
}

int sequencer_advance(Sequencer *s, int64_t now_us) {
        s->now_us = MAX(s->now_us, now_us);
        sequencer_expire(s);
        return sequencer_drain(s);
}

int sequencer_flush(Sequencer *s, int64_t now_us) {
        now_us = MAX(s->now_us, now_us);
        for (KeyEntry *e = s->lru_head; e; e = e->lru_next)
                if (e->open) {
                        sequence_finish(
                                e->open,
                                now_us - e->last_us > s->params.retry_window_us ? SEQUENCE_ABANDONED
                                                                                : SEQUENCE_OPEN);
                        e->open = NULL;
                }
        while (s->lru_head)
                sequencer_remove_entry(s, s->lru_head);
        return sequencer_drain(s);
}

const Sequence *sequencer_current(Sequencer *s, const Attempt *a) {
        char client[SEQUENCE_CLIENT_MAX];
        const char *ja4 = sequence_no_hello_kind(a) ?: a->ja4_stable;
        KeyEntry *e;

        sequence_client_key(a->peer_addr, client);
        e = sequencer_find(s, key_hash(NULL, client, ja4, &a->sni), NULL, client, ja4, &a->sni);
        return e ? e->open : NULL;
}

size_t sequencer_held(Sequencer *s) {
        return s->n_queued;
}
