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
 * RECENT_PER_CLIENT = 16,384 attempt copies are held. A copy whose strings exceed RECENT_DETAIL_MAX bytes
 * (only a crafted ClientHello or User-Agent does that: a real client's take about 1.2 KiB) is held without
 * its display-only details (JA3 string, JA4_r/_o/_ro, ALPN offered, versions offered, User-Agent: neither
 * the grouping nor the diagnosis reads them), its error text cut to RECENT_ERROR_TEXT_MAX bytes and its SNI
 * cut to 255 bytes, so that each copy stays
 * under 4 KiB (with the allocator's overhead) and the whole record under 64 MiB whatever clients send. What
 * falls out of it is only missing from the page, never from the database.
 *
 * Who a fingerprint's client is: per stable JA4 (at most RECENT_FAMILIES of them, the least recently seen
 * making room), the User-Agent summaries of its successful attempts from any client since the start, at
 * most RECENT_AGENTS_MAX distinct ones counted as tlsreport's labels count them, so that the page names a
 * client as `tlsreport sequences` does (which counts the database's successes of that fingerprint).
 *
 * Thread-safe: one mutex per bucket, held for adding one attempt (O(RECENT_WAYS)) or for taking references
 * on one client's attempts (at most RECENT_PER_CLIENT); copying and freeing happen outside it. */

#include <stdatomic.h>
#include <stddef.h>

#include "attempt.h"
#include "sequence.h"
#include "useragent.h"

#define RECENT_BUCKETS 64
#define RECENT_WAYS 8
#define RECENT_PER_CLIENT 32
#define RECENT_DETAIL_MAX 3072
#define RECENT_SNI_MAX 255
#define RECENT_ERROR_TEXT_MAX 512
#define RECENT_LOST_KEYS 16
#define RECENT_FAMILIES 4096
#define RECENT_AGENTS_MAX 4 /* as tlsreport's REPORT_LABEL_AGENTS */

typedef struct RecentAgent {
        char summary[USER_AGENT_SUMMARY_MAX];
        uint64_t count;
} RecentAgent;

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

/* Counts one User-Agent summary into agents (n of them): as tlsreport's labels do, at most
 * RECENT_AGENTS_MAX distinct ones, the rarest making room for a newcomer, which inherits its count. */
void recent_agents_add(RecentAgent agents[static RECENT_AGENTS_MAX], size_t *n, const char *summary);
/* The agents counted for the stable JA4 ja4, in no particular order; returns how many. */
size_t recent_record_agents(RecentRecord *r, const char *ja4, RecentAgent ret[static RECENT_AGENTS_MAX]);
