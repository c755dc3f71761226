/* SPDX-License-Identifier: MIT */
#pragma once

/* The backend that tlswatchd forwards each connection to after a successful handshake (--backend): its
 * address, the protocol spoken to it, its time limits, and the PROXY protocol v2 header that precedes the
 * client's bytes (HAProxy's specification, "2.2. Binary header format (version 2)"). Sans-I/O. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "attempt.h"

typedef enum BackendProtocol {
        BACKEND_PROXY_V2,
        BACKEND_HTTP, /* HTTP/1.1 requests framed strictly, with tlswatch's headers (proxy-http.c) */
        _BACKEND_PROTOCOL_MAX,
        _BACKEND_PROTOCOL_INVALID = -EINVAL,
} BackendProtocol;

typedef struct BackendSettings {
        struct sockaddr_storage addr;
        socklen_t addr_len;
        char name[128]; /* as given, for messages */
        BackendProtocol protocol;
        int64_t connect_timeout_us;
        /* a side of a forwarded connection that neither sent nor took a byte for this long ends it: the
         * backend (--backend-idle-timeout), the client (--backend-client-idle-timeout) */
        int64_t idle_timeout_us, client_idle_timeout_us;
} BackendSettings;

/* "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock". Returns 0, -EADDRNOTAVAIL for a host name with a
 * valid port ("app.internal:8080": the caller resolves it, once), or -EINVAL. */
int backend_address_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);

BackendProtocol backend_protocol_from_string(const char *s) _pure_;

/* tlswatch's TLVs in the PROXY v2 header, in the range that the specification leaves to applications
 * (PP2_TYPE_MIN_CUSTOM 0xE0 to PP2_TYPE_MAX_CUSTOM 0xEF). Documented in tlswatchd(8). */
enum {
        PP2_TYPE_ALPN = 0x01,
        PP2_TYPE_AUTHORITY = 0x02,
        PP2_TYPE_SSL = 0x20,
        PP2_SUBTYPE_SSL_VERSION = 0x21,
        PP2_SUBTYPE_SSL_CIPHER = 0x23,
        PP2_CLIENT_SSL = 0x01,
        PP2_TYPE_TLSWATCH_JA4 = 0xE0,            /* text: JA4 of the ClientHello */
        PP2_TYPE_TLSWATCH_JA4_STABLE = 0xE1,     /* text: the stable JA4 (tlswatch's grouping key) */
        PP2_TYPE_TLSWATCH_ATTEMPT_ID = 0xE2,     /* 8 bytes, big endian: the attempt's row id */
        PP2_TYPE_TLSWATCH_PRIOR_FAILURES = 0xE3, /* 4 bytes, big endian */
};

/* PROXY v2 header: 16 bytes, the IPv6 addresses (36), TLVs: SNI and ALPN (255 + 3 each at most in what
 * they mean here, but a client's SNI may be longer: it is cut at 255 bytes), the SSL TLV, ours. */
#define PROXY_V2_HEADER_MAX 1024

/* Writes the header for attempt a (its addresses, negotiated version, cipher, ALPN, SNI, fingerprints,
 * id) with prior_failures into buf; returns its length. Neither address an IP one (a unix listening
 * socket): AF_UNSPEC, no addresses. -EINVAL when only one is, or they are of two families (a header
 * without the client's address would pass it off as us: the caller refuses to forward). */
int proxy_v2_header(const Attempt *a, uint32_t prior_failures, uint8_t buf[static PROXY_V2_HEADER_MAX]);
