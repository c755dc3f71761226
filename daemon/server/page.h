/* SPDX-License-Identifier: MIT */
#pragma once

/* The self-fingerprint pages served after a successful handshake: GET / (HTML) and GET /api/self (JSON)
 * tell the visitor what its client did on this connection (version, cipher, SNI, ALPN, fingerprints) and,
 * from the server's in-memory record (recent.h), its recent attempts and the retry sequence this attempt
 * ends, grouped and worded as tlsreport does. */

#include <stdio.h>

#include "attempt.h"
#include "recent.h"

typedef enum PageKind {
        PAGE_NONE,
        PAGE_HTML,
        PAGE_JSON,
} PageKind;

PageKind page_kind_from_target(const char *target, size_t len);

/* Renders the page for the connection whose (not yet recorded) attempt is a; record may be NULL. */
int page_render(
        RecentRecord *record,
        const Attempt *a,
        PageKind kind,
        char **ret_body,
        size_t *ret_len,
        const char **ret_type);

/* The failed attempts of a's client (its sequence key: address or /64, stable JA4, SNI) in the sequence
 * that a, a successful attempt not yet recorded, ends: what the self page says, for the PROXY header
 * (--backend). 0 without record. */
unsigned page_prior_failures(RecentRecord *record, const Attempt *a);
