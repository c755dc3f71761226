/* SPDX-License-Identifier: MIT */
#pragma once

/* Character classes and list parsing of RFC 9110 (tokens, OWS, comma-separated lists), shared by the
 * HTTP/1.1 framing modules (http-proxy.c, http-forward.c, http-body.c). */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* ASCII only, whatever the locale (<ctype.h> may take bytes over 0x7f for letters). */
static inline bool ascii_isdigit(char c) {
        return c >= '0' && c <= '9';
}

static inline bool ascii_isalpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool ascii_isalnum(char c) {
        return ascii_isdigit(c) || ascii_isalpha(c);
}

static inline bool in_set(char c, const char *set) {
        return c != '\0' && strchr(set, c);
}

static inline bool is_tchar(char c) {
        return ascii_isalnum(c) || in_set(c, "!#$%&'*+-.^_`|~");
}

static inline bool is_ows(char c) {
        return c == ' ' || c == '\t';
}

static inline bool name_is(const char *name, size_t len, const char *want) {
        return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

static inline bool name_has_prefix(const char *name, size_t len, const char *prefix) {
        size_t n = strlen(prefix);

        return len >= n && strncasecmp(name, prefix, n) == 0;
}

static inline void trim_ows(const char **v, size_t *len) {
        while (*len > 0 && is_ows(**v))
                (*v)++, (*len)--;
        while (*len > 0 && is_ows((*v)[*len - 1]))
                (*len)--;
}

/* The next element of a comma-separated list (RFC 9110 5.6.1), OWS trimmed; false at the end. */
static inline bool list_next(const char **p, const char *end, const char **ret, size_t *ret_len) {
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

static inline bool is_token(const char *s, size_t len) {
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_tchar(s[i]))
                        return false;
        return true;
}

/* Case-insensitively, and with '_' read as '-': many servers (CGI, WSGI, PHP) turn both into the same
 * variable name (HTTP_TLS_CLIENT_JA4), so "TLS_Client_JA4" must count as "TLS-Client-JA4". */
static inline bool name_char_eq(char a, char b) {
        a = a == '_' ? '-' : a >= 'A' && a <= 'Z' ? (char) (a - 'A' + 'a') : a;
        b = b == '_' ? '-' : b >= 'A' && b <= 'Z' ? (char) (b - 'A' + 'a') : b;
        return a == b;
}

static inline bool name_has_prefix_cgi(const char *name, size_t len, const char *prefix) {
        size_t n = strlen(prefix);

        if (len < n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!name_char_eq(name[i], prefix[i]))
                        return false;
        return true;
}

static inline bool name_is_cgi(const char *name, size_t len, const char *want) {
        return len == strlen(want) && name_has_prefix_cgi(name, len, want);
}

/* The fields tlswatchd writes for the backend, and those that say the same thing (who the client is):
 * a client's copy of any of them is a forgery, spelt with '_' or not. */
static inline bool name_is_forwarding(const char *name, size_t len) {
        return name_has_prefix_cgi(name, len, "TLS-") || name_has_prefix_cgi(name, len, "X-Forwarded-") ||
                name_is_cgi(name, len, "Forwarded") || name_is_cgi(name, len, "X-Real-IP");
}
