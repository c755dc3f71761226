/* SPDX-License-Identifier: MIT */
#pragma once

/* Plain-words description of an attempt: one sentence per shape of (outcome, state_reached, alerts),
 * shared by the journal MESSAGE and the daemon's web page (a sequence's sentence is diagnosis.h's).
 * Examples:
 *
 *     client sent alert certificate_unknown(46) after our certificate
 *     connection closed without sending any data
 *     client reset the connection after our certificate
 *     plain HTTP sent to the TLS port
 *     no TLS version in common: client offers only TLSv1.0; we sent alert protocol_version(70)
 *     handshake timed out waiting for the ClientHello
 *     handshake complete (TLSv1.3, TLS1-3-AES-256-GCM-SHA384, resumed)
 *
 * The text never holds a control character or invalid UTF-8: everything taken from the record's strings
 * passes through escape_display(). For OUTCOME_NOT_TLS the sentence says "plain HTTP" when error_text
 * mentions HTTP (the classifier knows whether the first bytes looked like an HTTP request). */

#include "attempt.h"

/* Returns a malloc'ed sentence (no trailing period), or NULL on out of memory. */
char *attempt_describe(const Attempt *a);

/* Writes "certificate_unknown(46)" (or "alert(200)" for an unnamed number) into buf. Returns buf. */
char *tls_alert_format(int alert, char buf[static 32]);
