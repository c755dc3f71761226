/* SPDX-License-Identifier: MIT */
#pragma once

/* A minimal TLS 1.3 client for the load generator (loadgen --lite): one full handshake (X25519,
 * TLS_AES_128_GCM_SHA256, ecdsa_secp256r1_sha256) on a connected blocking socket, with OpenSSL's
 * libcrypto for the primitives. It makes the server do all of a full handshake's work but spends as
 * little as it can itself: one X25519 key pair for every connection (the server's share is fresh each
 * time, so the server's work is unchanged), the server's certificate and signature are not checked
 * (its Finished is), and no library state per connection. A benchmark tool, not a TLS client to use
 * anywhere else. */

#include <stdint.h>

typedef struct Tls13Lite Tls13Lite;

/* Generates the key pair and fetches the algorithms. Returns NULL on failure. */
Tls13Lite *tls13_lite_new(void);
void tls13_lite_free(Tls13Lite *t);

/* ClientHello to our Finished on fd (blocking); *ret_handshake_done_ns is set (CLOCK_MONOTONIC) once
 * our Finished is sent. Then sends close_notify and reads until the server closes. Returns 0 or a
 * negative errno (-EPROTO for anything the server sent that does not fit). Thread-safe for one t
 * shared by several threads. */
int tls13_lite_handshake(const Tls13Lite *t, int fd, int64_t *ret_handshake_done_ns);
