/* SPDX-License-Identifier: MIT */
#pragma once

/* The server: listening sockets, one worker thread with its own sd-event loop per CPU, connection
 * limits, the current TLS context (swapped on reload), the record sinks (SQLite store, journald, and the
 * in-memory record of recent attempts that the self page reads), a watchdog over the workers' event
 * loops, and live counters for STATUS=. Each worker accepts from every listening socket (whichever worker is
 * idle wins the accept), so a busy worker never delays a new client while another is free. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "journal.h"
#include "store.h"
#include "tls.h"

typedef struct Server Server;

typedef struct ServerSettings {
        unsigned n_threads;
        unsigned max_connections;
        unsigned max_connections_per_client; /* per IPv4 address or IPv6 /64; 0: no limit */
        int64_t handshake_timeout_us;
        int64_t idle_timeout_us;
        unsigned max_requests;
        JournalMode journal_mode;
        bool remember_recent; /* keep the recent attempts in memory for the page (recent.h) */
        /* when draining, accept (and record) the connections queued on the listening sockets before closing
         * them: they are ours (--listen), not systemd's, whose queue waits for the next instance */
        bool accept_queue_on_drain;
        const BackendSettings *backend; /* --backend (outlives the server); NULL: serve the page */
} ServerSettings;

/* Takes ownership of the listening fds and of store; starts the journal sender per settings->journal_mode. */
int server_new(const ServerSettings *settings, int *listen_fds, size_t n_listen_fds, Store *store, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

unsigned server_n_workers(const Server *s) _pure_;

/* Makes a TLS context from settings (with the server's session cache and ticket keys) the one for new
 * connections; connections already open keep theirs. */
int server_load_tls(Server *s, const TlsSettings *settings);

/* Starts the worker threads. */
int server_start(Server *s);
/* Stops accepting (first taking the queued connections, with settings->accept_queue_on_drain, then closing
 * the listening sockets), lets open handshakes finish or time out, closes idle connections, joins the
 * workers. */
void server_drain(Server *s);

/* After server_drain(): sends what the journal sender has queued, has the store write its queue and
 * says how that went. Returns 0, or the store's error (records were lost). */
int server_stop_sinks(Server *s);

/* Journal entries dropped so far because journald did not keep up. */
uint64_t server_journal_dropped(Server *s);

/* Whether a worker's event loop has not turned for more than limit_us (each turns at least 4 times a
 * second while it runs): the first such worker's index (its thread is "tlsw-worker<index>") and for how
 * long. Callable from any thread. */
bool server_find_stalled_worker(Server *s, int64_t limit_us, unsigned *ret_index, int64_t *ret_stalled_us);

/* A STATUS= line with live counters. */
int server_status_format(Server *s, char *buf, size_t size);
