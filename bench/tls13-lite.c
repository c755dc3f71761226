/* SPDX-License-Identifier: MIT */
/* A minimal TLS 1.3 client for loadgen --lite: see tls13-lite.h. Follows RFC 8446 (key schedule §7.1,
 * record protection §5.2, Finished §4.4.4) for the one suite and group it offers. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bench-util.h"
#include "tls13-lite.h"

enum {
        HASH_LEN = 32,
        KEY_LEN = 16,
        IV_LEN = 12,
        TAG_LEN = 16,
        RECORD_MAX = 16384 + 256 + 5, /* TLSCiphertext: 2^14 + 256, and the header */
        TRANSCRIPT_MAX = 16384,
};

struct Tls13Lite {
        EVP_PKEY *key; /* X25519, the same for every connection */
        uint8_t pub[32];
        EVP_MD *sha256;
        EVP_CIPHER *gcm;
        uint8_t empty_hash[HASH_LEN]; /* SHA-256("") */
};

typedef struct Buf {
        uint8_t *p;
        size_t len, max;
} Buf;

typedef struct Traffic {
        uint8_t key[KEY_LEN], iv[IV_LEN];
        uint64_t seq;
} Traffic;

typedef struct Reader {
        int fd;
        uint8_t buf[2 * RECORD_MAX];
        size_t start, end;
} Reader;

static bool buf_put(Buf *b, const void *p, size_t n) {
        if (n > b->max - b->len)
                return false;
        memcpy(b->p + b->len, p, n);
        b->len += n;
        return true;
}

static bool buf_u8(Buf *b, unsigned v) {
        uint8_t x = (uint8_t) v;

        return buf_put(b, &x, 1);
}

static bool buf_u16(Buf *b, unsigned v) {
        uint8_t x[2] = {(uint8_t) (v >> 8), (uint8_t) v};

        return buf_put(b, x, 2);
}

static bool buf_u24(Buf *b, size_t v) {
        uint8_t x[3] = {(uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v};

        return buf_put(b, x, 3);
}

static unsigned get16(const uint8_t *p) {
        return (unsigned) p[0] << 8 | p[1];
}

static size_t get24(const uint8_t *p) {
        return (size_t) p[0] << 16 | (size_t) p[1] << 8 | p[2];
}

static bool sha256(const Tls13Lite *t, const void *p, size_t n, uint8_t out[HASH_LEN]) {
        return EVP_Digest(p, n, out, NULL, t->sha256, NULL) == 1;
}

static bool
hmac(const Tls13Lite *t, const uint8_t *key, size_t key_len, const void *p, size_t n, uint8_t out[HASH_LEN]) {
        unsigned len = 0;

        return HMAC(t->sha256, key, (int) key_len, p, n, out, &len) && len == HASH_LEN;
}

/* HKDF-Expand-Label(secret, label, context, len) for len <= 32: a single HMAC block. */
static bool expand_label(
        const Tls13Lite *t,
        const uint8_t secret[HASH_LEN],
        const char *label,
        const uint8_t *ctx,
        size_t ctx_len,
        uint8_t *out,
        size_t len) {
        uint8_t info[2 + 1 + 255 + 1 + 255 + 1], block[HASH_LEN];
        Buf b = {info, 0, sizeof info};
        size_t l = strlen(label);

        if (len > HASH_LEN || !buf_u16(&b, (unsigned) len) || !buf_u8(&b, (unsigned) (6 + l)) ||
            !buf_put(&b, "tls13 ", 6) || !buf_put(&b, label, l) || !buf_u8(&b, (unsigned) ctx_len) ||
            !buf_put(&b, ctx, ctx_len) || !buf_u8(&b, 1) || !hmac(t, secret, HASH_LEN, info, b.len, block))
                return false;
        memcpy(out, block, len);
        return true;
}

static bool traffic_keys(const Tls13Lite *t, const uint8_t secret[HASH_LEN], Traffic *ret) {
        ret->seq = 0;
        return expand_label(t, secret, "key", NULL, 0, ret->key, KEY_LEN) &&
                expand_label(t, secret, "iv", NULL, 0, ret->iv, IV_LEN);
}

static void nonce(const Traffic *k, uint8_t out[IV_LEN]) {
        memcpy(out, k->iv, IV_LEN);
        for (int i = 0; i < 8; i++)
                out[IV_LEN - 1 - i] ^= (uint8_t) (k->seq >> (8 * i));
}

/* Seals type || content into one TLSCiphertext record at out (header included); returns its length. */
static size_t
seal(const Tls13Lite *t, EVP_CIPHER_CTX *c, Traffic *k, unsigned type, const uint8_t *p, size_t n, uint8_t *out) {
        size_t inner = n + 1, len = inner + TAG_LEN;
        uint8_t iv[IV_LEN], last = (uint8_t) type;
        int m = 0;

        out[0] = 23;
        out[1] = 3;
        out[2] = 3;
        out[3] = (uint8_t) (len >> 8);
        out[4] = (uint8_t) len;
        nonce(k, iv);
        if (EVP_EncryptInit_ex2(c, t->gcm, k->key, iv, NULL) != 1 ||
            EVP_EncryptUpdate(c, NULL, &m, out, 5) != 1 || EVP_EncryptUpdate(c, out + 5, &m, p, (int) n) != 1 ||
            EVP_EncryptUpdate(c, out + 5 + n, &m, &last, 1) != 1 ||
            EVP_EncryptFinal_ex(c, out + 5 + inner, &m) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + 5 + inner) != 1)
                return 0;
        k->seq++;
        return 5 + len;
}

/* Opens a TLSCiphertext record in place; returns the inner content type and the content's length in
 * *ret_len, or -1. */
static int open_record(
        const Tls13Lite *t,
        EVP_CIPHER_CTX *c,
        Traffic *k,
        const uint8_t *hdr,
        uint8_t *body,
        size_t len,
        size_t *ret_len) {
        uint8_t iv[IV_LEN];
        int m = 0;

        if (len < TAG_LEN + 1)
                return -1;
        nonce(k, iv);
        if (EVP_DecryptInit_ex2(c, t->gcm, k->key, iv, NULL) != 1 ||
            EVP_DecryptUpdate(c, NULL, &m, hdr, 5) != 1 ||
            EVP_DecryptUpdate(c, body, &m, body, (int) (len - TAG_LEN)) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, body + len - TAG_LEN) != 1 ||
            EVP_DecryptFinal_ex(c, body + len - TAG_LEN, &m) != 1)
                return -1;
        k->seq++;
        len -= TAG_LEN;
        while (len > 0 && body[len - 1] == 0) /* padding */
                len--;
        if (len == 0)
                return -1;
        *ret_len = len - 1;
        return body[len - 1];
}

static int send_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* The next record: its header at *ret_hdr, its body at *ret_body (both in r->buf, valid until the
 * next call). 0 or a negative errno (-ECONNRESET for EOF). */
static int read_record(Reader *r, uint8_t **ret_hdr, uint8_t **ret_body, size_t *ret_len) {
        for (;;) {
                size_t have = r->end - r->start;

                if (have >= 5) {
                        size_t len = get16(r->buf + r->start + 3);

                        if (len > RECORD_MAX - 5)
                                return -EPROTO;
                        if (have >= 5 + len) {
                                *ret_hdr = r->buf + r->start;
                                *ret_body = r->buf + r->start + 5;
                                *ret_len = len;
                                r->start += 5 + len;
                                return 0;
                        }
                }
                if (r->start > 0 && r->end + RECORD_MAX > sizeof r->buf) {
                        memmove(r->buf, r->buf + r->start, have);
                        r->start = 0;
                        r->end = have;
                }
                ssize_t k = recv(r->fd, r->buf + r->end, sizeof r->buf - r->end, 0);
                if (k == 0)
                        return -ECONNRESET;
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                r->end += (size_t) k;
        }
}

static bool client_hello(const Tls13Lite *t, Buf *out) {
        static const char host[] = "localhost";
        uint8_t random[32];
        size_t msg_len_at, ext_len_at;

        if (RAND_bytes(random, sizeof random) != 1)
                return false;
        /* record header, handshake header, then the lengths are filled in at the end */
        if (!buf_u8(out, 22) || !buf_u16(out, 0x0301) || !buf_u16(out, 0) || !buf_u8(out, 1))
                return false;
        msg_len_at = out->len;
        if (!buf_u24(out, 0) || !buf_u16(out, 0x0303) || !buf_put(out, random, 32) || !buf_u8(out, 0) ||
            !buf_u16(out, 2) || !buf_u16(out, 0x1301) || !buf_u8(out, 1) || !buf_u8(out, 0))
                return false;
        ext_len_at = out->len;
        if (!buf_u16(out, 0) ||
            /* server_name */
            !buf_u16(out, 0x0000) || !buf_u16(out, 2 + 1 + 2 + sizeof host - 1) ||
            !buf_u16(out, 1 + 2 + sizeof host - 1) || !buf_u8(out, 0) || !buf_u16(out, sizeof host - 1) ||
            !buf_put(out, host, sizeof host - 1) ||
            /* supported_groups: x25519 */
            !buf_u16(out, 0x000a) || !buf_u16(out, 4) || !buf_u16(out, 2) || !buf_u16(out, 0x001d) ||
            /* signature_algorithms: ecdsa_secp256r1_sha256 */
            !buf_u16(out, 0x000d) || !buf_u16(out, 4) || !buf_u16(out, 2) || !buf_u16(out, 0x0403) ||
            /* supported_versions: TLS 1.3 */
            !buf_u16(out, 0x002b) || !buf_u16(out, 3) || !buf_u8(out, 2) || !buf_u16(out, 0x0304) ||
            /* key_share: x25519 */
            !buf_u16(out, 0x0033) || !buf_u16(out, 2 + 2 + 2 + 32) || !buf_u16(out, 2 + 2 + 32) ||
            !buf_u16(out, 0x001d) || !buf_u16(out, 32) || !buf_put(out, t->pub, 32))
                return false;
        out->p[3] = (uint8_t) ((out->len - 5) >> 8);
        out->p[4] = (uint8_t) (out->len - 5);
        out->p[msg_len_at] = (uint8_t) ((out->len - msg_len_at - 3) >> 16);
        out->p[msg_len_at + 1] = (uint8_t) ((out->len - msg_len_at - 3) >> 8);
        out->p[msg_len_at + 2] = (uint8_t) (out->len - msg_len_at - 3);
        out->p[ext_len_at] = (uint8_t) ((out->len - ext_len_at - 2) >> 8);
        out->p[ext_len_at + 1] = (uint8_t) (out->len - ext_len_at - 2);
        return true;
}

/* The server's X25519 share from a ServerHello (the whole handshake message). */
static int server_hello(const uint8_t *m, size_t n, const uint8_t **ret_share) {
        static const uint8_t hrr[32] = {0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
                                        0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
                                        0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};
        bool tls13 = false;
        size_t i, sid, ext_end;

        *ret_share = NULL;
        if (n < 4 + 2 + 32 + 1 || m[0] != 2 || get24(m + 1) != n - 4 || memcmp(m + 6, hrr, 32) == 0)
                return -EPROTO;
        sid = m[38];
        i = 39 + sid;
        if (i + 2 + 1 + 2 > n || get16(m + i) != 0x1301 || m[i + 2] != 0)
                return -EPROTO;
        i += 3;
        ext_end = i + 2 + get16(m + i);
        if (ext_end > n)
                return -EPROTO;
        for (i += 2; i + 4 <= ext_end;) {
                unsigned type = get16(m + i);
                size_t len = get16(m + i + 2);

                if (i + 4 + len > ext_end)
                        return -EPROTO;
                if (type == 0x002b && len == 2 && get16(m + i + 4) == 0x0304)
                        tls13 = true;
                else if (type == 0x0033 && len == 2 + 2 + 32 && get16(m + i + 4) == 0x001d && get16(m + i + 6) == 32)
                        *ret_share = m + i + 8;
                i += 4 + len;
        }
        return tls13 && *ret_share ? 0 : -EPROTO;
}

static int x25519(const Tls13Lite *t, const uint8_t peer[32], uint8_t out[32]) {
        EVP_PKEY *pk = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer, 32);
        EVP_PKEY_CTX *c = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, t->key, NULL) : NULL;
        size_t len = 32;
        int r = -EPROTO;

        if (c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, pk) == 1 &&
            EVP_PKEY_derive(c, out, &len) == 1 && len == 32)
                r = 0;
        EVP_PKEY_CTX_free(c);
        EVP_PKEY_free(pk);
        return r;
}

static int handshake(const Tls13Lite *t, int fd, EVP_CIPHER_CTX *c, Reader *rd, int64_t *ret_done_ns) {
        static const uint8_t zeros[HASH_LEN];
        uint8_t transcript_buf[TRANSCRIPT_MAX], hs_buf[TRANSCRIPT_MAX], out_buf[512];
        uint8_t shared[32], secret[HASH_LEN], derived[HASH_LEN], hs_secret[HASH_LEN], th[HASH_LEN];
        uint8_t c_hs[HASH_LEN], s_hs[HASH_LEN], key[HASH_LEN], mac[HASH_LEN], fin[4 + HASH_LEN];
        Buf transcript = {transcript_buf, 0, sizeof transcript_buf}, hs = {hs_buf, 0, sizeof hs_buf};
        Buf out = {out_buf, 0, sizeof out_buf};
        Traffic server, client;
        const uint8_t *share;
        uint8_t *hdr, *body;
        size_t len, n;
        bool finished = false;
        int r, type;

        if (!client_hello(t, &out) || !buf_put(&transcript, out.p + 5, out.len - 5))
                return -ENOBUFS;
        r = send_all(fd, out.p, out.len);
        if (r < 0)
                return r;

        /* ServerHello, in the clear */
        r = read_record(rd, &hdr, &body, &len);
        if (r < 0)
                return r;
        if (hdr[0] != 22)
                return -EPROTO; /* an alert, most likely */
        r = server_hello(body, len, &share);
        if (r < 0 || !buf_put(&transcript, body, len))
                return -EPROTO;
        r = x25519(t, share, shared);
        if (r < 0)
                return r;

        /* handshake secrets */
        if (!hmac(t, zeros, HASH_LEN, zeros, HASH_LEN, secret) ||
            !expand_label(t, secret, "derived", t->empty_hash, HASH_LEN, derived, HASH_LEN) ||
            !hmac(t, derived, HASH_LEN, shared, sizeof shared, hs_secret) ||
            !sha256(t, transcript.p, transcript.len, th) ||
            !expand_label(t, hs_secret, "c hs traffic", th, HASH_LEN, c_hs, HASH_LEN) ||
            !expand_label(t, hs_secret, "s hs traffic", th, HASH_LEN, s_hs, HASH_LEN) ||
            !traffic_keys(t, s_hs, &server) || !traffic_keys(t, c_hs, &client))
                return -EPROTO;

        /* EncryptedExtensions, Certificate, CertificateVerify, Finished */
        while (!finished) {
                r = read_record(rd, &hdr, &body, &len);
                if (r < 0)
                        return r;
                if (hdr[0] == 20)
                        continue; /* middlebox compatibility */
                if (hdr[0] != 23)
                        return -EPROTO;
                type = open_record(t, c, &server, hdr, body, len, &n);
                if (type != 22 || !buf_put(&hs, body, n))
                        return -EPROTO;
                while (hs.len >= 4 && hs.len >= 4 + get24(hs.p + 1)) {
                        size_t m = 4 + get24(hs.p + 1);

                        if (hs.p[0] == 20) {
                                if (m != 4 + HASH_LEN || !sha256(t, transcript.p, transcript.len, th) ||
                                    !expand_label(t, s_hs, "finished", NULL, 0, key, HASH_LEN) ||
                                    !hmac(t, key, HASH_LEN, th, HASH_LEN, mac) ||
                                    CRYPTO_memcmp(mac, hs.p + 4, HASH_LEN) != 0)
                                        return -EPROTO;
                                finished = true;
                        }
                        if (!buf_put(&transcript, hs.p, m))
                                return -ENOBUFS;
                        memmove(hs.p, hs.p + m, hs.len - m);
                        hs.len -= m;
                        if (finished)
                                break;
                }
        }

        /* our Finished */
        if (!sha256(t, transcript.p, transcript.len, th) ||
            !expand_label(t, c_hs, "finished", NULL, 0, key, HASH_LEN))
                return -EPROTO;
        fin[0] = 20;
        fin[1] = fin[2] = 0;
        fin[3] = HASH_LEN;
        if (!hmac(t, key, HASH_LEN, th, HASH_LEN, fin + 4))
                return -EPROTO;
        n = seal(t, c, &client, 22, fin, sizeof fin, out.p);
        if (n == 0)
                return -EPROTO;
        r = send_all(fd, out.p, n);
        if (r < 0)
                return r;
        *ret_done_ns = clock_ns(CLOCK_MONOTONIC);

        /* close_notify under the application traffic key */
        if (!expand_label(t, hs_secret, "derived", t->empty_hash, HASH_LEN, derived, HASH_LEN) ||
            !hmac(t, derived, HASH_LEN, zeros, HASH_LEN, secret) ||
            !expand_label(t, secret, "c ap traffic", th, HASH_LEN, key, HASH_LEN) ||
            !traffic_keys(t, key, &client))
                return -EPROTO;
        n = seal(t, c, &client, 21, (const uint8_t[]){1, 0}, 2, out.p);
        if (n == 0)
                return -EPROTO;
        return send_all(fd, out.p, n);
}

int tls13_lite_handshake(const Tls13Lite *t, int fd, int64_t *ret_handshake_done_ns) {
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        Reader *rd = malloc(sizeof *rd);
        uint8_t *hdr, *body;
        size_t len;
        int r = -ENOMEM;

        if (c && rd) {
                rd->fd = fd;
                rd->start = rd->end = 0;
                r = handshake(t, fd, c, rd, ret_handshake_done_ns);
                /* whatever the server sends after our Finished (tickets, its close_notify) until it closes */
                while (r >= 0 && read_record(rd, &hdr, &body, &len) >= 0)
                        ;
        }
        free(rd);
        EVP_CIPHER_CTX_free(c);
        return r;
}

Tls13Lite *tls13_lite_new(void) {
        Tls13Lite *t = calloc(1, sizeof *t);
        size_t len = sizeof t->pub;

        if (!t)
                return NULL;
        t->key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        t->gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
        if (!t->key || !t->sha256 || !t->gcm || EVP_PKEY_get_raw_public_key(t->key, t->pub, &len) != 1 ||
            len != sizeof t->pub || !sha256(t, "", 0, t->empty_hash)) {
                tls13_lite_free(t);
                return NULL;
        }
        return t;
}

void tls13_lite_free(Tls13Lite *t) {
        if (!t)
                return;
        EVP_PKEY_free(t->key);
        EVP_MD_free(t->sha256);
        EVP_CIPHER_free(t->gcm);
        free(t);
}
