/* SPDX-License-Identifier: MIT */
#include <mbedtls/error.h>
#include <mbedtls/psa_util.h>
#include <psa/crypto.h>

#include "cert.h"
#include "log.h"
#include "tls.h"

#define TICKET_LIFETIME_SEC 86400
#define SESSION_CACHE_ENTRIES 10000

/* P-256 first: Mbed TLS 3.6's P-256 ECDHE is cheaper than its X25519 (fixed-base comb for the key
 * generation): a full TLS 1.2 handshake takes 17.0 instead of 21.7 million instructions (callgrind,
 * bench/run-all.sh). The order decides TLS 1.2 only: for TLS 1.3, Mbed TLS takes the client's key
 * share as sent and asks a HelloRetryRequest for the client's first supported group. */
static const uint16_t tls_groups[] = {
        MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
        MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
        MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};

static const char *tls_alpn[] = {"http/1.1", NULL};

int tls_global_init(void) {
        psa_status_t s = psa_crypto_init();

        if (s != PSA_SUCCESS)
                return log_error_errno(EIO, "psa_crypto_init() failed: %d", (int) s);
        return 0;
}

int tls_shared_new(TlsShared **ret) {
        _cleanup_(tls_shared_freep) TlsShared *s = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        mbedtls_ssl_ticket_init(&s->tickets);
        mbedtls_ssl_cache_init(&s->cache);
        mbedtls_ssl_cache_set_max_entries(&s->cache, SESSION_CACHE_ENTRIES);
        r = mbedtls_ssl_ticket_setup(
                &s->tickets, mbedtls_psa_get_random, NULL, MBEDTLS_CIPHER_AES_256_GCM, TICKET_LIFETIME_SEC);
        if (r != 0)
                return log_error_errno(EIO, "Failed to set up session tickets: %s", tls_strerror(r));
        *ret = TAKE_PTR(s);
        return 0;
}

TlsShared *tls_shared_free(TlsShared *s) {
        if (!s)
                return NULL;
        mbedtls_ssl_ticket_free(&s->tickets);
        mbedtls_ssl_cache_free(&s->cache);
        free(s);
        return NULL;
}

int tls_context_new(const TlsSettings *settings, TlsShared *shared, TlsContext **ret) {
        _cleanup_(tls_context_unrefp) TlsContext *c = NULL;
        int r;

        r = cert_check_key_file(settings->key_path);
        if (r < 0)
                return r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        atomic_init(&c->n_ref, 1);
        mbedtls_ssl_config_init(&c->conf);
        mbedtls_x509_crt_init(&c->chain);
        mbedtls_pk_init(&c->key);

        r = mbedtls_x509_crt_parse_file(&c->chain, settings->cert_path);
        if (r != 0)
                return log_error_errno(
                        EINVAL, "Failed to load certificate %s: %s", settings->cert_path, tls_strerror(r));
        r = mbedtls_pk_parse_keyfile(&c->key, settings->key_path, NULL, mbedtls_psa_get_random, NULL);
        if (r != 0)
                return log_error_errno(
                        EINVAL, "Failed to load key %s: %s", settings->key_path, tls_strerror(r));
        r = mbedtls_pk_check_pair(&c->chain.pk, &c->key, mbedtls_psa_get_random, NULL);
        if (r != 0)
                return log_error_errno(
                        EINVAL, "Key %s does not match certificate %s.", settings->key_path, settings->cert_path);

        r = mbedtls_ssl_config_defaults(
                &c->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
        if (r != 0)
                return log_error_errno(EINVAL, "Failed to set TLS defaults: %s", tls_strerror(r));
        mbedtls_ssl_conf_rng(&c->conf, mbedtls_psa_get_random, NULL);
        mbedtls_ssl_conf_min_tls_version(&c->conf, settings->min_version);
        mbedtls_ssl_conf_max_tls_version(&c->conf, settings->max_version);
        mbedtls_ssl_conf_groups(&c->conf, tls_groups);
        r = mbedtls_ssl_conf_alpn_protocols(&c->conf, settings->alpn ?: tls_alpn);
        if (r != 0)
                return log_error_errno(EINVAL, "Failed to set ALPN: %s", tls_strerror(r));
        mbedtls_ssl_conf_session_tickets_cb(
                &c->conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &shared->tickets);
        mbedtls_ssl_conf_session_cache(&c->conf, &shared->cache, mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
        r = mbedtls_ssl_conf_own_cert(&c->conf, &c->chain, &c->key);
        if (r != 0)
                return log_error_errno(EINVAL, "Failed to use the certificate: %s", tls_strerror(r));

        *ret = TAKE_PTR(c);
        return 0;
}

TlsContext *tls_context_ref(TlsContext *c) {
        if (c)
                atomic_fetch_add(&c->n_ref, 1);
        return c;
}

TlsContext *tls_context_unref(TlsContext *c) {
        if (!c || atomic_fetch_sub(&c->n_ref, 1) > 1)
                return NULL;
        mbedtls_ssl_config_free(&c->conf);
        mbedtls_x509_crt_free(&c->chain);
        mbedtls_pk_free(&c->key);
        free(c);
        return NULL;
}

int tls_version_from_string(const char *s, mbedtls_ssl_protocol_version *ret) {
        if (streq_ptr(s, "1.2") || streq_ptr(s, "TLSv1.2"))
                *ret = MBEDTLS_SSL_VERSION_TLS1_2;
        else if (streq_ptr(s, "1.3") || streq_ptr(s, "TLSv1.3"))
                *ret = MBEDTLS_SSL_VERSION_TLS1_3;
        else
                return -EINVAL;
        return 0;
}

const char *tls_version_to_string(mbedtls_ssl_protocol_version v) {
        switch (v) {
        case MBEDTLS_SSL_VERSION_TLS1_2: return "TLSv1.2";
        case MBEDTLS_SSL_VERSION_TLS1_3: return "TLSv1.3";
        default: return NULL;
        }
}

char *tls_cipher_iana_name(const char *name) {
        const char *rest = name;
        char *out, *o;

        if (!name)
                return NULL;
        /* Mbed TLS: "TLS1-3-AES-128-GCM-SHA256", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256". */
        if (strncmp(name, "TLS1-3-", 7) == 0)
                rest = name + 7;
        else if (strncmp(name, "TLS-", 4) == 0)
                rest = name + 4;
        if (asprintf(&out, "TLS_%s", rest) < 0)
                return NULL;
        for (o = out; *o; o++)
                if (*o == '-')
                        *o = '_';
        return out;
}

const char *tls_strerror(int ret) {
        static _Thread_local char buf[160];

        mbedtls_strerror(ret, buf, sizeof buf);
        return buf;
}
