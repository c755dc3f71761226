/* SPDX-License-Identifier: MIT */
#pragma once

/* The self-fingerprint pages served after a successful handshake: GET / (HTML) and GET /api/self (JSON)
 * tell the visitor what its client did on this connection (version, cipher, SNI, ALPN, fingerprints) and,
 * from the database, its recent attempts from the same address and its current retry sequence. */

#include <stdio.h>

#include "attempt.h"

typedef enum PageKind {
        PAGE_NONE,
        PAGE_HTML,
        PAGE_JSON,
} PageKind;

typedef struct Server Server;

PageKind page_kind_from_target(const char *target, size_t len);

/* Renders the page for the connection whose (not yet stored) record is a. */
int page_render(
        Server *s, const Attempt *a, PageKind kind, char **ret_body, size_t *ret_len, const char **ret_type);

/* One attempt as a JSON object whose keys are the column names of the attempts table. */
void attempt_json_fputs(FILE *f, const Attempt *a);
