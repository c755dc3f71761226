/* SPDX-License-Identifier: MIT */
#pragma once

/* tlsreport's modules: reading attempts (report-db.c), client-family labels from User-Agents
 * (report-label.c), per-family and overall statistics (report-stats.c) and the formatters, which write
 * to a FILE *, one file per verb (report-sequences.c, report-attempts.c, report-clients.c, report-summary.c,
 * sharing report-output.h). Only report-db.c knows SQLite. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "attempt.h"
#include "sequence.h"
#include "useragent.h"

/* ---- filters ---- */

typedef struct ReportFilter {
        int64_t since_us, until_us; /* [since, until); INT64_MIN / INT64_MAX when unset */
        const char *client;         /* --client as given: an address or ADDRESS/PREFIX; NULL when unset */
        int client_family;          /* AF_INET or AF_INET6 */
        uint8_t client_addr[16];    /* the address: its first client_prefix bits count */
        unsigned client_prefix;     /* bits that must match: 0-32 (IPv4) or 0-128 (IPv6) */
        const char *ja4;            /* matches ja4 or ja4_stable */
        const char *sni;            /* exact match */
        char *const *hosts;         /* --host: only these servers (any of them); n_hosts 0: every one */
        size_t n_hosts;
} ReportFilter;

void report_filter_init(ReportFilter *f);
/* Sets the client filter from --client: an IPv4 address (that address), an IPv6 address (its /64, as the
 * grouping keys IPv6 clients), or ADDRESS/PREFIX with a prefix of 0-32 (IPv4) or 0-128 (IPv6). -EINVAL for
 * anything else. */
int report_filter_set_client(ReportFilter *f, const char *s);
/* Whether an attempt passes the client, JA4 and SNI filters (the time range and the hosts are the
 * reader's). */
bool report_filter_match(const ReportFilter *f, const Attempt *a);
/* Whether host passes --host (always without one). */
bool report_filter_match_host(const ReportFilter *f, const char *host);

/* ---- the database ---- */

typedef struct ReportDb ReportDb;

/* Opens read-only. -ENOENT if there is no file, -EMEDIUMTYPE if it is not a tlswatch database, -EBUSY if
 * another process keeps it locked for longer than 5 s. */
int report_db_open(const char *path, ReportDb **ret);
ReportDb *report_db_close(ReportDb *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(ReportDb *, report_db_close);
/* The SQLite error message of the last failure. */
const char *report_db_error(ReportDb *db);

typedef int (*ReportAttemptHandler)(const Attempt *a, void *userdata);
/* Streams the attempts in [since, until) ordered by started_us (then id) over the index, filtered by f.
 * The Attempt and its strings are only valid during the call. full = false reads only the columns that
 * grouping and statistics need. A negative handler result stops and is returned. */
int report_db_foreach_attempt(
        ReportDb *db, const ReportFilter *f, bool full, ReportAttemptHandler h, void *userdata);
/* The same as a cursor, for reading several databases side by side: next returns 1 with the next attempt in
 * *ret (valid until the next call), 0 at the end, or a negative errno. f must outlive the cursor. */
typedef struct ReportDbCursor ReportDbCursor;
int report_db_cursor_open(ReportDb *db, const ReportFilter *f, bool full, ReportDbCursor **ret);
int report_db_cursor_next(ReportDbCursor *c, Attempt *ret);
ReportDbCursor *report_db_cursor_free(ReportDbCursor *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ReportDbCursor *, report_db_cursor_free);
/* The server whose attempts the database holds: the host name the daemon recorded in it (table meta,
 * migration 6), else the stem of the file name ("web1" for /srv/web1.db). */
int report_db_host(ReportDb *db, const char *path, char **ret);

/* --follow: a read transaction, so that what is read between begin and end is one snapshot of the database;
 * ret_last_id gets the highest attempt id in it (0 if none). */
int report_db_snapshot_begin(ReportDb *db, int64_t *ret_last_id);
void report_db_snapshot_end(ReportDb *db);
/* Whether the database is in WAL mode (the daemon switches a new one to it after creating it). A connection
 * opened before does not notice the switch: --follow opens the database anew until it is. */
bool report_db_is_wal(ReportDb *db);
/* The highest attempt id, read over a connection of its own opened for the purpose (cheaper than
 * report_db_open()). */
int report_db_peek_last_id(const char *path, int64_t *ret);
/* PRAGMA data_version: changes when another connection committed. */
int report_db_data_version(ReportDb *db, int64_t *ret);
/* --follow: every attempt with an id above after_id, in id order (the order they were recorded in), all
 * columns, unfiltered. ret_last_id gets the highest id read (after_id if none). */
int report_db_foreach_attempt_after(
        ReportDb *db, int64_t after_id, ReportAttemptHandler h, void *userdata, int64_t *ret_last_id);

typedef int (*ReportUserAgentHandler)(const char *ja4, const RawString *ua, uint64_t count, void *userdata);
/* The User-Agents of successful attempts in [since, until), per stable JA4 (count is 1: one call per row). */
int report_db_foreach_user_agent(ReportDb *db, const ReportFilter *f, ReportUserAgentHandler h, void *userdata);

/* ---- sources: where the verbs read attempts (report-source.c) ----
 *
 * One or more databases (each one server's, its host from report_db_host()), or one journal: the local one
 * (tlswatch's namespace and the default one), a directory (systemd-journal-remote's), or files. Either way
 * the attempts come in started_us order (then host name, then id), each with its host: one interned string
 * per host, valid as long as the source. From a journal, whose entries come in the order they were written
 * (when the attempt ended) and interleaved across hosts, they are put back in started order within a
 * settle window (REPORT_JOURNAL_SETTLE_US): only the attempts of that window are held. */

#define REPORT_JOURNAL_SETTLE_US (60 * USEC_PER_SEC)
/* The journal namespace that tlswatchd.service logs to (LogNamespace=), read with the default one. */
#define REPORT_JOURNAL_NAMESPACE "tlswatch"

typedef struct ReportSource ReportSource;
typedef int (*ReportSourceHandler)(const Attempt *a, const char *host, void *userdata);

/* The columns read: what grouping and statistics need, that and the User-Agent (the labels gathered while
 * grouping; from a database this reads all), or all. */
typedef enum ReportRead {
        REPORT_READ_GROUPING,
        REPORT_READ_USER_AGENT,
        REPORT_READ_ALL,
} ReportRead;

int report_source_new(ReportSource **ret);
ReportSource *report_source_free(ReportSource *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ReportSource *, report_source_free);
/* Adds a database, opened as report_db_open() does (same errors). */
int report_source_add_database(ReportSource *s, const char *path);
/* Adds an open database (not taken: it must outlive the source) whose attempts are host's (NULL: none). */
int report_source_add_db(ReportSource *s, ReportDb *db, const char *host);
/* A journal instead of databases: directory set: sd_journal_open_directory(); files set (NULL-terminated,
 * globs expanded as journalctl does): sd_journal_open_files(); neither: the local journal. -ENOENT when a
 * glob matches nothing. */
int report_source_open_journal(ReportSource *s, const char *directory, char *const *files);
/* Whether the attempts may come from more than one host: several databases, or a journal (whose hosts are
 * known only once read), unless --host names a single one. Tables then show a HOST column. */
bool report_source_many_hosts(const ReportSource *s, const ReportFilter *f);
bool report_source_is_journal(const ReportSource *s);
/* Streams the attempts in [since, until) in started_us order, filtered by f, with the columns of read. A
 * negative handler result stops and is returned. */
int report_source_foreach_attempt(
        ReportSource *s, const ReportFilter *f, ReportRead read, ReportSourceHandler h, void *userdata);
int report_source_foreach_user_agent(
        ReportSource *s, const ReportFilter *f, ReportUserAgentHandler h, void *userdata);
/* What went wrong last, for a message. */
const char *report_source_error(ReportSource *s);

/* ---- labels: "who is this client?" ---- */

#define REPORT_LABEL_MAX USER_AGENT_SUMMARY_MAX
#define REPORT_LABEL_AGENTS 4     /* distinct summaries kept per family */
#define REPORT_FAMILIES_MAX 65536 /* families beyond this are not labelled */

/* user_agent_summary() (useragent.h), which the daemon's page uses too. */
static inline void report_user_agent_summary(const char *ua, size_t len, char ret[static REPORT_LABEL_MAX]) {
        user_agent_summary(ua, len, ret);
}

typedef struct ReportLabels ReportLabels;
typedef struct ReportAgentCount {
        char summary[REPORT_LABEL_MAX];
        uint64_t count;
} ReportAgentCount;

int report_labels_new(ReportLabels **ret);
ReportLabels *report_labels_free(ReportLabels *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(ReportLabels *, report_labels_free);
int report_labels_add(ReportLabels *l, const char *ja4, const RawString *ua, uint64_t count);
/* Call once after the last add and before any get. */
void report_labels_seal(ReportLabels *l);
/* Takes adds again (--follow, as successes arrive); seal again before the next get. */
int report_labels_unseal(ReportLabels *l);
/* The commonest summary for this stable JA4, NULL if none. ret_agents/ret_n (optional) get all kept ones,
 * commonest first. */
const char *
report_labels_get(ReportLabels *l, const char *ja4, const ReportAgentCount **ret_agents, size_t *ret_n);

/* ---- statistics ---- */

#define REPORT_RETRY_BUCKETS 16 /* 1..15 attempts, and "16 or more" */

typedef struct ReportSummary {
        uint64_t attempts, failures;
        uint64_t forwarding_errors; /* successful handshakes whose connection was not served (--backend) */
        uint64_t outcomes[_OUTCOME_MAX];
        uint64_t alerts_received[256], alerts_sent[256];
        uint64_t sequences, sequence_outcomes[_SEQUENCE_OUTCOME_MAX], patterns[_PATTERN_MAX];
        uint64_t retries_ok[REPORT_RETRY_BUCKETS + 1]; /* ok sequences by their number of attempts */
        int64_t first_us, last_us;
        uint64_t hosts; /* distinct servers in the attempts read (0 when none is known) */
} ReportSummary;

void report_summary_init(ReportSummary *s);
void report_summary_add_attempt(ReportSummary *s, const Attempt *a);
void report_summary_add_sequence(ReportSummary *s, const Sequence *q);

typedef struct ReportClients ReportClients;
typedef struct ReportClient {
        char *ja4; /* NULL: attempts without a ClientHello */
        uint64_t attempts, successes, sequences, ok_sequences,
                retries;            /* retries: failures in ok sequences */
        uint64_t failure_counts[8]; /* by failure kind, see report_clients_failure_name() */
        int failure_kinds[8];
        /* the fleet: the hosts (interned, as the source gives them) where the family has a sequence with
         * a failure, and the first such failure (the host NULL when none, or no host is known) */
        const char **failing_hosts; /* a set: n_failing_hosts of n_failing_hosts_allocated slots used */
        size_t n_failing_hosts, n_failing_hosts_allocated;
        const char *first_failure_host;
        int64_t first_failure_us; /* INT64_MAX: no failure */
} ReportClient;

int report_clients_new(ReportClients **ret);
ReportClients *report_clients_free(ReportClients *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ReportClients *, report_clients_free);
int report_clients_add_attempt(ReportClients *c, const Attempt *a);
int report_clients_add_sequence(ReportClients *c, const Sequence *q);
/* Sorted by attempts, most first. */
size_t report_clients_sorted(ReportClients *c, ReportClient ***ret);
/* Sorted by the number of hosts it fails on, most first, then by attempts; only families with a failure.
 * Returns the number, at most max. */
size_t report_clients_sorted_by_hosts(ReportClients *c, size_t max, ReportClient ***ret);
/* The commonest failure of a family, e.g. "peer_alert 46 certificate_unknown", or NULL. */
const char *report_client_commonest_failure(const ReportClient *cl, char buf[static 64]);

/* ---- output ---- */

typedef enum OutputMode {
        OUTPUT_TABLE,
        OUTPUT_JSON,
        OUTPUT_JSON_PRETTY,
        OUTPUT_CSV,
        OUTPUT_HTML, /* the whole report as one page, whatever the verb (report-html.c) */
        _OUTPUT_MAX,
        _OUTPUT_INVALID = -EINVAL,
} OutputMode;

const char *output_mode_to_string(OutputMode m) _pure_;
OutputMode output_mode_from_string(const char *s) _pure_;

typedef struct ReportTable ReportTable;

/* Where and how a verb writes. The table (mode OUTPUT_TABLE) fits width columns like systemctl's: each
 * column is as wide as the content of the first rows needs (the first 1000 are held back to measure them)
 * and the row fits the width, cells that do not fit end in "…", the diagnosis is word-wrapped on indented
 * lines under its sequence. width 0: no limit, nothing shortened (not a terminal). full: everything, in
 * full (the whole time, the JA4, every attempt, every diagnosis), nothing shortened; tlsreport sets width 0
 * with it.
 *
 * streaming: for tlsreport -f, which calls report_output_sequence_labelled() and report_output_attempt()
 * one at a time as attempts are recorded: nothing is held back, the widths come from the width budget and
 * fixed defaults (TableColumn.stream) instead of the content, and each row (with its diagnosis) is written
 * by the call that gives it; the caller flushes f. Without streaming, rows may be held until
 * report_output_done(). */
typedef struct ReportOutput {
        FILE *f;
        OutputMode mode;
        bool color, ascii;
        unsigned width; /* columns; 0: no limit */
        bool full, streaming;
        bool hosts;    /* the attempts may come from several servers: tables get a HOST column */
        uint64_t rows; /* written so far, headers excluded */
        bool header_done;
        ReportTable *table; /* private to the formatters: the table's widths, held rows, notes */
} ReportOutput;

/* diagnosis: the sentence (sequence_diagnose()); label: who the client is (the User-Agents). */
void report_output_sequence(ReportOutput *o, const Sequence *q, const char *label, const char *diagnosis);
/* The same with the label and the diagnosis built from the labels of the sequence's fingerprint: "curl/8.14"
 * or, when its successes carry several User-Agents, "curl/8.14 or Python-urllib/3.13". */
void report_output_sequence_labelled(ReportOutput *o, const Sequence *q, ReportLabels *l);
void report_output_attempt(ReportOutput *o, const Attempt *a);
/* The same; in a table, an attempt without a User-Agent shows label (its family's, from the User-Agents of
 * its fingerprint's successes) in parentheses in that column instead. JSON and CSV do not change. */
void report_output_attempt_labelled(ReportOutput *o, const Attempt *a, const char *label);
/* The same with the server the attempt is from (JSON: "host", CSV: the first column; a table shows it in a
 * HOST column when o->hosts). */
void report_output_attempt_host(ReportOutput *o, const Attempt *a, const char *host, const char *label);
/* After the last sequence in table mode: the short summary. */
void report_output_sequences_footer(ReportOutput *o, const ReportSummary *s, uint64_t shown);
void report_output_clients(ReportOutput *o, ReportClients *c, ReportLabels *l);
void report_output_summary(ReportOutput *o, const ReportSummary *s);
/* The same with the fleet (c not NULL, from several hosts): the number of hosts, and the client families
 * that fail on the most hosts (at most REPORT_FLEET_FAMILIES), each with where and when it failed first. */
#define REPORT_FLEET_FAMILIES 10
void report_output_summary_fleet(ReportOutput *o, const ReportSummary *s, ReportClients *c, ReportLabels *l);
/* Writes what is held back and frees the table's state: after the last row (report_verb_run() calls it). */
void report_output_done(ReportOutput *o);

/* ---- the HTML report (-o html) ---- */

typedef struct ReportHtml ReportHtml;

/* labels: who each family is (not owned, must outlive h); all: also explain the clean sequences. */
int report_html_new(ReportLabels *labels, bool all, ReportHtml **ret);
ReportHtml *report_html_free(ReportHtml *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(ReportHtml *, report_html_free);
int report_html_add_attempt(ReportHtml *h, const Attempt *a);
int report_html_add_sequence(ReportHtml *h, const Sequence *q);
/* The page: the summary's charts and a timeline per family. Returns 0 or -ENOMEM. */
/* fleet: the client families, when the attempts were more than one host's (NULL otherwise) */
int report_output_html(ReportOutput *o, ReportHtml *h, const ReportSummary *s, ReportClients *fleet);

/* ---- the verbs ---- */

typedef struct ReportRun {
        ReportSource *source; /* where the attempts come from; NULL: db alone, with no host */
        ReportDb *db;
        ReportFilter filter;
        SequenceParams params;
        bool all;       /* also the sequences without a failure */
        int64_t now_us; /* sequences still open then are written as open; 0: when the last attempt was read */
        ReportOutput out;
} ReportRun;

/* Whether name is a verb: "sequences", "attempts", "clients" or "summary". */
bool report_verb_known(const char *name) _pure_;
/* --follow (report-follow.c): the verb "sequences" (attempts and sequences) or "attempts" over the database
 * at path, which may not exist yet, until SIGINT or SIGTERM (0), or the reader of the output went away (0).
 * run->db is not used: the database is opened, and opened anew when replaced, here. */
int report_follow(const char *verb, ReportRun *run, const char *path);
/* Runs a verb: with OUTPUT_HTML, every verb writes the one HTML report. Reads run->db, writes to run->out.
 * Logs what goes wrong; returns 0 or a negative errno
 * (-EIO or -EPIPE unlogged when writing the output failed). */
int report_verb_run(const char *name, ReportRun *run);
