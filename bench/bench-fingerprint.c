/* SPDX-License-Identifier: MIT */
/* Nanoseconds per ClientHello for clienthello_parse() + fingerprint_compute() (JA3, JA3 string, JA4,
 * JA4_r, JA4_o, JA4_ro, ja4_stable), over the external corpus; also with the capture from records in
 * front. Prints the median of several rounds. Usage: bench-fingerprint CORPUS-DIR [ROUNDS] */

#include <psa/crypto.h>
#include <time.h>

#include "bench-util.h"
#include "fingerprint.h"
#include "hello-util.h"

#define REPEAT 50

static int parse_and_fingerprint(const uint8_t *msg, size_t len) {
        ClientHello ch;
        Fingerprints f;
        int r;

        r = clienthello_parse(msg, len, &ch);
        if (r < 0)
                return r;
        r = fingerprint_compute(&ch, &f);
        if (r < 0)
                return r;
        fingerprints_done(&f);
        return 0;
}

static int capture_parse_and_fingerprint(const uint8_t *data, size_t len) {
        ClientHelloCapture c;
        int r = -EBADMSG;

        clienthello_capture_init(&c);
        if (clienthello_capture_feed(&c, data, len) == CAPTURE_COMPLETE)
                r = parse_and_fingerprint(c.msg, c.msg_len);
        clienthello_capture_done(&c);
        return r;
}

int main(int argc, char *argv[]) {
        Vector *v;
        uint8_t **msgs;
        size_t *lens;
        int n, rounds = argc > 2 ? atoi(argv[2]) : 15;

        if (argc < 2 || rounds <= 0) {
                fprintf(stderr, "Usage: %s CORPUS-DIR [ROUNDS]\n", argv[0]);
                return 1;
        }
        if (psa_crypto_init() != PSA_SUCCESS) {
                fprintf(stderr, "psa_crypto_init() failed.\n");
                return 1;
        }
        n = corpus_load(argv[1], &v);
        if (n <= 0)
                return 1;

        /* Pre-capture the messages so that the first figure is parse + fingerprints only. */
        msgs = calloc((size_t) n, sizeof(uint8_t *));
        lens = calloc((size_t) n, sizeof(size_t));
        if (!msgs || !lens)
                return 1;
        for (int i = 0; i < n; i++) {
                ClientHelloCapture c;
                clienthello_capture_init(&c);
                if (clienthello_capture_feed(&c, v[i].hello, v[i].hello_len) != CAPTURE_COMPLETE) {
                        fprintf(stderr, "%s: capture failed\n", v[i].name);
                        return 1;
                }
                msgs[i] = c.msg;
                lens[i] = c.msg_len;
        }

        for (int mode = 0; mode < 2; mode++) {
                double *per = calloc((size_t) rounds, sizeof(double));
                if (!per)
                        return 1;
                for (int r = 0; r < rounds; r++) {
                        int64_t t0 = clock_ns(CLOCK_MONOTONIC);
                        for (int k = 0; k < REPEAT; k++)
                                for (int i = 0; i < n; i++)
                                        if ((mode == 0 ? parse_and_fingerprint(msgs[i], lens[i])
                                                       : capture_parse_and_fingerprint(
                                                                 v[i].hello, v[i].hello_len)) < 0) {
                                                fprintf(stderr, "%s: failed\n", v[i].name);
                                                return 1;
                                        }
                        per[r] = (double) (clock_ns(CLOCK_MONOTONIC) - t0) / (REPEAT * n);
                }
                qsort(per, (size_t) rounds, sizeof(double), compare_double);
                printf("%s: %.0f ns per hello (median of %d rounds of %d x %d hellos; min %.0f, max %.0f)\n",
                       mode == 0 ? "parse + all fingerprints" : "capture + parse + all fingerprints",
                       per[rounds / 2],
                       rounds,
                       REPEAT,
                       n,
                       per[0],
                       per[rounds - 1]);
                free(per);
        }

        for (int i = 0; i < n; i++)
                free(msgs[i]);
        free(msgs);
        free(lens);
        corpus_free(v, (size_t) n);
        return 0;
}
