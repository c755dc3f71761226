/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "journal.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "tls.h"

#define STATUS_INTERVAL_US (2 * USEC_PER_SEC)
/* Without a systemd watchdog, a worker whose loop has not turned for this long is only reported. */
#define WORKER_STALL_REPORT_US (10 * USEC_PER_SEC)

static char **arg_listen = NULL;
static size_t arg_n_listen = 0;
static const char *arg_state_directory = NULL;
static const char *arg_database = NULL;
static bool arg_record = true;
static const char *arg_cert = NULL, *arg_key = NULL;
static mbedtls_ssl_protocol_version arg_tls_min = MBEDTLS_SSL_VERSION_TLS1_2,
                                    arg_tls_max = MBEDTLS_SSL_VERSION_TLS1_3;
static int64_t arg_handshake_timeout_us = 10 * USEC_PER_SEC;
static int64_t arg_idle_timeout_us = 30 * USEC_PER_SEC;
static unsigned arg_max_connections = 10000;
static unsigned arg_max_connections_per_client = 256;
static unsigned arg_max_requests = 100;
static unsigned arg_threads = 0;
static unsigned arg_retention_days = 30;
static JournalMode arg_journal = JOURNAL_FAILURES;
static const char *arg_backend = NULL, *arg_backend_alpn = NULL;
static BackendSettings arg_backend_settings = {
        .protocol = BACKEND_PROXY_V2,
        .connect_timeout_us = 5 * USEC_PER_SEC,
        .idle_timeout_us = 300 * USEC_PER_SEC,
        .client_idle_timeout_us = 300 * USEC_PER_SEC,
};
/* --backend-alpn: at most "h2" and "http/1.1", then NULL (mbedtls_ssl_conf_alpn_protocols() keeps it) */
static const char *arg_alpn[3] = {};

typedef struct Manager {
        sd_event *event;
        Server *server;
        TlsSettings tls_settings;
        char *state_dir, *cert_path, *key_path;
        bool self_signed;
        sd_event_source *status_timer;
        sd_event_source *watchdog_timer;
        uint64_t watchdog_usec; /* WATCHDOG_USEC, 0 without a watchdog */
        bool stalled;           /* a worker is stalled: the watchdog is not pinged */
        uint64_t journal_dropped_logged;
} Manager;

static int parse_uint(const char *s, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* ---- options: one table for getopt, the checks, the error messages and --help ---- */

typedef enum OptionKind {
        OPTION_HELP,
        OPTION_VERSION,
        OPTION_STRING,  /* const char * */
        OPTION_LIST,    /* appended to arg_listen */
        OPTION_OFF,     /* bool set to false */
        OPTION_UINT,    /* unsigned in [min, max] */
        OPTION_SECONDS, /* int64_t microseconds, 1-86400 s given */
        OPTION_TLS_VERSION,
        OPTION_JOURNAL,
        OPTION_LOG_LEVEL,
        OPTION_BACKEND_PROTOCOL,
} OptionKind;

typedef struct Option {
        const char *name;
        char short_name;
        OptionKind kind;
        void *target;
        unsigned min, max; /* OPTION_UINT */
        const char *what;  /* what a valid value is, for "--NAME takes WHAT, not "VALUE"." */
        const char *usage; /* the left column of --help ("--listen=ADDR:PORT"); NULL: not listed alone */
        const char *help;  /* the right column; a new line continues it in the right column */
} Option;

_Static_assert(STORE_RETENTION_DAYS_MAX == 36500u, "--retention-days' message names the store's limit");

static const Option options[] = {
        {.name = "listen",
         .short_name = 'l',
         .kind = OPTION_LIST,
         .usage = "--listen=ADDR:PORT",
         .help = "Listen here instead of on sockets passed by systemd\n"
                 "(repeatable; [::1]:8443 for IPv6)"},
        {.name = "state-directory",
         .kind = OPTION_STRING,
         .target = &arg_state_directory,
         .usage = "--state-directory=DIR",
         .help = "Home of the database and the generated certificate\n"
                 "(default: $STATE_DIRECTORY, else " STATE_DIRECTORY_DEFAULT ")"},
        {.name = "database",
         .kind = OPTION_STRING,
         .target = &arg_database,
         .usage = "--database=PATH",
         .help = "SQLite database (default: STATE/tlswatch.db)"},
        {.name = "no-record",
         .kind = OPTION_OFF,
         .target = &arg_record,
         .usage = "--no-record",
         .help = "Record nothing (no database, no journal entries,\n"
                 "no page history): for benchmarks"},
        {.name = "cert",
         .kind = OPTION_STRING,
         .target = &arg_cert,
         .usage = "--cert=FILE --key=FILE",
         .help = "PEM certificate chain and key (default: a generated\n"
                 "self-signed ECDSA P-256 certificate)"},
        {.name = "key", .kind = OPTION_STRING, .target = &arg_key},
        {.name = "tls-min",
         .kind = OPTION_TLS_VERSION,
         .target = &arg_tls_min,
         .what = "1.2 or 1.3",
         .usage = "--tls-min=1.2|1.3",
         .help = "Lowest TLS version (default 1.2)"},
        {.name = "tls-max",
         .kind = OPTION_TLS_VERSION,
         .target = &arg_tls_max,
         .what = "1.2 or 1.3",
         .usage = "--tls-max=1.2|1.3",
         .help = "Highest TLS version (default 1.3)"},
        {.name = "handshake-timeout",
         .kind = OPTION_SECONDS,
         .target = &arg_handshake_timeout_us,
         .what = "seconds (1-86400)",
         .usage = "--handshake-timeout=SEC",
         .help = "Handshake time limit (default 10)"},
        {.name = "idle-timeout",
         .kind = OPTION_SECONDS,
         .target = &arg_idle_timeout_us,
         .what = "seconds (1-86400)",
         .usage = "--idle-timeout=SEC",
         .help = "Keep-alive idle limit (default 30)"},
        {.name = "max-connections",
         .kind = OPTION_UINT,
         .target = &arg_max_connections,
         .min = 1,
         .max = 10000000,
         .what = "a positive number",
         .usage = "--max-connections=N",
         .help = "When N are open, the oldest without a ClientHello\n"
                 "is evicted, else the new one refused; both recorded\n"
                 "(default 10000)"},
        {.name = "max-connections-per-client",
         .kind = OPTION_UINT,
         .target = &arg_max_connections_per_client,
         .min = 0,
         .max = 10000000,
         .what = "a number (0: no limit)",
         .usage = "--max-connections-per-client=N",
         .help = "\n" /* the usage is too wide: the help starts on the next line */
                 "Connections of one address (IPv6: one /64) beyond N\n"
                 "are closed and recorded; 0: no limit (default 256)"},
        {.name = "max-requests",
         .kind = OPTION_UINT,
         .target = &arg_max_requests,
         .min = 1,
         .max = 1000000,
         .what = "a positive number",
         .usage = "--max-requests=N",
         .help = "HTTP requests per connection (default 100)"},
        {.name = "threads",
         .kind = OPTION_UINT,
         .target = &arg_threads,
         .min = 1,
         .max = 1024,
         .what = "1-1024",
         .usage = "--threads=N",
         .help = "Worker threads (default: one per CPU)"},
        {.name = "journal",
         .kind = OPTION_JOURNAL,
         .target = &arg_journal,
         .what = "all, failures or none",
         .usage = "--journal=all|failures|none",
         .help = "\n"
                 "Attempts also sent to journald (default failures)"},
        {.name = "retention-days",
         .kind = OPTION_UINT,
         .target = &arg_retention_days,
         .min = 0,
         .max = STORE_RETENTION_DAYS_MAX,
         .what = "a number of days from 0 to 36500",
         .usage = "--retention-days=N",
         .help = "Prune rows older than N days; 0 keeps all (default 30)"},
        {.name = "backend",
         .kind = OPTION_STRING,
         .target = &arg_backend,
         .usage = "--backend=ADDR",
         .help = "Forward each connection after its handshake to\n"
                 "HOST:PORT, [V6]:PORT or unix:/PATH (default: none,\n"
                 "serve the self page)"},
        {.name = "backend-protocol",
         .kind = OPTION_BACKEND_PROTOCOL,
         .target = &arg_backend_settings.protocol,
         .what = "proxy-v2 or http",
         .usage = "--backend-protocol=proxy-v2|http",
         .help = "\n"
                 "proxy-v2: a PROXY protocol v2 header, then the bytes\n"
                 "(default); http: HTTP/1.1 requests with the client's\n"
                 "X-Forwarded-For and TLS-* headers"},
        {.name = "backend-alpn",
         .kind = OPTION_STRING,
         .target = &arg_backend_alpn,
         .usage = "--backend-alpn=LIST",
         .help = "ALPN offered to clients: h2,http/1.1 or http/1.1\n"
                 "(default http/1.1)"},
        {.name = "backend-connect-timeout",
         .kind = OPTION_SECONDS,
         .target = &arg_backend_settings.connect_timeout_us,
         .what = "seconds (1-86400)",
         .usage = "--backend-connect-timeout=SEC",
         .help = "\n"
                 "Time limit to connect to the backend (default 5)"},
        {.name = "backend-idle-timeout",
         .kind = OPTION_SECONDS,
         .target = &arg_backend_settings.idle_timeout_us,
         .what = "seconds (1-86400)",
         .usage = "--backend-idle-timeout=SEC",
         .help = "\n"
                 "A forwarded connection whose backend sent and took\n"
                 "nothing for this long is closed (default 300)"},
        {.name = "backend-client-idle-timeout",
         .kind = OPTION_SECONDS,
         .target = &arg_backend_settings.client_idle_timeout_us,
         .what = "seconds (1-86400)",
         .usage = "--backend-client-idle-timeout=SEC",
         .help = "\n"
                 "A forwarded connection whose client sent and took\n"
                 "nothing for this long is closed (default 300)"},
        {.name = "log-level",
         .kind = OPTION_LOG_LEVEL,
         .usage = "--log-level=LEVEL",
         .help = "debug, info, notice, warning, err (default info)"},
        {.name = "help", .short_name = 'h', .kind = OPTION_HELP, .usage = "--help", .help = "Show this help"},
        {.name = "version", .kind = OPTION_VERSION, .usage = "--version", .help = "Show the version"},
};

static void help(void) {
        printf("%s [OPTIONS...]\n\nServe HTTPS with Mbed TLS and record every TLS handshake attempt.\n\n",
               program_invocation_short_name);
        FOREACH_ARRAY(o, options, ELEMENTSOF(options)) {
                const char *h = o->help;
                size_t n;

                if (!o->usage)
                        continue;
                n = strcspn(h, "\n");
                printf("  %c%c %-*s%.*s\n",
                       o->short_name ? '-' : ' ',
                       o->short_name ?: ' ',
                       n > 0 ? 27 : 0, /* the usage padded to the help's column, unless that starts below */
                       o->usage,
                       (int) n,
                       h);
                for (h += n; *h == '\n'; h += n) {
                        h++;
                        n = strcspn(h, "\n");
                        printf("%32s%.*s\n", "", (int) n, h);
                }
        }
        printf("\nSee tlswatchd(8).\n");
}

/* Applies one option. Returns 1 to go on, 0 when done (--help, --version), or a negative errno. */
static int option_apply(const Option *o, const char *value) {
        char **n;
        int r;

        switch (o->kind) {
        case OPTION_HELP: help(); return 0;
        case OPTION_VERSION: printf("tlswatchd %s\n", PROJECT_VERSION); return 0;
        case OPTION_STRING: *(const char **) o->target = value; return 1;
        case OPTION_OFF: *(bool *) o->target = false; return 1;
        case OPTION_LIST:
                n = reallocarray(arg_listen, arg_n_listen + 1, sizeof(char *));
                if (!n)
                        return log_oom();
                arg_listen = n;
                arg_listen[arg_n_listen++] = (char *) value;
                return 1;
        case OPTION_UINT: {
                unsigned v;

                if (parse_uint(value, o->max, &v) < 0 || v < o->min)
                        break;
                *(unsigned *) o->target = v;
                return 1;
        }
        case OPTION_SECONDS: {
                unsigned v;

                if (parse_uint(value, 86400, &v) < 0 || v == 0)
                        break;
                *(int64_t *) o->target = (int64_t) v * USEC_PER_SEC;
                return 1;
        }
        case OPTION_TLS_VERSION:
                if (tls_version_from_string(value, o->target) < 0)
                        break;
                return 1;
        case OPTION_JOURNAL: {
                JournalMode m = journal_mode_from_string(value);

                if (m < 0)
                        break;
                *(JournalMode *) o->target = m;
                return 1;
        }
        case OPTION_BACKEND_PROTOCOL: {
                BackendProtocol b = backend_protocol_from_string(value);

                if (b < 0)
                        break;
                *(BackendProtocol *) o->target = b;
                return 1;
        }
        case OPTION_LOG_LEVEL:
                r = log_level_from_string(value);
                if (r < 0)
                        return log_error_errno(EINVAL, "Unknown log level \"%s\".", value);
                log_set_max_level(r);
                return 1;
        }
        return log_error_errno(EINVAL, "--%s takes %s, not \"%s\".", o->name, o->what, value);
}

/* --backend-alpn: "h2,http/1.1", "http/1.1,h2", "http/1.1" or "h2" (each at most once). */
static int alpn_parse(const char *s) {
        size_t n = 0;

        for (const char *p = s; *p;) {
                size_t len = strcspn(p, ",");
                const char *proto = len == 2 && strncmp(p, "h2", 2) == 0 ? "h2"
                        : len == 8 && strncmp(p, "http/1.1", 8) == 0     ? "http/1.1"
                                                                         : NULL;

                if (!proto || n >= 2 || (n == 1 && arg_alpn[0] == proto))
                        return -EINVAL;
                arg_alpn[n++] = proto;
                p += len;
                if (*p == ',' && *++p == '\0')
                        return -EINVAL;
        }
        return n > 0 ? 0 : -EINVAL;
}

/* --backend and the options that go with it. */
static int backend_check(void) {
        BackendSettings *b = &arg_backend_settings;
        struct addrinfo *ai = NULL;
        const char *colon;
        int r;

        if (!arg_backend) {
                if (arg_backend_alpn)
                        return log_error_errno(EINVAL, "--backend-alpn needs --backend.");
                return 1;
        }
        if (arg_backend_alpn && alpn_parse(arg_backend_alpn) < 0)
                return log_error_errno(
                        EINVAL,
                        "--backend-alpn takes h2,http/1.1 (or one of them), not \"%s\".",
                        arg_backend_alpn);
        /* the http protocol reads HTTP/1.1 requests: a client must not be told it may speak HTTP/2 */
        if (b->protocol == BACKEND_HTTP && arg_alpn[0] && (arg_alpn[1] || !streq(arg_alpn[0], "http/1.1")))
                return log_error_errno(
                        EINVAL, "--backend-protocol http speaks HTTP/1.1: --backend-alpn http/1.1.");
        (void) snprintf(b->name, sizeof b->name, "%s", arg_backend);
        r = backend_address_parse(arg_backend, &b->addr, &b->addr_len);
        if (r >= 0)
                return 1;
        if (r == -EADDRNOTAVAIL) { /* a host name: resolved once, now */
                colon = strrchr(arg_backend, ':');
                _cleanup_free_ char *host = strndup(arg_backend, (size_t) (colon - arg_backend));

                if (!host)
                        return log_oom();
                r = getaddrinfo(
                        host,
                        colon + 1,
                        &(struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV},
                        &ai);
                if (r != 0)
                        return log_error_errno(
                                EINVAL, "Cannot resolve --backend \"%s\": %s", arg_backend, gai_strerror(r));
                if (ai->ai_addrlen <= sizeof b->addr) {
                        memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
                        b->addr_len = ai->ai_addrlen;
                }
                freeaddrinfo(ai);
                if (b->addr_len > 0)
                        return 1;
        }
        return log_error_errno(
                EINVAL,
                "Invalid --backend \"%s\": expected HOST:PORT, [IPV6]:PORT or unix:/PATH, "
                "e.g. 127.0.0.1:8080, [::1]:8080 or unix:/run/app.sock.",
                arg_backend);
}

static int parse_argv(int argc, char *argv[]) {
        struct option long_options[ELEMENTSOF(options) + 1] = {};
        char short_options[2 * ELEMENTSOF(options) + 1] = "", *p = short_options;
        int c, r;

        for (size_t i = 0; i < ELEMENTSOF(options); i++) {
                const Option *o = &options[i];
                bool arg = !(o->kind == OPTION_HELP || o->kind == OPTION_VERSION || o->kind == OPTION_OFF);

                long_options[i] = (struct option){
                        o->name, arg ? required_argument : no_argument, NULL, 0x100 + (int) i};
                if (o->short_name) {
                        *p++ = o->short_name;
                        if (arg)
                                *p++ = ':';
                }
        }
        while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) >= 0) {
                const Option *o = NULL;

                if (c >= 0x100)
                        o = &options[c - 0x100];
                else
                        for (size_t i = 0; i < ELEMENTSOF(options) && !o; i++)
                                if (options[i].short_name == c)
                                        o = &options[i];
                if (!o)
                        return -EINVAL; /* getopt_long() said what is wrong */
                r = option_apply(o, optarg);
                if (r <= 0)
                        return r;
        }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument \"%s\"; see --help.", argv[optind]);
        if (!!arg_cert != !!arg_key)
                return log_error_errno(EINVAL, "--cert and --key go together.");
        if (arg_tls_min > arg_tls_max)
                return log_error_errno(EINVAL, "--tls-min is above --tls-max.");
        return backend_check();
}

/* "127.0.0.1:8443", "[::1]:8443", "0.0.0.0:443", "[::]:443" */
static int listen_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        const char *colon;
        unsigned port;

        if (s[0] == '[') {
                const char *end = strchr(s, ']');

                if (!end || end[1] != ':')
                        return -EINVAL;
                host = strndup(s + 1, (size_t) (end - s - 1));
                colon = end + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(s, (size_t) (colon - s));
        }
        if (!host)
                return -ENOMEM;
        if (parse_uint(colon + 1, 65535, &port) < 0)
                return -EINVAL;

        memset(ret, 0, sizeof *ret);
        struct sockaddr_in *in = (struct sockaddr_in *) ret;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ret;
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                *ret_len = sizeof *in;
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof *in6;
        } else
                return -EINVAL;
        return 0;
}

static int listen_open(const char *spec) {
        struct sockaddr_storage sa;
        socklen_t len;
        _cleanup_close_ int fd = -EBADF;
        int one = 1;

        if (listen_parse(spec, &sa, &len) < 0)
                return log_error_errno(
                        EINVAL,
                        "Invalid --listen \"%s\": expected ADDR:PORT, e.g. 127.0.0.1:8443 or [::1]:8443.",
                        spec);
        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create socket for %s: %m", spec);
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (sa.ss_family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &sa, len) < 0)
                return log_error_errno(errno, "Failed to bind %s: %m", spec);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Failed to listen on %s: %m", spec);
        return TAKE_FD(fd);
}

static int listen_collect(int **ret_fds, size_t *ret_n) {
        _cleanup_free_ int *fds = NULL;
        size_t n = 0;
        int r;

        if (arg_n_listen > 0) {
                fds = calloc(arg_n_listen, sizeof(int));
                if (!fds)
                        return log_oom();
                for (size_t i = 0; i < arg_n_listen; i++) {
                        r = listen_open(arg_listen[i]);
                        if (r < 0) {
                                for (size_t k = 0; k < n; k++)
                                        safe_close(fds[k]);
                                return r;
                        }
                        fds[n++] = r;
                }
        } else {
                r = sd_listen_fds(1);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the sockets passed by systemd: %m");
                if (r == 0)
                        return log_error_errno(
                                EINVAL,
                                "No listening socket: start tlswatchd through tlswatchd.socket "
                                "(systemctl start tlswatchd.socket) or give --listen ADDR:PORT.");
                fds = calloc((size_t) r, sizeof(int));
                if (!fds)
                        return log_oom();
                for (int i = 0; i < r; i++) {
                        int fd = SD_LISTEN_FDS_START + i;

                        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
                                return log_error_errno(
                                        EINVAL,
                                        "Passed file descriptor %d is not a listening stream socket: "
                                        "use ListenStream= and Accept=no in the socket unit.",
                                        fd);
                        (void) fd_nonblock(fd);
                        fds[n++] = fd;
                }
        }
        *ret_fds = TAKE_PTR(fds);
        *ret_n = n;
        return 0;
}

static int manager_load_tls(Manager *m) {
        bool generated;
        int r;

        if (m->self_signed) {
                r = cert_ensure_self_signed(m->state_dir, &generated);
                if (r < 0)
                        return r;
        }
        return server_load_tls(m->server, &m->tls_settings);
}

static void manager_notify_status(Manager *m, const char *prefix) {
        char status[1024];

        (void) server_status_format(m->server, status, sizeof status);
        (void) sd_notifyf(0, "%sSTATUS=%s", strempty(prefix), status);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t dropped = server_journal_dropped(m->server);

        manager_notify_status(m, NULL);
        if (dropped > m->journal_dropped_logged) {
                log_warning(
                        "%llu journal entries dropped because journald did not keep up (%llu in all); "
                        "the database has every attempt.",
                        (unsigned long long) (dropped - m->journal_dropped_logged),
                        (unsigned long long) dropped);
                m->journal_dropped_logged = dropped;
        }
        (void) sd_event_source_set_time_relative(s, STATUS_INTERVAL_US);
        return 0;
}

/* The watchdog covers every event loop: the main one runs this timer, and it pings systemd only while
 * every worker's loop turns too. A worker stalled for half the watchdog interval (at least 1 s) stops
 * the pings, so that systemd restarts the service unless the worker recovers in time. */
static int on_watchdog_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int64_t limit = m->watchdog_usec > 0 ? MAX((int64_t) m->watchdog_usec / 2, USEC_PER_SEC)
                                             : WORKER_STALL_REPORT_US;
        int64_t stalled_us;
        unsigned index;
        bool stalled = server_find_stalled_worker(m->server, limit, &index, &stalled_us);

        if (stalled && !m->stalled) {
                if (m->watchdog_usec > 0)
                        log_error(
                                "Worker %u (thread tlsw-worker%u) has not turned its event loop for %.1f s; "
                                "no longer pinging the watchdog, so that systemd restarts the service.",
                                index,
                                index,
                                (double) stalled_us / USEC_PER_SEC);
                else
                        log_error(
                                "Worker %u (thread tlsw-worker%u) has not turned its event loop for %.1f s.",
                                index,
                                index,
                                (double) stalled_us / USEC_PER_SEC);
        } else if (!stalled && m->stalled)
                log_notice("Every worker turns its event loop again.");
        m->stalled = stalled;
        if (!stalled && m->watchdog_usec > 0)
                (void) sd_notify(0, "WATCHDOG=1");
        (void) sd_event_source_set_time_relative(
                s, m->watchdog_usec > 0 ? m->watchdog_usec / 3 : (uint64_t) USEC_PER_SEC);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        struct timespec ts;
        int r;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        (void) sd_notifyf(
                0,
                "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading the certificate",
                (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000);
        r = manager_load_tls(m);
        if (r < 0)
                log_error_errno(r, "Reload failed; still serving the previous certificate: %m");
        else
                log_info("Reloaded certificate %s.", m->cert_path);
        manager_notify_status(m, "READY=1\n");
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) sd_notify(0, "STOPPING=1\nSTATUS=Draining: finishing open handshakes, writing queued records");
        log_info("Received %s; draining.", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        return sd_event_exit(m->event, 0);
}

static void manager_done(Manager *m) {
        sd_event_source_disable_unref(m->status_timer);
        sd_event_source_disable_unref(m->watchdog_timer);
        server_free(m->server);
        sd_event_unref(m->event);
        free(m->state_dir);
        free(m->cert_path);
        free(m->key_path);
}

static int state_directory(char **ret) {
        const char *e = arg_state_directory;
        char *d;

        if (!e) {
                e = getenv("STATE_DIRECTORY"); /* systemd may pass several, separated by ':' */
                if (e && *e)
                        d = strndup(e, strcspn(e, ":"));
                else
                        d = strdup(STATE_DIRECTORY_DEFAULT);
        } else
                d = strdup(e);
        if (!d)
                return log_oom();
        if (mkdir(d, 0750) < 0 && errno != EEXIST) {
                int r = log_error_errno(errno, "Failed to create state directory %s: %m", d);

                free(d);
                return r;
        }
        *ret = d;
        return 0;
}

static void raise_nofile_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static unsigned cpu_count(void) {
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned) CPU_COUNT(&set);
        return 1;
}

static int manager_setup_tls(Manager *m) {
        m->self_signed = !arg_cert;
        if (m->self_signed) {
                if (asprintf(&m->cert_path, "%s/%s", m->state_dir, CERT_FILE_NAME) < 0 ||
                    asprintf(&m->key_path, "%s/%s", m->state_dir, KEY_FILE_NAME) < 0)
                        return log_oom();
        } else if (!(m->cert_path = strdup(arg_cert)) || !(m->key_path = strdup(arg_key)))
                return log_oom();
        m->tls_settings = (TlsSettings){
                .min_version = arg_tls_min,
                .max_version = arg_tls_max,
                .cert_path = m->cert_path,
                .key_path = m->key_path,
                .alpn = arg_alpn[0] ? arg_alpn : NULL,
        };
        return 0;
}

/* The database per --database (default STATE/tlswatch.db); none with --no-record. */
static int open_store(const char *state_dir, char **ret_path, Store **ret) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        StoreOptions store_options = STORE_OPTIONS_DEFAULT;
        int r;

        *ret = NULL;
        if (!arg_record)
                return 0;
        if (arg_database)
                path = strdup(arg_database);
        else if (asprintf(&path, "%s/tlswatch.db", state_dir) < 0)
                path = NULL;
        if (!path)
                return log_oom();
        store_options.retention_days = arg_retention_days;
        r = store_open(path, &store_options, ret, &error);
        if (r < 0)
                return log_error_errno(r, "Cannot open database %s: %s", path, error ?: strerror(-r));
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int manager_setup_events(Manager *m) {
        sigset_t mask;
        int r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m)) < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
        if (sd_watchdog_enabled(false, &m->watchdog_usec) <= 0)
                m->watchdog_usec = 0;
        r = sd_event_add_time_relative(
                m->event, &m->watchdog_timer, CLOCK_MONOTONIC, 0, 0, on_watchdog_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the watchdog timer: %m");
        (void) sd_event_source_set_enabled(m->watchdog_timer, SD_EVENT_ON);
        r = sd_event_add_time_relative(
                m->event,
                &m->status_timer,
                CLOCK_MONOTONIC,
                STATUS_INTERVAL_US,
                USEC_PER_SEC / 4,
                on_status_timer,
                m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the status timer: %m");
        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_done) Manager m = {};
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_free_ char *db_path = NULL;
        _cleanup_free_ int *fds = NULL;
        size_t n_fds = 0;
        int r;

        log_setup("tlswatchd");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        raise_nofile_limit();
        r = listen_collect(&fds, &n_fds); /* first: a bad --listen is a usage error */
        if (r < 0)
                return r;
        if ((r = tls_global_init()) < 0 || (r = state_directory(&m.state_dir)) < 0 ||
            (r = manager_setup_tls(&m)) < 0 || (r = open_store(m.state_dir, &db_path, &store)) < 0)
                return r;
        r = server_new(
                &(ServerSettings){
                        .n_threads = arg_threads > 0 ? arg_threads : cpu_count(),
                        .max_connections = arg_max_connections,
                        .max_connections_per_client = arg_max_connections_per_client,
                        .handshake_timeout_us = arg_handshake_timeout_us,
                        .idle_timeout_us = arg_idle_timeout_us,
                        .max_requests = arg_max_requests,
                        .journal_mode = arg_record ? arg_journal : JOURNAL_NONE,
                        .remember_recent = arg_record,
                        .accept_queue_on_drain = arg_n_listen > 0, /* not systemd's sockets */
                        .backend = arg_backend ? &arg_backend_settings : NULL,
                },
                TAKE_PTR(fds),
                n_fds,
                TAKE_PTR(store),
                &m.server);
        if (r < 0 || (r = manager_load_tls(&m)) < 0 || (r = manager_setup_events(&m)) < 0 ||
            (r = server_start(m.server)) < 0)
                return r;
        log_info(
                "Serving HTTPS on %zu socket%s with %u thread%s (TLS %s to %s); recording to %s.",
                n_fds,
                n_fds == 1 ? "" : "s",
                server_n_workers(m.server),
                server_n_workers(m.server) == 1 ? "" : "s",
                tls_version_to_string(arg_tls_min),
                tls_version_to_string(arg_tls_max),
                arg_record ? db_path : "nowhere (--no-record)");
        if (arg_backend)
                log_info(
                        "Forwarding each connection after its handshake to %s (%s).",
                        arg_backend,
                        arg_backend_settings.protocol == BACKEND_HTTP ? "HTTP/1.1" : "PROXY protocol v2");
        manager_notify_status(&m, "READY=1\n");
        r = sd_event_loop(m.event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        server_drain(m.server);
        (void) server_stop_sinks(m.server);
        return 0;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);

        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
