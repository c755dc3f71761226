/* SPDX-License-Identifier: MIT */
/* Record scanner, ClientHello capture and parser: the external corpus (whole, 1-byte chunks, 1-byte
 * records) checked field by field against its published JA3/JA4 strings, hand-built hellos, truncation
 * at every length, oversize, not-TLS/HTTP detection, plaintext alert detection.
 * Usage: test-clienthello CORPUS-DIR [--write-seeds DIR] */

#include <ctype.h>

#include "clienthello.h"
#include "hello-util.h"
#include "tap.h"

static const char *seed_dir;

/* With --write-seeds, saves an input for the fuzzer's seed corpus. */
static void seed(const char *name, const void *data, size_t len) {
        char path[4096];
        FILE *f;

        if (!seed_dir)
                return;
        snprintf(path, sizeof(path), "%s/%s", seed_dir, name);
        f = fopen(path, "we");
        if (!f || fwrite(data, 1, len, f) != len)
                diag("cannot write %s", path);
        if (f)
                fclose(f);
}

static CaptureState capture_chunked(ClientHelloCapture *c, const uint8_t *data, size_t len, size_t chunk) {
        CaptureState st = CAPTURE_NEED_MORE;

        clienthello_capture_init(c);
        for (size_t o = 0; o < len; o += chunk)
                st = clienthello_capture_feed(c, data + o, MIN(chunk, len - o));
        return st;
}

/* Appends the values as JA3 does (decimal, '-'), skipping GREASE. */
static void append_dec_list(char *buf, size_t size, const U16List *l) {
        bool first = true;
        for (size_t i = 0; i < l->n; i++) {
                uint16_t v = u16_list_get(l, i);
                if (tls_is_grease(v))
                        continue;
                snprintf(buf + strlen(buf), size - strlen(buf), "%s%u", first ? "" : "-", v);
                first = false;
        }
}

/* Rebuilds the JA3 string from the parsed fields: an independent check of the parser against the
 * published JA3 strings. */
static void ja3_from_fields(const ClientHello *ch, char *buf, size_t size) {
        size_t o = 0;
        uint16_t type;
        ByteSpan data;
        bool first = true;

        snprintf(buf, size, "%u,", ch->legacy_version);
        append_dec_list(buf, size, &ch->ciphers);
        snprintf(buf + strlen(buf), size - strlen(buf), ",");
        while (clienthello_extension_next(ch, &o, &type, &data))
                if (!tls_is_grease(type)) {
                        snprintf(buf + strlen(buf), size - strlen(buf), "%s%u", first ? "" : "-", type);
                        first = false;
                }
        snprintf(buf + strlen(buf), size - strlen(buf), ",");
        append_dec_list(buf, size, &ch->supported_groups);
        snprintf(buf + strlen(buf), size - strlen(buf), ",");
        for (size_t i = 0; i < ch->ec_point_formats.len; i++)
                snprintf(
                        buf + strlen(buf),
                        size - strlen(buf),
                        "%s%u",
                        i > 0 ? "-" : "",
                        ch->ec_point_formats.data[i]);
}

static void test_corpus(const char *dir) {
        static char want[1 << 20], got[1 << 20];
        Vector *v;
        int n;

        n = corpus_load(dir, &v);
        if (!ok(n > 0, "corpus loaded from %s", dir))
                return;

        for (int i = 0; i < n; i++) {
                ClientHelloCapture whole, bytes, recs;
                ClientHello ch;
                Buf split = {};
                bool good;

                capture_chunked(&whole, v[i].hello, v[i].hello_len, v[i].hello_len);
                if (!ok(whole.state == CAPTURE_COMPLETE,
                        "%s: captured (%s)",
                        v[i].name,
                        capture_state_to_string(whole.state))) {
                        clienthello_capture_done(&whole);
                        continue;
                }
                hello_records(&split, whole.msg, whole.msg_len, 1);
                capture_chunked(&bytes, v[i].hello, v[i].hello_len, 1);
                capture_chunked(&recs, split.data, split.len, 3);
                ok(bytes.state == CAPTURE_COMPLETE && bytes.msg_len == whole.msg_len &&
                           memcmp(bytes.msg, whole.msg, whole.msg_len) == 0,
                   "%s: same message fed in 1-byte chunks",
                   v[i].name);
                ok(recs.state == CAPTURE_COMPLETE && recs.msg_len == whole.msg_len &&
                           memcmp(recs.msg, whole.msg, whole.msg_len) == 0 && recs.records == whole.msg_len,
                   "%s: same message from %zu 1-byte records",
                   v[i].name,
                   whole.msg_len);

                if (!is_int(clienthello_parse(whole.msg, whole.msg_len, &ch), 0, "%s: parsed", v[i].name)) {
                        diag("reason: %s", ch.reason);
                        goto next;
                }

                ja3_from_fields(&ch, got, sizeof(got));
                is_str(got,
                       v[i].ja3_full,
                       "%s: legacy version, ciphers, extensions, groups, point formats",
                       v[i].name);

                /* Signature algorithms: the part of ja4_r after its third '_', if any. */
                const char *p = strchr(v[i].ja4_r, '_');
                p = p ? strchr(p + 1, '_') : NULL;
                p = p ? strchr(p + 1, '_') : NULL;
                want[0] = got[0] = '\0';
                if (p)
                        snprintf(want, sizeof(want), "%s", p + 1);
                for (size_t k = 0; k < ch.signature_algorithms.n; k++) {
                        uint16_t s = u16_list_get(&ch.signature_algorithms, k);
                        if (!tls_is_grease(s))
                                snprintf(
                                        got + strlen(got),
                                        sizeof(got) - strlen(got),
                                        "%s%04x",
                                        got[0] ? "," : "",
                                        s);
                }
                is_str(got, want, "%s: signature algorithms", v[i].name);

                /* SNI flag and ALPN first value against ja4's a part. */
                good = (v[i].ja4[3] == 'd') == ch.has_sni;
                if (ch.has_alpn && ch.n_alpn > 0) {
                        size_t o = 0;
                        ByteSpan proto;
                        good = good && clienthello_alpn_next(&ch, &o, &proto) &&
                                (proto.len == 0 || v[i].ja4[8] == proto.data[0] || !isalnum(proto.data[0]));
                } else
                        good = good && v[i].ja4[8] == '0' && v[i].ja4[9] == '0';
                ok(good, "%s: SNI presence and ALPN", v[i].name);
next:
                clienthello_capture_done(&whole);
                clienthello_capture_done(&bytes);
                clienthello_capture_done(&recs);
                buf_free(&split);
        }
        corpus_free(v, (size_t) n);
}

static void test_fields(void) {
        static const uint16_t ciphers[] = {0x1301, 0x0a0a};
        static const uint16_t versions[] = {0x0304, 0x0303};
        static const uint16_t groups[] = {0x001d, 0x0017};
        static const char *const alpn[] = {"h2", "", "http/1.1"};
        static const size_t alpn_len[] = {2, 0, 8};
        Buf exts = {}, msg = {}, rec = {};
        ClientHelloCapture c;
        ClientHello ch;
        ByteSpan s;
        uint16_t g;
        size_t o;

        ext_sni(&exts, "www.example.org");
        ext_alpn(&exts, alpn, alpn_len, 3);
        ext_u16_list(&exts, 0x002b, versions, 2, true);
        ext_u16_list(&exts, 0x000a, groups, 2, false);
        ext_raw(&exts, 0x000b, "\x02\x00\x01", 3);
        ext_raw(&exts, 0x0033, "\x00\x0a\x00\x1d\x00\x01X\x00\x17\x00\x01Y", 12);
        ext_raw(&exts, 0x002a, NULL, 0);
        ext_raw(&exts, 0x0029, "\x00\x00\x00\x00", 4);
        hello_message(&msg, 0x0303, ciphers, 2, &exts);
        hello_records(&rec, msg.data, msg.len, 100);
        seed("fields-3-records", rec.data, rec.len);

        ok(capture_chunked(&c, rec.data, rec.len, 13) == CAPTURE_COMPLETE, "hello over 3 records");
        is_int(c.records, (msg.len + 99) / 100, "handshake records counted");
        if (is_int(clienthello_parse(c.msg, c.msg_len, &ch), 0, "parsed")) {
                is_int(ch.legacy_version, 0x0303, "legacy_version");
                is_int(ch.session_id.len, 32, "session id");
                is_int(ch.ciphers.n, 2, "ciphers, GREASE kept by the parser");
                is_int(ch.n_extensions, 8, "extensions counted");
                ok(ch.has_sni_name && ch.sni.len == 15 && memcmp(ch.sni.data, "www.example.org", 15) == 0,
                   "SNI");
                is_int(ch.n_alpn, 3, "ALPN protocols");
                o = 0;
                ok(clienthello_alpn_next(&ch, &o, &s) && s.len == 2 && clienthello_alpn_next(&ch, &o, &s) &&
                           s.len == 0 && clienthello_alpn_next(&ch, &o, &s) && s.len == 8 &&
                           memcmp(s.data, "http/1.1", 8) == 0 && !clienthello_alpn_next(&ch, &o, &s),
                   "ALPN iteration");
                ok(ch.supported_versions.n == 2 && u16_list_get(&ch.supported_versions, 0) == 0x0304,
                   "supported_versions");
                ok(ch.supported_groups.n == 2 && u16_list_get(&ch.supported_groups, 1) == 0x0017,
                   "supported_groups");
                ok(ch.ec_point_formats.len == 2 && ch.ec_point_formats.data[1] == 1, "ec_point_formats");
                is_int(ch.n_key_shares, 2, "key shares");
                o = 0;
                ok(clienthello_key_share_next(&ch, &o, &g) && g == 0x001d &&
                           clienthello_key_share_next(&ch, &o, &g) && g == 0x0017 &&
                           !clienthello_key_share_next(&ch, &o, &g),
                   "key share groups");
                ok(ch.has_psk && ch.has_early_data, "PSK and early data present");
                ok(!ch.has_signature_algorithms, "no signature algorithms");
        }
        clienthello_capture_done(&c);

        /* Bytes after the ClientHello, in the same record and in the same chunk, are left alone. */
        Buf two = {};
        buf_put(&two, msg.data, msg.len);
        buf_put(&two, "\x10\x00\x00\x01X", 5); /* another handshake message in the same record */
        Buf rec2 = {};
        hello_records(&rec2, two.data, two.len, 16384);
        buf_put(&rec2, "\x15\x03\x03\x00\x02\x01\x00", 7); /* and a warning alert */
        ok(capture_chunked(&c, rec2.data, rec2.len, rec2.len) == CAPTURE_COMPLETE && c.msg_len == msg.len &&
                   memcmp(c.msg, msg.data, msg.len) == 0,
           "trailing bytes after the ClientHello not captured");
        ok(c.scanner.alert_level == 1 && c.scanner.alert_description == 0 && c.scanner.records == 2,
           "the inbound scanner follows on after the capture");
        clienthello_capture_done(&c);

        buf_free(&two);
        buf_free(&rec2);
        buf_free(&exts);
        buf_free(&msg);
        buf_free(&rec);
}

static void test_truncation(void) {
        Buf rec = {};
        ClientHelloCapture c, full;
        ClientHello ch;
        unsigned bad = 0, parsed = 0;

        hello_example(&rec, true);
        seed("example-grease", rec.data, rec.len);
        capture_chunked(&full, rec.data, rec.len, rec.len);
        seed("example-message", full.msg, full.msg_len);
        Buf split = {};
        hello_records(&split, full.msg, full.msg_len, 1);
        seed("example-1-byte-records", split.data, split.len);
        buf_free(&split);

        /* Every prefix of the stream: never complete, never crashes. */
        for (size_t l = 0; l < rec.len; l++)
                if (capture_chunked(&c, rec.data, l, 1 + l % 5) != CAPTURE_NEED_MORE) {
                        bad++;
                        clienthello_capture_done(&c);
                } else
                        clienthello_capture_done(&c);
        is_int(bad, 0, "every truncated stream needs more");

        /* Every prefix of the message, on an exactly sized heap copy (ASan/valgrind catch overreads),
         * with the original length and with the length fixed up to the truncated size. */
        bad = 0;
        for (size_t l = 0; l < full.msg_len; l++) {
                uint8_t *m = malloc(MAX(l, (size_t) 1));
                memcpy(m, full.msg, l);
                if (clienthello_parse(m, l, &ch) != -EBADMSG || !ch.reason)
                        bad++;
                if (l >= 4) {
                        m[1] = (uint8_t) ((l - 4) >> 16);
                        m[2] = (uint8_t) ((l - 4) >> 8);
                        m[3] = (uint8_t) (l - 4);
                        int r = clienthello_parse(m, l, &ch);
                        if (r == 0)
                                parsed++; /* possible where a prefix ends on a structure boundary */
                        else if (r != -EBADMSG || !ch.reason)
                                bad++;
                }
                free(m);
        }
        is_int(bad, 0, "every truncated message is rejected with -EBADMSG and a reason");
        diag("%u truncated messages with a fixed-up length still parse (prefix at a boundary)", parsed);
        ok(parsed <= 2, "fixed-up truncations mostly rejected");
        clienthello_capture_done(&full);
        buf_free(&rec);
}

static void expect_malformed(const char *what, const uint8_t *data, size_t len) {
        ClientHelloCapture c;
        ClientHello ch;
        uint8_t *m;

        /* As a stream: */
        if (len >= 4 && data[0] == 1) {
                Buf rec = {};
                hello_records(&rec, data, len, 16384);
                CaptureState st = capture_chunked(&c, rec.data, rec.len, 1);
                is_int(st, CAPTURE_COMPLETE, "%s: captured", what);
                clienthello_capture_done(&c);
                buf_free(&rec);
        }
        m = malloc(len);
        memcpy(m, data, len);
        is_int(clienthello_parse(m, len, &ch), -EBADMSG, "%s: rejected (%s)", what, strna(ch.reason));
        free(m);
}

static void test_malformed(void) {
        static const uint16_t ciphers[] = {0x1301};
        Buf msg = {}, exts = {};

        /* session id of 33 bytes */
        hello_message(&msg, 0x0303, ciphers, 1, NULL);
        msg.data[4 + 2 + 32] = 33;
        expect_malformed("session_id length 33", msg.data, msg.len);
        buf_free(&msg);

        /* odd cipher suites length */
        hello_message(&msg, 0x0303, ciphers, 1, NULL);
        msg.data[4 + 2 + 32 + 1 + 32 + 1] = 3;
        expect_malformed("odd cipher_suites length", msg.data, msg.len);
        buf_free(&msg);

        /* trailing byte after the extensions */
        ext_raw(&exts, 0x0017, NULL, 0);
        hello_message(&msg, 0x0303, ciphers, 1, &exts);
        buf_u8(&msg, 0);
        buf_end(&msg, 1, 3);
        expect_malformed("trailing bytes", msg.data, msg.len);
        buf_free(&msg);
        buf_free(&exts);

        /* an extension longer than the block */
        buf_put(&exts, "\x00\x17\x00\x05\x00", 5);
        hello_message(&msg, 0x0303, ciphers, 1, &exts);
        expect_malformed("extension overrun", msg.data, msg.len);
        buf_free(&msg);
        buf_free(&exts);

        static const struct {
                uint16_t type;
                const char *data;
                size_t len;
        } bad_ext[] = {
                {0x0000, "\x00\x05\x00\x00\x05", 5}, /* SNI name overruns */
                {0x0000, "\x00\x01\x00", 3},         /* SNI list overruns */
                {0x0010, "\x00\x03\x05h2", 5},       /* ALPN name overruns */
                {0x0010, "\x00\x02\x01h2", 5},       /* ALPN list length mismatch */
                {0x002b, "\x03\x03\x04\x03", 4},     /* odd supported_versions */
                {0x000a, "\x00\x04\x00\x1d", 4},     /* groups overrun */
                {0x000d, "\x00\x01\x04", 3},         /* odd signature algorithms */
                {0x000b, "\x02\x00", 2},             /* point formats overrun */
                {0x0033,
                 "\x00\x06\x00\x1d\x00\x05"
                 "ab",
                 8}, /* key share overrun */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_ext); i++) {
                char what[64];
                ext_raw(&exts, bad_ext[i].type, bad_ext[i].data, bad_ext[i].len);
                hello_message(&msg, 0x0303, ciphers, 1, &exts);
                snprintf(what, sizeof(what), "malformed extension 0x%04x #%zu", bad_ext[i].type, i);
                expect_malformed(what, msg.data, msg.len);
                buf_free(&msg);
                buf_free(&exts);
        }

        /* not a ClientHello */
        expect_malformed("ServerHello", (const uint8_t *) "\x02\x00\x00\x00", 4);
        expect_malformed("empty", (const uint8_t *) "", 0);
}

static void
capture_case(const char *what, const void *data, size_t len, CaptureState want, bool http, const char *sname) {
        ClientHelloCapture c, c1;

        capture_chunked(&c, data, len, len ? len : 1);
        capture_chunked(&c1, data, len, 1);
        is_int(c.state, want, "%s: %s (%s)", what, capture_state_to_string(want), strna(c.reason));
        is_int(c1.state, want, "%s: same in 1-byte chunks", what);
        if (want == CAPTURE_NOT_TLS)
                ok(c.looks_like_http == http && c1.looks_like_http == http,
                   "%s: looks like HTTP: %s",
                   what,
                   http ? "yes" : "no");
        if (want == CAPTURE_MALFORMED || want == CAPTURE_TOO_BIG)
                ok(c.reason != NULL, "%s: reason given", what);
        is_int(c.scanner.bytes, len, "%s: bytes counted", what);
        clienthello_capture_done(&c);
        clienthello_capture_done(&c1);
        if (sname)
                seed(sname, data, len);
}

#define CASE(what, s, want, http, seed_name) capture_case(what, s, sizeof(s) - 1, want, http, seed_name)

static void test_capture_states(void) {
        ClientHelloCapture c;

        CASE("GET request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", CAPTURE_NOT_TLS, true, "http-get");
        CASE("POST request", "POST /x HTTP/1.0\r\n", CAPTURE_NOT_TLS, true, NULL);
        CASE("HEAD", "HEAD / HTTP/1.1\r\n", CAPTURE_NOT_TLS, true, NULL);
        CASE("PUT", "PUT /a HTTP/1.1\r\n", CAPTURE_NOT_TLS, true, NULL);
        CASE("OPTIONS", "OPTIONS * HTTP/1.1\r\n", CAPTURE_NOT_TLS, true, NULL);
        CASE("DELETE", "DELETE /a HTTP/1.1\r\n", CAPTURE_NOT_TLS, true, NULL);
        CASE("CONNECT", "CONNECT a:443 HTTP/1.1\r\n", CAPTURE_NOT_TLS, true, "http-connect");
        CASE("PATCH", "PATCH /a HTTP/1.1\r\n", CAPTURE_NOT_TLS, true, NULL);
        CASE("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", CAPTURE_NOT_TLS, true, NULL);
        CASE("SSH banner", "SSH-2.0-OpenSSH_9.2\r\n", CAPTURE_NOT_TLS, false, "ssh");
        CASE("GETX", "GETX", CAPTURE_NOT_TLS, false, NULL);
        CASE("SSLv2 hello", "\x80\x2e\x01\x00\x02\x00\x15", CAPTURE_NOT_TLS, false, "sslv2");
        CASE("alert first", "\x15\x03\x01\x00\x02\x02\x28", CAPTURE_NOT_TLS, false, NULL);
        CASE("partial method", "GE", CAPTURE_NEED_MORE, false, NULL);
        CASE("nothing", "", CAPTURE_NEED_MORE, false, NULL);
        CASE("bad version", "\x16\x05\x01\x00\x05\x01\x00\x00\x01\x00", CAPTURE_MALFORMED, false, NULL);
        CASE("record too long", "\x16\x03\x01\x50\x00\x01", CAPTURE_MALFORMED, false, NULL);
        CASE("empty handshake record",
             "\x16\x03\x01\x00\x00\x16\x03\x01\x00\x01\x01",
             CAPTURE_MALFORMED,
             false,
             NULL);
        CASE("ServerHello", "\x16\x03\x03\x00\x04\x02\x00\x00\x00", CAPTURE_MALFORMED, false, NULL);
        CASE("alert inside the hello",
             "\x16\x03\x01\x00\x02\x01\x00\x15\x03\x01\x00\x02\x02\x28",
             CAPTURE_MALFORMED,
             false,
             "alert-inside-hello");
        CASE("64 KiB + 1", "\x16\x03\x01\x00\x04\x01\x00\xff\xfd", CAPTURE_TOO_BIG, false, "too-big");
        CASE("announces 16 MiB", "\x16\x03\x01\x00\x04\x01\xff\xff\xff", CAPTURE_TOO_BIG, false, NULL);
        CASE("empty hello", "\x16\x03\x01\x00\x04\x01\x00\x00\x00", CAPTURE_COMPLETE, false, NULL);

        /* Released half-way: later bytes are only scanned. */
        Buf ex = {};
        hello_example(&ex, false);
        clienthello_capture_init(&c);
        clienthello_capture_feed(&c, ex.data, 20);
        clienthello_capture_done(&c);
        is_int(clienthello_capture_feed(&c, ex.data + 20, ex.len - 20),
               CAPTURE_NEED_MORE,
               "released: only scans");
        ok(!c.msg && c.scanner.bytes == ex.len && c.scanner.records == 1,
           "released: bytes and records counted");
        clienthello_capture_done(&c);
        buf_free(&ex);

        /* "GE" then "T ": decided once 4 bytes are there. */
        clienthello_capture_init(&c);
        is_int(clienthello_capture_feed(&c, "GE", 2), CAPTURE_NEED_MORE, "GE: need more");
        is_int(clienthello_capture_feed(&c, "T /", 3), CAPTURE_NOT_TLS, "GET /: not TLS");
        ok(c.looks_like_http, "GET /: HTTP");
        clienthello_capture_done(&c);

        /* Exactly at the cap: complete. One byte more: too big. The hello itself is garbage here, the
         * parser rejects it; the capture only cares about sizes. */
        for (int extra = 0; extra <= 1; extra++) {
                size_t body = CLIENTHELLO_CAPTURE_MAX - TLS_HANDSHAKE_HEADER_SIZE + extra;
                Buf msg = {}, rec = {};
                buf_u8(&msg, 1);
                buf_u24(&msg, (uint32_t) body);
                for (size_t i = 0; i < body; i++)
                        buf_u8(&msg, (uint8_t) i);
                hello_records(&rec, msg.data, msg.len, 16384);
                CaptureState st = capture_chunked(&c, rec.data, rec.len, 1000);
                is_int(st, extra ? CAPTURE_TOO_BIG : CAPTURE_COMPLETE, "hello of %zu bytes", msg.len);
                if (extra)
                        ok(!c.msg && c.announced_len == body, "too big: nothing allocated, size known");
                else
                        ok(c.msg_len == CLIENTHELLO_CAPTURE_MAX && c.records == 4, "64 KiB over 4 records");
                is_int(c.scanner.bytes, rec.len, "all bytes counted");
                clienthello_capture_done(&c);
                buf_free(&msg);
                buf_free(&rec);
        }
}

static void test_scanner(void) {
        static const uint8_t out[] = {
                0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00, /* handshake */
                0x14, 0x03, 0x03, 0x00, 0x01, 0x01,                   /* change_cipher_spec */
                0x17, 0x03, 0x03, 0x00, 0x13, 1,    2,    3,    4,    5,  6,  7,  8,  9,  10, 11,
                12,   13,   14,   15,   16,   17,   18,   19, /* encrypted TLS 1.3 alert (type 23) */
                0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x2e,     /* plaintext alert 46 */
                0x15, 0x03, 0x03, 0x00, 0x1a, 1,    2,    3,    4,    5,  6,  7,  8,  9,  10, 11,
                12,   13,   14,   15,   16,   17,   18,   19,   20,   21, 22, 23, 24, 25, 26, /* encrypted 1.2 alert */
                0x15, 0x03, 0x03, 0x00, 0x00, /* empty alert record */
        };
        RecordScanner s;

        for (size_t chunk = 1; chunk <= sizeof(out); chunk += (chunk < 8 ? 1 : 17)) {
                record_scanner_init(&s);
                for (size_t o = 0; o < sizeof(out); o += chunk)
                        record_scanner_feed(&s, out + o, MIN(chunk, sizeof(out) - o));
                ok(s.alert_level == 2 && s.alert_description == 46 && s.alerts == 1 && s.records == 6 &&
                           s.bytes == sizeof(out) && !s.desynced,
                   "plaintext alert 46 found, encrypted alerts ignored (chunks of %zu)",
                   chunk);
                is_int(s.handshake_records, 1, "one handshake record (chunks of %zu)", chunk);
        }
        seed("scanner-alerts", out, sizeof(out));

        record_scanner_init(&s);
        ok(s.alert_level == -1 && s.alert_description == -1, "no alert yet");
        record_scanner_feed(&s, "\x15\x03\x03\x00\x02\x02", 6);
        ok(s.alert_description == -1, "half an alert is no alert");
        record_scanner_feed(&s, "\x30", 1);
        ok(s.alert_level == 2 && s.alert_description == 48, "alert completed by the next chunk");
        record_scanner_feed(&s, "\x15\x03\x03\x00\x02\x01\x00", 7);
        ok(s.alert_level == 1 && s.alert_description == 0, "the last alert wins");
        is_int(s.encrypted_alerts, 0, "no encrypted alert so far");
        record_scanner_feed(&s, "\x15\x03\x03\x00\x1a", 5); /* a TLS 1.2 alert under AES-GCM: 26 bytes */
        for (int i = 0; i < 26; i++)
                record_scanner_feed(&s, "\xab", 1);
        ok(s.encrypted_alerts == 1 && s.alert_description == 0 && s.alerts == 2,
           "an encrypted alert record is counted, not read as a plaintext alert");
        record_scanner_feed(&s, "HTTP/1.1 400", 12);
        ok(s.desynced && s.alert_description == 0 && s.bytes == 57, "garbage desyncs, bytes still counted");
        record_scanner_feed(&s, "\x15\x03\x03\x00\x02\x02\x28", 7);
        ok(s.alert_description == 0 && s.bytes == 64, "nothing interpreted after desync");

        /* Inbound: hello, then the client's alert. */
        Buf rec = {};
        ClientHelloCapture c;
        hello_example(&rec, false);
        buf_put(&rec, "\x15\x03\x03\x00\x02\x02\x2e", 7);
        capture_chunked(&c, rec.data, rec.len, 1);
        ok(c.state == CAPTURE_COMPLETE && c.scanner.alert_description == 46 && c.scanner.records == 2,
           "client alert after the hello seen by the capture's scanner");
        clienthello_capture_done(&c);
        seed("hello-then-alert", rec.data, rec.len);
        buf_free(&rec);
}

int main(int argc, char *argv[]) {
        if (argc < 2) {
                printf("Bail out! usage: %s CORPUS-DIR [--write-seeds DIR]\n", argv[0]);
                return 1;
        }
        if (argc >= 4 && streq(argv[2], "--write-seeds"))
                seed_dir = argv[3];

        test_corpus(argv[1]);
        test_fields();
        test_truncation();
        test_malformed();
        test_capture_states();
        test_scanner();
        return tap_done();
}
