/* SPDX-License-Identifier: MIT */
#include <mbedtls/net_sockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include "backend.h"
#include "conn-private.h"
#include "http.h"
#include "log.h"
#include "page.h"
#include "tls-private.h"

/* --backend-protocol http: HTTP/1.1 requests are forwarded one at a time on one backend connection per
 * client connection. Each request head is parsed strictly (core/http-proxy.c) and forwarded rewritten
 * (tlswatch's headers added, the client's copies of them removed), then exactly its body as its framing
 * delimits it; the backend's answer (interim 1xx, then the final response) is framed too, so that we know
 * where it ends, and passed on unchanged. The next request is parsed only once the answer was sent:
 * pipelined requests wait in c->in, which is not read beyond HX_IN_SIZE (the backpressure toward the
 * client), and b2c is not read beyond PROXY_BUF_SIZE (toward the backend). A request under
 * /.well-known/tlswatch/ is answered here (the self page and its API), never forwarded. A refused request
 * (400, 431, ...), a backend that cannot be reached (502) or does not answer in time (504), or whose answer
 * is malformed (502), gets an answer of ours with Connection: close; each is noted in the attempt's
 * backend_error. A 101 answering an Upgrade switches to byte forwarding both ways (conn_proxy()).
 *
 * The attempt's row is written when the connection ends, as for the self page (so that it holds its
 * requests, its first User-Agent and a refusal), or when it switches to byte forwarding (it may then stay
 * open for hours). */

#define HX_IN_SIZE (32 * 1024) /* a head (at most HTTP_PROXY_MAX_HEAD_BYTES) and what follows it */
#define WELL_KNOWN "/.well-known/tlswatch"

static void *mfree(void *p) {
        free(p);
        return NULL;
}

enum {
        HX_REQ_HEAD, /* waiting for the next request head */
        HX_REQ_BODY, /* forwarding its body */
        HX_REQ_DONE, /* forwarded whole; its answer comes */
};

enum {
        HX_RESP_NONE, /* no request forwarded waits for an answer */
        HX_RESP_HEAD, /* waiting for a response head (after interim ones too) */
        HX_RESP_BODY, /* passing its body on */
};

static void hx_note(Conn *c, const char *fmt, ...) _printf_(2, 3);
static void hx_note(Conn *c, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        log_debug("Forwarded HTTP connection: %s", s);
        if (c->attempt && !c->attempt->backend_error) /* the first one says what went wrong */
                c->attempt->backend_error = TAKE_PTR(s);
}

/* Connecting to the backend failed: noted only if a request waits for that connection (it gets a 502 or
 * 504). The connection made as the handshake completes, before any request, is tried again when one comes:
 * a client that asks nothing (a browser's preconnect), or whose request finds the backend back, was not
 * failed. */
static void hx_note_connect(Conn *c, const char *why) {
        if (c->hx_waiting || c->hx_resp != HX_RESP_NONE)
                hx_note(c, "connect to %s: %s", c->host->settings.backend->name, why);
        else
                log_debug(
                        "Forwarded HTTP connection: connect to %s: %s (no request waits: tried again for "
                        "the next one)",
                        c->host->settings.backend->name,
                        why);
}

/* The backend's socket is closed; the buffers stay (what it sent may still be on its way to the client). */
static void hx_backend_drop(Conn *c) {
        c->backend_io = sd_event_source_disable_unref(c->backend_io);
        c->backend_fd = safe_close(c->backend_fd);
        c->backend_connected = false;
        c->backend_connect_mono_us = 0;
        c->backend_reused = false;
        c->c2b_off = c->c2b_len = 0;
}

static void hx_replay_drop(Conn *c) {
        c->hx_replay = mfree(c->hx_replay);
        c->hx_replay_len = 0;
}

/* An answer of ours into c->out, sent before anything else; then the connection closes. */
static void hx_answer(Conn *c, int status, const char *ctype, const char *body, size_t len, bool head, bool keep) {
        free(c->out);
        c->out = NULL;
        c->out_off = c->out_len = 0;
        if (http_response_build(status, ctype, body, len, keep, head, &c->out, &c->out_len) < 0)
                c->out_len = 0;
        if (!keep)
                c->hx_closing = true;
}

static void hx_error(Conn *c, int status, const char *why) {
        char body[256];

        (void) snprintf(body, sizeof body, "%d %s: %s\n", status, http_status_reason(status), why);
        hx_answer(c, status, "text/plain; charset=utf-8", body, strlen(body), c->req_is_head, false);
}

/* A request refused at its head or in its body: answered, noted, and nothing more is read. */
static void hx_refuse(Conn *c, int status, const char *why) {
        hx_note(c, BACKEND_ERROR_REFUSED_PREFIX "%d): %s", status, strna(why));
        if (c->attempt)
                log_info(
                        "Refused a request from %s:%u (%d): %s",
                        c->attempt->peer_addr,
                        c->attempt->peer_port,
                        status,
                        strna(why));
        hx_error(c, status, strna(why));
        c->in_len = 0;
        c->hx_req = HX_REQ_HEAD;
}

/* The backend failed the request in flight: answered with status if nothing of its answer was passed on
 * yet, otherwise the client's stream is cut (no close_notify: the client sees a truncation). */
static void hx_backend_error(Conn *c, int status, const char *why) {
        hx_note(c, "%s", why);
        hx_backend_drop(c);
        hx_replay_drop(c);
        if (c->hx_resp != HX_RESP_NONE && !c->resp_started) {
                c->b2c_len = c->hx_ready; /* nothing of it goes out */
                hx_error(c, status, why);
        } else if (c->hx_resp != HX_RESP_NONE)
                c->hx_truncate = c->hx_closing = true;
        else
                c->hx_closing = true;
        c->hx_resp = HX_RESP_NONE;
}

/* The path (and query) of a request target: origin-form as it is, absolute-form after its authority
 * ("https://host/.well-known/tlswatch/" is the path the backend would serve, RFC 9112 3.2.2). */
static void target_path(const char *t, size_t len, const char **ret, size_t *ret_len) {
        const char *s = len > 0 && t[0] != '/' ? memmem(t, len, "://", 3) : NULL, *p;

        if (s) {
                s += 3;
                p = memchr(s, '/', (size_t) (t + len - s));
                if (!p)
                        p = memchr(s, '?', (size_t) (t + len - s));
                *ret = p ?: t + len;
                *ret_len = (size_t) (t + len - *ret);
                return;
        }
        *ret = t;
        *ret_len = len;
}

static bool target_is_ours(const char *target, size_t target_len) {
        size_t n = strlen(WELL_KNOWN), len;
        const char *t;

        target_path(target, target_len, &t, &len);
        return len >= n && memcmp(t, WELL_KNOWN, n) == 0 && (len == n || t[n] == '/' || t[n] == '?');
}

/* The self page and its API, answered here. */
static void hx_local(Conn *c, const HttpMessageHead *h) {
        const char *target;
        size_t len;
        _cleanup_free_ char *body = NULL;
        const char *ctype;
        bool keep = h->keep_alive && h->framing == HTTP_FRAMING_NONE && !c->host->draining &&
                c->requests + 1 < c->host->settings.max_requests;
        size_t body_len;
        bool head;
        int status;

        target_path(h->target, h->target_len, &target, &len);
        target += strlen(WELL_KNOWN); /* target_is_ours() */
        len -= strlen(WELL_KNOWN);
        if (len == 0 || target[0] == '?') {
                target = "/";
                len = 1;
        }
        status = conn_page_answer(c, h->method, h->method_len, target, len, &head, &body, &body_len, &ctype);
        hx_answer(c, status, ctype, body, body_len, head, keep);
}

/* The first request's User-Agent, for the record (raw, as the self page's mode keeps it). */
static void hx_user_agent(Conn *c, const char *buf, const HttpMessageHead *h) {
        static const char name[] = "\r\nuser-agent:";
        const char *p = buf, *end = buf + h->head_len;

        for (; (p = memchr(p, '\r', (size_t) (end - p))); p++) {
                const char *v, *e;

                if ((size_t) (end - p) < sizeof name - 1 || strncasecmp(p, name, sizeof name - 1) != 0)
                        continue;
                v = p + sizeof name - 1;
                while (v < end && (*v == ' ' || *v == '\t'))
                        v++;
                e = memchr(v, '\r', (size_t) (end - v));
                if (!e)
                        return;
                while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                (void) raw_string_set(&c->attempt->user_agent, v, (size_t) (e - v));
                return;
        }
}

static void hx_consume_in(Conn *c, size_t n) {
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        c->in_scanned = 0;
}

/* Makes room at the end of c2b / b2c (what was sent is dropped). */
static void hx_compact_c2b(Conn *c) {
        if (c->c2b_off == 0)
                return;
        memmove(c->c2b, c->c2b + c->c2b_off, c->c2b_len - c->c2b_off);
        c->c2b_len -= c->c2b_off;
        c->c2b_off = 0;
}

static void hx_compact_b2c(Conn *c) {
        if (c->b2c_off == 0 || c->tls_write_len > 0)
                return;
        memmove(c->b2c, c->b2c + c->b2c_off, c->b2c_len - c->b2c_off);
        c->b2c_len -= c->b2c_off;
        c->hx_ready -= c->b2c_off;
        c->b2c_off = 0;
}

static int hx_connect(Conn *c) {
        int r;

        hx_backend_drop(c);
        r = conn_backend_start(c);
        if (r < 0) {
                hx_note_connect(c, strerror(-r));
                c->hx_pending_error = 502;
                return r;
        }
        (void) sd_event_now(c->host->event, CLOCK_MONOTONIC, &c->backend_connect_mono_us);
        conn_proxy_touch(c, false, true);
        return 0;
}

/* RFC 9110 9.2.2: sending it twice does what sending it once does. */
static bool method_is_idempotent(const HttpMessageHead *h) {
        static const char *const methods[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};

        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (h->method_len == strlen(methods[i]) && memcmp(h->method, methods[i], h->method_len) == 0)
                        return true;
        return false;
}

/* The backend closed a connection that had answered before without a byte of this request's answer: most
 * likely it closed it as idle just as the request came (a keep-alive timeout), so the request (idempotent,
 * without a body) goes again on a new connection, once, as nginx and HAProxy do, rather than a 502. */
static void hx_retry(Conn *c) {
        _cleanup_free_ char *req = TAKE_PTR(c->hx_replay);
        size_t len = c->hx_replay_len;

        c->hx_replay_len = 0;
        log_debug("Forwarded HTTP connection: the backend closed a reused connection before its answer; "
                  "sending the request again on a new one.");
        if (hx_connect(c) < 0) {
                c->hx_pending_error = 0;
                hx_backend_error(c, 502, "the backend cannot be reached");
                return;
        }
        memcpy(c->c2b, req, len);
        c->c2b_off = 0;
        c->c2b_len = len;
}

/* The request head at the start of c->in: parsed, then answered here, refused, or forwarded. Returns
 * whether something changed. */
static bool hx_request_head(Conn *c) {
        const BackendSettings *b = c->host->settings.backend;
        _cleanup_free_ char *head = NULL;
        HttpMessageHead h;
        HttpParse p;
        size_t len;
        int r;

        if (!http_proxy_head_worth_parsing(c->in, c->in_len, c->in_scanned)) {
                c->in_scanned = c->in_len; /* else each byte would rescan the head from the old mark */
                return false;
        }
        p = http_proxy_parse_request(c->in, c->in_len, &h);
        if (p == HTTP_PARSE_MORE) {
                c->in_scanned = c->in_len;
                return false;
        }
        c->req_is_head = p == HTTP_PARSE_DONE && h.method_len == 4 && memcmp(h.method, "HEAD", 4) == 0;
        if (p != HTTP_PARSE_DONE) {
                hx_refuse(c, h.error_status ?: 400, h.error);
                return true;
        }
        if (c->requests == 0 && c->attempt) {
                hx_user_agent(c, c->in, &h);
                c->host->ops->note_request(c->host->userdata, c->attempt);
        }
        if (target_is_ours(h.target, h.target_len)) {
                hx_local(c, &h);
                hx_consume_in(c, h.head_len);
                c->requests++;
                c->host->ops->request_served(c->host->userdata);
                if (h.framing != HTTP_FRAMING_NONE) /* its body is not read: nothing more can be */
                        c->hx_closing = true;
                return true;
        }
        if (c->hx_pending_error && c->hx_waiting) { /* connecting for this request failed */
                int status = c->hx_pending_error;

                c->hx_pending_error = 0;
                c->hx_waiting = false;
                hx_error(
                        c,
                        status,
                        status == 504 ? "the backend did not accept the connection in time"
                                      : "the backend cannot be reached");
                c->requests++;
                return true;
        }
        c->hx_pending_error = 0; /* a failure before this request came: it tries again */
        c->hx_waiting = true;
        if (c->backend_fd < 0 || c->backend_eof || c->backend_failed) {
                (void) hx_connect(c); /* on failure the next turn answers 502 */
                return true;
        }
        if (!c->backend_connected)
                return false; /* connecting: the request waits */

        if (!c->hx_forwarded) {
                /* the first request forwarded: the row's id, and the failures before it (they do not change
                 * while the connection lasts: it is not recorded yet) */
                if (c->host->ops->reserve_id && c->attempt && c->attempt->id == 0)
                        c->attempt->id = c->host->ops->reserve_id(c->host->userdata);
                c->hx_prior_failures = c->attempt ? page_prior_failures(c->host->recent, c->attempt) : 0;
                c->hx_forwarded = true;
        }
        r = http_proxy_rewrite_request(
                c->in,
                &h,
                &(HttpForwardInfo){
                        .client_addr = c->attempt ? c->attempt->peer_addr : "unknown",
                        .ja4 = c->attempt ? c->attempt->ja4 : NULL,
                        .ja4_stable = c->attempt ? c->attempt->ja4_stable : NULL,
                        .attempt_id = c->attempt && c->attempt->id > 0 ? (uint64_t) c->attempt->id : 0,
                        .prior_failures = c->hx_prior_failures,
                },
                &head,
                &len);
        if (r < 0) {
                hx_error(c, 500, "cannot forward the request");
                return true;
        }
        hx_compact_c2b(c);
        if (c->c2b_len + len > PROXY_BUF_SIZE)
                return false; /* the previous request's end is still being sent */
        memcpy(c->c2b + c->c2b_len, head, len);
        c->c2b_len += len;
        hx_replay_drop(c);
        if (c->backend_reused && h.framing == HTTP_FRAMING_NONE && !h.upgrade && method_is_idempotent(&h)) {
                c->hx_replay = TAKE_PTR(head);
                c->hx_replay_len = len;
        }
        log_debug(
                "Forwarding %.*s %.*s to %s",
                (int) h.method_len,
                h.method,
                (int) MIN(h.target_len, (size_t) 200),
                h.target,
                b->name);
        c->req_upgrade = h.upgrade;
        c->req_keep_alive = h.keep_alive && !c->host->draining;
        http_body_init(&c->req_body, &h);
        c->hx_waiting = false;
        c->hx_req = HX_REQ_BODY;
        c->hx_resp = HX_RESP_HEAD;
        c->resp_started = false;
        c->hx_scanned = 0;
        hx_consume_in(c, h.head_len);
        c->requests++;
        c->host->ops->request_served(c->host->userdata);
        return true;
}

/* The request's body from c->in into c2b, exactly as its framing delimits it. */
static bool hx_request_body(Conn *c) {
        size_t consumed = 0, room;
        HttpBodyStep st;

        hx_compact_c2b(c);
        room = PROXY_BUF_SIZE - c->c2b_len;
        st = http_body_feed(&c->req_body, c->in, MIN(c->in_len, room), &consumed);
        if (st == HTTP_BODY_BAD) {
                /* the backend has the start of it: it cannot have the rest */
                hx_backend_drop(c);
                if (!c->resp_started) {
                        c->hx_resp = HX_RESP_NONE;
                        c->b2c_len = c->hx_ready;
                        hx_refuse(c, 400, c->req_body.error);
                } else {
                        hx_note(c, BACKEND_ERROR_REFUSED_PREFIX "400): %s", strna(c->req_body.error));
                        c->hx_truncate = c->hx_closing = true;
                }
                return true;
        }
        memcpy(c->c2b + c->c2b_len, c->in, consumed);
        c->c2b_len += consumed;
        hx_consume_in(c, consumed);
        if (st == HTTP_BODY_DONE)
                c->hx_req = HX_REQ_DONE;
        return consumed > 0 || st == HTTP_BODY_DONE;
}

/* The answer in flight is complete: the next request may come, or the connection closes. */
static void hx_response_done(Conn *c) {
        c->hx_resp = HX_RESP_NONE;
        if (!c->resp_keep_alive)
                hx_backend_drop(c); /* it closes its side (or we would not know where its next answer starts) */
        if (c->hx_req != HX_REQ_DONE) { /* answered before it had the whole request (e.g. 413) */
                hx_backend_drop(c);
                c->hx_closing = true;
                c->hx_req = HX_REQ_HEAD;
                c->in_len = 0;
                return;
        }
        c->hx_req = HX_REQ_HEAD;
        c->backend_reused = c->backend_fd >= 0;
        if (!c->req_keep_alive || c->requests >= c->host->settings.max_requests)
                c->hx_closing = true;
}

/* The backend's bytes in b2c from hx_ready on: a response head, or its body. */
static bool hx_response(Conn *c) {
        HttpMessageHead h;
        size_t consumed = 0;
        HttpParse p;

        if (c->hx_resp == HX_RESP_HEAD) {
                const char *buf = (const char *) c->b2c + c->hx_ready;
                size_t len = c->b2c_len - c->hx_ready;

                if (len == 0 && c->backend_eof && c->hx_replay && c->hx_req == HX_REQ_DONE) {
                        hx_retry(c);
                        return true;
                }
                if (len == 0 || !http_proxy_head_worth_parsing(buf, len, c->hx_scanned)) {
                        c->hx_scanned = len;
                        if (c->backend_eof) {
                                hx_backend_error(c, 502, "the backend closed the connection before its answer");
                                return true;
                        }
                        return false;
                }
                p = http_proxy_parse_response(buf, len, c->req_is_head, &h);
                if (p == HTTP_PARSE_MORE) {
                        c->hx_scanned = len;
                        if (c->backend_eof) {
                                hx_backend_error(c, 502, "the backend closed the connection before its answer");
                                return true;
                        }
                        return false;
                }
                if (p != HTTP_PARSE_DONE) {
                        _cleanup_free_ char *why = NULL;

                        if (asprintf(&why, "malformed answer from the backend: %s", strna(h.error)) < 0)
                                why = NULL;
                        hx_backend_error(c, 502, why ?: "malformed answer from the backend");
                        return true;
                }
                c->hx_ready += h.head_len;
                c->hx_scanned = 0;
                c->resp_started = true;
                hx_replay_drop(c);
                if (h.status == 101) {
                        if (!c->req_upgrade) {
                                c->hx_ready -= h.head_len;
                                c->resp_started = false;
                                hx_backend_error(c, 502, "the backend switched protocols unasked");
                                return true;
                        }
                        c->hx_tunnel = true;
                        c->hx_resp = HX_RESP_NONE;
                        return true;
                }
                if (h.status < 200) /* interim (100 Continue, 103 Early Hints): the final one follows */
                        return true;
                c->resp_keep_alive = h.keep_alive;
                http_body_init(&c->resp_body, &h);
                c->hx_resp = HX_RESP_BODY;
        }
        switch (http_body_feed(
                &c->resp_body, (const char *) c->b2c + c->hx_ready, c->b2c_len - c->hx_ready, &consumed)) {
        case HTTP_BODY_DONE:
                c->hx_ready += consumed;
                hx_response_done(c);
                return true;
        case HTTP_BODY_BAD:
                c->hx_ready += consumed;
                hx_backend_error(c, 502, c->resp_body.error ?: "malformed body from the backend");
                return true;
        case HTTP_BODY_MORE:
                c->hx_ready += consumed;
                if (c->backend_eof && c->hx_ready == c->b2c_len) {
                        if (c->resp_body.framing == HTTP_FRAMING_CLOSE) { /* its end is the backend's */
                                c->resp_keep_alive = false;
                                hx_response_done(c);
                                c->hx_closing = true;
                        } else
                                hx_backend_error(c, 502, "the backend closed the connection within its answer");
                        return true;
                }
                return consumed > 0;
        }
        return false;
}

/* Byte forwarding after a 101: what the client sent after its Upgrade request goes first. */
static bool hx_switch(Conn *c) {
        hx_compact_c2b(c);
        if (c->c2b_len + c->in_len > PROXY_BUF_SIZE || c->out_len > 0)
                return false;
        memcpy(c->c2b + c->c2b_len, c->in, c->in_len);
        c->c2b_len += c->in_len;
        c->in_len = 0;
        c->in = mfree(c->in);
        c->phase = CONN_PROXY;
        log_debug("Forwarded HTTP connection: switched protocols, forwarding bytes.");
        if (c->attempt)
                conn_record_forwarded(c);
        return true;
}

/* Nothing in flight, nothing of the next request received. */
bool conn_http_proxy_between_requests(Conn *c) {
        return c->phase == CONN_PROXY_HTTP && c->hx_req == HX_REQ_HEAD && c->hx_resp == HX_RESP_NONE &&
                c->in_len == 0 && c->out_len == 0 && c->b2c_off == c->b2c_len &&
                mbedtls_ssl_get_bytes_avail(&c->ssl) == 0;
}

/* Nothing in flight either way and nothing of ours to send: what comes next is the client's request head
 * (some of it may be in c->in already). */
static bool hx_waiting_for_head(Conn *c) {
        return c->hx_req == HX_REQ_HEAD && c->hx_resp == HX_RESP_NONE && !c->hx_waiting && !c->hx_tunnel &&
                !c->hx_closing && c->out_len == 0 && c->b2c_off == c->b2c_len && c->c2b_off == c->c2b_len;
}

/* We wait for the client: to send us bytes we have room for, or to take ours; not while it waits for the
 * backend (a slow backend keeps the client's request body waiting, a slow client the backend's answer). */
static bool hx_waiting_for_client(Conn *c) {
        return c->out_len > 0 || c->b2c_off < c->hx_ready ||
                (c->hx_req == HX_REQ_HEAD && c->hx_resp == HX_RESP_NONE) ||
                (c->hx_req == HX_REQ_BODY && c->c2b_len < PROXY_BUF_SIZE);
}

/* We wait for the backend: to accept the connection, or to answer. */
static bool hx_waiting_for_backend(Conn *c) {
        return (c->backend_fd >= 0 && !c->backend_connected) || c->hx_resp != HX_RESP_NONE;
}

/* The client's idle limit applies while we wait for it, or for nobody (never while it only waits for the
 * backend's answer: that is the backend's limit, and a client that waits is not idle). */
static bool hx_client_limit_applies(Conn *c) {
        return hx_waiting_for_client(c) || !hx_waiting_for_backend(c);
}

static void hx_arm(Conn *c) {
        const BackendSettings *b = c->host->settings.backend;
        uint64_t now, deadline;

        if (c->drain_cut || sd_event_now(c->host->event, CLOCK_MONOTONIC, &now) < 0)
                return;          /* the drain's deadline stands */
        if (c->host->draining) { /* e.g. a handshake completed during the drain: its grace, once */
                if (conn_set_timer(c, DRAIN_REQUEST_GRACE_US) >= 0)
                        c->drain_cut = true;
                return;
        }
        if (c->hx_head_wait)
                deadline = c->hx_head_mono_us + (uint64_t) c->host->settings.idle_timeout_us;
        else if (hx_client_limit_applies(c))
                deadline = c->client_active_mono_us + (uint64_t) b->client_idle_timeout_us;
        else
                deadline = UINT64_MAX; /* the backend's limit follows */
        if (c->backend_fd >= 0 && !c->backend_connected)
                deadline = MIN(deadline, c->backend_connect_mono_us + (uint64_t) b->connect_timeout_us);
        else if (c->hx_resp != HX_RESP_NONE)
                deadline = MIN(deadline, c->backend_active_mono_us + (uint64_t) b->idle_timeout_us);
        (void) conn_set_timer(c, deadline > now ? (int64_t) (deadline - now) : 1);
}

/* A backend may close an idle kept-alive connection with a 408 (RFC 9110 15.5.9; RFC 9112 9.5): no
 * request waits for it, so it is no answer gone astray, and the connection is dropped as if it had just
 * closed (nginx and HAProxy do likewise). Whether the bytes start with "HTTP/1.x 408" (a status line
 * comes in one segment: fewer bytes are not waited for, since nothing else may move while they wait). */
static bool hx_idle_408(Conn *c) {
        static const char want[] = "HTTP/1.x 408";
        const char *p = (const char *) c->b2c + c->hx_ready;

        if (c->b2c_len - c->hx_ready < sizeof want - 1)
                return false;
        for (size_t i = 0; i < sizeof want - 1; i++)
                if (want[i] == 'x' ? p[i] != '0' && p[i] != '1' : p[i] != want[i])
                        return false;
        return true;
}

/* One step of every move; returns 1 if something moved, 0 if not, -1 if the connection ended. */
static int hx_step(Conn *c, bool *client_moved, bool *backend_moved) {
        bool progress = false;
        int r;

        if ((!c->in && !(c->in = malloc(HX_IN_SIZE))) || (!c->c2b && !(c->c2b = malloc(PROXY_BUF_SIZE))) ||
            (!c->b2c && !(c->b2c = malloc(PROXY_BUF_SIZE)))) {
                hx_note(c, "out of memory");
                conn_backend_close(c);
                conn_close_tls(c, CLOSE_SERVER);
                return -1;
        }
        /* connecting */
        if (c->backend_fd >= 0 && !c->backend_connected) {
                r = conn_backend_established(c);
                if (r > 0) {
                        c->backend_connected = progress = true;
                        c->backend_connect_mono_us = 0;
                        conn_proxy_touch(c, false, true);
                } else if (r < 0) {
                        hx_note_connect(c, strerror(-r));
                        hx_backend_drop(c);
                        c->hx_pending_error = 502;
                        if (c->hx_resp != HX_RESP_NONE) { /* a request sent again (hx_retry()) */
                                c->hx_pending_error = 0;
                                hx_backend_error(c, 502, "the backend cannot be reached");
                        }
                        progress = true;
                }
        }
        /* the client's plaintext into c->in */
        if (!c->client_eof && !c->hx_closing && c->in_len < HX_IN_SIZE) {
                r = mbedtls_ssl_read(&c->ssl, (unsigned char *) c->in + c->in_len, HX_IN_SIZE - c->in_len);
                if (r > 0) {
                        c->in_len += (size_t) r;
                        progress = *client_moved = true;
                } else if (r == MBEDTLS_ERR_SSL_WANT_READ)
                        progress = progress || !c->rx_blocked;
                else if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
                        progress = progress || !c->tx_blocked;
                else if (
                        (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_SSL_CONN_EOF) &&
                        !conn_http_proxy_between_requests(c) && c->hx_req != HX_REQ_BODY)
                        c->client_eof = c->hx_closing = progress = true; /* answer what it asked, then close */
                else {
                        /* the client ended it: between requests, that is how it closes; within a request's
                         * body, the request is cut short and cannot be completed; an alert or a reset */
                        if (c->hx_req == HX_REQ_BODY)
                                hx_note(c, "the client closed the connection within a request's body");
                        conn_backend_close(c);
                        conn_http_peer_end(c, r);
                        return -1;
                }
        }
        /* requests */
        for (bool more = true; more && c->phase == CONN_PROXY_HTTP;) {
                more = false;
                if (c->hx_req == HX_REQ_HEAD && !c->hx_closing && !c->hx_tunnel &&
                    c->hx_resp == HX_RESP_NONE && c->out_len == 0 && c->b2c_off == c->b2c_len && c->in_len > 0)
                        more = hx_request_head(c);
                else if (c->hx_req == HX_REQ_BODY && c->backend_fd >= 0)
                        more = hx_request_body(c);
                else if (c->hx_tunnel && c->hx_req == HX_REQ_DONE)
                        more = hx_switch(c);
                progress = progress || more;
        }
        if (c->phase != CONN_PROXY_HTTP)
                return 1; /* switched to byte forwarding */
        /* c2b to the backend */
        if (c->backend_connected) {
                r = conn_backend_send(c);
                if (r > 0)
                        progress = *backend_moved = true;
                else if (r < 0) {
                        /* what it answered before may still be read */
                        log_debug_errno(r, "Forwarded HTTP connection: sending to the backend failed: %m");
                        c->backend_failed = true;
                        c->c2b_off = c->c2b_len = 0;
                        progress = true;
                }
        }
        /* the backend's bytes into b2c, and framed */
        if (c->backend_connected && !c->backend_eof) {
                if (c->b2c_len == PROXY_BUF_SIZE)
                        hx_compact_b2c(c);
                r = conn_backend_recv(c);
                if (r > 0)
                        progress = *backend_moved = true;
                else if (r < 0) {
                        c->backend_eof = progress = true;
                        c->backend_failed = r != -ESHUTDOWN;
                }
        }
        if (c->hx_resp == HX_RESP_NONE && !c->hx_tunnel && c->b2c_len > c->hx_ready && hx_idle_408(c)) {
                log_debug("Forwarded HTTP connection: the backend closes an idle connection with a 408; "
                          "the next request connects again.");
                c->b2c_len = c->hx_ready;
                hx_backend_drop(c);
                progress = true;
        } else if (c->hx_resp == HX_RESP_NONE && !c->hx_tunnel && c->b2c_len > c->hx_ready) {
                /* bytes that answer nothing: where its answers start is lost */
                c->b2c_len = c->hx_ready;
                hx_note(c, "the backend sent bytes that answer no request");
                hx_backend_drop(c);
                c->hx_closing = progress = true;
        } else if (c->hx_resp == HX_RESP_NONE && c->backend_eof)
                hx_backend_drop(c); /* it closed between requests: the next one connects again */
        while (c->hx_resp != HX_RESP_NONE && hx_response(c))
                progress = true;
        /* ours, then b2c's framed bytes, to the client, encrypted; a write that waits is completed with the
         * same length (Mbed TLS) */
        if (c->out_off < c->out_len && c->b2c_off == c->hx_ready) {
                r = mbedtls_ssl_write(
                        &c->ssl, (const unsigned char *) c->out + c->out_off, c->out_len - c->out_off);
                if (r > 0) {
                        c->out_off += (size_t) r;
                        if (c->out_off == c->out_len) {
                                c->out = mfree(c->out);
                                c->out_off = c->out_len = 0;
                        }
                        progress = *client_moved = true;
                } else if (r == MBEDTLS_ERR_SSL_WANT_WRITE || r == MBEDTLS_ERR_SSL_WANT_READ)
                        progress = progress || (r == MBEDTLS_ERR_SSL_WANT_WRITE && !c->tx_blocked);
                else {
                        conn_backend_close(c);
                        conn_http_peer_end(c, r);
                        return -1;
                }
        } else if (c->b2c_off < c->hx_ready) {
                size_t len = c->tls_write_len ?: MIN(c->hx_ready - c->b2c_off, (size_t) PROXY_TLS_WRITE_MAX);

                r = mbedtls_ssl_write(&c->ssl, c->b2c + c->b2c_off, len);
                if (r > 0) {
                        c->tls_write_len = 0;
                        c->b2c_off += (size_t) r;
                        if (c->b2c_off == c->b2c_len)
                                c->b2c_off = c->b2c_len = c->hx_ready = 0;
                        else if (c->b2c_len - c->b2c_off < PROXY_BUF_SIZE / 2)
                                hx_compact_b2c(c);
                        progress = *client_moved = true;
                } else if (r == MBEDTLS_ERR_SSL_WANT_WRITE || r == MBEDTLS_ERR_SSL_WANT_READ) {
                        c->tls_write_len = len;
                        progress = progress || (r == MBEDTLS_ERR_SSL_WANT_WRITE && !c->tx_blocked);
                } else {
                        conn_backend_close(c);
                        conn_http_peer_end(c, r);
                        return -1;
                }
        }
        /* the end, once all that goes out went */
        if (c->hx_closing && c->out_len == 0 && c->b2c_off == c->hx_ready && c->hx_resp == HX_RESP_NONE &&
            c->tls_write_len == 0) {
                conn_backend_close(c);
                if (c->hx_truncate)
                        conn_linger(c); /* our FIN without close_notify: the client sees the truncation */
                else
                        conn_close_tls(c, CLOSE_SERVER);
                return -1;
        }
        return progress;
}

void conn_http_proxy(Conn *c) {
        bool client_moved = false, backend_moved = false;
        int r;

        while ((r = hx_step(c, &client_moved, &backend_moved)) > 0 && c->phase == CONN_PROXY_HTTP)
                ;
        if (r < 0)
                return;
        /* a side is idle only while we wait for it: to send us bytes we have room for, or to take ours; not
         * while it waits for the other side (a slow backend keeps the client's request body waiting, a slow
         * client the backend's answer) */
        if (c->phase == CONN_PROXY_HTTP) {
                bool wait_client = hx_waiting_for_client(c);
                bool wait_backend = c->c2b_off < c->c2b_len ||
                        (c->hx_resp != HX_RESP_NONE && c->b2c_len < PROXY_BUF_SIZE);

                client_moved = client_moved || !wait_client;
                backend_moved = backend_moved || !wait_backend;
        }
        if (client_moved || backend_moved)
                conn_proxy_touch(c, client_moved, backend_moved);
        if (c->phase == CONN_PROXY) { /* after a 101 */
                conn_proxy(c);
                return;
        }
        /* the buffers are held while they hold something: an idle connection has none */
        if (c->in_len == 0)
                c->in = mfree(c->in);
        if (c->c2b_len == 0)
                c->c2b = mfree(c->c2b);
        if (c->b2c_len == 0) {
                c->b2c = mfree(c->b2c);
                c->hx_ready = 0;
        }
        if (c->ra_off == c->ra_len) {
                c->ra = mfree(c->ra);
                c->ra_off = c->ra_len = 0;
        }
        if (c->host->draining && conn_http_proxy_between_requests(c)) {
                conn_backend_close(c);
                conn_close_tls(c, CLOSE_SHUTDOWN);
                return;
        }
        if (!hx_waiting_for_head(c))
                c->hx_head_wait = false;
        else if (!c->hx_head_wait && sd_event_now(c->host->event, CLOCK_MONOTONIC, &c->hx_head_mono_us) >= 0)
                c->hx_head_wait = true;
        hx_arm(c);
}

/* The handshake is done: connect to the backend now, while the first request comes (conn_continue() calls
 * conn_http_proxy() next). */
void conn_http_proxy_start(Conn *c) {
        c->phase = CONN_PROXY_HTTP;
        conn_proxy_touch(c, true, true);
        if (sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLOUT | EPOLLET) >= 0)
                c->io_events = EPOLLIN | EPOLLOUT;
        (void) hx_connect(c);
}

void conn_http_proxy_timeout(Conn *c) {
        const BackendSettings *b = c->host->settings.backend;
        uint64_t now;

        if (c->host->draining)
                c->drain_cut = true;
        if (c->drain_cut || sd_event_now(c->host->event, CLOCK_MONOTONIC, &now) < 0) {
                conn_backend_close(c);
                conn_close_tls(c, CLOSE_SHUTDOWN);
                return;
        }
        if (c->hx_head_wait && now >= c->hx_head_mono_us + (uint64_t) c->host->settings.idle_timeout_us) {
                if (c->in_len > 0) /* a client that sends its head a byte at a time holds us no longer */
                        hx_note(c,
                                "the client sent no complete request head in %" PRIi64 " s",
                                c->host->settings.idle_timeout_us / USEC_PER_SEC);
                conn_backend_close(c);
                conn_close_tls(c, CLOSE_IDLE_TIMEOUT);
                return;
        }
        if (c->backend_fd >= 0 && !c->backend_connected &&
            now >= c->backend_connect_mono_us + (uint64_t) b->connect_timeout_us) {
                hx_note_connect(c, "timed out");
                hx_backend_drop(c);
                c->hx_pending_error = 504;
                if (c->hx_resp != HX_RESP_NONE) { /* a request sent again (hx_retry()) */
                        c->hx_pending_error = 0;
                        hx_backend_error(c, 504, "the backend did not accept the connection in time");
                }
                conn_http_proxy(c);
                return;
        }
        if (c->hx_resp != HX_RESP_NONE && now >= c->backend_active_mono_us + (uint64_t) b->idle_timeout_us) {
                _cleanup_free_ char *why = NULL;

                if (asprintf(
                            &why,
                            "the backend sent nothing for %" PRIi64 " s",
                            b->idle_timeout_us / USEC_PER_SEC) < 0)
                        why = NULL;
                hx_backend_error(c, 504, why ?: "the backend timed out");
                conn_http_proxy(c);
                return;
        }
        if (!conn_http_proxy_between_requests(c) && hx_client_limit_applies(c) &&
            now >= c->client_active_mono_us + (uint64_t) b->client_idle_timeout_us) {
                /* within a request: the client stalled its body, or stopped reading its answer (not the
                 * backend's fault, and not a clean end either) */
                int64_t s = b->client_idle_timeout_us / USEC_PER_SEC;

                if (c->hx_req == HX_REQ_BODY)
                        hx_note(c, "the client sent nothing of a request's body for %" PRIi64 " s", s);
                else if (c->out_len > 0 || c->b2c_off < c->hx_ready)
                        hx_note(c, "the client read nothing of its answer for %" PRIi64 " s", s);
                else
                        hx_note(c, "the client was idle within a request for %" PRIi64 " s", s);
                log_debug("Forwarded HTTP connection closed: the client was idle.");
                conn_backend_close(c);
                conn_close_tls(c, CLOSE_IDLE_TIMEOUT);
                return;
        }
        hx_arm(c);
}
