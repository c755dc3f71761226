/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello-util.h"

#define ELEMENTS(x) (sizeof(x) / sizeof((x)[0]))

static void buf_reserve(Buf *b, size_t n) {
        if (b->len + n <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
                cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) {
                fprintf(stderr, "out of memory\n");
                abort();
        }
        b->cap = cap;
}

void buf_put(Buf *b, const void *p, size_t n) {
        buf_reserve(b, n);
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
}

void buf_u8(Buf *b, uint8_t v) {
        buf_put(b, &v, 1);
}

void buf_u16(Buf *b, uint16_t v) {
        uint8_t x[2] = {v >> 8, v & 0xff};
        buf_put(b, x, 2);
}

void buf_u24(Buf *b, uint32_t v) {
        uint8_t x[3] = {(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};
        buf_put(b, x, 3);
}

size_t buf_begin(Buf *b, unsigned size) {
        static const uint8_t zero[3] = {};
        size_t mark = b->len;
        buf_put(b, zero, size);
        return mark;
}

void buf_end(Buf *b, size_t mark, unsigned size) {
        size_t n = b->len - mark - size;
        for (unsigned i = 0; i < size; i++)
                b->data[mark + i] = (uint8_t) (n >> (8 * (size - 1 - i)));
}

void buf_free(Buf *b) {
        free(b->data);
        *b = (Buf){};
}

void ext_raw(Buf *exts, uint16_t type, const void *data, size_t n) {
        buf_u16(exts, type);
        buf_u16(exts, (uint16_t) n);
        buf_put(exts, data, n);
}

void ext_u16_list(Buf *exts, uint16_t type, const uint16_t *v, size_t n, bool len8) {
        buf_u16(exts, type);
        size_t m = buf_begin(exts, 2);
        if (len8)
                buf_u8(exts, (uint8_t) (2 * n));
        else
                buf_u16(exts, (uint16_t) (2 * n));
        for (size_t i = 0; i < n; i++)
                buf_u16(exts, v[i]);
        buf_end(exts, m, 2);
}

void ext_sni(Buf *exts, const char *name) {
        buf_u16(exts, 0x0000);
        size_t m = buf_begin(exts, 2);
        size_t l = buf_begin(exts, 2);
        buf_u8(exts, 0);
        buf_u16(exts, (uint16_t) strlen(name));
        buf_put(exts, name, strlen(name));
        buf_end(exts, l, 2);
        buf_end(exts, m, 2);
}

void ext_alpn(Buf *exts, const char *const *protos, const size_t *lens, size_t n) {
        buf_u16(exts, 0x0010);
        size_t m = buf_begin(exts, 2);
        size_t l = buf_begin(exts, 2);
        for (size_t i = 0; i < n; i++) {
                buf_u8(exts, (uint8_t) lens[i]);
                buf_put(exts, protos[i], lens[i]);
        }
        buf_end(exts, l, 2);
        buf_end(exts, m, 2);
}

void hello_message(Buf *out, uint16_t version, const uint16_t *ciphers, size_t n_ciphers, const Buf *exts) {
        uint8_t random[32];

        for (size_t i = 0; i < sizeof(random); i++)
                random[i] = (uint8_t) (0x40 + i);

        buf_u8(out, 1);
        size_t m = buf_begin(out, 3);
        buf_u16(out, version);
        buf_put(out, random, sizeof(random));
        buf_u8(out, 32); /* session id */
        buf_put(out, random, sizeof(random));
        buf_u16(out, (uint16_t) (2 * n_ciphers));
        for (size_t i = 0; i < n_ciphers; i++)
                buf_u16(out, ciphers[i]);
        buf_u8(out, 1);
        buf_u8(out, 0);
        if (exts) {
                buf_u16(out, (uint16_t) exts->len);
                buf_put(out, exts->data, exts->len);
        }
        buf_end(out, m, 3);
}

void hello_records(Buf *out, const uint8_t *msg, size_t len, size_t record_size) {
        for (size_t o = 0; o < len; o += record_size) {
                size_t n = len - o < record_size ? len - o : record_size;
                buf_u8(out, 22);
                buf_u16(out, 0x0301);
                buf_u16(out, (uint16_t) n);
                buf_put(out, msg + o, n);
        }
}

void hello_example(Buf *out, bool grease) {
        static const uint16_t ciphers[] = {
                0x1301,
                0x1302,
                0x1303,
                0xc02b,
                0xc02f,
                0xc02c,
                0xc030,
                0xcca9,
                0xcca8,
                0xc013,
                0xc014,
                0x009c,
                0x009d,
                0x002f,
                0x0035};
        static const uint16_t sigs[] = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
        static const uint16_t sigs_grease[] = {
                0x5a5a, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
        static const uint16_t groups[] = {0x2a2a, 0x001d, 0x0017, 0x0018};
        static const uint16_t versions[] = {0xeaea, 0x0304, 0x0303};
        static const char *const alpn[] = {"h2", "http/1.1"};
        static const size_t alpn_len[] = {2, 8};
        uint16_t c[16];
        Buf exts = {}, msg = {};
        size_t n = 0;

        if (grease)
                c[n++] = 0x0a0a;
        memcpy(c + n, ciphers, sizeof(ciphers));
        n += ELEMENTS(ciphers);

        if (grease)
                ext_raw(&exts, 0x1a1a, NULL, 0);
        ext_raw(&exts, 0x001b, "\x02\x00\x02", 3);
        ext_sni(&exts, "example.com");
        ext_raw(&exts,
                0x0033,
                "\x00\x24\x00\x1d\x00\x20"
                "abcdefghijklmnopqrstuvwxyz012345",
                38);
        ext_alpn(&exts, alpn, alpn_len, 2);
        ext_raw(&exts, 0x4469, "\x00\x03\x02h2", 6);
        ext_raw(&exts, 0x0017, NULL, 0);
        ext_u16_list(&exts, 0x002d, (const uint16_t[]){0x0100}, 1, true); /* psk_key_exchange_modes: 01 */
        ext_u16_list(&exts, 0x000d, grease ? sigs_grease : sigs, grease ? 9 : 8, false);
        ext_raw(&exts, 0x0005, "\x01\x00\x00\x00\x00", 5);
        ext_raw(&exts, 0x0023, NULL, 0);
        ext_raw(&exts, 0x0012, NULL, 0);
        ext_u16_list(&exts, 0x002b, grease ? versions : versions + 1, grease ? 3 : 2, true);
        ext_raw(&exts, 0xff01, "\x00", 1);
        ext_raw(&exts, 0x000b, "\x01\x00", 2);
        ext_u16_list(&exts, 0x000a, grease ? groups : groups + 1, grease ? 4 : 3, false);
        ext_raw(&exts, 0x0015, "\x00\x00\x00\x00", 4);
        if (grease)
                ext_raw(&exts, 0xfafa, "\x00", 1);

        hello_message(&msg, 0x0303, c, n, &exts);
        hello_records(out, msg.data, msg.len, 16384);
        buf_free(&exts);
        buf_free(&msg);
}

/* ---- corpus ---- */

int read_file_all(const char *path, uint8_t **ret, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        Buf b = {};
        uint8_t chunk[65536];
        size_t n;

        if (!f)
                return -errno;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                buf_put(&b, chunk, n);
        if (ferror(f)) {
                fclose(f);
                buf_free(&b);
                return -EIO;
        }
        fclose(f);
        buf_u8(&b, 0); /* NUL-terminate for text use; not counted */
        *ret = b.data;
        *ret_len = b.len - 1;
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int load_hex(const char *dir, const char *name, Vector *v) {
        char path[4096];
        uint8_t *text;
        size_t len;
        Buf b = {};
        int r;

        snprintf(path, sizeof(path), "%s/%s.hex", dir, name);
        r = read_file_all(path, &text, &len);
        if (r < 0) {
                fprintf(stderr, "Cannot read %s: %s\n", path, strerror(-r));
                return r;
        }
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                len--;
        for (size_t i = 0; i < len; i += 2) {
                int hi = hexval((char) text[i]), lo = i + 1 < len ? hexval((char) text[i + 1]) : -1;
                if (hi < 0 || lo < 0) {
                        fprintf(stderr, "%s: not a hex dump\n", path);
                        free(text);
                        buf_free(&b);
                        return -EINVAL;
                }
                buf_u8(&b, (uint8_t) (hi << 4 | lo));
        }
        free(text);
        v->hello = b.data;
        v->hello_len = b.len;
        return 0;
}

int corpus_load(const char *dir, Vector **ret) {
        char path[4096];
        uint8_t *text;
        size_t len, n = 0;
        Vector *v = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/vectors.tsv", dir);
        r = read_file_all(path, &text, &len);
        if (r < 0) {
                fprintf(stderr,
                        "The ClientHello corpus is missing: cannot read %s: %s (it is "
                        "tests/fixtures/clienthello in the source tree).\n",
                        path,
                        strerror(-r));
                return r;
        }

        char *save = NULL;
        bool header = true;
        for (char *line = strtok_r((char *) text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *fields[11] = {};
                size_t nf = 0;
                char *p = line;

                if (header) {
                        header = false;
                        continue;
                }
                while (nf < 11) {
                        fields[nf++] = p;
                        p = strchr(p, '\t');
                        if (!p)
                                break;
                        *p++ = '\0';
                }
                if (nf < 8) {
                        fprintf(stderr, "%s: short line\n", path);
                        free(text);
                        corpus_free(v, n);
                        return -EINVAL;
                }
                v = realloc(v, (n + 1) * sizeof(Vector));
                if (!v)
                        abort();
                v[n] = (Vector){
                        .name = strdup(fields[0]),
                        .ja4 = strdup(fields[1]),
                        .ja4_r = strdup(fields[2]),
                        .ja4_o = strdup(fields[3]),
                        .ja3 = strdup(fields[4]),
                        .ja3_full = strdup(fields[5]),
                        .ja4_ro = strdup(fields[7]),
                };
                n++;
                r = load_hex(dir, fields[0], &v[n - 1]);
                if (r < 0) {
                        free(text);
                        corpus_free(v, n);
                        return r;
                }
        }
        free(text);
        if (n == 0) {
                fprintf(stderr, "%s: no vectors\n", path);
                return -EINVAL;
        }
        *ret = v;
        return (int) n;
}

void corpus_free(Vector *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].ja4);
                free(v[i].ja4_r);
                free(v[i].ja4_o);
                free(v[i].ja3);
                free(v[i].ja3_full);
                free(v[i].ja4_ro);
                free(v[i].hello);
        }
        free(v);
}
