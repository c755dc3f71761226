/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "decimal.h"
#include "diagnosis.h"

/* The sentence is written into the caller's buffer like snprintf(): len counts what the whole sentence
 * needs, the buffer holds as much as fits, NUL-terminated. No allocation: tlsreport builds one sentence
 * per sequence it shows, hundreds of thousands in a large report. */
typedef struct Text {
        char *buf;
        size_t size, len;
} Text;

static void text_put(Text *t, const char *s, size_t n) {
        if (t->len < t->size) {
                size_t k = MIN(n, t->size - t->len - 1);

                memcpy(t->buf + t->len, s, k);
                t->buf[t->len + k] = '\0';
        }
        t->len += n;
}

static void text_puts(Text *t, const char *s) {
        text_put(t, s, strlen(s));
}

static void text_putc(Text *t, char c) {
        text_put(t, &c, 1);
}

static void text_uint(Text *t, uint64_t v) {
        char digits[DECIMAL_MAX], *d = decimal_digits(v, false, digits + sizeof digits);

        text_put(t, d, (size_t) (digits + sizeof digits - d));
}

static void text_printf(Text *t, const char *fmt, ...) _printf_(2, 3);
static void text_printf(Text *t, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(
                t->len < t->size ? t->buf + t->len : NULL, t->len < t->size ? t->size - t->len : 0, fmt, ap);
        va_end(ap);
        if (n > 0)
                t->len += (size_t) n;
}

/* Where each kind of program takes the certificates it trusts, by the start of its User-Agent summary. */
static const struct {
        const char *prefix, *trust;
} program_trust[] = {
        {"curl/", "the system store (update-ca-certificates) or curl --cacert FILE"},
        {"Wget/", "the system store (update-ca-certificates) or wget --ca-certificate=FILE"},
        {"git/", "the system store (update-ca-certificates) or git config http.sslCAInfo FILE"},
        {"python-requests/",
         "REQUESTS_CA_BUNDLE=FILE or verify=FILE (requests uses certifi's bundle, not the system store)"},
        {"Python-urllib/", "SSL_CERT_FILE=FILE or ssl.create_default_context(cafile=FILE)"},
        {"python-httpx/", "SSL_CERT_FILE=FILE or verify=FILE"},
        {"aiohttp/", "SSL_CERT_FILE=FILE or an ssl context with cafile=FILE"},
        {"Go-http-client/", "the system store (update-ca-certificates) or SSL_CERT_FILE=FILE"},
        {"Java", "Java's trust store (keytool -importcert -cacerts -file FILE) or -Djavax.net.ssl.trustStore"},
        {"Apache-HttpClient/", "Java's trust store (keytool -importcert -cacerts -file FILE)"},
        {"okhttp/", "the app's or Java's trust store"},
        {"node", "NODE_EXTRA_CA_CERTS=FILE"},
        {"undici", "NODE_EXTRA_CA_CERTS=FILE"},
        {"axios/", "NODE_EXTRA_CA_CERTS=FILE"},
        {"libwww-perl/", "PERL_LWP_SSL_CA_FILE=FILE or the system store (update-ca-certificates)"},
        {"Ruby", "SSL_CERT_FILE=FILE or the system store (update-ca-certificates)"},
        {"Lynx/", "the system store (update-ca-certificates) or SSL_CERT_FILE=FILE"},
        {"w3m/", "the system store (update-ca-certificates) or w3m -o ssl_ca_file=FILE"},
        {"ELinks/", "the system store (update-ca-certificates)"},
        {"PHP", "the system store (update-ca-certificates) or openssl.cafile in php.ini"},
};

static const char *const browser_names[] = {
        "Chrome/",
        "Chromium/",
        "Firefox/",
        "Edge/",
        "Opera/",
        "Safari/",
        "SamsungBrowser/",
};

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool client_name_is_browser(const char *name) {
        if (!name)
                return false;
        FOREACH_ARRAY(b, browser_names, ELEMENTSOF(browser_names))
                if (has_prefix(name, *b))
                        return true;
        return false;
}

static const char *client_trust_advice(const char *name) {
        if (name)
                FOREACH_ARRAY(p, program_trust, ELEMENTSOF(program_trust))
                        if (has_prefix(name, p->prefix))
                                return p->trust;
        return "its trust store (for a program: the CA file or store its TLS library reads)";
}

/* The first attempt that shows the sequence's failure best: a certificate rejection if there is one. */
static const SequenceAttempt *sequence_first_rejection(const Sequence *s) {
        FOREACH_ARRAY(a, s->attempts, s->n_details)
                if (sequence_attempt_is_cert_rejection(a))
                        return a;
        return NULL;
}

static const char *step_words(HandshakeStep step) {
        return step >= STEP_DONE ? "after the handshake" : "after our certificate";
}

/* "rejected our certificate with alert unknown_ca(48) after our certificate" and the like. */
static void put_rejection(Text *t, const SequenceAttempt *a) {
        switch (a->evidence) {
        case EVIDENCE_CERT_ALERT:
                text_puts(t, "rejected our certificate with alert ");
                text_puts(t, strna(tls_alert_to_string(a->alert_received))); /* 42-46, 48: all named */
                text_putc(t, '(');
                text_uint(t, (uint64_t) a->alert_received);
                text_puts(t, ") ");
                text_puts(t, step_words(a->state_reached));
                break;
        case EVIDENCE_CLOSED_AFTER_FLIGHT:
                text_puts(t, a->outcome == OUTCOME_PEER_RESET ? "reset the connection" : "closed the connection");
                text_puts(t, " right after our certificate, without an alert");
                break;
        default: /* EVIDENCE_CLOSED_AFTER_HANDSHAKE */
                text_puts(t, "completed the handshake, then hung up");
                if (a->after_hs_ms >= 0) {
                        text_putc(t, ' ');
                        text_uint(t, (uint64_t) a->after_hs_ms);
                        text_puts(t, " ms later");
                }
                if (a->close_kind != CLOSE_UNKNOWN) {
                        text_puts(t, " (");
                        text_puts(t, close_kind_to_string(a->close_kind));
                        text_putc(t, ')');
                }
                text_puts(
                        t,
                        " without a request, which is how clients that check the certificate only after the "
                        "handshake reject it (wget, git, lynx, w3m)");
                break;
        }
}

static void put_subject(Text *t, const ClientIdentity *who) {
        if (who && who->name && who->n_names > 1)
                text_printf(
                        t,
                        "A TLS configuration shared by %u programs (%s, %s%s)",
                        who->n_names,
                        who->name,
                        strna(who->other),
                        who->n_names > 2 ? ", ..." : "");
        else if (who && who->name)
                text_puts(t, who->name);
        else
                text_puts(t, "A client that sent no User-Agent");
}

/* For a sequence whose fingerprint several programs share: the failures need not be the successful
 * program's. */
static void put_shared_caveat(Text *t, const ClientIdentity *who) {
        if (who && who->n_names > 1)
                text_puts(
                        t,
                        "; the server cannot tell these programs apart, so the failures may come from "
                        "another program than the one that succeeded");
}

static void put_count(Text *t, const Sequence *s) {
        if (s->n_failures > 1) {
                text_puts(t, " (");
                text_uint(t, s->n_failures);
                text_puts(t, " attempts)");
        }
}

static void diagnose_cert(Text *t, const Sequence *s, const ClientIdentity *who) {
        const SequenceAttempt *a = sequence_first_rejection(s);
        const char *name = who ? who->name : NULL;
        bool browser = client_name_is_browser(name) && (!who || who->n_names <= 1);
        int64_t gap;

        put_subject(t, who);
        text_putc(t, ' ');
        put_rejection(t, a);
        put_count(t, s);
        switch (s->pattern) {
        case PATTERN_CERT_REJECTED_THEN_OK:
                if (browser) {
                        text_puts(
                                t,
                                ", then connected after the user accepted the certificate (\"Proceed\": "
                                "the browser fails new connections once or more before it honours the "
                                "exception) or installed the CA; install the CA in the browser's or the "
                                "system's trust store, or use a certificate from a CA it trusts");
                        break;
                }
                gap = MAX(s->last_us - a->started_us, (int64_t) 0);
                text_puts(t, ", then connected with the same certificate ");
                text_uint(t, (uint64_t) (gap / USEC_PER_SEC));
                text_putc(t, '.');
                text_uint(t, (uint64_t) (gap % USEC_PER_SEC / (USEC_PER_SEC / 10)));
                text_puts(
                        t,
                        " s later: its certificate check was switched off (a security finding, not a fix: "
                        "it then accepts any server) or its trust store changed in between; make it trust "
                        "the CA: ");
                text_puts(t, client_trust_advice(name));
                break;
        case PATTERN_CERT_REJECTED_AFTER_OK:
                text_puts(
                        t,
                        " on connections it had opened in parallel before it accepted the certificate "
                        "(unused preconnects); same cause as its earlier rejections, same fix: ");
                text_puts(
                        t,
                        browser ? "install the CA in the browser's or the system's trust store"
                                : client_trust_advice(name));
                break;
        case PATTERN_CERT_REJECTED_OPEN:
                text_puts(
                        t,
                        "; it has not connected yet (its retry window is still open); make it trust the "
                        "CA: ");
                text_puts(t, browser ? "the browser's or the system's trust store" : client_trust_advice(name));
                break;
        default:
                text_puts(t, "; it never connected; make it trust the CA: ");
                text_puts(t, browser ? "the browser's or the system's trust store" : client_trust_advice(name));
                text_puts(t, ", or use a certificate from a CA it trusts, valid for the name it uses");
                break;
        }
        /* Unidentified and never served: the same bytes come from a tool that only fetched the certificate. */
        if (!name && a->evidence == EVIDENCE_CLOSED_AFTER_HANDSHAKE &&
            s->pattern != PATTERN_CERT_REJECTED_THEN_OK)
                text_puts(
                        t,
                        "; unless it only fetched the certificate and quit (openssl s_client </dev/null "
                        "does that), which needs no fix");
        put_shared_caveat(t, who);
}

/* The highest version a client offers, from its JA4's version field ("t13d..." -> "TLS 1.3"). */
static const char *ja4_highest_version(const char *ja4) {
        static const struct {
                char code[3];
                const char *name;
        } versions[] = {
                {"13", "TLS 1.3"},
                {"12", "TLS 1.2"},
                {"11", "TLS 1.1"},
                {"10", "TLS 1.0"},
                {"s3", "SSL 3.0"},
                {"s2", "SSL 2.0"},
        };

        if (!ja4 || strlen(ja4) < 3)
                return NULL;
        FOREACH_ARRAY(v, versions, ELEMENTSOF(versions))
                if (ja4[1] == v->code[0] && ja4[2] == v->code[1])
                        return v->name;
        return NULL;
}

static void diagnose_version(Text *t, const Sequence *s, const ClientIdentity *who) {
        const char *highest = ja4_highest_version(s->ja4);

        put_subject(t, who);
        if (!highest)
                text_puts(
                        t,
                        " and this server have no TLS version in common (alert protocol_version); Mbed TLS "
                        "3.6 implements only TLS 1.2 and 1.3: make sure both are allowed (--tls-min 1.2 "
                        "--tls-max 1.3) and that the client offers one");
        else if (streq(highest, "TLS 1.3") || streq(highest, "TLS 1.2")) {
                text_puts(t, " offers up to ");
                text_puts(t, highest);
                text_puts(
                        t,
                        ", and nothing it offers is within this server's --tls-min/--tls-max; allow TLS 1.2 "
                        "and 1.3 (all that Mbed TLS 3.6 implements)");
        } else {
                text_puts(t, " offers at most ");
                text_puts(t, highest);
                text_puts(
                        t,
                        ", which Mbed TLS 3.6 does not implement (it has only TLS 1.2 and 1.3); upgrade the "
                        "client or enable TLS 1.2 in it");
        }
}

static void diagnose_no_shared(Text *t, const Sequence *s, const ClientIdentity *who) {
        bool alert = false;

        FOREACH_ARRAY(a, s->attempts, s->n_details)
                alert = alert || a->alert_sent >= 0 || a->alert_received >= 0;
        put_subject(t, who);
        if (alert)
                text_puts(
                        t,
                        " and this server have no cipher suite, group or signature algorithm in common "
                        "(alert handshake_failure or insufficient_security); this server uses an ECDSA "
                        "P-256 certificate and AEAD suites: make the client offer ECDHE with AES-GCM or "
                        "ChaCha20-Poly1305 (the attempts' error_text says what failed)");
        else
                text_puts(
                        t,
                        " offers no key-exchange group this server supports (TLS 1.3, e.g. only ffdhe "
                        "groups; Mbed TLS closes without an alert, the attempts' error_text lists the "
                        "client's groups); make the client offer x25519 or secp256r1");
}

static void diagnose_not_tls(Text *t, const Sequence *s, const ClientIdentity *who) {
        bool http = false;

        FOREACH_ARRAY(a, s->attempts, s->n_details)
                http = http || a->evidence == EVIDENCE_PLAIN_HTTP;
        put_subject(t, who);
        if (http)
                text_puts(
                        t,
                        " sent plain HTTP to this HTTPS port (answered with 400); use an https:// URL, or "
                        "serve a redirect on a plain-HTTP port");
        else
                text_puts(
                        t,
                        " sent bytes that are not TLS (another protocol, or a scanner); nothing to fix "
                        "unless it is a client of yours pointed at the wrong port");
}

static bool sequence_has_evidence(const Sequence *s, Evidence e) {
        FOREACH_ARRAY(a, s->attempts, s->n_details)
                if (a->outcome != OUTCOME_OK && a->evidence == e)
                        return true;
        return false;
}

static void diagnose_renegotiation(Text *t, const ClientIdentity *who) {
        put_subject(t, who);
        text_puts(
                t,
                " asked to renegotiate the TLS session after the handshake; renegotiation is disabled "
                "on this server, so we refused (alert no_renegotiation) and the client gave up "
                "(its alert, often handshake_failure(40), is not a rejection of our certificate); "
                "make the client not renegotiate (e.g. to send a client certificate or to refresh "
                "its keys), or use TLS 1.3");
}

/* A clean handshake whose connection was not served (--backend) to its end: the backend's fault or the
 * client's. It may have served requests before (keep-alive): the sentence says what failed, not that
 * nothing was served. */
static void diagnose_forwarding(Text *t, const Sequence *s, const ClientIdentity *who) {
        bool refused = strncmp(s->backend_error,
                               BACKEND_ERROR_REFUSED_PREFIX,
                               strlen(BACKEND_ERROR_REFUSED_PREFIX)) == 0;

        put_subject(t, who);
        if (s->pattern == PATTERN_BAD_REQUEST && refused) {
                text_puts(t, " completed the handshake, but tlswatchd refused its HTTP request (");
                text_puts(t, s->backend_error);
                text_puts(
                        t,
                        "); fix the client's request, or nothing if it is a scanner (framing that could "
                        "smuggle a request past tlswatchd is always refused)");
                return;
        }
        if (s->pattern == PATTERN_BAD_REQUEST) {
                text_puts(t, " completed the handshake, but did not finish an HTTP request of its own (");
                text_puts(t, s->backend_error);
                text_puts(
                        t,
                        "); not the service's fault: the client or its network stalled or gave up "
                        "(a cancelled upload, a slow link, a scanner); if it repeats for many "
                        "clients, check their network or the limits (--idle-timeout, "
                        "--backend-client-idle-timeout)");
                return;
        }
        text_puts(t, " completed the handshake, but forwarding to the backend failed (");
        text_puts(t, s->backend_error);
        text_puts(
                t,
                "): the client got an error answer (502 or 504), a cut answer or a closed "
                "connection; check the service that --backend names (running, listening there, "
                "answering in time and in valid HTTP)");
}

/* The pattern's fixed sentence without its final period (the caller may add to it). */
static void put_pattern_text(Text *t, Pattern p) {
        const char *s = strna(pattern_diagnosis(p));
        size_t n = strlen(s);

        text_put(t, s, n > 0 && s[n - 1] == '.' ? n - 1 : n);
}

size_t sequence_diagnose(const Sequence *s, const ClientIdentity *who, char *buf, size_t size) {
        Text text = {.buf = buf, .size = size}, *t = &text;

        if (size > 0)
                buf[0] = '\0';
        switch (s->pattern) {
        case PATTERN_CERT_REJECTED_THEN_OK:
        case PATTERN_CERT_REJECTED_ABANDONED:
        case PATTERN_CERT_REJECTED_OPEN:
        case PATTERN_CERT_REJECTED_AFTER_OK:
                if (sequence_first_rejection(s))
                        diagnose_cert(t, s, who);
                else
                        put_pattern_text(t, s->pattern);
                break;
        default: put_pattern_text(t, s->pattern); break;
        case PATTERN_FAILED:
                if (sequence_has_evidence(s, EVIDENCE_RENEGOTIATION))
                        diagnose_renegotiation(t, who);
                else
                        put_pattern_text(t, s->pattern);
                break;
        case PATTERN_VERSION_MISMATCH: diagnose_version(t, s, who); break;
        case PATTERN_NO_SHARED_CIPHER: diagnose_no_shared(t, s, who); break;
        case PATTERN_NOT_TLS: diagnose_not_tls(t, s, who); break;
        case PATTERN_BACKEND_ERROR:
        case PATTERN_BAD_REQUEST:
                if (s->backend_error)
                        diagnose_forwarding(t, s, who);
                else
                        put_pattern_text(t, s->pattern);
                break;
        case PATTERN_FRAGMENTED_HELLO:
                put_subject(t, who);
                text_puts(
                        t,
                        " split its ClientHello's handshake header across TLS records (legal, RFC 8446 "
                        "section 5.1), which Mbed TLS 3.6 cannot reassemble: it cannot connect to any Mbed "
                        "TLS 3.6 server until it sends the header in one record (report it to the client's "
                        "authors)");
                break;
        }
        if (s->backend_error && s->pattern != PATTERN_BACKEND_ERROR && s->pattern != PATTERN_BAD_REQUEST) {
                /* the handshakes' story first, then what became of the connection that got through */
                text_puts(t, "; then forwarding failed (");
                text_puts(t, s->backend_error);
                text_putc(t, ')');
        }
        if (s->pattern != PATTERN_CLEAN && s->outcome == SEQUENCE_OPEN &&
            s->pattern != PATTERN_CERT_REJECTED_OPEN && s->n_failures > 0)
                text_puts(t, " (the retry window is still open)");
        text_putc(t, '.');
        return text.len;
}
