/* SPDX-License-Identifier: MIT */
#pragma once

/* The server's in-memory record of recent attempts, held per client key as tlsreport groups them
 * (sequence_client_key(): the IPv4 address, or the /64 of an IPv6 address), so that the self page can group
 * a visitor's attempts with the core sequencer without reading the database.
 *
 * Bounded: RECENT_BUCKETS buckets of RECENT_WAYS clients each (a client's bucket is chosen by the hash of
 * its key; a new client takes the place of the bucket's least recently active one, except that a
 * connection without a ClientHello never pushes out a client active within the retry window that sent
 * one; each bucket remembers the newest attempt it dropped that way, so that the page can say when a
 * client's history may be incomplete), and per client a ring
 * of its last RECENT_PER_CLIENT attempts (copies). So at most RECENT_BUCKETS * RECENT_WAYS *
 * RECENT_PER_CLIENT = 16,384 attempt copies are held. A copy holds only what the sequencer reads (the
 * ATTEMPT_GROUPING columns: times, outcome, step, alerts, error code, SNI, stable JA4, bytes, how it closed;
 * attempt_dup_grouping()), never a port, a User-Agent, a JA3 string or an error text: the page shows a
 * visitor nothing of other clients' attempts but how their handshakes went, and the daemon keeps no more
 * than that. Its SNI is cut to RECENT_SNI_MAX bytes, so that each copy stays under 1 KiB with the
 * allocator's overhead and the whole record under 16 MiB whatever clients send. What falls out of it is
 * only missing from the page, never from the database.
 *
 * Thread-safe: one mutex per bucket, held for adding one attempt (O(RECENT_WAYS)) or for taking references
 * on one client's attempts (at most RECENT_PER_CLIENT); copying and freeing happen outside it. */

#include <stdatomic.h>
#include <stddef.h>

#include "attempt.h"
#include "sequence.h"

#define RECENT_BUCKETS 64
#define RECENT_WAYS 8
#define RECENT_PER_CLIENT 32
#define RECENT_SNI_MAX 255
#define RECENT_LOST_KEYS 16

/* One held attempt: shared between the record and the pages that read it. */
typedef struct RecentEntry {
        Attempt *attempt;
        atomic_uint n_ref;
} RecentEntry;

typedef struct RecentRecord RecentRecord;

int recent_record_new(RecentRecord **ret);
RecentRecord *recent_record_free(RecentRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(RecentRecord *, recent_record_free);

/* Adds a copy of a under its client key (dropping the client's oldest one when it has
 * RECENT_PER_CLIENT). Returns 0 or -ENOMEM (then nothing is added). */
int recent_record_add(RecentRecord *r, const Attempt *a);

/* References on the attempts held for the client key of peer_addr, in started_us order (ties: in the
 * order in which they were added). Returns how many were written to ret (at most RECENT_PER_CLIENT);
 * release them with recent_entries_unref(). *ret_lost_us (if not NULL): when the newest attempt started
 * that the record did not keep and that may belong to a sequence of this client with the fingerprint
 * ja4_stable (NULL: without a ClientHello): one of its own of that fingerprint beyond RECENT_PER_CLIENT,
 * or any attempt of a client its bucket pushed out or refused before this client got its place; 0 if
 * none. Attempts before then may be missing from what is held. */
size_t recent_record_get(
        RecentRecord *r,
        const char *peer_addr,
        const char *ja4_stable,
        RecentEntry *ret[static RECENT_PER_CLIENT],
        int64_t *ret_lost_us);
void recent_entries_unref(RecentEntry **entries, size_t n);
