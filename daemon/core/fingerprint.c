/* SPDX-License-Identifier: MIT */
#include <psa/crypto.h>

#include "decimal.h"
#include "fingerprint.h"

static const char hexdigits[] = "0123456789abcdef";
static const char zero_hash[] = "000000000000";

/* The hello's lists, GREASE removed, in the forms the fingerprints need. */
typedef struct Lists {
        uint16_t *buf;
        uint16_t *ciphers, *sorted_ciphers;
        size_t n_ciphers;
        uint16_t *exts; /* original order, duplicates kept */
        size_t n_exts;
        uint16_t *sorted_exts; /* without SNI and ALPN */
        size_t n_sorted_exts;
        uint16_t *stable_exts; /* sorted, without SNI, ALPN, padding, session_ticket, psk, early_data */
        size_t n_stable_exts;
        uint16_t *sigs;
        size_t n_sigs;
        uint16_t *groups;
        size_t n_groups;
} Lists;

static int u16_compare(const void *a, const void *b) {
        uint16_t x = *(const uint16_t *) a, y = *(const uint16_t *) b;
        return (x > y) - (x < y);
}

static size_t copy_without_grease(const U16List *l, uint16_t *out) {
        size_t n = 0;

        for (size_t i = 0; i < l->n; i++) {
                uint16_t v = u16_list_get(l, i);
                if (!tls_is_grease(v))
                        out[n++] = v;
        }
        return n;
}

static void sort_u16(uint16_t *v, size_t n) {
        if (n > 1)
                qsort(v, n, sizeof(uint16_t), u16_compare);
}

static int lists_build(const ClientHello *ch, Lists *ret) {
        size_t total = 2 * ch->ciphers.n + 3 * ch->n_extensions + ch->signature_algorithms.n +
                ch->supported_groups.n;
        size_t off = 0;
        uint16_t *buf;

        buf = malloc(MAX(total, (size_t) 1) * sizeof(uint16_t));
        if (!buf)
                return -ENOMEM;

        Lists l = {.buf = buf};
        l.ciphers = buf + off;
        l.n_ciphers = copy_without_grease(&ch->ciphers, l.ciphers);
        off += ch->ciphers.n;
        l.sorted_ciphers = buf + off;
        memcpy(l.sorted_ciphers, l.ciphers, l.n_ciphers * sizeof(uint16_t));
        sort_u16(l.sorted_ciphers, l.n_ciphers);
        off += ch->ciphers.n;

        l.exts = buf + off;
        off += ch->n_extensions;
        l.sorted_exts = buf + off;
        off += ch->n_extensions;
        l.stable_exts = buf + off;
        off += ch->n_extensions;

        uint16_t type;
        ByteSpan data;
        for (size_t o = 0; clienthello_extension_next(ch, &o, &type, &data);) {
                if (tls_is_grease(type))
                        continue;
                l.exts[l.n_exts++] = type;
                if (type == TLS_EXT_SERVER_NAME || type == TLS_EXT_ALPN)
                        continue;
                l.sorted_exts[l.n_sorted_exts++] = type;
                if (type == TLS_EXT_PADDING || type == TLS_EXT_SESSION_TICKET ||
                    type == TLS_EXT_PRE_SHARED_KEY || type == TLS_EXT_EARLY_DATA)
                        continue;
                l.stable_exts[l.n_stable_exts++] = type;
        }
        sort_u16(l.sorted_exts, l.n_sorted_exts);
        sort_u16(l.stable_exts, l.n_stable_exts);

        l.sigs = buf + off;
        l.n_sigs = copy_without_grease(&ch->signature_algorithms, l.sigs);
        off += ch->signature_algorithms.n;
        l.groups = buf + off;
        l.n_groups = copy_without_grease(&ch->supported_groups, l.groups);

        *ret = l;
        return 0;
}

static char *put_hex_u16(char *p, uint16_t v) {
        p[0] = hexdigits[v >> 12];
        p[1] = hexdigits[(v >> 8) & 0xf];
        p[2] = hexdigits[(v >> 4) & 0xf];
        p[3] = hexdigits[v & 0xf];
        return p + 4;
}

/* "xxxx,yyyy": at most 5 * n bytes. */
static char *put_hex_list(char *p, const uint16_t *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ',';
                p = put_hex_u16(p, v[i]);
        }
        return p;
}

/* JA4_c's string: the extension list, then '_' and the signature algorithms if there are any. At most
 * 5 * (n + l->n_sigs) + 1 bytes. */
static char *put_ja4_c(char *p, const uint16_t *exts, size_t n, const Lists *l) {
        p = put_hex_list(p, exts, n);
        if (l->n_sigs > 0) {
                *p++ = '_';
                p = put_hex_list(p, l->sigs, l->n_sigs);
        }
        return p;
}

/* "1-2-3": at most 6 * n bytes. */
static char *put_dec_list(char *p, const uint16_t *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = '-';
                p = decimal_put_uint64(p, v[i]);
        }
        return p;
}

static int hash_hex(psa_algorithm_t alg, const char *s, size_t n, size_t digits, char *ret) {
        uint8_t h[PSA_HASH_MAX_SIZE];
        size_t len;
        psa_status_t r;

        r = psa_hash_compute(alg, (const uint8_t *) s, n, h, sizeof(h), &len);
        if (r != PSA_SUCCESS)
                return -EIO;
        if (digits > 2 * len)
                return -EIO;
        for (size_t i = 0; i < digits; i++)
                ret[i] = hexdigits[(h[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 0xf];
        ret[digits] = '\0';
        return 0;
}

/* The 12-digit truncated SHA-256 of a JA4 part; an empty list gives 000000000000. */
static int ja4_hash12(const char *s, size_t n, size_t n_items, char ret[static 13]) {
        if (n_items == 0) {
                memcpy(ret, zero_hash, sizeof(zero_hash));
                return 0;
        }
        return hash_hex(PSA_ALG_SHA_256, s, n, 12, ret);
}

static const char *ja4_version(uint16_t v) {
        switch (v) {
        case 0x0304: return "13";
        case 0x0303: return "12";
        case 0x0302: return "11";
        case 0x0301: return "10";
        case 0x0300: return "s3";
        case 0x0002: return "s2";
        case 0xfeff: return "d1";
        case 0xfefd: return "d2";
        case 0xfefc: return "d3";
        default: return "00";
        }
}

static uint16_t hello_version(const ClientHello *ch) {
        uint16_t best = 0;

        if (!ch->has_supported_versions)
                return ch->legacy_version;
        /* The highest value; a list of GREASE only gives 0, "00". */
        for (size_t i = 0; i < ch->supported_versions.n; i++) {
                uint16_t v = u16_list_get(&ch->supported_versions, i);
                if (!tls_is_grease(v))
                        best = MAX(best, v);
        }
        return best;
}

static bool ascii_alnum(uint8_t c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void ja4_alpn(const ClientHello *ch, char ret[static 2]) {
        size_t o = 0;
        ByteSpan p;

        if (!clienthello_alpn_next(ch, &o, &p) || p.len == 0) {
                ret[0] = ret[1] = '0';
                return;
        }

        uint8_t first = p.data[0], last = p.data[p.len - 1];
        if (ascii_alnum(first) && ascii_alnum(last)) {
                ret[0] = (char) first;
                ret[1] = (char) last;
        } else {
                ret[0] = hexdigits[first >> 4];
                ret[1] = hexdigits[last & 0xf];
        }
}

static unsigned count99(size_t n) {
        return (unsigned) MIN(n, (size_t) 99);
}

/* JA4_a, 10 characters; ja4_stable's first part is its first 6 and its last 2. */
static void ja4_a(const ClientHello *ch, const Lists *l, char ret[static 11]) {
        const char *v = ja4_version(hello_version(ch));
        unsigned nc = count99(l->n_ciphers), ne = count99(l->n_exts);

        ret[0] = 't';
        ret[1] = v[0];
        ret[2] = v[1];
        ret[3] = ch->has_sni ? 'd' : 'i';
        ret[4] = (char) ('0' + nc / 10);
        ret[5] = (char) ('0' + nc % 10);
        ret[6] = (char) ('0' + ne / 10);
        ret[7] = (char) ('0' + ne % 10);
        ja4_alpn(ch, ret + 8);
        ret[10] = '\0';
}

/* Builds a raw JA4 (a_b_c) and its hashed form. */
static int ja4_build(
        const char a[static 11],
        const uint16_t *ciphers,
        const uint16_t *exts,
        size_t n_exts,
        const Lists *l,
        char **ret_raw,
        char ret_hashed[static JA4_SIZE]) {
        char *raw, *p, *b, *c;
        int r;

        raw = malloc(10 + 1 + 5 * l->n_ciphers + 1 + 5 * (n_exts + l->n_sigs) + 1 + 1);
        if (!raw)
                return -ENOMEM;

        p = mempcpy(raw, a, 10);
        *p++ = '_';
        b = p;
        p = put_hex_list(p, ciphers, l->n_ciphers);
        *p++ = '_';
        c = p;
        p = put_ja4_c(p, exts, n_exts, l);
        *p = '\0';

        memcpy(ret_hashed, a, 10);
        ret_hashed[10] = '_';
        r = ja4_hash12(b, (size_t) (c - 1 - b), l->n_ciphers, ret_hashed + 11);
        if (r >= 0) {
                ret_hashed[23] = '_';
                r = ja4_hash12(c, (size_t) (p - c), n_exts, ret_hashed + 24);
        }
        if (r < 0) {
                free(raw);
                return r;
        }

        *ret_raw = raw;
        return 0;
}

static int ja4_stable_build(
        const char a[static 11], const char *hashed, const Lists *l, char ret[static JA4_STABLE_SIZE]) {
        _cleanup_free_ char *c = NULL;
        char *end;

        c = malloc(5 * (l->n_stable_exts + l->n_sigs) + 1);
        if (!c)
                return -ENOMEM;
        end = put_ja4_c(c, l->stable_exts, l->n_stable_exts, l);

        memcpy(ret, a, 6);
        memcpy(ret + 6, a + 8, 2); /* the ALPN characters */
        ret[8] = '_';
        memcpy(ret + 9, hashed + 11, 12); /* JA4_b */
        ret[21] = '_';
        return ja4_hash12(c, (size_t) (end - c), l->n_stable_exts, ret + 22);
}

static int ja3_build(const ClientHello *ch, const Lists *l, Fingerprints *f) {
        size_t n_pf = ch->ec_point_formats.len;
        char *s, *p;
        int r;

        s = malloc(5 + 4 + 6 * (l->n_ciphers + l->n_exts + l->n_groups + n_pf) + 1);
        if (!s)
                return -ENOMEM;

        p = decimal_put_uint64(s, ch->legacy_version);
        *p++ = ',';
        p = put_dec_list(p, l->ciphers, l->n_ciphers);
        *p++ = ',';
        p = put_dec_list(p, l->exts, l->n_exts);
        *p++ = ',';
        p = put_dec_list(p, l->groups, l->n_groups);
        *p++ = ',';
        for (size_t i = 0; i < n_pf; i++) {
                if (i > 0)
                        *p++ = '-';
                p = decimal_put_uint64(p, ch->ec_point_formats.data[i]);
        }
        *p = '\0';

        r = hash_hex(PSA_ALG_MD5, s, (size_t) (p - s), 32, f->ja3);
        if (r < 0) {
                free(s);
                return r;
        }
        f->ja3_full = s;
        return 0;
}

void fingerprints_done(Fingerprints *f) {
        free(f->ja3_full);
        free(f->ja4_r);
        free(f->ja4_ro);
        *f = (Fingerprints){};
}

int fingerprint_compute(const ClientHello *ch, Fingerprints *ret) {
        _cleanup_free_ uint16_t *buf = NULL;
        Fingerprints f = {};
        Lists l;
        char a[11];
        int r;

        r = lists_build(ch, &l);
        if (r < 0)
                return r;
        buf = l.buf;

        ja4_a(ch, &l, a);

        r = ja3_build(ch, &l, &f);
        if (r >= 0)
                r = ja4_build(a, l.sorted_ciphers, l.sorted_exts, l.n_sorted_exts, &l, &f.ja4_r, f.ja4);
        if (r >= 0)
                r = ja4_build(a, l.ciphers, l.exts, l.n_exts, &l, &f.ja4_ro, f.ja4_o);
        if (r >= 0)
                r = ja4_stable_build(a, f.ja4, &l, f.ja4_stable);
        if (r < 0) {
                fingerprints_done(&f);
                return r;
        }

        *ret = f;
        return 0;
}

static const char *version_name(uint16_t v) {
        switch (v) {
        case 0x0304: return "TLSv1.3";
        case 0x0303: return "TLSv1.2";
        case 0x0302: return "TLSv1.1";
        case 0x0301: return "TLSv1.0";
        case 0x0300: return "SSLv3.0";
        default: return NULL;
        }
}

static char *put_version(char *p, uint16_t v) {
        const char *name = version_name(v);

        if (name)
                return stpcpy(p, name);
        p = stpcpy(p, "0x");
        return put_hex_u16(p, v);
}

char *fingerprint_offered_versions(const ClientHello *ch) {
        size_t n = ch->has_supported_versions ? ch->supported_versions.n : 1;
        char *s, *p;

        s = malloc(8 * n + 1);
        if (!s)
                return NULL;

        p = s;
        if (!ch->has_supported_versions)
                p = put_version(p, ch->legacy_version);
        else
                for (size_t i = 0; i < ch->supported_versions.n; i++) {
                        uint16_t v = u16_list_get(&ch->supported_versions, i);

                        if (tls_is_grease(v))
                                continue;
                        if (p != s)
                                *p++ = ',';
                        p = put_version(p, v);
                }
        *p = '\0';
        return s;
}

static int fill_alpn_offered(const ClientHello *ch, RawString *ret) {
        _cleanup_free_ char *s = NULL;
        size_t o = 0, n = 0;
        ByteSpan proto;

        if (!ch->has_alpn) {
                raw_string_clear(ret);
                return 0;
        }

        /* Each protocol has a 1-byte length prefix, so the joined form is never longer than the list. */
        s = malloc(ch->alpn_list.len + 1);
        if (!s)
                return -ENOMEM;
        while (clienthello_alpn_next(ch, &o, &proto)) {
                if (n > 0)
                        s[n++] = ',';
                memcpy(s + n, proto.data, proto.len);
                n += proto.len;
        }
        return raw_string_set(ret, s, n);
}

static int replace_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

int fingerprint_fill_attempt(const ClientHello *ch, Attempt *a) {
        _cleanup_(fingerprints_done) Fingerprints f = {};
        const void *sni = ch->has_sni_name ? ch->sni.data : NULL;
        char *versions;
        int r;

        r = fingerprint_compute(ch, &f);
        if (r < 0)
                return r;

        versions = fingerprint_offered_versions(ch);
        if (!versions)
                return -ENOMEM;
        free(a->offered_versions);
        a->offered_versions = versions;

        free(a->ja3_full);
        a->ja3_full = TAKE_PTR(f.ja3_full);
        free(a->ja4_r);
        a->ja4_r = TAKE_PTR(f.ja4_r);
        free(a->ja4_ro);
        a->ja4_ro = TAKE_PTR(f.ja4_ro);

        r = replace_string(&a->ja3, f.ja3);
        if (r >= 0)
                r = replace_string(&a->ja4, f.ja4);
        if (r >= 0)
                r = replace_string(&a->ja4_o, f.ja4_o);
        if (r >= 0)
                r = replace_string(&a->ja4_stable, f.ja4_stable);
        if (r >= 0)
                r = raw_string_set(&a->sni, sni, ch->sni.len);
        if (r >= 0)
                r = fill_alpn_offered(ch, &a->alpn_offered);
        return r;
}
