/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not valid (overlong, surrogate,
 * beyond U+10FFFF, truncated). *ret_cp gets the code point. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *ret_cp) {
        uint32_t cp;
        size_t len;

        if (p[0] < 0x80) {
                *ret_cp = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0)
                len = 2, cp = p[0] & 0x1f;
        else if ((p[0] & 0xf0) == 0xe0)
                len = 3, cp = p[0] & 0x0f;
        else if ((p[0] & 0xf8) == 0xf0)
                len = 4, cp = p[0] & 0x07;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return len;
}

/* Code points that may change how a terminal shows the text around them. */
static int dangerous_cp(uint32_t cp) {
        return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x200e && cp <= 0x200f) ||
                (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x061c ||
                cp == 0xfeff;
}

char *escape_display(const void *data, size_t len) {
        const unsigned char *p = data;
        char *out, *o;

        out = malloc(len * 4 + 1); /* worst case: every byte becomes \xHH */
        if (!out)
                return NULL;
        o = out;
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);

                if (n > 0 && !dangerous_cp(cp)) {
                        if (cp == '\\')
                                *o++ = '\\';
                        memcpy(o, p + i, n);
                        o += n;
                        i += n;
                        continue;
                }
                if (n == 0)
                        n = 1;
                for (size_t k = 0; k < n; k++, i++) {
                        static const char hex[] = "0123456789abcdef";

                        *o++ = '\\';
                        *o++ = 'x';
                        *o++ = hex[p[i] >> 4];
                        *o++ = hex[p[i] & 15];
                }
        }
        *o = '\0';
        return out;
}

void escape_json_fputs(FILE *f, const void *data, size_t len) {
        const unsigned char *p = data;
        size_t run = 0; /* start of the pending run of bytes that are written as they are */

        fputc('"', f);
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n;

                /* fast path: printable ASCII other than '"' and '\\' */
                if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') {
                        i++;
                        continue;
                }
                n = utf8_decode(p + i, len - i, &cp);
                if (n > 0 && cp >= 0x80 && !dangerous_cp(cp)) {
                        i += n;
                        continue;
                }
                if (i > run)
                        fwrite(p + run, 1, i - run, f);
                if (n == 0) {
                        fprintf(f, "\\u%04x", p[i]);
                        n = 1;
                } else if (cp == '"' || cp == '\\')
                        fprintf(f, "\\%c", (char) cp);
                else
                        fprintf(f, "\\u%04x", (unsigned) cp);
                i += n;
                run = i;
        }
        if (len > run)
                fwrite(p + run, 1, len - run, f);
        fputc('"', f);
}

void escape_csv_fputs(FILE *f, const void *data, size_t len) {
        char *e = escape_display(data, len);

        if (!e) {
                fputs("\"\"", f);
                return;
        }
        if (strpbrk(e, ",\"\r\n")) {
                fputc('"', f);
                for (char *c = e; *c; c++) {
                        if (*c == '"')
                                fputc('"', f);
                        fputc(*c, f);
                }
                fputc('"', f);
        } else
                fputs(e, f);
        free(e);
}
