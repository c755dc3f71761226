/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "backend.h"

static const uint8_t proxy_v2_signature[12] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

int backend_address_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        struct sockaddr_in *in = (struct sockaddr_in *) ret;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ret;
        char host[INET6_ADDRSTRLEN];
        const char *colon, *h;
        size_t host_len;
        unsigned long port;
        char *end;

        memset(ret, 0, sizeof *ret);
        if (strncmp(s, "unix:", 5) == 0) {
                struct sockaddr_un *un = (struct sockaddr_un *) ret;
                size_t n = strlen(s + 5);

                if (s[5] != '/' || n >= sizeof un->sun_path)
                        return -EINVAL;
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path, s + 5, n + 1);
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
                return 0;
        }
        if (s[0] == '[') {
                const char *close = strchr(s, ']');

                if (!close || close[1] != ':')
                        return -EINVAL;
                h = s + 1;
                host_len = (size_t) (close - h);
                colon = close + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon || memchr(s, ':', (size_t) (colon - s))) /* a bare IPv6 address needs brackets */
                        return -EINVAL;
                h = s;
                host_len = (size_t) (colon - s);
        }
        if (host_len == 0 || host_len >= sizeof host || !colon[1] || colon[1] < '0' || colon[1] > '9')
                return -EINVAL;
        memcpy(host, h, host_len);
        host[host_len] = '\0';
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
                return -EINVAL;
        if (s[0] != '[' && inet_pton(AF_INET, host, &in->sin_addr) != 1 && strchr(host, '.') &&
            strspn(host, "0123456789.") == host_len)
                return -EINVAL; /* looks like an IPv4 address but is not one */
        if (s[0] != '[' && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                *ret_len = sizeof *in;
        } else if (s[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof *in6;
        } else if (s[0] != '[' && strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == host_len)
                return -EADDRNOTAVAIL; /* a host name: the caller resolves it */
        else
                return -EINVAL;
        return 0;
}

BackendProtocol backend_protocol_from_string(const char *s) {
        if (streq(s, "proxy-v2"))
                return BACKEND_PROXY_V2;
        if (streq(s, "http"))
                return BACKEND_HTTP;
        return _BACKEND_PROTOCOL_INVALID;
}

typedef struct HeaderWriter {
        uint8_t *buf;
        size_t len;
} HeaderWriter;

static void put(HeaderWriter *w, const void *p, size_t n) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
}

static void put_u16(HeaderWriter *w, uint16_t v) {
        put(w, &(uint8_t[2]){v >> 8, v & 0xff}, 2);
}

static void put_tlv(HeaderWriter *w, uint8_t type, const void *p, size_t n) {
        n = MIN(n, 255u); /* SNI and ALPN: a client may send more than anyone needs; the header stays small */
        put(w, &type, 1);
        put_u16(w, (uint16_t) n);
        put(w, p, n);
}

static void put_tlv_string(HeaderWriter *w, uint8_t type, const char *s) {
        if (s)
                put_tlv(w, type, s, strlen(s));
}

/* An address as the header wants it: IPv4 (also an IPv4-mapped IPv6 one) or IPv6; returns its family. */
static int header_addr(const char *text, uint8_t ret[static 16]) {
        struct in6_addr a6;

        if (inet_pton(AF_INET, text, ret) == 1)
                return AF_INET;
        if (inet_pton(AF_INET6, text, &a6) != 1)
                return -EINVAL;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
                memcpy(ret, a6.s6_addr + 12, 4);
                return AF_INET;
        }
        memcpy(ret, a6.s6_addr, 16);
        return AF_INET6;
}

int proxy_v2_header(const Attempt *a, uint32_t prior_failures, uint8_t buf[static PROXY_V2_HEADER_MAX]) {
        HeaderWriter w = {.buf = buf};
        uint8_t src[16], dst[16], be[8];
        int fs, fd;
        size_t ssl_start;

        fs = header_addr(a->peer_addr, src);
        fd = header_addr(a->local_addr, dst);
        /* Neither end an IP address: a unix listening socket from systemd, whose clients are local
         * processes: AF_UNSPEC without addresses (the receiver takes the real endpoints, as the
         * specification says), the TLVs still follow. One IP end without the other, or two families: a
         * header that would pass the client off as us is not sent, the caller refuses to forward. */
        if (fs < 0 && fd < 0)
                fs = fd = AF_UNSPEC;
        else if (fs < 0 || fd < 0 || fs != fd)
                return -EINVAL;
        put(&w, proxy_v2_signature, sizeof proxy_v2_signature);
        put(&w, &(uint8_t){0x21}, 1); /* version 2, PROXY */
        /* TCP over IPv4 / IPv6, or UNSPEC */
        put(&w, &(uint8_t){fs == AF_INET ? 0x11 : fs == AF_INET6 ? 0x21 : 0x00}, 1);
        put_u16(&w, 0); /* the length, set below */
        if (fs != AF_UNSPEC) {
                put(&w, src, fs == AF_INET ? 4 : 16);
                put(&w, dst, fs == AF_INET ? 4 : 16);
                put_u16(&w, a->peer_port);
                put_u16(&w, a->local_port);
        }

        if (a->alpn.data)
                put_tlv(&w, PP2_TYPE_ALPN, a->alpn.data, a->alpn.len);
        if (a->sni.data)
                put_tlv(&w, PP2_TYPE_AUTHORITY, a->sni.data, a->sni.len);

        /* PP2_TYPE_SSL: client (the connection used TLS; no client certificate), verify (0: as HAProxy sends
         * it when no client certificate was asked for), then the sub-TLVs */
        ssl_start = w.len;
        put(&w, &(uint8_t){PP2_TYPE_SSL}, 1);
        put_u16(&w, 0);
        put(&w, &(uint8_t){PP2_CLIENT_SSL}, 1);
        put(&w, &(uint8_t[4]){0, 0, 0, 0}, 4);
        put_tlv_string(&w, PP2_SUBTYPE_SSL_VERSION, a->version);
        put_tlv_string(&w, PP2_SUBTYPE_SSL_CIPHER, a->cipher);
        buf[ssl_start + 1] = (uint8_t) ((w.len - ssl_start - 3) >> 8);
        buf[ssl_start + 2] = (uint8_t) (w.len - ssl_start - 3);

        put_tlv_string(&w, PP2_TYPE_TLSWATCH_JA4, a->ja4);
        put_tlv_string(&w, PP2_TYPE_TLSWATCH_JA4_STABLE, a->ja4_stable);
        if (a->id > 0) {
                for (unsigned i = 0; i < 8; i++)
                        be[i] = (uint8_t) ((uint64_t) a->id >> (56 - 8 * i));
                put_tlv(&w, PP2_TYPE_TLSWATCH_ATTEMPT_ID, be, 8);
        }
        for (unsigned i = 0; i < 4; i++)
                be[i] = (uint8_t) (prior_failures >> (24 - 8 * i));
        put_tlv(&w, PP2_TYPE_TLSWATCH_PRIOR_FAILURES, be, 4);

        buf[14] = (uint8_t) ((w.len - 16) >> 8);
        buf[15] = (uint8_t) (w.len - 16);
        return (int) w.len;
}
