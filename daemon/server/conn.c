/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <mbedtls/net_sockets.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "conn-private.h"
#include "fingerprint.h"
#include "http.h"
#include "log.h"
#include "page.h"
#include "tls-private.h"

/* core/outcome.h names the Mbed TLS error codes it classifies without linking Mbed TLS's TLS library. */
_Static_assert(OUTCOME_ERR_NET_RECV_FAILED == MBEDTLS_ERR_NET_RECV_FAILED, "outcome.h");
_Static_assert(OUTCOME_ERR_NET_SEND_FAILED == MBEDTLS_ERR_NET_SEND_FAILED, "outcome.h");
_Static_assert(OUTCOME_ERR_NET_CONN_RESET == MBEDTLS_ERR_NET_CONN_RESET, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_INVALID_MAC == MBEDTLS_ERR_SSL_INVALID_MAC, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_INVALID_RECORD == MBEDTLS_ERR_SSL_INVALID_RECORD, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_CONN_EOF == MBEDTLS_ERR_SSL_CONN_EOF, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_ALLOC_FAILED == MBEDTLS_ERR_SSL_ALLOC_FAILED, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_BAD_PROTOCOL_VERSION == MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_HANDSHAKE_FAILURE == MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_INTERNAL_ERROR == MBEDTLS_ERR_SSL_INTERNAL_ERROR, "outcome.h");
_Static_assert(OUTCOME_ERR_SSL_BUFFER_TOO_SMALL == MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL, "outcome.h");
_Static_assert(OUTCOME_MBEDTLS_IN_CONTENT_LEN == MBEDTLS_SSL_IN_CONTENT_LEN, "outcome.h");

static void conn_free(Conn *c);

int64_t conn_now_us(void) {
        return now_realtime_us();
}

/* ---- bookkeeping ---- */

static void conn_reach(Conn *c, HandshakeStep step) {
        if (c->attempt && step > c->attempt->state_reached)
                c->attempt->state_reached = step;
}

/* The counters that grow for the whole connection, copied into the record when it is written or shown. */
void conn_update_counters(Conn *c) {
        if (!c->attempt) /* already recorded */
                return;
        c->attempt->bytes_in = c->capture.scanner.bytes;
        c->attempt->bytes_out = c->out_scanner.bytes;
        c->attempt->http_requests = c->requests;
}

/* Notes when and how the connection ended (the first call counts). */
static void conn_closed(Conn *c, CloseKind kind) {
        if (!c->attempt || c->attempt->close_kind != CLOSE_UNKNOWN)
                return;
        c->attempt->close_kind = kind;
        c->attempt->closed_us = conn_now_us();
}

void conn_record(Conn *c) {
        if (!c->attempt)
                return;
        conn_closed(c, CLOSE_SERVER); /* unless the cause was noted before */
        if (c->requests > 0)
                c->host->ops->note_served_close(c->host->userdata, c->attempt);
        if (c->attempt->ended_us == 0)
                c->attempt->ended_us = conn_now_us();
        conn_update_counters(c);
        c->host->ops->record(c->host->userdata, TAKE_PTR(c->attempt));
}

int conn_set_timer(Conn *c, int64_t usec) {
        int r;

        if (c->host->draining && usec > DRAIN_REQUEST_GRACE_US && c->phase != CONN_HANDSHAKE)
                usec = DRAIN_REQUEST_GRACE_US; /* e.g. a handshake that completes while we drain */
        if (c->timer) {
                r = sd_event_source_set_time_relative(c->timer, (uint64_t) usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
                return r;
        }
        return -ENOENT;
}

/* The socket is watched edge-triggered (EPOLLET): epoll reports it when it becomes readable (or
 * writable), not again at every turn of the loop while it stays so. Level-triggered, every epoll_wait()
 * polled every socket still readable, and sd-event dispatches one source per turn (calling epoll_wait()
 * again before each): 10,000 clients closing at once (EOF stays readable until we close the fd) cost
 * 10,000 x 10,000 polls in the kernel, seconds of CPU. Edge-triggered, we must not wait for an edge
 * while the socket may still be ready: unless our last recv() / send() ended on EAGAIN (Mbed TLS also
 * returns WANT_READ after a record it consumed and ignored, e.g. a refused renegotiation; the
 * lingering close starts with unread bytes), we register again, which sd-event never skips for
 * EPOLLET: epoll_ctl(EPOLL_CTL_MOD) reports a socket that is ready now. */
int conn_want(Conn *c, uint32_t events) {
        bool maybe_ready = ((events & EPOLLIN) && !c->rx_blocked) || ((events & EPOLLOUT) && !c->tx_blocked);
        int r;

        if (c->io_events == events && !maybe_ready)
                return 0;
        r = sd_event_source_set_io_events(c->io, events | EPOLLET);
        if (r >= 0)
                c->io_events = events;
        return r;
}

/* Waits for the socket when Mbed TLS asks to read or write; returns whether it did. */
static bool conn_wait_io(Conn *c, int r) {
        if (r == MBEDTLS_ERR_SSL_WANT_READ)
                (void) conn_want(c, EPOLLIN);
        else if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
                (void) conn_want(c, EPOLLOUT);
        else
                return false;
        return true;
}

/* Our flight counts as sent once its last byte was handed to the kernel: a client that rejects our
 * certificate may answer (and close) before Mbed TLS finishes writing the rest of the flight. */
static void conn_check_flight(Conn *c) {
        if (c->flight_mark > 0 && c->out_scanner.bytes >= c->flight_mark)
                conn_reach(c, STEP_SERVER_FLIGHT);
}

/* ---- BIO callbacks: the raw bytes pass here, so we see records Mbed TLS never reports ---- */

/* Mbed TLS writes every handshake record with its own send(): a TLS 1.3 flight is 5 records, and with
 * TCP_NODELAY each became a segment of its own, each costing both sides a trip through the TCP stack.
 * Handshake records go out with MSG_MORE and are pushed when Mbed TLS turns to reading, when the
 * handshake ends, and right before our signature, so that the client works on what it has while we
 * sign (corking the whole flight made one client's handshake 0.2-0.4 ms slower): TLS 1.2 signs in the
 * ServerKeyExchange step; TLS 1.3 in the CertificateVerify step, which first flushes the Certificate
 * written by the step before (every step starts by flushing what the previous one wrote). A TLS 1.3
 * flight is then 2 segments instead of 5, a TLS 1.2 one 2 instead of 4. Setting TCP_NODELAY again
 * pushes what is corked. */
void conn_uncork(Conn *c) {
        if (!c->corked)
                return;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        c->corked = false;
}

static int conn_bio_send(void *userdata, const unsigned char *buf, size_t len) {
        Conn *c = userdata;
        bool more = c->phase == CONN_HANDSHAKE && tls_private_state(&c->ssl) != MBEDTLS_SSL_CERTIFICATE_VERIFY;
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));

        c->tx_blocked = n < 0 && errno == EAGAIN;
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return MBEDTLS_ERR_SSL_WANT_WRITE;
                c->send_failed = true;
                if (errno == EPIPE || errno == ECONNRESET)
                        return MBEDTLS_ERR_NET_CONN_RESET;
                c->local_fault = errno == ENOMEM || errno == ENOBUFS;
                return MBEDTLS_ERR_NET_SEND_FAILED;
        }
        record_scanner_feed(&c->out_scanner, buf, (size_t) n);
        c->corked = c->corked || more;
        conn_check_flight(c);
        return (int) n;
}

static void conn_hello_complete(Conn *c) {
        ClientHello ch = {};
        int r;

        c->hello_seen = true;
        conn_reach(c, STEP_CLIENT_HELLO);
        if (c->host->ops->past_hello)
                c->host->ops->past_hello(c->host->userdata, c);
        r = clienthello_parse(c->capture.msg, c->capture.msg_len, &ch);
        if (r < 0) {
                log_debug("Unparsable ClientHello: %s", strna(ch.reason));
                return;
        }
        r = fingerprint_fill_attempt(&ch, c->attempt);
        if (r < 0)
                log_debug_errno(r, "Failed to compute fingerprints: %m");
}

static void conn_inbound(Conn *c, const void *buf, size_t n) {
        CaptureState before = c->capture.state;

        if (clienthello_capture_feed(&c->capture, buf, n) == CAPTURE_COMPLETE &&
            before == CAPTURE_NEED_MORE && c->attempt)
                conn_hello_complete(c);
}

static int conn_bio_recv(void *userdata, unsigned char *buf, size_t len) {
        Conn *c = userdata;
        ssize_t n;

        conn_uncork(c); /* the flight is complete: Mbed TLS waits for the client's answer */
        n = c->phase == CONN_PROXY || c->phase == CONN_PROXY_HTTP ? conn_recv_ahead(c, buf, len)
                                                                  : recv(c->fd, buf, len, 0);
        c->rx_blocked = n < 0 && errno == EAGAIN;
        c->rx_eof = c->rx_eof || n == 0;

        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return MBEDTLS_ERR_SSL_WANT_READ;
                if (errno == ECONNRESET || errno == EPIPE)
                        return MBEDTLS_ERR_NET_CONN_RESET;
                c->local_fault = errno == ENOMEM || errno == ENOBUFS;
                return MBEDTLS_ERR_NET_RECV_FAILED;
        }
        if (n > 0) {
                conn_inbound(c, buf, (size_t) n);
                /* refused at its header, like any other too large one: Mbed TLS would wait for all of it */
                if (!c->hello_seen && outcome_hello_too_large(&c->capture))
                        return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
        }
        return (int) n;
}

/* After a reset or EOF, whatever the client sent last may still sit unread in the socket (e.g. the
 * alert Chromium sends right before its RST while we were still writing): read it into the scanner. */
static void conn_drain_socket(Conn *c) {
        uint8_t buf[4096];

        for (int i = 0; i < 16; i++) {
                ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);

                c->rx_blocked = n < 0 && errno == EAGAIN;
                c->rx_eof = c->rx_eof || n == 0;
                if (n <= 0)
                        break;
                conn_inbound(c, buf, (size_t) n);
        }
}

/* ---- handshake ---- */

static bool state_reads_client_flight(int st) {
        switch (st) {
        case MBEDTLS_SSL_CLIENT_CERTIFICATE:
        case MBEDTLS_SSL_CLIENT_KEY_EXCHANGE:
        case MBEDTLS_SSL_CLIENT_CHANGE_CIPHER_SPEC:
        case MBEDTLS_SSL_CLIENT_FINISHED:
        case MBEDTLS_SSL_END_OF_EARLY_DATA:
        case MBEDTLS_SSL_CLIENT_CERTIFICATE_VERIFY: return true;
        default: return false;
        }
}

static int conn_ssl_setup(Conn *c) {
        int r;

        c->tls = c->host->ops->get_tls(c->host->userdata);
        mbedtls_ssl_init(&c->ssl);
        r = mbedtls_ssl_setup(&c->ssl, &c->tls->conf);
        if (r != 0) {
                mbedtls_ssl_free(&c->ssl);
                return -ENOMEM;
        }
        tls_private_reset_alerts(&c->ssl);
        mbedtls_ssl_set_bio(&c->ssl, c, conn_bio_send, conn_bio_recv, NULL);
        c->ssl_ready = true;
        return 0;
}

/* What core/outcome.c classifies the end of the handshake by; ret is what the failing step returned. */
static HandshakeFacts conn_handshake_facts(Conn *c, int ret) {
        return (HandshakeFacts){
                .tls_error = ret,
                .alert_read = c->ssl_ready && ret != 0 ? tls_private_received_alert(&c->ssl, ret) : -1,
                .alert_sent_scanned = c->ssl_ready ? c->out_scanner.alert_description : -1,
                .alert_pending = c->ssl_ready ? tls_private_pending_alert(&c->ssl) : -1,
                .capture = &c->capture,
                .hello_seen = c->hello_seen,
                .failed_in_hrr = c->ssl_ready && tls_private_state(&c->ssl) == MBEDTLS_SSL_HELLO_RETRY_REQUEST,
                .local_fault = c->local_fault,
                .saw_server_cert = c->saw_server_cert,
                .saw_server_finished = c->saw_server_finished,
                .saw_hrr = c->saw_hrr,
                .handshake_timeout_us = c->host->settings.handshake_timeout_us,
                .drain_cut = c->drain_cut,
                .message_too_large = c->message_too_large,
        };
}

/* Plain HTTP on the TLS port: answer 400 on the raw socket so that the user learns to use https. */
static void conn_answer_plain_http(Conn *c) {
        static const char body[] = "This is an HTTPS port: use https:// in the URL.\n";
        _cleanup_free_ char *resp = NULL;
        size_t len;

        if (http_response_build(
                    400, "text/plain; charset=utf-8", body, sizeof body - 1, false, false, &resp, &len) < 0)
                return;
        ssize_t n = send(c->fd, resp, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
                record_scanner_feed(&c->out_scanner, resp, (size_t) n);
}

void conn_linger(Conn *c);

static void conn_handshake_failed(Conn *c, int ret) {
        Attempt *a = c->attempt;
        HandshakeFacts f;
        CloseKind kind;

        a->ended_us = conn_now_us();
        /* also when the ClientHello is incomplete: Mbed TLS gives up on a hello whose handshake header is
         * split across records after the first one, and the rest is usually there already */
        if (ret == MBEDTLS_ERR_NET_CONN_RESET || ret == MBEDTLS_ERR_SSL_CONN_EOF ||
            ret == MBEDTLS_ERR_NET_RECV_FAILED || ret == MBEDTLS_ERR_NET_SEND_FAILED ||
            c->capture.state == CAPTURE_NEED_MORE)
                conn_drain_socket(c);
        f = conn_handshake_facts(c, ret);
        kind = outcome_handshake_failed(a, &f);
        if (a->outcome == OUTCOME_NOT_TLS && c->capture.looks_like_http)
                conn_answer_plain_http(c);
        conn_closed(c, kind);
        log_debug("Handshake from %s:%u failed: %s", a->peer_addr, a->peer_port, strna(a->error_text));
        conn_record(c);
        conn_linger(c);
}

static void conn_handshake_done(Conn *c) {
        Attempt *a = c->attempt;
        HandshakeFacts f = conn_handshake_facts(c, 0);
        const char *alpn;

        a->ended_us = conn_now_us();
        outcome_handshake_done(a, &f);
        free(a->version);
        a->version = strdup(strempty(tls_version_to_string(mbedtls_ssl_get_version_number(&c->ssl))));
        free(a->cipher);
        a->cipher = tls_cipher_iana_name(mbedtls_ssl_get_ciphersuite(&c->ssl));
        alpn = mbedtls_ssl_get_alpn_protocol(&c->ssl);
        if (alpn)
                (void) raw_string_set(&a->alpn, alpn, strlen(alpn));
        clienthello_capture_done(&c->capture); /* the ClientHello buffer is not needed any more */
        c->handshake_records_done = c->capture.scanner.handshake_records;
        c->alerts_sent_done = c->out_scanner.alerts + c->out_scanner.encrypted_alerts;
        (void) sd_event_source_set_priority(c->io, SD_EVENT_PRIORITY_NORMAL); /* if it was slow */
        if (c->host->settings.backend && c->host->settings.backend->protocol == BACKEND_HTTP) {
                conn_http_proxy_start(c);
                return;
        }
        if (c->host->settings.backend) {
                c->phase = CONN_BACKEND_CONNECT; /* conn_continue() starts it */
                return;
        }
        c->phase = CONN_HTTP;
        (void) conn_set_timer(c, c->host->settings.idle_timeout_us);
}

/* A connection gets its TLS context (Mbed TLS's buffers, 33 KiB, which it also zeroes when it frees them)
 * only once the first record of the ClientHello is complete in the socket: thousands of clients holding
 * part of a ClientHello cost little memory, and when they close, closing them costs no TLS context. What
 * is not a handshake record's start goes to Mbed TLS at once, as before. Returns 1: go on with TLS;
 * 0: wait for more; -1: the client closed with its record incomplete, recorded as Mbed TLS would have
 * (its bytes read into the capture), c is freed. */
static int conn_first_record(Conn *c) {
        uint8_t h[9]; /* the record header, then the handshake header */
        struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
        ssize_t n = recv(c->fd, h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
        int avail = 0;
        size_t want;

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                c->rx_blocked = errno == EAGAIN;
                return 0;
        }
        if (n < 0) {
                /* the peek took the socket's error (a reset): recorded now, as conn_bio_recv() would */
                c->local_fault = errno == ENOMEM || errno == ENOBUFS;
                conn_handshake_failed(
                        c,
                        errno == ECONNRESET || errno == EPIPE ? MBEDTLS_ERR_NET_CONN_RESET
                                                              : MBEDTLS_ERR_NET_RECV_FAILED);
                return -1;
        }
        if (n == 0) { /* closed without data: no TLS context needed to say so */
                c->rx_eof = true;
                conn_handshake_failed(c, MBEDTLS_ERR_SSL_CONN_EOF);
                return -1;
        }
        if (h[0] != 22)
                return 1;
        if (n >= 5) {
                want = 5 + ((size_t) h[3] << 8 | h[4]);
                if (h[1] != 3 || want == 5 || want > 5 + MBEDTLS_SSL_IN_CONTENT_LEN ||
                    ioctl(c->fd, FIONREAD, &avail) < 0 || (size_t) avail >= want)
                        return 1;
        }
        /* a handshake header announcing more than Mbed TLS accepts is refused at once, record complete
         * or not (outcome_hello_too_large()) */
        if (n == (ssize_t) sizeof h &&
            ((size_t) h[6] << 16 | (size_t) h[7] << 8 | h[8]) > MBEDTLS_SSL_IN_CONTENT_LEN)
                return 1;
        if (poll(&p, 1, 0) < 0 || (p.revents & (POLLERR | POLLNVAL)))
                return 1;
        if (p.revents & (POLLRDHUP | POLLHUP)) {
                conn_handshake_failed(c, MBEDTLS_ERR_SSL_CONN_EOF);
                return -1;
        }
        c->rx_blocked = true; /* all there is was seen: the next bytes wake us (edge-triggered) */
        return 0;
}

static void conn_handshake(Conn *c) {
        int r;

        if (!c->ssl_ready) {
                r = conn_first_record(c);
                if (r == 0)
                        (void) conn_want(c, EPOLLIN);
                if (r <= 0)
                        return;
                r = conn_ssl_setup(c);
                if (r < 0) {
                        conn_abort(c, "out of memory setting up TLS");
                        return;
                }
        }
        for (;;) {
                int st, after;

                if (mbedtls_ssl_is_handshake_over(&c->ssl)) {
                        conn_uncork(c); /* e.g. TLS 1.3 session tickets */
                        conn_handshake_done(c);
                        conn_continue(c);
                        return;
                }
                st = tls_private_state(&c->ssl);
                if (st == MBEDTLS_SSL_SERVER_CERTIFICATE)
                        c->saw_server_cert = true;
                if (st == MBEDTLS_SSL_SERVER_FINISHED)
                        c->saw_server_finished = true;

                if (st == MBEDTLS_SSL_SERVER_KEY_EXCHANGE)
                        conn_uncork(c);
                r = mbedtls_ssl_handshake_step(&c->ssl);

                after = tls_private_state(&c->ssl);
                if (r == 0 && st == MBEDTLS_SSL_HELLO_RETRY_REQUEST && after != st)
                        c->saw_hrr = true; /* written, not only attempted (no group in common fails here) */
                /* Our Certificate is written (TLS 1.2 flushes it in this step, TLS 1.3 at the start of the
                 * next one, before it signs): once those bytes are out, a client that rejects it may answer
                 * before the rest of our flight is written, e.g. Chromium with alert 46 and FIN while we
                 * still write ServerKeyExchange, or Python's alert 48 while we sign CertificateVerify.
                 * Likewise our ServerHello that accepts a TLS 1.2 session resumption: Chromium rejects the
                 * remembered certificate right after it, while we may still write ChangeCipherSpec and
                 * Finished. */
                if (r == 0 && c->flight_mark == 0 && after != st &&
                    (st == MBEDTLS_SSL_SERVER_CERTIFICATE ||
                     (st == MBEDTLS_SSL_SERVER_HELLO && after == MBEDTLS_SSL_SERVER_CHANGE_CIPHER_SPEC))) {
                        c->flight_mark = c->out_scanner.bytes + tls_private_output_pending(&c->ssl);
                        conn_check_flight(c);
                }
                if (r == 0 && after != st &&
                    (st == MBEDTLS_SSL_CLIENT_KEY_EXCHANGE || st == MBEDTLS_SSL_CLIENT_CHANGE_CIPHER_SPEC ||
                     st == MBEDTLS_SSL_CLIENT_FINISHED))
                        conn_reach(c, STEP_CLIENT_FLIGHT);
                if (state_reads_client_flight(after) && tls_private_output_pending(&c->ssl) == 0 &&
                    !c->send_failed)
                        conn_reach(c, STEP_SERVER_FLIGHT);

                /* a later handshake message whose header announces more than Mbed TLS accepts: Mbed TLS
                 * would wait for all of it (the ClientHello is refused in conn_bio_recv()) */
                if (r == MBEDTLS_ERR_SSL_WANT_READ &&
                    tls_private_handshake_len(&c->ssl) >
                            TLS_HANDSHAKE_HEADER_SIZE + OUTCOME_MBEDTLS_IN_CONTENT_LEN) {
                        c->message_too_large =
                                (uint32_t) (tls_private_handshake_len(&c->ssl) - TLS_HANDSHAKE_HEADER_SIZE);
                        r = MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
                }
                if (r != 0)
                        conn_uncork(c); /* whatever we wait for, or the alert that ends the handshake */
                if (conn_wait_io(c, r))
                        return;
                if (r != 0) {
                        conn_handshake_failed(c, r);
                        return;
                }
        }
}

/* ---- HTTP ---- */

/* Between two requests: one served, nothing of the next one received (nor decrypted and buffered). */
static bool conn_between_requests(Conn *c) {
        return c->phase == CONN_HTTP && c->requests > 0 && c->in_len == 0 && c->out_len == 0 &&
                mbedtls_ssl_get_bytes_avail(&c->ssl) == 0;
}

int conn_page_answer(
        Conn *c,
        const char *method,
        size_t method_len,
        const char *target,
        size_t target_len,
        bool *ret_head,
        char **ret_body,
        size_t *ret_len,
        const char **ret_ctype) {
        bool head = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
        PageKind kind = page_kind_from_target(target, target_len);
        int status = 200;

        *ret_body = NULL;
        *ret_len = 0;
        *ret_ctype = "text/plain; charset=utf-8";
        *ret_head = head;
        if (!head && !(method_len == 3 && memcmp(method, "GET", 3) == 0))
                status = 405;
        else if (kind == PAGE_NONE)
                status = 404;
        else {
                conn_update_counters(c);
                if (page_render(c->host->recent, c->attempt, kind, ret_body, ret_len, ret_ctype) < 0)
                        status = 500;
        }
        if (status != 200) {
                free(*ret_body);
                if (asprintf(ret_body, "%d %s\n", status, http_status_reason(status)) < 0)
                        *ret_body = NULL;
                *ret_len = *ret_body ? strlen(*ret_body) : 0;
                *ret_ctype = "text/plain; charset=utf-8";
        }
        return status;
}

static void conn_http_respond(Conn *c, const HttpRequest *req) {
        _cleanup_free_ char *body = NULL;
        const char *ctype;
        size_t body_len;
        bool head, keep;
        int status, r;

        keep = req->keep_alive && !req->has_body && c->requests + 1 < c->host->settings.max_requests &&
                !c->host->draining;
        status = conn_page_answer(
                c, req->method, req->method_len, req->target, req->target_len, &head, &body, &body_len, &ctype);

        free(c->out);
        c->out = NULL;
        c->out_off = 0;
        r = http_response_build(status, ctype, body, body_len, keep, head, &c->out, &c->out_len);
        if (r < 0) {
                c->out_len = 0;
                c->close_after_write = true;
                return;
        }
        c->close_after_write = !keep;
}

static void conn_http_error(Conn *c, int status) {
        char body[64];

        (void) snprintf(body, sizeof body, "%d %s\n", status, http_status_reason(status));
        free(c->out);
        c->out = NULL;
        c->out_off = 0;
        if (http_response_build(
                    status, "text/plain; charset=utf-8", body, strlen(body), false, false, &c->out, &c->out_len) <
            0)
                c->out_len = 0;
        c->close_after_write = true;
}

/* Handles a request in c->in, if a complete one is there. Returns true if it produced a response. */
static bool conn_http_parse(Conn *c) {
        HttpRequest req;

        if (!http_header_end_after(c->in, c->in_len, c->in_scanned)) {
                c->in_scanned = c->in_len; /* nothing to parse yet: do not scan these bytes again */
                return false;
        }
        switch (http_parse_request(c->in, c->in_len, &req)) {
        case HTTP_PARSE_MORE: c->in_scanned = c->in_len; return false;
        case HTTP_PARSE_BAD: conn_http_error(c, 400); return true;
        case HTTP_PARSE_TOO_LARGE: conn_http_error(c, 431); return true;
        case HTTP_PARSE_DONE: break;
        }
        if (c->requests == 0 && c->attempt) {
                if (req.has_user_agent)
                        (void) raw_string_set(&c->attempt->user_agent, req.user_agent, req.user_agent_len);
                c->host->ops->note_request(c->host->userdata, c->attempt);
        }
        conn_http_respond(c, &req);
        c->requests++;
        c->host->ops->request_served(c->host->userdata);
        memmove(c->in, c->in + req.consumed, c->in_len - req.consumed);
        c->in_len -= req.consumed;
        c->in_scanned = 0;
        return true;
}

void conn_close_tls(Conn *c, CloseKind why) {
        conn_closed(c, why);
        (void) mbedtls_ssl_close_notify(&c->ssl); /* best effort */
        conn_record(c);
        conn_linger(c);
}

/* The client ended the connection, or sent an alert, in the HTTP phase. */
void conn_http_peer_end(Conn *c, int r) {
        Attempt *a = c->attempt;

        conn_closed(c, outcome_close_kind(r));
        if (a) {
                HttpEndFacts f = {
                        .tls_error = r,
                        .alert_read = r == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
                                ? tls_private_received_alert(&c->ssl, r)
                                : -1,
                        .requests = c->requests,
                        .request_bytes = c->in_len,
                        .served_elsewhere = c->requests == 0 && c->in_len == 0 &&
                                c->host->ops->client_served_since(c->host->userdata, a, a->started_us),
                        /* Mbed TLS answers a renegotiation ClientHello with a warning alert and reads on */
                        .renegotiation_refused = c->capture.scanner.handshake_records >
                                        c->handshake_records_done &&
                                c->out_scanner.alerts + c->out_scanner.encrypted_alerts > c->alerts_sent_done,
                };

                outcome_http_ended(a, &f);
        }
        conn_record(c);
        conn_free(c);
}

static void conn_http(Conn *c) {
        int r;

        for (;;) {
                if (c->out_off < c->out_len) {
                        r = mbedtls_ssl_write(
                                &c->ssl, (const unsigned char *) c->out + c->out_off, c->out_len - c->out_off);
                        if (conn_wait_io(c, r))
                                return;
                        if (r < 0) {
                                conn_closed(c, outcome_close_kind(r));
                                conn_record(c);
                                conn_free(c);
                                return;
                        }
                        c->out_off += (size_t) r;
                        if (c->out_off < c->out_len)
                                continue;
                        free(c->out);
                        c->out = NULL;
                        c->out_len = c->out_off = 0;
                        if (c->close_after_write) {
                                conn_close_tls(c, CLOSE_SERVER);
                                return;
                        }
                        (void) conn_set_timer(c, c->host->settings.idle_timeout_us);
                }
                if (c->close_after_write && c->out_off >= c->out_len) {
                        /* also when the response could not be built (out of memory) */
                        conn_close_tls(c, CLOSE_SERVER);
                        return;
                }
                if (c->in_len > 0 && conn_http_parse(c))
                        continue;
                if (c->in_len >= HTTP_MAX_HEADER_BYTES) {
                        conn_http_error(c, 431);
                        continue;
                }
                if (c->host->draining && conn_between_requests(c)) {
                        conn_close_tls(c, CLOSE_SHUTDOWN);
                        return;
                }
                if (!c->in) {
                        c->in = malloc(HTTP_MAX_HEADER_BYTES);
                        if (!c->in) {
                                conn_abort(c, "out of memory");
                                return;
                        }
                }
                r = mbedtls_ssl_read(
                        &c->ssl, (unsigned char *) c->in + c->in_len, HTTP_MAX_HEADER_BYTES - c->in_len);
                if (conn_wait_io(c, r))
                        return;
                if (r <= 0) {
                        conn_http_peer_end(c, r);
                        return;
                }
                c->in_len += (size_t) r;
                if (!conn_http_parse(c) && c->in_len >= HTTP_MAX_HEADER_BYTES)
                        conn_http_error(c, 431);
        }
}

/* ---- lingering close ---- */

void conn_linger(Conn *c) {
        if (c->phase == CONN_LINGER)
                return;
        c->phase = CONN_LINGER;
        if (!c->hello_seen && c->host->ops->past_hello)
                c->host->ops->past_hello(c->host->userdata, c); /* recorded: nothing left to evict */
        /* The client closed its side and we read all it sent: nothing to wait for, and close() sends our
         * FIN, not a reset (what a mass disconnect costs: one wake-up per connection, not two). */
        if (c->rx_eof || shutdown(c->fd, SHUT_WR) < 0) {
                conn_free(c);
                return;
        }
        /* Stopping: the lingering connections were freed when the drain began (conn_drain()); one that
         * ends now does not hold the stop up either (the client has our answer and our FIN). */
        if (c->host->draining) {
                conn_free(c);
                return;
        }
        (void) conn_want(c, EPOLLIN);
        (void) sd_event_now(c->host->event, CLOCK_MONOTONIC, &c->linger_mono_us);
        (void) conn_set_timer(c, LINGER_TIMEOUT_US);
}

static void conn_linger_read(Conn *c) {
        uint8_t buf[16384];
        bool got = false;
        uint64_t now;

        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof buf, 0);

                c->rx_blocked = n < 0 && errno == EAGAIN;
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n <= 0) {
                        conn_free(c);
                        return;
                }
                c->lingered += (size_t) n;
                got = true;
                if (c->lingered > LINGER_MAX_BYTES) {
                        conn_free(c);
                        return;
                }
        }
        /* bytes came: 2 s more without one, within the 30 s in all */
        if (got && sd_event_now(c->host->event, CLOCK_MONOTONIC, &now) >= 0) {
                if (now >= c->linger_mono_us + LINGER_TOTAL_US) {
                        conn_free(c);
                        return;
                }
                (void) conn_set_timer(
                        c,
                        (int64_t) MIN((uint64_t) LINGER_TIMEOUT_US, c->linger_mono_us + LINGER_TOTAL_US - now));
        }
}

/* ---- events ---- */

void conn_continue(Conn *c) {
        switch (c->phase) {
        case CONN_HANDSHAKE: conn_handshake(c); break;
        case CONN_HTTP: conn_http(c); break;
        case CONN_LINGER: conn_linger_read(c); break;
        case CONN_BACKEND_CONNECT: conn_backend_connect(c); break;
        case CONN_PROXY: conn_proxy(c); break;
        case CONN_PROXY_HTTP: conn_http_proxy(c); break;
        }
}

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        conn_continue(userdata);
        return 0;
}

static int conn_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;

        switch (c->phase) {
        case CONN_HANDSHAKE: {
                HandshakeFacts f;

                if (c->aged && !c->starved && sd_event_source_get_pending(c->io) > 0) {
                        /* What the client sent waited behind newer connections (conn_check_age()), which a
                         * loaded server may keep busy until the deadline: it is served first now, and the
                         * handshake gets one more CONN_STARVED_GRACE_US, once. */
                        c->starved = true;
                        (void) sd_event_source_set_priority(c->io, SD_EVENT_PRIORITY_IMPORTANT);
                        (void) conn_set_timer(c, CONN_STARVED_GRACE_US);
                        break;
                }
                if (!c->ssl_ready) /* what the client sent is still in the socket (conn_first_record()) */
                        conn_drain_socket(c);
                f = conn_handshake_facts(c, 0);

                c->attempt->ended_us = conn_now_us();
                conn_closed(c, outcome_handshake_timed_out(c->attempt, &f));
                conn_record(c);
                conn_free(c);
                break;
        }
        case CONN_HTTP: /* idle keep-alive connection, or one whose request did not come in time */
                conn_close_tls(c, c->drain_cut ? CLOSE_SHUTDOWN : CLOSE_IDLE_TIMEOUT);
                break;
        case CONN_LINGER: conn_free(c); break;
        case CONN_BACKEND_CONNECT:
                if (c->drain_cut) { /* our stop, not the backend's fault: close_kind says it */
                        conn_backend_close(c);
                        conn_close_tls(c, CLOSE_SHUTDOWN);
                } else
                        conn_backend_failed(c, "connect to %s: timed out", c->host->settings.backend->name);
                break;
        case CONN_PROXY: conn_proxy_timeout(c); break;
        case CONN_PROXY_HTTP: conn_http_proxy_timeout(c); break;
        }
        return 0;
}

ConnLink *conn_link(Conn *c) {
        return &c->link;
}

bool conn_check_age(Conn *c, uint64_t now_mono_us) {
        if (c->aged)
                return false;
        if (now_mono_us < c->opened_mono_us + CONN_SLOW_HANDSHAKE_US)
                return true;
        c->aged = true;
        if (c->phase == CONN_HANDSHAKE)
                (void) sd_event_source_set_priority(c->io, CONN_SLOW_PRIORITY);
        return true;
}

/* Brings the connection's deadline forward to at most usec from now. */
static void conn_cap_timer(Conn *c, int64_t usec) {
        uint64_t now, deadline;

        if (sd_event_now(c->host->event, CLOCK_MONOTONIC, &now) < 0 ||
            sd_event_source_get_time(c->timer, &deadline) < 0 || deadline <= now + (uint64_t) usec)
                return;
        if (conn_set_timer(c, usec) >= 0)
                c->drain_cut = true;
}

void conn_drain(Conn *c) {
        switch (c->phase) {
        case CONN_LINGER: conn_free(c); break;
        case CONN_HTTP:
                if (conn_between_requests(c))
                        conn_close_tls(c, CLOSE_SHUTDOWN);
                else
                        conn_cap_timer(c, DRAIN_REQUEST_GRACE_US); /* finish this request, then close */
                break;
        case CONN_HANDSHAKE: conn_cap_timer(c, DRAIN_HANDSHAKE_GRACE_US); break;
        case CONN_BACKEND_CONNECT:
        case CONN_PROXY: conn_cap_timer(c, DRAIN_REQUEST_GRACE_US); break;
        case CONN_PROXY_HTTP:
                if (conn_http_proxy_between_requests(c)) {
                        conn_backend_close(c);
                        conn_close_tls(c, CLOSE_SHUTDOWN);
                } else
                        conn_cap_timer(c, DRAIN_REQUEST_GRACE_US); /* finish this request, then close */
                break;
        }
}

void conn_abort(Conn *c, const char *reason) {
        if (c->attempt && c->phase == CONN_HANDSHAKE && !c->ssl_ready)
                conn_drain_socket(c); /* conn_first_record() left it there */
        if (c->attempt && c->phase == CONN_HANDSHAKE) {
                c->attempt->ended_us = conn_now_us();
                outcome_handshake_aborted(c->attempt, reason);
        }
        if (c->attempt && c->phase == CONN_BACKEND_CONNECT && !c->attempt->backend_error &&
            !streq(reason, CONN_ABORT_SHUTDOWN)) /* our stop is not the backend's fault */
                c->attempt->backend_error = strdup(reason);
        if (streq(reason, CONN_ABORT_SHUTDOWN))
                conn_closed(c, CLOSE_SHUTDOWN);
        conn_record(c);
        conn_free(c);
}

static void conn_free(Conn *c) {
        if (c->attempt)
                conn_record(c);
        conn_backend_close(c);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        if (c->ssl_ready)
                mbedtls_ssl_free(&c->ssl);
        tls_context_unref(c->tls);
        clienthello_capture_done(&c->capture);
        free(c->in);
        free(c->out);
        free(c->hx_replay);
        safe_close(c->fd);
        if (c->adopted)
                c->host->ops->closed(c->host->userdata, c);
        free(c);
}

int conn_new(ConnHost *host, int fd, const struct sockaddr *peer, int64_t started_us, Conn **ret) {
        struct sockaddr_storage local;
        socklen_t local_len = sizeof local;
        Conn *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(fd);
                return log_oom();
        }
        c->host = host;
        c->fd = fd;
        c->backend_fd = -EBADF;
        (void) sd_event_now(host->event, CLOCK_MONOTONIC, &c->opened_mono_us);
        /* Mbed TLS writes each handshake record on its own: without this, the last one of a TLS 1.2 flight
         * waits for the client's delayed ACK (about 40 ms). */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        clienthello_capture_init(&c->capture);
        record_scanner_init(&c->out_scanner);

        c->attempt = attempt_new();
        if (!c->attempt) {
                conn_free(c);
                return log_oom();
        }
        c->attempt->started_us = started_us;
        (void) sockaddr_to_attempt_addr(peer, c->attempt->peer_addr, &c->attempt->peer_port);
        if (getsockname(fd, (struct sockaddr *) &local, &local_len) == 0)
                (void) sockaddr_to_attempt_addr(
                        (struct sockaddr *) &local, c->attempt->local_addr, &c->attempt->local_port);

        /* edge-triggered (conn_want()); adding reports what is already there */
        r = sd_event_add_io(host->event, &c->io, fd, EPOLLIN | EPOLLET, conn_on_io, c);
        if (r >= 0) {
                c->io_events = EPOLLIN;
                c->rx_blocked = c->tx_blocked = true;
                r = sd_event_add_time_relative(
                        host->event,
                        &c->timer,
                        CLOCK_MONOTONIC,
                        (uint64_t) host->settings.handshake_timeout_us,
                        10 * USEC_PER_MSEC,
                        conn_on_timer,
                        c);
        }
        if (r < 0) {
                conn_abort(c, "cannot watch the connection (event loop error)");
                return r;
        }
        c->adopted = true;
        *ret = c;
        return 0;
}
