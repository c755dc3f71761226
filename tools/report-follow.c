/* SPDX-License-Identifier: MIT */
/* tlsreport --follow: what is recorded in the range, then each attempt as soon as the daemon has recorded
 * it, and each retry sequence once its story is known (it succeeded, or its retry window passed).
 *
 * No polling: the process sleeps in poll() on an inotify watch of the database's directory (the daemon's
 * commits write the -wal file; a checkpoint, a new or a replaced database show as events on the database
 * file's name) and on a timer for the next retry window to pass; new rows are read by id over the table's
 * B-tree.
 *
 * Grouping is the batch report's (sequence.h), per key: the daemon records a connection when it ends, so
 * rows arrive in the order the connections ended, not in the order they started (a browser's successful
 * connection stays open after its failed ones are recorded, and its preconnects rejected right after the
 * success may be recorded first). Each key keeps the attempts that are not in a printed sequence yet, in
 * started order, and its own sequencer fed with them; an attempt that arrives out of order rebuilds that
 * key's sequencer from them. A sequence is printed when it is handed out finished, exactly as the batch
 * report groups the same rows, unless a row arrives after a sequence that it would have been part of was
 * printed (a connection that lasted longer than the sequence after it): then it starts a sequence of its
 * own. */
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

#include "hashmap.h"
#include "log.h"
#include "report-output.h"

typedef struct Follow Follow;

/* How long an attempt waits before it is grouped: the daemon records a connection when it ends, so
 * connections that end together (a browser that quits) may be recorded in another order than they started,
 * and in commits up to 200 ms apart. Grouped a moment later, they are grouped in started order. */
#define FOLLOW_SETTLE_US (500 * USEC_PER_MSEC)

/* How long after a retry window passed a sequence is declared abandoned: an attempt that started within
 * the window would still join it, and it is recorded only when its connection ends (a browser's success,
 * after its page loaded; a failed handshake, at the latest at the daemon's handshake timeout). */
#define FOLLOW_ABANDON_GRACE_US (5 * USEC_PER_SEC)

typedef struct FollowPending {
        Attempt *attempt;   /* owned */
        int64_t arrived_us; /* CLOCK_MONOTONIC; 0 for what was recorded before the start */
} FollowPending;

/* One grouping key (sequence.h) with attempts that may still change a sequence that is not printed yet. */
typedef struct FollowKey {
        HashEntry map; /* first: a HashEntry * is a FollowKey * */
        Follow *follow;
        char *key; /* client, NUL, stable JA4 or no-hello kind, NUL, '1' and the SNI's bytes or '0' */
        size_t key_len;
        Sequencer *sequencer;
        FollowPending *pending; /* not in a handed-out sequence yet, by (started_us, id) */
        size_t n_pending, n_allocated;
        size_t n_fed;    /* the first n_fed pending ones are fed to the sequencer */
        Attempt *primer; /* the key's last success, when the last sequence handed out ended with it */
        bool skip;       /* the next sequence handed out is the primer's own: not printed again */
        int64_t advanced_us, last_us; /* time told to the sequencer; last start fed */
        struct FollowKey *prev, *next;
} FollowKey;

struct Follow {
        ReportRun *run;
        const char *path, *name;
        bool grouping; /* sequences, not only attempts */
        ReportLabels *labels;
        bool labels_sealed;
        HashMap keys;
        FollowKey *keys_head;
        ReportDb *db;
        char *host;           /* the database's (report_db_host()), from the first time it was opened */
        bool wal;             /* the database was in WAL mode when opened */
        int64_t data_version; /* PRAGMA data_version after the last read */
        unsigned stale;       /* wakes in a row where the WAL was written and the connection saw nothing */
        dev_t dev;
        ino_t ino;
        int64_t last_id;
        ReportOutput attempts_out, sequences_out; /* into a memory buffer, then to run->out.f */
        Attempt **batch;                          /* rows of one read, full copies */
        size_t n_batch, n_batch_allocated;
        bool waiting_noted;
        int error; /* the first error of a handler */
};

static int64_t follow_hold_us(const Follow *f) {
        return MAX(f->run->params.burst_gap_us, f->run->params.retry_window_us);
}

/* ---- output ---- */

static int labels_seal(Follow *f) {
        if (!f->labels_sealed) {
                report_labels_seal(f->labels);
                f->labels_sealed = true;
        }
        return 0;
}

static int labels_add(Follow *f, const char *ja4, const RawString *ua) {
        int r;

        if (!ja4 || !ua->data)
                return 0;
        if (f->labels_sealed) {
                r = report_labels_unseal(f->labels);
                if (r < 0)
                        return r;
                f->labels_sealed = false;
        }
        return report_labels_add(f->labels, ja4, ua, 1);
}

static int on_label(const char *ja4, const RawString *ua, uint64_t count _unused_, void *userdata) {
        return labels_add(userdata, ja4, ua);
}

/* Writes what a formatter wrote into buf to the real output, with "type" first in JSON objects (and the
 * label of an attempt's family, when known), or after a table line. */
static void follow_emit(Follow *f, const char *type, const char *buf, size_t len, const char *label) {
        FILE *out = f->run->out.f;

        if (f->run->out.mode == OUTPUT_TABLE) { /* the label is in the row: report_output_attempt_labelled() */
                fwrite(buf, 1, len, out);
                return;
        }
        /* JSON: one object per line (or pretty), "{" first */
        if (len == 0 || buf[0] != '{') {
                fwrite(buf, 1, len, out);
                return;
        }
        fputs("{\"type\":\"", out);
        fputs(type, out);
        fputs("\",", out);
        if (label) {
                fputs("\"label\":", out);
                escape_json_fputs(out, label, strlen(label));
                fputc(',', out);
        }
        fwrite(buf + 1, 1, len - 1, out);
}

typedef struct Capture {
        char *buf;
        size_t len;
        FILE *f;
} Capture;

static int capture_begin(Capture *c, ReportOutput *o) {
        *c = (Capture){};
        c->f = open_memstream(&c->buf, &c->len);
        if (!c->f)
                return -ENOMEM;
        o->f = c->f;
        return 0;
}

static int capture_end(Capture *c) {
        int r = fclose(c->f) == 0 ? 0 : -ENOMEM;

        c->f = NULL;
        return r;
}

static int follow_print_attempt(Follow *f, const Attempt *a) {
        const char *label = NULL;
        Capture c;
        int r;

        if (a->outcome != OUTCOME_OK || !a->user_agent.data) {
                labels_seal(f);
                label = report_labels_get(f->labels, a->ja4_stable, NULL, NULL);
        }
        r = capture_begin(&c, &f->attempts_out);
        if (r < 0)
                return r;
        report_output_attempt_host(&f->attempts_out, a, f->host, label);
        r = capture_end(&c);
        if (r >= 0)
                follow_emit(f, "attempt", c.buf, c.len, label);
        free(c.buf);
        return r;
}

static void follow_sequence_headline(Follow *f, const Sequence *q) {
        ReportOutput *o = &f->run->out;
        FILE *out = o->f;
        char window[32];

        if (q->outcome == SEQUENCE_OK) {
                fputs(color(o, q->backend_error ? ANSI_RED : ANSI_GREEN), out);
                if (q->n_failures == 0)
                        fprintf(out,
                                "-- sequence ended: connected at the first attempt%s",
                                q->pattern == PATTERN_BACKEND_ERROR         ? "; forwarding failed"
                                        : q->pattern == PATTERN_BAD_REQUEST ? "; a request failed"
                                                                            : "");
                else
                        fprintf(out,
                                "-- sequence ended: connected after %u failed attempt%s",
                                q->n_failures,
                                q->n_failures == 1 ? "" : "s");
        } else {
                int64_t w = f->run->params.retry_window_us;

                if (w % (60 * USEC_PER_SEC) == 0)
                        (void) snprintf(window, sizeof window, "%" PRId64 " min", w / (60 * USEC_PER_SEC));
                else if (w % USEC_PER_SEC == 0) /* not "1e+03 s" */
                        (void) snprintf(window, sizeof window, "%" PRId64 " s", w / USEC_PER_SEC);
                else
                        (void) snprintf(window, sizeof window, "%.3g s", (double) w / 1e6);
                fputs(color(o, ANSI_RED), out);
                /* within 80 columns up to 1234 failures and "10 min" */
                fprintf(out,
                        "-- sequence abandoned: %u failed attempt%s, no success in %s (retry window)",
                        q->n_failures,
                        q->n_failures == 1 ? "" : "s",
                        window);
        }
        fputs(color(o, ANSI_RESET), out);
        fputc('\n', out);
}

static int follow_print_sequence(Follow *f, const Sequence *q) {
        Capture c;
        int r;

        if (!f->run->all && sequence_is_clean(q))
                return 0;
        labels_seal(f);
        r = capture_begin(&c, &f->sequences_out);
        if (r < 0)
                return r;
        report_output_sequence_labelled(&f->sequences_out, q, f->labels);
        r = capture_end(&c);
        if (r >= 0) {
                if (f->run->out.mode == OUTPUT_TABLE)
                        follow_sequence_headline(f, q);
                follow_emit(f, "sequence", c.buf, c.len, NULL);
        }
        free(c.buf);
        return r;
}

/* ---- grouping, per key ---- */

static FollowKey *follow_key_free(FollowKey *k) {
        if (!k)
                return NULL;
        sequencer_free(k->sequencer);
        FOREACH_ARRAY(p, k->pending, k->n_pending)
                attempt_free(p->attempt);
        free(k->pending);
        attempt_free(k->primer);
        free(k->key);
        free(k);
        return NULL;
}

static void follow_key_remove(Follow *f, FollowKey *k) {
        hashmap_remove(&f->keys, &k->map);
        if (k->prev)
                k->prev->next = k->next;
        else
                f->keys_head = k->next;
        if (k->next)
                k->next->prev = k->prev;
        follow_key_free(k);
}

/* A handed-out sequence: its attempts are the first pending ones. */
static int on_key_sequence(const Sequence *q, void *userdata) {
        FollowKey *k = userdata;
        size_t n;

        if (k->skip) {
                k->skip = false;
                return 0;
        }
        n = MIN((size_t) q->n_attempts, k->n_fed);
        for (size_t i = 0; i + 1 < n; i++)
                attempt_free(k->pending[i].attempt);
        if (n > 0) {
                attempt_free(k->primer);
                k->primer = q->outcome == SEQUENCE_OK ? k->pending[n - 1].attempt
                                                      : attempt_free(k->pending[n - 1].attempt);
        }
        memmove(k->pending, k->pending + n, (k->n_pending - n) * sizeof *k->pending);
        k->n_pending -= n;
        k->n_fed -= n;
        return follow_print_sequence(k->follow, q);
}

static int follow_key_new_sequencer(FollowKey *k) {
        k->sequencer = sequencer_free(k->sequencer);
        k->n_fed = 0;
        k->advanced_us = INT64_MIN;
        return sequencer_new(&k->follow->run->params, on_key_sequence, k, &k->sequencer);
}

static int follow_key_feed_one(FollowKey *k, Attempt *a) {
        /* a may be freed by the handler before sequencer_feed() returns */
        k->last_us = MAX(k->last_us, a->started_us);
        return sequencer_feed_host(k->sequencer, a, k->follow->host);
}

/* Feeds the pending attempts that have settled, in started order (stops at the first that has not). */
static int follow_key_feed(FollowKey *k, int64_t now_mono) {
        int r;

        /* what was recorded before the start (arrived_us 0) has settled: the backlog's attempts are fed as
         * they are read, so that a key's pending ones are those of its open sequence, not the whole range
         * (each sequence handed out moves them: quadratic in a key's attempts) */
        while (k->n_fed < k->n_pending &&
               (k->pending[k->n_fed].arrived_us == 0 ||
                k->pending[k->n_fed].arrived_us + FOLLOW_SETTLE_US <= now_mono)) {
                Attempt *a = k->pending[k->n_fed++].attempt;

                r = follow_key_feed_one(k, a);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* After an attempt arrived that started before one already fed: the key's sequencer anew, fed with the
 * primer and what is pending. */
static int follow_key_rebuild(FollowKey *k, int64_t now_mono) {
        int r;

        r = follow_key_new_sequencer(k);
        if (r < 0)
                return r;
        if (k->primer) {
                k->skip = true;
                r = follow_key_feed_one(k, k->primer);
                if (r < 0)
                        return r;
        }
        return follow_key_feed(k, now_mono);
}

static bool attempt_before(const Attempt *a, const Attempt *b) {
        return a->started_us < b->started_us || (a->started_us == b->started_us && a->id < b->id);
}

/* Takes a (a copy of the grouping columns). */
static int follow_key_add(FollowKey *k, Attempt *a, int64_t arrived_us) {
        size_t i = k->n_pending;
        bool late;

        if (k->n_pending >= k->n_allocated) {
                size_t n = MAX(k->n_allocated * 2, (size_t) 8);
                FollowPending *p = reallocarray(k->pending, n, sizeof *p);

                if (!p) {
                        attempt_free(a);
                        return -ENOMEM;
                }
                k->pending = p;
                k->n_allocated = n;
        }
        while (i > 0 && attempt_before(a, k->pending[i - 1].attempt))
                i--;
        memmove(k->pending + i + 1, k->pending + i, (k->n_pending - i) * sizeof *k->pending);
        k->pending[i] = (FollowPending){.attempt = a, .arrived_us = arrived_us};
        k->n_pending++;
        late = i < k->n_fed || (k->primer && attempt_before(a, k->primer)) || a->started_us < k->advanced_us;
        if (late)
                return follow_key_rebuild(k, arrived_us);
        return follow_key_feed(k, arrived_us);
}

static int follow_key_string(const Attempt *a, char **ret, size_t *ret_len) {
        char client[SEQUENCE_CLIENT_MAX];
        const char *fp = sequence_no_hello_kind(a) ?: a->ja4_stable;
        size_t lc, lf, n;
        char *k;

        sequence_client_key(a->peer_addr, client);
        lc = strlen(client);
        lf = strlen(strempty(fp));
        n = lc + 1 + lf + 1 + 1 + a->sni.len;
        k = malloc(n + 1);
        if (!k)
                return -ENOMEM;
        memcpy(k, client, lc + 1);
        memcpy(k + lc + 1, strempty(fp), lf + 1);
        k[lc + lf + 2] = a->sni.data ? '1' : '0';
        if (a->sni.len > 0)
                memcpy(k + lc + lf + 3, a->sni.data, a->sni.len);
        k[n] = '\0';
        *ret = k;
        *ret_len = n;
        return 0;
}

static int follow_group(Follow *f, const Attempt *a, int64_t arrived_us) {
        _cleanup_free_ char *key = NULL;
        Attempt *copy = NULL;
        FollowKey *k = NULL;
        size_t len;
        uint64_t h;
        int r;

        r = follow_key_string(a, &key, &len);
        if (r < 0)
                return r;
        h = hash_finish(hash_bytes(HASH_SEED, key, len));
        HASHMAP_FOREACH_CHAIN(m, &f->keys, h) {
                FollowKey *e = (FollowKey *) m;

                if (m->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) {
                        k = e;
                        break;
                }
        }
        if (!k) {
                k = calloc(1, sizeof *k);
                if (!k)
                        return -ENOMEM;
                k->follow = f;
                k->key = TAKE_PTR(key);
                k->key_len = len;
                k->last_us = INT64_MIN;
                r = follow_key_new_sequencer(k);
                if (r < 0 || hashmap_put(&f->keys, &k->map, h) < 0) {
                        follow_key_free(k);
                        return -ENOMEM;
                }
                k->next = f->keys_head;
                if (k->next)
                        k->next->prev = k;
                f->keys_head = k;
        }
        r = attempt_dup_grouping(a, &copy);
        if (r < 0)
                return r;
        return follow_key_add(k, copy, arrived_us);
}

static int64_t now_monotonic_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Time passed: groups the attempts that have settled, hands out the sequences whose retry window passed,
 * forgets the keys that are done. ret_delay_us: how long until this has something to do (INT64_MAX:
 * nothing). */
static int follow_advance(Follow *f, int64_t *ret_delay_us) {
        int64_t hold = follow_hold_us(f), delay = INT64_MAX;
        int64_t now = now_realtime_us(), mono = now_monotonic_us();
        int r;

        for (FollowKey *k = f->keys_head, *n; k; k = n) {
                int64_t deadline = k->last_us + hold + 1 + FOLLOW_ABANDON_GRACE_US;

                n = k->next;
                r = follow_key_feed(k, mono);
                if (r < 0)
                        return r;
                if (k->n_fed < k->n_pending) {
                        delay = MIN(delay, k->pending[k->n_fed].arrived_us + FOLLOW_SETTLE_US - mono);
                        continue;
                }
                if (k->last_us != INT64_MIN && deadline > now) {
                        delay = MIN(delay, deadline - now);
                        continue;
                }
                /* every attempt that started until then is in, we assume */
                k->advanced_us = now - FOLLOW_ABANDON_GRACE_US;
                r = sequencer_advance(k->sequencer, k->advanced_us);
                if (r < 0)
                        return r;
                if (k->n_pending == 0)
                        follow_key_remove(f, k);
        }
        *ret_delay_us = MAX(delay, 0);
        return 0;
}

/* ---- reading ---- */

static bool in_range(const Follow *f, const Attempt *a) {
        return a->started_us >= f->run->filter.since_us && a->started_us < f->run->filter.until_us;
}

/* One attempt: its line, then its grouping. */
static int follow_attempt(Follow *f, const Attempt *a, int64_t arrived_us) {
        int r;

        if (!report_filter_match(&f->run->filter, a))
                return 0;
        r = follow_print_attempt(f, a);
        if (r < 0)
                return r;
        return f->grouping ? follow_group(f, a, arrived_us) : 0;
}

static int on_backlog_attempt(const Attempt *a, void *userdata) {
        Follow *f = userdata;
        int r = follow_attempt(f, a, 0);

        if (r >= 0 && ferror(f->run->out.f))
                r = -EIO;
        return r;
}

/* What the database holds in the range: read in one snapshot, in started order as the batch report reads
 * it, with the labels of the whole range. */
static int follow_backlog(Follow *f) {
        int64_t last = 0;
        int r;

        r = report_db_snapshot_begin(f->db, &last);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %s", f->path, report_db_error(f->db));
        r = report_db_foreach_user_agent(f->db, &f->run->filter, on_label, f);
        if (r >= 0)
                r = report_db_foreach_attempt(f->db, &f->run->filter, true, on_backlog_attempt, f);
        report_db_snapshot_end(f->db);
        if (r == -EIO && ferror(f->run->out.f)) {
                /* a write failed: the flush after this tells a reader that went away (tlsreport -f |
                 * head, status 0) from another error */
                f->last_id = last;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %s", f->path, report_db_error(f->db));
        f->last_id = last;
        return 0;
}

static int on_new_attempt(const Attempt *a, void *userdata) {
        Follow *f = userdata;
        Attempt *copy;
        int r;

        if (!in_range(f, a))
                return 0;
        if (a->outcome == OUTCOME_OK) {
                r = labels_add(f, a->ja4_stable, &a->user_agent);
                if (r < 0)
                        return r;
        }
        if (!report_filter_match(&f->run->filter, a))
                return 0;
        if (f->n_batch >= f->n_batch_allocated) {
                size_t n = MAX(f->n_batch_allocated * 2, (size_t) 64);
                Attempt **p = reallocarray(f->batch, n, sizeof *p);

                if (!p)
                        return -ENOMEM;
                f->batch = p;
                f->n_batch_allocated = n;
        }
        r = attempt_dup(a, &copy);
        if (r < 0)
                return r;
        f->batch[f->n_batch++] = copy;
        return 0;
}

/* The rows recorded since the last read, in the order they were recorded. All of them are read before any
 * is written: their successes label the failures among them. */
static int follow_read(Follow *f) {
        int64_t arrived;
        int r;

        r = report_db_foreach_attempt_after(f->db, f->last_id, on_new_attempt, f, &f->last_id);
        arrived = now_monotonic_us();
        for (size_t i = 0; i < f->n_batch; i++) {
                if (r >= 0)
                        r = follow_attempt(f, f->batch[i], arrived);
                f->batch[i] = attempt_free(f->batch[i]);
        }
        f->n_batch = 0;
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %s", f->path, report_db_error(f->db));
        return 0;
}

/* Opens the database if it is there and readable as one: a database that the daemon is creating is not,
 * for a moment. Returns 1 when open, 0 when it is to be waited for. */
static int follow_open(Follow *f) {
        struct stat st;
        int r;

        r = report_db_open(f->path, &f->db);
        if (r >= 0 && !f->host && report_db_host(f->db, f->path, &f->host) < 0)
                return log_oom();
        if (r >= 0) {
                f->wal = report_db_is_wal(f->db);
                if (report_db_data_version(f->db, &f->data_version) < 0)
                        f->data_version = -1;
        }
        if (r == -ENOENT || r == -EMEDIUMTYPE || r == -EBUSY) {
                if (!f->waiting_noted)
                        log_notice(
                                "%s %s; waiting for it.",
                                f->path,
                                r == -ENOENT          ? "does not exist yet"
                                        : r == -EBUSY ? "is locked"
                                                      : "is not a tlswatch database (yet)");
                f->waiting_noted = true;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to open database %s: %m", f->path);
        if (stat(f->path, &st) < 0) {
                f->db = report_db_close(f->db);
                return 0;
        }
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->waiting_noted = false;
        r = follow_backlog(f);
        return r < 0 ? r : 1;
}

/* A connection opened while the daemon was creating the database may go on reading an old snapshot for
 * good: the WAL is written, and PRAGMA data_version, which changes with every commit of another connection,
 * does not. When a wake finds that (also the case while a commit is being written), a fresh connection
 * tells: if it sees rows that ours does not, it replaces ours. */
static int follow_check_stale(Follow *f, bool wal_written, int64_t last_before) {
        _cleanup_(report_db_closep) ReportDb *fresh = NULL;
        int64_t v, max = 0;

        if (report_db_data_version(f->db, &v) < 0)
                return 0;
        if (!wal_written || v != f->data_version || f->last_id != last_before) {
                f->data_version = v;
                return 0;
        }
        if (report_db_peek_last_id(f->path, &max) < 0 || max <= f->last_id)
                return 0;
        if (report_db_open(f->path, &fresh) < 0)
                return 0;
        log_debug("The connection to %s missed commits; reading it anew.", f->path);
        report_db_close(f->db);
        f->db = TAKE_PTR(fresh);
        f->wal = report_db_is_wal(f->db);
        if (report_db_data_version(f->db, &f->data_version) < 0)
                f->data_version = -1;
        return 1;
}

/* Whether the database we have open is still the file at the path (the daemon opens a new one when it is
 * removed or replaced). */
static bool follow_same_file(Follow *f) {
        struct stat st;

        return stat(f->path, &st) >= 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

static void follow_done(Follow *f) {
        /* the tables' state; nothing is held back when streaming, and the capture files are closed */
        f->attempts_out.f = f->sequences_out.f = NULL;
        report_output_done(&f->attempts_out);
        report_output_done(&f->sequences_out);
        while (f->keys_head)
                follow_key_remove(f, f->keys_head);
        hashmap_done(&f->keys);
        f->labels = report_labels_free(f->labels);
        free(f->host);
        f->host = NULL;
        f->db = report_db_close(f->db);
        free(f->batch);
}

/* Reads the inotify events: ret_db when one concerns the database file, ret_any when one concerns it or
 * its WAL, ret_files when the WAL or the shared-memory file was created or removed. */
static int follow_inotify_read(
        int fd, const char *name, bool *ret_db, bool *ret_any, bool *ret_files, bool *ret_wal_written) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        size_t l = strlen(name);

        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *) p;

                        if (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
                                return -ENOENT; /* the directory itself went away */
                        if (e->len > 0 && strncmp(e->name, name, l) == 0) {
                                const char *rest = e->name + l;

                                bool wal = streq(rest, "-wal"), shm = streq(rest, "-shm");

                                if (*rest == '\0')
                                        *ret_db = *ret_any = true;
                                else if (wal)
                                        *ret_any = true;
                                if (wal && (e->mask & IN_MODIFY))
                                        *ret_wal_written = true;
                                if ((wal || shm) &&
                                    (e->mask & (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM)))
                                        *ret_files = *ret_any = true;
                        }
                        if (e->mask & IN_Q_OVERFLOW)
                                *ret_db = *ret_any = true;
                        p += sizeof *e + e->len;
                }
        }
}

/* Whether the output is a pipe that nobody reads any more. */
static bool output_gone(FILE *f) {
        struct pollfd p = {.fd = fileno(f)};

        return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

int report_follow(const char *verb, ReportRun *run, const char *path) {
        _cleanup_(follow_done) Follow f = {
                .run = run,
                .path = path,
                .grouping = streq(verb, "sequences"),
        };
        _cleanup_close_ int sfd = -EBADF, ifd = -EBADF;
        _cleanup_free_ char *dir_copy = NULL, *name_copy = NULL;
        sigset_t mask;
        int r;

        if (report_labels_new(&f.labels) < 0 || hashmap_init(&f.keys, 64) < 0)
                return log_oom();
        f.attempts_out = f.sequences_out = (ReportOutput){
                .mode = run->out.mode,
                .color = run->out.color,
                .ascii = run->out.ascii,
                .width = run->out.width,
                .full = run->out.full,
                .streaming = true, /* each line written by the call that gives it */
        };
        f.sequences_out.header_done = true; /* the headline (follow_sequence_headline()) says what it is */

        dir_copy = strdup(path);
        name_copy = strdup(path);
        if (!dir_copy || !name_copy)
                return log_oom();
        f.name = basename(name_copy);

        /* Ctrl-C and SIGTERM end the loop between two lines; a reader that went away (EPIPE) too */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                return log_error_errno(errno, "Failed to create signalfd: %m");
        (void) signal(SIGPIPE, SIG_IGN);

        ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd < 0)
                return log_error_errno(errno, "Failed to create inotify watch: %m");
        if (inotify_add_watch(
                    ifd,
                    dirname(dir_copy),
                    IN_CREATE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF |
                            IN_MOVE_SELF) < 0)
                return log_error_errno(errno, "Failed to watch %s: %m", dir_copy);

        for (bool changed = true, db_changed = true, files_changed = false, wal_written = false;;) {
                struct pollfd p[3] = {
                        {.fd = sfd, .events = POLLIN},
                        {.fd = ifd, .events = POLLIN},
                        {.fd = fileno(run->out.f)}, /* POLLERR: the pipe's reader went away */
                };
                int64_t delay, last_before;
                int timeout;

                if (f.db && db_changed && !follow_same_file(&f)) {
                        log_notice("%s was removed or replaced; following the new one.", path);
                        f.db = report_db_close(f.db);
                }
                if (!f.db && changed) {
                        r = follow_open(&f);
                        if (r < 0)
                                return r;
                } else if (f.db && changed) {
                        if (!f.wal || files_changed) {
                                /* SQLite does not expect its WAL and shared memory to be removed under a
                                 * connection (the last writer's close does that: the daemon's store opens
                                 * the database anew after migrating it or when it stops), nor a database
                                 * opened before the daemon switched it to WAL: a connection anew, reading on
                                 * after the last id */
                                f.db = report_db_close(f.db);
                                r = report_db_open(path, &f.db);
                                if (r < 0)
                                        return log_error_errno(r, "Failed to open database %s: %m", path);
                                f.wal = report_db_is_wal(f.db);
                                if (report_db_data_version(f.db, &f.data_version) < 0)
                                        f.data_version = -1;
                        }
                        last_before = f.last_id;
                        r = follow_read(&f);
                        if (r >= 0 && follow_check_stale(&f, wal_written, last_before) > 0)
                                r = follow_read(&f);
                        if (r < 0)
                                return r;
                }
                r = follow_advance(&f, &delay);
                if (r < 0)
                        return r == -ENOMEM ? log_oom() : r;
                if (fflush(run->out.f) != 0 || ferror(run->out.f))
                        /* the reader went away: the end, quietly */
                        return errno == EPIPE || output_gone(run->out.f)
                                ? 0
                                : log_error_errno(errno > 0 ? errno : EIO, "Failed to write: %m");

                timeout = delay == INT64_MAX ? -1 : (int) MIN((delay + 999) / 1000, (int64_t) INT_MAX);
                r = poll(p, ELEMENTSOF(p), timeout);
                if (r < 0 && errno != EINTR)
                        return log_error_errno(errno, "poll() failed: %m");
                if (p[0].revents & POLLIN)
                        return 0; /* SIGINT or SIGTERM: everything written is flushed, nothing is cut */
                if (p[2].revents & (POLLERR | POLLHUP))
                        return 0; /* tlsreport -f | head: head is done */
                changed = db_changed = files_changed = wal_written = false;
                if (p[1].revents & POLLIN) {
                        r = follow_inotify_read(
                                ifd, f.name, &db_changed, &changed, &files_changed, &wal_written);
                        if (r == -ENOENT)
                                return log_error_errno(r, "The directory of %s went away.", path);
                        if (r < 0)
                                return log_error_errno(r, "Failed to read inotify events: %m");
                }
        }
}
