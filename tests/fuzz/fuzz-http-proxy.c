/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the strict HTTP/1.1 framing of --backend-protocol http (core/http-proxy.c) as a proxy
 * drives it, on the same bytes read as a client's request stream and as a backend's response stream
 * (answering GET, and answering HEAD): a head is parsed from a buffer of HTTP_PROXY_MAX_HEAD_BYTES, its
 * body delimited by the body decoder straight from the stream, the next message parsed from what follows,
 * until a message closes the connection, upgrades it, or is refused. The bytes arrive whole and in small
 * chunks (parsing only when http_proxy_head_worth_parsing() says so): the messages, their heads, their
 * bodies' lengths and the end must be the same. Every head parsed is checked against its bytes and parsed
 * again from an exact copy of them (ASan sees overreads); every request head is rewritten, and the
 * forwarded head must parse with the same framing, carry our fields once and none of the client's, and
 * stay the same when rewritten again. Built with -Dfuzz=true (clang); fuzz-replay.c replays the corpus as
 * an ordinary test. */

#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

#include "http-proxy.h"
#include "macro.h"

#include "fuzz.h"

enum {
        END_EOF,      /* the bytes ran out */
        END_CLOSE,    /* a message ended the connection */
        END_UPGRADE,  /* the connection became a tunnel */
        END_HEAD_BAD, /* a head was refused */
        END_TOO_LARGE,
        END_BODY_BAD,
};

typedef struct Trace {
        unsigned messages;
        int end;
        const char *error; /* the refusal's phrase */
        uint64_t consumed; /* bytes of the stream taken by messages */
        uint64_t hash;     /* of every head's fields and every body's length */
} Trace;

static const HttpForwardInfo info = {
        .client_addr = "2001:db8::7",
        .ja4 = "t13d1516h2_8daaf6152771_e5627efa2ab1",
        .ja4_stable = "t13d1516h2_8daaf6152771_02713d6af862",
        .attempt_id = UINT64_MAX,
        .prior_failures = 3,
};

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                h = (h ^ ((const uint8_t *) p)[i]) * UINT64_C(0x100000001b3);
        return h;
}

static uint64_t hash_head(uint64_t h, const HttpMessageHead *m, const char *buf) {
        uint64_t f[] = {
                (uint64_t) m->status,
                m->method ? (uint64_t) (m->method - buf) : UINT64_MAX,
                m->target ? (uint64_t) (m->target - buf) : UINT64_MAX,
                m->host ? (uint64_t) (m->host - buf) : UINT64_MAX,
                m->method_len,
                m->target_len,
                m->host_len,
                (uint64_t) m->minor_version,
                m->framing,
                m->content_length,
                m->keep_alive,
                m->upgrade,
                m->expect_continue,
                m->head_len,
        };

        return hash_bytes(h, f, sizeof f);
}

static bool in_bounds(const char *p, size_t n, const char *buf, size_t len) {
        return p >= buf && n <= len && (size_t) (p - buf) <= len - n;
}

static bool is_tchar(char c) {
        return c != '\0' && (isalnum((unsigned char) c) || strchr("!#$%&'*+-.^_`|~", c));
}

static bool same_head(const HttpMessageHead *a, const char *abuf, const HttpMessageHead *b, const char *bbuf) {
        return hash_head(0, a, abuf) == hash_head(0, b, bbuf) && streq_ptr(a->error, b->error) &&
                a->error_status == b->error_status;
}

static HttpParse parse(bool request, bool was_head, const char *buf, size_t len, HttpMessageHead *ret) {
        return request ? http_proxy_parse_request(buf, len, ret)
                       : http_proxy_parse_response(buf, len, was_head, ret);
}

/* The field names of a forwarded head: how many start with prefix (case-insensitive). */
static unsigned count_fields(const char *out, size_t len, const char *prefix, bool exact) {
        const char *p = memmem(out, len, "\r\n", 2) + 2, *end = out + len - 2;
        size_t n = strlen(prefix);
        unsigned c = 0;

        while (p < end) {
                const char *eol = memmem(p, (size_t) (end - p) + 2, "\r\n", 2);
                const char *colon = memchr(p, ':', (size_t) (eol - p));

                check(eol && colon);
                if ((size_t) (colon - p) >= n && strncasecmp(p, prefix, n) == 0 &&
                    (!exact || (size_t) (colon - p) == n))
                        c++;
                p = eol + 2;
        }
        return c;
}

static void check_rewrite(const char *buf, const HttpMessageHead *h) {
        _cleanup_free_ char *out = NULL, *again = NULL;
        size_t len, len2;
        HttpMessageHead f;

        check(http_proxy_rewrite_request(buf, h, &info, &out, &len) == 0);
        check(strlen(out) == len && len <= h->head_len + 512);
        if (len > HTTP_PROXY_MAX_HEAD_BYTES) { /* our fields made it larger than we take from a client */
                check(http_proxy_parse_request(out, len, &f) == HTTP_PARSE_TOO_LARGE);
                return;
        }
        check(http_proxy_parse_request(out, len, &f) == HTTP_PARSE_DONE);
        check(f.head_len == len);
        check(f.framing == h->framing && f.content_length == h->content_length &&
              f.keep_alive == h->keep_alive && f.upgrade == h->upgrade &&
              f.expect_continue == h->expect_continue && f.minor_version == h->minor_version);
        check(f.method == out && f.method_len == h->method_len &&
              memcmp(f.method, h->method, h->method_len) == 0);
        check(f.target_len == h->target_len && memcmp(f.target, h->target, h->target_len) == 0);
        check((f.host == NULL) == (h->host == NULL));
        check(!f.host || (f.host_len == h->host_len && memcmp(f.host, h->host, h->host_len) == 0));
        check(count_fields(out, len, "TLS-", false) == 4);
        check(count_fields(out, len, "TLS-Attempt-Id", true) == 1);
        check(count_fields(out, len, "X-Forwarded-", false) == 2);
        check(count_fields(out, len, "Forwarded", true) == 0 && count_fields(out, len, "X-Real-IP", true) == 0);
        check(count_fields(out, len, "Connection", true) <= 1);
        check(count_fields(out, len, "Upgrade", true) == 0 || h->upgrade);
        check(memmem(out, len, "\r\nTLS-Attempt-Id: 18446744073709551615\r\n", 40));
        /* the framing in its canonical form */
        char cl[64];
        int k = snprintf(cl, sizeof cl, "\r\nContent-Length: %" PRIu64 "\r\n", h->content_length);
        check(count_fields(out, len, "Content-Length", true) == (h->framing == HTTP_FRAMING_LENGTH));
        check(h->framing != HTTP_FRAMING_LENGTH || memmem(out, len, cl, (size_t) k));
        check(count_fields(out, len, "Transfer-Encoding", true) == (h->framing == HTTP_FRAMING_CHUNKED));
        check(h->framing != HTTP_FRAMING_CHUNKED ||
              memmem(out, len, "\r\nTransfer-Encoding: chunked\r\n", 30));

        check(http_proxy_rewrite_request(out, &f, &info, &again, &len2) == 0);
        check(len2 == len && memcmp(out, again, len) == 0);
}

/* One head that parsed: what it must be. */
static void check_head(bool request, bool was_head, const char *buf, size_t len, const HttpMessageHead *h) {
        check(h->head_len >= 4 && h->head_len <= len && h->head_len <= HTTP_PROXY_MAX_HEAD_BYTES);
        check(memcmp(buf + h->head_len - 4, "\r\n\r\n", 4) == 0);
        check(!h->error && h->error_status == 0);
        check(h->minor_version == 0 || h->minor_version == 1);
        check(h->framing >= HTTP_FRAMING_NONE && h->framing < _HTTP_FRAMING_MAX);
        check(h->framing == HTTP_FRAMING_LENGTH || h->content_length == 0);
        check(h->content_length <= (uint64_t) INT64_MAX);
        check(memchr(buf, '\0', h->head_len) == NULL);
        for (size_t i = 0; i < h->head_len; i++) /* CR and LF only as CRLF */
                check((buf[i] != '\r' || buf[i + 1] == '\n') &&
                      (buf[i] != '\n' || (i > 0 && buf[i - 1] == '\r')));

        if (request) {
                check(h->framing != HTTP_FRAMING_CLOSE && h->status == 0);
                check(h->method_len > 0 && in_bounds(h->method, h->method_len, buf, h->head_len));
                for (size_t i = 0; i < h->method_len; i++)
                        check(is_tchar(h->method[i]));
                check(h->target == h->method + h->method_len + 1);
                check(h->target_len > 0 && in_bounds(h->target, h->target_len, buf, h->head_len));
                for (size_t i = 0; i < h->target_len; i++)
                        check((unsigned char) h->target[i] > ' ' && (unsigned char) h->target[i] < 0x7f);
                check(memcmp(h->target + h->target_len, " HTTP/1.", 8) == 0);
                check(h->minor_version == 0 || h->host);
                check(!h->host || in_bounds(h->host, h->host_len, buf, h->head_len));
                check(h->minor_version == 1 || (h->framing != HTTP_FRAMING_CHUNKED && !h->upgrade));
                check(!(h->method_len == 7 && memcmp(h->method, "CONNECT", 7) == 0));
                check_rewrite(buf, h);
        } else {
                check(h->status >= 100 && h->status <= 599 && !h->method && !h->target && !h->host);
                check(memcmp(buf, "HTTP/1.", 7) == 0);
                check(h->upgrade == (h->status == 101));
                if (was_head || h->status < 200 || h->status == 204 || h->status == 304)
                        check(h->framing == HTTP_FRAMING_NONE);
                if (h->framing == HTTP_FRAMING_CLOSE || h->upgrade)
                        check(!h->keep_alive);
        }

        /* The head depends on its own bytes only: parsed alone from an exact copy, it is the same. */
        char *copy = malloc(h->head_len);
        HttpMessageHead again;
        if (!copy)
                abort();
        memcpy(copy, buf, h->head_len);
        check(parse(request, was_head, copy, h->head_len, &again) == HTTP_PARSE_DONE);
        check(same_head(h, buf, &again, copy));
        free(copy);
}

static HttpParse parse_checked(bool request, bool was_head, const char *buf, size_t len, HttpMessageHead *ret) {
        HttpMessageHead a, b;
        HttpParse p = parse(request, was_head, buf, len, &a);

        check(parse(request, was_head, buf, len, &b) == p && same_head(&a, buf, &b, buf));
        switch (p) {
        case HTTP_PARSE_DONE: check_head(request, was_head, buf, len, &a); break;
        case HTTP_PARSE_MORE:
                check(len < HTTP_PROXY_MAX_HEAD_BYTES && !a.error && a.error_status == 0);
                break;
        case HTTP_PARSE_BAD:
                check(a.error &&
                      (request ? a.error_status == 400 || a.error_status == 417 || a.error_status == 501 ||
                                       a.error_status == 505
                               : a.error_status == 502));
                break;
        case HTTP_PARSE_TOO_LARGE:
                check(a.error && a.error_status == (request ? 431 : 502) && len >= HTTP_PROXY_MAX_HEAD_BYTES);
                break;
        default: check(false);
        }
        *ret = a;
        return p;
}

typedef struct Stream {
        HttpBody body;
        bool in_body, end_after; /* in a body; the connection ends after it (no keep-alive, or upgrade) */
        bool upgrade;
        uint64_t body_len;
} Stream;

/* Body bytes: false when the stream ended (the trace says how). */
static bool stream_body(Stream *st, const char *buf, size_t len, size_t *ret_used, Trace *t) {
        HttpBodyStep s = http_body_feed(&st->body, buf, len, ret_used);

        check(*ret_used <= len && (s != HTTP_BODY_MORE || *ret_used == len));
        st->body_len += *ret_used;
        t->consumed += *ret_used;
        if (s == HTTP_BODY_BAD) {
                check(st->body.error);
                t->end = END_BODY_BAD;
                t->error = st->body.error;
                return false;
        }
        if (s == HTTP_BODY_MORE)
                return true;
        st->in_body = false;
        t->hash = hash_bytes(t->hash, &st->body_len, sizeof st->body_len);
        if (st->end_after) {
                t->end = st->upgrade ? END_UPGRADE : END_CLOSE;
                return false;
        }
        return true;
}

/* A proxy's loop over one direction of a connection; the bytes arrive `chunk` at a time. */
static void run_stream(
        const uint8_t *data, size_t size, size_t chunk, bool request, bool was_head, bool checked, Trace *t) {
        char *in = malloc(HTTP_PROXY_MAX_HEAD_BYTES);
        size_t in_len = 0, off = 0, scanned = 0, used;
        Stream st = {};

        if (!in)
                abort();
        *t = (Trace){.end = END_EOF, .hash = UINT64_C(0xcbf29ce484222325)};
        for (;;) {
                /* the buffered bytes: heads, and the body bytes that came with them */
                while (in_len > 0 && !st.in_body) {
                        HttpMessageHead h;
                        HttpParse p;

                        if (!checked && !http_proxy_head_worth_parsing(in, in_len, scanned)) {
                                /* a full buffer is always worth parsing */
                                check(in_len < HTTP_PROXY_MAX_HEAD_BYTES);
                                scanned = in_len;
                                break;
                        }
                        p = checked ? parse_checked(request, was_head, in, in_len, &h)
                                    : parse(request, was_head, in, in_len, &h);
                        if (p == HTTP_PARSE_MORE) {
                                scanned = in_len;
                                break;
                        }
                        if (p != HTTP_PARSE_DONE) {
                                t->end = p == HTTP_PARSE_BAD ? END_HEAD_BAD : END_TOO_LARGE;
                                t->error = h.error;
                                goto out;
                        }
                        t->messages++;
                        t->hash = hash_head(t->hash, &h, in);
                        t->consumed += h.head_len;
                        memmove(in, in + h.head_len, in_len - h.head_len);
                        in_len -= h.head_len;
                        scanned = 0;

                        st = (Stream){
                                .in_body = true, .end_after = !h.keep_alive || h.upgrade, .upgrade = h.upgrade};
                        http_body_init(&st.body, &h);
                        if (!stream_body(&st, in, in_len, &used, t))
                                goto out;
                        memmove(in, in + used, in_len - used);
                        in_len -= used;
                }
                if (off == size) {
                        /* The bytes ended: what a caller records of the head it has (lazily, it may not
                         * have parsed it yet). */
                        if (!checked && !st.in_body && in_len > 0) {
                                HttpMessageHead h;
                                HttpParse p = parse(request, was_head, in, in_len, &h);

                                check(p != HTTP_PARSE_DONE && p != HTTP_PARSE_TOO_LARGE);
                                if (p == HTTP_PARSE_BAD) {
                                        t->end = END_HEAD_BAD;
                                        t->error = h.error;
                                }
                        }
                        break;
                }

                size_t n = MIN(chunk, size - off);
                if (st.in_body) { /* body bytes go straight from the stream */
                        if (!stream_body(&st, (const char *) data + off, n, &used, t))
                                goto out;
                        off += used;
                        continue;
                }
                n = MIN(n, HTTP_PROXY_MAX_HEAD_BYTES - in_len);
                check(n > 0); /* a full buffer always got a verdict */
                memcpy(in + in_len, data + off, n);
                in_len += n;
                off += n;
        }
out:
        check(t->consumed <= size);
        free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t chunk = 1 + size % 13;

        for (int mode = 0; mode < 3; mode++) {
                bool request = mode == 0, was_head = mode == 2;
                Trace whole, chunked;

                run_stream(data, size, SIZE_MAX, request, was_head, true, &whole);
                run_stream(data, size, chunk, request, was_head, false, &chunked);
                /* How the bytes arrive changes nothing. */
                check(whole.messages == chunked.messages && whole.end == chunked.end &&
                      streq_ptr(whole.error, chunked.error) && whole.hash == chunked.hash);
                check(whole.consumed == chunked.consumed);
        }

        /* The body decoder alone on the raw bytes, as chunked: whole, and a byte at a time. */
        HttpMessageHead h = {.framing = HTTP_FRAMING_CHUNKED};
        HttpBody a, b;
        size_t n1, n2 = 0, n;
        HttpBodyStep s1, s2 = HTTP_BODY_MORE;

        http_body_init(&a, &h);
        s1 = http_body_feed(&a, (const char *) data, size, &n1);
        http_body_init(&b, &h);
        for (size_t i = 0; i < size && s2 == HTTP_BODY_MORE; i++) {
                s2 = http_body_feed(&b, (const char *) data + i, 1, &n);
                n2 += n;
        }
        check(s1 == s2 && n1 == n2 && streq_ptr(a.error, b.error));
        check(n1 <= size && (s1 != HTTP_BODY_MORE || n1 == size));
        if (s1 == HTTP_BODY_DONE) /* at least "0\r\n\r\n" */
                check(n1 >= 5 && memcmp(data + n1 - 2, "\r\n", 2) == 0);
        return 0;
}
