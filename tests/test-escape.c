/* SPDX-License-Identifier: MIT */
/* Escaping of client-chosen bytes: exact outputs for known inputs, and properties over random bytes
 * (no control byte, valid UTF-8 out, valid JSON strings, RFC 4180 CSV fields). */
#include <stdint.h>

#include "escape.h"
#include "macro.h"
#include "tap.h"

typedef enum Kind { DISPLAY, JSON, CSV } Kind;

static char *run(Kind k, const void *data, size_t len, size_t *ret_len) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (k == DISPLAY) {
                char *s = escape_display(data, len);
                if (ret_len)
                        *ret_len = s ? strlen(s) : 0;
                return s;
        }
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        if (k == JSON)
                escape_json_fputs(f, data, len);
        else
                escape_csv_fputs(f, data, len);
        fclose(f);
        if (ret_len)
                *ret_len = size;
        return buf;
}

static void check(Kind k, const char *in, size_t len, const char *want, const char *what) {
        _cleanup_free_ char *got = run(k, in, len, NULL);

        is_str(got, want, "%s: %s", k == DISPLAY ? "display" : k == JSON ? "json" : "csv", what);
}

#define CHECK(k, lit, want, what) check(k, lit, sizeof(lit) - 1, want, what)

/* Valid UTF-8 without C0, DEL, C1 or bidi controls. */
static bool clean_utf8(const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t l;

                if (s[i] < 0x80) {
                        if (s[i] < 0x20 || s[i] == 0x7f)
                                return false;
                        i++;
                        continue;
                }
                if ((s[i] & 0xe0) == 0xc0)
                        l = 2, cp = s[i] & 0x1f;
                else if ((s[i] & 0xf0) == 0xe0)
                        l = 3, cp = s[i] & 0x0f;
                else if ((s[i] & 0xf8) == 0xf0)
                        l = 4, cp = s[i] & 0x07;
                else
                        return false;
                if (i + l > n)
                        return false;
                for (size_t k = 1; k < l; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((l == 2 && cp < 0x80) || (l == 3 && cp < 0x800) || (l == 4 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
                    (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f || cp == 0x061c ||
                    cp == 0xfeff)
                        return false;
                i += l;
        }
        return true;
}

/* A JSON string per RFC 8259: quotes around, escapes well-formed, no raw control characters. */
static bool valid_json_string(const char *s, size_t n) {
        if (n < 2 || s[0] != '"' || s[n - 1] != '"')
                return false;
        for (size_t i = 1; i < n - 1; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c == '"')
                        return false;
                if (c != '\\')
                        continue;
                i++;
                if (i >= n - 1)
                        return false;
                if (strchr("\"\\/bfnrt", s[i]))
                        continue;
                if (s[i] != 'u' || i + 4 >= n - 1)
                        return false;
                for (int k = 1; k <= 4; k++)
                        if (!strchr("0123456789abcdefABCDEF", s[i + k]))
                                return false;
                i += 4;
        }
        return clean_utf8((const unsigned char *) s, n);
}

/* One RFC 4180 field: either no ',', '"', CR, LF at all, or quoted with inner quotes doubled. */
static bool valid_csv_field(const char *s, size_t n) {
        if (n > 0 && s[0] == '"') {
                if (n < 2 || s[n - 1] != '"')
                        return false;
                for (size_t i = 1; i < n - 1; i++)
                        if (s[i] == '"') {
                                if (i + 1 >= n - 1 || s[i + 1] != '"')
                                        return false;
                                i++;
                        }
                return true;
        }
        return !memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\r', n) && !memchr(s, '\n', n);
}

static void test_known(void) {
        CHECK(DISPLAY, "example.com", "example.com", "plain ASCII passes");
        CHECK(DISPLAY, "a\\b", "a\\\\b", "backslash doubled");
        CHECK(DISPLAY, "a\x1b[31mred", "a\\x1b[31mred", "ESC escaped");
        CHECK(DISPLAY, "a\r\nb\t", "a\\x0d\\x0ab\\x09", "CR LF TAB escaped");
        CHECK(DISPLAY, "nul\0x", "nul\\x00x", "NUL kept visible");
        CHECK(DISPLAY, "\x7f", "\\x7f", "DEL escaped");
        CHECK(DISPLAY, "caf\xc3\xa9", "caf\xc3\xa9", "valid UTF-8 passes");
        CHECK(DISPLAY, "\xe6\x97\xa5\xf0\x9f\x98\x80", "\xe6\x97\xa5\xf0\x9f\x98\x80", "CJK and emoji pass");
        CHECK(DISPLAY, "\xc2\x9b", "\\xc2\\x9b", "C1 CSI (UTF-8) escaped per byte");
        CHECK(DISPLAY, "\x9b", "\\x9b", "raw C1 byte escaped");
        CHECK(DISPLAY, "\xff\xfe", "\\xff\\xfe", "invalid bytes escaped");
        CHECK(DISPLAY, "\xc0\xaf", "\\xc0\\xaf", "overlong encoding escaped");
        CHECK(DISPLAY, "\xed\xa0\x80", "\\xed\\xa0\\x80", "surrogate escaped");
        CHECK(DISPLAY, "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "beyond U+10FFFF escaped");
        CHECK(DISPLAY, "ab\xe2\x82", "ab\\xe2\\x82", "truncated sequence escaped");
        CHECK(DISPLAY, "\xe2\x80\xaegnp.exe", "\\xe2\\x80\\xaegnp.exe", "RLO bidi override escaped");
        CHECK(DISPLAY, "\xe2\x81\xa6x", "\\xe2\\x81\\xa6x", "LRI escaped");
        CHECK(DISPLAY, "\xef\xbb\xbfx", "\\xef\\xbb\\xbfx", "BOM escaped");
        CHECK(DISPLAY, "", "", "empty");

        CHECK(JSON, "example.com", "\"example.com\"", "plain");
        CHECK(JSON, "q\"b\\", "\"q\\\"b\\\\\"", "quote and backslash");
        CHECK(JSON, "a\nb\x1b", "\"a\\u000ab\\u001b\"", "controls as \\u");
        CHECK(JSON, "nul\0", "\"nul\\u0000\"", "NUL");
        CHECK(JSON, "\xff", "\"\\u00ff\"", "invalid byte as \\u00XX");
        CHECK(JSON, "caf\xc3\xa9", "\"caf\xc3\xa9\"", "valid UTF-8 passes");
        CHECK(JSON, "\xc2\x85", "\"\\u0085\"", "C1 as \\u");
        CHECK(JSON, "\xe2\x80\xae", "\"\\u202e\"", "bidi as \\u");
        CHECK(JSON, "", "\"\"", "empty");

        CHECK(CSV, "plain", "plain", "plain field unquoted");
        CHECK(CSV, "a,b", "\"a,b\"", "comma quoted");
        CHECK(CSV, "say \"hi\"", "\"say \"\"hi\"\"\"", "quotes doubled");
        CHECK(CSV, "line\r\nbreak", "line\\x0d\\x0abreak", "CR LF escaped, so no quoting needed");
        CHECK(CSV, "\x1b,", "\"\\x1b,\"", "escaped and quoted");
        CHECK(CSV, "", "", "empty field");
}

static void test_random(void) {
        uint64_t x = 0x2545f4914f6cdd1dULL;
        unsigned bad_display = 0, bad_json = 0, bad_csv = 0;

        for (unsigned round = 0; round < 20000; round++) {
                unsigned char in[64];
                size_t n = round % sizeof in;

                for (size_t i = 0; i < n; i++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        /* bias towards interesting bytes: controls, UTF-8 lead bytes, quotes */
                        static const unsigned char special[] = {
                                0, '\n', '\r', 0x1b, '"', '\\', ',', 0x7f, 0x9b, 0xc2, 0xe2, 0x80, 0xae, 0xf0, 0x9f, 0xff};
                        in[i] = x & 1 ? special[(x >> 1) % sizeof special] : (unsigned char) (x >> 8);
                }
                size_t l;
                _cleanup_free_ char *d = run(DISPLAY, in, n, &l);
                bad_display += !d || !clean_utf8((unsigned char *) d, l);
                _cleanup_free_ char *j = run(JSON, in, n, &l);
                bad_json += !j || !valid_json_string(j, l);
                _cleanup_free_ char *c = run(CSV, in, n, &l);
                bad_csv += !c || !valid_csv_field(c, l) || !clean_utf8((unsigned char *) c, l);
        }
        is_int(bad_display, 0, "display output is clean UTF-8 for 20000 random inputs");
        is_int(bad_json, 0, "JSON output is a valid string for 20000 random inputs");
        is_int(bad_csv, 0, "CSV output is a valid field for 20000 random inputs");
}

int main(void) {
        test_known();
        test_random();
        return tap_done();
}
