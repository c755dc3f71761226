/* SPDX-License-Identifier: MIT */
/* The request head as forwarded to the backend (http-proxy.h). */

#include <assert.h>
#include <inttypes.h>

#include "http-proxy.h"
#include "http-token.h"
#include "macro.h"

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

        if (name_is_forwarding(name, n) || name_is(name, n, "Connection") ||
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
        char id[24], failures[16], length[24];
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

        snprintf(length, sizeof length, "%" PRIu64, h->content_length);
        snprintf(id, sizeof id, "%" PRIu64, info->attempt_id);
        snprintf(failures, sizeof failures, "%u", info->prior_failures);
        size = h->head_len + strlen(info->client_addr) + strlen(id) + strlen(failures) +
                (info->ja4 ? strlen(info->ja4) : 0) + (info->ja4_stable ? strlen(info->ja4_stable) : 0) + 256;
        out = malloc(size);
        if (!out)
                return -ENOMEM;

        append(out, &n, buf + start, fields - start);
        for (size_t p = fields; field_next(buf, h, &p, &line);) {
                size_t nl = field_name_len(&line);

                /* The framing as we read it, in its one canonical form: a backend that would read
                 * "Transfer-Encoding: CHUNKED" or "Content-Length: 007" otherwise cannot. */
                if (name_is(line.p, nl, "Content-Length"))
                        append_field(out, &n, "Content-Length", length);
                else if (name_is(line.p, nl, "Transfer-Encoding"))
                        append_field(out, &n, "Transfer-Encoding", "chunked");
                else if (!field_is_dropped(&line, h, named, n_named)) {
                        append(out, &n, line.p, line.len);
                        append(out, &n, "\r\n", 2);
                }
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
