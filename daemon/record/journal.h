/* SPDX-License-Identifier: MIT */
#pragma once

/* One structured journal entry per attempt: a readable MESSAGE, a MESSAGE_ID for successful and one for
 * failed attempts (explained in units/tlswatch.catalog), PRIORITY info for failures and debug for
 * successes, SYSLOG_IDENTIFIER=tlswatchd, and TLSWATCH_<COLUMN>=value for every column of the attempts
 * table that is not NULL, losslessly: client-chosen strings go as raw bytes (journal fields may be
 * binary), while MESSAGE only ever holds escaped text (see describe.h). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "attempt.h"

/* Generated with systemd-id128 new; never change them, users filter on them. */
#define TLSWATCH_MESSAGE_ID_HANDSHAKE_OK "b865240ac5e245e1a456c8849da3ab5b"
#define TLSWATCH_MESSAGE_ID_HANDSHAKE_FAILED "14502e3cce2d4b15a6d9fc9ca932feb5"

#define TLSWATCH_SYSLOG_IDENTIFIER "tlswatchd"

typedef enum JournalMode {
        JOURNAL_ALL,
        JOURNAL_FAILURES,
        JOURNAL_NONE,
        _JOURNAL_MODE_MAX,
        _JOURNAL_MODE_INVALID = -EINVAL,
} JournalMode;

const char *journal_mode_to_string(JournalMode m) _pure_;
JournalMode journal_mode_from_string(const char *s) _pure_;

/* Whether an attempt goes to the journal under this --journal mode. */
bool journal_mode_wants(JournalMode mode, const Attempt *a) _pure_;

/* Enough for the 4 fixed fields and one per column, with room to grow. */
#define JOURNAL_FIELDS_MAX 48

/* The fields of one entry, ready for sd_journal_sendv(): every iovec is "NAME=value" and points into
 * buf, the one allocation behind the entry. */
typedef struct JournalFields {
        struct iovec iov[JOURNAL_FIELDS_MAX];
        size_t n;
        char *buf;
        size_t id_slot; /* 1 + the index of the TLSWATCH_ID field, the last one; 0 if none */
} JournalFields;

#define JOURNAL_FIELD_ID "TLSWATCH_ID"

/* Builds the entry for a (whatever the mode). Returns 0, or -ENOMEM. Free with journal_fields_done(). The
 * row id (TLSWATCH_ID) is a's if it has one, and can be given later with journal_fields_set_id(). */
int journal_fields_build(const Attempt *a, JournalFields *ret);
void journal_fields_done(JournalFields *f);
/* Sets TLSWATCH_ID (the row the store gave the record), or leaves it out for an id <= 0. */
void journal_fields_set_id(JournalFields *f, int64_t id);
/* journal_fields_done() and free() of a heap-allocated entry. NULL-safe, returns NULL. */
JournalFields *journal_fields_free(JournalFields *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(JournalFields *, journal_fields_free);

/* A field's value in a built entry (not NUL-terminated: use *ret_len); NULL if absent. For tests. */
const char *journal_fields_get(const JournalFields *f, const char *name, size_t *ret_len);

/* A journald sender off the handshake path: the entry is built by the caller (a few µs), queued, and sent
 * by a thread of its own, so that a slow journald never stalls a worker. The queue is bounded: an entry
 * that does not fit is dropped and counted. */
typedef struct JournalSink JournalSink;

typedef struct JournalSinkStats {
        uint64_t sent, dropped, failed;
        uint64_t no_memory; /* entries that could not be built (out of memory), also dropped */
} JournalSinkStats;

/* Starts the sender thread. With JOURNAL_NONE nothing is started and *ret is NULL. */
int journal_sink_new(JournalMode mode, size_t queue_max, JournalSink **ret);
/* Queues a's entry if the mode wants it. Never blocks on journald. Returns 1 if queued, 0 if filtered out,
 * -ENOBUFS if the queue was full, -ENOMEM. NULL-safe (does nothing). */
int journal_sink_submit(JournalSink *s, const Attempt *a);
/* journal_sink_submit() in two steps, for a caller that learns the row id in between: builds a's entry
 * into *ret if the mode wants it (returns 1; 0 and NULL if not wanted or s is NULL; -ENOMEM, counted),
 * then queues it (takes ownership of f, also on failure; NULL does nothing; returns as submit does). */
int journal_sink_prepare(JournalSink *s, const Attempt *a, JournalFields **ret);
int journal_sink_push(JournalSink *s, JournalFields *f);
void journal_sink_get_stats(JournalSink *s, JournalSinkStats *ret);
/* Sends what is queued, stops the thread and frees everything. NULL-safe, returns NULL. */
JournalSink *journal_sink_free(JournalSink *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(JournalSink *, journal_sink_free);
