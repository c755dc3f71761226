/* SPDX-License-Identifier: MIT */
/* The crypto floor of one full handshake on the server: one ECDSA P-256 signature plus one X25519
 * key generation (including its public key) and one agreement, measured with Mbed TLS (PSA), and
 * the same operations with OpenSSL's libcrypto when built with it, rounds interleaved.
 * Also P-256 ECDHE (key generation + agreement), the alternative group.
 *
 *   crypto-floor [ROUNDS [MS_PER_OPERATION_AND_ROUND]]      defaults: 5 200
 *
 * Prints microseconds of this thread's CPU time per operation (CLOCK_THREAD_CPUTIME_ID: comparable
 * with a server's CPU time per handshake, insensitive to other processes on a busy machine) as
 * median [min-max] over the rounds, then the floor.
 *
 *   crypto-floor --count N     runs the Mbed TLS floor operations N times each and prints nothing
 *                              else: for instruction counts (valgrind --tool=callgrind). */

#include <psa/crypto.h>
#include <time.h>
#ifdef HAVE_OPENSSL
#include <openssl/evp.h>
#endif

#include "bench-util.h"
#include "macro.h"

#define MAX_ROUNDS 100

enum {
        OP_MBED_SIGN,
        OP_MBED_X25519_GEN,
        OP_MBED_X25519_AGREE,
        OP_MBED_P256_GEN,
        OP_MBED_P256_AGREE,
#ifdef HAVE_OPENSSL
        OP_OSSL_SIGN,
        OP_OSSL_X25519_GEN,
        OP_OSSL_X25519_AGREE,
#endif
        _OP_MAX,
};

static const char *const op_names[_OP_MAX] = {
        [OP_MBED_SIGN] = "mbedtls ecdsa-p256 sign",
        [OP_MBED_X25519_GEN] = "mbedtls x25519 keygen",
        [OP_MBED_X25519_AGREE] = "mbedtls x25519 agree",
        [OP_MBED_P256_GEN] = "mbedtls p256 ecdh keygen",
        [OP_MBED_P256_AGREE] = "mbedtls p256 ecdh agree",
#ifdef HAVE_OPENSSL
        [OP_OSSL_SIGN] = "openssl ecdsa-p256 sign",
        [OP_OSSL_X25519_GEN] = "openssl x25519 keygen",
        [OP_OSSL_X25519_AGREE] = "openssl x25519 agree",
#endif
};

static psa_key_id_t sign_key, x25519_peer, p256_peer;
static uint8_t x25519_peer_pub[32], p256_peer_pub[65];
static const uint8_t hash[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
#ifdef HAVE_OPENSSL
static EVP_PKEY *ossl_sign_key, *ossl_peer;
#endif

static psa_status_t mbed_generate(psa_ecc_family_t family, size_t bits, psa_key_id_t *ret) {
        psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;

        psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_KEY_PAIR(family));
        psa_set_key_bits(&attr, bits);
        psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_DERIVE);
        psa_set_key_algorithm(&attr, PSA_ALG_ECDH);
        return psa_generate_key(&attr, ret);
}

/* An ephemeral key pair and its public key, as the TLS stack makes for its key share. */
static int mbed_keygen(psa_ecc_family_t family, size_t bits) {
        uint8_t pub[65];
        psa_key_id_t k;
        size_t n;

        if (mbed_generate(family, bits, &k) != PSA_SUCCESS)
                return -EIO;
        if (psa_export_public_key(k, pub, sizeof pub, &n) != PSA_SUCCESS) {
                (void) psa_destroy_key(k);
                return -EIO;
        }
        return psa_destroy_key(k) == PSA_SUCCESS ? 0 : -EIO;
}

static int mbed_agree(psa_key_id_t k, const uint8_t *pub, size_t pub_len) {
        uint8_t secret[32];
        size_t n;

        return psa_raw_key_agreement(PSA_ALG_ECDH, k, pub, pub_len, secret, sizeof secret, &n) == PSA_SUCCESS
                ? 0
                : -EIO;
}

#ifdef HAVE_OPENSSL
static int ossl_sign(void) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ossl_sign_key, NULL);
        uint8_t sig[80];
        size_t n = sizeof sig;
        int r = -EIO;

        if (c && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, sig, &n, hash, sizeof hash) == 1)
                r = 0;
        EVP_PKEY_CTX_free(c);
        return r;
}

static int ossl_x25519_keygen(EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        uint8_t pub[32];
        size_t n = sizeof pub;

        if (!k || EVP_PKEY_get_raw_public_key(k, pub, &n) != 1) {
                EVP_PKEY_free(k);
                return -EIO;
        }
        if (ret)
                *ret = k;
        else
                EVP_PKEY_free(k);
        return 0;
}

static int ossl_x25519_agree(void) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ossl_peer, NULL);
        uint8_t secret[32];
        size_t n = sizeof secret;
        int r = -EIO;

        if (c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, ossl_peer) == 1 &&
            EVP_PKEY_derive(c, secret, &n) == 1)
                r = 0;
        EVP_PKEY_CTX_free(c);
        return r;
}
#endif

static int op_run(int op) {
        uint8_t sig[PSA_SIGNATURE_MAX_SIZE];
        size_t n;

        switch (op) {
        case OP_MBED_SIGN:
                return psa_sign_hash(
                               sign_key, PSA_ALG_ECDSA(PSA_ALG_SHA_256), hash, sizeof hash, sig, sizeof sig, &n) ==
                                PSA_SUCCESS
                        ? 0
                        : -EIO;
        case OP_MBED_X25519_GEN: return mbed_keygen(PSA_ECC_FAMILY_MONTGOMERY, 255);
        case OP_MBED_X25519_AGREE: return mbed_agree(x25519_peer, x25519_peer_pub, sizeof x25519_peer_pub);
        case OP_MBED_P256_GEN: return mbed_keygen(PSA_ECC_FAMILY_SECP_R1, 256);
        case OP_MBED_P256_AGREE: return mbed_agree(p256_peer, p256_peer_pub, sizeof p256_peer_pub);
#ifdef HAVE_OPENSSL
        case OP_OSSL_SIGN: return ossl_sign();
        case OP_OSSL_X25519_GEN: return ossl_x25519_keygen(NULL);
        case OP_OSSL_X25519_AGREE: return ossl_x25519_agree();
#endif
        default: return -EINVAL;
        }
}

static int setup(void) {
        psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
        size_t n;

        if (psa_crypto_init() != PSA_SUCCESS)
                return -EIO;
        psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1));
        psa_set_key_bits(&attr, 256);
        psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_SIGN_HASH);
        psa_set_key_algorithm(&attr, PSA_ALG_ECDSA(PSA_ALG_SHA_256));
        if (psa_generate_key(&attr, &sign_key) != PSA_SUCCESS)
                return -EIO;
        /* the key agreements use our own key with a fixed peer public key, as a server would */
        if (mbed_generate(PSA_ECC_FAMILY_MONTGOMERY, 255, &x25519_peer) != PSA_SUCCESS ||
            psa_export_public_key(x25519_peer, x25519_peer_pub, sizeof x25519_peer_pub, &n) != PSA_SUCCESS ||
            mbed_generate(PSA_ECC_FAMILY_SECP_R1, 256, &p256_peer) != PSA_SUCCESS ||
            psa_export_public_key(p256_peer, p256_peer_pub, sizeof p256_peer_pub, &n) != PSA_SUCCESS)
                return -EIO;
#ifdef HAVE_OPENSSL
        ossl_sign_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!ossl_sign_key || ossl_x25519_keygen(&ossl_peer) < 0)
                return -EIO;
#endif
        return 0;
}

int main(int argc, char **argv) {
        static double us[_OP_MAX][MAX_ROUNDS];
        double med[_OP_MAX];
        unsigned rounds = 5, ms = 200;

        if (argc == 3 && streq(argv[1], "--count")) {
                unsigned count;

                if (parse_uint(argv[2], 1, 1000000, &count) < 0 || setup() < 0)
                        return 2;
                for (unsigned i = 0; i < count; i++)
                        if (op_run(OP_MBED_SIGN) < 0 || op_run(OP_MBED_X25519_GEN) < 0 ||
                            op_run(OP_MBED_X25519_AGREE) < 0)
                                return 1;
                printf("floor_operations=%u\n", count);
                return 0;
        }
        if ((argc > 1 && parse_uint(argv[1], 1, MAX_ROUNDS, &rounds) < 0) ||
            (argc > 2 && parse_uint(argv[2], 10, 10000, &ms) < 0) || argc > 3) {
                fprintf(stderr,
                        "usage: crypto-floor [ROUNDS (1-%d) [MS_PER_OPERATION_AND_ROUND (10-10000)]]\n",
                        MAX_ROUNDS);
                return 2;
        }
        if (setup() < 0) {
                fprintf(stderr, "crypto set-up failed\n");
                return 1;
        }
        for (unsigned r = 0; r < rounds; r++)
                for (int op = 0; op < _OP_MAX; op++) {
                        int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), end = t0 + (int64_t) ms * 1000000, t;
                        unsigned n = 0;

                        do {
                                if (op_run(op) < 0) {
                                        fprintf(stderr, "%s failed\n", op_names[op]);
                                        return 1;
                                }
                                n++;
                        } while ((t = clock_ns(CLOCK_THREAD_CPUTIME_ID)) < end);
                        us[op][r] = (double) (t - t0) / 1e3 / n;
                }

        printf("%-28s %10s %22s\n", "operation", "us median", "[min-max]");
        for (int op = 0; op < _OP_MAX; op++) {
                qsort(us[op], rounds, sizeof(double), compare_double);
                med[op] = us[op][rounds / 2];
                printf("%-28s %10.1f %10.1f-%-10.1f\n", op_names[op], med[op], us[op][0], us[op][rounds - 1]);
        }
        printf("floor_mbedtls_us=%.1f (ecdsa-p256 sign + x25519 keygen + agree)\n",
               med[OP_MBED_SIGN] + med[OP_MBED_X25519_GEN] + med[OP_MBED_X25519_AGREE]);
        printf("floor_mbedtls_p256_us=%.1f (ecdsa-p256 sign + p256 ecdh keygen + agree)\n",
               med[OP_MBED_SIGN] + med[OP_MBED_P256_GEN] + med[OP_MBED_P256_AGREE]);
#ifdef HAVE_OPENSSL
        {
                double o = med[OP_OSSL_SIGN] + med[OP_OSSL_X25519_GEN] + med[OP_OSSL_X25519_AGREE];

                printf("floor_openssl_us=%.1f ratio_mbedtls_over_openssl=%.1f (sign %.1fx, x25519 keygen "
                       "%.1fx, "
                       "agree %.1fx)\n",
                       o,
                       (med[OP_MBED_SIGN] + med[OP_MBED_X25519_GEN] + med[OP_MBED_X25519_AGREE]) / o,
                       med[OP_MBED_SIGN] / med[OP_OSSL_SIGN],
                       med[OP_MBED_X25519_GEN] / med[OP_OSSL_X25519_GEN],
                       med[OP_MBED_X25519_AGREE] / med[OP_OSSL_X25519_AGREE]);
        }
#endif
        return 0;
}
