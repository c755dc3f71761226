/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include "http.h"
#include "macro.h"

const char *http_status_reason(int status) {
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Content Too Large";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
        }
}

static bool is_tchar(char c) {
        return isalnum((unsigned char) c) || strchr("!#$%&'*+-.^_`|~", c);
}

bool http_looks_like_request(const void *buf, size_t len) {
        static const char *const methods[] = {
                "GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "TRACE ", "PATCH ", "CONNECT ", "PRI "};

        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                size_t n = MIN(len, strlen(methods[i]));

                if (n >= 3 && memcmp(buf, methods[i], n) == 0)
                        return true;
        }
        return false;
}

static bool header_name_is(const char *line, size_t name_len, const char *name) {
        return name_len == strlen(name) && strncasecmp(line, name, name_len) == 0;
}

/* Whether the comma-separated header value contains token (case-insensitive). */
static bool value_has_token(const char *v, size_t len, const char *token) {
        size_t tl = strlen(token);

        for (size_t i = 0; i < len;) {
                size_t j = i;

                while (j < len && v[j] != ',')
                        j++;
                size_t a = i, b = j;
                while (a < b && (v[a] == ' ' || v[a] == '\t'))
                        a++;
                while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
                        b--;
                if (b - a == tl && strncasecmp(v + a, token, tl) == 0)
                        return true;
                i = j + 1;
        }
        return false;
}

static const char *find_header_end(const char *buf, size_t len, size_t *ret_end) {
        for (size_t i = 0; i + 1 < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if (buf[i + 1] == '\n') {
                        *ret_end = i + 2;
                        return buf + i;
                }
                if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
                        *ret_end = i + 3;
                        return buf + i;
                }
        }
        return NULL;
}

static HttpParse parse_request_line(const char *line, size_t len, HttpRequest *req) {
        const char *sp1, *sp2;

        sp1 = memchr(line, ' ', len);
        if (!sp1 || sp1 == line)
                return HTTP_PARSE_BAD;
        sp2 = memchr(sp1 + 1, ' ', len - (size_t) (sp1 + 1 - line));
        if (!sp2 || sp2 == sp1 + 1)
                return HTTP_PARSE_BAD;
        for (const char *c = line; c < sp1; c++)
                if (!is_tchar(*c))
                        return HTTP_PARSE_BAD;
        for (const char *c = sp1 + 1; c < sp2; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f)
                        return HTTP_PARSE_BAD;
        size_t vlen = len - (size_t) (sp2 + 1 - line);
        if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
                return HTTP_PARSE_BAD;

        req->method = line;
        req->method_len = (size_t) (sp1 - line);
        req->target = sp1 + 1;
        req->target_len = (size_t) (sp2 - sp1 - 1);
        req->minor_version = sp2[8] - '0';
        req->keep_alive = req->minor_version == 1;
        return HTTP_PARSE_DONE;
}

static HttpParse parse_header_line(const char *line, size_t len, HttpRequest *req) {
        const char *colon = memchr(line, ':', len);
        size_t name_len;
        const char *v;
        size_t vlen;

        if (!colon || colon == line)
                return HTTP_PARSE_BAD;
        name_len = (size_t) (colon - line);
        for (size_t i = 0; i < name_len; i++)
                if (!is_tchar(line[i]))
                        return HTTP_PARSE_BAD; /* also refuses obsolete line folding */
        v = colon + 1;
        vlen = len - name_len - 1;
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
                v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;

        if (header_name_is(line, name_len, "User-Agent") && !req->has_user_agent) {
                req->user_agent = v;
                req->user_agent_len = vlen;
                req->has_user_agent = true;
        } else if (header_name_is(line, name_len, "Connection")) {
                if (value_has_token(v, vlen, "close"))
                        req->keep_alive = false;
                else if (value_has_token(v, vlen, "keep-alive"))
                        req->keep_alive = true;
        } else if (header_name_is(line, name_len, "Content-Length")) {
                if (vlen == 0)
                        return HTTP_PARSE_BAD;
                for (size_t i = 0; i < vlen; i++)
                        if (!isdigit((unsigned char) v[i]))
                                return HTTP_PARSE_BAD;
                for (size_t i = 0; i < vlen; i++)
                        if (v[i] != '0')
                                req->has_body = true;
        } else if (header_name_is(line, name_len, "Transfer-Encoding"))
                req->has_body = true;
        return HTTP_PARSE_DONE;
}

bool http_header_end_after(const char *buf, size_t len, size_t scanned) {
        /* an end ("\n\n" or "\n\r\n") not wholly in the first `scanned` bytes starts at scanned - 2 or later */
        size_t from = scanned >= 2 ? MIN(scanned - 2, len) : 0, end;

        return find_header_end(buf + from, len - from, &end);
}

HttpParse http_parse_request(const char *buf, size_t len, HttpRequest *ret) {
        HttpRequest req = {};
        size_t end, pos = 0;
        bool first = true;

        /* RFC 9112 2.2: ignore at least one empty line before the request line. */
        while (pos + 1 < len && buf[pos] == '\r' && buf[pos + 1] == '\n')
                pos += 2;
        if (!find_header_end(buf + pos, len - pos, &end))
                return len >= HTTP_MAX_HEADER_BYTES ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_MORE;
        end += pos;
        if (end > HTTP_MAX_HEADER_BYTES)
                return HTTP_PARSE_TOO_LARGE;

        while (pos < end) {
                const char *line = buf + pos, *nl = memchr(line, '\n', end - pos);
                size_t llen = (size_t) (nl - line);

                pos += llen + 1;
                if (llen > 0 && line[llen - 1] == '\r')
                        llen--;
                if (llen == 0)
                        break;
                if (memchr(line, '\0', llen) || memchr(line, '\r', llen))
                        return HTTP_PARSE_BAD;
                HttpParse p = first ? parse_request_line(line, llen, &req)
                                    : parse_header_line(line, llen, &req);
                if (p != HTTP_PARSE_DONE)
                        return p;
                first = false;
        }
        if (first)
                return HTTP_PARSE_BAD;
        req.consumed = end;
        *ret = req;
        return HTTP_PARSE_DONE;
}

int http_response_build(
        int status,
        const char *content_type,
        const char *body,
        size_t body_len,
        bool keep_alive,
        bool head_only,
        char **ret,
        size_t *ret_len) {
        char *out = NULL;
        size_t n = 0;
        FILE *f;

        f = open_memstream(&out, &n);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "HTTP/1.1 %d %s\r\n"
                "Server: tlswatchd\r\n"
                "Content-Type: %s\r\n"
                "Content-Length: %zu\r\n"
                "Cache-Control: no-store\r\n"
                "X-Content-Type-Options: nosniff\r\n"
                "Connection: %s\r\n"
                "\r\n",
                status,
                http_status_reason(status),
                content_type,
                body_len,
                keep_alive ? "keep-alive" : "close");
        if (!head_only && body_len > 0)
                fwrite(body, 1, body_len, f);
        if (ferror(f) || fclose(f) != 0) {
                free(out);
                return -ENOMEM;
        }
        *ret = out;
        *ret_len = n;
        return 0;
}
