/* SPDX-License-Identifier: MIT */
/* A real Mbed TLS client, in a thread of this process, against the server's own code over a socketpair():
 * tlswatchd's TLS context (tls.c) with a certificate from cert.c, a worker of a real Server, conn_new()
 * with its handshake stepping, ClientHello capture and outcome classification, and the record read back
 * from the real store. Cases: a TLS 1.3 and a TLS 1.2 handshake with a request, a client that does not
 * trust our certificate (TLS 1.3 and 1.2), one offering only a cipher suite we cannot use, and one
 * offering only TLS 1.2 to a server that requires TLS 1.3. */
#include <arpa/inet.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cert.h"
#include "conn.h"
#include "outcome.h"
#include "tap.h"
#include "tls.h"

#define CASE_TIMEOUT_US (20 * USEC_PER_SEC)

typedef struct Client {
        int fd;
        mbedtls_ssl_protocol_version min_version, max_version;
        const int *ciphersuites; /* NULL: Mbed TLS's default list */
        mbedtls_x509_crt *ca;    /* NULL: no verification */
        const char *request;     /* sent after a completed handshake; the answer is read to the end */
        int handshake_ret;       /* what mbedtls_ssl_handshake() returned */
        uint32_t verify_result;  /* mbedtls_ssl_get_verify_result() */
        char response[16384];
        size_t response_len;
        char drained[4096];
        atomic_bool done;
} Client;

static int client_send(void *userdata, const unsigned char *buf, size_t len) {
        ssize_t n = send(*(int *) userdata, buf, len, MSG_NOSIGNAL);

        return n < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int) n;
}

static int client_recv(void *userdata, unsigned char *buf, size_t len) {
        ssize_t n = recv(*(int *) userdata, buf, len, 0);

        return n < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int) n; /* also the receive timeout */
}

static void *client_run(void *userdata) {
        static const char *alpn[] = {"http/1.1", NULL};
        Client *c = userdata;
        mbedtls_ssl_config conf;
        mbedtls_ssl_context ssl;
        int r;

        mbedtls_ssl_config_init(&conf);
        mbedtls_ssl_init(&ssl);
        r = mbedtls_ssl_config_defaults(
                &conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
        if (r == 0) {
                mbedtls_ssl_conf_rng(&conf, mbedtls_psa_get_random, NULL);
                mbedtls_ssl_conf_min_tls_version(&conf, c->min_version);
                mbedtls_ssl_conf_max_tls_version(&conf, c->max_version);
                if (c->ciphersuites)
                        mbedtls_ssl_conf_ciphersuites(&conf, c->ciphersuites);
                if (c->ca) {
                        mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
                        mbedtls_ssl_conf_ca_chain(&conf, c->ca, NULL);
                } else
                        mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
                r = mbedtls_ssl_conf_alpn_protocols(&conf, alpn);
        }
        if (r == 0)
                r = mbedtls_ssl_setup(&ssl, &conf);
        if (r == 0)
                r = mbedtls_ssl_set_hostname(&ssl, "localhost");
        if (r == 0) {
                mbedtls_ssl_set_bio(&ssl, &c->fd, client_send, client_recv, NULL);
                r = mbedtls_ssl_handshake(&ssl);
                c->verify_result = mbedtls_ssl_get_verify_result(&ssl);
        }
        c->handshake_ret = r;
        if (r == 0 && c->request) {
                size_t off = 0, len = strlen(c->request);

                while (off < len) {
                        r = mbedtls_ssl_write(&ssl, (const unsigned char *) c->request + off, len - off);
                        if (r <= 0)
                                break;
                        off += (size_t) r;
                }
                for (;;) {
                        r = mbedtls_ssl_read(
                                &ssl,
                                (unsigned char *) c->response + c->response_len,
                                sizeof c->response - 1 - c->response_len);
                        if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
                                continue;
                        if (r <= 0)
                                break; /* close_notify or EOF after the answer */
                        c->response_len += (size_t) r;
                }
                (void) mbedtls_ssl_close_notify(&ssl);
        }
        mbedtls_ssl_free(&ssl);
        mbedtls_ssl_config_free(&conf);
        /* Hang up politely: FIN, then read until the server closes. Closing a socket with unread data (the
         * rest of our flight after a rejected certificate) resets it, and the server would see the alert
         * only in what it drains after the reset, or not at all, depending on who was faster (both recorded
         * as peer_alert, see test-outcome; this test wants one path). */
        (void) shutdown(c->fd, SHUT_WR);
        while (recv(c->fd, c->drained, sizeof c->drained, 0) > 0)
                ;
        close(c->fd);
        atomic_store(&c->done, true);
        return NULL;
}

/* The connection's host, as a worker is one: the test's own event loop, and the record it hands over kept
 * here instead of going to the sinks. */
typedef struct Env {
        char dir[64], cert[128], key[128], other_cert[128], other_key[128];
        TlsShared *shared;
        TlsContext *tls12_13, *tls13_only, *current;
        mbedtls_x509_crt our_ca, other_ca;
        ConnHost host;
        Conn *conn;        /* open connection, NULL once closed */
        Attempt *recorded; /* what the connection recorded */
        unsigned n_recorded, n_served;
} Env;

static void host_record(void *userdata, Attempt *a) {
        Env *e = userdata;

        e->n_recorded++;
        attempt_free(e->recorded);
        e->recorded = a;
}

static TlsContext *host_get_tls(void *userdata) {
        Env *e = userdata;
        return tls_context_ref(e->current);
}

static void host_note(void *userdata, const Attempt *a) {
}

static bool host_served_since(void *userdata, const Attempt *a, int64_t since_us) {
        return false; /* no other connection of this client */
}

static void host_request_served(void *userdata) {
        Env *e = userdata;
        e->n_served++;
}

static void host_closed(void *userdata, Conn *c) {
        Env *e = userdata;

        if (c == e->conn)
                e->conn = NULL;
}

static const ConnHostOps host_ops = {
        .record = host_record,
        .get_tls = host_get_tls,
        .note_request = host_note,
        .note_served_close = host_note,
        .client_served_since = host_served_since,
        .request_served = host_request_served,
        .closed = host_closed,
};

/* Runs one client against one connection (conn.c, as a worker adopts an accepted socket); returns the
 * attempt it recorded, or NULL. */
static Attempt *run_case(Env *e, Client *c, const char *addr, TlsContext *tls) {
        struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
        struct timeval tv = {.tv_sec = 10};
        int64_t since = now_realtime_us(), deadline = since + CASE_TIMEOUT_US;
        pthread_t thread;
        int sv[2], r;

        e->current = tls;
        e->n_recorded = 0;
        e->recorded = attempt_free(e->recorded);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || fd_nonblock(sv[0]) < 0) {
                ok(false, "%s: socketpair", addr);
                return NULL;
        }
        (void) setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        inet_pton(AF_INET, addr, &peer.sin_addr);
        c->fd = sv[1];
        atomic_store(&c->done, false);
        if (pthread_create(&thread, NULL, client_run, c) != 0) {
                ok(false, "%s: client thread", addr);
                close(sv[0]);
                close(sv[1]);
                return NULL;
        }
        r = conn_new(&e->host, sv[0], (struct sockaddr *) &peer, since, &e->conn);
        if (r < 0)
                ok(false, "%s: conn_new: %s", addr, strerror(-r));
        /* the worker's event loop, run here: until the connection is gone and the client finished */
        while ((e->conn || !atomic_load(&c->done)) && now_realtime_us() < deadline)
                (void) sd_event_run(e->host.event, 100 * USEC_PER_MSEC);
        ok(!e->conn && atomic_load(&c->done), "%s: connection and client finished in time", addr);
        if (!atomic_load(&c->done))
                (void) shutdown(sv[1], SHUT_RDWR);
        pthread_join(thread, NULL);
        if (e->conn)
                conn_abort(e->conn, "test case over");

        if (!is_int(e->n_recorded, 1, "%s: exactly one attempt recorded", addr))
                return NULL;
        return TAKE_PTR(e->recorded);
}

static const char request[] = "GET /api/self HTTP/1.1\r\nHost: localhost\r\nUser-Agent: "
                              "test-conn-socketpair\r\nConnection: close\r\n\r\n";

static void check_ok(Env *e, const char *addr, mbedtls_ssl_protocol_version v, const char *version) {
        Client c = {.min_version = v, .max_version = v, .ca = &e->our_ca, .request = request};
        _cleanup_(attempt_freep) Attempt *a = run_case(e, &c, addr, e->tls12_13);
        const char *ja4_prefix = v == MBEDTLS_SSL_VERSION_TLS1_3 ? "t13d" : "t12d";

        is_int(c.handshake_ret, 0, "%s: the client completed the handshake, verifying our certificate", version);
        ok(c.response_len > 0 && strncmp(c.response, "HTTP/1.1 200 ", 13) == 0,
           "%s: the client got our page",
           version);
        if (!a)
                return;
        is_str(outcome_to_string(a->outcome), "ok", "%s: outcome ok", version);
        is_str(handshake_step_to_string(a->state_reached), "done", "%s: state_reached done", version);
        is_str(a->version, version, "%s: negotiated version", version);
        ok(a->cipher && strncmp(a->cipher, "TLS_", 4) == 0, "%s: cipher %s", version, strna(a->cipher));
        ok(a->ja4 && strncmp(a->ja4, ja4_prefix, 4) == 0, "%s: JA4 %s", version, strna(a->ja4));
        ok(a->ja3 && strlen(a->ja3) == 32, "%s: JA3 %s", version, strna(a->ja3));
        ok(a->alpn.data && strcmp(a->alpn.data, "http/1.1") == 0, "%s: ALPN http/1.1", version);
        ok(a->sni.data && strcmp(a->sni.data, "localhost") == 0, "%s: SNI localhost", version);
        is_int(a->http_requests, 1, "%s: one request", version);
        ok(a->user_agent.data && strcmp(a->user_agent.data, "test-conn-socketpair") == 0,
           "%s: the request's User-Agent",
           version);
        is_int(a->alert_received, -1, "%s: no alert received", version);
        is_int(a->alert_sent, -1, "%s: no alert sent", version);
        is_int(a->tls_error, 0, "%s: no error", version);
        is_str(a->error_text, NULL, "%s: no error text", version);
        is_str(close_kind_to_string(a->close_kind), "server", "%s: we closed after our answer", version);
        ok(!a->resumed && !a->hello_retry, "%s: neither resumed nor retried", version);
        ok(a->bytes_in > 0 && a->bytes_out > a->bytes_in, "%s: bytes counted", version);
        is_str(a->peer_addr, addr, "%s: the peer address conn_new() was given", version);
}

/* An Mbed TLS client rejecting our certificate sends its TLS 1.3 alert in plaintext, as OpenSSL does: Mbed
 * TLS on our side reports a bad MAC, and tls-private.c finds the alert (tlswatchd(8)). */
static void check_untrusted(Env *e, const char *addr, mbedtls_ssl_protocol_version v, const char *version) {
        int tls_error = v == MBEDTLS_SSL_VERSION_TLS1_3 ? OUTCOME_ERR_SSL_INVALID_MAC
                                                        : OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE;
        Client c = {.min_version = v, .max_version = v, .ca = &e->other_ca, .request = request};
        _cleanup_(attempt_freep) Attempt *a = run_case(e, &c, addr, e->tls12_13);

        is_int(c.handshake_ret,
               MBEDTLS_ERR_X509_CERT_VERIFY_FAILED,
               "%s, untrusted CA: the client's handshake fails verifying",
               version);
        ok(c.verify_result & MBEDTLS_X509_BADCERT_NOT_TRUSTED, "%s, untrusted CA: not trusted", version);
        if (!a)
                return;
        is_str(outcome_to_string(a->outcome), "peer_alert", "%s, untrusted CA: outcome peer_alert", version);
        is_int(a->alert_received, 48, "%s, untrusted CA: alert unknown_ca(48) received", version);
        is_int(a->tls_error, tls_error, "%s, untrusted CA: Mbed TLS's error", version);
        is_str(a->error_text, "client sent fatal alert unknown_ca(48)", "%s, untrusted CA: error_text", version);
        is_str(close_kind_to_string(a->close_kind), "alert", "%s, untrusted CA: closed by an alert", version);
        is_str(handshake_step_to_string(a->state_reached),
               "server_flight",
               "%s, untrusted CA: our flight was out",
               version);
        is_int(a->alert_sent, -1, "%s, untrusted CA: we sent no alert", version);
        ok(a->ja4 != NULL, "%s, untrusted CA: the hello was fingerprinted", version);
        is_str(a->version, NULL, "%s, untrusted CA: no version negotiated", version);
}

static void check_no_cipher(Env *e) {
        /* RSA key exchange suites: our certificate's key is ECDSA P-256 */
        static const int suites[] = {
                MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                0,
        };
        Client c = {
                .min_version = MBEDTLS_SSL_VERSION_TLS1_2,
                .max_version = MBEDTLS_SSL_VERSION_TLS1_2,
                .ciphersuites = suites,
        };
        _cleanup_(attempt_freep) Attempt *a = run_case(e, &c, "192.0.2.5", e->tls12_13);

        is_int(c.handshake_ret,
               MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE,
               "only ECDHE-RSA suites: the client gets a fatal alert");
        if (!a)
                return;
        is_str(outcome_to_string(a->outcome), "tls_error", "only ECDHE-RSA suites: outcome tls_error");
        is_int(a->alert_sent, 40, "only ECDHE-RSA suites: we sent handshake_failure(40)");
        is_int(a->alert_received, -1, "only ECDHE-RSA suites: no alert received");
        is_int(a->tls_error, OUTCOME_ERR_SSL_HANDSHAKE_FAILURE, "only ECDHE-RSA suites: Mbed TLS's error");
        is_str(a->error_text, "The handshake negotiation failed", "only ECDHE-RSA suites: error_text");
        is_str(close_kind_to_string(a->close_kind), "server", "only ECDHE-RSA suites: we closed");
        is_str(handshake_step_to_string(a->state_reached),
               "client_hello",
               "only ECDHE-RSA suites: state_reached client_hello");
        is_str(a->offered_versions, "TLSv1.2", "only ECDHE-RSA suites: offered TLS 1.2");
        ok(a->ja4 && strncmp(a->ja4, "t12d", 4) == 0, "only ECDHE-RSA suites: JA4 %s", strna(a->ja4));
}

static void check_no_version(Env *e) {
        Client c = {.min_version = MBEDTLS_SSL_VERSION_TLS1_2, .max_version = MBEDTLS_SSL_VERSION_TLS1_2};
        _cleanup_(attempt_freep) Attempt *a = run_case(e, &c, "192.0.2.6", e->tls13_only);

        is_int(c.handshake_ret,
               MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE,
               "TLS 1.2 to a TLS 1.3 server: the client gets a fatal alert");
        if (!a)
                return;
        is_str(outcome_to_string(a->outcome), "tls_error", "TLS 1.2 to a TLS 1.3 server: outcome tls_error");
        is_int(a->alert_sent, 70, "TLS 1.2 to a TLS 1.3 server: we sent protocol_version(70)");
        is_int(a->tls_error,
               OUTCOME_ERR_SSL_BAD_PROTOCOL_VERSION,
               "TLS 1.2 to a TLS 1.3 server: Mbed TLS's error");
        is_str(a->error_text,
               "Handshake protocol not within min/max boundaries",
               "TLS 1.2 to a TLS 1.3 server: error_text");
        is_str(close_kind_to_string(a->close_kind), "server", "TLS 1.2 to a TLS 1.3 server: we closed");
        is_str(handshake_step_to_string(a->state_reached),
               "client_hello",
               "TLS 1.2 to a TLS 1.3 server: state_reached client_hello");
        is_str(a->offered_versions, "TLSv1.2", "TLS 1.2 to a TLS 1.3 server: offered TLS 1.2");
}

static int env_setup(Env *e) {
        TlsSettings tls = {
                .min_version = MBEDTLS_SSL_VERSION_TLS1_2,
                .max_version = MBEDTLS_SSL_VERSION_TLS1_3,
        };
        int r;

        mbedtls_x509_crt_init(&e->our_ca);
        mbedtls_x509_crt_init(&e->other_ca);
        strcpy(e->dir, "/tmp/test-conn-socketpair.XXXXXX");
        if (!mkdtemp(e->dir))
                return -errno;
        (void) snprintf(e->cert, sizeof e->cert, "%s/cert.pem", e->dir);
        (void) snprintf(e->key, sizeof e->key, "%s/key.pem", e->dir);
        (void) snprintf(e->other_cert, sizeof e->other_cert, "%s/other-cert.pem", e->dir);
        (void) snprintf(e->other_key, sizeof e->other_key, "%s/other-key.pem", e->dir);

        r = tls_global_init();
        if (r < 0)
                return r;
        r = cert_generate_self_signed(e->cert, e->key);
        if (r < 0)
                return r;
        r = cert_generate_self_signed(e->other_cert, e->other_key);
        if (r < 0)
                return r;
        if (mbedtls_x509_crt_parse_file(&e->our_ca, e->cert) != 0 ||
            mbedtls_x509_crt_parse_file(&e->other_ca, e->other_cert) != 0)
                return -EINVAL;
        r = sd_event_new(&e->host.event);
        if (r < 0)
                return r;
        e->host.ops = &host_ops;
        e->host.userdata = e;
        e->host.settings = (ConnSettings){
                .handshake_timeout_us = 10 * USEC_PER_SEC,
                .idle_timeout_us = 5 * USEC_PER_SEC,
                .max_requests = 100,
        };
        r = tls_shared_new(&e->shared);
        if (r < 0)
                return r;
        tls.cert_path = e->cert;
        tls.key_path = e->key;
        r = tls_context_new(&tls, e->shared, &e->tls12_13);
        if (r < 0)
                return r;
        tls.min_version = MBEDTLS_SSL_VERSION_TLS1_3;
        return tls_context_new(&tls, e->shared, &e->tls13_only);
}

static void env_done(Env *e) {
        const char *files[] = {e->cert, e->key, e->other_cert, e->other_key};

        attempt_free(e->recorded);
        tls_context_unref(e->tls12_13);
        tls_context_unref(e->tls13_only);
        mbedtls_x509_crt_free(&e->our_ca);
        mbedtls_x509_crt_free(&e->other_ca);
        tls_shared_free(e->shared);
        sd_event_unref(e->host.event);
        FOREACH_ARRAY(f, files, ELEMENTSOF(files))
                (void) unlink(*f);
        (void) rmdir(e->dir);
}

int main(void) {
        Env e = {};
        int r;

        r = env_setup(&e);
        if (!is_int(r, 0, "a connection's host: TLS contexts from a generated certificate, an event loop")) {
                env_done(&e);
                return tap_done();
        }
        check_ok(&e, "192.0.2.1", MBEDTLS_SSL_VERSION_TLS1_3, "TLSv1.3");
        check_ok(&e, "192.0.2.2", MBEDTLS_SSL_VERSION_TLS1_2, "TLSv1.2");
        check_untrusted(&e, "192.0.2.3", MBEDTLS_SSL_VERSION_TLS1_3, "TLSv1.3");
        check_untrusted(&e, "192.0.2.4", MBEDTLS_SSL_VERSION_TLS1_2, "TLSv1.2");
        check_no_cipher(&e);
        check_no_version(&e);
        env_done(&e);
        return tap_done();
}
