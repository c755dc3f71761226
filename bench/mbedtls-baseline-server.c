/* SPDX-License-Identifier: MIT */
/* The baseline for tlswatchd's handshake throughput: a minimal Mbed TLS server with no recording.
 * The same library and configuration as daemon/server/tls.c (groups P-256 then X25519, session tickets and
 * cache, ALPN); --groups x25519,p256 and --no-tickets measure the alternatives;
 * N worker threads, each with its own epoll loop and SO_REUSEPORT listening socket, non-blocking
 * handshakes. After the handshake it is a minimal HTTP/1.1 server, so that it does the same work per
 * connection as tlswatchd minus the recording and the page: it reads a request's headers (up to the
 * blank line), answers GET / with 200 and a fixed body of --body-bytes (default 9500, about the size
 * of tlswatchd's page with a full list of recent attempts) and anything else with 404, keeps the
 * connection for the next request unless the request says Connection: close (or is HTTP/1.0 without
 * keep-alive), and then closes as tlswatchd does: close_notify, shutdown(SHUT_WR), read until the
 * client closes. A client that sends close_notify or closes without a request (loadgen without
 * --request) is answered with close_notify and closed, as before.
 *
 *   mbedtls-baseline-server --listen 127.0.0.1:PORT --cert FILE --key FILE [--threads N]
 *                           [--groups x25519,p256|p256,x25519] [--no-tickets] [--body-bytes N]
 *
 * Runs until SIGTERM/SIGINT. */

#include <arpa/inet.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "macro.h"

#define MAX_THREADS 64
#define MAX_CONNECTIONS_PER_THREAD 20000
#define MAX_REQUEST_BYTES 8192

typedef enum Phase {
        PHASE_HANDSHAKE,
        PHASE_REQUEST,  /* reading a request's headers */
        PHASE_RESPONSE, /* writing the response */
        PHASE_LINGER,   /* our side is closed: read and discard until the client closes */
} Phase;

typedef struct Response {
        char *data;
        size_t len;
} Response;

typedef struct Conn {
        int fd;
        Phase phase;
        bool close_after;
        const Response *out;
        size_t out_off;
        size_t in_len;
        char in[MAX_REQUEST_BYTES + 1];
        mbedtls_ssl_context ssl;
} Conn;

static struct sockaddr_in arg_addr;
static const char *arg_cert, *arg_key;
static unsigned arg_threads = 2;
static bool arg_p256_first = true, arg_no_tickets;
static unsigned long arg_body_bytes = 9500;

/* [status: 0 200, 1 404, 2 400][0 keep-alive, 1 close] */
static Response responses[3][2];

static mbedtls_ssl_config conf;
static mbedtls_x509_crt chain;
static mbedtls_pk_context key;
static mbedtls_ssl_ticket_context tickets;
static mbedtls_ssl_cache_context cache;

static const uint16_t groups_x25519_first[] = {
        MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
        MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
        MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};
static const uint16_t groups_p256_first[] = {
        MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
        MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
        MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};
static const char *alpn[] = {"http/1.1", NULL};

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
        Conn *c = ctx;
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

        if (n >= 0)
                return (int) n;
        if (errno == EAGAIN || errno == EINTR)
                return MBEDTLS_ERR_SSL_WANT_WRITE;
        return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
        Conn *c = ctx;
        ssize_t n = recv(c->fd, buf, len, 0);

        if (n > 0)
                return (int) n;
        if (n == 0)
                return MBEDTLS_ERR_NET_CONN_RESET;
        if (errno == EAGAIN || errno == EINTR)
                return MBEDTLS_ERR_SSL_WANT_READ;
        return MBEDTLS_ERR_NET_RECV_FAILED;
}

static void conn_free(int ep, Conn *c) {
        (void) epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        (void) close(c->fd);
        mbedtls_ssl_free(&c->ssl);
        free(c);
}

static int
response_make(Response *r, int status, const char *reason, const char *body, size_t body_len, bool close) {
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);

        if (!f)
                return -ENOMEM;
        fprintf(f,
                "HTTP/1.1 %d %s\r\n"
                "Server: baseline\r\n"
                "Content-Type: %s\r\n"
                "Content-Length: %zu\r\n"
                "Cache-Control: no-store\r\n"
                "X-Content-Type-Options: nosniff\r\n"
                "Connection: %s\r\n"
                "\r\n",
                status,
                reason,
                status == 200 ? "text/html; charset=utf-8" : "text/plain; charset=utf-8",
                body_len,
                close ? "close" : "keep-alive");
        fwrite(body, 1, body_len, f);
        if (ferror(f) || fclose(f) != 0) {
                free(out);
                return -ENOMEM;
        }
        r->data = out;
        r->len = n;
        return 0;
}

/* The fixed page: arg_body_bytes of HTML (at least its frame). */
static int responses_setup(void) {
        static const char head[] = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                                   "<title>baseline</title></head><body>\n<pre>\n";
        static const char tail[] = "</pre>\n</body></html>\n";
        size_t frame = strlen(head) + strlen(tail), len = MAX(arg_body_bytes, frame);
        _cleanup_free_ char *page = malloc(len);

        if (!page)
                return -ENOMEM;
        memcpy(page, head, strlen(head));
        for (size_t i = strlen(head); i < len - strlen(tail); i++)
                page[i] = (i % 64 == 63) ? '\n' : (char) ('a' + i % 26);
        memcpy(page + len - strlen(tail), tail, strlen(tail));
        for (int c = 0; c < 2; c++)
                if (response_make(&responses[0][c], 200, "OK", page, len, c) < 0 ||
                    response_make(&responses[1][c], 404, "Not Found", "404 Not Found\n", 14, c) < 0 ||
                    response_make(&responses[2][c], 400, "Bad Request", "400 Bad Request\n", 16, c) < 0)
                        return -ENOMEM;
        return 0;
}

/* Does the comma-separated header value [v, end) hold token? */
static bool value_has_token(const char *v, const char *end, const char *token) {
        size_t l = strlen(token);

        for (const char *p = v; p + l <= end; p++)
                if (strncasecmp(p, token, l) == 0 &&
                    (p == v || p[-1] == ' ' || p[-1] == ',' || p[-1] == '\t') &&
                    (p + l == end || p[l] == ' ' || p[l] == ',' || p[l] == '\t' || p[l] == '\r'))
                        return true;
        return false;
}

/* The request in c->in[0, len) (its headers end at len): picks the response and consumes it. */
static void request_answer(Conn *c, size_t len) {
        const char *line_end = memmem(c->in, len, "\r\n", 2), *sp1, *sp2;
        bool http10 = false, close = false, keep = false, ok;
        int status;

        sp1 = memchr(c->in, ' ', (size_t) (line_end - c->in));
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t) (line_end - sp1 - 1)) : NULL;
        ok = sp1 && sp2 && (size_t) (line_end - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0;
        if (!ok)
                status = 2;
        else {
                http10 = sp2[8] == '0';
                status = sp1 - c->in == 3 && memcmp(c->in, "GET", 3) == 0 && sp2 - sp1 - 1 == 1 && sp1[1] == '/'
                        ? 0
                        : 1;
        }
        for (const char *p = line_end + 2; p < c->in + len - 2;) {
                const char *e = memmem(p, (size_t) (c->in + len - p), "\r\n", 2);

                if (!e)
                        break;
                if (e - p > 11 && strncasecmp(p, "Connection:", 11) == 0) {
                        close = close || value_has_token(p + 11, e, "close");
                        keep = keep || value_has_token(p + 11, e, "keep-alive");
                }
                p = e + 2;
        }
        c->close_after = !ok || close || (http10 && !keep);
        c->out = &responses[status][c->close_after];
        c->out_off = 0;
        c->phase = PHASE_RESPONSE;
        memmove(c->in, c->in + len, c->in_len - len);
        c->in_len -= len;
}

/* After our response with Connection: close: close_notify, FIN, then read until the client closes
 * (no RST over our answer, no TIME_WAIT on our side: the client resets). */
static void conn_linger(Conn *c) {
        (void) mbedtls_ssl_close_notify(&c->ssl); /* best effort */
        (void) shutdown(c->fd, SHUT_WR);
        c->phase = PHASE_LINGER;
}

/* Steps one connection; returns false once it is finished and freed. */
static bool conn_step(int ep, Conn *c) {
        struct epoll_event e = {.data.ptr = c};
        int r = 0;

        if (c->phase == PHASE_HANDSHAKE) {
                r = mbedtls_ssl_handshake(&c->ssl);
                if (r == 0)
                        c->phase = PHASE_REQUEST;
        }
        while (c->phase != PHASE_HANDSHAKE) {
                if (c->phase == PHASE_LINGER) {
                        char buf[4096];
                        ssize_t n = recv(c->fd, buf, sizeof buf, 0);

                        if (n > 0)
                                continue;
                        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                                r = MBEDTLS_ERR_SSL_WANT_READ;
                                break;
                        }
                        conn_free(ep, c);
                        return false;
                }
                if (c->phase == PHASE_RESPONSE) {
                        r = mbedtls_ssl_write(
                                &c->ssl,
                                (const unsigned char *) c->out->data + c->out_off,
                                c->out->len - c->out_off);
                        if (r < 0)
                                break;
                        c->out_off += (size_t) r;
                        if (c->out_off < c->out->len)
                                continue;
                        if (c->close_after)
                                conn_linger(c);
                        else
                                c->phase = PHASE_REQUEST;
                        continue;
                }
                /* PHASE_REQUEST */
                if (c->in_len > 0) {
                        const char *end;

                        c->in[c->in_len] = 0;
                        end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
                        if (end) {
                                request_answer(c, (size_t) (end - c->in) + 4);
                                continue;
                        }
                        if (c->in_len >= MAX_REQUEST_BYTES) {
                                request_answer(c, c->in_len); /* 400, then close */
                                continue;
                        }
                }
                r = mbedtls_ssl_read(
                        &c->ssl, (unsigned char *) c->in + c->in_len, MAX_REQUEST_BYTES - c->in_len);
                if (r > 0)
                        c->in_len += (size_t) r;
                else if (r != MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
                        break;
        }
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
                e.events = r == MBEDTLS_ERR_SSL_WANT_READ ? EPOLLIN : EPOLLOUT;
                (void) epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                return true;
        }
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
                (void) mbedtls_ssl_close_notify(&c->ssl);
        conn_free(ep, c);
        return false;
}

static int listener_new(void) {
        int fd, one = 1;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
            bind(fd, (struct sockaddr *) &arg_addr, sizeof arg_addr) < 0 || listen(fd, 4096) < 0) {
                int r = -errno;

                (void) close(fd);
                return r;
        }
        return fd;
}

static void worker_accept(int ep, int lfd, unsigned *n_conns) {
        for (;;) {
                struct epoll_event e = {.events = EPOLLIN};
                Conn *c;
                int fd, one = 1;

                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                        return;
                if (*n_conns >= MAX_CONNECTIONS_PER_THREAD || !(c = calloc(1, sizeof *c))) {
                        (void) close(fd);
                        continue;
                }
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c->fd = fd;
                mbedtls_ssl_init(&c->ssl);
                if (mbedtls_ssl_setup(&c->ssl, &conf) != 0) {
                        mbedtls_ssl_free(&c->ssl);
                        (void) close(fd);
                        free(c);
                        continue;
                }
                mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
                e.data.ptr = c;
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
                        mbedtls_ssl_free(&c->ssl);
                        (void) close(fd);
                        free(c);
                        continue;
                }
                (*n_conns)++;
        }
}

static void *worker_run(void *userdata) {
        int lfd = (int) (intptr_t) userdata, ep;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
        unsigned n_conns = 0;

        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) < 0) {
                fprintf(stderr, "epoll: %m\n");
                exit(1);
        }
        for (;;) {
                struct epoll_event ev[64];
                int n = epoll_wait(ep, ev, (int) ELEMENTSOF(ev), -1);

                for (int i = 0; i < n; i++)
                        if (!ev[i].data.ptr)
                                worker_accept(ep, lfd, &n_conns);
                        else if (!conn_step(ep, ev[i].data.ptr))
                                n_conns--;
        }
        return NULL;
}

static int config_setup(void) {
        char err[160];
        int r;

        if (psa_crypto_init() != PSA_SUCCESS)
                return -EIO;
        mbedtls_ssl_config_init(&conf);
        mbedtls_x509_crt_init(&chain);
        mbedtls_pk_init(&key);
        mbedtls_ssl_ticket_init(&tickets);
        mbedtls_ssl_cache_init(&cache);
        if ((r = mbedtls_x509_crt_parse_file(&chain, arg_cert)) != 0 ||
            (r = mbedtls_pk_parse_keyfile(&key, arg_key, NULL, mbedtls_psa_get_random, NULL)) != 0 ||
            (r = mbedtls_ssl_config_defaults(
                     &conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) !=
                    0 ||
            (r = mbedtls_ssl_conf_alpn_protocols(&conf, alpn)) != 0 ||
            (r = mbedtls_ssl_conf_own_cert(&conf, &chain, &key)) != 0) {
                mbedtls_strerror(r, err, sizeof err);
                fprintf(stderr, "Mbed TLS set-up failed: %s\n", err);
                return -EINVAL;
        }
        mbedtls_ssl_conf_rng(&conf, mbedtls_psa_get_random, NULL);
        mbedtls_ssl_conf_groups(&conf, arg_p256_first ? groups_p256_first : groups_x25519_first);
        mbedtls_ssl_cache_set_max_entries(&cache, 10000);
        mbedtls_ssl_conf_session_cache(&conf, &cache, mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
        if (arg_no_tickets) {
                mbedtls_ssl_conf_session_tickets(&conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
                mbedtls_ssl_conf_new_session_tickets(&conf, 0);
        } else {
                r = mbedtls_ssl_ticket_setup(
                        &tickets, mbedtls_psa_get_random, NULL, MBEDTLS_CIPHER_AES_256_GCM, 86400);
                if (r != 0)
                        return -EIO;
                mbedtls_ssl_conf_session_tickets_cb(
                        &conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &tickets);
        }
        return 0;
}

static int parse_args(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (streq(a, "--no-tickets")) {
                        arg_no_tickets = true;
                        continue;
                }
                if (!v) {
                        fprintf(stderr, "Unknown option or missing value: %s\n", a);
                        return -EINVAL;
                }
                i++;
                if (streq(a, "--listen")) {
                        char host[32];
                        const char *colon = strrchr(v, ':');
                        unsigned long port;
                        char *end;

                        if (!colon || (size_t) (colon - v) >= sizeof host)
                                return -EINVAL;
                        memcpy(host, v, (size_t) (colon - v));
                        host[colon - v] = 0;
                        errno = 0;
                        port = strtoul(colon + 1, &end, 10);
                        if (errno || *end || port == 0 || port > 65535 ||
                            inet_pton(AF_INET, host, &arg_addr.sin_addr) != 1) {
                                fprintf(stderr, "Invalid --listen %s (want IPv4:PORT)\n", v);
                                return -EINVAL;
                        }
                        arg_addr.sin_family = AF_INET;
                        arg_addr.sin_port = htons((uint16_t) port);
                } else if (streq(a, "--cert"))
                        arg_cert = v;
                else if (streq(a, "--key"))
                        arg_key = v;
                else if (streq(a, "--groups")) {
                        if (!streq(v, "x25519,p256") && !streq(v, "p256,x25519")) {
                                fprintf(stderr, "--groups wants x25519,p256 or p256,x25519\n");
                                return -EINVAL;
                        }
                        arg_p256_first = streq(v, "p256,x25519");
                } else if (streq(a, "--body-bytes")) {
                        char *end;

                        errno = 0;
                        arg_body_bytes = strtoul(v, &end, 10);
                        if (errno || *end || end == v || arg_body_bytes > 1024 * 1024) {
                                fprintf(stderr, "--body-bytes wants 0..1048576\n");
                                return -EINVAL;
                        }
                } else if (streq(a, "--threads")) {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(v, &end, 10);
                        if (errno || *end || n < 1 || n > MAX_THREADS) {
                                fprintf(stderr, "--threads wants 1..%d\n", MAX_THREADS);
                                return -EINVAL;
                        }
                        arg_threads = (unsigned) n;
                } else {
                        fprintf(stderr, "Unknown option: %s\n", a);
                        return -EINVAL;
                }
        }
        if (arg_addr.sin_family == 0 || !arg_cert || !arg_key) {
                fprintf(stderr, "--listen, --cert and --key are required\n");
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char **argv) {
        pthread_t threads[MAX_THREADS];
        sigset_t ss;
        int sig;

        if (parse_args(argc, argv) < 0)
                return 2;
        if (config_setup() < 0 || responses_setup() < 0)
                return 1;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        for (unsigned i = 0; i < arg_threads; i++) {
                int lfd = listener_new();

                if (lfd < 0) {
                        fprintf(stderr, "Cannot listen: %s\n", strerror(-lfd));
                        return 1;
                }
                if (pthread_create(&threads[i], NULL, worker_run, (void *) (intptr_t) lfd) != 0) {
                        fprintf(stderr, "Cannot start a thread\n");
                        return 1;
                }
        }
        (void) sigwait(&ss, &sig);
        return 0;
}
