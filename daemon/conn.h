/* SPDX-License-Identifier: MIT */
#pragma once

/* One client connection: the TLS handshake stepped on non-blocking I/O while its ClientHello is captured
 * and fingerprinted, the outcome classified into the attempt record, then HTTP/1.1 with keep-alive.
 * Every resource the client controls is bounded: handshake time, idle time, header bytes, requests. */

#include <sys/socket.h>

#include "server.h"

/* Adopts fd (accepted, non-blocking). On failure the fd is closed and the failure recorded. */
int conn_new(Worker *w, int fd, const struct sockaddr *peer, int64_t started_us);

/* Ends the connection now, recording the attempt if it is not recorded yet (outcome server_error with
 * reason if still in the handshake). */
void conn_abort(Conn *c, const char *reason);

/* Whether the connection is idle between HTTP requests (may be closed at once when draining). */
bool conn_is_idle(const Conn *c);

/* The next connection in its worker's list. */
Conn *conn_next(const Conn *c);

/* Used when draining: close idle keep-alive connections, finish the others' current request and close. */
void conn_drain(Conn *c);
