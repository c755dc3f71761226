/* SPDX-License-Identifier: MIT */
/* The baseline for tlswatchd's handshake throughput: a minimal Mbed TLS server with no recording.
 * The same library and configuration as daemon/server/tls.c (groups P-256 then X25519, session tickets and
 * cache, ALPN); --groups x25519,p256 and --no-tickets measure the alternatives;
 * N worker threads, each with its own epoll loop and SO_REUSEPORT listening socket, non-blocking
 * handshakes; after the handshake it reads until the client's close_notify or EOF and closes.
 *
 *   mbedtls-baseline-server --listen 127.0.0.1:PORT --cert FILE --key FILE [--threads N]
 *                           [--groups x25519,p256|p256,x25519] [--no-tickets]
 *
 * Runs until SIGTERM/SIGINT. No request is answered: the load generator only handshakes. */

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
#include <sys/epoll.h>
#include <sys/socket.h>

#include "macro.h"

#define MAX_THREADS 64
#define MAX_CONNECTIONS_PER_THREAD 20000

typedef struct Conn {
        int fd;
        bool handshake_done;
        mbedtls_ssl_context ssl;
} Conn;

static struct sockaddr_in arg_addr;
static const char *arg_cert, *arg_key;
static unsigned arg_threads = 2;
static bool arg_p256_first = true, arg_no_tickets;

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

/* Steps one connection; returns false once it is finished and freed. */
static bool conn_step(int ep, Conn *c) {
        struct epoll_event e = {.data.ptr = c};
        unsigned char buf[1024];
        int r;

        if (!c->handshake_done) {
                r = mbedtls_ssl_handshake(&c->ssl);
                if (r == 0)
                        c->handshake_done = true;
        }
        if (c->handshake_done)
                do
                        r = mbedtls_ssl_read(&c->ssl, buf, sizeof buf);
                while (r > 0 || r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET);
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
        if (config_setup() < 0)
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
