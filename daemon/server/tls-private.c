/* SPDX-License-Identifier: MIT */
#include <mbedtls/build_info.h>

#include "tls-private.h"

#if MBEDTLS_VERSION_MAJOR != 3 || MBEDTLS_VERSION_MINOR != 6
#error "tls-private.c reads Mbed TLS 3.6.x private fields; check each one before allowing another version"
#endif

int tls_private_state(const mbedtls_ssl_context *ssl) {
        return ssl->MBEDTLS_PRIVATE(state);
}

void tls_private_reset_alerts(mbedtls_ssl_context *ssl) {
        ssl->MBEDTLS_PRIVATE(alert_type) = 0;
        ssl->MBEDTLS_PRIVATE(alert_reason) = 0;
}

int tls_private_received_alert(const mbedtls_ssl_context *ssl, int ret) {
        const unsigned char *msg = ssl->MBEDTLS_PRIVATE(in_msg), *hdr = ssl->MBEDTLS_PRIVATE(in_hdr);

        if (!msg || !hdr)
                return -1;
        if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE &&
            ssl->MBEDTLS_PRIVATE(in_msgtype) == MBEDTLS_SSL_MSG_ALERT)
                return msg[1];
        /* A plaintext alert where Mbed TLS expected an encrypted record: the header says alert, the two
         * bytes are still at in_msg, but in_msglen reads 0 (observed with OpenSSL 3.0 clients). Accept only
         * the shape of a real alert: record type 21, length 2, level fatal. */
        if (ret == MBEDTLS_ERR_SSL_INVALID_MAC && hdr[0] == MBEDTLS_SSL_MSG_ALERT && hdr[3] == 0 &&
            hdr[4] == 2 && msg[0] == MBEDTLS_SSL_ALERT_LEVEL_FATAL)
                return msg[1];
        return -1;
}

int tls_private_pending_alert(const mbedtls_ssl_context *ssl) {
        return ssl->MBEDTLS_PRIVATE(alert_type) != 0 ? ssl->MBEDTLS_PRIVATE(alert_type) : -1;
}

size_t tls_private_output_pending(const mbedtls_ssl_context *ssl) {
        return ssl->MBEDTLS_PRIVATE(out_left);
}

size_t tls_private_handshake_len(const mbedtls_ssl_context *ssl) {
        return ssl->MBEDTLS_PRIVATE(in_hslen);
}
