/* SPDX-License-Identifier: MIT */
#include "http.h"
#include "macro.h"
#include "tap.h"

static HttpParse parse(const char *s, HttpRequest *req) {
        return http_parse_request(s, strlen(s), req);
}

static void test_requests(void) {
        HttpRequest r;

        is_int(parse("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n", &r), HTTP_PARSE_DONE, "GET");
        ok(r.method_len == 3 && memcmp(r.method, "GET", 3) == 0, "method");
        ok(r.target_len == 1 && r.target[0] == '/', "target");
        ok(r.has_user_agent && r.user_agent_len == 6 && memcmp(r.user_agent, "curl/8", 6) == 0, "User-Agent");
        ok(r.keep_alive && !r.has_body && r.minor_version == 1, "HTTP/1.1 keeps alive, no body");
        is_int(r.consumed, strlen("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n"), "consumed");

        is_int(parse("GET / HTTP/1.0\r\n\r\n", &r), HTTP_PARSE_DONE, "HTTP/1.0");
        ok(!r.keep_alive, "HTTP/1.0 closes by default");
        parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r);
        ok(r.keep_alive, "HTTP/1.0 with Connection: keep-alive");
        parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &r);
        ok(!r.keep_alive, "Connection: close among other tokens");
        parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r);
        ok(r.has_body, "Content-Length > 0 is a body");
        parse("POST / HTTP/1.1\r\nContent-Length: 000\r\n\r\n", &r);
        ok(!r.has_body, "Content-Length 0 is no body");
        parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r);
        ok(r.has_body, "chunked is a body");
        is_int(parse("GET / HTTP/1.1\n\n", &r), HTTP_PARSE_DONE, "bare LF line ends");
        is_int(parse("\r\nGET / HTTP/1.1\r\n\r\n", &r), HTTP_PARSE_DONE, "an empty line before the request");
        parse("GET / HTTP/1.1\r\nUser-Agent: first\r\nUser-Agent: second\r\n\r\n", &r);
        ok(r.user_agent_len == 5 && memcmp(r.user_agent, "first", 5) == 0, "the first User-Agent counts");

        /* pipelined: only the first request is consumed */
        const char *two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        is_int(http_parse_request(two, strlen(two), &r), HTTP_PARSE_DONE, "pipelined");
        is_int(r.consumed, strlen("GET /a HTTP/1.1\r\n\r\n"), "first of two consumed");
}

static void test_bad(void) {
        static const char *const bad[] = {
                "GARBAGE\r\n\r\n",
                "GET /\r\n\r\n",
                "GET / HTTP/2.0\r\n\r\n",
                "GET / HTTP/1.1 extra\r\n\r\n",
                " GET / HTTP/1.1\r\n\r\n",
                "G(T / HTTP/1.1\r\n\r\n",
                "GET /a\x01 HTTP/1.1\r\n\r\n",
                "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
                "GET / HTTP/1.1\r\n folded: header\r\n\r\n",
                "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
                "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
                "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        };
        HttpRequest r;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(http_parse_request(bad[i], strlen(bad[i]), &r), HTTP_PARSE_BAD, "bad request %zu", i);
        is_int(http_parse_request("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26, &r),
               HTTP_PARSE_BAD,
               "NUL in a header");
}

static void test_incomplete_and_large(void) {
        char big[HTTP_MAX_HEADER_BYTES + 64];
        const char *full = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        HttpRequest r;

        for (size_t n = 0; n < strlen(full); n++)
                if (http_parse_request(full, n, &r) != HTTP_PARSE_MORE)
                        return (void) ok(false, "a truncated request at %zu bytes is not \"more\"", n);
        ok(true, "every truncation of a request asks for more");

        memset(big, 'a', sizeof big);
        memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
        is_int(http_parse_request(big, HTTP_MAX_HEADER_BYTES, &r), HTTP_PARSE_TOO_LARGE, "8 KiB without an end");
        memcpy(big + sizeof big - 4, "\r\n\r\n", 4);
        is_int(http_parse_request(big, sizeof big, &r), HTTP_PARSE_TOO_LARGE, "a complete header over 8 KiB");
}

static void test_misc(void) {
        _cleanup_free_ char *resp = NULL;
        size_t len;

        ok(http_looks_like_request("GET ", 4) && http_looks_like_request("POST /", 6) &&
                   http_looks_like_request("GE", 2) == false,
           "looks like HTTP: methods, and not two bytes");
        ok(!http_looks_like_request("\x16\x03\x01", 3), "a TLS record does not look like HTTP");
        is_int(http_response_build(404, "text/plain", "nope\n", 5, true, false, &resp, &len),
               0,
               "build a response");
        ok(strstr(resp, "HTTP/1.1 404 Not Found\r\n") == resp && strstr(resp, "Content-Length: 5\r\n") &&
                   strstr(resp, "Connection: keep-alive\r\n") && len >= 5 &&
                   memcmp(resp + len - 5, "nope\n", 5) == 0,
           "status line, length, connection, body");
        free(resp);
        resp = NULL;
        is_int(http_response_build(200, "text/html", "<p>", 3, false, true, &resp, &len), 0, "HEAD response");
        ok(strstr(resp, "Content-Length: 3\r\n") && memcmp(resp + len - 4, "\r\n\r\n", 4) == 0 &&
                   strstr(resp, "Connection: close\r\n"),
           "HEAD: the length of the body that is left out");
}

int main(void) {
        test_requests();
        test_bad();
        test_incomplete_and_large();
        test_misc();
        return tap_done();
}
