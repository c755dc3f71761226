/* SPDX-License-Identifier: MIT */
/* TLS handshake load generator (OpenSSL client): every connection makes exactly one full handshake
 * (no session reuse) and records its latency (connect() to handshake done). Then, by default (the
 * hang-up mode), it sends close_notify, waits for the server to close and resets the connection (no
 * TIME_WAIT pile-up on loopback). With --request PATH it does what a browser's connection does: one
 * HTTP/1.1 request (GET PATH, Host, Connection: close), the whole response read (headers, then the
 * body up to its Content-Length, or until the server closes if it gives none), then it waits for the
 * server to close, as Connection: close asks, and resets the connection.
 *
 *   loadgen --connect 127.0.0.1:PORT [--tls 1.2|1.3] [--lite] [--clients C] [--seconds S] [--rate HS/S]
 *           [--count N] [--pid PID]... [--request PATH [--expect STATUS] [--host HOST]]
 *   loadgen --connect 127.0.0.1:PORT --hold N [--pid PID] [--seconds S]
 *
 * The first form prints one line of key=value figures: handshakes, errors, hs_per_s, p50/p99/max
 * latency in ms, the client's CPU per handshake and, with --pid, the server's (utime+stime of
 * those processes from /proc/PID/stat, all threads). --count stops after N handshakes in all.
 * With --rate, each client paces its connections at RATE/C per second, the clients staggered.
 * --lite uses tls13-lite.c instead of libssl: TLS 1.3 only, a third of the client CPU per handshake
 * (it shares the machine's two CPUs with the server under test); it only hangs up (no --request).
 * With --request, a connection counts as a success only if its response is complete and has the
 * status --expect names (default 200); the line adds requests, status_2xx, status_404, status_other,
 * http_errors (responses with another status, malformed or cut short, data after the response, or no
 * close from the server within 10 s: all counted in errors too), body_bytes (per response) and
 * conn_p50_ms/conn_p99_ms (connect() to the server's close). Each connection is one full handshake,
 * so *_per_hs is also per connection.
 * --hold opens N connections (TLS 1.3), sends each a ClientHello, reads the server's flight and
 * then stalls; it measures one client's handshake latency for S seconds before and while the N
 * connections are held, and with --pid the server's RSS growth per held connection. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <strings.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "bench-util.h"
#include "macro.h"
#include "tls13-lite.h"

#define MAX_PIDS 16
#define MAX_SAMPLES_PER_THREAD (4 * 1024 * 1024)
#define HOLD_WINDOW 64

typedef struct Samples {
        int64_t *v;
        size_t n, allocated;
} Samples;

typedef struct Client {
        pthread_t thread;
        Samples lat;
        Samples conn; /* --request: connect() to the server's close */
        unsigned errors;
        unsigned requests; /* sent, after a successful handshake */
        unsigned status_2xx, status_404, status_other, http_errors;
        uint64_t body_bytes;
        double interval_ns; /* 0: closed loop */
        double offset_ns;   /* of the first connection, to spread the clients over the interval */
} Client;

static struct sockaddr_storage arg_addr;
static socklen_t arg_addrlen;
static int arg_tls = 13;
static unsigned arg_clients = 1;
static double arg_seconds = 5;
static double arg_rate;
static unsigned arg_count;
static atomic_uint started;
static pid_t arg_pids[MAX_PIDS];
static unsigned arg_n_pids;
static unsigned arg_hold;
static bool arg_lite;
static const char *arg_request; /* --request PATH */
static const char *arg_host;    /* --host: the Host header; default the --connect address */
static int arg_expect = 200;
static char request[2048];
static size_t request_len;
static SSL_CTX *ctx;
static Tls13Lite *lite; /* --lite */
static int64_t deadline_ns;
static atomic_bool stop;

static void sleep_until_ns(int64_t t) {
        struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

static int samples_add(Samples *s, int64_t v) {
        if (s->n >= s->allocated) {
                size_t a = s->allocated ? s->allocated * 2 : 4096;
                int64_t *p;

                if (a > MAX_SAMPLES_PER_THREAD)
                        return -ENOBUFS;
                p = realloc(s->v, a * sizeof *p);
                if (!p)
                        return -ENOMEM;
                s->v = p;
                s->allocated = a;
        }
        s->v[s->n++] = v;
        return 0;
}

static int compare_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

        return (x > y) - (x < y);
}

static double samples_quantile_ms(const Samples *s, double q) {
        size_t i;

        if (s->n == 0)
                return 0;
        i = (size_t) (q * (double) (s->n - 1) + 0.5);
        return (double) s->v[MIN(i, s->n - 1)] / 1e6;
}

static int parse_addr(const char *s) {
        struct sockaddr_in *in4 = (struct sockaddr_in *) &arg_addr;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &arg_addr;
        char host[64];
        const char *colon = strrchr(s, ':');
        unsigned long port;
        char *end;
        size_t l;

        if (!colon)
                return -EINVAL;
        l = (size_t) (colon - s);
        if (l >= sizeof host)
                return -EINVAL;
        memcpy(host, s, l);
        host[l] = 0;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || port == 0 || port > 65535)
                return -EINVAL;
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons((uint16_t) port);
                arg_addrlen = sizeof *in4;
                return 0;
        }
        if (l >= 2 && host[0] == '[' && host[l - 1] == ']') {
                host[l - 1] = 0;
                if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1) {
                        in6->sin6_family = AF_INET6;
                        in6->sin6_port = htons((uint16_t) port);
                        arg_addrlen = sizeof *in6;
                        return 0;
                }
        }
        return -EINVAL;
}

static int tcp_connect(bool nonblock) {
        int fd, one = 1;

        fd = socket(arg_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *) &arg_addr, arg_addrlen) < 0 && errno != EINPROGRESS) {
                int r = -errno;

                (void) close(fd);
                return r;
        }
        return fd;
}

/* Close with RST so that neither side keeps the connection in TIME_WAIT. */
static void close_reset(int fd) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};

        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        (void) close(fd);
}

/* The value of a header in the header block hdr (lines ending in CRLF, after the status line), or NULL. */
static const char *header_find(const char *hdr, const char *name) {
        size_t l = strlen(name);

        for (const char *p = strstr(hdr, "\r\n"); p; p = strstr(p, "\r\n")) {
                p += 2;
                if (strncasecmp(p, name, l) == 0 && p[l] == ':') {
                        p += l + 1;
                        while (*p == ' ' || *p == '\t')
                                p++;
                        return p;
                }
        }
        return NULL;
}

/* Reads one HTTP/1.1 response to a request with Connection: close: the headers, then the body up to
 * its Content-Length, or until the server closes if it gives none; then waits for the server to close
 * (close_notify or EOF). Returns the status, or -EBADMSG (malformed, cut short, more than
 * Content-Length, data after it), -EIO (a read of the headers failed) or -ETIMEDOUT (no close in
 * time). *ret_body: the body's bytes. */
static int response_read(SSL *ssl, uint64_t *ret_body) {
        char buf[16384 + 1], *end;
        size_t have = 0, hdr_len;
        uint64_t body, content_length = UINT64_MAX;
        const char *v;
        int status, n;

        for (;;) { /* the header block */
                n = SSL_read(ssl, buf + have, (int) (sizeof buf - 1 - have));
                if (n <= 0)
                        return have > 0 ? -EBADMSG : -EIO;
                have += (size_t) n;
                buf[have] = 0;
                end = memmem(buf, have, "\r\n\r\n", 4);
                if (end)
                        break;
                if (have >= sizeof buf - 1)
                        return -EBADMSG;
        }
        hdr_len = (size_t) (end - buf) + 4;
        end[2] = 0; /* the header block, each line ending in CRLF */
        if (strncmp(buf, "HTTP/1.", 7) != 0 || !strchr("01", buf[7]) || buf[8] != ' ' ||
            sscanf(buf + 9, "%3d", &status) != 1 || status < 100 || status > 599)
                return -EBADMSG;
        if (header_find(buf, "Transfer-Encoding"))
                return -EBADMSG; /* not sent by the servers benchmarked here */
        v = header_find(buf, "Content-Length");
        if (v) {
                char *e;

                errno = 0;
                content_length = strtoull(v, &e, 10);
                if (errno || e == v || (*e != '\r' && *e != ' '))
                        return -EBADMSG;
        }
        body = have - hdr_len;
        for (;;) { /* the body, then the server's close */
                if (body > content_length)
                        return -EBADMSG;
                n = SSL_read(ssl, buf, (int) sizeof buf - 1);
                if (n <= 0)
                        break;
                body += (uint64_t) n;
        }
        if (SSL_get_error(ssl, n) == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
                return -ETIMEDOUT; /* the server did not close within SO_RCVTIMEO */
        ERR_clear_error();
        if (content_length != UINT64_MAX && body != content_length)
                return -EBADMSG;
        *ret_body = body;
        return status;
}

/* One connection, one full handshake, and with --request one HTTP request. Returns the handshake's
 * latency in ns, or a negative errno; *ret_conn_ns: connect() to the end of the connection. */
static int64_t handshake_once(Client *c, int64_t *ret_conn_ns) {
        int64_t t0 = clock_ns(CLOCK_MONOTONIC), latency;
        char buf[4096];
        SSL *ssl;
        int fd;

        fd = tcp_connect(false);
        if (fd < 0)
                return fd;
        if (lite) {
                int64_t done = 0;
                int r = tls13_lite_handshake(lite, fd, &done);

                close_reset(fd);
                return r < 0 ? r : done - t0;
        }
        ssl = SSL_new(ctx);
        if (!ssl || SSL_set_fd(ssl, fd) != 1) {
                SSL_free(ssl);
                close_reset(fd);
                return -ENOMEM;
        }
        if (SSL_connect(ssl) != 1) {
                ERR_clear_error();
                SSL_free(ssl);
                close_reset(fd);
                return -EPROTO;
        }
        latency = clock_ns(CLOCK_MONOTONIC) - t0;
        if (arg_request) {
                /* a browser's connection: the request, the whole response, the server's close */
                struct timeval tv = {.tv_sec = 10};
                uint64_t body = 0;
                int status = -EIO;

                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                c->requests++;
                if (SSL_write(ssl, request, (int) request_len) == (int) request_len)
                        status = response_read(ssl, &body);
                ERR_clear_error();
                SSL_free(ssl);
                close_reset(fd);
                if (status >= 200 && status <= 299)
                        c->status_2xx++;
                else if (status == 404)
                        c->status_404++;
                else if (status > 0)
                        c->status_other++;
                if (status != arg_expect) {
                        c->http_errors++;
                        return status < 0 ? status : -EBADMSG;
                }
                c->body_bytes += body;
                *ret_conn_ns = clock_ns(CLOCK_MONOTONIC) - t0;
                return latency;
        }
        /* close_notify, then read (session tickets, the server's close_notify) until the server closes */
        (void) SSL_shutdown(ssl);
        while (SSL_read(ssl, buf, sizeof buf) > 0)
                ;
        ERR_clear_error();
        SSL_free(ssl);
        close_reset(fd);
        *ret_conn_ns = clock_ns(CLOCK_MONOTONIC) - t0;
        return latency;
}

static void *client_run(void *userdata) {
        Client *c = userdata;
        int64_t next = clock_ns(CLOCK_MONOTONIC) + (int64_t) c->offset_ns;

        while (!atomic_load(&stop) && clock_ns(CLOCK_MONOTONIC) < deadline_ns) {
                int64_t l, conn_ns = 0;

                if (arg_count > 0 && atomic_fetch_add(&started, 1) >= arg_count)
                        break;
                if (c->interval_ns > 0) {
                        sleep_until_ns(next);
                        next += (int64_t) c->interval_ns;
                }
                l = handshake_once(c, &conn_ns);
                if (l < 0)
                        c->errors++;
                else if (samples_add(&c->lat, l) < 0 || (arg_request && samples_add(&c->conn, conn_ns) < 0))
                        break;
        }
        return NULL;
}

/* utime+stime of the --pid processes in clock ticks; their stime alone in *ret_sys */
static int64_t pids_cpu_ticks(int64_t *ret_sys) {
        int64_t sum = 0, sys = 0;

        for (unsigned i = 0; i < arg_n_pids; i++) {
                char path[64], buf[1024], *p;
                unsigned long utime, stime;
                _cleanup_fclose_ FILE *f = NULL;

                (void) snprintf(path, sizeof path, "/proc/%d/stat", (int) arg_pids[i]);
                f = fopen(path, "re");
                if (!f || !fgets(buf, sizeof buf, f))
                        return -1;
                p = strrchr(buf, ')'); /* the command name may hold spaces */
                if (!p ||
                    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
                        return -1;
                sum += (int64_t) (utime + stime);
                sys += (int64_t) stime;
        }
        *ret_sys = sys;
        return sum;
}

static long pid_rss_kib(pid_t pid) {
        char path[64], line[256];
        _cleanup_fclose_ FILE *f = NULL;
        long kib = -1;

        (void) snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        return kib;
}

static double self_cpu_sec(void) {
        struct rusage ru;

        (void) getrusage(RUSAGE_SELF, &ru);
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
                (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

/* Runs arg_clients clients for arg_seconds; prints one line of figures prefixed with label. */
static int load_run(const char *label, unsigned n_clients, double rate) {
        _cleanup_free_ Client *clients = NULL;
        Samples all = {}, conn = {};
        int64_t t0, t1, ticks0, ticks1, sys0 = 0, sys1 = 0;
        double cpu0, cpu1, secs;
        unsigned errors = 0, requests = 0, s2xx = 0, s404 = 0, sother = 0, http_errors = 0;
        uint64_t body_bytes = 0;
        int r = 0;

        clients = calloc(n_clients, sizeof *clients);
        if (!clients)
                return -ENOMEM;
        atomic_store(&stop, false);
        atomic_store(&started, 0);
        ticks0 = pids_cpu_ticks(&sys0);
        cpu0 = self_cpu_sec();
        t0 = clock_ns(CLOCK_MONOTONIC);
        deadline_ns = t0 + (int64_t) (arg_seconds * 1e9);
        for (unsigned i = 0; i < n_clients; i++) {
                clients[i].interval_ns = rate > 0 ? 1e9 * n_clients / rate : 0;
                clients[i].offset_ns = clients[i].interval_ns * i / n_clients;
                r = -pthread_create(&clients[i].thread, NULL, client_run, &clients[i]);
                if (r < 0) {
                        atomic_store(&stop, true);
                        n_clients = i;
                        break;
                }
        }
        for (unsigned i = 0; i < n_clients; i++)
                (void) pthread_join(clients[i].thread, NULL);
        t1 = clock_ns(CLOCK_MONOTONIC);
        cpu1 = self_cpu_sec();
        ticks1 = pids_cpu_ticks(&sys1);
        for (unsigned i = 0; i < n_clients; i++) {
                errors += clients[i].errors;
                requests += clients[i].requests;
                s2xx += clients[i].status_2xx;
                s404 += clients[i].status_404;
                sother += clients[i].status_other;
                http_errors += clients[i].http_errors;
                body_bytes += clients[i].body_bytes;
                for (size_t j = 0; j < clients[i].lat.n; j++)
                        if (samples_add(&all, clients[i].lat.v[j]) < 0)
                                break;
                for (size_t j = 0; j < clients[i].conn.n; j++)
                        if (samples_add(&conn, clients[i].conn.v[j]) < 0)
                                break;
                free(clients[i].lat.v);
                free(clients[i].conn.v);
        }
        if (r < 0) {
                free(all.v);
                free(conn.v);
                return r;
        }
        qsort(all.v, all.n, sizeof *all.v, compare_i64);
        qsort(conn.v, conn.n, sizeof *conn.v, compare_i64);
        secs = (double) (t1 - t0) / 1e9;
        printf("%shandshakes=%zu errors=%u seconds=%.2f hs_per_s=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
               "client_cpu_ms_per_hs=%.3f",
               label,
               all.n,
               errors,
               secs,
               (double) all.n / secs,
               samples_quantile_ms(&all, 0.50),
               samples_quantile_ms(&all, 0.99),
               samples_quantile_ms(&all, 1.0),
               all.n ? (cpu1 - cpu0) * 1e3 / (double) all.n : 0);
        if (arg_n_pids > 0 && ticks0 >= 0 && ticks1 >= 0 && all.n > 0) {
                double server_sec = (double) (ticks1 - ticks0) / (double) sysconf(_SC_CLK_TCK);

                double sys_sec = (double) (sys1 - sys0) / (double) sysconf(_SC_CLK_TCK);

                printf(" server_cpu_ms_per_hs=%.3f server_sys_ms_per_hs=%.3f server_cores=%.2f",
                       server_sec * 1e3 / (double) all.n,
                       sys_sec * 1e3 / (double) all.n,
                       server_sec / secs);
        }
        if (arg_request)
                printf(" requests=%u status_2xx=%u status_404=%u status_other=%u http_errors=%u "
                       "body_bytes=%.0f "
                       "conn_p50_ms=%.3f conn_p99_ms=%.3f",
                       requests,
                       s2xx,
                       s404,
                       sother,
                       http_errors,
                       all.n ? (double) body_bytes / (double) all.n : 0,
                       samples_quantile_ms(&conn, 0.50),
                       samples_quantile_ms(&conn, 0.99));
        printf("\n");
        fflush(stdout);
        free(all.v);
        free(conn.v);
        return all.n > 0 ? 0 : -EIO;
}

/* --hold: a TLS 1.3 ClientHello made by OpenSSL into a memory BIO, replayed on every connection. */
static int hello_make(uint8_t **ret, size_t *ret_len) {
        SSL *ssl = SSL_new(ctx);
        BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
        char *data;
        long n;
        int r = 0;

        if (!ssl || !rbio || !wbio) {
                SSL_free(ssl);
                BIO_free(rbio);
                BIO_free(wbio);
                return -ENOMEM;
        }
        SSL_set_bio(ssl, rbio, wbio);
        (void) SSL_connect(ssl); /* wants to read: the ClientHello is in wbio */
        ERR_clear_error();
        n = BIO_get_mem_data(wbio, &data);
        if (n <= 0)
                r = -EIO;
        else if (!(*ret = malloc((size_t) n)))
                r = -ENOMEM;
        else {
                memcpy(*ret, data, (size_t) n);
                *ret_len = (size_t) n;
        }
        SSL_free(ssl);
        return r;
}

typedef struct Held {
        int fd;
        size_t sent;
        uint8_t hdr[5];
        size_t hdr_got, body_left;
        unsigned records_hs, records_app;
        bool done;
} Held;

/* Feeds received bytes through a record splitter; TLS 1.3 server flight: ServerHello (handshake
 * record), maybe ChangeCipherSpec, then EncryptedExtensions, Certificate, CertificateVerify and
 * Finished (Mbed TLS writes one record each; a server that coalesces would need fewer). */
static void held_feed(Held *h, const uint8_t *p, size_t n) {
        while (n > 0) {
                if (h->body_left > 0) {
                        size_t k = MIN(n, h->body_left);

                        h->body_left -= k;
                        p += k;
                        n -= k;
                        continue;
                }
                h->hdr[h->hdr_got++] = *p++;
                n--;
                if (h->hdr_got == 5) {
                        h->hdr_got = 0;
                        h->body_left = (size_t) h->hdr[3] << 8 | h->hdr[4];
                        if (h->hdr[0] == 22)
                                h->records_hs++;
                        else if (h->hdr[0] == 23)
                                h->records_app++;
                }
        }
        if (h->records_hs >= 1 && h->records_app >= 4 && h->body_left == 0)
                h->done = true;
}

static int hold_run(void) {
        _cleanup_free_ uint8_t *hello = NULL;
        _cleanup_free_ Held *held = NULL;
        _cleanup_close_ int ep = -EBADF;
        size_t hello_len = 0;
        unsigned opened = 0, pending = 0, reached = 0, failed = 0;
        long rss0 = -1, rss1 = -1;
        int64_t t0, limit;
        int r;

        r = hello_make(&hello, &hello_len);
        if (r < 0)
                return r;
        held = calloc(arg_hold, sizeof *held);
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (!held || ep < 0)
                return -ENOMEM;

        r = load_run("unloaded: ", 1, 0);
        if (r < 0)
                return r;
        if (arg_n_pids > 0)
                rss0 = pid_rss_kib(arg_pids[0]);

        t0 = clock_ns(CLOCK_MONOTONIC);
        limit = t0 + 600 * INT64_C(1000000000);
        while (reached + failed < arg_hold && clock_ns(CLOCK_MONOTONIC) < limit) {
                struct epoll_event ev[64];
                int n;

                while (opened < arg_hold && pending < HOLD_WINDOW) {
                        Held *h = &held[opened];
                        struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.u32 = opened};

                        h->fd = tcp_connect(true);
                        opened++;
                        if (h->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, h->fd, &e) < 0) {
                                fprintf(stderr,
                                        "connection %u: %s\n",
                                        opened,
                                        strerror(h->fd < 0 ? -h->fd : errno));
                                h->done = true;
                                failed++;
                                continue;
                        }
                        pending++;
                }
                n = epoll_wait(ep, ev, (int) ELEMENTSOF(ev), 1000);
                for (int i = 0; i < n; i++) {
                        Held *h = &held[ev[i].data.u32];
                        uint8_t buf[16384];
                        ssize_t k;

                        if (h->done)
                                continue;
                        if ((ev[i].events & EPOLLOUT) && h->sent < hello_len) {
                                k = send(h->fd, hello + h->sent, hello_len - h->sent, MSG_NOSIGNAL);
                                if (k > 0)
                                        h->sent += (size_t) k;
                                if (h->sent == hello_len) {
                                        struct epoll_event e = {.events = EPOLLIN, .data.u32 = ev[i].data.u32};

                                        (void) epoll_ctl(ep, EPOLL_CTL_MOD, h->fd, &e);
                                }
                        }
                        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                                k = recv(h->fd, buf, sizeof buf, 0);
                                if (k > 0)
                                        held_feed(h, buf, (size_t) k);
                                else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                                        h->done = true;
                                        failed++;
                                        pending--;
                                        (void) epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
                                        continue;
                                }
                                if (h->done) {
                                        reached++;
                                        pending--;
                                        (void) epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
                                }
                        }
                }
        }
        printf("held: connections=%u reached_server_flight=%u failed=%u setup_seconds=%.1f\n",
               arg_hold,
               reached,
               failed,
               (double) (clock_ns(CLOCK_MONOTONIC) - t0) / 1e9);
        if (arg_n_pids > 0) {
                rss1 = pid_rss_kib(arg_pids[0]);
                printf("rss: before_kib=%ld held_kib=%ld per_connection_kib=%.1f\n",
                       rss0,
                       rss1,
                       reached ? (double) (rss1 - rss0) / reached : 0);
        }
        fflush(stdout);
        r = load_run("loaded: ", 1, 0);
        for (unsigned i = 0; i < opened; i++)
                if (held[i].fd >= 0)
                        close_reset(held[i].fd);
        return r;
}

static int ctx_make(void) {
        long v = arg_tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;

        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx || SSL_CTX_set_min_proto_version(ctx, v) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, v) != 1 || SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1 ||
            SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384") != 1)
                return -EINVAL;
        /* a full handshake every time: no session cache, no tickets (TLS 1.2); TLS 1.3 tickets the
         * server sends are read and dropped. The certificate is not verified (self-signed). */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return 0;
}

static int parse_double(const char *s, double *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || *end || !(d >= 0) || d > 1e7)
                return -EINVAL;
        *ret = d;
        return 0;
}

static int parse_args(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                double d;

                if (streq(a, "--help") || streq(a, "-h")) {
                        printf("loadgen --connect ADDR:PORT [--tls 1.2|1.3] [--lite] [--clients C] "
                               "[--seconds S] "
                               "[--rate HS/S] [--count N] [--pid PID]... [--hold N]\n"
                               "        [--request PATH [--expect STATUS] [--host HOST]]\n");
                        exit(0);
                }
                if (streq(a, "--lite")) {
                        arg_lite = true;
                        continue;
                }
                if (!v) {
                        fprintf(stderr, "Unknown option or missing value: %s\n", a);
                        return -EINVAL;
                }
                i++;
                if (streq(a, "--connect")) {
                        if (parse_addr(v) < 0) {
                                fprintf(stderr, "Invalid address %s (want 127.0.0.1:PORT or [::1]:PORT)\n", v);
                                return -EINVAL;
                        }
                } else if (streq(a, "--tls")) {
                        if (!streq(v, "1.2") && !streq(v, "1.3")) {
                                fprintf(stderr, "--tls wants 1.2 or 1.3\n");
                                return -EINVAL;
                        }
                        arg_tls = streq(v, "1.2") ? 12 : 13;
                } else if (streq(a, "--request")) {
                        if (v[0] != '/' || strpbrk(v, " \t\r\n") || strlen(v) > 1000) {
                                fprintf(stderr, "--request wants a path: /..., no spaces\n");
                                return -EINVAL;
                        }
                        arg_request = v;
                } else if (streq(a, "--host")) {
                        if (!*v || strpbrk(v, " \t\r\n") || strlen(v) > 255) {
                                fprintf(stderr, "Invalid --host %s\n", v);
                                return -EINVAL;
                        }
                        arg_host = v;
                } else if (streq(a, "--expect")) {
                        if (parse_double(v, &d) < 0 || d < 100 || d > 599 || d != (double) (int) d) {
                                fprintf(stderr, "--expect wants an HTTP status, 100-599\n");
                                return -EINVAL;
                        }
                        arg_expect = (int) d;
                } else if (streq(a, "--pid")) {
                        if (parse_double(v, &d) < 0 || d < 1 || d != (double) (pid_t) d ||
                            arg_n_pids >= MAX_PIDS) {
                                fprintf(stderr, "Invalid or too many --pid: %s\n", v);
                                return -EINVAL;
                        }
                        arg_pids[arg_n_pids++] = (pid_t) d;
                } else if (parse_double(v, &d) < 0) {
                        fprintf(stderr, "Invalid number for %s: %s\n", a, v);
                        return -EINVAL;
                } else if (streq(a, "--clients") && d >= 1 && d <= 4096)
                        arg_clients = (unsigned) d;
                else if (streq(a, "--seconds") && d > 0 && d <= 3600)
                        arg_seconds = d;
                else if (streq(a, "--count") && d >= 1 && d <= 1e7)
                        arg_count = (unsigned) d;
                else if (streq(a, "--rate"))
                        arg_rate = d;
                else if (streq(a, "--hold") && d >= 1 && d <= 60000)
                        arg_hold = (unsigned) d;
                else {
                        fprintf(stderr, "Unknown option or value out of range: %s %s\n", a, v);
                        return -EINVAL;
                }
        }
        if (arg_addrlen == 0) {
                fprintf(stderr, "--connect ADDR:PORT is required\n");
                return -EINVAL;
        }
        if (arg_request) {
                char host[128];
                int n;

                if (!arg_host) {
                        char a[INET6_ADDRSTRLEN];
                        const struct sockaddr_in *in4 = (const struct sockaddr_in *) &arg_addr;
                        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &arg_addr;

                        if (arg_addr.ss_family == AF_INET)
                                (void) snprintf(
                                        host,
                                        sizeof host,
                                        "%s:%u",
                                        inet_ntop(AF_INET, &in4->sin_addr, a, sizeof a),
                                        ntohs(in4->sin_port));
                        else
                                (void) snprintf(
                                        host,
                                        sizeof host,
                                        "[%s]:%u",
                                        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a),
                                        ntohs(in6->sin6_port));
                }
                n = snprintf(
                        request,
                        sizeof request,
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlswatch-loadgen\r\nAccept: */*\r\n"
                        "Connection: close\r\n\r\n",
                        arg_request,
                        arg_host ?: host);
                if (n < 0 || (size_t) n >= sizeof request)
                        return -EINVAL;
                request_len = (size_t) n;
        }
        return 0;
}

int main(int argc, char **argv) {
        int r;

        if (parse_args(argc, argv) < 0)
                return 2;
        if (arg_hold > 0) {
                struct rlimit rl = {.rlim_cur = arg_hold + 256, .rlim_max = arg_hold + 256};
                struct rlimit cur;

                if (getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_max < rl.rlim_max &&
                    setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        fprintf(stderr, "Cannot raise RLIMIT_NOFILE to %u: %m\n", arg_hold + 256);
                        return 1;
                }
                if (cur.rlim_max >= rl.rlim_max) {
                        rl.rlim_max = cur.rlim_max;
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
                arg_tls = 13;
        }
        if (ctx_make() < 0) {
                fprintf(stderr, "Failed to set up the OpenSSL client context.\n");
                return 1;
        }
        if (arg_lite) {
                if (arg_tls != 13 || arg_hold > 0 || arg_request) {
                        fprintf(stderr,
                                "--lite makes TLS 1.3 handshakes only, and not with --hold or --request.\n");
                        return 2;
                }
                lite = tls13_lite_new();
                if (!lite) {
                        fprintf(stderr, "Failed to set up the --lite client.\n");
                        return 1;
                }
        }
        r = arg_hold > 0 ? hold_run() : load_run("", arg_clients, arg_rate);
        tls13_lite_free(lite);
        SSL_CTX_free(ctx);
        if (r < 0) {
                fprintf(stderr, "Run failed: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
