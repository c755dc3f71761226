/* SPDX-License-Identifier: MIT */
/* Reads a client's raw bytes (TLS records carrying a ClientHello) from a file or stdin and prints the
 * capture state and the fingerprints as key=value lines; client-chosen strings are escaped.
 * Usage: fingerprint-dump [FILE|-] */

#include <psa/crypto.h>

#include "escape.h"
#include "fingerprint.h"

static int dump(FILE *f) {
        _cleanup_(clienthello_capture_done) ClientHelloCapture c;
        _cleanup_(attempt_freep) Attempt *a = NULL;
        _cleanup_free_ char *sni = NULL, *alpn = NULL;
        uint8_t buf[4096];
        ClientHello ch;
        size_t n;
        int r;

        clienthello_capture_init(&c);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                clienthello_capture_feed(&c, buf, n);
        if (ferror(f)) {
                fprintf(stderr, "Failed to read input.\n");
                return 1;
        }

        printf("capture=%s\n", capture_state_to_string(c.state));
        if (c.state == CAPTURE_NOT_TLS)
                printf("looks_like_http=%s\n", c.looks_like_http ? "yes" : "no");
        if (c.state != CAPTURE_COMPLETE) {
                if (c.reason)
                        printf("reason=%s\n", c.reason);
                return 2;
        }

        r = clienthello_parse(c.msg, c.msg_len, &ch);
        if (r < 0) {
                printf("parse=malformed\nreason=%s\n", ch.reason);
                return 2;
        }

        a = attempt_new();
        if (!a)
                return 1;
        r = fingerprint_fill_attempt(&ch, a);
        if (r < 0) {
                fprintf(stderr, "Failed to compute fingerprints: %s\n", strerror(-r));
                return 1;
        }
        if (a->sni.data)
                sni = escape_display(a->sni.data, a->sni.len);
        if (a->alpn_offered.data)
                alpn = escape_display(a->alpn_offered.data, a->alpn_offered.len);

        printf("ja3=%s\nja3_full=%s\nja4=%s\nja4_r=%s\nja4_o=%s\nja4_ro=%s\nja4_stable=%s\n"
               "offered_versions=%s\nsni=%s\nalpn_offered=%s\n",
               a->ja3,
               a->ja3_full,
               a->ja4,
               a->ja4_r,
               a->ja4_o,
               a->ja4_ro,
               a->ja4_stable,
               a->offered_versions,
               strempty(sni),
               strempty(alpn));
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_fclose_ FILE *f = NULL;

        if (argc > 2 || (argc == 2 && (streq(argv[1], "--help") || streq(argv[1], "-h")))) {
                fprintf(stderr, "Usage: %s [FILE|-]\n", argv[0]);
                return argc > 2 ? 1 : 0;
        }
        if (psa_crypto_init() != PSA_SUCCESS) {
                fprintf(stderr, "psa_crypto_init() failed.\n");
                return 1;
        }
        if (argc == 2 && !streq(argv[1], "-")) {
                f = fopen(argv[1], "re");
                if (!f) {
                        fprintf(stderr, "Failed to open %s: %m\n", argv[1]);
                        return 1;
                }
        }
        return dump(f ?: stdin);
}
