/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a client's bytes after the handshake through the HTTP request parser as conn.c feeds
 * it (a buffer of HTTP_MAX_HEADER_BYTES, each parsed request taken off its front, pipelined requests
 * parsed in turn until one closes the connection or is refused), the bytes arriving whole and in small
 * chunks, which must give the same requests and the same end; every parsed request is checked against
 * its bytes, parsed again on an exactly sized copy of just its bytes (ASan sees overreads) and must come
 * out the same. The User-Agent naming (useragent.c), the page's target dispatch and the plain-HTTP
 * sniffing read the same bytes. Built with -Dfuzz=true (clang); fuzz-replay.c replays the corpus as an
 * ordinary test. */

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include "http.h"
#include "macro.h"
#include "page.h"
#include "useragent.h"

#include "fuzz.h"

typedef struct Trace {
        unsigned requests;
        HttpParse end;      /* DONE: a request closed the connection; MORE: the bytes ran out */
        size_t consumed;    /* bytes taken by requests */
        uint64_t hash;      /* of every request's fields */
        int first_page;     /* page_kind_from_target() of the first request, -1 if none */
        size_t first_start; /* offset of the first request's method in the stream */
} Trace;

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                h = (h ^ ((const uint8_t *) p)[i]) * UINT64_C(0x100000001b3);
        return h;
}

static uint64_t hash_request(uint64_t h, const HttpRequest *r) {
        uint8_t flags[4] = {r->has_user_agent, (uint8_t) r->minor_version, r->keep_alive, r->has_body};

        h = hash_bytes(h, &r->method_len, sizeof r->method_len);
        h = hash_bytes(h, r->method, r->method_len);
        h = hash_bytes(h, &r->target_len, sizeof r->target_len);
        h = hash_bytes(h, r->target, r->target_len);
        h = hash_bytes(h, &r->user_agent_len, sizeof r->user_agent_len);
        if (r->has_user_agent)
                h = hash_bytes(h, r->user_agent, r->user_agent_len);
        h = hash_bytes(h, flags, sizeof flags);
        return hash_bytes(h, &r->consumed, sizeof r->consumed);
}

static bool in_bounds(const char *p, size_t n, const char *buf, size_t len) {
        return p >= buf && n <= len && (size_t) (p - buf) <= len - n;
}

static bool is_tchar(char c) {
        return isalnum((unsigned char) c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* The same request at another address: every field equal, the pointers at the same offsets. */
static bool same_request(const HttpRequest *a, const char *abuf, const HttpRequest *b, const char *bbuf) {
        return a->method - abuf == b->method - bbuf && a->method_len == b->method_len &&
                a->target - abuf == b->target - bbuf && a->target_len == b->target_len &&
                a->has_user_agent == b->has_user_agent && a->user_agent_len == b->user_agent_len &&
                (!a->has_user_agent || a->user_agent - abuf == b->user_agent - bbuf) &&
                a->minor_version == b->minor_version && a->keep_alive == b->keep_alive &&
                a->has_body == b->has_body && a->consumed == b->consumed;
}

static void check_summary(const char *ua, size_t len) {
        char s1[USER_AGENT_SUMMARY_MAX], s2[USER_AGENT_SUMMARY_MAX];
        size_t n;

        user_agent_summary(ua, len, s1);
        user_agent_summary(ua, len, s2);
        n = strnlen(s1, sizeof s1);
        check(n < USER_AGENT_SUMMARY_MAX);
        check(streq(s1, s2));
        for (size_t i = 0; i < n; i++)
                check(s1[i] >= 0x20 && s1[i] < 0x7f); /* ASCII, no control byte */
        check((len == 0) == (n == 0));
}

static bool has_keep_alive(const char *buf, size_t len) {
        for (size_t i = 0; i + 10 <= len; i++)
                if (strncasecmp(buf + i, "keep-alive", 10) == 0)
                        return true;
        return false;
}

/* One parse of buf[0..len) that gave DONE: what the request must be. */
static void check_request(const char *buf, size_t len, const HttpRequest *r) {
        const char *end;

        check(r->consumed > 0 && r->consumed <= len && r->consumed <= HTTP_MAX_HEADER_BYTES);
        check(buf[r->consumed - 1] == '\n');
        end = buf + r->consumed;

        /* the request line: METHOD SP TARGET SP HTTP/1.x, after optional empty lines */
        check(r->method_len > 0 && in_bounds(r->method, r->method_len, buf, r->consumed));
        for (const char *c = buf; c < r->method; c += 2)
                check(c[0] == '\r' && c[1] == '\n');
        for (size_t i = 0; i < r->method_len; i++)
                check(is_tchar(r->method[i]));
        check(r->target == r->method + r->method_len + 1 && r->method[r->method_len] == ' ');
        check(r->target_len > 0 && in_bounds(r->target, r->target_len, buf, r->consumed));
        for (size_t i = 0; i < r->target_len; i++)
                check((unsigned char) r->target[i] > ' ' && r->target[i] != 0x7f); /* also NUL-free */
        check(end - (r->target + r->target_len) >= 9 + 2); /* " HTTP/1.x", a line end, the empty line */
        check(memcmp(r->target + r->target_len, " HTTP/1.", 8) == 0);
        check(r->minor_version == 0 || r->minor_version == 1);
        check(r->target[r->target_len + 8] == '0' + r->minor_version);

        if (r->has_user_agent) {
                check(in_bounds(r->user_agent, r->user_agent_len, buf, r->consumed));
                check(r->user_agent > r->target + r->target_len);
                for (size_t i = 0; i < r->user_agent_len; i++)
                        check(r->user_agent[i] != '\0' && r->user_agent[i] != '\r' && r->user_agent[i] != '\n');
                if (r->user_agent_len > 0) {
                        check(r->user_agent[0] != ' ' && r->user_agent[0] != '\t');
                        check(r->user_agent[r->user_agent_len - 1] != ' ' &&
                              r->user_agent[r->user_agent_len - 1] != '\t');
                }
                check_summary(r->user_agent, r->user_agent_len);
        } else
                check(!r->user_agent && r->user_agent_len == 0);
        if (r->minor_version == 0 && r->keep_alive)
                check(has_keep_alive(buf, r->consumed)); /* HTTP/1.0 keeps alive only when asked */

        /* The request depends on its own bytes only: parsed alone from an exact copy, it is the same. */
        char *copy = malloc(r->consumed);
        HttpRequest again;
        if (!copy)
                abort();
        memcpy(copy, buf, r->consumed);
        check(http_parse_request(copy, r->consumed, &again) == HTTP_PARSE_DONE);
        check(same_request(r, buf, &again, copy));
        free(copy);

        /* the page's dispatch reads the target */
        PageKind k = page_kind_from_target(r->target, r->target_len);
        if (k == PAGE_HTML)
                check(r->target[0] == '/' && (r->target_len == 1 || r->target[1] == '?'));
        else if (k == PAGE_JSON)
                check(r->target_len >= 9 && memcmp(r->target, "/api/self", 9) == 0);
}

static HttpParse parse_checked(const char *buf, size_t len, HttpRequest *ret) {
        HttpRequest r1 = {}, r2 = {};
        HttpParse p1, p2;

        p1 = http_parse_request(buf, len, &r1);
        p2 = http_parse_request(buf, len, &r2);
        check(p1 == p2);
        check(p1 == HTTP_PARSE_MORE || p1 == HTTP_PARSE_DONE || p1 == HTTP_PARSE_BAD ||
              p1 == HTTP_PARSE_TOO_LARGE);
        if (p1 == HTTP_PARSE_DONE) {
                check(same_request(&r1, buf, &r2, buf));
                check_request(buf, len, &r1);
                *ret = r1;
        } else if (p1 == HTTP_PARSE_MORE)
                check(len < HTTP_MAX_HEADER_BYTES);
        return p1;
}

/* conn.c's loop: read what arrives (at most chunk bytes at a time, at most what the buffer holds), parse
 * after each read and after each request taken off the buffer; checked: every parse with parse_checked().
 * Unchecked, it parses as conn.c does, only when http_header_end_after() says the bytes not scanned yet may
 * complete a header block: the whole-versus-chunked comparison checks that this skips no request. */
static void run_stream(const uint8_t *data, size_t size, size_t chunk, bool checked, Trace *t) {
        char *in = malloc(HTTP_MAX_HEADER_BYTES);
        size_t in_len = 0, off = 0, scanned = 0;

        if (!in)
                abort();
        *t = (Trace){.hash = UINT64_C(0xcbf29ce484222325), .first_page = -1};
        for (;;) {
                while (in_len > 0) {
                        HttpRequest req;
                        HttpParse p;

                        if (!checked && !http_header_end_after(in, in_len, scanned)) {
                                if (in_len >= HTTP_MAX_HEADER_BYTES) { /* conn.c answers 431 */
                                        t->end = HTTP_PARSE_TOO_LARGE;
                                        goto out;
                                }
                                scanned = in_len;
                                break;
                        }
                        p = checked ? parse_checked(in, in_len, &req) : http_parse_request(in, in_len, &req);
                        if (p == HTTP_PARSE_MORE) {
                                scanned = in_len;
                                break;
                        }
                        if (p != HTTP_PARSE_DONE) {
                                t->end = p;
                                goto out;
                        }
                        if (t->requests == 0) {
                                t->first_page = (int) page_kind_from_target(req.target, req.target_len);
                                t->first_start = (size_t) (req.method - in);
                        }
                        t->requests++;
                        t->consumed += req.consumed;
                        t->hash = hash_request(t->hash, &req);
                        if (!req.keep_alive || req.has_body) {
                                t->end = HTTP_PARSE_DONE;
                                goto out;
                        }
                        memmove(in, in + req.consumed, in_len - req.consumed);
                        in_len -= req.consumed;
                        scanned = 0;
                }
                check(in_len < HTTP_MAX_HEADER_BYTES); /* MORE is never the answer to a full buffer */
                if (off == size) {
                        t->end = HTTP_PARSE_MORE;
                        break;
                }
                size_t n = MIN(MIN(chunk, size - off), HTTP_MAX_HEADER_BYTES - in_len);
                memcpy(in + in_len, data + off, n);
                in_len += n;
                off += n;
        }
out:
        check(t->consumed <= off);
        free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Trace whole, chunked;
        /* small chunks (parsing only when a header block may be complete keeps even 1 byte linear) */
        size_t chunk = 1 + size % 13;

        run_stream(data, size, SIZE_MAX, true, &whole);
        run_stream(data, size, chunk, false, &chunked);
        /* How the bytes arrive changes nothing. */
        check(whole.requests == chunked.requests && whole.end == chunked.end &&
              whole.consumed == chunked.consumed && whole.hash == chunked.hash &&
              whole.first_page == chunked.first_page);

        /* Plain HTTP on the TLS port is recognised by its first bytes: a request the parser takes from the
         * first byte with a method of the list must be recognised. */
        if (whole.requests > 0 && whole.first_start == 0 && size >= 4 &&
            (memcmp(data, "GET ", 4) == 0 || memcmp(data, "HEAD ", MIN(size, (size_t) 5)) == 0))
                check(http_looks_like_request(data, size));
        if (http_looks_like_request(data, size))
                check(size >= 3 && isupper(data[0]) && isupper(data[1]) && isupper(data[2]));

        /* The User-Agent naming on arbitrary bytes (stored User-Agents are read back by tlsreport), on an
         * exact copy. */
        size_t n = MIN(size, (size_t) HTTP_MAX_HEADER_BYTES);
        char *copy = malloc(MAX(n, (size_t) 1));
        if (!copy)
                abort();
        if (n > 0)
                memcpy(copy, data, n);
        check_summary(copy, n);
        free(copy);
        return 0;
}
