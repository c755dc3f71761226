/* SPDX-License-Identifier: MIT */
/* The traffic the benchmark generators make (gen-attempts.c: a database; gen-journal-export.c: journal
 * export streams): episodes of attempts as real clients make them against tlswatchd with an untrusted
 * certificate: Chromium-like clients (alert 46 bursts around a success, resumed hellos among them), clean
 * clients, Firefox's alert 42, probes, plain HTTP, version mismatches. Include it once; define
 * insert(const Row *), which gets every row in order (gen_row_to_attempt() makes it an attempt). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "attempt.h"

#define CHROME_FRESH "t13d1516h2_8daaf6152771_02713d6af862"
#define CHROME_RESUMED "t13d1517h2_8daaf6152771_b1ff8ab2d16f"
#define CHROME_STABLE "t13d15_8daaf6152771_0123456789ab"
#define CHROME_UA                                                                                  \
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 " \
        "Safari/537.36"
#define FIREFOX_FULL "t13d1715h2_5b57614c22b0_3d5424432f57"
#define FIREFOX_STABLE "t13d17_5b57614c22b0_93fa27f9c4d1"
#define FIREFOX_UA "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"
#define CURL_FULL "t13d3112h2_e8f1e7e78f70_6bebaf5329ac"
#define CURL_STABLE "t13d31_e8f1e7e78f70_4c8a1f2e0b7d"
#define CURL_UA "curl/7.88.1"
#define OLD_FULL "t12d1207h1_c866b44c5a26_7fd5fd3a4d3b"
#define OLD_STABLE "t12d12_c866b44c5a26_aa57c2f1d0e3"

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static unsigned rnd_below(unsigned n) {
        return (unsigned) (rnd() % n);
}

typedef struct Row {
        int64_t started_us;
        const char *addr;
        const char *outcome, *state;
        int alert_received, alert_sent, tls_error;
        const char *ja4, *ja4_stable, *ua, *version, *sni;
        bool resumed;
} Row;

/* The attempt a row stands for. Its strings point into r and static strings: do not free them. */
static void gen_row_to_attempt(const Row *r, Attempt *ret) {
        Attempt a;

        attempt_init(&a);
        a.started_us = r->started_us;
        a.ended_us = r->started_us + 3000 + rnd_below(30000);
        (void) snprintf(a.peer_addr, sizeof a.peer_addr, "%s", r->addr);
        a.peer_port = (uint16_t) (32768 + rnd_below(28000));
        (void) snprintf(a.local_addr, sizeof a.local_addr, "127.0.0.1");
        a.local_port = 8443;
        a.outcome = outcome_from_string(r->outcome);
        a.state_reached = handshake_step_from_string(r->state);
        a.alert_received = r->alert_received >= 0 ? r->alert_received : -1;
        a.alert_sent = r->alert_sent >= 0 ? r->alert_sent : -1;
        a.tls_error = r->tls_error;
        a.error_text = r->tls_error ? (char *) "fatal alert received" : NULL;
        a.offered_versions = r->ja4 ? (char *) "TLSv1.3,TLSv1.2" : NULL;
        a.version = (char *) r->version;
        a.cipher = r->version ? (char *) "TLS_AES_128_GCM_SHA256" : NULL;
        if (r->sni)
                a.sni = (RawString){.data = (char *) r->sni, .len = strlen(r->sni)};
        if (r->ja4)
                a.alpn_offered = (RawString){.data = (char *) "h2,http/1.1", .len = 11};
        if (r->version)
                a.alpn = (RawString){.data = (char *) "http/1.1", .len = 8};
        a.ja3 = r->ja4 ? (char *) "cd08e31494f9531f560d64c695473da9" : NULL;
        a.ja4 = (char *) r->ja4;
        a.ja4_stable = (char *) r->ja4_stable;
        a.resumed = r->resumed;
        a.bytes_in = r->ja4 ? 1800 : 0;
        a.bytes_out = r->version ? 1500 : 0;
        a.http_requests = r->ua ? 1 : 0;
        if (r->ua)
                a.user_agent = (RawString){.data = (char *) r->ua, .len = strlen(r->ua)};
        *ret = a;
}

/* What the generator does with each row: returns 0, or a negative errno to stop. */
static int insert(const Row *r);

static void client_addr(char buf[static 46]) {
        unsigned c = rnd_below(20000);

        if (c % 10 == 0)
                (void) snprintf(buf, 46, "2001:db8:%x:%x::%x", c >> 8, c & 255, rnd_below(65536));
        else
                (void) snprintf(buf, 46, "10.%u.%u.%u", (c >> 16) & 255, (c >> 8) & 255, c & 255);
}

/* One episode at t; returns the number of rows written. */
static int episode(int64_t t) {
        char addr[46];
        unsigned kind = rnd_below(100);
        Row r = {.addr = addr, .alert_received = -1, .alert_sent = -1, .sni = "localhost"};

        client_addr(addr);
        if (kind < 35) {
                /* Chromium after "Proceed": 1-3 alert-46 failures then ok, sometimes a straggler */
                unsigned fails = 1 + rnd_below(3);
                bool resumed = rnd_below(4) == 0;

                for (unsigned i = 0; i < fails; i++) {
                        r = (Row){
                                .started_us = t,
                                .addr = addr,
                                .outcome = "peer_alert",
                                .state = "server_flight",
                                .alert_received = 46,
                                .alert_sent = -1,
                                .tls_error = -30592,
                                .ja4 = resumed && i > 0 ? CHROME_RESUMED : CHROME_FRESH,
                                .ja4_stable = CHROME_STABLE,
                                .sni = "localhost",
                                .resumed = resumed && i > 0};
                        if (insert(&r) < 0)
                                return -EIO;
                        t += 5000 + rnd_below(50000);
                }
                r = (Row){
                        .started_us = t,
                        .addr = addr,
                        .outcome = "ok",
                        .state = "done",
                        .alert_received = -1,
                        .alert_sent = -1,
                        .ja4 = CHROME_FRESH,
                        .ja4_stable = CHROME_STABLE,
                        .ua = CHROME_UA,
                        .version = "TLSv1.3",
                        .sni = "localhost"};
                if (insert(&r) < 0)
                        return -EIO;
                if (rnd_below(5) == 0) {
                        r = (Row){
                                .started_us = t + 3000,
                                .addr = addr,
                                .outcome = "peer_alert",
                                .state = "server_flight",
                                .alert_received = 46,
                                .alert_sent = -1,
                                .tls_error = -30592,
                                .ja4 = CHROME_FRESH,
                                .ja4_stable = CHROME_STABLE,
                                .sni = "localhost"};
                        if (insert(&r) < 0)
                                return -EIO;
                }
        } else if (kind < 75) {
                bool firefox = rnd_below(2);

                r = (Row){
                        .started_us = t,
                        .addr = addr,
                        .outcome = "ok",
                        .state = "done",
                        .alert_received = -1,
                        .alert_sent = -1,
                        .ja4 = firefox ? FIREFOX_FULL : CURL_FULL,
                        .ja4_stable = firefox ? FIREFOX_STABLE : CURL_STABLE,
                        .ua = firefox ? FIREFOX_UA : CURL_UA,
                        .version = "TLSv1.3",
                        .sni = "localhost"};
                if (insert(&r) < 0)
                        return -EIO;
        } else if (kind < 80) {
                /* Firefox without an exception: three alert 42 */
                for (unsigned i = 0; i < 3; i++) {
                        r = (Row){
                                .started_us = t,
                                .addr = addr,
                                .outcome = "peer_alert",
                                .state = "server_flight",
                                .alert_received = 42,
                                .alert_sent = -1,
                                .tls_error = -30592,
                                .ja4 = FIREFOX_FULL,
                                .ja4_stable = FIREFOX_STABLE,
                                .sni = "localhost"};
                        if (insert(&r) < 0)
                                return -EIO;
                        t += 20000 + rnd_below(300000);
                }
        } else if (kind < 90) {
                r = (Row){
                        .started_us = t,
                        .addr = addr,
                        .outcome = "no_data",
                        .state = "connected",
                        .alert_received = -1,
                        .alert_sent = -1};
                if (insert(&r) < 0)
                        return -EIO;
        } else if (kind < 95) {
                r = (Row){
                        .started_us = t,
                        .addr = addr,
                        .outcome = "not_tls",
                        .state = "connected",
                        .alert_received = -1,
                        .alert_sent = -1,
                        .tls_error = -29312};
                if (insert(&r) < 0)
                        return -EIO;
        } else {
                r = (Row){
                        .started_us = t,
                        .addr = addr,
                        .outcome = "tls_error",
                        .state = "client_hello",
                        .alert_received = -1,
                        .alert_sent = 70,
                        .tls_error = -28928,
                        .ja4 = OLD_FULL,
                        .ja4_stable = OLD_STABLE,
                        .sni = "localhost"};
                if (insert(&r) < 0)
                        return -EIO;
        }
        return 0;
}
