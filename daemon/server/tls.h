/* SPDX-License-Identifier: MIT */
#pragma once

/* Mbed TLS wiring: one TlsShared for the process life (ticket keys, session cache, so that resumption
 * survives a certificate reload) and reference-counted TlsContexts (configuration, certificate chain, key).
 * A reload builds a new TlsContext; connections keep the one they started with. */

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <stdatomic.h>

#include "macro.h"

typedef struct TlsSettings {
        mbedtls_ssl_protocol_version min_version, max_version;
        const char *cert_path, *key_path;
        const char **alpn; /* the protocols offered, in our order of preference (static storage); NULL:
                            * http/1.1 only */
} TlsSettings;

typedef struct TlsShared {
        mbedtls_ssl_ticket_context tickets;
        mbedtls_ssl_cache_context cache;
} TlsShared;

typedef struct TlsContext {
        atomic_uint n_ref;
        mbedtls_ssl_config conf;
        mbedtls_x509_crt chain;
        mbedtls_pk_context key;
} TlsContext;

/* psa_crypto_init(); once per process, before any thread starts. Mbed TLS must be built with
 * MBEDTLS_THREADING_PTHREAD (Debian's is): the ticket keys, the session cache and PSA are shared by the
 * worker threads. */
int tls_global_init(void);

int tls_shared_new(TlsShared **ret);
TlsShared *tls_shared_free(TlsShared *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsShared *, tls_shared_free);

/* Loads certificate and key (refusing a key readable by others) and builds the configuration. */
int tls_context_new(const TlsSettings *settings, TlsShared *shared, TlsContext **ret);
TlsContext *tls_context_ref(TlsContext *c);
TlsContext *tls_context_unref(TlsContext *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsContext *, tls_context_unref);

/* "1.2" / "1.3" <-> Mbed TLS version numbers. */
int tls_version_from_string(const char *s, mbedtls_ssl_protocol_version *ret);

/* The IANA name of a cipher suite Mbed TLS negotiated ("TLS_AES_128_GCM_SHA256"), malloc'ed. */
char *tls_cipher_iana_name(const char *mbedtls_name);

/* "TLSv1.3" for a negotiated version number, NULL if unknown. */
const char *tls_version_to_string(mbedtls_ssl_protocol_version v);

/* A short text for an Mbed TLS error code, e.g. "fatal alert message received" (static storage per
 * thread). */
const char *tls_strerror(int ret);
