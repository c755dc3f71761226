/* SPDX-License-Identifier: MIT */
/* The strict HTTP/1.1 framing of --backend-protocol http (core/http-proxy.c): request heads with the
 * request-smuggling classics, response framing (RFC 9112 6.3), the forwarded head, and the body decoder.
 * Every head is also parsed from each of its prefixes and every body fed split at each byte, from exactly
 * sized copies (so that AddressSanitizer sees a read past the bytes given): the verdicts must agree. */

#include <stdarg.h>
#include <stdlib.h>

#include "http-proxy.h"
#include "macro.h"
#include "tap.h"

static char *copy_of(const char *s, size_t len) {
        char *c = malloc(MAX(len, (size_t) 1));

        if (!c)
                abort();
        if (len > 0)
                memcpy(c, s, len);
        return c;
}

static bool same_head(const HttpMessageHead *a, const char *abuf, const HttpMessageHead *b, const char *bbuf) {
#define SAME_PTR(f) ((a->f == NULL && b->f == NULL) || (a->f && b->f && a->f - abuf == b->f - bbuf))
        return a->status == b->status && SAME_PTR(method) && SAME_PTR(target) && SAME_PTR(host) &&
                a->method_len == b->method_len && a->target_len == b->target_len &&
                a->host_len == b->host_len && a->minor_version == b->minor_version &&
                a->framing == b->framing && a->content_length == b->content_length &&
                a->keep_alive == b->keep_alive && a->upgrade == b->upgrade &&
                a->expect_continue == b->expect_continue && a->head_len == b->head_len &&
                streq_ptr(a->error, b->error) && a->error_status == b->error_status;
#undef SAME_PTR
}

static HttpParse parse_one(bool request, bool was_head, const char *buf, size_t len, HttpMessageHead *h) {
        return request ? http_proxy_parse_request(buf, len, h)
                       : http_proxy_parse_response(buf, len, was_head, h);
}

/* Parse s whole, then every prefix of it from an exact copy: each must ask for more or give the whole's
 * verdict, the same head or the same error. A caller that parses again only when
 * http_proxy_head_worth_parsing() says so, bytes arriving one at a time, must end with the same verdict. */
static HttpParse parse_all_ways(bool request, bool was_head, const char *s, size_t len, HttpMessageHead *ret) {
        _cleanup_free_ char *whole = copy_of(s, len);
        HttpMessageHead h, p;
        HttpParse r = parse_one(request, was_head, whole, len, &h);
        size_t bad_at = SIZE_MAX, scanned = 0, worth_at = 0, k;
        HttpParse lazy = HTTP_PARSE_MORE;

        for (k = 0; k < len && bad_at == SIZE_MAX; k++) {
                _cleanup_free_ char *c = copy_of(s, k);
                HttpParse q = parse_one(request, was_head, c, k, &p);

                if (q != HTTP_PARSE_MORE && (q != r || !same_head(&p, c, &h, whole)))
                        bad_at = k;
                if (q == HTTP_PARSE_MORE && (p.error || p.error_status != 0 || p.head_len != 0))
                        bad_at = k;
        }
        if (bad_at != SIZE_MAX)
                diag("prefix of %zu bytes disagrees with the whole (%d, %s)", bad_at, r, strna(h.error));
        ok(bad_at == SIZE_MAX, "every prefix agrees with the whole");

        for (k = 1; k <= len && lazy == HTTP_PARSE_MORE; k++) {
                _cleanup_free_ char *c = copy_of(s, k);

                if (http_proxy_head_worth_parsing(c, k, scanned)) {
                        lazy = parse_one(request, was_head, c, k, &p);
                        worth_at = k;
                }
                scanned = k;
        }
        if (lazy == HTTP_PARSE_MORE) /* the bytes ended: what the caller would record */
                lazy = parse_one(request, was_head, s, len, &p);
        ok(lazy == r, "byte by byte, parsing when worth it");
        /* a complete head is parsed as soon as it is complete */
        if (r == HTTP_PARSE_DONE)
                ok(worth_at == h.head_len, "parsed when the head was complete (%zu, %zu)", worth_at, h.head_len);

        /* the head for the caller, with pointers into its bytes */
        if (parse_one(request, was_head, s, len, ret) != r)
                abort();
        return r;
}

static HttpParse req(const char *s, HttpMessageHead *h) {
        return parse_all_ways(true, false, s, strlen(s), h);
}

static HttpParse resp(const char *s, bool was_head, HttpMessageHead *h) {
        return parse_all_ways(false, was_head, s, strlen(s), h);
}

static void test_requests(void) {
        const char *s;
        HttpMessageHead h;

        s = "GET /a?b HTTP/1.1\r\nHost: example.com:8443\r\nUser-Agent: curl/8\r\n\r\n";
        is_int(req(s, &h), HTTP_PARSE_DONE, "GET");
        ok(h.method_len == 3 && memcmp(h.method, "GET", 3) == 0 && h.target_len == 4 &&
                   memcmp(h.target, "/a?b", 4) == 0,
           "method and target");
        ok(h.host_len == 16 && memcmp(h.host, "example.com:8443", 16) == 0, "Host");
        ok(h.minor_version == 1 && h.keep_alive && h.framing == HTTP_FRAMING_NONE && !h.upgrade &&
                   !h.expect_continue && !h.error && h.error_status == 0,
           "HTTP/1.1 keeps alive, no body");
        is_int(h.head_len, strlen(s), "head_len");

        s = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n";
        is_int(req(s, &h), HTTP_PARSE_DONE, "POST with Content-Length");
        ok(h.framing == HTTP_FRAMING_LENGTH && h.content_length == 5, "length 5");
        is_int(h.head_len,
               strlen("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"),
               "body after head");

        is_int(req("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
               HTTP_PARSE_DONE,
               "chunked");
        is_int(h.framing, HTTP_FRAMING_CHUNKED, "framing chunked");
        is_int(req("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tCHUNKED \r\n\r\n", &h),
               HTTP_PARSE_DONE,
               "Transfer-Encoding:<TAB>CHUNKED<SP>: OWS is legal, codings are case-insensitive");
        is_int(h.framing, HTTP_FRAMING_CHUNKED, "still chunked");
        is_int(req("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  007 \r\n\r\n", &h),
               HTTP_PARSE_DONE,
               "Content-Length with OWS and leading zeros");
        is_int(h.content_length, 7, "7");
        is_int(req("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n", &h),
               HTTP_PARSE_DONE,
               "Content-Length 2^63-1");
        ok(h.content_length == (uint64_t) INT64_MAX, "2^63-1");

        is_int(req("GET / HTTP/1.0\r\n\r\n", &h), HTTP_PARSE_DONE, "HTTP/1.0 without Host");
        ok(!h.keep_alive && h.minor_version == 0 && !h.host, "HTTP/1.0 closes by default");
        req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h);
        ok(h.keep_alive, "HTTP/1.0 with Connection: keep-alive");
        req("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, , close\r\n\r\n", &h);
        ok(!h.keep_alive, "Connection: close among other tokens (and an empty element)");

        req("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
            &h);
        ok(h.upgrade && h.keep_alive, "Upgrade with Connection: upgrade");
        req("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", &h);
        ok(!h.upgrade, "Upgrade without Connection: upgrade is no upgrade");
        req("GET /chat HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", &h);
        ok(!h.upgrade, "no upgrade in HTTP/1.0");
        req("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", &h);
        ok(h.expect_continue, "Expect: 100-continue");
        req("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &h);
        ok(!h.expect_continue, "Expect ignored in HTTP/1.0");

        is_int(req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &h), HTTP_PARSE_DONE, "OPTIONS *");
        is_int(req("GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n", &h), HTTP_PARSE_DONE, "absolute-form");
        is_int(req("GET / HTTP/1.1\r\nHost:\r\n\r\n", &h), HTTP_PARSE_DONE, "empty Host");
        is_int(req("GET / HTTP/1.1\r\nHost: [::1]:443\r\nX: caf\xc3\xa9\r\n\r\n", &h),
               HTTP_PARSE_DONE,
               "IPv6 Host, UTF-8 in a value (obs-text)");

        s = "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        is_int(req(s, &h), HTTP_PARSE_DONE, "empty lines before the request line");
        ok(h.method == s + 4 && h.head_len == strlen(s), "they belong to the head");

        s = "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        is_int(req(s, &h), HTTP_PARSE_DONE, "4 empty lines before the request line");
        s = "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        is_int(req(s, &h), HTTP_PARSE_BAD, "5 empty lines before the request line");
        is_str(h.error, "more than 4 empty lines before the request line", "why");
        is_int(req("GET / HTTP/1.1\r\nHost: x\r\n", &h), HTTP_PARSE_MORE, "no empty line yet");
        is_int(req("GET / HTTP/1.1\r\nHost: x\r\n\r", &h), HTTP_PARSE_MORE, "the last LF missing");
        is_int(req("", &h), HTTP_PARSE_MORE, "nothing");
}

typedef struct Refused {
        const char *what, *request, *error;
        int status;
} Refused;

/* The request-smuggling classics (PortSwigger's CL.TE, TE.CL and TE.TE obfuscations, RFC 9112 11.2) and
 * malformed heads: each refused, with its phrase. */
static const Refused refused[] = {
        {"CL.TE",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\nSMUGGLED",
         "Content-Length and Transfer-Encoding both present",
         400},
        {"TE.CL",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
         "8\r\nSMUGGLED\r\n0\r\n\r\n",
         "Content-Length and Transfer-Encoding both present",
         400},
        {"TE.TE xchunked",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
         "Transfer-Encoding with an unknown coding",
         501},
        {"TE.TE space before colon",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
         "whitespace between a field name and its colon",
         400},
        {"TE.TE tab before colon",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n",
         "whitespace between a field name and its colon",
         400},
        {"TE.TE duplicated",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
         "Transfer-Encoding duplicated",
         400},
        {"TE.TE duplicated identical",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
         "Transfer-Encoding duplicated",
         400},
        {"TE.TE chunked, identity",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
         "Transfer-Encoding with an unknown coding",
         501},
        {"TE.TE chunked, gzip",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
         "Transfer-Encoding whose final coding is not chunked",
         400},
        {"TE gzip, chunked",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         "Transfer-Encoding with a coding besides chunked",
         501},
        {"TE chunked, chunked",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
         "Transfer-Encoding applies chunked more than once",
         400},
        {"TE.TE quoted",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
         "Transfer-Encoding is not a list of codings",
         400},
        {"TE.TE trailing comma",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n",
         "Transfer-Encoding is not a list of codings",
         400},
        {"TE.TE vertical tab",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0b"
         "chunked\r\n\r\n",
         "a control character in a field value",
         400},
        {"TE.TE obs-fold",
         "POST / HTTP/1.1\r\nHost: x\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
         "obsolete line folding (a field line starting with whitespace)",
         400},
        {"TE.TE obs-fold of the value",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
         "Transfer-Encoding empty",
         400},
        {"TE.TE bare LF",
         "POST / HTTP/1.1\r\nHost: x\r\nX: X\nTransfer-Encoding: chunked\r\n\r\n",
         "a bare LF in the head (lines end with CRLF)",
         400},
        {"TE.TE underscore",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n",
         "Content_Length or Transfer_Encoding (an underscore for a hyphen)",
         400},
        {"TE in HTTP/1.0",
         "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Transfer-Encoding in an HTTP/1.0 message",
         400},
        {"CL +5",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
         "Content-Length is not a decimal number",
         400},
        {"CL -1",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
         "Content-Length is not a decimal number",
         400},
        {"CL hex",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
         "Content-Length is not a decimal number",
         400},
        {"CL space inside",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n",
         "Content-Length is not a decimal number",
         400},
        {"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", "Content-Length is a list", 400},
        {"CL duplicated identical",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
         "Content-Length duplicated",
         400},
        {"CL duplicated different",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n",
         "Content-Length duplicated",
         400},
        {"CL overflow",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551621\r\n\r\n",
         "Content-Length too large",
         400},
        {"CL 2^63",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n",
         "Content-Length too large",
         400},
        {"CL empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", "Content-Length empty", 400},
        {"CL underscore",
         "POST / HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\n",
         "Content_Length or Transfer_Encoding (an underscore for a hyphen)",
         400},
        {"bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", "a bare LF in the head (lines end with CRLF)", 400},
        {"bare CR", "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", "a bare CR in the head", 400},
        {"NUL", "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", "a NUL byte in the head", 400},
        {"DEL in a value",
         "GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n",
         "a control character in a field value",
         400},
        {"space in a name",
         "GET / HTTP/1.1\r\nHost: x\r\nX Y: a\r\n\r\n",
         "whitespace between a field name and its colon",
         400},
        {"bad name char",
         "GET / HTTP/1.1\r\nHost: x\r\nX(Y): a\r\n\r\n",
         "an invalid character in a field name",
         400},
        {"Latin-1 letter in a name (whatever the locale)",
         "GET / HTTP/1.1\r\nHost: x\r\nX\xe9: a\r\n\r\n",
         "an invalid character in a field name",
         400},
        {"Latin-1 letter in Host",
         "GET / HTTP/1.1\r\nHost: \xe9.x\r\n\r\n",
         "Host is not a host name and port",
         400},
        {"lower-case connect is another method",
         "connect x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
         "a request target neither origin-form nor absolute-form",
         400},
        {"absolute-form without a host",
         "GET http:// HTTP/1.1\r\nHost: x\r\n\r\n",
         "a request target neither origin-form nor absolute-form",
         400},
        {"no colon", "GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", "a field line without a colon", 400},
        {"empty name", "GET / HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n", "an empty field name", 400},
        {"double space", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "two spaces in the request line", 400},
        {"trailing space", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", "more than three parts in the request line", 400},
        {"HTTP/0.9", "GET /\r\n\r\n", "a request line without an HTTP version (HTTP/0.9)", 400},
        {"method only", "GET\r\n\r\n", "a request line without a target", 400},
        {"leading space", " GET / HTTP/1.1\r\nHost: x\r\n\r\n", "a request line starting with a space", 400},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "an HTTP version other than 1.0 or 1.1", 505},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", "an HTTP version other than 1.0 or 1.1", 505},
        {"http/1.1", "GET / http/1.1\r\nHost: x\r\n\r\n", "a malformed HTTP version", 400},
        {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", "a malformed HTTP version", 400},
        {"method char", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "an invalid character in the method", 400},
        {"target char",
         "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
         "an invalid character in the request target",
         400},
        {"raw UTF-8 target",
         "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
         "an invalid character in the request target",
         400},
        {"target form",
         "GET x HTTP/1.1\r\nHost: x\r\n\r\n",
         "a request target neither origin-form nor absolute-form",
         400},
        {"GET *",
         "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
         "a request target neither origin-form nor absolute-form",
         400},
        {"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", "CONNECT is not forwarded", 501},
        {"no Host", "GET / HTTP/1.1\r\n\r\n", "Host missing", 400},
        {"Host duplicated", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host duplicated", 400},
        {"Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "Host is not a host name and port", 400},
        {"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "Host is not a host name and port", 400},
        {"Connection: Content-Length",
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\n\r\n",
         "Connection names Content-Length, Transfer-Encoding or Host",
         400},
        {"Connection: transfer-encoding",
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, transfer-encoding\r\n\r\n",
         "Connection names Content-Length, Transfer-Encoding or Host",
         400},
        {"Connection list",
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: a b\r\n\r\n",
         "Connection is not a list of field names",
         400},
        {"Expect", "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", "Expect other than 100-continue", 417},
        {"Upgrade: h2c",
         "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
         "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
         "Upgrade: h2c (HTTP/2 over cleartext, never over TLS)",
         400},
        {"Upgrade: websocket, H2C",
         "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket, H2C\r\nConnection: upgrade\r\n\r\n",
         "Upgrade: h2c (HTTP/2 over cleartext, never over TLS)",
         400},
        {"Upgrade empty",
         "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: \r\nConnection: upgrade\r\n\r\n",
         "Upgrade empty",
         400},
};

static void test_refused(void) {
        HttpMessageHead h;

        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                const Refused *t = refused + i;
                /* the NUL case has its length from sizeof-like counting: up to its last "\r\n\r\n" */
                size_t len = strlen(t->request);
                if (strstr(t->what, "NUL"))
                        len = strlen(t->request) + 1 + strlen(t->request + strlen(t->request) + 1);

                HttpParse r = parse_all_ways(true, false, t->request, len, &h);
                is_int(r, HTTP_PARSE_BAD, "%s: refused", t->what);
                is_str(h.error, t->error, "%s: why", t->what);
                is_int(h.error_status, t->status, "%s: status", t->what);
        }
}

static void test_large(void) {
        _cleanup_free_ char *big = malloc(HTTP_PROXY_MAX_HEAD_BYTES + 8);
        const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
        HttpMessageHead h;

        /* a head of exactly 16 KiB */
        memset(big, 'a', HTTP_PROXY_MAX_HEAD_BYTES + 8);
        memcpy(big, start, strlen(start));
        memcpy(big + HTTP_PROXY_MAX_HEAD_BYTES - 4, "\r\n\r\n", 4);
        is_int(http_proxy_parse_request(big, HTTP_PROXY_MAX_HEAD_BYTES, &h),
               HTTP_PARSE_DONE,
               "a head of 16 KiB");
        is_int(h.head_len, HTTP_PROXY_MAX_HEAD_BYTES, "all of it");
        is_int(http_proxy_parse_request(big, HTTP_PROXY_MAX_HEAD_BYTES + 8, &h),
               HTTP_PARSE_DONE,
               "the same, more bytes after it");

        /* one byte more */
        memset(big, 'a', HTTP_PROXY_MAX_HEAD_BYTES + 8);
        memcpy(big, start, strlen(start));
        memcpy(big + HTTP_PROXY_MAX_HEAD_BYTES - 3, "\r\n\r\n", 4);
        is_int(http_proxy_parse_request(big, HTTP_PROXY_MAX_HEAD_BYTES + 1, &h),
               HTTP_PARSE_TOO_LARGE,
               "a head of 16 KiB + 1");
        ok(h.error_status == 431 && streq_ptr(h.error, "a request head over 16 KiB"), "431, and why");
        is_int(http_proxy_parse_request(big, HTTP_PROXY_MAX_HEAD_BYTES, &h),
               HTTP_PARSE_TOO_LARGE,
               "16 KiB without an end is too large already");
        is_int(http_proxy_parse_request(big, HTTP_PROXY_MAX_HEAD_BYTES - 1, &h),
               HTTP_PARSE_MORE,
               "16 KiB - 1 without an end asks for more");
        memset(big + 100, 'a', HTTP_PROXY_MAX_HEAD_BYTES - 100);
        ok(!http_proxy_head_worth_parsing(big, HTTP_PROXY_MAX_HEAD_BYTES - 1, HTTP_PROXY_MAX_HEAD_BYTES - 2),
           "no line end among new bytes: not worth parsing");
        const char *w = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        ok(!http_proxy_head_worth_parsing(w, 16, 0) && !http_proxy_head_worth_parsing(w, 25, 16) &&
                   !http_proxy_head_worth_parsing(w, 26, 25) && http_proxy_head_worth_parsing(w, 27, 26),
           "line ends are not worth parsing, a head's end is");
        ok(!http_proxy_head_worth_parsing(w, 27, 27), "nothing new: not worth parsing");
        ok(http_proxy_head_worth_parsing("GET\n", 4, 3) && http_proxy_head_worth_parsing("\n", 1, 0),
           "a bare LF is worth parsing");
        ok(http_proxy_head_worth_parsing("GET\rx", 5, 4) && !http_proxy_head_worth_parsing("GET\r", 4, 0),
           "a bare CR is, once the byte after it came");
        ok(http_proxy_head_worth_parsing(big, HTTP_PROXY_MAX_HEAD_BYTES, HTTP_PROXY_MAX_HEAD_BYTES - 1),
           "at the limit: worth parsing");
        big[200] = '\r';
        ok(!http_proxy_head_worth_parsing(big, 201, 200), "a CR at the end: not yet");
        ok(http_proxy_head_worth_parsing(big, 202, 201), "the byte after a CR: worth parsing");
        big[200] = 'a';
        is_int(http_proxy_parse_response(big, HTTP_PROXY_MAX_HEAD_BYTES, false, &h),
               HTTP_PARSE_BAD,
               "a request is no response");
        memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
        is_int(http_proxy_parse_response(big, HTTP_PROXY_MAX_HEAD_BYTES + 1, false, &h),
               HTTP_PARSE_TOO_LARGE,
               "a response head over 16 KiB");
        is_int(h.error_status, 502, "from the backend: 502");
}

typedef struct RespCase {
        const char *what, *response;
        bool was_head;
        HttpParse verdict;
        HttpFraming framing;
        uint64_t length;
        bool keep_alive, upgrade;
        const char *error;
} RespCase;

static const RespCase responses[] = {
        {"length",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_LENGTH,
         5,
         true,
         false,
         NULL},
        {"chunked",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_CHUNKED,
         0,
         true,
         false,
         NULL},
        {"gzip, chunked",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_CHUNKED,
         0,
         true,
         false,
         NULL},
        {"no length: until close",
         "HTTP/1.1 200 OK\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_CLOSE,
         0,
         false,
         false,
         NULL},
        {"gzip only: until close",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_CLOSE,
         0,
         false,
         false,
         NULL},
        {"HEAD",
         "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
         true,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_NONE,
         0,
         true,
         false,
         NULL},
        {"HEAD, chunked",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         true,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_NONE,
         0,
         true,
         false,
         NULL},
        {"204", "HTTP/1.1 204 No Content\r\n\r\n", false, HTTP_PARSE_DONE, HTTP_FRAMING_NONE, 0, true, false, NULL},
        {"204 with a chunked coding: no body all the same",
         "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_NONE,
         0,
         true,
         false,
         NULL},
        {"Content_Length from the backend",
         "HTTP/1.1 200 OK\r\nContent_Length: 5\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Content_Length or Transfer_Encoding (an underscore for a hyphen)"},
        {"304 with a length",
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_NONE,
         0,
         true,
         false,
         NULL},
        {"100 Continue",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_NONE,
         0,
         true,
         false,
         NULL},
        {"103 Early Hints",
         "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_NONE,
         0,
         true,
         false,
         NULL},
        {"101",
         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_NONE,
         0,
         false,
         true,
         NULL},
        {"Connection: close",
         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_LENGTH,
         0,
         false,
         false,
         NULL},
        {"HTTP/1.0",
         "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_LENGTH,
         1,
         false,
         false,
         NULL},
        {"HTTP/1.0 keep-alive",
         "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_LENGTH,
         1,
         true,
         false,
         NULL},
        {"no reason phrase",
         "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_LENGTH,
         0,
         true,
         false,
         NULL},
        {"empty reason phrase",
         "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
         false,
         HTTP_PARSE_DONE,
         HTTP_FRAMING_LENGTH,
         0,
         true,
         false,
         NULL},
        {"CL and TE",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Content-Length and Transfer-Encoding both present"},
        {"CL and TE to HEAD",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         true,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Content-Length and Transfer-Encoding both present"},
        {"CL duplicated",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Content-Length duplicated"},
        {"CL malformed",
         "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Content-Length is not a decimal number"},
        {"chunked, gzip",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Transfer-Encoding with chunked before its final coding"},
        {"chunked twice",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Transfer-Encoding with chunked before its final coding"},
        {"TE in HTTP/1.0",
         "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "Transfer-Encoding in an HTTP/1.0 message"},
        {"obs-fold",
         "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "obsolete line folding (a field line starting with whitespace)"},
        {"bare LF",
         "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "a bare LF in the head (lines end with CRLF)"},
        {"HTTP/2", "HTTP/2 200\r\n\r\n", false, HTTP_PARSE_BAD, 0, 0, false, false, "a malformed HTTP version"},
        {"HTTP/2.0",
         "HTTP/2.0 200 OK\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "an HTTP version other than 1.0 or 1.1"},
        {"ICY", "ICY 200 OK\r\n\r\n", false, HTTP_PARSE_BAD, 0, 0, false, false, "a malformed HTTP version"},
        {"status 2000", "HTTP/1.1 2000 OK\r\n\r\n", false, HTTP_PARSE_BAD, 0, 0, false, false, "a malformed status code"},
        {"status 099", "HTTP/1.1 099 X\r\n\r\n", false, HTTP_PARSE_BAD, 0, 0, false, false, "a status code outside 100..599"},
        {"status 600", "HTTP/1.1 600 X\r\n\r\n", false, HTTP_PARSE_BAD, 0, 0, false, false, "a status code outside 100..599"},
        {"status 20x", "HTTP/1.1 20x OK\r\n\r\n", false, HTTP_PARSE_BAD, 0, 0, false, false, "a malformed status code"},
        {"no status", "HTTP/1.1\r\n\r\n", false, HTTP_PARSE_BAD, 0, 0, false, false, "a status line without a status code"},
        {"CTL in reason",
         "HTTP/1.1 200 O\x01K\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "a control character in the reason phrase"},
        {"empty line first",
         "\r\nHTTP/1.1 200 OK\r\n\r\n",
         false,
         HTTP_PARSE_BAD,
         0,
         0,
         false,
         false,
         "an empty line before the status line"},
        {"incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false, HTTP_PARSE_MORE, 0, 0, false, false, NULL},
};

static void test_responses(void) {
        HttpMessageHead h;

        for (size_t i = 0; i < ELEMENTSOF(responses); i++) {
                const RespCase *t = responses + i;
                HttpParse r = resp(t->response, t->was_head, &h);

                is_int(r, t->verdict, "response %s: verdict", t->what);
                is_str(h.error, t->error, "response %s: why", t->what);
                if (r == HTTP_PARSE_DONE)
                        ok(h.framing == t->framing && h.content_length == t->length &&
                                   h.keep_alive == t->keep_alive && h.upgrade == t->upgrade,
                           "response %s: framing %s, length %" PRIu64 ", keep-alive %d, upgrade %d",
                           t->what,
                           http_framing_to_string(h.framing),
                           h.content_length,
                           h.keep_alive,
                           h.upgrade);
                else if (r == HTTP_PARSE_BAD)
                        is_int(h.error_status, 502, "response %s: a backend error", t->what);
        }

        /* an interim response, then the final one after it */
        const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        is_int(http_proxy_parse_response(s, strlen(s), false, &h), HTTP_PARSE_DONE, "100 Continue");
        is_int(h.status, 100, "interim");
        size_t off = h.head_len;
        is_int(http_proxy_parse_response(s + off, strlen(s) - off, false, &h), HTTP_PARSE_DONE, "then 201");
        ok(h.status == 201 && h.framing == HTTP_FRAMING_LENGTH && h.content_length == 2 &&
                   off + h.head_len + 2 == strlen(s),
           "201 with its body");
}

static const HttpForwardInfo info = {
        .client_addr = "192.0.2.7",
        .ja4 = "t13d1516h2_8daaf6152771_e5627efa2ab1",
        .ja4_stable = "t13d1516h2_8daaf6152771_02713d6af862",
        .attempt_id = 4242,
        .prior_failures = 2,
};

static char *rewrite(const char *s, const HttpForwardInfo *fi, HttpMessageHead *h) {
        char *out = NULL;
        size_t n = 0;
        int r;

        if (http_proxy_parse_request(s, strlen(s), h) != HTTP_PARSE_DONE)
                return NULL;
        r = http_proxy_rewrite_request(s, h, fi, &out, &n);
        if (r < 0)
                return NULL;
        if (strlen(out) != n)
                abort();
        return out;
}

static unsigned count(const char *hay, const char *needle) {
        unsigned n = 0;

        for (const char *p = hay; (p = strcasestr(p, needle)); p++)
                n++;
        return n;
}

/* The rewritten head is itself a valid request with the same framing, and rewriting it again changes
 * nothing. */
static void check_rewrite_stable(const char *what, const char *out, const HttpMessageHead *orig) {
        _cleanup_free_ char *again = NULL;
        HttpMessageHead h;

        again = rewrite(out, &info, &h);
        ok(again && h.framing == orig->framing && h.content_length == orig->content_length &&
                   h.keep_alive == orig->keep_alive && h.upgrade == orig->upgrade &&
                   h.minor_version == orig->minor_version && h.head_len == strlen(out),
           "%s: the forwarded head parses with the same framing",
           what);
        is_str(again, out, "%s: rewriting it again changes nothing", what);
}

static void test_rewrite(void) {
        HttpMessageHead h;
        char *out;

        out = rewrite("GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", &info, &h);
        is_str(out,
               "GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n"
               "X-Forwarded-For: 192.0.2.7\r\n"
               "X-Forwarded-Proto: https\r\n"
               "TLS-Client-JA4: t13d1516h2_8daaf6152771_e5627efa2ab1\r\n"
               "TLS-Client-JA4-Stable: t13d1516h2_8daaf6152771_02713d6af862\r\n"
               "TLS-Attempt-Id: 4242\r\n"
               "TLS-Prior-Failures: 2\r\n\r\n",
               "a plain GET, byte for byte");
        check_rewrite_stable("plain GET", out, &h);
        free(out);

        out = rewrite(
                "POST /p HTTP/1.1\r\n"
                "TLS-Client-JA4: spoofed\r\n"
                "Host: a\r\n"
                "tls-attempt-id: 1\r\n"
                "X-Forwarded-For: 10.0.0.1\r\n"
                "x-forwarded-for: 10.0.0.2, 10.0.0.3\r\n"
                "X-Forwarded-Proto: http\r\n"
                "X-Forwarded-Host: evil\r\n"
                "Forwarded: for=10.0.0.1\r\n"
                "X-Real-IP: 10.0.0.1\r\n"
                "TLS-Prior-Failures: 0\r\n"
                "Tls-Client-Ja4-Stable: spoofed\r\n"
                "TLS-Whatever: x\r\n"
                "TLS_Client_JA4: spoofed\r\n"
                "x_forwarded_for: 10.0.0.4\r\n"
                "X_Real_IP: 10.0.0.5\r\n"
                "Content-Length: 3\r\n"
                "\r\n",
                &info,
                &h);
        ok(out && !strstr(out, "spoofed") && !strstr(out, "10.0.0.") && !strstr(out, "evil") &&
                   !strcasestr(out, "Forwarded: for") && !strcasestr(out, "X-Real-IP") &&
                   !strcasestr(out, "TLS-Whatever") && !strcasestr(out, "tls-attempt-id: 1") &&
                   !strcasestr(out, "X_Real_IP"),
           "spoofed TLS-* and forwarding fields removed, every occurrence, any case, '_' for '-'");
        ok(count(out, "TLS-Client-JA4:") == 1 && count(out, "TLS-Client-JA4-Stable:") == 1 &&
                   count(out, "TLS-Attempt-Id: 4242\r\n") == 1 &&
                   count(out, "TLS-Prior-Failures: 2\r\n") == 1 &&
                   count(out, "X-Forwarded-For: 192.0.2.7\r\n") == 1 && count(out, "X-Forwarded-Proto:") == 1,
           "ours, once each");
        ok(strstr(out, "\r\nHost: a\r\nContent-Length: 3\r\nX-Forwarded-For") != NULL,
           "the others kept, in order; Content-Length stays");
        check_rewrite_stable("spoofed", out, &h);
        free(out);

        out = rewrite(
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret, X-Forwarded-For\r\n"
                "X-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                "X-Kept: k\r\nx-secret: t\r\n\r\n",
                &info,
                &h);
        ok(out && !strcasestr(out, "X-Secret") && !strcasestr(out, "Keep-Alive") &&
                   !strcasestr(out, "TE: ") && strstr(out, "X-Kept: k\r\n"),
           "hop-by-hop fields and those Connection names removed");
        ok(count(out, "Connection: close\r\n") == 1 && count(out, "Connection:") == 1 &&
                   count(out, "X-Forwarded-For: 192.0.2.7\r\n") == 1,
           "Connection: close once; ours not removed by the client's Connection");
        check_rewrite_stable("hop-by-hop", out, &h);
        free(out);

        out = rewrite(
                "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                &info,
                &h);
        ok(out && strstr(out, "\r\nUpgrade: websocket\r\n") && strstr(out, "\r\nConnection: upgrade\r\n") &&
                   strstr(out, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
           "an upgrade keeps Upgrade, with Connection: upgrade");
        check_rewrite_stable("upgrade", out, &h);
        free(out);

        out = rewrite("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &info, &h);
        ok(out && !strcasestr(out, "Upgrade"), "Upgrade without Connection: upgrade is removed");
        free(out);

        out = rewrite("\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &info, &h);
        ok(out && strncmp(out, "GET / HTTP/1.0\r\n", 16) == 0 && count(out, "Connection: keep-alive\r\n") == 1,
           "HTTP/1.0 keep-alive says so; empty lines before it dropped");
        check_rewrite_stable("HTTP/1.0", out, &h);
        free(out);

        out = rewrite(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
                &info,
                &h);
        ok(out && strstr(out, "\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"),
           "Transfer-Encoding and Trailer kept");
        check_rewrite_stable("chunked", out, &h);
        free(out);

        out = rewrite("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:\tCHUNKED \r\nX: y\r\n\r\n", &info, &h);
        ok(out && strstr(out, "\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX: y\r\n"),
           "Transfer-Encoding in its canonical form, in its place");
        check_rewrite_stable("canonical chunked", out, &h);
        free(out);
        out = rewrite("POST / HTTP/1.1\r\ncontent-length:007 \r\nHost: a\r\n\r\n", &info, &h);
        ok(out && strstr(out, "POST / HTTP/1.1\r\nContent-Length: 7\r\nHost: a\r\n"),
           "Content-Length in its canonical form, in its place");
        check_rewrite_stable("canonical length", out, &h);
        free(out);

        HttpForwardInfo no_ja4 = info;
        no_ja4.ja4 = no_ja4.ja4_stable = NULL;
        out = rewrite("GET / HTTP/1.1\r\nHost: a\r\nTLS-Client-JA4: spoofed\r\n\r\n", &no_ja4, &h);
        ok(out && !strcasestr(out, "TLS-Client-JA4") && strstr(out, "TLS-Attempt-Id: 4242\r\n"),
           "no JA4: the header left out, the client's still removed");
        free(out);
        no_ja4.attempt_id = 0;
        out = rewrite("GET / HTTP/1.1\r\nHost: a\r\nTLS-Attempt-Id: 7\r\n\r\n", &no_ja4, &h);
        ok(out && !strcasestr(out, "TLS-Attempt-Id") && strstr(out, "TLS-Prior-Failures: 2\r\n"),
           "no row (--no-record): no TLS-Attempt-Id, the client's still removed");
        free(out);

        HttpForwardInfo evil = info;
        const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        size_t n;
        out = NULL;
        is_int(http_proxy_parse_request(s, strlen(s), &h), HTTP_PARSE_DONE, "parse");
        evil.ja4 = "a\r\nX-Injected: 1";
        is_int(http_proxy_rewrite_request(s, &h, &evil, &out, &n), -EINVAL, "CRLF in a value: refused");
        evil = info;
        evil.client_addr = "";
        is_int(http_proxy_rewrite_request(s, &h, &evil, &out, &n), -EINVAL, "empty address: refused");
        ok(!out, "nothing returned");
}

typedef struct BodyResult {
        HttpBodyStep step;
        size_t consumed;
        const char *error;
} BodyResult;

/* Feed the pieces [0, cut) and [cut, len) (whole when cut == len), each from an exact copy, stopping at
 * DONE or BAD. */
static BodyResult feed_split(const HttpMessageHead *h, const char *s, size_t len, size_t cut) {
        BodyResult r = {HTTP_BODY_MORE, 0, NULL};
        HttpBody b;
        size_t piece[2] = {cut, len - cut}, off = 0;

        http_body_init(&b, h);
        for (size_t i = 0; i < 2 && r.step == HTTP_BODY_MORE; i++) {
                _cleanup_free_ char *c = copy_of(s + off, piece[i]);
                size_t n = SIZE_MAX;

                r.step = http_body_feed(&b, c, piece[i], &n);
                if (n > piece[i] || (r.step == HTTP_BODY_MORE && n != piece[i]))
                        return (BodyResult){-1, n, "consumed out of range"};
                r.consumed += n;
                off += piece[i];
        }
        r.error = r.step == HTTP_BODY_BAD ? b.error : NULL;
        return r;
}

static BodyResult feed_bytewise(const HttpMessageHead *h, const char *s, size_t len) {
        BodyResult r = {HTTP_BODY_MORE, 0, NULL};
        HttpBody b;

        http_body_init(&b, h);
        for (size_t i = 0; i < len && r.step == HTTP_BODY_MORE; i++) {
                _cleanup_free_ char *c = copy_of(s + i, 1);
                size_t n;

                r.step = http_body_feed(&b, c, 1, &n);
                r.consumed += n;
        }
        if (r.step == HTTP_BODY_MORE && len == 0) {
                size_t n;
                r.step = http_body_feed(&b, NULL, 0, &n);
        }
        r.error = r.step == HTTP_BODY_BAD ? b.error : NULL;
        return r;
}

static bool same_result(const BodyResult *a, const BodyResult *b) {
        return a->step == b->step && a->consumed == b->consumed && streq_ptr(a->error, b->error);
}

/* The body of s (a chunked or length-framed message's bytes after its head) fed whole, split at every
 * byte, and a byte at a time: one result. */
static BodyResult body_all_ways(HttpFraming f, uint64_t length, const char *s, size_t len) {
        HttpMessageHead h = {.framing = f, .content_length = length};
        BodyResult whole = feed_split(&h, s, len, len), r;
        size_t bad_at = SIZE_MAX;

        for (size_t cut = 0; cut < len && bad_at == SIZE_MAX; cut++) {
                r = feed_split(&h, s, len, cut);
                if (!same_result(&r, &whole))
                        bad_at = cut;
        }
        if (bad_at != SIZE_MAX)
                diag("split at %zu: step %d consumed %zu, whole: step %d consumed %zu",
                     bad_at,
                     r.step,
                     r.consumed,
                     whole.step,
                     whole.consumed);
        ok(bad_at == SIZE_MAX, "split at every byte: the same");
        r = feed_bytewise(&h, s, len);
        ok(same_result(&r, &whole), "a byte at a time: the same");
        return whole;
}

typedef struct BodyCase {
        const char *what, *body;
        HttpBodyStep step;
        size_t consumed; /* DONE: bytes of the body; SIZE_MAX: all of them */
        const char *error;
} BodyCase;

static const BodyCase chunked[] = {
        {"one chunk", "5\r\nhello\r\n0\r\n\r\n", HTTP_BODY_DONE, SIZE_MAX, NULL},
        {"then the next request", "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", HTTP_BODY_DONE, 15, NULL},
        {"TE.CL payload is a body and a request",
         "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
         HTTP_BODY_DONE,
         5,
         NULL},
        {"hex, upper and lower case",
         "A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n",
         HTTP_BODY_DONE,
         SIZE_MAX,
         NULL},
        {"leading zeros, 16 digits",
         "0000000000000003\r\nabc\r\n0000000000000000\r\n\r\n",
         HTTP_BODY_DONE,
         SIZE_MAX,
         NULL},
        {"extensions", "5;a=b;c ; d = \"q \\\" ;x\"\r\nhello\r\n0;last\r\n\r\n", HTTP_BODY_DONE, SIZE_MAX, NULL},
        {"trailers", "5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Empty:\r\n\r\n", HTTP_BODY_DONE, SIZE_MAX, NULL},
        {"incomplete", "5\r\nhel", HTTP_BODY_MORE, SIZE_MAX, NULL},
        {"incomplete trailer", "0\r\nX-Sum: abc\r\n", HTTP_BODY_MORE, SIZE_MAX, NULL},
        {"2^63-1", "7fffffffffffffff\r\nabc", HTTP_BODY_MORE, SIZE_MAX, NULL},
        {"bare LF after the size", "5\nhello\r\n0\r\n\r\n", HTTP_BODY_BAD, 1, "a bare LF in a chunk-size line"},
        {"bare CR after the size", "5\rhello\r\n0\r\n\r\n", HTTP_BODY_BAD, 2, "a bare CR in a chunk-size line"},
        {"data longer than its size",
         "5\r\nhelloX\r\n0\r\n\r\n",
         HTTP_BODY_BAD,
         8,
         "chunk data not followed by CRLF"},
        {"LF alone after the data", "5\r\nhello\n0\r\n\r\n", HTTP_BODY_BAD, 8, "chunk data not followed by CRLF"},
        {"CR alone after the data", "5\r\nhello\r0\r\n\r\n", HTTP_BODY_BAD, 9, "chunk data not followed by CRLF"},
        {"not hex", "g\r\n", HTTP_BODY_BAD, 0, "a chunk size that is not hexadecimal"},
        {"0x prefix", "0x5\r\nhello\r\n", HTTP_BODY_BAD, 1, "a chunk size that is not hexadecimal"},
        {"negative", "-5\r\n", HTTP_BODY_BAD, 0, "a chunk size that is not hexadecimal"},
        {"empty size line", "\r\nhello", HTTP_BODY_BAD, 0, "a chunk size that is not hexadecimal"},
        {"leading space", " 5\r\nhello\r\n", HTTP_BODY_BAD, 0, "a chunk size that is not hexadecimal"},
        {"17 digits", "00000000000000005\r\nhello\r\n", HTTP_BODY_BAD, 16, "a chunk size over 2^63-1"},
        {"2^64-1", "ffffffffffffffff\r\n", HTTP_BODY_BAD, 15, "a chunk size over 2^63-1"},
        {"2^63", "8000000000000000\r\n", HTTP_BODY_BAD, 15, "a chunk size over 2^63-1"},
        {"space after the size", "5 \r\nhello\r\n", HTTP_BODY_BAD, 2, "a malformed chunk extension"},
        {"empty extension", "5;\r\nhello\r\n", HTTP_BODY_BAD, 2, "a malformed chunk extension"},
        {"extension without value", "5;a=\r\nhello\r\n", HTTP_BODY_BAD, 4, "a malformed chunk extension"},
        {"extension bad char", "5;a@b\r\nhello\r\n", HTTP_BODY_BAD, 3, "a malformed chunk extension"},
        {"unterminated quoted", "5;a=\"b\r\nhello\r\n", HTTP_BODY_BAD, 6, "a malformed chunk extension"},
        {"bare LF in an extension", "5;a=b\nhello\r\n", HTTP_BODY_BAD, 5, "a bare LF in a chunk-size line"},
        {"trailer obs-fold",
         "0\r\nX: a\r\n b\r\n\r\n",
         HTTP_BODY_BAD,
         9,
         "obsolete line folding in the trailer section"},
        {"trailer Content-Length",
         "0\r\nContent-Length: 5\r\n\r\n",
         HTTP_BODY_BAD,
         17,
         "Content-Length, Transfer-Encoding or Host in the trailer"},
        {"trailer transfer-encoding",
         "0\r\ntransfer-encoding: chunked\r\n\r\n",
         HTTP_BODY_BAD,
         20,
         "Content-Length, Transfer-Encoding or Host in the trailer"},
        {"trailer TLS-Client-JA4",
         "0\r\nTLS-Client-JA4: forged\r\n\r\n",
         HTTP_BODY_BAD,
         17,
         "a TLS-*, X-Forwarded-*, Forwarded or X-Real-IP field in the trailer section"},
        {"trailer x_forwarded_for",
         "0\r\nX-Sum: 1\r\nx_forwarded_for: 6.6.6.6\r\n\r\n",
         HTTP_BODY_BAD,
         28,
         "a TLS-*, X-Forwarded-*, Forwarded or X-Real-IP field in the trailer section"},
        {"trailer forwarded",
         "0\r\nforwarded: for=6.6.6.6\r\n\r\n",
         HTTP_BODY_BAD,
         12,
         "a TLS-*, X-Forwarded-*, Forwarded or X-Real-IP field in the trailer section"},
        {"trailer space before colon",
         "0\r\nX : a\r\n\r\n",
         HTTP_BODY_BAD,
         4,
         "whitespace between a field name and its colon"},
        {"trailer bare LF", "0\r\nX: a\n\r\n", HTTP_BODY_BAD, 7, "a bare LF in the trailer section"},
        {"trailer bare CR", "0\r\nX: a\rb\r\n\r\n", HTTP_BODY_BAD, 8, "a bare CR in the trailer section"},
        {"final bare LF", "0\r\n\n", HTTP_BODY_BAD, 3, "a bare LF in the trailer section"},
        {"final CR alone", "0\r\n\rX", HTTP_BODY_BAD, 4, "a bare CR in the trailer section"},
        {"trailer without colon", "0\r\nX\r\n\r\n", HTTP_BODY_BAD, 4, "an invalid character in a trailer field name"},
        {"trailer NUL", "0\r\nX: a\0b\r\n\r\n", HTTP_BODY_BAD, 7, "a control character in a trailer field value"},
};

static void test_bodies(void) {
        for (size_t i = 0; i < ELEMENTSOF(chunked); i++) {
                const BodyCase *t = chunked + i;
                size_t len = strlen(t->body);
                if (strstr(t->what, "NUL"))
                        len += 1 + strlen(t->body + len + 1);
                BodyResult r = body_all_ways(HTTP_FRAMING_CHUNKED, 0, t->body, len);

                is_int(r.step, t->step, "chunked %s: step", t->what);
                is_int(r.consumed, t->consumed == SIZE_MAX ? len : t->consumed, "chunked %s: consumed", t->what);
                is_str(r.error, t->error, "chunked %s: why", t->what);
        }

        BodyResult r = body_all_ways(HTTP_FRAMING_LENGTH, 5, "helloGET", 8);
        ok(r.step == HTTP_BODY_DONE && r.consumed == 5, "Content-Length: 5 takes 5 bytes");
        r = body_all_ways(HTTP_FRAMING_LENGTH, 5, "hel", 3);
        ok(r.step == HTTP_BODY_MORE && r.consumed == 3, "and waits for the rest");
        r = body_all_ways(HTTP_FRAMING_LENGTH, 0, "", 0);
        ok(r.step == HTTP_BODY_DONE && r.consumed == 0, "Content-Length: 0 is done at once");
        r = body_all_ways(HTTP_FRAMING_NONE, 0, "GET", 3);
        ok(r.step == HTTP_BODY_DONE && r.consumed == 0, "no body: done at once, nothing taken");
        r = body_all_ways(HTTP_FRAMING_CLOSE, 0, "0\r\n\r\nanything", 13);
        ok(r.step == HTTP_BODY_MORE && r.consumed == 13, "until close: everything, never done");

        /* After DONE or BAD, it stays so. */
        HttpMessageHead h = {.framing = HTTP_FRAMING_CHUNKED};
        HttpBody b;
        size_t n;
        http_body_init(&b, &h);
        is_int(http_body_feed(&b, "0\r\n\r\nX", 6, &n), HTTP_BODY_DONE, "done");
        is_int(n, 5, "after the last chunk");
        ok(http_body_feed(&b, "X", 1, &n) == HTTP_BODY_DONE && n == 0, "done stays done, taking nothing");
        http_body_init(&b, &h);
        is_int(http_body_feed(&b, "z", 1, &n), HTTP_BODY_BAD, "bad");
        ok(http_body_feed(&b, "0\r\n\r\n", 5, &n) == HTTP_BODY_BAD && n == 0, "bad stays bad");

        /* the limits */
        _cleanup_free_ char *big = malloc(HTTP_PROXY_MAX_HEAD_BYTES + 64);
        memset(big, 'a', HTTP_PROXY_MAX_HEAD_BYTES + 64);
        memcpy(big, "1;", 2);
        http_body_init(&b, &h);
        ok(http_body_feed(&b, big, HTTP_PROXY_MAX_CHUNK_LINE, &n) == HTTP_BODY_MORE &&
                   n == HTTP_PROXY_MAX_CHUNK_LINE,
           "a chunk-size line of 4 KiB is not refused yet");
        ok(http_body_feed(&b, big, 1, &n) == HTTP_BODY_BAD &&
                   streq_ptr(b.error, "a chunk-size line over 4 KiB"),
           "one byte more is");
        memcpy(big, "0\r\nX: ", 6);
        http_body_init(&b, &h);
        is_int(http_body_feed(&b, big, HTTP_PROXY_MAX_HEAD_BYTES + 64, &n), HTTP_BODY_BAD, "a huge trailer");
        is_str(b.error, "a trailer section over 16 KiB", "why");
        is_int(n, HTTP_PROXY_MAX_HEAD_BYTES + 3, "refused at its limit");
}

static void test_pipeline(void) {
        /* The TE.CL classic through the whole path: the proxy frames by chunked, so the "smuggled" request
         * is a request of its own, parsed and rewritten like any other. */
        const char *s = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\n"
                        "GET /admin HTTP/1.1\r\nHost: x\r\nTLS-Attempt-Id: 1\r\n\r\n";
        HttpMessageHead h;
        HttpBody b;
        size_t off, n;

        is_int(http_proxy_parse_request(s, strlen(s), &h), HTTP_PARSE_DONE, "pipeline: the POST");
        off = h.head_len;
        http_body_init(&b, &h);
        is_int(http_body_feed(&b, s + off, strlen(s) - off, &n), HTTP_BODY_DONE, "pipeline: its body");
        off += n;
        is_int(http_proxy_parse_request(s + off, strlen(s) - off, &h), HTTP_PARSE_DONE, "pipeline: the GET");
        ok(h.target_len == 6 && memcmp(h.target, "/admin", 6) == 0 && off + h.head_len == strlen(s),
           "pipeline: a request of its own, up to the end");
        _cleanup_free_ char *out = NULL;
        is_int(http_proxy_rewrite_request(s + off, &h, &info, &out, &n), 0, "pipeline: rewritten");
        ok(count(out, "TLS-Attempt-Id:") == 1 && strstr(out, "TLS-Attempt-Id: 4242\r\n"),
           "pipeline: with our attempt id only");
}

int main(void) {
        test_requests();
        test_refused();
        test_large();
        test_responses();
        test_rewrite();
        test_bodies();
        test_pipeline();
        return tap_done();
}
