/* SPDX-License-Identifier: MIT */
/* tlsreport: attempts grouped into retry sequences, with a diagnosis. See tlsreport(1). */
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdio_ext.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "journal.h"
#include "log.h"
#include "report-time.h"
#include "report.h"

typedef enum ColorMode { COLOR_AUTO, COLOR_ALWAYS, COLOR_NEVER } ColorMode;

static char **arg_databases = NULL, **arg_files = NULL, **arg_hosts = NULL;
static size_t arg_n_databases = 0, arg_n_files = 0, arg_n_hosts = 0;
static const char *arg_directory = NULL;
static bool arg_journal = false;
static const char *arg_since = NULL, *arg_until = NULL;
static OutputMode arg_output = OUTPUT_TABLE;
static bool arg_all = false, arg_no_pager = false, arg_full = false, arg_follow = false;
static ColorMode arg_color = COLOR_AUTO;
static SequenceParams arg_params = {
        .burst_gap_us = SEQUENCE_BURST_GAP_DEFAULT_US,
        .retry_window_us = SEQUENCE_RETRY_WINDOW_DEFAULT_US,
};
static ReportFilter arg_filter;
static pid_t pager_pid = 0;

static void help(void) {
        printf("%s [OPTIONS] [sequences|attempts|clients|summary]\n\n"
               "Group recorded TLS handshake attempts into retry sequences and explain them.\n\n"
               "  -S --since=TIME         Attempts that started at or after TIME\n"
               "  -U --until=TIME         Attempts that started before TIME\n"
               "                          TIME: " REPORT_TIME_FORMS "\n"
               "     --database=PATH      Database (default: $STATE_DIRECTORY/tlswatch.db or "
               "%s/tlswatch.db);\n"
               "                          repeat it for several servers' databases\n"
               "     --journal            Read the local journal instead (tlswatchd --journal all)\n"
               "  -D --directory=DIR      Read the journal files in DIR (systemd-journal-remote's)\n"
               "     --file=PATH          Read this journal file (repeatable, globs)\n"
               "     --host=NAME          Only this server (repeatable)\n"
               "  -o --output=FMT         table, json, json-pretty, csv, or html (the whole report\n"
               "                          as one page with timelines, whatever the command)\n"
               "     --client=ADDR        Only this client: an address (IPv6: its /64) or ADDR/PREFIX\n"
               "     --ja4=FP             Only this JA4 or stable JA4\n"
               "     --sni=NAME           Only this server name\n"
               "     --all                Also list clean sequences\n"
               "  -l --full               Table: everything in full, nothing shortened or summarised\n"
               "  -f --follow             Print attempts as they are recorded and sequences once\n"
               "                          they end (sequences, attempts; default --since: the\n"
               "                          last retry window)\n"
               "     --burst-gap=SEC      Grouping: burst gap (default 2)\n"
               "     --retry-window=SEC   Grouping: retry window (default 600)\n"
               "     --no-pager           Do not pipe output into a pager\n"
               "     --color=WHEN         auto, always or never (NO_COLOR is honoured)\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n",
               program_invocation_short_name,
               STATE_DIRECTORY_DEFAULT);
}

/* Appends s (not copied: argv's) to a NULL-terminated list. */
static int strv_push(char ***l, size_t *n, char *s) {
        char **p = realloc(*l, (*n + 2) * sizeof *p);

        if (!p)
                return -ENOMEM;
        p[(*n)++] = s;
        p[*n] = NULL;
        *l = p;
        return 0;
}

static int parse_seconds(const char *s, int64_t *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(d) || d < 0 || d > 1e9)
                return -EINVAL;
        *ret = (int64_t) llround(d * 1e6);
        return 0;
}

static int parse_argv(int argc, char *argv[], const char **ret_command) {
        enum {
                ARG_DATABASE = 0x100,
                ARG_JOURNAL,
                ARG_FILE,
                ARG_HOST,
                ARG_CLIENT,
                ARG_JA4,
                ARG_SNI,
                ARG_ALL,
                ARG_BURST_GAP,
                ARG_RETRY_WINDOW,
                ARG_NO_PAGER,
                ARG_COLOR,
                ARG_VERSION,
        };
        static const struct option options[] = {
                {"since", required_argument, NULL, 'S'},
                {"until", required_argument, NULL, 'U'},
                {"database", required_argument, NULL, ARG_DATABASE},
                {"journal", no_argument, NULL, ARG_JOURNAL},
                {"directory", required_argument, NULL, 'D'},
                {"file", required_argument, NULL, ARG_FILE},
                {"host", required_argument, NULL, ARG_HOST},
                {"output", required_argument, NULL, 'o'},
                {"client", required_argument, NULL, ARG_CLIENT},
                {"ja4", required_argument, NULL, ARG_JA4},
                {"sni", required_argument, NULL, ARG_SNI},
                {"all", no_argument, NULL, ARG_ALL},
                {"full", no_argument, NULL, 'l'},
                {"follow", no_argument, NULL, 'f'},
                {"burst-gap", required_argument, NULL, ARG_BURST_GAP},
                {"retry-window", required_argument, NULL, ARG_RETRY_WINDOW},
                {"no-pager", no_argument, NULL, ARG_NO_PAGER},
                {"color", optional_argument, NULL, ARG_COLOR},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        int c, r;

        report_filter_init(&arg_filter);
        while ((c = getopt_long(argc, argv, "S:U:o:D:flh", options, NULL)) >= 0)
                switch (c) {
                case 'S': arg_since = optarg; break;
                case 'U': arg_until = optarg; break;
                case ARG_DATABASE:
                        if (strv_push(&arg_databases, &arg_n_databases, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_JOURNAL: arg_journal = true; break;
                case 'D': arg_directory = optarg; break;
                case ARG_FILE:
                        if (strv_push(&arg_files, &arg_n_files, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_HOST:
                        if (!*optarg)
                                return log_error_errno(EINVAL, "Invalid --host \"\": a host name.");
                        if (strv_push(&arg_hosts, &arg_n_hosts, optarg) < 0)
                                return log_oom();
                        break;
                case 'o':
                        arg_output = output_mode_from_string(optarg);
                        if (arg_output < 0)
                                return log_error_errno(
                                        EINVAL,
                                        "Unknown output format \"%s\": use table, json, json-pretty, csv or "
                                        "html.",
                                        optarg);
                        break;
                case ARG_CLIENT:
                        r = report_filter_set_client(&arg_filter, optarg);
                        if (r == -ENOMEM)
                                return log_oom();
                        if (r < 0)
                                return log_error_errno(
                                        r,
                                        "Invalid --client \"%s\": expected an IP address, or ADDRESS/PREFIX "
                                        "with a prefix of 0-32 for IPv4 or 0-128 for IPv6.",
                                        optarg);
                        break;
                case ARG_JA4: arg_filter.ja4 = optarg; break;
                case ARG_SNI: arg_filter.sni = optarg; break;
                case ARG_ALL: arg_all = true; break;
                case 'l': arg_full = true; break;
                case 'f': arg_follow = true; break;
                case ARG_BURST_GAP:
                        if (parse_seconds(optarg, &arg_params.burst_gap_us) < 0)
                                return log_error_errno(
                                        EINVAL,
                                        "Invalid --burst-gap \"%s\": expected seconds, e.g. 2 or 0.5.",
                                        optarg);
                        break;
                case ARG_RETRY_WINDOW:
                        if (parse_seconds(optarg, &arg_params.retry_window_us) < 0)
                                return log_error_errno(
                                        EINVAL,
                                        "Invalid --retry-window \"%s\": expected seconds, e.g. 600.",
                                        optarg);
                        break;
                case ARG_NO_PAGER: arg_no_pager = true; break;
                case ARG_COLOR:
                        if (!optarg || streq(optarg, "always") || streq(optarg, "yes"))
                                arg_color = COLOR_ALWAYS;
                        else if (streq(optarg, "never") || streq(optarg, "no"))
                                arg_color = COLOR_NEVER;
                        else if (streq(optarg, "auto"))
                                arg_color = COLOR_AUTO;
                        else
                                return log_error_errno(
                                        EINVAL, "Invalid --color \"%s\": use auto, always or never.", optarg);
                        break;
                case 'h': help(); return 0;
                case ARG_VERSION: printf("tlsreport %s\n", PROJECT_VERSION); return 0;
                default: return -EINVAL;
                }
        if (optind + 1 < argc)
                return log_error_errno(EINVAL, "Too many arguments: one command at most.");
        *ret_command = optind < argc ? argv[optind] : "sequences";
        return 1;
}

/* The table's width, as systemd's columns(): $COLUMNS if set, else the terminal's of stdout (asked before
 * the pager takes stdout), else 0: no limit (a file or a pipe gets everything). */
static unsigned table_width(void) {
        const char *e = getenv("COLUMNS");
        struct winsize ws = {};

        if (arg_full)
                return 0;
        if (e && *e) {
                char *end;
                unsigned long v;

                errno = 0;
                v = strtoul(e, &end, 10);
                if (errno == 0 && *end == '\0' && v > 0 && v <= 100000)
                        return (unsigned) v;
        }
        if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 0;
}

static void pager_open(void) {
        int fds[2];
        const char *pager;

        if (arg_no_pager || !isatty(STDOUT_FILENO) || (getenv("TERM") && streq(getenv("TERM"), "dumb")))
                return;
        pager = getenv("TLSREPORT_PAGER") ?: getenv("PAGER");
        if (pager && (!*pager || streq(pager, "cat")))
                return;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return;
        fflush(stdout);
        pager_pid = fork();
        if (pager_pid < 0) {
                pager_pid = 0;
                (void) close(fds[0]);
                (void) close(fds[1]);
                return;
        }
        if (pager_pid == 0) {
                if (dup2(fds[0], STDIN_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                (void) setenv("LESS", "FRSX", 0);
                (void) setenv("LESSCHARSET", "utf-8", 0);
                if (pager)
                        execl("/bin/sh", "sh", "-c", pager, (char *) NULL);
                execlp("less", "less", (char *) NULL);
                execlp("more", "more", (char *) NULL);
                /* no pager at all: copy through */
                char buf[4096];
                ssize_t n;
                while ((n = read(STDIN_FILENO, buf, sizeof buf)) > 0)
                        if (write(STDOUT_FILENO, buf, (size_t) n) != n)
                                break;
                _exit(EXIT_SUCCESS);
        }
        if (dup2(fds[1], STDOUT_FILENO) < 0)
                log_debug_errno(errno, "Failed to redirect stdout to the pager: %m");
        (void) close(fds[0]);
        (void) close(fds[1]);
}

static void pager_close(void) {
        if (pager_pid <= 0)
                return;
        fflush(stdout);
        (void) close(STDOUT_FILENO);
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
}

static bool output_color(void) {
        return arg_output == OUTPUT_TABLE &&
                (arg_color == COLOR_ALWAYS ||
                 (arg_color == COLOR_AUTO && isatty(STDOUT_FILENO) && !getenv("NO_COLOR") &&
                  !(getenv("TERM") && streq(getenv("TERM"), "dumb"))));
}

static bool output_utf8(void) {
        const char *cs = nl_langinfo(CODESET);

        return cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
}

/* --follow: no pager (it would hold the lines back), a flush after each read */
static int run_follow(const char *command, const char *database) {
        ReportRun run = {
                .filter = arg_filter,
                .params = arg_params,
                .all = arg_all,
                .out = {.f = stdout,
                        .mode = arg_output,
                        .color = output_color(),
                        .ascii = !output_utf8(),
                        .width = table_width(),
                        .full = arg_full,
                        .streaming = true},
        };

        (void) setvbuf(stdout, NULL, _IOFBF, 256 * 1024);
        return report_follow(command, &run, database);
}

static int open_database(ReportSource *source, const char *path) {
        int r = report_source_add_database(source, path);

        if (r == -ENOENT)
                return log_error_errno(r, "no database at %s: is tlswatchd running? use --database", path);
        if (r == -EMEDIUMTYPE)
                return log_error_errno(r, "%s is not a tlswatch database.", path);
        if (r == -EBUSY)
                return log_error_errno(
                        r,
                        "%s is locked by another process (for more than 5 s): try again, or look for a "
                        "writer holding a transaction open.",
                        path);
        if (r < 0)
                return log_error_errno(r, "Failed to open database %s: %m", path);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(report_source_freep) ReportSource *source = NULL;
        _cleanup_free_ char *default_db = NULL;
        const char *command = NULL;
        int64_t now = now_realtime_us();
        unsigned width;
        bool color;
        ReportRun run;
        int r;

        setlocale(LC_ALL, "");
        log_setup("tlsreport");
        r = parse_argv(argc, argv, &command);
        if (r <= 0)
                return r;
        if (!report_verb_known(command))
                return log_error_errno(
                        EINVAL, "Unknown command \"%s\": use sequences, attempts, clients or summary.", command);

        if ((arg_journal + !!arg_directory + (arg_n_files > 0) + (arg_n_databases > 0)) > 1)
                return log_error_errno(
                        EINVAL,
                        "Read databases (--database), or one journal (--journal, -D or --file), not both.");
        arg_filter.hosts = arg_hosts;
        arg_filter.n_hosts = arg_n_hosts;
        if (arg_follow) {
                if (arg_journal || arg_directory || arg_n_files > 0)
                        return log_error_errno(
                                EOPNOTSUPP,
                                "--follow reads a database: on a journal, use journalctl -f "
                                "MESSAGE_ID=%s.",
                                TLSWATCH_MESSAGE_ID_HANDSHAKE_FAILED);
                if (arg_n_databases > 1)
                        return log_error_errno(EOPNOTSUPP, "--follow reads one database, not several.");
                if (!streq(command, "sequences") && !streq(command, "attempts"))
                        return log_error_errno(
                                EINVAL, "--follow shows sequences or attempts, not \"%s\".", command);
                if (arg_output == OUTPUT_CSV || arg_output == OUTPUT_HTML)
                        return log_error_errno(
                                EINVAL,
                                "--follow writes a table or JSON, not %s.",
                                output_mode_to_string(arg_output));
                if (arg_until)
                        return log_error_errno(EINVAL, "--follow has no end: --until does not apply.");
                /* the stories that may still go on, as journalctl -f starts with the last lines */
                if (!arg_since)
                        arg_filter.since_us = now - arg_params.retry_window_us;
        }
        if (arg_since) {
                r = report_time_parse(arg_since, now, &arg_filter.since_us);
                if (r < 0)
                        return log_error_errno(
                                r, "Invalid --since \"%s\": use %s.", arg_since, REPORT_TIME_FORMS);
        }
        if (arg_until) {
                r = report_time_parse(arg_until, now, &arg_filter.until_us);
                if (r < 0)
                        return log_error_errno(
                                r, "Invalid --until \"%s\": use %s.", arg_until, REPORT_TIME_FORMS);
        }
        if (arg_filter.since_us > arg_filter.until_us)
                return log_error_errno(EINVAL, "--since is later than --until.");

        r = report_source_new(&source);
        if (r < 0)
                return log_oom();
        if (arg_journal || arg_directory || arg_n_files > 0) {
                r = report_source_open_journal(source, arg_directory, arg_n_files > 0 ? arg_files : NULL);
                if (r < 0)
                        return r;
        } else {
                if (arg_n_databases == 0) {
                        const char *state = getenv("STATE_DIRECTORY");

                        /* STATE_DIRECTORY may list several directories separated by ':'; the first is ours */
                        if (asprintf(
                                    &default_db,
                                    "%.*s/tlswatch.db",
                                    state && *state ? (int) strcspn(state, ":")
                                                    : (int) strlen(STATE_DIRECTORY_DEFAULT),
                                    state && *state ? state : STATE_DIRECTORY_DEFAULT) < 0)
                                return log_oom();
                        if (strv_push(&arg_databases, &arg_n_databases, default_db) < 0)
                                return log_oom();
                }
                if (arg_follow)
                        return run_follow(command, arg_databases[0]);
                for (size_t i = 0; i < arg_n_databases; i++) {
                        r = open_database(source, arg_databases[i]);
                        if (r < 0)
                                return r;
                }
        }

        /* before the pager: its pipe is not the terminal */
        width = table_width();
        color = output_color();
        pager_open();
        /* large blocks: JSON of a busy day is hundreds of MB */
        (void) setvbuf(stdout, NULL, _IOFBF, 256 * 1024);
        /* One thread writes stdout: no lock around each of the millions of small writes of a big report. */
        (void) __fsetlocking(stdout, FSETLOCKING_BYCALLER);
        run = (ReportRun){
                .source = source,
                .filter = arg_filter,
                .params = arg_params,
                .all = arg_all,
                .out = {.f = stdout,
                        .mode = arg_output,
                        .color = color,
                        .ascii = !output_utf8(),
                        .width = width,
                        .full = arg_full},
        };
        r = report_verb_run(command, &run);
        if (fflush(stdout) != 0 || ferror(stdout))
                r = r < 0 ? r : -EIO;
        pager_close();
        return r;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);

        free(arg_databases);
        free(arg_files);
        free(arg_hosts);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
