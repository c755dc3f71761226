/* SPDX-License-Identifier: MIT */
#pragma once

/* Test helpers: a byte-buffer builder for hand-made ClientHellos and TLS records, and a reader for the
 * external ClientHello corpus (tests/fixtures/clienthello: NAME.hex files and vectors.tsv, see its README). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Buf {
        uint8_t *data;
        size_t len, cap;
} Buf;

void buf_put(Buf *b, const void *p, size_t n);
void buf_u8(Buf *b, uint8_t v);
void buf_u16(Buf *b, uint16_t v);
void buf_u24(Buf *b, uint32_t v);
/* Reserve a length prefix of size bytes (1, 2 or 3); buf_end() fills it with the bytes written since. */
size_t buf_begin(Buf *b, unsigned size);
void buf_end(Buf *b, size_t mark, unsigned size);
void buf_free(Buf *b);

/* Extension builders: append one extension (type, length, data) to exts. */
void ext_raw(Buf *exts, uint16_t type, const void *data, size_t n);
/* A list of 16-bit values with a 2-byte (or, with len8, 1-byte) length prefix. */
void ext_u16_list(Buf *exts, uint16_t type, const uint16_t *v, size_t n, bool len8);
void ext_sni(Buf *exts, const char *name);
/* ALPN with protocols given as (pointer, length) pairs. */
void ext_alpn(Buf *exts, const char *const *protos, const size_t *lens, size_t n);

/* A ClientHello handshake message (header included) with the given fields. exts == NULL: no
 * extensions block at all. */
void hello_message(Buf *out, uint16_t version, const uint16_t *ciphers, size_t n_ciphers, const Buf *exts);

/* Wraps msg into handshake records of at most record_size payload bytes each. */
void hello_records(Buf *out, const uint8_t *msg, size_t len, size_t record_size);

/* A typical modern hello (the example of FoxIO's JA4.md: 15 ciphers, 16 extensions, h2), as records. */
void hello_example(Buf *out, bool grease);

/* Corpus access. */
typedef struct Vector {
        char *name, *ja4, *ja4_r, *ja4_o, *ja3, *ja3_full, *ja4_ro;
        uint8_t *hello; /* the records, decoded from NAME.hex */
        size_t hello_len;
} Vector;

/* Loads all vectors of dir/vectors.tsv with their .hex files. Returns the number, or -errno (with a
 * message on stderr) when the directory or a file is missing or broken. */
int corpus_load(const char *dir, Vector **ret);
void corpus_free(Vector *v, size_t n);

/* Reads a whole file. */
int read_file_all(const char *path, uint8_t **ret, size_t *ret_len);
