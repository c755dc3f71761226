/* SPDX-License-Identifier: MIT */
#pragma once

/* One client connection: the TLS handshake stepped on non-blocking I/O while its ClientHello is captured
 * and fingerprinted, the outcome classified into the attempt record, then HTTP/1.1 with keep-alive.
 * Every resource the client controls is bounded: handshake time, idle time, header bytes, requests.
 *
 * A connection knows nothing of the server: what it needs comes through its ConnHost (the worker that
 * owns it): the event loop, the limits, the page's record of recent attempts, and calls to record the
 * attempt, take the current TLS context, note the client's activity and say that it closed. */

#include <stdbool.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "attempt.h"
#include "backend.h"
#include "recent.h"
#include "tls.h"

typedef struct Conn Conn;

typedef struct ConnSettings {
        int64_t handshake_timeout_us, idle_timeout_us;
        unsigned max_requests;
        const BackendSettings *backend; /* forward to it after the handshake; NULL: serve the page */
} ConnSettings;

typedef struct ConnHostOps {
        /* Hands a finished attempt to the sinks; takes ownership. */
        void (*record)(void *userdata, Attempt *a);
        /* A new reference to the TLS context for a new connection. */
        TlsContext *(*get_tls)(void *userdata);
        /* A connection of this client (a's address and stable JA4) serves its first request now / that
         * connection closed; and whether one that served requests was open at some time since since_us
         * (then a connection of it that completed the handshake and closed without a request was a spare
         * one, not a rejection). */
        void (*note_request)(void *userdata, const Attempt *a);
        void (*note_served_close)(void *userdata, const Attempt *a);
        bool (*client_served_since)(void *userdata, const Attempt *a, int64_t since_us);
        /* The id the attempt's row will have (optional; 0: none, it will not be stored). */
        int64_t (*reserve_id)(void *userdata);
        /* One HTTP request was answered. */
        void (*request_served)(void *userdata);
        /* The connection is past its first ClientHello (optional): it arrived whole, or the handshake ended
         * without one (the attempt is recorded; the connection only lingers). Until then the connection
         * costs its client nothing, and a full server may close it for a new one. */
        void (*past_hello)(void *userdata, Conn *c);
        /* The connection c closes and is freed when this returns: its owner forgets it. */
        void (*closed)(void *userdata, Conn *c);
} ConnHostOps;

typedef struct ConnHost {
        const ConnHostOps *ops;
        void *userdata; /* for ops */
        sd_event *event;
        ConnSettings settings;
        RecentRecord *recent; /* what the page groups; NULL: it shows no history */
        bool draining;        /* the server stops: no keep-alive, shorter limits (conn_drain()) */
} ConnHost;

/* The owner's bookkeeping of the connection (its list of connections, the connections still without a
 * ClientHello in accept order, the client slot it counts in); conn.c never reads or writes them. */
typedef struct ConnLink {
        Conn *prev, *next;
        Conn *hello_prev, *hello_next; /* while awaiting_hello */
        bool awaiting_hello;
        bool client_counted; /* counted in the server's per-client table under client */
        int64_t accepted_us; /* CLOCK_MONOTONIC */
        uint8_t client[16];  /* the client's address; of IPv6, the /64 */
} ConnLink;

/* Adopts fd (accepted, non-blocking). On success *ret is the connection, which calls host->ops->closed
 * when it ends. On failure the fd is closed, the failure recorded (when memory allows) and closed not
 * called. */
int conn_new(ConnHost *host, int fd, const struct sockaddr *peer, int64_t started_us, Conn **ret);

/* Called by the owner for its connections, newest first, a few times a second: a connection still in the
 * handshake after a second has its events served after those of newer connections and of new clients
 * (sd-event's priorities), so that thousands of held handshakes closing at once (or sending their next
 * byte) do not queue ahead of a fresh client; it gets its normal priority back when its handshake
 * completes. Returns false once it meets a connection it has aged before: the older ones were too, and
 * the owner's walk can stop there. */
bool conn_check_age(Conn *c, uint64_t now_mono_us);

/* Ends the connection now, recording the attempt if it is not recorded yet (outcome server_error with
 * reason if still in the handshake; while connecting to the backend, backend_error is reason, unless it is
 * CONN_ABORT_SHUTDOWN: close_kind shutdown then, our stop being no fault of the backend's). */
#define CONN_ABORT_SHUTDOWN "server shutting down"
void conn_abort(Conn *c, const char *reason);

ConnLink *conn_link(Conn *c);

/* Used when draining: closes connections between two requests at once; gives open handshakes at most
 * 10 s and a request being received at most 2 s more; answers it, then closes. */
void conn_drain(Conn *c);
