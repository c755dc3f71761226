/* SPDX-License-Identifier: MIT */
#pragma once

/* One client connection: the TLS handshake stepped on non-blocking I/O while its ClientHello is captured
 * and fingerprinted, the outcome classified into the attempt record, then HTTP/1.1 with keep-alive.
 * Every resource the client controls is bounded: handshake time, idle time, header bytes, requests. */

#include <sys/socket.h>

#include "server.h"

/* Adopts fd (accepted, non-blocking), for which the caller counted one open connection in
 * server->counters.open. On failure the fd is closed, the count given back, and the failure recorded
 * (when memory allows). */
int conn_new(Worker *w, int fd, const struct sockaddr *peer, int64_t started_us);

/* Ends the connection now, recording the attempt if it is not recorded yet (outcome server_error with
 * reason if still in the handshake). */
void conn_abort(Conn *c, const char *reason);

/* The next connection in its worker's list. */
Conn *conn_next(const Conn *c);

/* Used when draining: closes connections between two requests at once; gives open handshakes at most
 * 10 s and a request being received at most 2 s more; answers it, then closes. */
void conn_drain(Conn *c);
