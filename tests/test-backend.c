/* SPDX-License-Identifier: MIT */
/* --backend's pieces without I/O (backend.c): the address forms and their errors, and the PROXY protocol
 * v2 header byte for byte, its expected bytes written out here from HAProxy's specification (section 2.2). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "backend.h"
#include "tap.h"

static void test_addresses(void) {
        static const struct {
                const char *s;
                int r, family, port;
        } cases[] = {
                {"127.0.0.1:8080", 0, AF_INET, 8080},
                {"0.0.0.0:1", 0, AF_INET, 1},
                {"[::1]:443", 0, AF_INET6, 443},
                {"[2001:db8::7]:65535", 0, AF_INET6, 65535},
                {"unix:/run/app.sock", 0, AF_UNIX, 0},
                {"app.internal:80", -EADDRNOTAVAIL, 0, 0},
                {"localhost:8080", -EADDRNOTAVAIL, 0, 0},
                {"127.0.0.1", -EINVAL, 0, 0},
                {"127.0.0.1:", -EINVAL, 0, 0},
                {"127.0.0.1:0", -EINVAL, 0, 0},
                {"127.0.0.1:65536", -EINVAL, 0, 0},
                {"127.0.0.1:+80", -EINVAL, 0, 0},
                {"127.0.0.1:80x", -EINVAL, 0, 0},
                {"300.1.1.1:80", -EINVAL, 0, 0},
                {":80", -EINVAL, 0, 0},
                {"::1:80", -EINVAL, 0, 0},
                {"[::1]80", -EINVAL, 0, 0},
                {"[::1", -EINVAL, 0, 0},
                {"[127.0.0.1]:80", -EINVAL, 0, 0},
                {"[app]:80", -EINVAL, 0, 0},
                {"a b:80", -EINVAL, 0, 0},
                {"unix:run/app.sock", -EINVAL, 0, 0},
                {"unix:", -EINVAL, 0, 0},
        };
        struct sockaddr_storage sa;
        socklen_t len = 0;
        char long_path[200];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = backend_address_parse(cases[i].s, &sa, &len);

                if (!is_int(r, cases[i].r, "\"%s\": %s", cases[i].s, cases[i].r == 0 ? "parsed" : "refused") ||
                    r < 0)
                        continue;
                is_int(sa.ss_family, cases[i].family, "\"%s\": its family", cases[i].s);
                if (cases[i].family == AF_INET)
                        is_int(ntohs(((struct sockaddr_in *) &sa)->sin_port), cases[i].port, "its port");
                if (cases[i].family == AF_INET6)
                        is_int(ntohs(((struct sockaddr_in6 *) &sa)->sin6_port), cases[i].port, "its port");
        }
        (void) backend_address_parse("unix:/run/app.sock", &sa, &len);
        is_str(((struct sockaddr_un *) &sa)->sun_path, "/run/app.sock", "unix: the path");
        is_int(len, (int) (offsetof(struct sockaddr_un, sun_path) + sizeof "/run/app.sock"), "unix: the length");
        memset(long_path, 'x', sizeof long_path - 1);
        memcpy(long_path, "unix:/", 6);
        long_path[sizeof long_path - 1] = '\0';
        is_int(backend_address_parse(long_path, &sa, &len),
               -EINVAL,
               "a unix path longer than sun_path: refused");
        is_int(backend_protocol_from_string("proxy-v2"), BACKEND_PROXY_V2, "proxy-v2");
        is_int(backend_protocol_from_string("proxy-v1"), _BACKEND_PROTOCOL_INVALID, "proxy-v1: refused");
}

typedef struct Bytes {
        uint8_t b[PROXY_V2_HEADER_MAX];
        size_t n;
} Bytes;

static void add(Bytes *x, const void *p, size_t n) {
        memcpy(x->b + x->n, p, n);
        x->n += n;
}

static void add_tlv(Bytes *x, uint8_t type, const void *p, size_t n) {
        add(x, (uint8_t[]){type, (uint8_t) (n >> 8), (uint8_t) n}, 3);
        add(x, p, n);
}

static bool same(const uint8_t *got, int got_len, const Bytes *want, const char *what) {
        bool r = got_len == (int) want->n && memcmp(got, want->b, want->n) == 0;

        ok(r, "%s: the header, byte for byte (%d bytes)", what, got_len);
        if (!r)
                for (size_t i = 0; i < MAX((size_t) MAX(got_len, 0), want->n); i++)
                        if (i >= (size_t) got_len || i >= want->n || got[i] != want->b[i]) {
                                diag("first difference at byte %zu", i);
                                break;
                        }
        return r;
}

static void test_header(void) {
        static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
        const char *ja4 = "t13d1516h2_8daaf6152771_02713d6af862", *ja4s = "t13d15_8daaf6152771_0123456789ab";
        uint8_t buf[PROXY_V2_HEADER_MAX], sni[300];
        Attempt *a = attempt_new();
        Bytes w = {};
        int n;

        if (!a)
                return (void) ok(false, "attempt_new");
        strcpy(a->peer_addr, "192.0.2.10");
        a->peer_port = 40001;
        strcpy(a->local_addr, "127.0.0.1");
        a->local_port = 8443;
        (void) raw_string_set(&a->alpn, "h2", 2);
        (void) raw_string_set(&a->sni, "example.com", 11);
        a->version = strdup("TLSv1.3");
        a->cipher = strdup("TLS_AES_128_GCM_SHA256");
        a->ja4 = strdup(ja4);
        a->ja4_stable = strdup(ja4s);
        a->id = INT64_C(0x0102030405060708);

        add(&w, sig, 12);
        add(&w, (uint8_t[]){0x21, 0x11, 0, 0}, 4); /* v2 PROXY, TCP over IPv4, length below */
        add(&w, (uint8_t[]){192, 0, 2, 10, 127, 0, 0, 1, 40001 >> 8, 40001 & 0xff, 8443 >> 8, 8443 & 0xff}, 12);
        add_tlv(&w, 0x01, "h2", 2);
        add_tlv(&w, 0x02, "example.com", 11);
        add(&w, (uint8_t[]){0x20, 0, 5 + 3 + 7 + 3 + 22, 0x01, 0, 0, 0, 0}, 8);
        add_tlv(&w, 0x21, "TLSv1.3", 7);
        add_tlv(&w, 0x23, "TLS_AES_128_GCM_SHA256", 22);
        add_tlv(&w, 0xE0, ja4, strlen(ja4));
        add_tlv(&w, 0xE1, ja4s, strlen(ja4s));
        add_tlv(&w, 0xE2, (uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8}, 8);
        add_tlv(&w, 0xE3, (uint8_t[]){0, 0, 1, 2}, 4);
        w.b[14] = (uint8_t) ((w.n - 16) >> 8);
        w.b[15] = (uint8_t) (w.n - 16);
        n = proxy_v2_header(a, 258, buf);
        same(buf, n, &w, "IPv4, every TLV");

        /* IPv6, no ALPN, no SNI, no id (--no-record), a long SNI cut at 255 bytes */
        strcpy(a->peer_addr, "2001:db8::1");
        strcpy(a->local_addr, "::1");
        free(a->alpn.data);
        a->alpn = (RawString){};
        memset(sni, 'a', sizeof sni);
        (void) raw_string_set(&a->sni, sni, sizeof sni);
        a->id = 0;
        w = (Bytes){};
        add(&w, sig, 12);
        add(&w, (uint8_t[]){0x21, 0x21, 0, 0}, 4);
        add(&w, (uint8_t[]){0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 16);
        add(&w, (uint8_t[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 16);
        add(&w, (uint8_t[]){40001 >> 8, 40001 & 0xff, 8443 >> 8, 8443 & 0xff}, 4);
        add_tlv(&w, 0x02, sni, 255);
        add(&w, (uint8_t[]){0x20, 0, 5 + 3 + 7 + 3 + 22, 0x01, 0, 0, 0, 0}, 8);
        add_tlv(&w, 0x21, "TLSv1.3", 7);
        add_tlv(&w, 0x23, "TLS_AES_128_GCM_SHA256", 22);
        add_tlv(&w, 0xE0, ja4, strlen(ja4));
        add_tlv(&w, 0xE1, ja4s, strlen(ja4s));
        add_tlv(&w, 0xE3, (uint8_t[]){0, 0, 0, 0}, 4);
        w.b[14] = (uint8_t) ((w.n - 16) >> 8);
        w.b[15] = (uint8_t) (w.n - 16);
        n = proxy_v2_header(a, 0, buf);
        same(buf, n, &w, "IPv6, no ALPN, no id, SNI of 300 bytes");

        /* the largest header fits: ALPN and SNI of 255 bytes and more */
        (void) raw_string_set(&a->alpn, sni, sizeof sni);
        a->id = INT64_MAX;
        n = proxy_v2_header(a, UINT32_MAX, buf);
        ok(n > 0 && n < PROXY_V2_HEADER_MAX, "the largest header fits its buffer (%d bytes)", n);

        /* a client of a unix listening socket (socket activation): no address to say, AF_UNSPEC */
        a->peer_addr[0] = a->local_addr[0] = '\0';
        free(a->alpn.data);
        a->alpn = (RawString){};
        (void) raw_string_set(&a->sni, "example.com", 11);
        a->id = 7;
        w = (Bytes){};
        add(&w, sig, 12);
        add(&w, (uint8_t[]){0x21, 0x00, 0, 0}, 4); /* v2 PROXY, UNSPEC, no address block */
        add_tlv(&w, 0x02, "example.com", 11);
        add(&w, (uint8_t[]){0x20, 0, 5 + 3 + 7 + 3 + 22, 0x01, 0, 0, 0, 0}, 8);
        add_tlv(&w, 0x21, "TLSv1.3", 7);
        add_tlv(&w, 0x23, "TLS_AES_128_GCM_SHA256", 22);
        add_tlv(&w, 0xE0, ja4, strlen(ja4));
        add_tlv(&w, 0xE1, ja4s, strlen(ja4s));
        add_tlv(&w, 0xE2, (uint8_t[]){0, 0, 0, 0, 0, 0, 0, 7}, 8);
        add_tlv(&w, 0xE3, (uint8_t[]){0, 0, 0, 3}, 4);
        w.b[14] = (uint8_t) ((w.n - 16) >> 8);
        w.b[15] = (uint8_t) (w.n - 16);
        n = proxy_v2_header(a, 3, buf);
        same(buf, n, &w, "a unix socket's client: AF_UNSPEC, no addresses, the TLVs");

        strcpy(a->peer_addr, "2001:db8::1");
        strcpy(a->local_addr, "127.0.0.1");
        is_int(proxy_v2_header(a, 0, buf), -EINVAL, "addresses of two families: refused");
        a->peer_addr[0] = '\0';
        is_int(proxy_v2_header(a, 0, buf), -EINVAL, "only one IP address: refused");
        strcpy(a->peer_addr, "::ffff:192.0.2.10");
        n = proxy_v2_header(a, 0, buf);
        ok(n > 16 && buf[13] == 0x11 && memcmp(buf + 16, (uint8_t[]){192, 0, 2, 10}, 4) == 0,
           "an IPv4-mapped client with an IPv4 local address: TCP over IPv4");
        attempt_free(a);
}

int main(void) {
        test_addresses();
        test_header();
        return tap_done();
}
