/* SPDX-License-Identifier: MIT */
#pragma once

/* The one sentence a report shows for a retry sequence, built from its evidence: who the client is (the
 * User-Agents its fingerprint sent on successful attempts), what it did (the alert and its name, a close
 * right after our certificate, a hang-up right after the handshake), at which step, and the fix for that
 * kind of client: a browser (its exception, or the CA in its trust store), a program (its own trust store:
 * Java's keystore, Python's CA bundle, Node's extra CA setting, the system store of Go and GnuTLS, ...),
 * or a program that succeeded later with the same certificate, which says so plainly: verification
 * switched off is a security finding, not a fix. Advice is only what this server can do. Sans-I/O: the
 * daemon's page and tlsreport call it on the same Sequence. */

#include "sequence.h"

typedef struct ClientIdentity {
        const char *name;  /* the commonest User-Agent summary ("curl/7.88.1"), NULL if none was seen */
        const char *other; /* a second, different one, when the fingerprint's successes carry several */
        unsigned n_names;  /* how many different summaries the fingerprint's successes carry */
} ClientIdentity;

/* Writes the sentence (ASCII, no control characters) into buf like snprintf(): at most size bytes with the
 * NUL, and returns the length the whole sentence has. who may be NULL (nothing known about the client).
 * SEQUENCE_DIAGNOSIS_MAX always suffices. */
#define SEQUENCE_DIAGNOSIS_MAX 1024
size_t sequence_diagnose(const Sequence *s, const ClientIdentity *who, char *buf, size_t size);

/* Whether a User-Agent summary names a browser ("Chrome/156 (Linux)", "Firefox/128 (Linux)"). */
bool client_name_is_browser(const char *name) _pure_;
