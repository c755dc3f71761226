/* SPDX-License-Identifier: MIT */
/* Body framing: a Content-Length countdown or a chunked decoder, a byte at a time (http-proxy.h). */

#include <assert.h>

#include "http-proxy.h"
#include "http-token.h"
#include "macro.h"

enum {
        BODY_DONE,
        BODY_BAD,
        BODY_CLOSE,
        BODY_LENGTH,
        CHUNK_SIZE,         /* hex digits */
        CHUNK_SIZE_BWS,     /* whitespace after the size or a value: ';' must follow */
        CHUNK_EXT_NAME0,    /* after ';': BWS, then a token */
        CHUNK_EXT_NAME,     /* in the name */
        CHUNK_EXT_NAME_BWS, /* whitespace after the name: '=' or ';' must follow */
        CHUNK_EXT_VALUE0,   /* after '=': BWS, then a token or a quoted string */
        CHUNK_EXT_TOKEN,    /* in a token value */
        CHUNK_EXT_QUOTED,   /* in a quoted string */
        CHUNK_EXT_ESCAPE,   /* after a backslash in a quoted string */
        CHUNK_EXT_END,      /* after a quoted string */
        CHUNK_SIZE_LF,      /* after the size line's CR */
        CHUNK_DATA,
        CHUNK_DATA_CR,
        CHUNK_DATA_LF,
        TRAILER_LINE, /* at the start of a trailer field line or the final CRLF */
        TRAILER_NAME,
        TRAILER_VALUE,
        TRAILER_LF,
        FINAL_LF,
};

void http_body_init(HttpBody *b, const HttpMessageHead *h) {
        *b = (HttpBody){.framing = h->framing};
        switch (h->framing) {
        case HTTP_FRAMING_LENGTH:
                b->remaining = h->content_length;
                b->state = b->remaining > 0 ? BODY_LENGTH : BODY_DONE;
                break;
        case HTTP_FRAMING_CHUNKED: b->state = CHUNK_SIZE; break;
        case HTTP_FRAMING_CLOSE: b->state = BODY_CLOSE; break;
        default: b->state = BODY_DONE;
        }
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static HttpBodyStep body_bad(HttpBody *b, const char *error) {
        b->state = BODY_BAD;
        b->error = error;
        return HTTP_BODY_BAD;
}

/* One byte of a chunk-size line (the size and its extensions, RFC 9112 7.1.1). */
static HttpBodyStep chunk_line_byte(HttpBody *b, char c) {
        static const char malformed[] = "a malformed chunk extension";

        if (++b->line_len > HTTP_PROXY_MAX_CHUNK_LINE)
                return body_bad(b, "a chunk-size line over 4 KiB");
        if (c == '\n')
                return body_bad(b, "a bare LF in a chunk-size line");
        switch (b->state) {
        case CHUNK_SIZE: {
                int x = hex_value(c);
                if (x >= 0) {
                        if (++b->digits > 16 || b->remaining > (uint64_t) INT64_MAX >> 4)
                                return body_bad(b, "a chunk size over 2^63-1");
                        b->remaining = b->remaining << 4 | (uint64_t) x;
                        return HTTP_BODY_MORE;
                }
                if (b->digits == 0)
                        return body_bad(b, "a chunk size that is not hexadecimal");
                if (c == '\r')
                        b->state = CHUNK_SIZE_LF;
                else if (c == ';')
                        b->state = CHUNK_EXT_NAME0;
                else if (is_ows(c))
                        b->state = CHUNK_SIZE_BWS;
                else
                        return body_bad(b, "a chunk size that is not hexadecimal");
                return HTTP_BODY_MORE;
        }
        case CHUNK_SIZE_BWS:
                if (c == ';')
                        b->state = CHUNK_EXT_NAME0;
                else if (!is_ows(c))
                        return body_bad(b, malformed);
                return HTTP_BODY_MORE;
        case CHUNK_EXT_NAME0:
                if (is_tchar(c))
                        b->state = CHUNK_EXT_NAME;
                else if (!is_ows(c))
                        return body_bad(b, malformed);
                return HTTP_BODY_MORE;
        case CHUNK_EXT_NAME:
        case CHUNK_EXT_NAME_BWS:
                if (c == '=')
                        b->state = CHUNK_EXT_VALUE0;
                else if (c == ';')
                        b->state = CHUNK_EXT_NAME0;
                else if (is_ows(c))
                        b->state = CHUNK_EXT_NAME_BWS;
                else if (c == '\r' && b->state == CHUNK_EXT_NAME)
                        b->state = CHUNK_SIZE_LF;
                else if (!is_tchar(c) || b->state != CHUNK_EXT_NAME)
                        return body_bad(b, malformed);
                return HTTP_BODY_MORE;
        case CHUNK_EXT_VALUE0:
                if (c == '"')
                        b->state = CHUNK_EXT_QUOTED;
                else if (is_tchar(c))
                        b->state = CHUNK_EXT_TOKEN;
                else if (!is_ows(c))
                        return body_bad(b, malformed);
                return HTTP_BODY_MORE;
        case CHUNK_EXT_QUOTED:
                if (c == '"')
                        b->state = CHUNK_EXT_END;
                else if (c == '\\')
                        b->state = CHUNK_EXT_ESCAPE;
                else if (((unsigned char) c < 0x20 && c != '\t') || c == 0x7f)
                        return body_bad(b, malformed);
                return HTTP_BODY_MORE;
        case CHUNK_EXT_ESCAPE:
                if (((unsigned char) c < 0x20 && c != '\t') || c == 0x7f)
                        return body_bad(b, malformed);
                b->state = CHUNK_EXT_QUOTED;
                return HTTP_BODY_MORE;
        case CHUNK_EXT_TOKEN:
        case CHUNK_EXT_END:
                if (c == '\r')
                        b->state = CHUNK_SIZE_LF;
                else if (c == ';')
                        b->state = CHUNK_EXT_NAME0;
                else if (is_ows(c))
                        b->state = CHUNK_SIZE_BWS;
                else if (!is_tchar(c) || b->state != CHUNK_EXT_TOKEN)
                        return body_bad(b, malformed);
                return HTTP_BODY_MORE;
        default: abort(); /* not a chunk-size line state */
        }
}

/* One byte of the trailer section (RFC 9112 7.1.2): field lines as in a head, then CRLF. */
static HttpBodyStep trailer_byte(HttpBody *b, char c) {
        if (++b->trailer_len > HTTP_PROXY_MAX_HEAD_BYTES)
                return body_bad(b, "a trailer section over 16 KiB");
        switch (b->state) {
        case TRAILER_LINE:
                if (c == '\r') {
                        b->state = FINAL_LF;
                        return HTTP_BODY_MORE;
                }
                if (c == '\n')
                        return body_bad(b, "a bare LF in the trailer section");
                if (is_ows(c))
                        return body_bad(b, "obsolete line folding in the trailer section");
                b->name_len = 0;
                b->state = TRAILER_NAME;
                __attribute__((fallthrough));
        case TRAILER_NAME:
                if (c == ':') {
                        if (b->name_len == 0)
                                return body_bad(b, "an empty field name in the trailer section");
                        if (name_is(b->name, MIN(b->name_len, sizeof b->name), "content-length") ||
                            name_is(b->name, MIN(b->name_len, sizeof b->name), "transfer-encoding") ||
                            name_is(b->name, MIN(b->name_len, sizeof b->name), "host"))
                                return body_bad(b, "Content-Length, Transfer-Encoding or Host in the trailer");
                        /* tlswatchd's own fields cannot be removed from a body forwarded as it is: a backend
                         * that merges trailers into the header section would take a forgery for them */
                        if (name_is_forwarding(b->name, MIN(b->name_len, sizeof b->name)))
                                return body_bad(
                                        b,
                                        "a TLS-*, X-Forwarded-*, Forwarded or X-Real-IP field in the "
                                        "trailer section");
                        b->state = TRAILER_VALUE;
                } else if (is_ows(c))
                        return body_bad(b, "whitespace between a field name and its colon");
                else if (!is_tchar(c))
                        return body_bad(b, "an invalid character in a trailer field name");
                else {
                        if (b->name_len < sizeof b->name)
                                b->name[b->name_len] = c;
                        b->name_len++;
                }
                return HTTP_BODY_MORE;
        case TRAILER_VALUE:
                if (c == '\r')
                        b->state = TRAILER_LF;
                else if (c == '\n')
                        return body_bad(b, "a bare LF in the trailer section");
                else if (((unsigned char) c < 0x20 && c != '\t') || c == 0x7f)
                        return body_bad(b, "a control character in a trailer field value");
                return HTTP_BODY_MORE;
        case TRAILER_LF:
        case FINAL_LF:
                if (c != '\n')
                        return body_bad(b, "a bare CR in the trailer section");
                if (b->state == FINAL_LF) {
                        b->state = BODY_DONE;
                        return HTTP_BODY_DONE;
                }
                b->state = TRAILER_LINE;
                return HTTP_BODY_MORE;
        default: abort(); /* not a trailer state */
        }
}

HttpBodyStep http_body_feed(HttpBody *b, const char *buf, size_t len, size_t *ret_consumed) {
        size_t i = 0;
        HttpBodyStep r = HTTP_BODY_MORE;

        assert(b && (buf || len == 0) && ret_consumed);

        while (r == HTTP_BODY_MORE) {
                if (b->state == BODY_DONE) {
                        r = HTTP_BODY_DONE;
                        break;
                }
                if (b->state == BODY_BAD) {
                        r = HTTP_BODY_BAD;
                        break;
                }
                if (i == len)
                        break;
                if (b->state == BODY_CLOSE) {
                        i = len;
                        break;
                }
                if (b->state == BODY_LENGTH || b->state == CHUNK_DATA) {
                        size_t n = (size_t) MIN(b->remaining, (uint64_t) (len - i));

                        i += n;
                        b->remaining -= n;
                        if (b->remaining == 0)
                                b->state = b->state == BODY_LENGTH ? BODY_DONE : CHUNK_DATA_CR;
                        continue;
                }

                char c = buf[i];
                switch (b->state) {
                case CHUNK_SIZE_LF:
                        if (c != '\n') {
                                r = body_bad(b, "a bare CR in a chunk-size line");
                                break;
                        }
                        if (b->remaining > 0)
                                b->state = CHUNK_DATA;
                        else {
                                b->state = TRAILER_LINE;
                                b->trailer_len = 0;
                        }
                        break;
                case CHUNK_DATA_CR:
                case CHUNK_DATA_LF:
                        if (c != (b->state == CHUNK_DATA_CR ? '\r' : '\n')) {
                                r = body_bad(b, "chunk data not followed by CRLF");
                                break;
                        }
                        if (b->state == CHUNK_DATA_CR)
                                b->state = CHUNK_DATA_LF;
                        else
                                *b = (HttpBody){.framing = b->framing, .state = CHUNK_SIZE};
                        break;
                case TRAILER_LINE:
                case TRAILER_NAME:
                case TRAILER_VALUE:
                case TRAILER_LF:
                case FINAL_LF: r = trailer_byte(b, c); break;
                default: r = chunk_line_byte(b, c);
                }
                if (r != HTTP_BODY_BAD)
                        i++;
        }
        *ret_consumed = i;
        return r;
}
