/* SPDX-License-Identifier: MIT */
/* libFuzzer target: raw client bytes through the record scanner, the ClientHello capture (whole and in
 * chunks, which must agree), the parser and all fingerprints; and the same bytes straight into the
 * parser as a handshake message. Built with -Dfuzz=true (clang); fuzz-replay.c replays the corpus as an
 * ordinary test. */

#include <psa/crypto.h>

#include "fingerprint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fingerprint_all(const ClientHello *ch) {
        Fingerprints f;
        Attempt *a;

        if (fingerprint_compute(ch, &f) >= 0) {
                if (strlen(f.ja4) != JA4_SIZE - 1 || strlen(f.ja4_o) != JA4_SIZE - 1 ||
                    strlen(f.ja3) != JA3_HASH_SIZE - 1 || strlen(f.ja4_stable) != JA4_STABLE_SIZE - 1)
                        abort();
                fingerprints_done(&f);
        }
        a = attempt_new();
        if (a) {
                (void) fingerprint_fill_attempt(ch, a);
                attempt_free(a);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool initialized = false;
        ClientHelloCapture whole, chunked;
        RecordScanner scanner;
        ClientHello ch;
        size_t chunk = 1 + size % 7;

        if (!initialized) {
                if (psa_crypto_init() != PSA_SUCCESS)
                        abort();
                initialized = true;
        }

        record_scanner_init(&scanner);
        record_scanner_feed(&scanner, data, size);
        if (scanner.bytes != size)
                abort();

        clienthello_capture_init(&whole);
        clienthello_capture_init(&chunked);
        (void) clienthello_capture_feed(&whole, data, size);
        for (size_t o = 0; o < size; o += chunk)
                (void) clienthello_capture_feed(&chunked, data + o, MIN(chunk, size - o));

        /* Chunking must not change anything. */
        if (whole.state != chunked.state || whole.msg_len != chunked.msg_len ||
            (whole.msg_len > 0 && memcmp(whole.msg, chunked.msg, whole.msg_len) != 0) ||
            whole.scanner.records != scanner.records || chunked.scanner.records != scanner.records ||
            whole.scanner.alert_description != scanner.alert_description ||
            chunked.scanner.alert_description != scanner.alert_description)
                abort();

        if (whole.state == CAPTURE_COMPLETE && clienthello_parse(whole.msg, whole.msg_len, &ch) >= 0)
                fingerprint_all(&ch);
        clienthello_capture_done(&whole);
        clienthello_capture_done(&chunked);

        /* The bytes as a handshake message, on an exactly sized heap copy so that ASan sees overreads. */
        uint8_t *copy = malloc(MAX(size, (size_t) 1));
        if (!copy)
                return 0;
        if (size > 0)
                memcpy(copy, data, size);
        if (clienthello_parse(copy, size, &ch) >= 0)
                fingerprint_all(&ch);
        free(copy);
        return 0;
}
