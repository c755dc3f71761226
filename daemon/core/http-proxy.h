/* SPDX-License-Identifier: MIT */
#pragma once

/* Strict HTTP/1.1 framing for --backend-protocol http (issue 18), sans-I/O: the heads of requests (from
 * the client) and responses (from the backend) are parsed from the caller's buffer, the request head is
 * rewritten with tlswatch's headers, and bodies are delimited byte by byte (Content-Length countdown or
 * chunked decoder) so that the caller forwards exactly one message at a time. Anything RFC 9112 does not
 * allow, or allows but lets two parsers disagree on where a message ends, is refused with a static
 * English phrase for the record: no request can be smuggled past the proxy. Parsing and body framing
 * allocate nothing and keep a bounded state (HTTP_PROXY_MAX_HEAD_BYTES, HTTP_PROXY_MAX_CHUNK_LINE); only
 * the rewrite allocates (the forwarded head, and a list of the field names Connection names). The code:
 * http-proxy.c (heads), http-forward.c (the forwarded head), http-body.c (bodies). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h" /* HttpParse */

/* A request or response head larger than this is refused: HTTP_PARSE_TOO_LARGE (431 for a request).
 * The trailer section of a chunked body has the same limit. */
#define HTTP_PROXY_MAX_HEAD_BYTES 16384
/* More empty lines than this before a request line are refused (RFC 9112 2.2 asks to ignore one). */
#define HTTP_PROXY_MAX_EMPTY_LINES 4
/* A chunk-size line (size and extensions, CRLF included) longer than this is refused. */
#define HTTP_PROXY_MAX_CHUNK_LINE 4096

typedef enum HttpFraming {
        HTTP_FRAMING_NONE,    /* no body: a request without Content-Length/Transfer-Encoding, 1xx, 204,
                               * 304, the answer to HEAD */
        HTTP_FRAMING_LENGTH,  /* content_length bytes (may be 0) */
        HTTP_FRAMING_CHUNKED, /* Transfer-Encoding: chunked */
        HTTP_FRAMING_CLOSE,   /* responses only: the body ends when the backend closes */
        _HTTP_FRAMING_MAX,
} HttpFraming;

const char *http_framing_to_string(HttpFraming f);

typedef struct HttpMessageHead {
        /* Pointers into the caller's buffer, valid until it changes; not NUL-terminated. */
        int status;         /* responses: 100..599 */
        const char *method; /* requests: a token */
        const char *target; /* requests: origin-form, absolute-form, or "*" for OPTIONS */
        const char *host;   /* requests: the Host field's value (NULL when absent: HTTP/1.0 only) */
        size_t method_len, target_len, host_len;
        int minor_version;       /* HTTP/1.x: 0 or 1 */
        HttpFraming framing;     /* how the body is delimited: see http_body_init() */
        uint64_t content_length; /* HTTP_FRAMING_LENGTH: at most INT64_MAX */
        bool keep_alive;         /* another message may follow this one on the connection */
        /* request: HTTP/1.1 with Upgrade and Connection: upgrade; response: 101 (after its head, the
         * connection is a byte tunnel) */
        bool upgrade;
        bool expect_continue; /* request: HTTP/1.1 with Expect: 100-continue */
        /* bytes of the head (empty lines before a request line and the final CRLF CRLF included): the body
         * starts at buf + head_len */
        size_t head_len;
        /* HTTP_PARSE_BAD/TOO_LARGE: why, a static English phrase, and the status to answer: for a request
         * 400, 417, 431, 501 or 505; for a response (a backend error) 502. */
        const char *error;
        int error_status;
} HttpMessageHead;

/* Parse a request head from the start of buf. HTTP_PARSE_MORE: the head is not complete yet (and nothing
 * in its complete lines is wrong); HTTP_PARSE_DONE: *ret describes it; HTTP_PARSE_BAD or
 * HTTP_PARSE_TOO_LARGE: refused, ret->error and ret->error_status say why. *ret is always written. The
 * verdict only depends on the bytes: a prefix of an input gives MORE or the input's own verdict, so the
 * caller may parse again whenever bytes arrive (see http_proxy_head_worth_parsing()). */
HttpParse http_proxy_parse_request(const char *buf, size_t len, HttpMessageHead *ret);

/* Parse a response head from the backend. request_was_head: the request it answers was a HEAD (no body
 * whatever the head says). A 1xx other than 101 is an interim response: framing NONE, and the final
 * response follows it. A refusal is a backend error (error_status 502). */
HttpParse http_proxy_parse_response(const char *buf, size_t len, bool request_was_head, HttpMessageHead *ret);

/* Whether parsing buf[0..len) is worth it, given that for its first `scanned` bytes it was not, or that
 * parsing them gave HTTP_PARSE_MORE: only when the new bytes complete a head (CRLF CRLF), hold a bare CR
 * or LF, or reach HTTP_PROXY_MAX_HEAD_BYTES. The caller sets `scanned` to len after each call that said
 * no and each parse that said HTTP_PARSE_MORE (to 0 when the buffer's start moves): then a head sent a
 * byte at a time costs O(n), not a parse per line or a scan per byte. A bad line is refused when its head
 * is complete rather than when the line is: the same verdict, later. */
bool http_proxy_head_worth_parsing(const char *buf, size_t len, size_t scanned);

typedef struct HttpForwardInfo {
        const char *client_addr;      /* X-Forwarded-For's value: the client's address, without port */
        const char *ja4, *ja4_stable; /* TLS-Client-JA4, TLS-Client-JA4-Stable; NULL: header left out */
        uint64_t attempt_id;          /* TLS-Attempt-Id; 0: no row (--no-record), header left out */
        unsigned prior_failures;      /* TLS-Prior-Failures */
} HttpForwardInfo;

/* The request head h (parsed from buf by http_proxy_parse_request()) as forwarded to the backend,
 * malloc'ed into *ret (NUL-terminated for convenience; *ret_len leaves the NUL out). The request line
 * and the other fields pass unchanged, in order. Removed, case-insensitively, every occurrence: the
 * client's TLS-* fields, Forwarded, X-Forwarded-*, X-Real-IP (tlswatchd terminates TLS, so it is the
 * first HTTP hop: such fields can only be forged by the client); the hop-by-hop fields (Connection,
 * Keep-Alive, Proxy-Connection, TE, Upgrade unless h->upgrade, and every field the client's Connection
 * names, RFC 9110 7.6.1). Appended: X-Forwarded-For, X-Forwarded-Proto: https, TLS-Client-JA4,
 * TLS-Client-JA4-Stable, TLS-Attempt-Id, TLS-Prior-Failures, and Connection: upgrade (h->upgrade),
 * close (!h->keep_alive) or keep-alive (HTTP/1.0 that keeps alive). Content-Length and Transfer-Encoding
 * stay, in their place, written in their one canonical form ("Content-Length: 7" for "content-length:
 * 007", "Transfer-Encoding: chunked" for "transfer-encoding:<TAB>CHUNKED"), so that the backend cannot
 * read the framing otherwise than we did; the body is forwarded unchanged. The result may be longer than the
 * client's head: at most h->head_len + 256 + the lengths of info's strings. -EINVAL if info's strings hold
 * anything but visible ASCII, -ENOMEM. */
int http_proxy_rewrite_request(
        const char *buf, const HttpMessageHead *h, const HttpForwardInfo *info, char **ret, size_t *ret_len);

/* Body framing state: a Content-Length countdown or a chunked decoder. Plain data, no allocation. */
typedef struct HttpBody {
        HttpFraming framing;
        unsigned state;     /* chunked: where in the grammar */
        uint64_t remaining; /* LENGTH: bytes left; CHUNKED: bytes left of the current chunk's data */
        unsigned digits;    /* chunked: hex digits of the current chunk-size */
        size_t line_len;    /* chunked: bytes of the current chunk-size line so far */
        size_t trailer_len; /* chunked: bytes of the trailer section so far */
        char name[20];      /* chunked: the start of the current trailer field's name */
        size_t name_len;
        const char *error; /* HTTP_BODY_BAD: why, a static English phrase */
} HttpBody;

/* Prepare to delimit the body of the message whose head is h. */
void http_body_init(HttpBody *b, const HttpMessageHead *h);

typedef enum HttpBodyStep {
        HTTP_BODY_MORE, /* every byte given belongs to the body, which goes on */
        HTTP_BODY_DONE, /* the body ended after *ret_consumed bytes; the rest is the next message */
        HTTP_BODY_BAD,  /* malformed chunk framing: b->error says why */
} HttpBodyStep;

/* Consume the next bytes of the body: the caller forwards exactly *ret_consumed bytes of buf unchanged
 * (chunk framing and trailers pass through as they are). DONE as soon as the message ended, also with
 * len == 0 for a body that is empty (framing NONE, Content-Length: 0); with framing CLOSE never DONE (the
 * caller ends the body at the backend's EOF). BAD: *ret_consumed is the bytes before the bad one, and
 * every later call is BAD too. Works with input split at any byte. */
HttpBodyStep http_body_feed(HttpBody *b, const char *buf, size_t len, size_t *ret_consumed);
