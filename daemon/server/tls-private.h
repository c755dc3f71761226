/* SPDX-License-Identifier: MIT */
#pragma once

/* The only place that reads Mbed TLS's private fields (MBEDTLS_PRIVATE). Mbed TLS 3.6 has no public
 * getter for the handshake state, a received alert, or an alert it sent; these are read here and nowhere
 * else. meson.build refuses any Mbed TLS other than 3.6.x, since these fields may move in another
 * version. What each field holds in each failure case was measured on 3.6.6 and is said below, function
 * by function. */

#include <mbedtls/ssl.h>

/* The handshake state (mbedtls_ssl_states). */
int tls_private_state(const mbedtls_ssl_context *ssl);

/* Clears the sent-alert bookkeeping, which mbedtls_ssl_session_reset() leaves stale. */
void tls_private_reset_alerts(mbedtls_ssl_context *ssl);

/* The description of the fatal alert the peer sent, as far as Mbed TLS read it, given the error ret
 * the handshake or read returned; -1 if none. Covers -0x7780 (alert record, decrypted in TLS 1.3) and
 * -0x7180 (invalid MAC) when the record that failed was a plaintext alert, as OpenSSL's TLS 1.3 clients
 * send. */
int tls_private_received_alert(const mbedtls_ssl_context *ssl, int ret);

/* The fatal alert queued through Mbed TLS's pending-alert path (e.g. protocol_version), -1 if none.
 * Alerts Mbed TLS sends directly do not show here; the send callback's record scanner sees the
 * plaintext ones. */
int tls_private_pending_alert(const mbedtls_ssl_context *ssl);

/* Bytes of output Mbed TLS has produced but not yet handed to the send callback. */
size_t tls_private_output_pending(const mbedtls_ssl_context *ssl);

/* The length, header included, that the header of the handshake message Mbed TLS is reading (or has just
 * read) announces; 0 if none. Mbed TLS reassembles a message from records until it has that many bytes,
 * and fails only when one more record no longer fits its buffer. */
size_t tls_private_handshake_len(const mbedtls_ssl_context *ssl);
