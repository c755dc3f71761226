/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <signal.h>
#include <assert.h>
#include <inttypes.h>
#include <systemd/sd-journal.h>

#include "attempt.h"
#include "decimal.h"
#include "describe.h"
#include "escape.h"
#include "journal.h"
#include "log.h"
#include "ring.h"

static const char *const journal_mode_table[_JOURNAL_MODE_MAX] = {
        [JOURNAL_ALL] = "all",
        [JOURNAL_FAILURES] = "failures",
        [JOURNAL_NONE] = "none",
};

const char *journal_mode_to_string(JournalMode m) {
        return m >= 0 && m < _JOURNAL_MODE_MAX ? journal_mode_table[m] : NULL;
}

JournalMode journal_mode_from_string(const char *s) {
        for (int i = 0; s && i < _JOURNAL_MODE_MAX; i++)
                if (streq(s, journal_mode_table[i]))
                        return (JournalMode) i;
        return _JOURNAL_MODE_INVALID;
}

bool journal_mode_wants(JournalMode mode, const Attempt *a) {
        switch (mode) {
        case JOURNAL_ALL: return true;
        /* a handshake that completed but could not be forwarded (the backend is down, or a request was
         * refused) is a failure of the service, which an admin wants to hear of */
        case JOURNAL_FAILURES: return outcome_is_failure(a->outcome) || a->backend_error;
        default: return false;
        }
}

/* Fields are added twice: a first pass (buf == NULL) only measures, the second copies into buf. */
typedef struct Builder {
        JournalFields *f;
        char *buf;
        size_t used;
} Builder;

/* Every column can be a field, plus MESSAGE, MESSAGE_ID, PRIORITY and SYSLOG_IDENTIFIER. */
_Static_assert(JOURNAL_FIELDS_MAX >= _ATTEMPT_COLUMN_MAX + 4, "JOURNAL_FIELDS_MAX too small for the columns");

static void add_field(Builder *b, const char *name, const void *value, size_t len) {
        size_t n = strlen(name);

        if (b->buf) {
                char *p = b->buf + b->used;

                memcpy(p, name, n);
                p[n] = '=';
                if (len > 0)
                        memcpy(p + n + 1, value, len);
                assert(b->f->n < JOURNAL_FIELDS_MAX);
                b->f->iov[b->f->n++] = (struct iovec){.iov_base = p, .iov_len = n + 1 + len};
        }
        b->used += n + 1 + len;
}

static void add_str(Builder *b, const char *name, const char *value) {
        if (value)
                add_field(b, name, value, strlen(value));
}

static void add_int(Builder *b, const char *name, int64_t value) {
        char buf[DECIMAL_MAX];

        add_field(b, name, buf, decimal_from_int64(value, buf));
}

/* Every column of the attempts table that is not NULL, in the table's order, but the row id: the store
 * may give it after the entry is built, so it goes last, in a slot of its own (journal_fields_set_id()). */
static void add_columns(Builder *b, const Attempt *a) {
        FOREACH_ATTEMPT_COLUMN(c) {
                char buf[DECIMAL_MAX];
                const char *p = NULL;
                size_t len = 0;
                int64_t v = 0;

                if (c->flags & ATTEMPT_ROWID)
                        continue;
                switch (attempt_column_value(a, c, &v, &p, &len)) {
                case ATTEMPT_VALUE_NULL: break;
                case ATTEMPT_VALUE_TEXT: add_field(b, c->journal, p, len); break;
                case ATTEMPT_VALUE_INT:
                        if (c->kind == ATTEMPT_KIND_UINT64) /* as the unsigned number it is */
                                add_field(b, c->journal, buf, decimal_from_uint64((uint64_t) v, buf));
                        else
                                add_int(b, c->journal, v);
                        break;
                }
        }
}

/* s itself when it is plain printable ASCII (the common case: our own strings), else an escaped copy in
 * *copy. NULL stays NULL; returns NULL with *copy NULL and s non-NULL only on out of memory. */
static const char *displayable(const char *s, size_t len, char **copy) {
        *copy = NULL;
        if (!s)
                return NULL;
        for (size_t i = 0; i < len; i++)
                if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\')
                        return *copy = escape_display(s, len);
        return s;
}

/* "TLS handshake from 127.0.0.1:51234 failed: <describe> (TLSv1.3, JA4 ...)", or "... completed (...)".
 * Returns a malloc'ed string, or NULL on out of memory. */
static char *journal_message(const Attempt *a) {
        _cleanup_free_ char *what = NULL, *version_copy = NULL, *cipher_copy = NULL, *alpn_copy = NULL,
                            *ja4_copy = NULL, *peer_copy = NULL, *msg = NULL;
        const char *peer, *version, *cipher = NULL, *alpn = NULL, *ja4, *sep = " (";
        size_t peer_len = strnlen(a->peer_addr, sizeof a->peer_addr);
        bool v6 = memchr(a->peer_addr, ':', peer_len);
        size_t size = 0;
        FILE *f;
        bool failed;

        peer = displayable(a->peer_addr, peer_len, &peer_copy);
        if (!peer)
                return NULL;
        version = displayable(a->version, a->version ? strlen(a->version) : 0, &version_copy);
        ja4 = displayable(a->ja4, a->ja4 ? strlen(a->ja4) : 0, &ja4_copy);
        if ((a->version && !version) || (a->ja4 && !ja4))
                return NULL;
        if (a->outcome == OUTCOME_OK) {
                cipher = displayable(a->cipher, a->cipher ? strlen(a->cipher) : 0, &cipher_copy);
                alpn = displayable(a->alpn.data, a->alpn.len, &alpn_copy);
                if ((a->cipher && !cipher) || (a->alpn.data && !alpn))
                        return NULL;
        } else {
                what = attempt_describe(a);
                if (!what)
                        return NULL;
        }

        f = open_memstream(&msg, &size);
        if (!f)
                return NULL;
        fprintf(f,
                "TLS handshake from %s%.*s%s:%u ",
                v6 ? "[" : "",
                (int) (peer_copy ? strlen(peer_copy) : peer_len),
                peer,
                v6 ? "]" : "",
                (unsigned) a->peer_port);
        if (what)
                fprintf(f, "failed: %s", what);
        else
                fputs("completed", f);
        if (version) {
                fprintf(f, "%s%s", sep, version);
                sep = ", ";
        }
        if (cipher) {
                fprintf(f, "%s%s", sep, cipher);
                sep = ", ";
        }
        if (alpn) {
                fprintf(f, "%sALPN %s", sep, alpn);
                sep = ", ";
        }
        if (a->outcome == OUTCOME_OK && a->resumed) {
                fprintf(f, "%sresumed", sep);
                sep = ", ";
        }
        if (a->outcome == OUTCOME_OK && a->hello_retry) {
                fprintf(f, "%safter HelloRetryRequest", sep);
                sep = ", ";
        }
        if (ja4) {
                fprintf(f, "%sJA4 %s", sep, ja4);
                sep = ", ";
        }
        if (sep[0] == ',')
                fputc(')', f);
        /* "request refused (400): ..." and "the client ..." say themselves whose fault it was */
        if (a->backend_error && backend_error_is_client(a->backend_error))
                fprintf(f, "; %s", a->backend_error);
        else if (a->backend_error)
                fprintf(f, "; forwarding failed: %s", a->backend_error);
        failed = ferror(f);
        if (fclose(f) != 0 || failed)
                return NULL;
        return TAKE_PTR(msg);
}

void journal_fields_done(JournalFields *f) {
        free(f->buf);
        *f = (JournalFields){};
}

int journal_fields_build(const Attempt *a, JournalFields *ret) {
        _cleanup_free_ char *msg = journal_message(a);
        bool ok = a->outcome == OUTCOME_OK;
        JournalFields f = {};
        Builder b = {.f = &f};

        if (!msg)
                return -ENOMEM;
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        f.buf = malloc(b.used);
                        if (!f.buf)
                                return -ENOMEM;
                        b.buf = f.buf;
                        b.used = 0;
                }
                add_str(&b, "MESSAGE", msg);
                add_str(&b,
                        "MESSAGE_ID",
                        ok ? TLSWATCH_MESSAGE_ID_HANDSHAKE_OK : TLSWATCH_MESSAGE_ID_HANDSHAKE_FAILED);
                add_int(&b, "PRIORITY", ok && !a->backend_error ? LOG_DEBUG : LOG_INFO);
                add_str(&b, "SYSLOG_IDENTIFIER", TLSWATCH_SYSLOG_IDENTIFIER);
                add_columns(&b, a);
                /* room for the largest id; journal_fields_set_id() writes it and sets the length */
                add_field(&b, JOURNAL_FIELD_ID, NULL, 0);
                b.used += DECIMAL_MAX;
        }
        f.id_slot = f.n;
        journal_fields_set_id(&f, a->id);
        *ret = f;
        return 0;
}

void journal_fields_set_id(JournalFields *f, int64_t id) {
        struct iovec *v;
        size_t n = strlen(JOURNAL_FIELD_ID "=");

        if (f->id_slot == 0)
                return;
        v = &f->iov[f->id_slot - 1];
        /* the slot is the last field; without an id (a record the store dropped) it is left out */
        f->n = id > 0 ? f->id_slot : f->id_slot - 1;
        v->iov_len = n + (id > 0 ? decimal_from_int64(id, (char *) v->iov_base + n) : 0);
}

const char *journal_fields_get(const JournalFields *f, const char *name, size_t *ret_len) {
        size_t n = strlen(name);

        for (size_t i = 0; i < f->n; i++) {
                const char *p = f->iov[i].iov_base;

                if (f->iov[i].iov_len > n && memcmp(p, name, n) == 0 && p[n] == '=') {
                        if (ret_len)
                                *ret_len = f->iov[i].iov_len - n - 1;
                        return p + n + 1;
                }
        }
        return NULL;
}

struct JournalSink {
        JournalMode mode;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        Ring queue; /* of JournalFields * */
        bool stopping;
        JournalSinkStats stats;
};

static void *journal_sink_run(void *userdata) {
        JournalSink *s = userdata;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                JournalFields *f;

                while (s->queue.n == 0 && !s->stopping)
                        pthread_cond_wait(&s->wake, &s->lock);
                f = ring_pop(&s->queue);
                if (!f)
                        break;
                pthread_mutex_unlock(&s->lock);

                int r = sd_journal_sendv(f->iov, (int) f->n);
                journal_fields_free(f);

                pthread_mutex_lock(&s->lock);
                if (r < 0)
                        s->stats.failed++;
                else
                        s->stats.sent++;
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

int journal_sink_new(JournalMode mode, size_t queue_max, JournalSink **ret) {
        JournalSink *s;
        sigset_t all, old;
        int r;

        if (mode == JOURNAL_NONE) {
                *ret = NULL;
                return 0;
        }
        if (queue_max == 0)
                return -EINVAL;
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        r = ring_init(&s->queue, queue_max);
        if (r < 0) {
                free(s);
                return r;
        }
        s->mode = mode;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, NULL);
        /* signals belong to the main thread */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&s->thread, NULL, journal_sink_run, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r == 0)
                (void) pthread_setname_np(s->thread, "tlsw-journal"); /* top -H, ps -L */
        if (r != 0) {
                pthread_mutex_destroy(&s->lock);
                pthread_cond_destroy(&s->wake);
                ring_done(&s->queue);
                free(s);
                return -r;
        }
        *ret = s;
        return 0;
}

JournalFields *journal_fields_free(JournalFields *f) {
        if (f) {
                journal_fields_done(f);
                free(f);
        }
        return NULL;
}

int journal_sink_prepare(JournalSink *s, const Attempt *a, JournalFields **ret) {
        JournalFields *f;
        int r;

        *ret = NULL;
        if (!s || !journal_mode_wants(s->mode, a))
                return 0;
        f = calloc(1, sizeof *f);
        r = f ? journal_fields_build(a, f) : -ENOMEM;
        if (r < 0) {
                free(f);
                pthread_mutex_lock(&s->lock);
                s->stats.no_memory++; /* counted like the queue's drops: STATUS= shows both */
                pthread_mutex_unlock(&s->lock);
                return r;
        }
        *ret = f;
        return 1;
}

int journal_sink_submit(JournalSink *s, const Attempt *a) {
        JournalFields *f;
        int r;

        r = journal_sink_prepare(s, a, &f);
        if (r <= 0)
                return r;
        return journal_sink_push(s, f);
}

int journal_sink_push(JournalSink *s, JournalFields *f) {
        if (!f)
                return 0;
        if (!s) {
                journal_fields_free(f);
                return -EINVAL;
        }
        pthread_mutex_lock(&s->lock);
        if (s->stopping || ring_push(&s->queue, f) < 0) {
                s->stats.dropped++;
                pthread_mutex_unlock(&s->lock);
                journal_fields_free(f);
                return -ENOBUFS;
        }
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        return 1;
}

void journal_sink_get_stats(JournalSink *s, JournalSinkStats *ret) {
        if (!s) {
                *ret = (JournalSinkStats){};
                return;
        }
        pthread_mutex_lock(&s->lock);
        *ret = s->stats;
        pthread_mutex_unlock(&s->lock);
}

JournalSink *journal_sink_free(JournalSink *s) {
        if (!s)
                return NULL;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        ring_done(&s->queue);
        free(s);
        return NULL;
}
