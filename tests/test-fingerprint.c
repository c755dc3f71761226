/* SPDX-License-Identifier: MIT */
/* JA3/JA4 fingerprints: the external corpus (published values) fed whole, in 1-byte chunks and
 * re-split into 1-byte records, and hand-built hellos for every rule of the specifications.
 * Usage: test-fingerprint CORPUS-DIR */

#include <psa/crypto.h>

#include "fingerprint.h"
#include "hello-util.h"
#include "tap.h"

typedef struct Result {
        ClientHelloCapture capture;
        ClientHello ch;
        Fingerprints fp;
        int r;
} Result;

static void result_done(Result *res) {
        fingerprints_done(&res->fp);
        clienthello_capture_done(&res->capture);
}

/* Capture (in chunks of chunk bytes), parse, fingerprint. */
static int run(const uint8_t *data, size_t len, size_t chunk, Result *res) {
        CaptureState st = CAPTURE_NEED_MORE;

        *res = (Result){};
        clienthello_capture_init(&res->capture);
        for (size_t o = 0; o < len; o += chunk)
                st = clienthello_capture_feed(&res->capture, data + o, MIN(chunk, len - o));
        if (st != CAPTURE_COMPLETE)
                return (res->r = -ENODATA);
        res->r = clienthello_parse(res->capture.msg, res->capture.msg_len, &res->ch);
        if (res->r < 0)
                return res->r;
        return (res->r = fingerprint_compute(&res->ch, &res->fp));
}

static bool check_vector(const Vector *v, const uint8_t *data, size_t len, size_t chunk, const char *mode) {
        Result res;
        bool good;

        if (run(data, len, chunk, &res) < 0) {
                ok(false,
                   "%s (%s): capture/parse/fingerprint failed: %d %s",
                   v->name,
                   mode,
                   res.r,
                   strna(res.ch.reason));
                result_done(&res);
                return false;
        }
        good = streq(res.fp.ja3, v->ja3) && streq(res.fp.ja3_full, v->ja3_full) &&
                streq(res.fp.ja4, v->ja4) && streq(res.fp.ja4_r, v->ja4_r) &&
                streq(res.fp.ja4_o, v->ja4_o) && streq(res.fp.ja4_ro, v->ja4_ro);
        ok(good, "%s (%s): ja3, ja3_full, ja4, ja4_r, ja4_o, ja4_ro as published", v->name, mode);
        if (!good) {
                diag("ja3      %s | %s", res.fp.ja3, v->ja3);
                diag("ja3_full %s | %s", res.fp.ja3_full, v->ja3_full);
                diag("ja4      %s | %s", res.fp.ja4, v->ja4);
                diag("ja4_r    %s | %s", res.fp.ja4_r, v->ja4_r);
                diag("ja4_o    %s | %s", res.fp.ja4_o, v->ja4_o);
                diag("ja4_ro   %s | %s", res.fp.ja4_ro, v->ja4_ro);
        }
        result_done(&res);
        return good;
}

static void test_corpus(const char *dir) {
        Vector *v;
        int n;

        n = corpus_load(dir, &v);
        if (!ok(n > 0, "corpus loaded from %s", dir)) {
                diag("The corpus directory is required: %s", dir);
                return;
        }
        ok(n == 96, "corpus has 96 vectors (has %d)", n);

        for (int i = 0; i < n; i++) {
                Result whole;
                Buf split = {};

                check_vector(&v[i], v[i].hello, v[i].hello_len, v[i].hello_len, "one piece");
                check_vector(&v[i], v[i].hello, v[i].hello_len, 1, "1-byte chunks");

                /* The same message re-split into 1-byte records. */
                (void) run(v[i].hello, v[i].hello_len, v[i].hello_len, &whole);
                if (whole.capture.state == CAPTURE_COMPLETE) {
                        hello_records(&split, whole.capture.msg, whole.capture.msg_len, 1);
                        check_vector(&v[i], split.data, split.len, 7, "1-byte records");
                } else
                        ok(false, "%s: capture failed", v[i].name);
                result_done(&whole);
                buf_free(&split);
        }
        corpus_free(v, (size_t) n);
}

/* ---- hand-built hellos ---- */

static const uint16_t some_ciphers[] = {0x1301, 0xc02b, 0x002f};

static bool fp_of(const Buf *exts, uint16_t version, const uint16_t *ciphers, size_t n, Result *res) {
        Buf msg = {}, rec = {};

        hello_message(&msg, version, ciphers, n, exts);
        hello_records(&rec, msg.data, msg.len, 16384);
        run(rec.data, rec.len, rec.len, res);
        buf_free(&msg);
        buf_free(&rec);
        return ok(res->r >= 0, "hand-built hello fingerprinted (%d %s)", res->r, strna(res->ch.reason));
}

static void test_example_and_grease(void) {
        Result a, b;
        Buf ra = {}, rb = {};

        hello_example(&ra, false);
        hello_example(&rb, true);
        run(ra.data, ra.len, ra.len, &a);
        run(rb.data, rb.len, rb.len, &b);

        /* The worked example of JA4.md. */
        is_str(a.fp.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1", "JA4.md example: ja4");
        is_str(a.fp.ja4_o, "t13d1516h2_acb858a92679_18f69afefd3d", "JA4.md example: ja4_o");
        is_str(a.fp.ja4_r,
               "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,"
               "000a,"
               "000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,"
               "0806,"
               "0601",
               "JA4.md example: ja4_r");
        is_str(a.fp.ja4_ro,
               "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_001b,"
               "0000,"
               "0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015_0403,0804,0401,0503,"
               "0805,"
               "0501,0806,0601",
               "JA4.md example: ja4_ro");
        is_str(a.fp.ja3_full,
               "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,27-0-51-16-"
               "17513-"
               "23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0",
               "example: ja3_full");
        is_str(a.fp.ja3, "c000e2caf3a25423f9de6c8a4b12a975", "example: ja3 (md5 of ja3_full)");

        /* GREASE in ciphers, extensions, groups, supported_versions, signature algorithms, key shares:
         * removed everywhere. */
        ok(b.ch.ciphers.n == 16 && b.ch.signature_algorithms.n == 9 && b.ch.supported_groups.n == 4,
           "GREASE hello really carries GREASE");
        is_str(b.fp.ja4, a.fp.ja4, "GREASE removed: ja4");
        is_str(b.fp.ja4_r, a.fp.ja4_r, "GREASE removed: ja4_r (incl. signature algorithms)");
        is_str(b.fp.ja4_o, a.fp.ja4_o, "GREASE removed: ja4_o");
        is_str(b.fp.ja4_ro, a.fp.ja4_ro, "GREASE removed: ja4_ro");
        is_str(b.fp.ja3_full, a.fp.ja3_full, "GREASE removed: ja3_full");
        is_str(b.fp.ja3, a.fp.ja3, "GREASE removed: ja3");
        is_str(b.fp.ja4_stable, a.fp.ja4_stable, "GREASE removed: ja4_stable");

        result_done(&a);
        result_done(&b);
        buf_free(&ra);
        buf_free(&rb);
}

static void alpn_case(const char *proto, size_t len, const char *want) {
        Buf exts = {};
        Result res;
        const char *protos[] = {proto, "h2"};
        size_t lens[] = {len, 2};

        ext_alpn(&exts, protos, lens, 2);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res)) {
                char got[3] = {res.fp.ja4[8], res.fp.ja4[9], 0};
                is_str(got, want, "ALPN first value of %zu bytes gives \"%s\"", len, want);
        }
        result_done(&res);
        buf_free(&exts);
}

static void test_alpn(void) {
        Buf exts = {};
        Result res;

        alpn_case("h2", 2, "h2");
        alpn_case("http/1.1", 8, "h1");
        alpn_case("h", 1, "hh");    /* one byte: first and last */
        alpn_case("\xab", 1, "ab"); /* spec examples of the hex rule */
        alpn_case("\xab\xcd", 2, "ad");
        alpn_case("0\xab", 2, "3b");
        alpn_case("01\xab\xcd", 4, "3d");
        alpn_case(
                "0\xab\xcd"
                "1",
                4,
                "01");
        alpn_case("h/", 2, "6f"); /* '/' is not alphanumeric */
        alpn_case("", 0, "00");   /* empty first value */

        /* An ALPN extension with an empty protocol list, and one with no data at all. */
        ext_raw(&exts, 0x0010, "\x00\x00", 2);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res))
                ok(strncmp(res.fp.ja4, "t12i030100_", 11) == 0, "empty ALPN list gives 00: %s", res.fp.ja4);
        result_done(&res);
        buf_free(&exts);

        /* No ALPN at all. */
        ext_raw(&exts, 0x0017, NULL, 0);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res))
                ok(strncmp(res.fp.ja4, "t12i030100_", 11) == 0, "no ALPN gives 00: %s", res.fp.ja4);
        result_done(&res);
        buf_free(&exts);
}

static void test_sni_flag(void) {
        Buf exts = {};
        Result res;

        ext_raw(&exts, 0x0000, NULL, 0);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res)) {
                ok(strncmp(res.fp.ja4, "t12d0301", 8) == 0, "empty SNI extension: flag d (%s)", res.fp.ja4);
                ok(res.ch.has_sni && !res.ch.has_sni_name, "empty SNI: present without a name");
        }
        result_done(&res);
        buf_free(&exts);

        ext_raw(&exts, 0x0000, "\x00\x00", 2);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res))
                ok(strncmp(res.fp.ja4, "t12d0301", 8) == 0, "SNI, empty list: d (%s)", res.fp.ja4);
        result_done(&res);
        buf_free(&exts);

        ext_raw(&exts, 0x0017, NULL, 0);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res))
                ok(strncmp(res.fp.ja4, "t12i0301", 8) == 0, "no SNI: flag i (%s)", res.fp.ja4);
        result_done(&res);
        buf_free(&exts);

        /* Only SNI: JA4_c is empty (zeros), JA4_o's c is sha256("0000"). */
        ext_sni(&exts, "a.example");
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res)) {
                is_str(res.fp.ja4 + 24, "000000000000", "only SNI: ja4 c part is zeros");
                is_str(res.fp.ja4_o + 24, "9af15b336e6a", "only SNI: ja4_o c part hashes 0000");
                is_str(res.fp.ja4_ro + 11, "1301,c02b,002f_0000", "only SNI: ja4_ro keeps 0000");
        }
        result_done(&res);
        buf_free(&exts);
}

static void test_counts_and_empty(void) {
        uint16_t ciphers[120];
        Buf exts = {};
        Result res;

        for (size_t i = 0; i < ELEMENTSOF(ciphers); i++)
                ciphers[i] = (uint16_t) (0x0100 + i);
        for (uint16_t t = 0x1000; t < 0x1000 + 105; t++)
                ext_raw(&exts, t, NULL, 0);
        if (fp_of(&exts, 0x0303, ciphers, ELEMENTSOF(ciphers), &res)) {
                ok(strncmp(res.fp.ja4, "t12i999900_", 11) == 0, "counts capped at 99: %s", res.fp.ja4);
                is_int(res.ch.n_extensions, 105, "105 extensions parsed");
        }
        result_done(&res);
        buf_free(&exts);

        /* No ciphers, empty extensions block. */
        if (fp_of(&exts, 0x0303, NULL, 0, &res)) {
                is_str(res.fp.ja4, "t12i000000_000000000000_000000000000", "empty lists hash to zeros");
                is_str(res.fp.ja4_o,
                       "t12i000000_000000000000_000000000000",
                       "empty lists hash to zeros (ja4_o)");
                is_str(res.fp.ja4_r, "t12i000000__", "empty raw lists");
                is_str(res.fp.ja3_full, "771,,,,", "empty JA3 fields");
                is_str(res.fp.ja4_stable, "t12i0000_000000000000_000000000000", "ja4_stable of empty lists");
        }
        result_done(&res);

        /* No extensions block at all (SSL 3.0 style hello). */
        if (fp_of(NULL, 0x0300, some_ciphers, 3, &res)) {
                ok(!res.ch.has_extensions_block, "hello without extensions block parsed");
                ok(strncmp(res.fp.ja4, "ts3i030000_", 11) == 0, "SSL 3.0 gives s3: %s", res.fp.ja4);
                is_str(res.fp.ja3_full, "768,4865-49195-47,,,", "SSL 3.0 ja3_full");
        }
        result_done(&res);
}

static void test_sigalgs(void) {
        static const uint16_t sigs[] = {0x0804, 0x0403};
        Buf exts = {};
        Result res;

        /* No signature algorithms: no trailing underscore. */
        ext_raw(&exts, 0x0017, NULL, 0);
        ext_raw(&exts, 0x000b, "\x01\x00", 2);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res)) {
                is_str(res.fp.ja4_r,
                       "t12i030200_002f,1301,c02b_000b,0017",
                       "no sigalgs: no trailing underscore");
                /* sha256("000b,0017")[:12], computed independently */
                is_str(res.fp.ja4 + 24, "0e0668bc1566", "no sigalgs: hash of the extension list alone");
        }
        result_done(&res);

        /* signature_algorithms_cert (0x0032) is not a source of signature algorithms. */
        ext_u16_list(&exts, 0x0032, sigs, 2, false);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res))
                is_str(res.fp.ja4_r, "t12i030300_002f,1301,c02b_000b,0017,0032", "sigalgs only from 0x000d");
        result_done(&res);

        ext_u16_list(&exts, 0x000d, (const uint16_t[]){0x0a0a, 0x0403, 0x0804}, 3, false);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res))
                is_str(res.fp.ja4_r,
                       "t12i030400_002f,1301,c02b_000b,000d,0017,0032_0403,0804",
                       "sigalgs from 0x000d in client order, GREASE removed");
        result_done(&res);
        buf_free(&exts);
}

static void
version_case(const uint16_t *versions, size_t n, uint16_t legacy, const char *want, const char *offered) {
        Buf exts = {};
        Result res;
        Attempt *a = attempt_new();

        if (n > 0)
                ext_u16_list(&exts, 0x002b, versions, n, true);
        if (fp_of(&exts, legacy, some_ciphers, 3, &res)) {
                char got[3] = {res.fp.ja4[1], res.fp.ja4[2], 0};
                is_str(got, want, "version %s (offered %s)", want, offered);
                is_int(fingerprint_fill_attempt(&res.ch, a), 0, "fill attempt");
                is_str(a->offered_versions, offered, "offered_versions %s", offered);
        }
        attempt_free(a);
        result_done(&res);
        buf_free(&exts);
}

static void test_versions(void) {
        version_case((const uint16_t[]){0x7f1c}, 1, 0x0303, "00", "0x7f1c"); /* draft 28 */
        version_case((const uint16_t[]){0x7f17, 0x0303}, 2, 0x0303, "00", "0x7f17,TLSv1.2");
        version_case((const uint16_t[]){0x0a0a, 0x0304, 0x0303}, 3, 0x0303, "13", "TLSv1.3,TLSv1.2");
        version_case((const uint16_t[]){0x0303, 0x0304}, 2, 0x0303, "13", "TLSv1.2,TLSv1.3");
        version_case(NULL, 0, 0x0300, "s3", "SSLv3.0");
        version_case(NULL, 0, 0x0301, "10", "TLSv1.0");
        version_case(NULL, 0, 0x0302, "11", "TLSv1.1");
        version_case(NULL, 0, 0x0002, "s2", "0x0002");
        version_case((const uint16_t[]){0x3a3a}, 1, 0x0303, "00", "");
}

static void test_duplicates(void) {
        static const char *const p1[] = {"h2"}, *const p2[] = {"x"};
        static const size_t l1[] = {2}, l2[] = {1};
        Buf exts = {};
        Result res;

        ext_alpn(&exts, p1, l1, 1);
        ext_raw(&exts, 0x0017, NULL, 0);
        ext_raw(&exts, 0x0017, NULL, 0);
        ext_alpn(&exts, p2, l2, 1);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res)) {
                is_str(res.fp.ja4_r, "t12i0304h2_002f,1301,c02b_0017,0017", "duplicates counted and listed");
                is_str(res.fp.ja4_ro, "t12i0304h2_1301,c02b,002f_0010,0017,0017,0010", "dups in ja4_ro");
                is_str(res.fp.ja3_full, "771,4865-49195-47,16-23-23-16,,", "duplicates in ja3_full");
        }
        result_done(&res);
        buf_free(&exts);
}

static void test_stable(void) {
        static const char *const alpn[] = {"h2"};
        static const size_t alpn_len[] = {2};
        static const uint16_t sigs[] = {0x0403};
        Buf e1 = {}, e2 = {}, e3 = {};
        Result a, b, c;

        /* Fresh hello. */
        ext_sni(&e1, "example.com");
        ext_alpn(&e1, alpn, alpn_len, 1);
        ext_u16_list(&e1, 0x000d, sigs, 1, false);
        ext_raw(&e1, 0x0017, NULL, 0);
        ext_raw(&e1, 0x0015, "\x00\x00", 2);
        /* Resumed retry: session_ticket, early_data, pre_shared_key, no padding. */
        ext_sni(&e2, "example.com");
        ext_alpn(&e2, alpn, alpn_len, 1);
        ext_u16_list(&e2, 0x000d, sigs, 1, false);
        ext_raw(&e2, 0x0017, NULL, 0);
        ext_raw(&e2, 0x0023, "ticket", 6);
        ext_raw(&e2, 0x002a, NULL, 0);
        ext_raw(&e2, 0x0029, "\x00\x00\x00\x00", 4);
        /* Another program on the same library: the same offer without ALPN (curl and Python's urllib) */
        ext_sni(&e3, "example.com");
        ext_u16_list(&e3, 0x000d, sigs, 1, false);
        ext_raw(&e3, 0x0017, NULL, 0);
        ext_raw(&e3, 0x0015, "\x00\x00", 2);

        if (fp_of(&e1, 0x0303, some_ciphers, 3, &a) && fp_of(&e2, 0x0303, some_ciphers, 3, &b)) {
                ok(!streq(a.fp.ja4, b.fp.ja4), "fresh and resumed hellos differ in ja4");
                is_str(a.fp.ja4_stable, b.fp.ja4_stable, "but share ja4_stable");
                /* sha256("000d,0017_0403")[:12], computed independently */
                /* sha256("000d,0017_0403")[:12]: the extension hash leaves out SNI and ALPN */
                is_str(a.fp.ja4_stable, "t12d03h2_58a34ed92d94_eae628536efc", "ja4_stable format");
                ok(strncmp(a.fp.ja4_stable + 9, a.fp.ja4 + 11, 12) == 0, "JA4's cipher hash");
                ok(b.ch.has_psk && b.ch.has_early_data && !a.ch.has_psk, "PSK and early data presence");
        }
        if (fp_of(&e3, 0x0303, some_ciphers, 3, &c)) {
                is_str(c.fp.ja4_stable, "t12d0300_58a34ed92d94_eae628536efc", "without ALPN: ja4_stable format");
                ok(!streq(a.fp.ja4_stable, c.fp.ja4_stable),
                   "an offer without ALPN has a ja4_stable of its own");
        }
        result_done(&a);
        result_done(&b);
        result_done(&c);
        buf_free(&e1);
        buf_free(&e2);
        buf_free(&e3);
}

static void test_fill_attempt(void) {
        static const char *const alpn[] = {"h2", "http/1.1"};
        static const size_t alpn_len[] = {2, 8};
        Buf exts = {};
        Result res;
        Attempt *a = attempt_new();

        /* A host name with a NUL and a control byte: stored raw. */
        buf_u16(&exts, 0x0000);
        size_t m = buf_begin(&exts, 2), l = buf_begin(&exts, 2);
        buf_u8(&exts, 0);
        buf_u16(&exts, 5);
        buf_put(&exts,
                "a\0b\x1b"
                "c",
                5);
        buf_end(&exts, l, 2);
        buf_end(&exts, m, 2);
        ext_alpn(&exts, alpn, alpn_len, 2);
        if (fp_of(&exts, 0x0303, some_ciphers, 3, &res)) {
                is_int(fingerprint_fill_attempt(&res.ch, a), 0, "fingerprint_fill_attempt");
                ok(a->sni.data && a->sni.len == 5 &&
                           memcmp(a->sni.data,
                                  "a\0b\x1b"
                                  "c",
                                  5) == 0,
                   "sni raw");
                ok(a->alpn_offered.data && a->alpn_offered.len == 11 &&
                           memcmp(a->alpn_offered.data, "h2,http/1.1", 11) == 0,
                   "alpn_offered joined with ','");
                is_str(a->ja3, res.fp.ja3, "ja3 set");
                is_str(a->ja3_full, res.fp.ja3_full, "ja3_full set");
                is_str(a->ja4, res.fp.ja4, "ja4 set");
                is_str(a->ja4_r, res.fp.ja4_r, "ja4_r set");
                is_str(a->ja4_o, res.fp.ja4_o, "ja4_o set");
                is_str(a->ja4_ro, res.fp.ja4_ro, "ja4_ro set");
                is_str(a->ja4_stable, res.fp.ja4_stable, "ja4_stable set");
                is_str(a->offered_versions, "TLSv1.2", "offered_versions from legacy_version");
                /* Filling again replaces (no leak under valgrind/ASan). */
                is_int(fingerprint_fill_attempt(&res.ch, a), 0, "fill again");
        }
        result_done(&res);
        buf_free(&exts);

        /* Without SNI and ALPN: NULL. */
        if (fp_of(NULL, 0x0303, some_ciphers, 3, &res)) {
                is_int(fingerprint_fill_attempt(&res.ch, a), 0, "fill without SNI/ALPN");
                ok(!a->sni.data && !a->alpn_offered.data, "sni and alpn_offered NULL when absent");
        }
        result_done(&res);
        attempt_free(a);
}

int main(int argc, char *argv[]) {
        if (psa_crypto_init() != PSA_SUCCESS) {
                printf("Bail out! psa_crypto_init() failed\n");
                return 1;
        }
        if (argc < 2) {
                printf("Bail out! usage: %s CORPUS-DIR (tests/fixtures/clienthello)\n", argv[0]);
                return 1;
        }

        test_corpus(argv[1]);
        test_example_and_grease();
        test_alpn();
        test_sni_flag();
        test_counts_and_empty();
        test_sigalgs();
        test_versions();
        test_duplicates();
        test_stable();
        test_fill_attempt();
        return tap_done();
}
