/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>

#include "describe.h"
#include "diagnosis.h"

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
static void put_rejection(FILE *f, const SequenceAttempt *a) {
        char alert[32];

        switch (a->evidence) {
        case EVIDENCE_CERT_ALERT:
                fprintf(f,
                        "rejected our certificate with alert %s %s",
                        tls_alert_format(a->alert_received, alert),
                        step_words(a->state_reached));
                break;
        case EVIDENCE_CLOSED_AFTER_FLIGHT:
                fputs(a->outcome == OUTCOME_PEER_RESET ? "reset the connection" : "closed the connection", f);
                fputs(" right after our certificate, without an alert", f);
                break;
        default: /* EVIDENCE_CLOSED_AFTER_HANDSHAKE */
                fputs("completed the handshake, then hung up", f);
                if (a->after_hs_ms >= 0)
                        fprintf(f, " %" PRIi32 " ms later", a->after_hs_ms);
                if (a->close_kind != CLOSE_UNKNOWN)
                        fprintf(f, " (%s)", close_kind_to_string(a->close_kind));
                fputs(" without a request: it checks the certificate only after the handshake, as "
                      "GnuTLS-based "
                      "tools do",
                      f);
                break;
        }
}

static void put_subject(FILE *f, const ClientIdentity *who) {
        if (who && who->name && who->n_names > 1)
                fprintf(f,
                        "A TLS configuration shared by %u programs (%s, %s%s)",
                        who->n_names,
                        who->name,
                        strna(who->other),
                        who->n_names > 2 ? ", ..." : "");
        else if (who && who->name)
                fputs(who->name, f);
        else
                fputs("A client that sent no User-Agent", f);
}

/* For a sequence whose fingerprint several programs share: the failures need not be the successful
 * program's. */
static void put_shared_caveat(FILE *f, const ClientIdentity *who) {
        if (who && who->n_names > 1)
                fputs("; the server cannot tell these programs apart, so the failures may come from another "
                      "program than the one that succeeded",
                      f);
}

static void put_count(FILE *f, const Sequence *s) {
        if (s->n_failures > 1)
                fprintf(f, " (%u attempts)", s->n_failures);
}

static void diagnose_cert(FILE *f, const Sequence *s, const ClientIdentity *who) {
        const SequenceAttempt *a = sequence_first_rejection(s);
        const char *name = who ? who->name : NULL;
        bool browser = client_name_is_browser(name) && (!who || who->n_names <= 1);

        put_subject(f, who);
        fputc(' ', f);
        put_rejection(f, a);
        put_count(f, s);
        switch (s->pattern) {
        case PATTERN_CERT_REJECTED_THEN_OK:
                if (browser)
                        fputs(", then connected after the user accepted the certificate (\"Proceed\": the "
                              "browser fails new connections once or more before it honours the exception) "
                              "or "
                              "installed the CA; install the CA in the browser's or the system's trust "
                              "store, or "
                              "use a certificate from a CA it trusts",
                              f);
                else {
                        int64_t gap = s->last_us - a->started_us;

                        fprintf(f,
                                ", then connected with the same certificate %" PRIi64 ".%" PRIi64 " s "
                                "later: "
                                "its "
                                "certifica"
                                "te check "
                                "was "
                                "switched "
                                "off (a "
                                "security "
                                "finding, "
                                "not a "
                                "fix: it then accepts any server) or its trust store changed in between; "
                                "make it trust the CA: %s",
                                gap / USEC_PER_SEC,
                                gap % USEC_PER_SEC / (USEC_PER_SEC / 10),
                                client_trust_advice(name));
                }
                break;
        case PATTERN_CERT_REJECTED_AFTER_OK:
                fputs(" on connections it had opened in parallel before it accepted the certificate (unused "
                      "preconnects); same cause as its earlier rejections, same fix: ",
                      f);
                fputs(browser ? "install the CA in the browser's or the system's trust store"
                              : client_trust_advice(name),
                      f);
                break;
        case PATTERN_CERT_REJECTED_OPEN:
                fprintf(f,
                        "; it has not connected yet (its retry window is still open); make it trust the CA: "
                        "%s",
                        browser ? "the browser's or the system's trust store" : client_trust_advice(name));
                break;
        default:
                fprintf(f,
                        "; it never connected; make it trust the CA: %s, or use a certificate from a CA it "
                        "trusts, valid for the name it uses",
                        browser ? "the browser's or the system's trust store" : client_trust_advice(name));
                break;
        }
        /* Unidentified and never served: the same bytes come from a tool that only fetched the certificate. */
        if (!name && a->evidence == EVIDENCE_CLOSED_AFTER_HANDSHAKE &&
            s->pattern != PATTERN_CERT_REJECTED_THEN_OK)
                fputs("; unless it only fetched the certificate and quit (openssl s_client </dev/null does "
                      "that), which needs no fix",
                      f);
        put_shared_caveat(f, who);
}

static bool offers_modern(const char *versions) {
        return strstr(versions, "TLSv1.3") || strstr(versions, "TLSv1.2");
}

static void diagnose_version(FILE *f, const Sequence *s, const ClientIdentity *who) {
        put_subject(f, who);
        if (s->offered_versions[0] == '\0')
                fputs(" and this server have no TLS version in common (alert protocol_version); Mbed TLS "
                      "3.6 "
                      "implements only TLS 1.2 and 1.3: make sure both are allowed (--tls-min 1.2 --tls-max "
                      "1.3) and that the client offers one",
                      f);
        else if (offers_modern(s->offered_versions))
                fprintf(f,
                        " offers %s, which this server's --tls-min/--tls-max exclude; allow it (Mbed TLS "
                        "3.6 "
                        "implements TLS 1.2 and 1.3)",
                        s->offered_versions);
        else
                fprintf(f,
                        " offers only %s, which Mbed TLS 3.6 does not implement (it has only TLS 1.2 and "
                        "1.3); "
                        "upgrade the client or enable TLS 1.2 in it",
                        s->offered_versions);
}

static void diagnose_no_shared(FILE *f, const Sequence *s, const ClientIdentity *who) {
        bool alert = false;

        FOREACH_ARRAY(a, s->attempts, s->n_details)
                alert = alert || a->alert_sent >= 0 || a->alert_received >= 0;
        put_subject(f, who);
        if (alert)
                fputs(" and this server have no cipher suite, group or signature algorithm in common (alert "
                      "handshake_failure or insufficient_security); this server uses an ECDSA P-256 "
                      "certificate and AEAD suites: make the client offer ECDHE with AES-GCM or "
                      "ChaCha20-Poly1305 (the attempts' error_text says what failed)",
                      f);
        else
                fputs(" offers no key-exchange group this server supports (TLS 1.3, e.g. only ffdhe groups; "
                      "Mbed TLS closes without an alert, the attempts' error_text lists the client's "
                      "groups); "
                      "make the client offer x25519 or secp256r1",
                      f);
}

static void diagnose_not_tls(FILE *f, const Sequence *s, const ClientIdentity *who) {
        bool http = false;

        FOREACH_ARRAY(a, s->attempts, s->n_details)
                http = http || a->evidence == EVIDENCE_PLAIN_HTTP;
        put_subject(f, who);
        if (http)
                fputs(" sent plain HTTP to this HTTPS port (answered with 400); use an https:// URL, or "
                      "serve "
                      "a redirect on a plain-HTTP port",
                      f);
        else
                fputs(" sent bytes that are not TLS (another protocol, or a scanner); nothing to fix unless "
                      "it "
                      "is a client of yours pointed at the wrong port",
                      f);
}

/* The pattern's fixed sentence without its final period (the caller may add to it). */
static void put_pattern_text(FILE *f, Pattern p) {
        const char *t = strna(pattern_diagnosis(p));
        size_t n = strlen(t);

        fwrite(t, 1, n > 0 && t[n - 1] == '.' ? n - 1 : n, f);
}

char *sequence_diagnose(const Sequence *s, const ClientIdentity *who) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        switch (s->pattern) {
        case PATTERN_CERT_REJECTED_THEN_OK:
        case PATTERN_CERT_REJECTED_ABANDONED:
        case PATTERN_CERT_REJECTED_OPEN:
        case PATTERN_CERT_REJECTED_AFTER_OK:
                if (sequence_first_rejection(s))
                        diagnose_cert(f, s, who);
                else
                        put_pattern_text(f, s->pattern);
                break;
        default: put_pattern_text(f, s->pattern); break;
        case PATTERN_VERSION_MISMATCH: diagnose_version(f, s, who); break;
        case PATTERN_NO_SHARED_CIPHER: diagnose_no_shared(f, s, who); break;
        case PATTERN_NOT_TLS: diagnose_not_tls(f, s, who); break;
        case PATTERN_FRAGMENTED_HELLO:
                put_subject(f, who);
                fputs(" split its ClientHello's handshake header across TLS records (legal, RFC 8446 "
                      "section "
                      "5.1), which Mbed TLS 3.6 cannot reassemble: it cannot connect to any Mbed TLS 3.6 "
                      "server until it sends the header in one record (report it to the client's authors)",
                      f);
                break;
        }
        if (s->pattern != PATTERN_CLEAN && s->outcome == SEQUENCE_OPEN &&
            s->pattern != PATTERN_CERT_REJECTED_OPEN && s->n_failures > 0)
                fputs(" (the retry window is still open)", f);
        fputc('.', f);
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(text);
}
