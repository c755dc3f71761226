/* SPDX-License-Identifier: MIT */
#pragma once

/* The connection's state and the helpers that conn.c shares with proxy.c (forwarding to the backend,
 * --backend). Nothing else includes this: the rest of the server sees conn.h only. */

#include <mbedtls/ssl.h>

#include "clienthello.h"
#include "conn.h"
#include "http-proxy.h"
#include "outcome.h"

/* The lingering close (conn_linger()) reads and drops what the client still sends, so that our answer is
 * not destroyed by the reset that closing over unread bytes sends: until the client's end, or 2 s without
 * a byte, or 30 s, or 64 MiB (as nginx's lingering_timeout and lingering_time: a client that uploads a
 * large body to a URL refused early, e.g. with a 413, must read that answer, not a reset). */
#define LINGER_TIMEOUT_US (2 * USEC_PER_SEC)
#define LINGER_TOTAL_US (30 * USEC_PER_SEC)
/* When the server drains (SIGTERM), the time left to open handshakes and to a request being received:
 * with the store's own flush this stays well inside the unit's TimeoutStopSec=30s. */
#define DRAIN_HANDSHAKE_GRACE_US (10 * USEC_PER_SEC)
#define DRAIN_REQUEST_GRACE_US (2 * USEC_PER_SEC)
#define LINGER_MAX_BYTES (64 * 1024 * 1024)
/* A handshake still open after this long is served after newer connections (conn_check_age()). */
#define CONN_SLOW_HANDSHAKE_US (1 * USEC_PER_SEC)
#define CONN_SLOW_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10)
#define CONN_STARVED_GRACE_US (1 * USEC_PER_SEC)
/* Forwarding (--backend): each direction buffers at most this much; a side whose buffer is full is not
 * read until the other side took some (two records of 16 KiB, so that a TLS record is never split by
 * a full buffer). */
#define PROXY_BUF_SIZE (32 * 1024)
#define PROXY_TLS_WRITE_MAX (16 * 1024)
#define PROXY_READ_AHEAD (32 * 1024)

typedef enum ConnPhase {
        CONN_HANDSHAKE,
        CONN_HTTP,
        CONN_LINGER, /* our side is done: read and discard until EOF, then close (avoids RST over our answer) */
        CONN_BACKEND_CONNECT, /* handshake done, connecting to the backend (--backend) */
        CONN_PROXY,           /* forwarding bytes between the client and the backend */
        CONN_PROXY_HTTP,      /* forwarding HTTP/1.1 requests one at a time (--backend-protocol http) */
} ConnPhase;

struct Conn {
        ConnHost *host;
        ConnLink link; /* the host's */
        bool adopted;  /* conn_new() succeeded: the host hears when it closes */
        int fd;
        sd_event_source *io, *timer;
        uint32_t io_events; /* EPOLLIN or EPOLLOUT; registered edge-triggered (conn_want()) */
        /* The last recv() / send() on the socket found it empty / full (EAGAIN): the socket's next
         * change of readiness wakes us, as edge-triggered watching requires (conn_want()). */
        bool rx_blocked, tx_blocked;
        bool rx_eof; /* a recv() returned 0: the client closed its side, we read everything it sent */
        ConnPhase phase;
        uint64_t opened_mono_us; /* CLOCK_MONOTONIC, for conn_check_age() */
        bool aged;               /* conn_check_age() saw it older than CONN_SLOW_HANDSHAKE_US */
        bool starved;            /* its deadline came while its input waited: it got CONN_STARVED_GRACE_US */

        Attempt *attempt; /* NULL once recorded */
        TlsContext *tls;
        mbedtls_ssl_context ssl;
        bool ssl_ready;

        ClientHelloCapture capture; /* inbound: first ClientHello + record scanner */
        RecordScanner out_scanner;  /* outbound: plaintext alerts we send */
        bool hello_seen, saw_hrr, saw_server_cert, saw_server_finished;
        /* Output offset at which the message that ends our flight as far as a rejecting client is concerned
         * (our Certificate, or the ServerHello that accepts a TLS 1.2 resumption) has been handed to the
         * kernel; 0 while unknown. What we sent decides state_reached, not where Mbed TLS stands. */
        uint64_t flight_mark;
        bool send_failed;
        bool corked;      /* handshake records sent with MSG_MORE and not pushed yet */
        bool local_fault; /* a socket error that is ours (out of memory or buffers), not the peer's */
        uint32_t message_too_large; /* a handshake message after the ClientHello announced this many bytes */

        /* HTTP */
        char *in;
        size_t in_len;
        size_t in_scanned; /* bytes of in known to hold no complete header block (http_header_end_after()) */
        char *out;
        size_t out_len, out_off;
        bool close_after_write;
        unsigned requests;
        size_t lingered;
        uint64_t linger_mono_us; /* when the lingering close began */
        bool drain_cut;          /* the server is shutting down and shortened our time limit */
        /* at the end of the handshake: the client's handshake records and our alerts until then */
        uint64_t handshake_records_done, alerts_sent_done;

        /* forwarding (--backend): the backend's socket, watched edge-triggered for both directions like
         * the client's while forwarding (conn_proxy()) */
        int backend_fd;
        sd_event_source *backend_io;
        bool backend_rx_blocked, backend_tx_blocked;
        /* client -> backend (the PROXY header first) and backend -> client; [off, len) waits to be sent */
        uint8_t *c2b, *b2c;
        size_t c2b_off, c2b_len, b2c_off, b2c_len;
        size_t tls_write_len; /* a mbedtls_ssl_write() of this many bytes waits to be completed; 0: none */
        uint8_t *ra;          /* the client's bytes read ahead, [ra_off, ra_len) not given to Mbed TLS yet */
        size_t ra_off, ra_len;
        bool client_eof;     /* the client closed its side (close_notify or FIN): nothing more to read */
        bool backend_eof;    /* likewise the backend */
        bool backend_shut;   /* we passed the client's end on: shutdown(SHUT_WR) of the backend */
        bool backend_failed; /* the backend reset or failed: once its bytes read are sent, a truncation */
        bool client_shut;    /* we passed the backend's end on: close_notify and FIN to the client */
        /* when a byte last moved to or from the client / the backend (their idle limits) */
        uint64_t client_active_mono_us, backend_active_mono_us;

        /* --backend-protocol http (proxy-http.c): c->in holds the client's plaintext not forwarded yet,
         * c->out an answer of ours (an error, the self page); b2c's [b2c_off, hx_ready) is framed and goes
         * to the client, [hx_ready, b2c_len) is not parsed yet */
        HttpBody req_body, resp_body;
        unsigned hx_req, hx_resp; /* where the request / the response in flight stands (proxy-http.c) */
        size_t hx_ready, hx_scanned;
        uint64_t backend_connect_mono_us; /* connecting to the backend started (0: not connecting) */
        int hx_pending_error;             /* connecting failed: the request waiting gets this status */
        bool hx_waiting;                  /* a request waits for the backend connection */
        bool hx_forwarded;                /* a request was forwarded: the row's id is reserved */
        unsigned hx_prior_failures;       /* TLS-Prior-Failures, counted at the first request */
        bool backend_connected;
        bool req_is_head, req_upgrade, req_keep_alive, resp_keep_alive, resp_started;
        bool hx_closing;  /* no more requests: close once the answer in flight is sent */
        bool hx_truncate; /* the backend's answer broke off: close without close_notify once sent */
        bool hx_tunnel;   /* a 101 answered an Upgrade: bytes both ways once the request is sent */
        /* waiting for the client's next request head since hx_head_mono_us: it has --idle-timeout in all,
         * however slowly its bytes come (as the self page's requests) */
        bool hx_head_wait;
        uint64_t hx_head_mono_us;
        /* the backend connection answered a request before (it may close it as idle just as the next one
         * comes); the head of an idempotent request without a body forwarded on it, until its answer starts:
         * sent again on a new connection if the backend closes this one without a byte of answer */
        bool backend_reused;
        char *hx_replay;
        size_t hx_replay_len;
};

/* conn.c */
int64_t conn_now_us(void);
void conn_update_counters(Conn *c);
void conn_record(Conn *c);
int conn_set_timer(Conn *c, int64_t usec);
int conn_want(Conn *c, uint32_t events);
void conn_uncork(Conn *c);
void conn_close_tls(Conn *c, CloseKind why);
void conn_linger(Conn *c);
void conn_continue(Conn *c);
void conn_http_peer_end(Conn *c, int r);
/* The self page's answer to METHOD TARGET (TARGET the page's own path: "/", "/api/self"): returns the
 * status (200, 404, 405 for other methods than GET and HEAD, 500), with the body (the page, or "404 Not
 * Found\n") in *ret_body (freed by the caller; NULL if out of memory) and its type; *ret_head: a HEAD. */
int conn_page_answer(
        Conn *c,
        const char *method,
        size_t method_len,
        const char *target,
        size_t target_len,
        bool *ret_head,
        char **ret_body,
        size_t *ret_len,
        const char **ret_ctype);

/* proxy.c */
ssize_t conn_recv_ahead(Conn *c, unsigned char *buf, size_t len);
void conn_backend_connect(Conn *c);
void conn_backend_failed(Conn *c, const char *fmt, ...) _printf_(2, 3);
void conn_backend_close(Conn *c);
/* Sends what c2b holds to the backend (backend_tx_blocked says whether its socket is full). Returns 1 when
 * bytes went, 0 when none did (nothing to send, or it would block), -errno when sending failed. */
int conn_backend_send(Conn *c);
/* Reads the backend's bytes into b2c while it has room (backend_rx_blocked says whether none were there).
 * Returns 1 when bytes came, 0 when none did (no room, or none yet), -ESHUTDOWN when the backend ended its
 * side, -errno when reading failed. */
int conn_backend_recv(Conn *c);
void conn_proxy(Conn *c);
void conn_proxy_timeout(Conn *c);
int conn_on_backend_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
void conn_record_forwarded(Conn *c);
void conn_proxy_touch(Conn *c, bool client, bool backend);
void conn_proxy_end(Conn *c, bool clean);
int conn_backend_start(Conn *c);
int conn_backend_established(Conn *c);

/* proxy-http.c */
void conn_http_proxy_start(Conn *c);
void conn_http_proxy(Conn *c);
void conn_http_proxy_timeout(Conn *c);
bool conn_http_proxy_between_requests(Conn *c);
