/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

#include "http-proxy.h"
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

static bool is_tchar(char c) {
        return c != '\0' && (isalnum((unsigned char) c) || strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c) {
        return c == ' ' || c == '\t';
}

static bool name_is(const char *name, size_t len, const char *want) {
        return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

static bool name_has_prefix(const char *name, size_t len, const char *prefix) {
        size_t n = strlen(prefix);

        return len >= n && strncasecmp(name, prefix, n) == 0;
}

static void trim_ows(const char **v, size_t *len) {
        while (*len > 0 && is_ows(**v))
                (*v)++, (*len)--;
        while (*len > 0 && is_ows((*v)[*len - 1]))
                (*len)--;
}

/* The next element of a comma-separated list (RFC 9110 5.6.1), OWS trimmed; false at the end. */
static bool list_next(const char **p, const char *end, const char **ret, size_t *ret_len) {
        const char *s = *p, *c;

        if (s > end)
                return false;
        c = memchr(s, ',', (size_t) (end - s));
        if (!c)
                c = end;
        *ret = s;
        *ret_len = (size_t) (c - s);
        trim_ows(ret, ret_len);
        *p = c + 1;
        return true;
}

static bool is_token(const char *s, size_t len) {
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_tchar(s[i]))
                        return false;
        return true;
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
                if (!isdigit((unsigned char) v[i]))
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
                if (!isalnum((unsigned char) v[i]) && !strchr("-._~!$&'()*+,;=:[]%", v[i]))
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
                if (vlen == 0)
                        return REFUSE(h, 400, "Upgrade empty");
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

        if (len == 0 || !isalpha((unsigned char) t[0]))
                return false;
        while (i < len && (isalnum((unsigned char) t[i]) || strchr("+-.", t[i])))
                i++;
        return len - i > 3 && memcmp(t + i, "://", 3) == 0;
}

static HttpParse parse_version(const char *v, size_t len, int bad, HttpMessageHead *h) {
        if (len == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1')) {
                h->minor_version = v[7] - '0';
                return HTTP_PARSE_DONE;
        }
        if (len == 8 && memcmp(v, "HTTP/", 5) == 0 && isdigit((unsigned char) v[5]) && v[6] == '.' &&
            isdigit((unsigned char) v[7]))
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
        if (name_is(h->method, h->method_len, "CONNECT"))
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
        if (len - (size_t) (c - line) < 3 || !isdigit((unsigned char) c[0]) || !isdigit((unsigned char) c[1]) ||
            !isdigit((unsigned char) c[2]) || (len - (size_t) (c - line) > 3 && c[3] != ' '))
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
        for (size_t i = pos; i < len; i++) {
                if (buf[i] == '\n') {
                        *ret_error = "a bare LF in the head (lines end with CRLF)";
                        return -EBADMSG;
                }
                if (buf[i] != '\r')
                        continue;
                if (i + 1 == len)
                        return -EAGAIN;
                if (buf[i + 1] != '\n') {
                        *ret_error = "a bare CR in the head";
                        return -EBADMSG;
                }
                *ret_end = i;
                return 0;
        }
        return -EAGAIN;
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

/* The rewrite */

static bool forward_value_is_valid(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 0x7f)
                        return false;
        return true;
}

typedef struct Span {
        const char *p;
        size_t len;
} Span;

/* The field lines of a parsed head: [*pos, line end) in turn, false after the last. */
static bool field_next(const char *buf, const HttpMessageHead *h, size_t *pos, Span *ret) {
        const char *crlf;

        if (*pos + 2 >= h->head_len)
                return false;
        crlf = memmem(buf + *pos, h->head_len - *pos, "\r\n", 2);
        assert(crlf);
        *ret = (Span){buf + *pos, (size_t) (crlf - (buf + *pos))};
        *pos += ret->len + 2;
        return true;
}

static size_t field_name_len(const Span *line) {
        return (size_t) ((const char *) memchr(line->p, ':', line->len) - line->p);
}

/* Field names in an order for bsearch(): by length, then case-insensitively. */
static int span_compare(const void *a, const void *b) {
        const Span *x = a, *y = b;

        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        return strncasecmp(x->p, y->p, x->len);
}

static bool field_is_dropped(const Span *line, const HttpMessageHead *h, const Span *named, size_t n_named) {
        size_t n = field_name_len(line);
        const char *name = line->p;

        if (name_has_prefix(name, n, "TLS-") || name_has_prefix(name, n, "X-Forwarded-") ||
            name_is(name, n, "Forwarded") || name_is(name, n, "X-Real-IP") || name_is(name, n, "Connection") ||
            name_is(name, n, "Keep-Alive") || name_is(name, n, "Proxy-Connection") || name_is(name, n, "TE"))
                return true;
        if (name_is(name, n, "Upgrade"))
                return !h->upgrade;
        return n_named > 0 && bsearch(&(Span){name, n}, named, n_named, sizeof(Span), span_compare);
}

static void append(char *out, size_t *n, const char *s, size_t len) {
        memcpy(out + *n, s, len);
        *n += len;
}

static void append_field(char *out, size_t *n, const char *name, const char *value) {
        append(out, n, name, strlen(name));
        append(out, n, ": ", 2);
        append(out, n, value, strlen(value));
        append(out, n, "\r\n", 2);
}

int http_proxy_rewrite_request(
        const char *buf, const HttpMessageHead *h, const HttpForwardInfo *info, char **ret, size_t *ret_len) {
        _cleanup_free_ Span *named = NULL;
        _cleanup_free_ char *out = NULL;
        size_t pos, start, n_named = 0, max_named = 0, n = 0, size;
        char id[24], failures[16];
        Span line;

        assert(buf && h && info && ret && ret_len);
        assert(h->head_len >= 4 && h->method && h->method >= buf && h->method < buf + h->head_len);

        if (!forward_value_is_valid(info->client_addr) || (info->ja4 && !forward_value_is_valid(info->ja4)) ||
            (info->ja4_stable && !forward_value_is_valid(info->ja4_stable)))
                return -EINVAL;

        /* the request line, after any empty lines */
        start = (size_t) (h->method - buf);
        pos = start;
        (void) field_next(buf, h, &pos, &line);
        size_t fields = pos;

        /* the field names the client's Connection lists */
        for (size_t p = fields; field_next(buf, h, &p, &line);)
                if (name_is(line.p, field_name_len(&line), "Connection"))
                        max_named += line.len / 2 + 1;
        if (max_named > 0) {
                named = calloc(max_named, sizeof(Span));
                if (!named)
                        return -ENOMEM;
        }
        for (size_t p = fields; field_next(buf, h, &p, &line);) {
                size_t nl = field_name_len(&line);
                const char *v = line.p + nl + 1, *e = line.p + line.len, *c;
                size_t clen;

                if (!name_is(line.p, nl, "Connection"))
                        continue;
                while (list_next(&v, e, &c, &clen))
                        if (clen > 0 && n_named < max_named)
                                named[n_named++] = (Span){c, clen};
        }
        if (n_named > 1)
                qsort(named, n_named, sizeof(Span), span_compare);

        snprintf(id, sizeof id, "%" PRIu64, info->attempt_id);
        snprintf(failures, sizeof failures, "%u", info->prior_failures);
        size = h->head_len + strlen(info->client_addr) + strlen(id) + strlen(failures) +
                (info->ja4 ? strlen(info->ja4) : 0) + (info->ja4_stable ? strlen(info->ja4_stable) : 0) + 256;
        out = malloc(size);
        if (!out)
                return -ENOMEM;

        append(out, &n, buf + start, fields - start);
        for (size_t p = fields; field_next(buf, h, &p, &line);)
                if (!field_is_dropped(&line, h, named, n_named)) {
                        append(out, &n, line.p, line.len);
                        append(out, &n, "\r\n", 2);
                }
        append_field(out, &n, "X-Forwarded-For", info->client_addr);
        append_field(out, &n, "X-Forwarded-Proto", "https");
        if (info->ja4)
                append_field(out, &n, "TLS-Client-JA4", info->ja4);
        if (info->ja4_stable)
                append_field(out, &n, "TLS-Client-JA4-Stable", info->ja4_stable);
        if (info->attempt_id > 0)
                append_field(out, &n, "TLS-Attempt-Id", id);
        append_field(out, &n, "TLS-Prior-Failures", failures);
        if (h->upgrade)
                append_field(out, &n, "Connection", h->keep_alive ? "upgrade" : "upgrade, close");
        else if (!h->keep_alive)
                append_field(out, &n, "Connection", "close");
        else if (h->minor_version == 0)
                append_field(out, &n, "Connection", "keep-alive");
        append(out, &n, "\r\n", 2);
        assert(n < size);
        out[n] = '\0';

        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

/* The body */

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
