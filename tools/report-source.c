/* SPDX-License-Identifier: MIT */
/* Where tlsreport's verbs read attempts: databases (several merged by start time, each one server's) or a
 * journal (the local one, a systemd-journal-remote directory, files), with the host of every attempt. */
#include <assert.h>
#include <glob.h>
#include <systemd/sd-journal.h>

#include "attempt-sql.h"
#include "hashmap.h"
#include "journal.h"
#include "log.h"
#include "report.h"

#define STRLEN(s) (sizeof(s "") - 1)
#define SWAP_TWO(x, y)               \
        do {                         \
                typeof(x) _t_ = (x); \
                (x) = (y);           \
                (y) = _t_;           \
        } while (0)

static char **strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

typedef struct Host {
        HashEntry map; /* first */
        struct Host *next;
        char name[];
} Host;

typedef struct SourceDb {
        ReportDb *db;
        const char *host;
        bool owned;
} SourceDb;

struct ReportSource {
        SourceDb *dbs;
        size_t n_dbs;
        sd_journal *journal;
        bool journal_local;
        HashMap hosts; /* of Host: every host name seen, interned */
        Host *hosts_list;
        size_t n_hosts;
        ReportDb *error_db; /* the database that failed last */
        int journal_error;

        /* the journal entry being read: its strings, copied (journal data is only valid until the next
         * read), at offsets until the entry is complete */
        char *arena;
        size_t arena_size, arena_used;
};

int report_source_new(ReportSource **ret) {
        ReportSource *s = calloc(1, sizeof *s);

        if (!s)
                return -ENOMEM;
        if (hashmap_init(&s->hosts, 16) < 0) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

ReportSource *report_source_free(ReportSource *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_dbs; i++)
                if (s->dbs[i].owned)
                        report_db_close(s->dbs[i].db);
        free(s->dbs);
        if (s->journal)
                sd_journal_close(s->journal);
        hashmap_done(&s->hosts);
        for (Host *h = s->hosts_list, *next; h; h = next) {
                next = h->next;
                free(h);
        }
        free(s->arena);
        free(s);
        return NULL;
}

/* The one copy of this host name. NULL on out of memory. */
static const char *host_intern(ReportSource *s, const char *name, size_t len) {
        uint64_t h = hash_finish(hash_bytes(HASH_SEED, name, len));
        Host *e;

        HASHMAP_FOREACH_CHAIN(m, &s->hosts, h) {
                Host *x = (Host *) m;

                if (m->hash == h && strncmp(x->name, name, len) == 0 && x->name[len] == '\0')
                        return x->name;
        }
        e = malloc(sizeof *e + len + 1);
        if (!e)
                return NULL;
        memcpy(e->name, name, len);
        e->name[len] = '\0';
        if (hashmap_put(&s->hosts, &e->map, h) < 0) {
                free(e);
                return NULL;
        }
        e->next = s->hosts_list;
        s->hosts_list = e;
        s->n_hosts++;
        return e->name;
}

int report_source_add_db(ReportSource *s, ReportDb *db, const char *host) {
        SourceDb *p;
        const char *h = NULL;

        if (host) {
                h = host_intern(s, host, strlen(host));
                if (!h)
                        return -ENOMEM;
        }
        p = realloc(s->dbs, (s->n_dbs + 1) * sizeof *p);
        if (!p)
                return -ENOMEM;
        s->dbs = p;
        s->dbs[s->n_dbs++] = (SourceDb){.db = db, .host = h};
        return 0;
}

int report_source_add_database(ReportSource *s, const char *path) {
        _cleanup_(report_db_closep) ReportDb *db = NULL;
        _cleanup_free_ char *host = NULL;
        int r;

        r = report_db_open(path, &db);
        if (r < 0)
                return r;
        r = report_db_host(db, path, &host);
        if (r < 0)
                return r;
        r = report_source_add_db(s, db, host);
        if (r < 0)
                return r;
        s->dbs[s->n_dbs - 1].owned = true;
        TAKE_PTR(db);
        return 0;
}

int report_source_open_journal(ReportSource *s, const char *directory, char *const *files) {
        _cleanup_(strv_freep) char **paths = NULL;
        size_t n = 0;
        int r;

        assert(!s->journal);
        s->journal = NULL;
        if (directory)
                r = sd_journal_open_directory(&s->journal, directory, 0);
        else if (files) {
                /* as journalctl --file: each argument a glob, each match a file */
                for (char *const *f = files; *f; f++) {
                        glob_t g = {};
                        int k = glob(*f, GLOB_NOSORT | GLOB_BRACE, NULL, &g);

                        if (k == GLOB_NOMATCH || (k == 0 && g.gl_pathc == 0)) {
                                globfree(&g);
                                return log_error_errno(ENOENT, "No journal file matches %s.", *f);
                        }
                        if (k != 0) {
                                globfree(&g);
                                return log_oom();
                        }
                        char **p = realloc(paths, (n + g.gl_pathc + 1) * sizeof *p);
                        if (!p) {
                                globfree(&g);
                                return log_oom();
                        }
                        paths = p;
                        for (size_t i = 0; i < g.gl_pathc; i++) {
                                paths[n] = strdup(g.gl_pathv[i]);
                                if (!paths[n]) {
                                        globfree(&g);
                                        return log_oom();
                                }
                                paths[++n] = NULL;
                        }
                        globfree(&g);
                }
                r = sd_journal_open_files(&s->journal, (const char **) paths, 0);
        } else {
                /* tlswatchd.service may log to a namespace of its own: read it with the default one */
                r = sd_journal_open_namespace(
                        &s->journal,
                        REPORT_JOURNAL_NAMESPACE,
                        SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_INCLUDE_DEFAULT_NAMESPACE);
                s->journal_local = true;
        }
        if (r >= 0) /* whole values: a User-Agent longer than the default 64 KiB is not cut */
                r = sd_journal_set_data_threshold(s->journal, 0);
        if (r < 0) {
                if (s->journal)
                        sd_journal_close(s->journal);
                s->journal = NULL;
                return log_error_errno(
                        r, "Failed to open the journal%s%s: %m", directory ? " in " : "", strempty(directory));
        }
        return 0;
}

bool report_source_is_journal(const ReportSource *s) {
        return s->journal;
}

bool report_source_many_hosts(const ReportSource *s, const ReportFilter *f) {
        if (f->n_hosts == 1)
                return false;
        return s->journal || s->n_dbs > 1;
}

const char *report_source_error(ReportSource *s) {
        if (s->journal)
                return s->journal_error < 0 ? strerror(-s->journal_error) : "journal error";
        return report_db_error(s->error_db);
}

/* ---- databases: merged by (started_us, host, id) ---- */

/* The order attempts are handed out in, whatever the source: time, then host name, then id. */
static int attempt_order(const Attempt *a, const char *ha, const Attempt *b, const char *hb) {
        int c;

        if (a->started_us != b->started_us)
                return a->started_us < b->started_us ? -1 : 1;
        c = strcmp(strempty(ha), strempty(hb));
        if (c != 0)
                return c;
        return a->id < b->id ? -1 : a->id > b->id;
}

typedef struct DbCursor {
        ReportDbCursor *cursor;
        Attempt current;
        bool has;
} DbCursor;

static int
dbs_foreach_attempt(ReportSource *s, const ReportFilter *f, bool full, ReportSourceHandler h, void *userdata) {
        _cleanup_free_ DbCursor *c = NULL;
        size_t n = 0;
        int r = 0;

        c = calloc(MAX(s->n_dbs, 1u), sizeof *c);
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_dbs; i++) {
                if (!report_filter_match_host(f, s->dbs[i].host))
                        continue;
                s->error_db = s->dbs[i].db;
                r = report_db_cursor_open(s->dbs[i].db, f, full, &c[i].cursor);
                if (r < 0)
                        goto finish;
                r = report_db_cursor_next(c[i].cursor, &c[i].current);
                if (r < 0)
                        goto finish;
                c[i].has = r > 0;
                n += c[i].has;
        }
        while (n > 0) {
                size_t best = SIZE_MAX;

                for (size_t i = 0; i < s->n_dbs; i++)
                        if (c[i].has &&
                            (best == SIZE_MAX ||
                             attempt_order(
                                     &c[i].current, s->dbs[i].host, &c[best].current, s->dbs[best].host) < 0))
                                best = i;
                r = h(&c[best].current, s->dbs[best].host, userdata);
                if (r < 0)
                        goto finish;
                s->error_db = s->dbs[best].db;
                r = report_db_cursor_next(c[best].cursor, &c[best].current);
                if (r < 0)
                        goto finish;
                if (r == 0) {
                        c[best].has = false;
                        n--;
                }
        }
        r = 0;
finish:
        for (size_t i = 0; i < s->n_dbs; i++)
                report_db_cursor_free(c[i].cursor);
        return r;
}

/* ---- the journal ---- */

/* The TLSWATCH_* field names, sorted, with their columns: found by bisection for every field of every
 * entry. */
typedef struct FieldName {
        const char *name; /* without "TLSWATCH_" */
        size_t len;
        const AttemptColumn *column;
} FieldName;

static FieldName field_names[_ATTEMPT_COLUMN_MAX];

static int field_name_compare(const void *a, const void *b) {
        return strcmp(((const FieldName *) a)->name, ((const FieldName *) b)->name);
}

static void field_names_init(void) {
        if (field_names[0].name)
                return;
        FOREACH_ATTEMPT_COLUMN(c) {
                FieldName *f = &field_names[c - attempt_columns];

                f->name = c->journal + STRLEN("TLSWATCH_");
                f->len = strlen(f->name);
                f->column = c;
        }
        qsort(field_names, _ATTEMPT_COLUMN_MAX, sizeof field_names[0], field_name_compare);
}

static const AttemptColumn *field_column(const char *name, size_t len) {
        size_t lo = 0, hi = _ATTEMPT_COLUMN_MAX;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                const FieldName *f = &field_names[mid];
                int c = memcmp(name, f->name, MIN(len, f->len));

                if (c == 0)
                        c = len < f->len ? -1 : len > f->len;
                if (c == 0)
                        return f->column;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* Copies len bytes and a NUL into the arena; returns the offset, or SIZE_MAX on out of memory. */
static size_t arena_put(ReportSource *s, const void *p, size_t len) {
        size_t at = s->arena_used;

        if (s->arena_used + len + 1 > s->arena_size) {
                size_t n = MAX(s->arena_size * 2, s->arena_used + len + 1 + 4096);
                char *a = realloc(s->arena, n);

                if (!a)
                        return SIZE_MAX;
                s->arena = a;
                s->arena_size = n;
        }
        memcpy(s->arena + at, p, len);
        s->arena[at + len] = '\0';
        s->arena_used += len + 1;
        return at;
}

/* The current entry as an attempt, its strings in the arena (valid until the next entry), and its host.
 * Returns 1, 0 for an entry that is not an attempt (no TLSWATCH_STARTED_US), or -ENOMEM. Only the wanted
 * columns are set; the others hold their absent values. */
static int journal_read_entry(ReportSource *s, uint64_t want, Attempt *a, const char **ret_host) {
        struct {
                const AttemptColumn *c;
                size_t at, len;
        } text[_ATTEMPT_COLUMN_MAX];
        size_t n_text = 0, host_at = SIZE_MAX, host_len = 0;
        bool started = false;
        const void *data;
        size_t len;
        int r;

        attempt_init(a);
        s->arena_used = 0;
        sd_journal_restart_data(s->journal);
        while ((r = sd_journal_enumerate_available_data(s->journal, &data, &len)) > 0) {
                const char *p = data, *eq;
                const AttemptColumn *c;
                const char *value;
                size_t vlen, at;

                if (len > STRLEN("_HOSTNAME=") && memcmp(p, "_HOSTNAME=", STRLEN("_HOSTNAME=")) == 0) {
                        host_len = len - STRLEN("_HOSTNAME=");
                        host_at = arena_put(s, p + STRLEN("_HOSTNAME="), host_len);
                        if (host_at == SIZE_MAX)
                                return -ENOMEM;
                        continue;
                }
                if (len <= STRLEN("TLSWATCH_") || memcmp(p, "TLSWATCH_", STRLEN("TLSWATCH_")) != 0)
                        continue;
                eq = memchr(p, '=', len);
                if (!eq)
                        continue;
                c = field_column(p + STRLEN("TLSWATCH_"), (size_t) (eq - p) - STRLEN("TLSWATCH_"));
                if (!c || !(want & ATTEMPT_COLUMN_BIT(c - attempt_columns)))
                        continue;
                value = eq + 1;
                vlen = len - (size_t) (value - p);
                if (c->kind == ATTEMPT_KIND_TEXT || c->kind == ATTEMPT_KIND_RAW) {
                        if (n_text >= ELEMENTSOF(text)) /* fields given more than once: the last that fits */
                                continue;
                        at = arena_put(s, value, vlen);
                        if (at == SIZE_MAX)
                                return -ENOMEM;
                        text[n_text++] = (typeof(text[0])){c, at, vlen};
                        continue;
                }
                if (c->kind == ATTEMPT_KIND_ADDR) {
                        char *field = (char *) a + c->offset;

                        memcpy(field, value, MIN(vlen, sizeof(AttemptAddr) - 1));
                        field[MIN(vlen, sizeof(AttemptAddr) - 1)] = '\0';
                        continue;
                }
                if (attempt_column_is_enum(c)) {
                        int max = attempt_column_enum_max(c);

                        for (int i = 0; i < max; i++) {
                                const char *name = attempt_column_enum_name(c, i);

                                if (name && strlen(name) == vlen && memcmp(name, value, vlen) == 0) {
                                        attempt_column_set_int(a, c, i);
                                        break;
                                }
                        }
                        continue;
                }
                /* integers: at most 20 digits and a sign */
                char buf[32], *end;
                int64_t v;

                if (vlen == 0 || vlen >= sizeof buf)
                        continue;
                memcpy(buf, value, vlen);
                buf[vlen] = '\0';
                errno = 0;
                if (c->kind == ATTEMPT_KIND_UINT64)
                        v = (int64_t) strtoull(buf, &end, 10);
                else
                        v = strtoll(buf, &end, 10);
                if (errno != 0 || *end != '\0')
                        continue;
                attempt_column_set_int(a, c, v);
                started = started || c == &attempt_columns[ATTEMPT_COLUMN_started_us];
        }
        if (r < 0)
                return r;
        /* the arena does not move any more: point the strings into it */
        for (size_t i = 0; i < n_text; i++) {
                char *field = (char *) a + text[i].c->offset;

                if (text[i].c->kind == ATTEMPT_KIND_RAW)
                        *(RawString *) field = (RawString){.data = s->arena + text[i].at, .len = text[i].len};
                else
                        *(char **) field = s->arena + text[i].at;
        }
        *ret_host = host_at == SIZE_MAX ? NULL : host_intern(s, s->arena + host_at, host_len);
        if (host_at != SIZE_MAX && !*ret_host)
                return -ENOMEM;
        return started;
}

static int journal_matches(ReportSource *s, const ReportFilter *f, bool only_ok) {
        int r;

        sd_journal_flush_matches(s->journal);
        r = sd_journal_add_match(s->journal, "MESSAGE_ID=" TLSWATCH_MESSAGE_ID_HANDSHAKE_OK, 0);
        if (r >= 0 && !only_ok)
                r = sd_journal_add_match(s->journal, "MESSAGE_ID=" TLSWATCH_MESSAGE_ID_HANDSHAKE_FAILED, 0);
        for (size_t i = 0; r >= 0 && i < f->n_hosts; i++) {
                _cleanup_free_ char *m = NULL;

                if (asprintf(&m, "_HOSTNAME=%s", f->hosts[i]) < 0)
                        return -ENOMEM;
                r = sd_journal_add_match(s->journal, m, 0);
        }
        if (r < 0)
                return r;
        /* entries from before the window cannot hold attempts that started in it */
        if (f->since_us != INT64_MIN)
                r = sd_journal_seek_realtime_usec(s->journal, (uint64_t) MAX(f->since_us, 0));
        else
                r = sd_journal_seek_head(s->journal);
        return r;
}

/* ---- duplicates ----
 *
 * systemd-journal-upload delivers at least once: after the collector was away it sends again what it had
 * sent in the request that did not complete, and the collector writes those entries twice (same fields,
 * same timestamps, a new seqnum). In the host's file the copies follow the originals, so they come within
 * moments of each other: an attempt is known by its host, start, peer port and id over the last settle
 * window (of journal time), which is enough to drop the copies with bounded memory. */

typedef struct Seen {
        HashEntry map; /* first */
        struct Seen *fifo_next;
        const char *host;
        int64_t started_us, id, written_us;
        uint16_t peer_port;
} Seen;

typedef struct SeenSet {
        HashMap map;
        Seen *head, *tail, *free_list; /* in the order read; spare nodes */
} SeenSet;

static void seen_done(SeenSet *s) {
        for (Seen *x = s->head, *next; x; x = next) {
                next = x->fifo_next;
                free(x);
        }
        for (Seen *x = s->free_list, *next; x; x = next) {
                next = x->fifo_next;
                free(x);
        }
        hashmap_done(&s->map);
        *s = (SeenSet){};
}

static uint64_t seen_hash(const char *host, const Attempt *a) {
        uint64_t h = hash_bytes(HASH_SEED, &host, sizeof host);

        h = hash_bytes(h, &a->started_us, sizeof a->started_us);
        h = hash_bytes(h, &a->id, sizeof a->id);
        return hash_finish(hash_bytes(h, &a->peer_port, sizeof a->peer_port));
}

/* Whether this attempt was read already (then it is a copy); else remembers it. Forgets what was written
 * before forget_before. -ENOMEM on out of memory. */
static int seen_check(SeenSet *s, const char *host, const Attempt *a, int64_t written_us, int64_t forget_before) {
        uint64_t h = seen_hash(host, a);
        Seen *x;

        while (s->head && s->head->written_us < forget_before) {
                x = s->head;
                s->head = x->fifo_next;
                if (!s->head)
                        s->tail = NULL;
                hashmap_remove(&s->map, &x->map);
                x->fifo_next = s->free_list;
                s->free_list = x;
        }
        HASHMAP_FOREACH_CHAIN(m, &s->map, h) {
                x = (Seen *) m;
                if (m->hash == h && x->host == host && x->started_us == a->started_us && x->id == a->id &&
                    x->peer_port == a->peer_port)
                        return 1;
        }
        if (s->free_list) {
                x = s->free_list;
                s->free_list = x->fifo_next;
        } else {
                x = malloc(sizeof *x);
                if (!x)
                        return -ENOMEM;
        }
        *x = (Seen){
                .host = host,
                .started_us = a->started_us,
                .id = a->id,
                .written_us = written_us,
                .peer_port = a->peer_port};
        if (hashmap_put(&s->map, &x->map, h) < 0) {
                free(x);
                return -ENOMEM;
        }
        if (s->tail)
                s->tail->fifo_next = x;
        else
                s->head = x;
        s->tail = x;
        return 0;
}

/* The attempts held to be put back in started order: a binary heap. */
typedef struct Held {
        Attempt *a;
        const char *host;
} Held;

typedef struct Heap {
        Held *items;
        size_t n, allocated;
} Heap;

static bool held_before(const Held *x, const Held *y) {
        return attempt_order(x->a, x->host, y->a, y->host) < 0;
}

static int heap_push(Heap *h, Attempt *a, const char *host) {
        size_t i;

        if (h->n >= h->allocated) {
                size_t n = MAX(h->allocated * 2, 1024u);
                Held *p = realloc(h->items, n * sizeof *p);

                if (!p)
                        return -ENOMEM;
                h->items = p;
                h->allocated = n;
        }
        i = h->n++;
        h->items[i] = (Held){a, host};
        while (i > 0) {
                size_t parent = (i - 1) / 2;

                if (!held_before(&h->items[i], &h->items[parent]))
                        break;
                SWAP_TWO(h->items[i], h->items[parent]);
                i = parent;
        }
        return 0;
}

static Held heap_pop(Heap *h) {
        Held top = h->items[0];
        size_t i = 0;

        h->items[0] = h->items[--h->n];
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;

                if (l < h->n && held_before(&h->items[l], &h->items[m]))
                        m = l;
                if (r < h->n && held_before(&h->items[r], &h->items[m]))
                        m = r;
                if (m == i)
                        break;
                SWAP_TWO(h->items[i], h->items[m]);
                i = m;
        }
        return top;
}

static void heap_done(Heap *h) {
        for (size_t i = 0; i < h->n; i++)
                attempt_free(h->items[i].a);
        free(h->items);
        *h = (Heap){};
}

/* Hands out the held attempts that started before limit, in order. */
static int heap_release(Heap *h, int64_t limit, ReportSourceHandler handler, void *userdata) {
        while (h->n > 0 && h->items[0].a->started_us < limit) {
                Held x = heap_pop(h);
                int r = handler(x.a, x.host, userdata);

                attempt_free(x.a);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int journal_foreach_attempt(
        ReportSource *s, const ReportFilter *f, ReportRead read, ReportSourceHandler h, void *userdata) {
        bool full = read == REPORT_READ_ALL;
        _cleanup_(heap_done) Heap heap = {};
        _cleanup_(seen_done) SeenSet seen = {};
        int64_t written_max = INT64_MIN, stop_after;
        uint64_t want, late = 0, copies = 0;
        int r;

        field_names_init();
        if (hashmap_init(&seen.map, 1024) < 0)
                return -ENOMEM;
        /* the peer port tells attempts of one start time apart, for the duplicates */
        want = (full ? ATTEMPT_COLUMNS_ALL : attempt_columns_grouping()) |
                ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_peer_port);
        if (read == REPORT_READ_USER_AGENT)
                want |= ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_user_agent);
        if (f->ja4)
                want |= ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_ja4);
        r = journal_matches(s, f, false);
        if (r < 0)
                return s->journal_error = r;
        /* an attempt is written when it ends: one that started before until is written by until + the
         * settle window */
        stop_after = f->until_us > INT64_MAX - REPORT_JOURNAL_SETTLE_US
                ? INT64_MAX
                : f->until_us + REPORT_JOURNAL_SETTLE_US;
        while ((r = sd_journal_next(s->journal)) > 0) {
                const char *host = NULL;
                uint64_t written;
                Attempt a, *copy;

                r = sd_journal_get_realtime_usec(s->journal, &written);
                if (r < 0)
                        return s->journal_error = r;
                if ((int64_t) written > stop_after)
                        break;
                written_max = MAX(written_max, (int64_t) written);
                /* nothing that is still to come started this long before the newest entry was written */
                r = heap_release(&heap, written_max - REPORT_JOURNAL_SETTLE_US, h, userdata);
                if (r < 0)
                        return r;

                r = journal_read_entry(s, want, &a, &host);
                if (r < 0)
                        return s->journal_error = r;
                if (r == 0 || a.started_us < f->since_us || a.started_us >= f->until_us ||
                    !report_filter_match(f, &a))
                        continue;
                r = seen_check(&seen, host, &a, (int64_t) written, written_max - REPORT_JOURNAL_SETTLE_US);
                if (r < 0)
                        return r;
                if (r > 0) {
                        copies++;
                        continue;
                }
                if (a.started_us < written_max - REPORT_JOURNAL_SETTLE_US) {
                        /* longer than the settle window (a keep-alive connection): too late to be put
                         * in its place; grouped as if it started now */
                        late++;
                        r = h(&a, host, userdata);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = read != REPORT_READ_GROUPING ? attempt_dup(&a, &copy) : attempt_dup_grouping(&a, &copy);
                if (r < 0)
                        return r;
                if (heap_push(&heap, copy, host) < 0) {
                        attempt_free(copy);
                        return -ENOMEM;
                }
        }
        if (r < 0)
                return s->journal_error = r;
        r = heap_release(&heap, INT64_MAX, h, userdata);
        if (r < 0)
                return r;
        if (late > 0)
                log_debug("%" PRIu64 " attempts lasted longer than the settle window and were read late.", late);
        if (copies > 0)
                log_debug(
                        "%" PRIu64 " entries were copies of attempts read already (sent twice by "
                        "systemd-journal-upload) and were skipped.",
                        copies);
        return 0;
}

static int
journal_foreach_user_agent(ReportSource *s, const ReportFilter *f, ReportUserAgentHandler h, void *userdata) {
        _cleanup_(seen_done) SeenSet seen = {};
        uint64_t want = ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_id) | ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_started_us) |
                ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_peer_port) | ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_ja4_stable) |
                ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_user_agent) | ATTEMPT_COLUMN_BIT(ATTEMPT_COLUMN_outcome);
        int64_t stop_after, written_max = INT64_MIN;
        int r;

        field_names_init();
        if (hashmap_init(&seen.map, 1024) < 0)
                return -ENOMEM;
        r = journal_matches(s, f, true);
        if (r < 0)
                return s->journal_error = r;
        stop_after = f->until_us > INT64_MAX - REPORT_JOURNAL_SETTLE_US
                ? INT64_MAX
                : f->until_us + REPORT_JOURNAL_SETTLE_US;
        while ((r = sd_journal_next(s->journal)) > 0) {
                const char *host;
                uint64_t written;
                Attempt a;

                r = sd_journal_get_realtime_usec(s->journal, &written);
                if (r < 0)
                        return s->journal_error = r;
                if ((int64_t) written > stop_after)
                        break;
                written_max = MAX(written_max, (int64_t) written);
                r = journal_read_entry(s, want, &a, &host);
                if (r < 0)
                        return s->journal_error = r;
                if (r == 0 || a.outcome != OUTCOME_OK || !a.ja4_stable || !a.user_agent.data ||
                    a.started_us < f->since_us || a.started_us >= f->until_us)
                        continue;
                r = seen_check(&seen, host, &a, (int64_t) written, written_max - REPORT_JOURNAL_SETTLE_US);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = h(a.ja4_stable, &a.user_agent, 1, userdata);
                if (r < 0)
                        return r;
        }
        return r < 0 ? (s->journal_error = r) : 0;
}

int report_source_foreach_attempt(
        ReportSource *s, const ReportFilter *f, ReportRead read, ReportSourceHandler h, void *userdata) {
        if (s->journal)
                return journal_foreach_attempt(s, f, read, h, userdata);
        /* the User-Agent is not in the covering index: a database reads the table for it */
        return dbs_foreach_attempt(s, f, read != REPORT_READ_GROUPING, h, userdata);
}

int report_source_foreach_user_agent(
        ReportSource *s, const ReportFilter *f, ReportUserAgentHandler h, void *userdata) {
        if (s->journal)
                return journal_foreach_user_agent(s, f, h, userdata);
        for (size_t i = 0; i < s->n_dbs; i++) {
                int r;

                if (!report_filter_match_host(f, s->dbs[i].host))
                        continue;
                s->error_db = s->dbs[i].db;
                r = report_db_foreach_user_agent(s->dbs[i].db, f, h, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}
