/* SPDX-License-Identifier: MIT */
#include <mbedtls/net_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "backend.h"
#include "conn-private.h"
#include "log.h"
#include "page.h"
#include "tls-private.h"

/* While forwarding, the client's socket is read ahead into c->ra: Mbed TLS asks for a record's 5-byte
 * header, then for its body, two recv() calls per record (the upload's syscalls halve). Returns what recv()
 * would. */
ssize_t conn_recv_ahead(Conn *c, unsigned char *buf, size_t len) {
        ssize_t n;

        if (c->ra_off == c->ra_len) {
                if (!c->ra && !(c->ra = malloc(PROXY_READ_AHEAD)))
                        return recv(c->fd, buf, len, 0);
                n = recv(c->fd, c->ra, PROXY_READ_AHEAD, 0);
                if (n <= 0)
                        return n;
                c->ra_off = 0;
                c->ra_len = (size_t) n;
        }
        n = (ssize_t) MIN(len, c->ra_len - c->ra_off);
        memcpy(buf, c->ra + c->ra_off, (size_t) n);
        c->ra_off += (size_t) n;
        return n;
}

/* ---- forwarding to the backend (--backend) ----
 *
 * The attempt is recorded as soon as the backend's fate is known: when the connection to it is
 * established (the record's closed_us and close_kind stay NULL: a forwarded connection may live for hours,
 * and its row must not wait for that), or when connecting failed or timed out (backend_error says why;
 * the client gets close_notify and our FIN). Then bytes are pumped both ways through two bounded buffers:
 * a side is not read while its buffer toward the other side is full, so a slow reader holds the other
 * side back through TCP instead of growing our memory. A side's end (the client's close_notify or FIN,
 * the backend's FIN) is passed on (shutdown(SHUT_WR) of the backend; close_notify and FIN to the client)
 * and the other direction goes on until it ends too; an error on either side ends both (the backend's
 * without close_notify to the client: a truncation it can see, conn_proxy_end()). */

void conn_backend_close(Conn *c) {
        c->backend_io = sd_event_source_disable_unref(c->backend_io);
        c->backend_fd = safe_close(c->backend_fd);
        free(c->c2b);
        free(c->b2c);
        free(c->ra);
        c->c2b = c->b2c = c->ra = NULL;
}

/* Connecting failed: recorded with why, and the client closed cleanly. */
void conn_backend_failed(Conn *c, const char *fmt, ...) {
        va_list ap;

        if (c->attempt) {
                free(c->attempt->backend_error);
                va_start(ap, fmt);
                if (vasprintf(&c->attempt->backend_error, fmt, ap) < 0)
                        c->attempt->backend_error = strdup("connect failed");
                va_end(ap);
                log_debug(
                        "Backend for %s:%u: %s",
                        c->attempt->peer_addr,
                        c->attempt->peer_port,
                        strna(c->attempt->backend_error));
        }
        conn_backend_close(c);
        conn_close_tls(c, CLOSE_SERVER);
}

int conn_on_backend_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        conn_continue(userdata);
        return 0;
}

/* Records the attempt of a forwarded connection, which stays open: how it closes is not part of it. */
void conn_record_forwarded(Conn *c) {
        conn_update_counters(c);
        c->host->ops->record(c->host->userdata, TAKE_PTR(c->attempt));
}

/* A byte moved to or from the client / the backend now (their idle limits). */
void conn_proxy_touch(Conn *c, bool client, bool backend) {
        uint64_t now;

        if (sd_event_now(c->host->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (client)
                c->client_active_mono_us = now;
        if (backend)
                c->backend_active_mono_us = now;
}

/* The timer is due at the earlier of the two sides' idle limits. */
static void conn_proxy_arm(Conn *c) {
        const BackendSettings *b = c->host->settings.backend;
        uint64_t now, deadline;

        if (sd_event_now(c->host->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        deadline = MIN(
                c->client_active_mono_us + (uint64_t) b->client_idle_timeout_us,
                c->backend_active_mono_us + (uint64_t) b->idle_timeout_us);
        (void) conn_set_timer(c, deadline > now ? (int64_t) (deadline - now) : 1);
}

static void conn_backend_connected(Conn *c) {
        unsigned prior;
        int n, r;

        c->c2b = malloc(PROXY_BUF_SIZE);
        if (!c->c2b) {
                conn_backend_failed(c, "out of memory");
                return;
        }
        if (c->host->ops->reserve_id)
                c->attempt->id = c->host->ops->reserve_id(c->host->userdata);
        prior = page_prior_failures(c->host->recent, c->attempt);
        n = proxy_v2_header(c->attempt, prior, c->c2b);
        if (n < 0) {
                conn_backend_failed(c, "cannot say the client's address in a PROXY header");
                return;
        }
        c->c2b_len = (size_t) n;
        conn_record_forwarded(c);

        c->phase = CONN_PROXY;
        r = sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLOUT | EPOLLET);
        if (r < 0) {
                conn_abort(c, "event loop error");
                return;
        }
        c->io_events = EPOLLIN | EPOLLOUT;
        conn_proxy_touch(c, true, true);
        conn_proxy_arm(c);
        conn_continue(c);
}

/* Starts connecting to the backend, watched edge-triggered for both directions (adding reports what is
 * there already: established or failed, or not yet). Returns 0 or a negative errno; c->backend_fd is
 * closed on failure. */
int conn_backend_start(Conn *c) {
        const BackendSettings *b = c->host->settings.backend;
        int r;

        c->backend_fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->backend_fd < 0)
                return -errno;
        if (b->addr.ss_family != AF_UNIX)
                (void) setsockopt(c->backend_fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        /* only EINPROGRESS is a connection under way (EAGAIN: a unix socket's queue is full) */
        if (connect(c->backend_fd, (const struct sockaddr *) &b->addr, b->addr_len) < 0 &&
            errno != EINPROGRESS) {
                r = -errno;
                c->backend_fd = safe_close(c->backend_fd);
                return r;
        }
        r = sd_event_add_io(
                c->host->event,
                &c->backend_io,
                c->backend_fd,
                EPOLLIN | EPOLLOUT | EPOLLET,
                conn_on_backend_io,
                c);
        if (r < 0) {
                c->backend_fd = safe_close(c->backend_fd);
                return r;
        }
        c->backend_rx_blocked = c->backend_tx_blocked = false;
        c->backend_eof = c->backend_shut = c->backend_failed = false;
        return 0;
}

/* Whether the connection started is established: 1, 0 (not yet), or a negative errno (failed). */
int conn_backend_established(Conn *c) {
        struct pollfd p = {.fd = c->backend_fd, .events = POLLOUT};
        socklen_t len = sizeof(int);
        int err = 0;

        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLOUT | POLLERR | POLLHUP)))
                return 0; /* not yet: an event of the client's socket woke us */
        if (getsockopt(c->backend_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err == 0 && (p.revents & (POLLERR | POLLHUP)))
                err = ECONNREFUSED;
        return err != 0 ? -err : 1;
}

/* Starts connecting, or sees whether the connection started is established. */
void conn_backend_connect(Conn *c) {
        const BackendSettings *b = c->host->settings.backend;
        int r;

        if (c->backend_fd < 0) {
                r = conn_backend_start(c);
                if (r < 0) {
                        conn_backend_failed(c, "connect to %s: %s", b->name, strerror(-r));
                        return;
                }
                (void) conn_set_timer(c, b->connect_timeout_us);
                return;
        }
        r = conn_backend_established(c);
        if (r == 0)
                return;
        if (r < 0) {
                conn_backend_failed(c, "connect to %s: %s", b->name, strerror(-r));
                return;
        }
        conn_backend_connected(c);
}

/* Ends both sides now; the attempt is recorded already. clean: the client gets close_notify (an idle or
 * draining connection, or the client's side failed: it hears what it can); not after the backend failed
 * (reset, error): then the client gets our FIN without close_notify, which TLS clients take for a truncated
 * stream, as it is. */
void conn_proxy_end(Conn *c, bool clean) {
        conn_backend_close(c);
        if (c->client_shut || !clean)
                conn_linger(c);
        else
                conn_close_tls(c, CLOSE_SERVER);
}

int conn_backend_send(Conn *c) {
        ssize_t n;

        if (c->c2b_off >= c->c2b_len)
                return 0;
        n = send(c->backend_fd, c->c2b + c->c2b_off, c->c2b_len - c->c2b_off, MSG_NOSIGNAL);
        c->backend_tx_blocked = n < 0 && errno == EAGAIN;
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        c->c2b_off += (size_t) n;
        if (c->c2b_off == c->c2b_len)
                c->c2b_off = c->c2b_len = 0;
        return n > 0;
}

int conn_backend_recv(Conn *c) {
        ssize_t n;

        if (c->b2c_len >= PROXY_BUF_SIZE)
                return 0;
        n = recv(c->backend_fd, c->b2c + c->b2c_len, PROXY_BUF_SIZE - c->b2c_len, 0);
        c->backend_rx_blocked = n < 0 && errno == EAGAIN;
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0)
                return -ESHUTDOWN;
        c->b2c_len += (size_t) n;
        return 1;
}

/* One step of each of the four moves; returns whether one of them moved something (or may move more at
 * once), -1 when the connection ended (c is freed or lingers). */
static int conn_proxy_step(Conn *c, bool *client_moved, bool *backend_moved) {
        bool progress = false;
        int r;

        /* the buffers are held while they hold something (conn_proxy()): an idle connection has none */
        if ((!c->c2b && !(c->c2b = malloc(PROXY_BUF_SIZE))) ||
            (!c->b2c && !(c->b2c = malloc(PROXY_BUF_SIZE)))) {
                log_debug("Forwarded connection: out of memory.");
                conn_proxy_end(c, false);
                return -1;
        }
        /* the client's plaintext into c2b */
        if (c->c2b_off > 0 && c->c2b_len - c->c2b_off < PROXY_BUF_SIZE / 2) {
                memmove(c->c2b, c->c2b + c->c2b_off, c->c2b_len - c->c2b_off);
                c->c2b_len -= c->c2b_off;
                c->c2b_off = 0;
        }
        if (!c->client_eof && c->c2b_len < PROXY_BUF_SIZE) {
                r = mbedtls_ssl_read(&c->ssl, c->c2b + c->c2b_len, PROXY_BUF_SIZE - c->c2b_len);
                if (r > 0) {
                        c->c2b_len += (size_t) r;
                        progress = *client_moved = true;
                } else if (r == MBEDTLS_ERR_SSL_WANT_READ)
                        progress = !c->rx_blocked; /* a record consumed and ignored: read on */
                else if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
                        progress = !c->tx_blocked;
                else if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF) {
                        c->client_eof = progress = true;
                } else {
                        log_debug("Forwarded connection: the client's side failed: %s", tls_strerror(r));
                        conn_proxy_end(c, true);
                        return -1;
                }
        }
        /* c2b to the backend */
        if (!c->backend_failed) {
                r = conn_backend_send(c);
                if (r > 0)
                        progress = *backend_moved = true;
                else if (r < 0) {
                        /* e.g. it answered an upload it refused and closed (a reset, as it did not read
                         * all): the client's bytes have nowhere to go, but what the backend sent before
                         * is still to be read and passed on */
                        log_debug_errno(r, "Forwarded connection: sending to the backend failed: %m");
                        c->backend_shut = c->backend_failed = true;
                }
        }
        if (c->backend_failed && c->c2b_len > 0) { /* the client is read on, its bytes dropped */
                c->c2b_off = c->c2b_len = 0;
                progress = true;
        }
        if (c->client_eof && c->c2b_len == 0 && !c->backend_shut) {
                (void) shutdown(c->backend_fd, SHUT_WR);
                c->backend_shut = progress = true;
        }
        /* the backend's bytes into b2c */
        if (c->b2c_off > 0 && c->b2c_len - c->b2c_off < PROXY_BUF_SIZE / 2 && c->tls_write_len == 0) {
                memmove(c->b2c, c->b2c + c->b2c_off, c->b2c_len - c->b2c_off);
                c->b2c_len -= c->b2c_off;
                c->b2c_off = 0;
        }
        if (!c->backend_eof) {
                r = conn_backend_recv(c);
                if (r > 0)
                        progress = *backend_moved = true;
                else if (r == -ESHUTDOWN)
                        c->backend_eof = progress = true;
                else if (r < 0) {
                        log_debug_errno(r, "Forwarded connection: reading from the backend failed: %m");
                        c->backend_eof = c->backend_failed = progress = true;
                }
        }
        /* b2c to the client, encrypted; a write that waits is completed with the same length (Mbed TLS) */
        if (c->b2c_off < c->b2c_len) {
                size_t len = c->tls_write_len ?: MIN(c->b2c_len - c->b2c_off, (size_t) PROXY_TLS_WRITE_MAX);

                r = mbedtls_ssl_write(&c->ssl, c->b2c + c->b2c_off, len);
                if (r > 0) {
                        c->tls_write_len = 0;
                        c->b2c_off += (size_t) r;
                        if (c->b2c_off == c->b2c_len)
                                c->b2c_off = c->b2c_len = 0;
                        progress = *client_moved = true;
                } else if (r == MBEDTLS_ERR_SSL_WANT_WRITE || r == MBEDTLS_ERR_SSL_WANT_READ) {
                        c->tls_write_len = len;
                        progress = progress || (r == MBEDTLS_ERR_SSL_WANT_WRITE && !c->tx_blocked);
                } else {
                        log_debug("Forwarded connection: sending to the client failed: %s", tls_strerror(r));
                        conn_proxy_end(c, true);
                        return -1;
                }
        }
        if (c->backend_eof && c->b2c_len == 0 && c->backend_failed) {
                conn_proxy_end(c, false); /* all it sent is passed on; then no close_notify */
                return -1;
        }
        if (c->backend_eof && c->b2c_len == 0 && !c->client_shut) {
                r = mbedtls_ssl_close_notify(&c->ssl);
                if (r == 0) {
                        conn_uncork(c);
                        (void) shutdown(c->fd, SHUT_WR);
                        c->client_shut = progress = true;
                } else if (r != MBEDTLS_ERR_SSL_WANT_WRITE) {
                        conn_proxy_end(c, false);
                        return -1;
                }
        }
        return progress;
}

void conn_proxy(Conn *c) {
        bool client_moved = false, backend_moved = false;
        int r;

        while ((r = conn_proxy_step(c, &client_moved, &backend_moved)) > 0)
                ;
        if (r < 0)
                return;
        if (c->client_shut && c->backend_shut) { /* both ends passed on, nothing left to send */
                conn_backend_close(c);
                conn_linger(c);
                return;
        }
        /* a side is idle only while we wait for it (to send into a buffer with room, or to take what its
         * buffer holds), not while its buffer toward the other side is full: then it waits for the other */
        client_moved = client_moved || (c->b2c_len == 0 && c->c2b_len >= PROXY_BUF_SIZE);
        backend_moved = backend_moved || (c->c2b_len == 0 && c->b2c_len >= PROXY_BUF_SIZE);
        if (client_moved || backend_moved) /* the timer is moved on when it expires (conn_proxy_timeout()) */
                conn_proxy_touch(c, client_moved, backend_moved);
        if (c->c2b_len == 0) {
                free(c->c2b);
                c->c2b = NULL;
        }
        if (c->b2c_len == 0) { /* then no TLS write waits either */
                free(c->b2c);
                c->b2c = NULL;
        }
        if (c->ra_off == c->ra_len) {
                free(c->ra);
                c->ra = NULL;
                c->ra_off = c->ra_len = 0;
        }
}

/* The idle limits: a side that neither sent nor took a byte for its limit (--backend-client-idle-timeout,
 * --backend-idle-timeout) ends the connection; the timer is re-armed at the earlier of the two. While the
 * server drains, the first expiry ends the connection (conn_set_timer() caps it at the drain's grace)
 * however live it is: also for a connection whose timer was already due sooner than the grace when the
 * drain began (conn_cap_timer() left it, and drain_cut, alone), or that was forwarded during the drain. */
void conn_proxy_timeout(Conn *c) {
        const BackendSettings *b = c->host->settings.backend;
        const char *why = NULL;
        uint64_t now;

        if (c->host->draining)
                c->drain_cut = true;
        if (c->drain_cut || sd_event_now(c->host->event, CLOCK_MONOTONIC, &now) < 0)
                why = "the server stops";
        else if (now >= c->backend_active_mono_us + (uint64_t) b->idle_timeout_us)
                why = "the backend was idle";
        else if (now >= c->client_active_mono_us + (uint64_t) b->client_idle_timeout_us)
                why = "the client was idle";
        if (!why) {
                conn_proxy_arm(c);
                return;
        }
        log_debug("Forwarded connection closed: %s.", why);
        conn_proxy_end(c, true);
}
