/* SPDX-License-Identifier: MIT */
/* An LD_PRELOAD module that times the public-key operations a server makes inside its handshakes: it
 * stands between libmbedtls and libmbedcrypto (their calls to each other go through the dynamic
 * linker) and adds up the CPU time (CLOCK_THREAD_CPUTIME_ID) spent in the ECDHE key generation and
 * agreement and in the signature, the operations of bench/crypto-floor. Nested calls are counted once.
 *
 *   CRYPTO_TIME_FILE=PATH LD_PRELOAD=build-bench/bench/crypto-time.so tlswatchd ...
 *
 * At exit it writes one line to PATH: signatures=N crypto_us=T crypto_us_per_signature=T/N, one
 * signature being made per full handshake. bench/run-all.sh compares that with the crypto floor
 * measured on its own, to split a handshake's CPU time into the crypto, the kernel and the rest. */

#include <dlfcn.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/pk.h>
#include <psa/crypto.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench-util.h"

static atomic_llong total_ns;
static atomic_llong signatures;
static _Thread_local unsigned depth;

static void *next(const char *name) {
        void *f = dlsym(RTLD_NEXT, name);

        if (!f) {
                fprintf(stderr, "crypto-time: %s not found\n", name);
                abort();
        }
        return f;
}

static int64_t enter(void) {
        return depth++ == 0 ? clock_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
}

static void leave(int64_t t0) {
        if (--depth == 0)
                total_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/* RET NAME(PARAMS): times the real NAME called with ARGS, then runs AFTER */
#define WRAP(ret, name, params, args, after) \
        ret name params {                    \
                static ret(*real) params;    \
                int64_t t0;                  \
                ret r;                       \
                                             \
                if (!real)                   \
                        real = next(#name);  \
                t0 = enter();                \
                r = real args;               \
                leave(t0);                   \
                after;                       \
                return r;                    \
        }

#define SIGN_PARAMS                                                                           \
        mbedtls_md_type_t md, const unsigned char *hash, size_t hash_len, unsigned char *sig, \
                size_t sig_size, size_t *sig_len, mbedtls_f_rng_t *f_rng, void *p_rng
#define SIGN_ARGS md, hash, hash_len, sig, sig_size, sig_len, f_rng, p_rng
#define ECDH_PARAMS                                                                                       \
        mbedtls_ecdh_context *ctx, size_t *olen, unsigned char *buf, size_t blen, mbedtls_f_rng_t *f_rng, \
                void *p_rng
#define ECDH_ARGS ctx, olen, buf, blen, f_rng, p_rng

/* TLS 1.3 (PSA): the ephemeral key pair (its public key is computed on export) and the agreement */
WRAP(psa_status_t, psa_generate_key, (const psa_key_attributes_t *a, mbedtls_svc_key_id_t *k), (a, k), (void) 0)
WRAP(psa_status_t,
     psa_export_public_key,
     (mbedtls_svc_key_id_t k, uint8_t *d, size_t n, size_t *len),
     (k, d, n, len),
     (void) 0)
WRAP(psa_status_t,
     psa_raw_key_agreement,
     (psa_algorithm_t alg,
      mbedtls_svc_key_id_t k,
      const uint8_t *peer,
      size_t peer_len,
      uint8_t *out,
      size_t out_size,
      size_t *out_len),
     (alg, k, peer, peer_len, out, out_size, out_len),
     (void) 0)
/* TLS 1.2 (Mbed TLS built without MBEDTLS_USE_PSA_CRYPTO, as Debian's is): ECDHE */
WRAP(int, mbedtls_ecdh_make_params, (ECDH_PARAMS), (ECDH_ARGS), (void) 0)
WRAP(int, mbedtls_ecdh_calc_secret, (ECDH_PARAMS), (ECDH_ARGS), (void) 0)
/* the signature, both versions; mbedtls_pk_sign_ext() calls mbedtls_pk_sign_restartable() through the
 * dynamic linker too, which counts it */
WRAP(int,
     mbedtls_pk_sign_ext,
     (mbedtls_pk_type_t type, mbedtls_pk_context *ctx, SIGN_PARAMS),
     (type, ctx, SIGN_ARGS),
     (void) 0)
WRAP(int,
     mbedtls_pk_sign_restartable,
     (mbedtls_pk_context * ctx, SIGN_PARAMS, mbedtls_pk_restart_ctx *rs),
     (ctx, SIGN_ARGS, rs),
     signatures++)

__attribute__((destructor)) static void crypto_time_report(void) {
        const char *path = getenv("CRYPTO_TIME_FILE");
        long long n = signatures, ns = total_ns;
        FILE *f;

        if (!path || !(f = fopen(path, "we")))
                return;
        fprintf(f,
                "signatures=%lld crypto_us=%.0f crypto_us_per_signature=%.1f\n",
                n,
                (double) ns / 1e3,
                n ? (double) ns / 1e3 / (double) n : 0.0);
        fclose(f);
}
