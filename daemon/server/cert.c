/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>
#include <mbedtls/psa_util.h>
#include <sys/stat.h>
#include <time.h>

#include "cert.h"
#include "log.h"

static void pk_freep(mbedtls_pk_context *pk) {
        mbedtls_pk_free(pk);
}

static void crt_freep(mbedtls_x509_crt *crt) {
        mbedtls_x509_crt_free(crt);
}

static void crtw_freep(mbedtls_x509write_cert *w) {
        mbedtls_x509write_crt_free(w);
}

int cert_check_key_file(const char *key_path) {
        struct stat st;

        if (stat(key_path, &st) < 0)
                return log_error_errno(errno, "Cannot read key file %s: %m", key_path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(EINVAL, "Key file %s is not a regular file.", key_path);
        if (st.st_mode & (S_IRWXG | S_IRWXO))
                return log_error_errno(
                        EPERM,
                        "Key file %s is accessible by group or others (mode %04o); refusing it. Fix with: "
                        "chmod 600 %s",
                        key_path,
                        (unsigned) (st.st_mode & 07777),
                        key_path);
        return 0;
}

/* Writes data to path atomically (temporary file, fsync, rename) with the given mode. */
static int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *p = data;

        if (asprintf(&tmp, "%s.tmp.%ld", path, (long) getpid()) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create %s: %m", tmp);
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        int r = -errno;

                        (void) unlink(tmp);
                        return log_error_errno(r, "Failed to write %s: %m", tmp);
                }
                p += n;
                len -= (size_t) n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                int r = -errno;

                (void) unlink(tmp);
                return log_error_errno(r, "Failed to store %s: %m", path);
        }
        return 0;
}

static void format_x509_time(time_t t, char ret[static 15]) {
        struct tm tm;

        (void) gmtime_r(&t, &tm);
        (void) strftime(ret, 15, "%Y%m%d%H%M%S", &tm);
}

static int cert_set_san(mbedtls_x509write_cert *w) {
        static const unsigned char ip4[4] = {127, 0, 0, 1};
        static const unsigned char ip6[16] = {[15] = 1};
        char host[256] = "localhost";
        mbedtls_x509_san_list san[4] = {};
        size_t n = 0;

        if (gethostname(host, sizeof host - 1) < 0 || host[0] == '\0')
                (void) snprintf(host, sizeof host, "localhost");
        if (!streq(host, "localhost")) {
                san[n].node.type = MBEDTLS_X509_SAN_DNS_NAME;
                san[n].node.san.unstructured_name.p = (unsigned char *) host;
                san[n].node.san.unstructured_name.len = strlen(host);
                n++;
        }
        san[n].node.type = MBEDTLS_X509_SAN_DNS_NAME;
        san[n].node.san.unstructured_name.p = (unsigned char *) "localhost";
        san[n].node.san.unstructured_name.len = strlen("localhost");
        n++;
        san[n].node.type = MBEDTLS_X509_SAN_IP_ADDRESS;
        san[n].node.san.unstructured_name.p = (unsigned char *) ip4;
        san[n].node.san.unstructured_name.len = sizeof ip4;
        n++;
        san[n].node.type = MBEDTLS_X509_SAN_IP_ADDRESS;
        san[n].node.san.unstructured_name.p = (unsigned char *) ip6;
        san[n].node.san.unstructured_name.len = sizeof ip6;
        n++;
        for (size_t i = 0; i + 1 < n; i++)
                san[i].next = &san[i + 1];
        return mbedtls_x509write_crt_set_subject_alternative_name(w, san);
}

int cert_generate_self_signed(const char *cert_path, const char *key_path) {
        _cleanup_(pk_freep) mbedtls_pk_context key;
        _cleanup_(crtw_freep) mbedtls_x509write_cert w;
        unsigned char serial[16], pem[4096], keypem[1024];
        char not_before[15], not_after[15], subject[300], host[256] = "localhost";
        unsigned char eku_oid[] = MBEDTLS_OID_SERVER_AUTH;
        mbedtls_asn1_sequence eku = {.buf = {.tag = MBEDTLS_ASN1_OID, .len = sizeof eku_oid - 1, .p = eku_oid}};
        time_t now = time(NULL);
        int r;

        mbedtls_pk_init(&key);
        mbedtls_x509write_crt_init(&w);

        r = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
        if (r == 0)
                r = mbedtls_ecp_gen_key(
                        MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), mbedtls_psa_get_random, NULL);
        if (r != 0)
                return log_error_errno(ENOMEM, "Failed to generate an ECDSA P-256 key (Mbed TLS -0x%04x).", -r);

        if (psa_generate_random(serial, sizeof serial) != PSA_SUCCESS)
                return log_error_errno(EIO, "Failed to get random bytes for the certificate serial.");
        serial[0] &= 0x7f; /* a positive INTEGER */
        serial[0] |= 0x01; /* without a leading zero byte */

        if (gethostname(host, sizeof host - 1) < 0 || host[0] == '\0')
                (void) snprintf(host, sizeof host, "localhost");
        (void) snprintf(subject, sizeof subject, "CN=%s,O=tlswatch self-signed", host);
        format_x509_time(now - 3600, not_before);
        format_x509_time(now + (time_t) CERT_VALIDITY_DAYS * 86400, not_after);

        mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
        mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
        mbedtls_x509write_crt_set_subject_key(&w, &key);
        mbedtls_x509write_crt_set_issuer_key(&w, &key);
        if ((r = mbedtls_x509write_crt_set_serial_raw(&w, serial, sizeof serial)) != 0 ||
            (r = mbedtls_x509write_crt_set_validity(&w, not_before, not_after)) != 0 ||
            (r = mbedtls_x509write_crt_set_subject_name(&w, subject)) != 0 ||
            (r = mbedtls_x509write_crt_set_issuer_name(&w, subject)) != 0 ||
            (r = mbedtls_x509write_crt_set_basic_constraints(&w, 0, -1)) != 0 ||
            (r = mbedtls_x509write_crt_set_key_usage(&w, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0 ||
            (r = mbedtls_x509write_crt_set_ext_key_usage(&w, &eku)) != 0 ||
            (r = mbedtls_x509write_crt_set_subject_key_identifier(&w)) != 0 ||
            (r = mbedtls_x509write_crt_set_authority_key_identifier(&w)) != 0 || (r = cert_set_san(&w)) != 0 ||
            (r = mbedtls_x509write_crt_pem(&w, pem, sizeof pem, mbedtls_psa_get_random, NULL)) != 0)
                return log_error_errno(
                        EINVAL, "Failed to build the self-signed certificate (Mbed TLS -0x%04x).", -r);

        r = mbedtls_pk_write_key_pem(&key, keypem, sizeof keypem);
        if (r != 0)
                return log_error_errno(EINVAL, "Failed to encode the private key (Mbed TLS -0x%04x).", -r);
        r = write_file_atomic(key_path, keypem, strlen((char *) keypem), 0600);
        explicit_wipe(keypem, sizeof keypem);
        if (r < 0)
                return r;
        return write_file_atomic(cert_path, pem, strlen((char *) pem), 0644);
}

/* A certificate that expires within this margin is made anew, so that it does not expire under the
 * clients of a daemon that was just started. */
#define CERT_VALID_MARGIN_SEC 3600

static time_t x509_time_to_unix(const mbedtls_x509_time *t) {
        struct tm tm = {
                .tm_year = t->year - 1900,
                .tm_mon = t->mon - 1,
                .tm_mday = t->day,
                .tm_hour = t->hour,
                .tm_min = t->min,
                .tm_sec = t->sec,
        };

        return timegm(&tm);
}

/* 1 if the certificate file parses and is valid now and for at least another CERT_VALID_MARGIN_SEC,
 * 0 if not. */
static int cert_file_is_current(const char *cert_path) {
        _cleanup_(crt_freep) mbedtls_x509_crt crt;

        mbedtls_x509_crt_init(&crt);
        if (mbedtls_x509_crt_parse_file(&crt, cert_path) != 0)
                return 0;
        return !mbedtls_x509_time_is_future(&crt.valid_from) &&
                x509_time_to_unix(&crt.valid_to) > time(NULL) + CERT_VALID_MARGIN_SEC;
}

int cert_ensure_self_signed(const char *dir, bool *ret_generated) {
        _cleanup_free_ char *cert_path = NULL, *key_path = NULL;
        int r;

        if (asprintf(&cert_path, "%s/%s", dir, CERT_FILE_NAME) < 0 ||
            asprintf(&key_path, "%s/%s", dir, KEY_FILE_NAME) < 0)
                return log_oom();

        if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0) {
                r = cert_check_key_file(key_path);
                if (r < 0)
                        return r;
                if (cert_file_is_current(cert_path)) {
                        *ret_generated = false;
                        return 0;
                }
                log_notice("Certificate %s is expired or unreadable; generating a new one.", cert_path);
        }
        r = cert_generate_self_signed(cert_path, key_path);
        if (r < 0)
                return r;
        log_info("Generated a self-signed ECDSA P-256 certificate in %s.", cert_path);
        *ret_generated = true;
        return 0;
}
