/* SPDX-License-Identifier: MIT */
#pragma once

/* A sans-I/O HTTP/1.1 request parser and response writer: just enough for the self-fingerprint page.
 * Requests with a body are answered and the connection is then closed. */

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADER_BYTES 8192

typedef enum HttpParse {
        HTTP_PARSE_MORE,      /* no complete request yet */
        HTTP_PARSE_DONE,      /* a request is parsed */
        HTTP_PARSE_BAD,       /* malformed: answer 400 and close */
        HTTP_PARSE_TOO_LARGE, /* header block over HTTP_MAX_HEADER_BYTES: answer 431 and close */
} HttpParse;

typedef struct HttpRequest {
        /* Pointers into the caller's buffer, valid until it changes; not NUL-terminated. */
        const char *method, *target, *user_agent;
        size_t method_len, target_len, user_agent_len;
        bool has_user_agent;
        int minor_version; /* HTTP/1.x */
        bool keep_alive;   /* after this request */
        bool has_body;     /* Content-Length > 0 or Transfer-Encoding: we do not read bodies */
        size_t consumed;   /* bytes of the buffer this request used */
} HttpRequest;

HttpParse http_parse_request(const char *buf, size_t len, HttpRequest *ret);

/* Whether the first len bytes of buf may hold a complete header block, given that its first `scanned`
 * bytes held none (http_parse_request() said HTTP_PARSE_MORE for them): only then is parsing again worth
 * it. A caller that adds bytes as they arrive keeps `scanned`, so that a client sending its headers a
 * byte at a time costs O(n), not a scan of the whole buffer per byte. */
bool http_header_end_after(const char *buf, size_t len, size_t scanned);

/* Whether the first bytes of a connection look like an HTTP request (for plain HTTP sent to the TLS port). */
bool http_looks_like_request(const void *buf, size_t len);

/* Builds a complete response into a malloc'ed buffer: status line, Date-less fixed headers,
 * Content-Type/Length, Connection. With head_only the body is left out (Content-Length stays). */
int http_response_build(
        int status,
        const char *content_type,
        const char *body,
        size_t body_len,
        bool keep_alive,
        bool head_only,
        char **ret,
        size_t *ret_len);

const char *http_status_reason(int status);
