/* SPDX-License-Identifier: MIT */
#pragma once

/* Client fingerprints of a parsed ClientHello, exactly per the published specifications:
 *
 *  - JA3 (Salesforce, github.com/salesforce/ja3): the string
 *      legacy_version,ciphers,extensions,supported_groups,ec_point_formats
 *    in decimal, list items joined by '-', GREASE removed from ciphers, extensions and groups, client
 *    order, duplicates kept; and its MD5 in lower-case hex.
 *
 *  - JA4 (FoxIO, technical_details/JA4.md) for TLS over TCP: a_b_c with
 *      a = 't', version (highest non-GREASE supported_versions value, else legacy_version: "13" "12"
 *          "11" "10" "s3" "s2", DTLS "d1" "d2" "d3", anything else such as a draft TLS 1.3 "00"),
 *          'd' if the server_name extension is present (even empty) else 'i', cipher count and
 *          extension count (non-GREASE, SNI and ALPN included, duplicates counted, capped at 99), the
 *          first and last character of the first ALPN protocol ("00" if none or empty; the first and
 *          last hex digit when the first or last byte is not ASCII alphanumeric);
 *      b = sha256 of the sorted cipher list ("002f,0035,...") truncated to 12 hex digits;
 *      c = sha256 of the sorted extension list without 0000 and 0010, then '_' and the signature
 *          algorithms of extension 0x000d in client order (no '_' when there are none), truncated.
 *    An empty list hashes to "000000000000". GREASE is removed everywhere, signature algorithms too.
 *    JA4_r is a_b_c with the lists instead of hashes; JA4_o and JA4_ro use the original order and keep
 *    0000 and 0010 in the extension list.
 *
 *  - ja4_stable, the retry-grouping key of tlsreport (tlsreport(1), "Retry sequences"):
 *      t13d15h2_8daaf6152771_0123456789ab
 *    JA4's protocol character, version, SNI flag, cipher count and ALPN characters, '_', the cipher hash,
 *    '_', the hash of JA4_c's string computed also without extensions 0015 (padding), 0023
 *    (session_ticket), 0029 (pre_shared_key) and 002a (early_data). The extension count is left out, so a
 *    client's fresh and resumed hellos share it; the ALPN characters are kept, since programs on one TLS
 *    library (curl and Python's urllib on OpenSSL) differ in little else.
 *
 * Hashes go through PSA (psa_hash_compute): psa_crypto_init() must have been called. */

#include "attempt.h"
#include "clienthello.h"

#define JA3_HASH_SIZE 33   /* 32 hex digits + NUL */
#define JA4_SIZE 37        /* "t13d1516h2_8daaf6152771_e5627efa2ab1" + NUL */
#define JA4_STABLE_SIZE 35 /* "t13d15h2_8daaf6152771_0123456789ab" + NUL */

typedef struct Fingerprints {
        char ja3[JA3_HASH_SIZE];
        char *ja3_full;
        char ja4[JA4_SIZE];
        char ja4_o[JA4_SIZE];
        char *ja4_r, *ja4_ro;
        char ja4_stable[JA4_STABLE_SIZE];
} Fingerprints;

/* Computes all fingerprints. Returns 0, -ENOMEM, or -EIO when PSA fails (e.g. not initialised).
 * On failure nothing needs freeing; on success call fingerprints_done(). */
int fingerprint_compute(const ClientHello *ch, Fingerprints *ret);
void fingerprints_done(Fingerprints *f);

/* "TLSv1.3,TLSv1.2": supported_versions without GREASE in client order, or else legacy_version.
 * Names TLSv1.3 TLSv1.2 TLSv1.1 TLSv1.0 SSLv3.0, anything else 0xhhhh (lower case). malloc'ed. */
char *fingerprint_offered_versions(const ClientHello *ch);

/* Sets a->ja3, ja3_full, ja4, ja4_r, ja4_o, ja4_ro, ja4_stable, offered_versions, sni (the first
 * host_name, raw; NULL without one) and alpn_offered (the protocols joined by ',', raw; NULL without the
 * extension), replacing earlier values. Returns 0, -ENOMEM or -EIO. */
int fingerprint_fill_attempt(const ClientHello *ch, Attempt *a);
