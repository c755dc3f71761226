/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include "attempt.h"

static const char *const outcome_table[_OUTCOME_MAX] = {
        [OUTCOME_OK] = "ok",
        [OUTCOME_PEER_ALERT] = "peer_alert",
        [OUTCOME_PEER_RESET] = "peer_reset",
        [OUTCOME_PEER_CLOSED] = "peer_closed",
        [OUTCOME_NO_DATA] = "no_data",
        [OUTCOME_TIMEOUT] = "timeout",
        [OUTCOME_NOT_TLS] = "not_tls",
        [OUTCOME_TLS_ERROR] = "tls_error",
        [OUTCOME_SERVER_ERROR] = "server_error",
};

static const char *const step_table[_STEP_MAX] = {
        [STEP_CONNECTED] = "connected",
        [STEP_CLIENT_HELLO] = "client_hello",
        [STEP_SERVER_FLIGHT] = "server_flight",
        [STEP_CLIENT_FLIGHT] = "client_flight",
        [STEP_DONE] = "done",
};

static const char *const close_kind_table[_CLOSE_KIND_MAX] = {
        [CLOSE_CLOSE_NOTIFY] = "close_notify",
        [CLOSE_FIN] = "fin",
        [CLOSE_RESET] = "reset",
        [CLOSE_ALERT] = "alert",
        [CLOSE_SERVER] = "server",
        [CLOSE_IDLE_TIMEOUT] = "idle_timeout",
        [CLOSE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
        [CLOSE_SHUTDOWN] = "shutdown",
};

const char *close_kind_to_string(CloseKind k) {
        return k > CLOSE_UNKNOWN && k < _CLOSE_KIND_MAX ? close_kind_table[k] : NULL;
}

CloseKind close_kind_from_string(const char *s) {
        if (!s)
                return CLOSE_UNKNOWN;
        for (int i = CLOSE_UNKNOWN + 1; i < _CLOSE_KIND_MAX; i++)
                if (streq(s, close_kind_table[i]))
                        return (CloseKind) i;
        return _CLOSE_KIND_INVALID;
}

const char *tls_group_to_string(unsigned group) {
        /* IANA TLS Supported Groups registry, the groups clients offer today */
        switch (group) {
        case 0x0017: return "secp256r1";
        case 0x0018: return "secp384r1";
        case 0x0019: return "secp521r1";
        case 0x001d: return "x25519";
        case 0x001e: return "x448";
        case 0x001f: return "brainpoolP256r1tls13";
        case 0x0020: return "brainpoolP384r1tls13";
        case 0x0021: return "brainpoolP512r1tls13";
        case 0x0100: return "ffdhe2048";
        case 0x0101: return "ffdhe3072";
        case 0x0102: return "ffdhe4096";
        case 0x0103: return "ffdhe6144";
        case 0x0104: return "ffdhe8192";
        case 0x11eb: return "SecP256r1MLKEM768";
        case 0x11ec: return "X25519MLKEM768";
        case 0x11ed: return "SecP384r1MLKEM1024";
        case 0x6399: return "X25519Kyber768Draft00";
        default: return NULL;
        }
}

const char *outcome_to_string(Outcome o) {
        return o >= 0 && o < _OUTCOME_MAX ? outcome_table[o] : NULL;
}

Outcome outcome_from_string(const char *s) {
        for (int i = 0; s && i < _OUTCOME_MAX; i++)
                if (streq(s, outcome_table[i]))
                        return (Outcome) i;
        return _OUTCOME_INVALID;
}

const char *handshake_step_to_string(HandshakeStep s) {
        return s >= 0 && s < _STEP_MAX ? step_table[s] : NULL;
}

HandshakeStep handshake_step_from_string(const char *s) {
        for (int i = 0; s && i < _STEP_MAX; i++)
                if (streq(s, step_table[i]))
                        return (HandshakeStep) i;
        return _STEP_INVALID;
}

const char *tls_alert_to_string(int alert) {
        /* IANA TLS Alert registry */
        switch (alert) {
        case 0: return "close_notify";
        case 10: return "unexpected_message";
        case 20: return "bad_record_mac";
        case 21: return "decryption_failed";
        case 22: return "record_overflow";
        case 30: return "decompression_failure";
        case 40: return "handshake_failure";
        case 41: return "no_certificate";
        case 42: return "bad_certificate";
        case 43: return "unsupported_certificate";
        case 44: return "certificate_revoked";
        case 45: return "certificate_expired";
        case 46: return "certificate_unknown";
        case 47: return "illegal_parameter";
        case 48: return "unknown_ca";
        case 49: return "access_denied";
        case 50: return "decode_error";
        case 51: return "decrypt_error";
        case 60: return "export_restriction";
        case 70: return "protocol_version";
        case 71: return "insufficient_security";
        case 80: return "internal_error";
        case 86: return "inappropriate_fallback";
        case 90: return "user_canceled";
        case 100: return "no_renegotiation";
        case 109: return "missing_extension";
        case 110: return "unsupported_extension";
        case 111: return "certificate_unobtainable";
        case 112: return "unrecognized_name";
        case 113: return "bad_certificate_status_response";
        case 114: return "bad_certificate_hash_value";
        case 115: return "unknown_psk_identity";
        case 116: return "certificate_required";
        case 120: return "no_application_protocol";
        case 121: return "ech_required";
        default: return NULL;
        }
}

int raw_string_set(RawString *s, const void *data, size_t len) {
        char *p = NULL;

        if (data) {
                p = malloc(len + 1);
                if (!p)
                        return -ENOMEM;
                memcpy(p, data, len);
                p[len] = '\0';
        }
        free(s->data);
        s->data = p;
        s->len = data ? len : 0;
        return 0;
}

void raw_string_clear(RawString *s) {
        free(s->data);
        *s = (RawString){};
}

Attempt *attempt_new(void) {
        Attempt *a = malloc(sizeof *a);

        if (!a)
                return NULL;
        attempt_init(a);
        return a;
}

Attempt *attempt_free(Attempt *a) {
        if (!a)
                return NULL;
        FOREACH_ATTEMPT_COLUMN(c)
                if (c->kind == ATTEMPT_KIND_TEXT)
                        free(*(char **) ((char *) a + c->offset));
                else if (c->kind == ATTEMPT_KIND_RAW)
                        raw_string_clear((RawString *) ((char *) a + c->offset));
        free(a);
        return NULL;
}

int attempt_dup(const Attempt *a, Attempt **ret) {
        _cleanup_(attempt_freep) Attempt *c = NULL;

        c = malloc(sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = *a;
        /* no string is shared: clear them all first, so that a failure half-way frees only copies */
        FOREACH_ATTEMPT_COLUMN(col)
                if (col->kind == ATTEMPT_KIND_TEXT)
                        *(char **) ((char *) c + col->offset) = NULL;
                else if (col->kind == ATTEMPT_KIND_RAW)
                        *(RawString *) ((char *) c + col->offset) = (RawString){};
        FOREACH_ATTEMPT_COLUMN(col) {
                /* a field is read as a pointer or RawString only when it is one */
                if (col->kind == ATTEMPT_KIND_TEXT) {
                        const char *p = *(char *const *) ((const char *) a + col->offset);

                        if (p && !(*(char **) ((char *) c + col->offset) = strdup(p)))
                                return -ENOMEM;
                } else if (col->kind == ATTEMPT_KIND_RAW) {
                        const RawString *s = (const RawString *) ((const char *) a + col->offset);

                        if (raw_string_set((RawString *) ((char *) c + col->offset), s->data, s->len) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int attempt_dup_grouping(const Attempt *a, Attempt **ret) {
        Attempt g;

        attempt_init(&g); /* every column absent: strings NULL */
#define ATTEMPT_COPY_GROUPING_(name, NAME, type, kind, flags, absent) \
        if ((flags) &ATTEMPT_GROUPING)                                \
                memcpy(&g.name, &a->name, sizeof g.name);
        ATTEMPT_COLUMNS(ATTEMPT_COPY_GROUPING_)
#undef ATTEMPT_COPY_GROUPING_
        return attempt_dup(&g, ret); /* g only borrows a's strings */
}

int sockaddr_to_attempt_addr(const struct sockaddr *sa, char ret_addr[static 46], uint16_t *ret_port) {
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

                if (!inet_ntop(AF_INET, &in->sin_addr, ret_addr, 46))
                        return negative_errno();
                *ret_port = ntohs(in->sin_port);
                return 0;
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        if (!inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ret_addr, 46))
                                return negative_errno();
                } else if (!inet_ntop(AF_INET6, &in6->sin6_addr, ret_addr, 46))
                        return negative_errno();
                *ret_port = ntohs(in6->sin6_port);
                return 0;
        }
        return -EAFNOSUPPORT;
}

int64_t now_realtime_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}
