/* SPDX-License-Identifier: MIT */
#pragma once

/* The server: listening sockets, one worker thread with its own sd-event loop per CPU, connection
 * limits, the current TLS context (swapped on reload), the record sinks (SQLite store, journald), and
 * live counters for STATUS=. Each worker accepts from every listening socket (whichever worker is idle
 * wins the accept), so a busy worker never delays a new client while another is free. */

#include <pthread.h>
#include <stdatomic.h>
#include <systemd/sd-event.h>

#include "attempt.h"
#include "journal.h"
#include "recent.h"
#include "store.h"
#include "tls.h"

typedef struct Conn Conn;
typedef struct Server Server;

typedef struct ServerSettings {
        unsigned n_threads;
        unsigned max_connections;
        int64_t handshake_timeout_us;
        int64_t idle_timeout_us;
        unsigned max_requests;
        JournalMode journal_mode;
        bool remember_recent; /* keep the recent attempts in memory for the page (recent.h) */
} ServerSettings;

typedef struct Worker {
        Server *server;
        unsigned index;
        pthread_t thread;
        bool thread_started;
        sd_event *event;
        sd_event_source **accept_sources;
        int wake_fd; /* eventfd: the main thread asks the worker to drain */
        sd_event_source *wake_source;
        Conn *conns; /* doubly linked list */
        unsigned n_conns;
        bool draining;
} Worker;

/* Per client (address and stable JA4): its last connection that served a request, when it did and when it
 * closed (0 while open). Direct-mapped; a collision overwrites, which at worst makes a rejection after
 * the handshake look like an unused connection. */
#define SERVER_ACTIVITY_SLOTS 4096
typedef struct ServerActivity {
        uint64_t key;
        int64_t request_us, closed_us;
} ServerActivity;

typedef struct ServerCounters {
        atomic_uint_fast64_t accepted, ok, failed, rejected, http_requests;
        atomic_uint open;
} ServerCounters;

struct Server {
        ServerSettings settings;
        int *listen_fds;
        size_t n_listen_fds;
        Worker *workers;
        unsigned n_workers;

        pthread_mutex_t tls_lock;
        TlsContext *tls; /* current context; connections take a reference */
        TlsShared *tls_shared;

        Store *store; /* write-only: the page reads recent */
        JournalSink *journal;
        RecentRecord *recent;
        ServerCounters counters;
        atomic_bool draining;

        pthread_mutex_t activity_lock;
        ServerActivity activity[SERVER_ACTIVITY_SLOTS];
};

/* Takes ownership of the listening fds and of store; starts the journal sender per settings->journal_mode. */
int server_new(const ServerSettings *settings, int *listen_fds, size_t n_listen_fds, Store *store, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

/* Replaces the TLS context for new connections (reference taken). */
void server_set_tls(Server *s, TlsContext *tls);
/* A new reference to the current TLS context. */
TlsContext *server_get_tls(Server *s);

/* Starts the worker threads. */
int server_start(Server *s);
/* Stops accepting, lets open handshakes finish or time out, closes idle connections, joins the
 * workers. */
void server_drain(Server *s);

/* Hands a finished record to the sinks (journald per --journal, then the store). Takes ownership. */
void server_record(Server *s, Attempt *a);

/* Notes that a connection of this client (a's address and stable JA4) serves its first request now, and
 * that it closed. */
void server_note_request(Server *s, const Attempt *a);
void server_note_served_close(Server *s, const Attempt *a);
/* Whether a connection of this client that served requests was open at some time since since_us: then a
 * connection of it that completed the handshake and closed without a request was a spare one (a browser's
 * preconnect), not a rejection. */
bool server_client_served_since(Server *s, const Attempt *a, int64_t since_us);

/* A STATUS= line with live counters. */
int server_status_format(Server *s, char *buf, size_t size);
