/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "recent.h"
#include "server.h"

#define ACCEPT_BATCH 32
#define ACCEPT_PAUSE_US (100 * USEC_PER_MSEC)
#define JOURNAL_QUEUE_MAX 4096
#define ACCEPT_LOG_INTERVAL_US (10 * USEC_PER_SEC)
#define HEARTBEAT_INTERVAL_US (250 * USEC_PER_MSEC)
/* Draining: connections taken from a listening socket's queue at most (a flood could refill it forever);
 * twice the largest backlog Linux allows by default. */
#define DRAIN_ACCEPT_MAX 8192

typedef struct Worker {
        Server *server;
        unsigned index;
        pthread_t thread;
        bool thread_started;
        sd_event *event;
        sd_event_source **accept_sources;
        int wake_fd; /* eventfd: the main thread asks the worker to drain */
        sd_event_source *wake_source;
        sd_event_source *heartbeat_source;
        /* CLOCK_MONOTONIC when its event loop last turned (the heartbeat timer ran); INT64_MAX once the
         * loop has ended. Read by the main thread's watchdog (server_find_stalled_worker()). */
        atomic_int_fast64_t heartbeat_us;
        ConnHost host; /* what its connections see of the server; host.draining is the worker's */
        Conn *conns;   /* its connections, linked through conn_link() */
        unsigned n_conns;
        /* Its connections that have not sent a whole ClientHello yet, oldest first (accept order): when the
         * server is full, the first one is closed for a new connection (worker_take_slot()). */
        Conn *awaiting_first, *awaiting_last;
        bool accept_stopped; /* draining: its accept sources are off, the queue taken per the settings */
        bool loop_ended;     /* under the server's drain_lock, like accept_stopped */
} Worker;

/* How many connections each client (an IPv4 address, an IPv6 /64) has open, for
 * --max-connections-per-client; shared by the workers, which all accept from the same sockets. Chained,
 * an entry per client with connections open. */
typedef struct ClientCount {
        struct ClientCount *next;
        uint8_t client[16];
        unsigned n;
} ClientCount;

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

        pthread_mutex_t clients_lock;
        ClientCount **clients;   /* n_client_buckets chains; NULL without --max-connections-per-client */
        size_t n_client_buckets; /* a power of two */
        uint64_t client_seed;

        /* server_drain() waits for every worker to stop accepting (and take its queue) before it closes
         * the listening sockets */
        pthread_mutex_t drain_lock;
        pthread_cond_t drain_cond;

        /* server_maybe_trim(), run by worker 0 only; the trim itself runs in trim_thread */
        unsigned trim_peak;        /* the most connections open at once since the last trim */
        uint64_t trim_quiet_since; /* CLOCK_MONOTONIC since when they have been few; 0: not now */
        pthread_t trim_thread;
        bool trim_thread_started; /* not joined yet */
        atomic_bool trim_running;
};

static void worker_pause_accepting(Worker *w, bool pause);
static void server_record(Server *s, Attempt *a);

static int worker_on_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        if (!w->host.draining)
                worker_pause_accepting(w, false);
        return 0;
}

static void worker_pause_accepting(Worker *w, bool pause) {
        if (w->accept_stopped)
                return;
        for (size_t i = 0; i < w->server->n_listen_fds; i++)
                (void) sd_event_source_set_enabled(w->accept_sources[i], pause ? SD_EVENT_OFF : SD_EVENT_ON);
}

/* ---- connections per client ---- */

/* The client of a connection: an IPv4 address (as ::ffff:a.b.c.d, like an IPv4-mapped peer of a dual-stack
 * socket), or the /64 of an IPv6 address (one subscriber usually has a whole /64). */
static void client_of(const struct sockaddr *peer, uint8_t ret[static 16]) {
        memset(ret, 0, 16);
        if (peer->sa_family == AF_INET) {
                ret[10] = ret[11] = 0xff;
                memcpy(ret + 12, &((const struct sockaddr_in *) peer)->sin_addr, 4);
        } else if (peer->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) peer)->sin6_addr;

                memcpy(ret, a, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
        }
}

static ClientCount **client_bucket(Server *s, const uint8_t client[static 16]) {
        uint64_t h = s->client_seed; /* FNV-1a from a random start: the chains differ from run to run */

        for (size_t i = 0; i < 16; i++)
                h = (h ^ client[i]) * UINT64_C(0x100000001b3);
        return &s->clients[(h ^ (h >> 32)) & (s->n_client_buckets - 1)];
}

/* Counts one more connection of client: 0, -EUSERS if it has --max-connections-per-client open already,
 * or -ENOMEM. */
static int server_client_count(Server *s, const uint8_t client[static 16]) {
        ClientCount **b, *e;
        int r = 0;

        pthread_mutex_lock(&s->clients_lock);
        b = client_bucket(s, client);
        for (e = *b; e && memcmp(e->client, client, 16) != 0; e = e->next)
                ;
        if (!e) {
                e = calloc(1, sizeof *e);
                if (e) {
                        memcpy(e->client, client, 16);
                        e->next = *b;
                        *b = e;
                }
        }
        if (!e)
                r = -ENOMEM;
        else if (e->n >= s->settings.max_connections_per_client)
                r = -EUSERS;
        else
                e->n++;
        pthread_mutex_unlock(&s->clients_lock);
        return r;
}

static void server_client_uncount(Server *s, const uint8_t client[static 16]) {
        ClientCount **p, *e;

        pthread_mutex_lock(&s->clients_lock);
        for (p = client_bucket(s, client); (e = *p) && memcmp(e->client, client, 16) != 0; p = &e->next)
                ;
        if (e && --e->n == 0) {
                *p = e->next;
                free(e);
        }
        pthread_mutex_unlock(&s->clients_lock);
}

static int server_clients_init(Server *s) {
        size_t n = 1024;

        pthread_mutex_init(&s->clients_lock, NULL);
        if (s->settings.max_connections_per_client == 0)
                return 0;
        while (n < s->settings.max_connections && n < (1u << 20))
                n *= 2;
        s->clients = calloc(n, sizeof(ClientCount *));
        if (!s->clients)
                return log_oom();
        s->n_client_buckets = n;
        if (getrandom(&s->client_seed, sizeof s->client_seed, GRND_NONBLOCK) != sizeof s->client_seed)
                s->client_seed = (uint64_t) now_realtime_us();
        s->client_seed ^= UINT64_C(0xcbf29ce484222325);
        return 0;
}

static void server_clients_free(Server *s) {
        for (size_t i = 0; s->clients && i < s->n_client_buckets; i++)
                while (s->clients[i]) {
                        ClientCount *e = s->clients[i];

                        s->clients[i] = e->next;
                        free(e);
                }
        free(s->clients);
        pthread_mutex_destroy(&s->clients_lock);
}

/* Records a connection we refuse before any TLS (a limit reached, out of memory), then closes it. */
static void worker_reject(Worker *w, int fd, const struct sockaddr *peer, int64_t started_us, const char *reason) {
        Attempt *a = attempt_new();
        struct sockaddr_storage local;
        socklen_t local_len = sizeof local;

        if (a) {
                a->started_us = started_us;
                a->ended_us = now_realtime_us();
                a->outcome = OUTCOME_SERVER_ERROR;
                a->state_reached = STEP_CONNECTED;
                a->error_text = strdup(reason);
                (void) sockaddr_to_attempt_addr(peer, a->peer_addr, &a->peer_port);
                if (getsockname(fd, (struct sockaddr *) &local, &local_len) == 0)
                        (void) sockaddr_to_attempt_addr(
                                (struct sockaddr *) &local, a->local_addr, &a->local_port);
                server_record(w->server, a);
        }
        atomic_fetch_add(&w->server->counters.rejected, 1);
        if (!a)
                atomic_fetch_add(&w->server->counters.failed, 1); /* not recorded, but counted */
        safe_close(fd);
}

/* Errors of accept() that only concern the connection that was being accepted (a pending network
 * error, see accept(2)), not the listening socket. */
static bool accept_error_is_transient(int error) {
        switch (error) {
        case EAGAIN:
        case EINTR:
        case ECONNABORTED:
        case ENETDOWN:
        case EPROTO:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH: return true;
        default: return false;
        }
}

/* Out of descriptors or memory: pause accepting briefly instead of spinning on the listener, and say so
 * at most every ACCEPT_LOG_INTERVAL_US over all workers. */
static void worker_accept_failed(Worker *w, int error) {
        static atomic_int_fast64_t last_log_us;
        int64_t now = now_realtime_us(), last = atomic_load(&last_log_us);

        if (now - last >= ACCEPT_LOG_INTERVAL_US && atomic_compare_exchange_strong(&last_log_us, &last, now))
                log_warning_errno(error, "Cannot accept connections: %m; pausing accepting for 100 ms.");
        worker_pause_accepting(w, true);
        (void) sd_event_add_time_relative(
                w->event, NULL, CLOCK_MONOTONIC, ACCEPT_PAUSE_US, 0, worker_on_resume, w);
}

static int64_t now_monotonic_us(void);

static void worker_forget_awaiting(Worker *w, Conn *c) {
        ConnLink *l = conn_link(c);

        if (!l->awaiting_hello)
                return;
        if (l->hello_prev)
                conn_link(l->hello_prev)->hello_next = l->hello_next;
        else
                w->awaiting_first = l->hello_next;
        if (l->hello_next)
                conn_link(l->hello_next)->hello_prev = l->hello_prev;
        else
                w->awaiting_last = l->hello_prev;
        l->awaiting_hello = false;
        l->hello_prev = l->hello_next = NULL;
}

/* Takes one of the --max-connections slots. When all are taken, closes this worker's oldest connection that
 * has not sent a whole ClientHello (an idle or slow connection holds a slot at no cost to its client) and
 * tries again; returns false when the worker has none left.
 *
 * Only the accepting worker's own connections are evicted: a connection belongs to its worker's event loop
 * and only that thread may close it, and asking another worker would leave the new connection waiting on
 * that worker (or the server over its limit). Every worker accepts from the same sockets, so a flood of
 * idle connections spreads over all of them and each has some to give; a worker that has none while the
 * server is full refuses the new connection (recorded). */
static bool worker_take_slot(Worker *w) {
        Server *s = w->server;

        for (;;) {
                char reason[160];
                Conn *c;

                /* counted first, so that concurrent workers cannot overshoot the limit together */
                if (atomic_fetch_add(&s->counters.open, 1) < s->settings.max_connections)
                        return true;
                atomic_fetch_sub(&s->counters.open, 1);
                c = w->awaiting_first;
                if (!c)
                        return false;
                (void) snprintf(
                        reason,
                        sizeof reason,
                        "evicted: the server was full (--max-connections=%u) "
                        "and no whole ClientHello had been read from this connection after %" PRId64 " ms",
                        s->settings.max_connections,
                        (now_monotonic_us() - conn_link(c)->accepted_us) / USEC_PER_MSEC);
                conn_abort(c, reason); /* host_closed() frees its slot */
        }
}

/* Adopts an accepted connection, or refuses (and records) it when its client or the server is at its
 * limit. */
static void worker_adopt(Worker *w, int cfd, const struct sockaddr *peer) {
        Server *s = w->server;
        int64_t started = now_realtime_us();
        uint8_t client[16];
        bool counted = false;
        char reason[128];
        ConnLink *l;
        Conn *c;
        int r;

        atomic_fetch_add(&s->counters.accepted, 1);
        client_of(peer, client);
        if (s->clients) {
                r = server_client_count(s, client);
                if (r < 0) {
                        if (r == -ENOMEM)
                                (void) snprintf(reason, sizeof reason, "out of memory");
                        else
                                (void) snprintf(
                                        reason,
                                        sizeof reason,
                                        "per-client connection limit reached "
                                        "(--max-connections-per-client=%u)",
                                        s->settings.max_connections_per_client);
                        worker_reject(w, cfd, peer, started, reason);
                        return;
                }
                counted = true;
        }
        if (!worker_take_slot(w)) {
                if (counted)
                        server_client_uncount(s, client);
                (void) snprintf(
                        reason,
                        sizeof reason,
                        "connection limit reached (--max-connections=%u)",
                        s->settings.max_connections);
                worker_reject(w, cfd, peer, started, reason);
                return;
        }
        if (conn_new(&w->host, cfd, peer, started, &c) < 0) {
                atomic_fetch_sub(&s->counters.open, 1);
                if (counted)
                        server_client_uncount(s, client);
                return;
        }
        l = conn_link(c);
        *l = (ConnLink){
                .next = w->conns,
                .hello_prev = w->awaiting_last,
                .awaiting_hello = true,
                .client_counted = counted,
                .accepted_us = now_monotonic_us(),
        };
        memcpy(l->client, client, sizeof client);
        if (w->conns)
                conn_link(w->conns)->prev = c;
        w->conns = c;
        w->n_conns++;
        if (w->awaiting_last)
                conn_link(w->awaiting_last)->hello_next = c;
        else
                w->awaiting_first = c;
        w->awaiting_last = c;
}

/* Accepts up to max connections from fd: 1 if it took max, 0 when the queue is empty, or a negative errno
 * when accept() fails for want of descriptors or memory. */
static int worker_accept_batch(Worker *w, int fd, unsigned max) {
        for (unsigned i = 0; i < max; i++) {
                struct sockaddr_storage peer;
                socklen_t peer_len = sizeof peer;
                int cfd;

                cfd = accept4(fd, (struct sockaddr *) &peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN)
                                return 0;
                        if (!accept_error_is_transient(errno))
                                return -errno;
                        continue;
                }
                worker_adopt(w, cfd, (struct sockaddr *) &peer);
        }
        return 1;
}

static int worker_on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        int r;

        if (w->host.draining)
                return 0;
        r = worker_accept_batch(w, fd, ACCEPT_BATCH);
        if (r < 0)
                worker_accept_failed(w, -r);
        return 0;
}

/* Draining: stops accepting. With sockets of our own (--listen), first takes what the kernel has queued,
 * which would be reset when the sockets close: those connections are drained like the others (and
 * recorded). Sockets passed by systemd stay open in systemd with their queue, which the next instance
 * takes. Then tells server_drain() that it may close the sockets. */
static void worker_stop_accepting(Worker *w) {
        Server *s = w->server;

        worker_pause_accepting(w, true);
        for (size_t i = 0; s->settings.accept_queue_on_drain && i < s->n_listen_fds; i++)
                (void) worker_accept_batch(w, s->listen_fds[i], DRAIN_ACCEPT_MAX);
        pthread_mutex_lock(&s->drain_lock);
        w->accept_stopped = true;
        pthread_cond_broadcast(&s->drain_cond);
        pthread_mutex_unlock(&s->drain_lock);
}

static int worker_on_wake(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof v);
        if (!atomic_load(&w->server->draining) || w->host.draining)
                return 0;
        w->host.draining = true;
        worker_stop_accepting(w);
        /* conn_drain() may free the connection: walk with a saved pointer. */
        for (Conn *c = w->conns, *next; c; c = next) {
                next = conn_link(c)->next;
                conn_drain(c);
        }
        if (w->n_conns == 0)
                (void) sd_event_exit(w->event, 0);
        return 0;
}

static int64_t now_monotonic_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

static long rss_kib(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/statm", "re");
        long pages;

        if (!f || fscanf(f, "%*s %ld", &pages) != 1)
                return -1;
        return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* After a peak, glibc keeps what the connections freed (10,000 held handshakes: 400 MB) in its arenas,
 * fragmented, for good. Once the connections open have been at most a quarter of the peak for
 * TRIM_QUIET_US, malloc_trim() returns the free pages of every arena to the system. That takes 0.1-0.3 s
 * for 400 MB here (the kernel unmapping 100,000 pages), so it runs in a thread of its own, never in a
 * worker's loop: a worker waits only if it allocates from an arena while that arena is trimmed. It logs
 * what it returned and how long it took. */
#define TRIM_MIN_PEAK 256
#define TRIM_QUIET_US (5 * USEC_PER_SEC)
static void *server_trim_run(void *userdata) {
        Server *s = userdata;
        int64_t t0, t1;
        long rss0, rss1;

        rss0 = rss_kib();
        t0 = now_monotonic_us();
        (void) malloc_trim(0);
        t1 = now_monotonic_us();
        rss1 = rss_kib();
        log_info(
                "Returned freed memory to the system: RSS %ld -> %ld MiB, in %.1f ms.",
                rss0 / 1024,
                rss1 / 1024,
                (double) (t1 - t0) / 1000);
        atomic_store(&s->trim_running, false);
        return NULL;
}

static void server_trim_join(Server *s) {
        if (s->trim_thread_started)
                (void) pthread_join(s->trim_thread, NULL);
        s->trim_thread_started = false;
}

static void server_maybe_trim(Server *s, uint64_t now) {
        unsigned open = atomic_load(&s->counters.open);
        int r;

        if (atomic_load(&s->trim_running))
                return;
        server_trim_join(s); /* the last one has ended */
        s->trim_peak = MAX(s->trim_peak, open);
        if (s->trim_peak < TRIM_MIN_PEAK || open > s->trim_peak / 4) {
                s->trim_quiet_since = 0;
                return;
        }
        if (s->trim_quiet_since == 0)
                s->trim_quiet_since = now;
        if (now < s->trim_quiet_since + TRIM_QUIET_US)
                return;
        log_debug("Connections open: %u, after a peak of %u: trimming freed memory.", open, s->trim_peak);
        atomic_store(&s->trim_running, true);
        r = pthread_create(&s->trim_thread, NULL, server_trim_run, s);
        if (r != 0) {
                atomic_store(&s->trim_running, false);
                log_debug_errno(r, "Cannot start a thread to trim memory: %m");
        } else {
                s->trim_thread_started = true;
                (void) pthread_setname_np(s->trim_thread, "tlsw-trim");
        }
        s->trim_peak = open;
        s->trim_quiet_since = 0;
}

/* Runs whenever the worker's loop turns at least every HEARTBEAT_INTERVAL_US: a worker stuck in a
 * callback (or stopped) stops stamping. Also ages its connections (conn_check_age()) and, on worker 0,
 * trims the memory freed after a peak. */
static int worker_on_heartbeat(sd_event_source *source, uint64_t usec, void *userdata) {
        Worker *w = userdata;
        uint64_t now;

        atomic_store(&w->heartbeat_us, now_monotonic_us());
        if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) >= 0) {
                for (Conn *c = w->conns; c && conn_check_age(c, now); c = conn_link(c)->next)
                        ;
                if (w->index == 0)
                        server_maybe_trim(w->server, now);
        }
        (void) sd_event_source_set_time_relative(source, HEARTBEAT_INTERVAL_US);
        return 0;
}

static void *worker_run(void *userdata) {
        Worker *w = userdata;
        int r;

        r = sd_event_loop(w->event);
        pthread_mutex_lock(&w->server->drain_lock);
        w->loop_ended = true;
        pthread_cond_broadcast(&w->server->drain_cond);
        pthread_mutex_unlock(&w->server->drain_lock);
        if (r < 0) {
                /* its stamp goes stale: the watchdog reports the worker and stops pinging */
                log_error_errno(r, "Worker %u: event loop failed: %m", w->index);
                return NULL;
        }
        atomic_store(&w->heartbeat_us, INT64_MAX); /* drained: no longer watched */
        return NULL;
}

/* ---- what a worker's connections see of the server (ConnHost) ---- */

static TlsContext *server_get_tls(Server *s);
static void server_note_request(Server *s, const Attempt *a);
static void server_note_served_close(Server *s, const Attempt *a);
static bool server_client_served_since(Server *s, const Attempt *a, int64_t since_us);

static void host_record(void *userdata, Attempt *a) {
        server_record(((Worker *) userdata)->server, a);
}

static TlsContext *host_get_tls(void *userdata) {
        return server_get_tls(((Worker *) userdata)->server);
}

static void host_note_request(void *userdata, const Attempt *a) {
        server_note_request(((Worker *) userdata)->server, a);
}

static void host_note_served_close(void *userdata, const Attempt *a) {
        server_note_served_close(((Worker *) userdata)->server, a);
}

static bool host_client_served_since(void *userdata, const Attempt *a, int64_t since_us) {
        return server_client_served_since(((Worker *) userdata)->server, a, since_us);
}

static void host_request_served(void *userdata) {
        atomic_fetch_add(&((Worker *) userdata)->server->counters.http_requests, 1);
}

static void host_past_hello(void *userdata, Conn *c) {
        worker_forget_awaiting(userdata, c);
}

static void host_closed(void *userdata, Conn *c) {
        Worker *w = userdata;
        ConnLink *l = conn_link(c);

        worker_forget_awaiting(w, c);
        if (l->client_counted)
                server_client_uncount(w->server, l->client);

        if (l->prev)
                conn_link(l->prev)->next = l->next;
        else
                w->conns = l->next;
        if (l->next)
                conn_link(l->next)->prev = l->prev;
        w->n_conns--;
        atomic_fetch_sub(&w->server->counters.open, 1);
        /* not while the drain still takes the accept queue (an eviction there may close the last one before
         * the next is adopted): worker_on_wake() checks once it is done */
        if (w->host.draining && w->accept_stopped && w->n_conns == 0)
                (void) sd_event_exit(w->event, 0);
}

static int64_t host_reserve_id(void *userdata) {
        Worker *w = userdata;

        return w->server->store ? store_reserve_id(w->server->store) : 0;
}

static const ConnHostOps host_ops = {
        .reserve_id = host_reserve_id,
        .record = host_record,
        .get_tls = host_get_tls,
        .note_request = host_note_request,
        .note_served_close = host_note_served_close,
        .client_served_since = host_client_served_since,
        .request_served = host_request_served,
        .past_hello = host_past_hello,
        .closed = host_closed,
};

static int worker_init(Server *s, Worker *w, unsigned index) {
        int r;

        w->server = s;
        w->index = index;
        w->wake_fd = -EBADF;
        r = sd_event_new(&w->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create an event loop: %m");
        w->host = (ConnHost){
                .ops = &host_ops,
                .userdata = w,
                .event = w->event,
                .settings =
                        {
                                .handshake_timeout_us = s->settings.handshake_timeout_us,
                                .idle_timeout_us = s->settings.idle_timeout_us,
                                .max_requests = s->settings.max_requests,
                                .backend = s->settings.backend,
                        },
                .recent = s->recent,
        };
        w->accept_sources = calloc(s->n_listen_fds, sizeof(sd_event_source *));
        if (!w->accept_sources)
                return log_oom();
        for (size_t i = 0; i < s->n_listen_fds; i++) {
                r = sd_event_add_io(
                        w->event, &w->accept_sources[i], s->listen_fds[i], EPOLLIN, worker_on_accept, w);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch listening socket: %m");
        }
        w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->wake_fd < 0)
                return log_error_errno(errno, "Failed to create eventfd: %m");
        r = sd_event_add_io(w->event, &w->wake_source, w->wake_fd, EPOLLIN, worker_on_wake, w);
        if (r < 0)
                return log_error_errno(r, "Failed to watch eventfd: %m");
        r = sd_event_add_time_relative(
                w->event,
                &w->heartbeat_source,
                CLOCK_MONOTONIC,
                HEARTBEAT_INTERVAL_US,
                HEARTBEAT_INTERVAL_US / 10,
                worker_on_heartbeat,
                w);
        if (r < 0)
                return log_error_errno(r, "Failed to add the heartbeat timer: %m");
        (void) sd_event_source_set_enabled(w->heartbeat_source, SD_EVENT_ON);
        atomic_init(&w->heartbeat_us, INT64_MAX); /* not running yet */
        return 0;
}

static void worker_done(Worker *w) {
        while (w->conns)
                conn_abort(w->conns, CONN_ABORT_SHUTDOWN);
        for (size_t i = 0; w->accept_sources && i < w->server->n_listen_fds; i++)
                sd_event_source_disable_unref(w->accept_sources[i]);
        free(w->accept_sources);
        sd_event_source_disable_unref(w->wake_source);
        sd_event_source_disable_unref(w->heartbeat_source);
        safe_close(w->wake_fd);
        sd_event_unref(w->event);
}

int server_new(const ServerSettings *settings, int *listen_fds, size_t n_listen_fds, Store *store, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        s->settings = *settings;
        s->listen_fds = listen_fds;
        s->n_listen_fds = n_listen_fds;
        s->store = store;
        pthread_mutex_init(&s->tls_lock, NULL);
        pthread_mutex_init(&s->activity_lock, NULL);
        pthread_mutex_init(&s->drain_lock, NULL);
        pthread_cond_init(&s->drain_cond, NULL);
        r = server_clients_init(s);
        if (r < 0)
                return r;
        r = tls_shared_new(&s->tls_shared);
        if (r < 0)
                return r;
        if (settings->remember_recent && recent_record_new(&s->recent) < 0)
                return log_oom();
        r = journal_sink_new(settings->journal_mode, JOURNAL_QUEUE_MAX, &s->journal);
        if (r < 0)
                return log_error_errno(r, "Failed to start the journal sender: %m");
        s->n_workers = MAX(settings->n_threads, 1u);
        s->workers = calloc(s->n_workers, sizeof(Worker));
        if (!s->workers)
                return log_oom();
        for (unsigned i = 0; i < s->n_workers; i++) {
                r = worker_init(s, &s->workers[i], i);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        if (s->workers)
                server_drain(s); /* joins workers still running (error paths); a no-op after a drain */
        for (unsigned i = 0; s->workers && i < s->n_workers; i++)
                if (s->workers[i].server)
                        worker_done(&s->workers[i]);
        free(s->workers);
        server_trim_join(s); /* the workers are joined: nobody starts another */
        for (size_t i = 0; i < s->n_listen_fds; i++)
                safe_close(s->listen_fds[i]);
        free(s->listen_fds);
        tls_context_unref(s->tls);
        tls_shared_free(s->tls_shared);
        store_free(s->store);
        journal_sink_free(s->journal);
        recent_record_free(s->recent);
        pthread_mutex_destroy(&s->tls_lock);
        pthread_mutex_destroy(&s->activity_lock);
        server_clients_free(s);
        pthread_mutex_destroy(&s->drain_lock);
        pthread_cond_destroy(&s->drain_cond);
        free(s);
        return NULL;
}

static void server_set_tls(Server *s, TlsContext *tls) {
        TlsContext *old;

        pthread_mutex_lock(&s->tls_lock);
        old = s->tls;
        s->tls = tls_context_ref(tls);
        pthread_mutex_unlock(&s->tls_lock);
        tls_context_unref(old);
}

static TlsContext *server_get_tls(Server *s) {
        TlsContext *t;

        pthread_mutex_lock(&s->tls_lock);
        t = tls_context_ref(s->tls);
        pthread_mutex_unlock(&s->tls_lock);
        return t;
}

bool server_find_stalled_worker(Server *s, int64_t limit_us, unsigned *ret_index, int64_t *ret_stalled_us) {
        int64_t now = now_monotonic_us();

        for (unsigned i = 0; i < s->n_workers; i++) {
                int64_t beat = atomic_load(&s->workers[i].heartbeat_us);

                if (beat != INT64_MAX && now - beat > limit_us) {
                        *ret_index = i;
                        *ret_stalled_us = now - beat;
                        return true;
                }
        }
        return false;
}

unsigned server_n_workers(const Server *s) {
        return s->n_workers;
}

int server_load_tls(Server *s, const TlsSettings *settings) {
        _cleanup_(tls_context_unrefp) TlsContext *tls = NULL;
        int r;

        r = tls_context_new(settings, s->tls_shared, &tls);
        if (r < 0)
                return r;
        server_set_tls(s, tls);
        return 0;
}

int server_start(Server *s) {
        sigset_t all, old;
        char name[16];
        int r;

        /* Signals are the main thread's: workers start with all of them blocked. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (unsigned i = 0; i < s->n_workers; i++) {
                atomic_store(&s->workers[i].heartbeat_us, now_monotonic_us());
                r = pthread_create(&s->workers[i].thread, NULL, worker_run, &s->workers[i]);
                if (r != 0) {
                        pthread_sigmask(SIG_SETMASK, &old, NULL);
                        return log_error_errno(r, "Failed to start worker thread: %m");
                }
                s->workers[i].thread_started = true;
                /* top -H, ps -L: at most 15 characters */
                (void) snprintf(name, sizeof name, "tlsw-worker%u", MIN(i, 999u));
                (void) pthread_setname_np(s->workers[i].thread, name);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 0;
}

void server_drain(Server *s) {
        atomic_store(&s->draining, true);
        for (unsigned i = 0; i < s->n_workers; i++) {
                uint64_t one = 1;

                if (s->workers[i].thread_started)
                        (void) !write(s->workers[i].wake_fd, &one, sizeof one);
        }
        /* Our own listening sockets close once every worker has taken their queue: a connection that
         * arrives later is refused at once instead of waiting in the queue for the drain to end. (A worker
         * whose loop failed never answers: then they close in server_free().) */
        if (s->settings.accept_queue_on_drain) {
                bool all = true;

                pthread_mutex_lock(&s->drain_lock);
                for (unsigned i = 0; i < s->n_workers; i++)
                        while (s->workers[i].thread_started && !s->workers[i].accept_stopped &&
                               !s->workers[i].loop_ended)
                                pthread_cond_wait(&s->drain_cond, &s->drain_lock);
                for (unsigned i = 0; i < s->n_workers; i++)
                        all = all && (s->workers[i].accept_stopped || !s->workers[i].thread_started);
                pthread_mutex_unlock(&s->drain_lock);
                for (size_t i = 0; all && i < s->n_listen_fds; i++)
                        s->listen_fds[i] = safe_close(s->listen_fds[i]);
        }
        for (unsigned i = 0; i < s->n_workers; i++)
                if (s->workers[i].thread_started) {
                        pthread_join(s->workers[i].thread, NULL);
                        s->workers[i].thread_started = false;
                }
        /* Connections left over by a worker whose loop failed are ended and recorded now, while the sinks
         * still take records (server_stop_sinks() comes next). */
        for (unsigned i = 0; i < s->n_workers; i++)
                while (s->workers[i].server && s->workers[i].conns)
                        conn_abort(s->workers[i].conns, CONN_ABORT_SHUTDOWN);
}

/* Hands a finished record to the sinks (the page's memory, journald per --journal, then the store). Takes
 * ownership. */
static void server_record(Server *s, Attempt *a) {
        _cleanup_(journal_fields_freep) JournalFields *entry = NULL;
        int64_t id = a->id;

        if (a->outcome == OUTCOME_OK)
                atomic_fetch_add(&s->counters.ok, 1);
        else
                atomic_fetch_add(&s->counters.failed, 1);
        if (s->recent)
                (void) recent_record_add(s->recent, a); /* a copy: on failure, only the page misses it */
        /* The journal entry is built before the store takes a, and names the row the store gives it
         * (TLSWATCH_ID), so that the journal alone rebuilds what the database holds. */
        (void) journal_sink_prepare(s->journal, a, &entry);
        if (s->store)
                (void) store_enqueue_id(s->store, a, &id);
        else
                attempt_free(a);
        if (entry) {
                journal_fields_set_id(entry, id);
                (void) journal_sink_push(s->journal, TAKE_PTR(entry));
        }
}

int server_stop_sinks(Server *s) {
        StoreStats st;
        int r;

        s->journal = journal_sink_free(s->journal); /* sends what is queued */
        if (!s->store)
                return 0;
        r = store_stop(s->store);
        store_get_stats(s->store, &st);
        if (r < 0)
                return log_error_errno(r, "Stopped with %" PRIu64 " records not written: %m", st.dropped);
        log_info("Stopped; %" PRIu64 " records written.", st.written);
        return 0;
}

uint64_t server_journal_dropped(Server *s) {
        JournalSinkStats js;

        journal_sink_get_stats(s->journal, &js);
        return js.dropped;
}

int server_status_format(Server *s, char *buf, size_t size) {
        char store_line[512] = "no database", journal_line[160] = "";
        JournalSinkStats js;
        StoreStats st;

        if (s->store) {
                store_get_stats(s->store, &st);
                (void) store_stats_format(&st, store_line, sizeof store_line);
        }
        journal_sink_get_stats(s->journal, &js);
        if (js.dropped + js.failed + js.no_memory > 0)
                (void) snprintf(
                        journal_line,
                        sizeof journal_line,
                        "; journal: %" PRIu64 " entries dropped (queue full), %" PRIu64 " dropped (out of "
                        "memory), %" PRIu64 " not sent",
                        js.dropped,
                        js.no_memory,
                        js.failed);
        return snprintf(
                buf,
                size,
                "%u open; %" PRIuFAST64 " attempts: %" PRIuFAST64 " ok, %" PRIuFAST64 " failed (%" PRIuFAST64
                " over the connection limit); %s%s",
                atomic_load(&s->counters.open),
                atomic_load(&s->counters.accepted),
                atomic_load(&s->counters.ok),
                atomic_load(&s->counters.failed),
                atomic_load(&s->counters.rejected),
                store_line,
                journal_line);
}

static uint64_t activity_key(const Attempt *a) {
        uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a over "addr\0ja4_stable" */

        for (const char *p = a->peer_addr; *p; p++)
                h = (h ^ (uint8_t) *p) * UINT64_C(0x100000001b3);
        h = (h ^ 0) * UINT64_C(0x100000001b3);
        for (const char *p = strempty(a->ja4_stable); *p; p++)
                h = (h ^ (uint8_t) *p) * UINT64_C(0x100000001b3);
        return h | 1; /* 0 marks an empty slot */
}

static void server_note_request(Server *s, const Attempt *a) {
        uint64_t key = activity_key(a);
        ServerActivity *slot = &s->activity[key % SERVER_ACTIVITY_SLOTS];

        pthread_mutex_lock(&s->activity_lock);
        *slot = (ServerActivity){.key = key, .request_us = now_realtime_us()};
        pthread_mutex_unlock(&s->activity_lock);
}

static void server_note_served_close(Server *s, const Attempt *a) {
        uint64_t key = activity_key(a);
        ServerActivity *slot = &s->activity[key % SERVER_ACTIVITY_SLOTS];

        pthread_mutex_lock(&s->activity_lock);
        if (slot->key == key && slot->request_us <= a->closed_us)
                slot->closed_us = a->closed_us;
        pthread_mutex_unlock(&s->activity_lock);
}

static bool server_client_served_since(Server *s, const Attempt *a, int64_t since_us) {
        uint64_t key = activity_key(a);
        const ServerActivity *slot = &s->activity[key % SERVER_ACTIVITY_SLOTS];
        bool r;

        pthread_mutex_lock(&s->activity_lock);
        r = slot->key == key && (slot->closed_us == 0 || slot->closed_us >= since_us);
        pthread_mutex_unlock(&s->activity_lock);
        return r;
}
