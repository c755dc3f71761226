/* SPDX-License-Identifier: MIT */
/* The server's in-memory record of recent attempts (recent.c): per client key (IPv6 by /64), in
 * started_us order, bounded per client and overall, references that outlive eviction, and many threads
 * adding and reading at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recent.h"
#include "tap.h"

/* A setup step that must work (not a check of its own). */
#define must(x)                                              \
        do {                                                 \
                if ((x) != 0) {                              \
                        printf("Bail out! %s failed\n", #x); \
                        exit(EXIT_FAILURE);                  \
                }                                            \
        } while (0)

static Attempt make(const char *addr, int64_t started_us, Outcome o) {
        Attempt a = {.started_us = started_us, .outcome = o, .alert_received = -1, .alert_sent = -1};

        (void) snprintf(a.peer_addr, sizeof a.peer_addr, "%s", addr);
        return a;
}

static void test_per_client(void) {
        _cleanup_(recent_record_freep) RecentRecord *r = NULL;
        RecentEntry *got[RECENT_PER_CLIENT];
        Attempt a;
        size_t n;
        bool sorted = true;

        must(recent_record_new(&r));
        is_int(recent_record_get(r, "192.0.2.1", NULL, got, NULL), 0, "nothing held for a new client");

        /* recorded when they end: out of started_us order */
        a = make("192.0.2.1", 3000, OUTCOME_OK);
        must(recent_record_add(r, &a));
        a = make("192.0.2.1", 1000, OUTCOME_PEER_ALERT);
        must(recent_record_add(r, &a));
        a = make("192.0.2.2", 2000, OUTCOME_OK);
        must(recent_record_add(r, &a));
        n = recent_record_get(r, "192.0.2.1", NULL, got, NULL);
        is_int(n, 2, "two attempts for 192.0.2.1, not the other address's");
        ok(n == 2 && got[0]->attempt->started_us == 1000 && got[1]->attempt->started_us == 3000,
           "in started_us order");
        recent_entries_unref(got, n);

        /* IPv6: one client per /64, as tlsreport's key */
        a = make("2001:db8:1:2::7", 10, OUTCOME_OK);
        must(recent_record_add(r, &a));
        a = make("2001:db8:1:2:ffff::1", 20, OUTCOME_OK);
        must(recent_record_add(r, &a));
        a = make("2001:db8:1:3::7", 30, OUTCOME_OK);
        must(recent_record_add(r, &a));
        n = recent_record_get(r, "2001:db8:1:2::99", NULL, got, NULL);
        is_int(n, 2, "two addresses of one /64 are one client");
        recent_entries_unref(got, n);

        /* the ring: the last RECENT_PER_CLIENT stay */
        for (int i = 0; i < RECENT_PER_CLIENT + 10; i++) {
                a = make("198.51.100.1", 1000 * (i + 1), OUTCOME_NO_DATA);
                must(recent_record_add(r, &a));
        }
        n = recent_record_get(r, "198.51.100.1", NULL, got, NULL);
        is_int(n, RECENT_PER_CLIENT, "at most RECENT_PER_CLIENT attempts per client");
        for (size_t i = 1; i < n; i++)
                sorted = sorted && got[i - 1]->attempt->started_us < got[i]->attempt->started_us;
        ok(n > 0 && sorted && got[0]->attempt->started_us == 1000 * 11, "the oldest ones made room");

        /* references outlive what the record drops */
        for (int i = 0; i < RECENT_PER_CLIENT; i++) {
                a = make("198.51.100.1", 1000000 + i, OUTCOME_OK);
                must(recent_record_add(r, &a));
        }
        is_int(got[0]->attempt->started_us, 1000 * 11, "a held reference still reads its attempt");
        recent_entries_unref(got, n);
}

/* The record keeps only what grouping reads: nothing that the page must not show of one client to another. */
static void test_kept(void) {
        _cleanup_(recent_record_freep) RecentRecord *r = NULL;
        RecentEntry *got[RECENT_PER_CLIENT];
        char big[8192], sni[1000];
        Attempt a = make("192.0.2.9", 1, OUTCOME_PEER_ALERT);
        const Attempt *x;
        size_t n;

        must(recent_record_new(&r));
        memset(big, 'a', sizeof big);
        memcpy(big, "curl/8.14.1 ", 12);
        memset(sni, 'h', sizeof sni);
        a.ja4_stable = (char *) "t13d1516h2_8daaf6152771";
        a.ja3_full = (char *) "771,4865-4866,0-23,29-23,0";
        a.ja4 = (char *) "t13d1516h2_8daaf6152771_02713d6af862";
        a.user_agent = (RawString){big, sizeof big};
        a.alpn_offered = (RawString){(char *) "h2", 2};
        a.sni = (RawString){sni, sizeof sni};
        a.error_text = (char *) "fatal alert received";
        a.peer_port = 40001;
        a.local_port = 8443;
        a.alert_received = 46;
        a.tls_error = -0x7780;
        a.bytes_in = 517;
        must(recent_record_add(r, &a));
        n = recent_record_get(r, "192.0.2.9", NULL, got, NULL);
        if (!ok(n == 1, "held")) {
                recent_entries_unref(got, n);
                return;
        }
        x = got[0]->attempt;
        ok(!x->user_agent.data && !x->ja3_full && !x->ja4 && !x->alpn_offered.data && !x->error_text &&
                   x->peer_port == 0 && x->local_port == 0,
           "no User-Agent, JA3 string, JA4, ALPN, error text or port is kept");
        ok(streq_ptr(x->ja4_stable, a.ja4_stable) && x->alert_received == 46 && x->tls_error == -0x7780 &&
                   x->bytes_in == 517 && x->outcome == OUTCOME_PEER_ALERT && x->started_us == a.started_us,
           "what grouping reads is kept");
        ok(x->sni.len == RECENT_SNI_MAX && memcmp(x->sni.data, sni, RECENT_SNI_MAX) == 0,
           "the SNI (part of the key) is kept, cut to %d bytes",
           RECENT_SNI_MAX);
        recent_entries_unref(got, n);
}

static void test_bounded(void) {
        _cleanup_(recent_record_freep) RecentRecord *r = NULL;
        RecentEntry *got[RECENT_PER_CLIENT];
        unsigned clients = 0, latest = 0;
        char addr[46];

        must(recent_record_new(&r));
        for (unsigned i = 0; i < 4 * RECENT_BUCKETS * RECENT_WAYS; i++) {
                Attempt a;

                (void) snprintf(addr, sizeof addr, "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
                a = make(addr, 1000 + i, OUTCOME_OK);
                must(recent_record_add(r, &a));
        }
        for (unsigned i = 0; i < 4 * RECENT_BUCKETS * RECENT_WAYS; i++) {
                size_t n;

                (void) snprintf(addr, sizeof addr, "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
                n = recent_record_get(r, addr, NULL, got, NULL);
                clients += n > 0;
                latest += n > 0 && i >= 3 * RECENT_BUCKETS * RECENT_WAYS;
                recent_entries_unref(got, n);
        }
        ok(clients <= RECENT_BUCKETS * RECENT_WAYS,
           "at most %u clients held (%u)",
           RECENT_BUCKETS * RECENT_WAYS,
           clients);
        ok(latest > RECENT_BUCKETS,
           "the most recently active clients are the ones held (%u of the last %u)",
           latest,
           RECENT_BUCKETS * RECENT_WAYS);
}

/* A flood of connections that send nothing (a scanner from many addresses) does not push out a client
 * with a ClientHello; a flood of real clients does, and the record says so when the client comes back. */
static void test_lost(void) {
        _cleanup_(recent_record_freep) RecentRecord *r = NULL;
        RecentEntry *got[RECENT_PER_CLIENT];
        unsigned total = 8 * RECENT_BUCKETS * RECENT_WAYS;
        int64_t now = 1000 * USEC_PER_SEC, lost_us = -1;
        char addr[46];
        Attempt a;
        size_t n;

        must(recent_record_new(&r));
        for (unsigned k = 0; k < 2; k++) { /* two rejections of our certificate */
                a = make("192.0.2.77", now + k, OUTCOME_PEER_ALERT);
                a.ja4_stable = (char *) "t13d1516h2_8daaf6152771";
                must(recent_record_add(r, &a));
        }
        for (unsigned i = 0; i < total; i++) {
                (void) snprintf(addr, sizeof addr, "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
                a = make(addr, now + 10 + i, OUTCOME_NO_DATA);
                must(recent_record_add(r, &a));
        }
        n = recent_record_get(r, "192.0.2.77", NULL, got, &lost_us);
        ok(n == 2 && lost_us == 0,
           "%u connections without a ClientHello from as many addresses: "
           "the client's 2 attempts are all held",
           total);
        recent_entries_unref(got, n);

        for (unsigned i = 0; i < total; i++) {
                (void) snprintf(addr, sizeof addr, "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
                a = make(addr, now + 10 + total + i, OUTCOME_PEER_ALERT);
                a.ja4_stable = (char *) "t13d1516h2_8daaf6152771";
                must(recent_record_add(r, &a));
        }
        n = recent_record_get(r, "192.0.2.77", NULL, got, &lost_us);
        recent_entries_unref(got, n);
        ok(n == 0 && lost_us >= now + 1,
           "%u other clients with a ClientHello pushed it out: "
           "nothing held, and that attempts were lost is known",
           total);
        a = make("192.0.2.77", now + 20 * USEC_PER_SEC, OUTCOME_OK);
        a.ja4_stable = (char *) "t13d1516h2_8daaf6152771";
        must(recent_record_add(r, &a));
        n = recent_record_get(r, "192.0.2.77", NULL, got, &lost_us);
        recent_entries_unref(got, n);
        ok(n == 1 && lost_us >= now + 1, "when it comes back, its history is marked as possibly incomplete");

        r = recent_record_free(r);
        must(recent_record_new(&r));
        for (unsigned k = 0; k < RECENT_PER_CLIENT + 1; k++) {
                a = make("192.0.2.78", now + k, OUTCOME_PEER_ALERT);
                a.ja4_stable = (char *) "t13d1516h2_8daaf6152771";
                must(recent_record_add(r, &a));
        }
        n = recent_record_get(r, "192.0.2.78", "t13d1516h2_8daaf6152771", got, &lost_us);
        recent_entries_unref(got, n);
        ok(n == RECENT_PER_CLIENT && lost_us == now,
           "a client with more than %d attempts: its oldest one is lost, and that is known",
           RECENT_PER_CLIENT);
        n = recent_record_get(r, "192.0.2.78", "t13d3112h2_e8f1e7e78f70", got, &lost_us);
        recent_entries_unref(got, n);
        ok(lost_us == 0,
           "to another program of the same address (another fingerprint), nothing of its own was lost");

        /* curl fails, then succeeds; 32 attempts of Python from the same address push both out: what curl
         * lost belonged to a finished sequence (test-clients: curl's page after Python's 40 rejections) */
        r = recent_record_free(r);
        must(recent_record_new(&r));
        a = make("192.0.2.79", now, OUTCOME_PEER_ALERT);
        a.ja4_stable = (char *) "t13d3112h2_e8f1e7e78f70";
        must(recent_record_add(r, &a));
        a = make("192.0.2.79", now + 1, OUTCOME_OK);
        a.ja4_stable = (char *) "t13d3112h2_e8f1e7e78f70";
        must(recent_record_add(r, &a));
        for (unsigned k = 0; k < RECENT_PER_CLIENT; k++) {
                a = make("192.0.2.79", now + 2 + k, OUTCOME_PEER_ALERT);
                a.ja4_stable = (char *) "t13d1516h2_8daaf6152771";
                must(recent_record_add(r, &a));
        }
        n = recent_record_get(r, "192.0.2.79", "t13d3112h2_e8f1e7e78f70", got, &lost_us);
        recent_entries_unref(got, n);
        ok(n == RECENT_PER_CLIENT && lost_us == 0,
           "a fingerprint's failure and the success that ended its sequence both dropped: "
           "nothing of a later sequence of it is missing");
}

typedef struct Worker {
        RecentRecord *r;
        unsigned index;
        unsigned long seen;
} Worker;

static void *worker(void *userdata) {
        Worker *w = userdata;
        RecentEntry *got[RECENT_PER_CLIENT];
        char addr[46];

        for (unsigned i = 0; i < 20000; i++) {
                Attempt a;
                size_t n;

                (void) snprintf(addr, sizeof addr, "203.0.113.%u", (i * 7 + w->index) % 64);
                a = make(addr, i, OUTCOME_OK);
                (void) recent_record_add(w->r, &a);
                n = recent_record_get(w->r, addr, NULL, got, NULL);
                for (size_t k = 0; k < n; k++)
                        w->seen += streq(got[k]->attempt->peer_addr, addr);
                recent_entries_unref(got, n);
        }
        return NULL;
}

static void test_threads(void) {
        _cleanup_(recent_record_freep) RecentRecord *r = NULL;
        pthread_t t[4];
        Worker w[4];
        bool all = true;

        must(recent_record_new(&r));
        for (unsigned i = 0; i < 4; i++) {
                w[i] = (Worker){.r = r, .index = i};
                must(pthread_create(&t[i], NULL, worker, &w[i]));
        }
        for (unsigned i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                all = all && w[i].seen >= 20000;
        }
        ok(all, "4 threads adding and reading at once: each reads its own attempts back");
}

int main(void) {
        test_per_client();
        test_kept();
        test_bounded();
        test_lost();
        test_threads();
        return tap_done();
}
