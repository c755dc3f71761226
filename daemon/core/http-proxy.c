/* SPDX-License-Identifier: MIT */
/* The heads of requests and responses (http-proxy.h); the forwarded head is http-forward.c's, the
 * body http-body.c's. */

#include "http-proxy.h"
#include "http-token.h"
#include "macro.h"

const char *http_framing_to_string(HttpFraming f) {
        static const char *const table[_HTTP_FRAMING_MAX] = {
                [HTTP_FRAMING_NONE] = "none",
                [HTTP_FRAMING_LENGTH] = "length",
                [HTTP_FRAMING_CHUNKED] = "chunked",
                [HTTP_FRAMING_CLOSE] = "close",
        };

        return f >= 0 && f < _HTTP_FRAMING_MAX ? table[f] : NULL;
}

/* What the field lines said, gathered while they are parsed. */
typedef struct HeadState {
        bool request, request_was_head;
        unsigned n_content_length, n_transfer_encoding, n_host;
        unsigned te_chunked;  /* times chunked appears among the transfer codings */
        bool te_chunked_last; /* the last transfer coding is chunked */
        bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade, has_expect;
} HeadState;

#define REFUSE(h, s, e)                  \
        ({                               \
                (h)->error = (e);        \
                (h)->error_status = (s); \
                HTTP_PARSE_BAD;          \
        })

static HttpParse parse_content_length(const char *v, size_t len, HttpMessageHead *h) {
        uint64_t n = 0;

        if (len == 0)
                return REFUSE(h, 400, "Content-Length empty");
        if (memchr(v, ',', len))
                return REFUSE(h, 400, "Content-Length is a list");
        for (size_t i = 0; i < len; i++) {
                if (!ascii_isdigit(v[i]))
                        return REFUSE(h, 400, "Content-Length is not a decimal number");
                if (n > ((uint64_t) INT64_MAX - (uint64_t) (v[i] - '0')) / 10)
                        return REFUSE(h, 400, "Content-Length too large");
                n = n * 10 + (uint64_t) (v[i] - '0');
        }
        h->content_length = n;
        return HTTP_PARSE_DONE;
}

static bool coding_is_known(const char *c, size_t len) {
        static const char *const known[] = {
                "chunked",
                "gzip",
                "x-gzip",
                "deflate",
                "compress",
                "x-compress",
        };

        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (name_is(c, len, known[i]))
                        return true;
        return false;
}

static HttpParse parse_transfer_encoding(const char *v, size_t len, HeadState *s, HttpMessageHead *h) {
        const char *p = v, *c;
        size_t clen;
        unsigned n = 0, unknown = 0;

        if (s->request && s->n_transfer_encoding > 1)
                return REFUSE(h, 400, "Transfer-Encoding duplicated");
        if (len == 0)
                return REFUSE(h, 400, "Transfer-Encoding empty");
        while (list_next(&p, v + len, &c, &clen)) {
                if (!is_token(c, clen))
                        return REFUSE(h, 400, "Transfer-Encoding is not a list of codings");
                if (!coding_is_known(c, clen))
                        unknown++;
                if (name_is(c, clen, "chunked"))
                        s->te_chunked++;
                s->te_chunked_last = name_is(c, clen, "chunked");
                n++;
        }
        if (!s->request)
                return HTTP_PARSE_DONE; /* the codings are the client's business; the framing is checked at the end */
        if (unknown > 0)
                return REFUSE(h, 501, "Transfer-Encoding with an unknown coding");
        if (!s->te_chunked_last)
                return REFUSE(h, 400, "Transfer-Encoding whose final coding is not chunked");
        if (s->te_chunked > 1)
                return REFUSE(h, 400, "Transfer-Encoding applies chunked more than once");
        if (n > 1)
                return REFUSE(h, 501, "Transfer-Encoding with a coding besides chunked");
        return HTTP_PARSE_DONE;
}

static HttpParse parse_connection(const char *v, size_t len, HeadState *s, HttpMessageHead *h) {
        const char *p = v, *c;
        size_t clen;

        while (list_next(&p, v + len, &c, &clen)) {
                if (clen == 0)
                        continue; /* empty list elements are ignored (RFC 9110 5.6.1) */
                if (!is_token(c, clen)) {
                        if (!s->request)
                                continue;
                        return REFUSE(h, 400, "Connection is not a list of field names");
                }
                if (name_is(c, clen, "close"))
                        s->conn_close = true;
                else if (name_is(c, clen, "keep-alive"))
                        s->conn_keep_alive = true;
                else if (name_is(c, clen, "upgrade"))
                        s->conn_upgrade = true;
                else if (
                        s->request &&
                        (name_is(c, clen, "content-length") || name_is(c, clen, "transfer-encoding") ||
                         name_is(c, clen, "host")))
                        return REFUSE(h, 400, "Connection names Content-Length, Transfer-Encoding or Host");
        }
        return HTTP_PARSE_DONE;
}

static bool host_is_valid(const char *v, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (!ascii_isalnum(v[i]) && !in_set(v[i], "-._~!$&'()*+,;=:[]%"))
                        return false;
        return true;
}

static HttpParse parse_field_line(const char *line, size_t len, HeadState *s, HttpMessageHead *h) {
        int bad = s->request ? 400 : 502;
        const char *colon, *v;
        size_t name_len, vlen;

        if (is_ows(line[0]))
                return REFUSE(h, bad, "obsolete line folding (a field line starting with whitespace)");
        colon = memchr(line, ':', len);
        if (!colon)
                return REFUSE(h, bad, "a field line without a colon");
        name_len = (size_t) (colon - line);
        if (name_len == 0)
                return REFUSE(h, bad, "an empty field name");
        for (size_t i = 0; i < name_len; i++) {
                if (is_ows(line[i]))
                        return REFUSE(h, bad, "whitespace between a field name and its colon");
                if (!is_tchar(line[i]))
                        return REFUSE(h, bad, "an invalid character in a field name");
        }
        v = colon + 1;
        vlen = len - name_len - 1;
        for (size_t i = 0; i < vlen; i++) {
                if (v[i] == '\0')
                        return REFUSE(h, bad, "a NUL byte in a field value");
                if (((unsigned char) v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
                        return REFUSE(h, bad, "a control character in a field value");
        }
        trim_ows(&v, &vlen);

        if (name_is(line, name_len, "Content-Length")) {
                if (++s->n_content_length > 1)
                        return REFUSE(h, bad, "Content-Length duplicated");
                HttpParse p = parse_content_length(v, vlen, h);
                if (p != HTTP_PARSE_DONE)
                        h->error_status = bad;
                return p;
        }
        if (name_is(line, name_len, "Transfer-Encoding")) {
                s->n_transfer_encoding++;
                HttpParse p = parse_transfer_encoding(v, vlen, s, h);
                if (p != HTTP_PARSE_DONE && !s->request)
                        h->error_status = bad;
                return p;
        }
        /* Some servers read an underscore as a hyphen (CGI variables): one of these names would frame the
         * message for them and not for us. */
        if (name_is(line, name_len, "Content_Length") || name_is(line, name_len, "Transfer_Encoding"))
                return REFUSE(h, bad, "Content_Length or Transfer_Encoding (an underscore for a hyphen)");
        if (name_is(line, name_len, "Connection"))
                return parse_connection(v, vlen, s, h);
        if (!s->request)
                return HTTP_PARSE_DONE;
        if (name_is(line, name_len, "Host")) {
                if (++s->n_host > 1)
                        return REFUSE(h, 400, "Host duplicated");
                if (!host_is_valid(v, vlen))
                        return REFUSE(h, 400, "Host is not a host name and port");
                h->host = v;
                h->host_len = vlen;
        } else if (name_is(line, name_len, "Upgrade")) {
                const char *p = v, *c;
                size_t clen;

                if (vlen == 0)
                        return REFUSE(h, 400, "Upgrade empty");
                /* HTTP/2 over cleartext, never over TLS (RFC 9113 3.1): a backend that took it would read
                 * the client's HTTP/2 requests straight from the tunnel, its forged fields unremoved */
                while (list_next(&p, v + vlen, &c, &clen))
                        if (name_is(c, clen, "h2c") || name_has_prefix(c, clen, "h2c/"))
                                return REFUSE(h, 400, "Upgrade: h2c (HTTP/2 over cleartext, never over TLS)");
                s->has_upgrade = true;
        } else if (name_is(line, name_len, "Expect")) {
                if (!name_is(v, vlen, "100-continue"))
                        return REFUSE(h, 417, "Expect other than 100-continue");
                s->has_expect = true;
        }
        return HTTP_PARSE_DONE;
}

static bool target_is_absolute_form(const char *t, size_t len) {
        size_t i = 0;

        if (len == 0 || !ascii_isalpha(t[0]))
                return false;
        while (i < len && (ascii_isalnum(t[i]) || in_set(t[i], "+-.")))
                i++;
        return len - i > 3 && memcmp(t + i, "://", 3) == 0;
}

static HttpParse parse_version(const char *v, size_t len, int bad, HttpMessageHead *h) {
        if (len == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1')) {
                h->minor_version = v[7] - '0';
                return HTTP_PARSE_DONE;
        }
        if (len == 8 && memcmp(v, "HTTP/", 5) == 0 && ascii_isdigit(v[5]) && v[6] == '.' && ascii_isdigit(v[7]))
                return REFUSE(h, bad == 400 ? 505 : bad, "an HTTP version other than 1.0 or 1.1");
        return REFUSE(h, bad, "a malformed HTTP version");
}

static HttpParse parse_request_line(const char *line, size_t len, HttpMessageHead *h) {
        const char *sp1, *sp2, *t;
        size_t tlen;

        sp1 = memchr(line, ' ', len);
        if (!sp1)
                return REFUSE(h, 400, "a request line without a target");
        if (sp1 == line)
                return REFUSE(h, 400, "a request line starting with a space");
        for (const char *c = line; c < sp1; c++)
                if (!is_tchar(*c))
                        return REFUSE(h, 400, "an invalid character in the method");
        t = sp1 + 1;
        sp2 = memchr(t, ' ', len - (size_t) (t - line));
        if (!sp2)
                return REFUSE(h, 400, "a request line without an HTTP version (HTTP/0.9)");
        if (sp2 == t)
                return REFUSE(h, 400, "two spaces in the request line");
        tlen = (size_t) (sp2 - t);
        for (size_t i = 0; i < tlen; i++)
                if ((unsigned char) t[i] <= ' ' || (unsigned char) t[i] >= 0x7f)
                        return REFUSE(h, 400, "an invalid character in the request target");
        if (memchr(sp2 + 1, ' ', len - (size_t) (sp2 + 1 - line)))
                return REFUSE(h, 400, "more than three parts in the request line");
        HttpParse p = parse_version(sp2 + 1, len - (size_t) (sp2 + 1 - line), 400, h);
        if (p != HTTP_PARSE_DONE)
                return p;

        h->method = line;
        h->method_len = (size_t) (sp1 - line);
        if (h->method_len == 7 && memcmp(h->method, "CONNECT", 7) == 0) /* methods are case-sensitive */
                return REFUSE(h, 501, "CONNECT is not forwarded");
        if (t[0] != '/' && !target_is_absolute_form(t, tlen) &&
            !(tlen == 1 && t[0] == '*' && h->method_len == 7 && memcmp(h->method, "OPTIONS", 7) == 0))
                return REFUSE(h, 400, "a request target neither origin-form nor absolute-form");
        h->target = t;
        h->target_len = tlen;
        return HTTP_PARSE_DONE;
}

static HttpParse parse_status_line(const char *line, size_t len, HttpMessageHead *h) {
        const char *sp = memchr(line, ' ', len), *c;
        HttpParse p;

        if (!sp)
                return REFUSE(h, 502, "a status line without a status code");
        p = parse_version(line, (size_t) (sp - line), 502, h);
        if (p != HTTP_PARSE_DONE)
                return p;
        c = sp + 1;
        if (len - (size_t) (c - line) < 3 || !ascii_isdigit(c[0]) || !ascii_isdigit(c[1]) ||
            !ascii_isdigit(c[2]) || (len - (size_t) (c - line) > 3 && c[3] != ' '))
                return REFUSE(h, 502, "a malformed status code");
        h->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
        if (h->status < 100 || h->status > 599)
                return REFUSE(h, 502, "a status code outside 100..599");
        for (c += 3; c < line + len; c++)
                if (((unsigned char) *c < 0x20 && *c != '\t') || *c == 0x7f)
                        return REFUSE(h, 502, "a control character in the reason phrase");
        return HTTP_PARSE_DONE;
}

/* The message's framing and connection handling from what its fields said (RFC 9112 6.3, 9.3). */
static HttpParse head_finish(const HeadState *s, HttpMessageHead *h) {
        int bad = s->request ? 400 : 502;
        bool te = s->n_transfer_encoding > 0, cl = s->n_content_length > 0;

        if (te && h->minor_version == 0)
                return REFUSE(h, bad, "Transfer-Encoding in an HTTP/1.0 message");
        if (te && cl)
                return REFUSE(h, bad, "Content-Length and Transfer-Encoding both present");
        if (!s->request && te && s->te_chunked > 0 && (!s->te_chunked_last || s->te_chunked > 1))
                return REFUSE(h, bad, "Transfer-Encoding with chunked before its final coding");
        if (s->request && h->minor_version == 1 && s->n_host == 0)
                return REFUSE(h, 400, "Host missing");

        h->keep_alive = !s->conn_close && (h->minor_version == 1 || s->conn_keep_alive);
        if (s->request) {
                h->framing = te ? HTTP_FRAMING_CHUNKED : cl ? HTTP_FRAMING_LENGTH : HTTP_FRAMING_NONE;
                h->upgrade = h->minor_version == 1 && s->has_upgrade && s->conn_upgrade;
                h->expect_continue = h->minor_version == 1 && s->has_expect;
                return HTTP_PARSE_DONE;
        }
        if (s->request_was_head || h->status < 200 || h->status == 204 || h->status == 304)
                h->framing = HTTP_FRAMING_NONE;
        else if (te)
                h->framing = s->te_chunked_last ? HTTP_FRAMING_CHUNKED : HTTP_FRAMING_CLOSE;
        else
                h->framing = cl ? HTTP_FRAMING_LENGTH : HTTP_FRAMING_CLOSE;
        if (h->framing != HTTP_FRAMING_LENGTH)
                h->content_length = 0;
        h->upgrade = h->status == 101;
        if (h->framing == HTTP_FRAMING_CLOSE || h->upgrade)
                h->keep_alive = false;
        return HTTP_PARSE_DONE;
}

/* The next line of a head: [pos, *ret_end) with CRLF at *ret_end. -EAGAIN: not complete in len bytes. */
static int next_line(const char *buf, size_t len, size_t pos, size_t *ret_end, const char **ret_error) {
        const char *cr = memchr(buf + pos, '\r', len - pos);
        size_t i = cr ? (size_t) (cr - buf) : len;

        if (memchr(buf + pos, '\n', i - pos)) {
                *ret_error = "a bare LF in the head (lines end with CRLF)";
                return -EBADMSG;
        }
        if (!cr || i + 1 == len)
                return -EAGAIN;
        if (buf[i + 1] != '\n') {
                *ret_error = "a bare CR in the head";
                return -EBADMSG;
        }
        *ret_end = i;
        return 0;
}

static HttpParse parse_head(const char *buf, size_t len, HeadState *s, HttpMessageHead *ret) {
        HttpMessageHead h = {.error_status = s->request ? 400 : 502};
        size_t limit = MIN(len, (size_t) HTTP_PROXY_MAX_HEAD_BYTES), pos = 0, end;
        unsigned empty_lines = 0;
        bool first = true;
        HttpParse p;

        for (;;) {
                const char *error;
                int r = next_line(buf, limit, pos, &end, &error);

                if (r == -EAGAIN) {
                        if (len < HTTP_PROXY_MAX_HEAD_BYTES) {
                                p = HTTP_PARSE_MORE;
                                break;
                        }
                        h.error = s->request ? "a request head over 16 KiB" : "a response head over 16 KiB";
                        h.error_status = s->request ? 431 : 502;
                        p = HTTP_PARSE_TOO_LARGE;
                        break;
                }
                if (r < 0) {
                        p = REFUSE(&h, h.error_status, error);
                        break;
                }
                const char *line = buf + pos;
                size_t n = end - pos;
                pos = end + 2;
                if (n == 0) {
                        if (first && s->request && ++empty_lines <= HTTP_PROXY_MAX_EMPTY_LINES)
                                continue; /* RFC 9112 2.2: empty lines before the request line */
                        if (first && s->request) {
                                p = REFUSE(&h, 400, "more than 4 empty lines before the request line");
                                break;
                        }
                        if (first) {
                                p = REFUSE(&h, 502, "an empty line before the status line");
                                break;
                        }
                        h.head_len = pos;
                        p = head_finish(s, &h);
                        break;
                }
                if (memchr(line, '\0', n)) {
                        p = REFUSE(&h, h.error_status, "a NUL byte in the head");
                        break;
                }
                if (first)
                        p = s->request ? parse_request_line(line, n, &h) : parse_status_line(line, n, &h);
                else
                        p = parse_field_line(line, n, s, &h);
                if (p != HTTP_PARSE_DONE)
                        break;
                first = false;
        }
        if (p == HTTP_PARSE_DONE || p == HTTP_PARSE_MORE)
                h.error_status = 0;
        *ret = h;
        return p;
}

HttpParse http_proxy_parse_request(const char *buf, size_t len, HttpMessageHead *ret) {
        HeadState s = {.request = true};

        return parse_head(buf, len, &s, ret);
}

HttpParse http_proxy_parse_response(const char *buf, size_t len, bool request_was_head, HttpMessageHead *ret) {
        HeadState s = {.request_was_head = request_was_head};

        return parse_head(buf, len, &s, ret);
}

bool http_proxy_head_worth_parsing(const char *buf, size_t len, size_t scanned) {
        if (len >= HTTP_PROXY_MAX_HEAD_BYTES)
                return true;
        /* what ends at a new byte: a CRLF CRLF, a bare LF, a CR followed by anything but LF */
        for (size_t i = scanned > 0 ? scanned - 1 : 0; i < len; i++) {
                if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
                        return true;
                if (i < scanned || buf[i] != '\n')
                        continue;
                if (i == 0 || buf[i - 1] != '\r')
                        return true;
                if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
                        return true;
        }
        return false;
}
