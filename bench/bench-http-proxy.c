/* SPDX-License-Identifier: MIT */
/* The backend's HTTP/1.1 framing (core/http-proxy.c, issue 18), against baselines in the same run: a
 * browser's request head parsed strictly vs by the self page's parser (core/http.c) and rewritten; a
 * chunked body delimited vs memcpy() of the same bytes; the worst heads a client can send (16 KiB of short
 * lines a byte at a time, parsing when http_proxy_head_worth_parsing() says so or at every line end, and a
 * Connection naming thousands of fields) vs one parse of a head of that size. Medians of several rounds.
 * Usage: bench-http-proxy [ROUNDS] */

#include <stdio.h>
#include <string.h>

#include "bench-util.h"
#include "http-proxy.h"
#include "http.h"
#include "macro.h"

static const char chromium[] = "GET /static/app.css HTTP/1.1\r\n"
                               "Host: shop.example.test\r\n"
                               "Connection: keep-alive\r\n"
                               "sec-ch-ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\"\r\n"
                               "sec-ch-ua-mobile: ?0\r\n"
                               "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                               "Gecko) "
                               "Chrome/120.0.0.0 Safari/537.36\r\n"
                               "sec-ch-ua-platform: \"Linux\"\r\n"
                               "Accept: text/css,*/*;q=0.1\r\n"
                               "Sec-Fetch-Site: same-origin\r\n"
                               "Sec-Fetch-Mode: no-cors\r\n"
                               "Sec-Fetch-Dest: style\r\n"
                               "Referer: https://shop.example.test/\r\n"
                               "Accept-Encoding: gzip, deflate, br\r\n"
                               "Accept-Language: en-US,en;q=0.9\r\n"
                               "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
                               "\r\n";

static const HttpForwardInfo info = {
        .client_addr = "203.0.113.9",
        .ja4 = "t13d1516h2_8daaf6152771_e5627efa2ab1",
        .ja4_stable = "t13d1516h2_8daaf6152771_02713d6af862",
        .attempt_id = 123456,
        .prior_failures = 2,
};

static unsigned rounds = 7;
static volatile size_t sink;

/* The median over the rounds of ns per call of f(arg), each round `n` calls. */
static double median_ns(void (*f)(const void *), const void *arg, unsigned n) {
        double t[64];

        for (unsigned r = 0; r < rounds; r++) {
                int64_t start = clock_ns(CLOCK_MONOTONIC);
                for (unsigned i = 0; i < n; i++)
                        f(arg);
                t[r] = (double) (clock_ns(CLOCK_MONOTONIC) - start) / n;
        }
        qsort(t, rounds, sizeof t[0], compare_double);
        return t[rounds / 2];
}

static void parse_strict(const void *arg) {
        HttpMessageHead h;

        sink += http_proxy_parse_request(arg, strlen(arg), &h) == HTTP_PARSE_DONE ? h.head_len : 0;
}

static void parse_self_page(const void *arg) {
        HttpRequest r;

        sink += http_parse_request(arg, strlen(arg), &r) == HTTP_PARSE_DONE ? r.consumed : 0;
}

static void parse_and_rewrite(const void *arg) {
        HttpMessageHead h;
        char *out;
        size_t n;

        if (http_proxy_parse_request(arg, strlen(arg), &h) != HTTP_PARSE_DONE ||
            http_proxy_rewrite_request(arg, &h, &info, &out, &n) < 0)
                abort();
        sink += n;
        free(out);
}

typedef struct Bytes {
        const char *p;
        size_t len, piece;
} Bytes;

static void body_chunked(const void *arg) {
        const Bytes *b = arg;
        HttpMessageHead h = {.framing = HTTP_FRAMING_CHUNKED};
        HttpBody body;
        size_t n, off = 0;

        http_body_init(&body, &h);
        while (off < b->len) {
                if (http_body_feed(&body, b->p + off, MIN(b->piece, b->len - off), &n) == HTTP_BODY_BAD)
                        abort();
                off += n;
        }
        sink += off;
}

static void body_memcpy(const void *arg) {
        static char dst[16384];
        const Bytes *b = arg;

        for (size_t off = 0; off < b->len; off += b->piece) {
                memcpy(dst, b->p + off, MIN(b->piece, b->len - off));
                sink += (size_t) dst[0];
        }
}

/* A head arriving a byte at a time; lazily: parsed when http_proxy_head_worth_parsing() says so, else at
 * every line end (what a caller without it would do). */
static void dribble(const Bytes *b, bool lazy) {
        HttpMessageHead h;
        size_t scanned = 0;

        for (size_t k = 1; k <= b->len; k++) {
                if (lazy ? !http_proxy_head_worth_parsing(b->p, k, scanned) : b->p[k - 1] != '\n') {
                        scanned = k;
                        continue;
                }
                if (http_proxy_parse_request(b->p, k, &h) != HTTP_PARSE_MORE)
                        break;
                scanned = k;
        }
        sink += h.head_len;
}

static void dribble_lazy(const void *arg) {
        dribble(arg, true);
}

static void dribble_every_line(const void *arg) {
        dribble(arg, false);
}

static void parse_bytes(const void *arg) {
        const Bytes *b = arg;
        HttpMessageHead h;

        if (http_proxy_parse_request(b->p, b->len, &h) != HTTP_PARSE_DONE)
                abort();
        sink += h.head_len;
}

static void rewrite_bytes(const void *arg) {
        const Bytes *b = arg;
        HttpMessageHead h;
        char *out;
        size_t n;

        if (http_proxy_parse_request(b->p, b->len, &h) != HTTP_PARSE_DONE ||
            http_proxy_rewrite_request(b->p, &h, &info, &out, &n) < 0)
                abort();
        sink += n;
        free(out);
}

int main(int argc, char *argv[]) {
        static char body[1 << 20], worst[HTTP_PROXY_MAX_HEAD_BYTES], named[HTTP_PROXY_MAX_HEAD_BYTES];
        size_t n = 0;
        double a, b;

        if (argc > 1 && parse_uint(argv[1], 1, 64, &rounds) < 0) {
                fprintf(stderr, "Usage: %s [ROUNDS (1..64)]\n", argv[0]);
                return 2;
        }

        a = median_ns(parse_strict, chromium, 20000);
        b = median_ns(parse_self_page, chromium, 20000);
        printf("browser head (%zu bytes): strict parse %.0f ns, self page's parser %.0f ns: ratio %.2f\n",
               strlen(chromium),
               a,
               b,
               a / b);
        b = median_ns(parse_and_rewrite, chromium, 20000);
        printf("browser head: parse + rewrite %.0f ns: %.2f x the strict parse\n", b, b / a);

        /* 1 MiB of chunked body in 8 KiB chunks, fed in 16 KiB reads and in 1 KiB reads */
        while (n + 8192 + 16 < sizeof body - 8) {
                n += (size_t) snprintf(body + n, 16, "2000\r\n");
                memset(body + n, 'x', 8192);
                n += 8192;
                memcpy(body + n, "\r\n", 2);
                n += 2;
        }
        memcpy(body + n, "0\r\n\r\n", 5);
        n += 5;
        for (size_t piece = 16384; piece >= 1024; piece /= 16) {
                Bytes bb = {body, n, piece};
                a = median_ns(body_chunked, &bb, 50);
                b = median_ns(body_memcpy, &bb, 50);
                printf("chunked body (1 MiB, 8 KiB chunks), %zu-byte reads: %.1f us, memcpy() of it %.1f "
                       "us: "
                       "the decoder costs %.2f of a copy\n",
                       piece,
                       a / 1e3,
                       b / 1e3,
                       a / b);
        }

        /* 16 KiB of 4-byte field lines */
        n = (size_t) snprintf(worst, sizeof worst, "GET / HTTP/1.1\r\nHost: x\r\n");
        while (n + 4 + 2 <= sizeof worst) {
                memcpy(worst + n, "c:\r\n", 4);
                n += 4;
        }
        memcpy(worst + n, "\r\n", 2);
        n += 2;
        Bytes w = {worst, n, 1};
        a = median_ns(parse_bytes, &w, 200);
        b = median_ns(dribble_lazy, &w, 5);
        printf("16 KiB head of short lines: one parse %.0f us; a byte at a time, parsed when worth it %.0f "
               "us "
               "(%.1f x)",
               a / 1e3,
               b / 1e3,
               b / a);
        b = median_ns(dribble_every_line, &w, 1);
        printf(", at every line end %.0f us (%.0f x)\n", b / 1e3, b / a);

        /* a Connection naming ~2700 fields, then ~2000 field lines */
        n = (size_t) snprintf(named, sizeof named, "GET / HTTP/1.1\r\nHost: x\r\nConnection: ");
        for (int i = 0; i < 2700; i++)
                n += (size_t) snprintf(named + n, sizeof named - n, "a,");
        n += (size_t) snprintf(named + n, sizeof named - n, "b\r\n");
        while (n + 4 + 2 <= sizeof named) {
                memcpy(named + n, "c:\r\n", 4);
                n += 4;
        }
        memcpy(named + n, "\r\n", 2);
        n += 2;
        Bytes nb = {named, n, 0};
        a = median_ns(parse_bytes, &nb, 200);
        b = median_ns(rewrite_bytes, &nb, 20);
        printf("16 KiB head, Connection naming 2700 fields: parse %.0f us, parse + rewrite %.0f us (%.1f "
               "x)\n",
               a / 1e3,
               b / 1e3,
               b / a);
        return 0;
}
