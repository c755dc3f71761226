/* SPDX-License-Identifier: MIT */
#pragma once

/* The server's certificate: a self-signed ECDSA P-256 certificate generated on first start (SANs: host
 * name, localhost, 127.0.0.1, ::1), kept in the state directory (key 0600), reused while valid and made
 * anew once expired; and the checks applied to a certificate and key given with --cert/--key. */

#include <stdbool.h>

#define CERT_FILE_NAME "tlswatchd-cert.pem"
#define KEY_FILE_NAME "tlswatchd-key.pem"
#define CERT_VALIDITY_DAYS 365

/* Makes sure DIR/tlswatchd-cert.pem and DIR/tlswatchd-key.pem exist and hold a certificate that is valid
 * now; generates them otherwise. *ret_generated says whether it generated. */
int cert_ensure_self_signed(const char *dir, bool *ret_generated);

/* Generates a self-signed certificate and key into the two paths (written atomically, key 0600). */
int cert_generate_self_signed(const char *cert_path, const char *key_path);

/* Refuses a key file that is not a regular file or that group or others can read: -EPERM, logged. */
int cert_check_key_file(const char *key_path);
