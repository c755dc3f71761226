/* SPDX-License-Identifier: MIT */
/* Sends a fixed set of attempt records to journald through the daemon's JournalSink, for
 * tests/integration/journal-fields.py, which knows what each entry must hold. Peer ports 40001..40008
 * tell the records apart. Usage: journal-send all|failures|none. Prints "sent N". */

#include "attempt.h"
#include "journal.h"
#include "log.h"

#define T0 INT64_C(1764201600000000)

static int set_str(char **p, const char *s) {
        free(*p);
        *p = strdup(s);
        return *p ? 0 : -ENOMEM;
}

static void fill_common(Attempt *a, uint16_t peer_port) {
        a->started_us = T0 + peer_port;
        a->ended_us = T0 + peer_port + 25000;
        strcpy(a->peer_addr, "127.0.0.1");
        a->peer_port = peer_port;
        strcpy(a->local_addr, "127.0.0.1");
        a->local_port = 8443;
}

/* Builds record number i (0-based); returns 0, -ENOENT past the last, or -ENOMEM. */
static int make_attempt(unsigned i, Attempt *a) {
        static const char sni_hostile[] = "evil\x1b[31m\n\0\xff\xfe.example";
        static const char alpn_hostile[] = "h2\0\x01\x80\xc3\x28\r\n";
        static const char ua_hostile[] = "Mozilla\r\nX-Evil: \x00\x07\xe2\x80\xae\xc3";
        int r = 0;

        fill_common(a, 40001 + i);
        switch (i) {
        case 0: /* curl -k: success, resumed, two requests */
                a->id = 7;
                a->outcome = OUTCOME_OK;
                a->state_reached = STEP_DONE;
                r |= set_str(&a->offered_versions, "TLSv1.3,TLSv1.2");
                r |= set_str(&a->version, "TLSv1.3");
                r |= set_str(&a->cipher, "TLS1-3-AES-256-GCM-SHA384");
                r |= raw_string_set(&a->sni, "localhost", 9);
                r |= raw_string_set(&a->alpn_offered, "h2,http/1.1", 11);
                r |= raw_string_set(&a->alpn, "h2", 2);
                r |= set_str(&a->ja3, "0123456789abcdef0123456789abcdef");
                r |= set_str(&a->ja3_full, "771,4866-4867,0-23-65281,29-23,0");
                r |= set_str(&a->ja4, "t13d1517h2_8daaf6152771_cb7bf5808d99");
                r |= set_str(&a->ja4_r, "t13d1517h2_002f,0035_0000,000a");
                r |= set_str(&a->ja4_o, "t13d1517h2_acb858a92679_0a1b2c3d4e5f");
                r |= set_str(&a->ja4_ro, "t13d1517h2_1301,1302_0000,000a");
                r |= set_str(&a->ja4_stable, "t13d15_8daaf6152771_e5627efa2ab1");
                a->resumed = true;
                a->bytes_in = 2345;
                a->bytes_out = 6789;
                a->http_requests = 2;
                r |= raw_string_set(&a->user_agent, "curl/7.88.1", 11);
                break;
        case 1: /* Chromium rejecting our certificate */
                a->outcome = OUTCOME_PEER_ALERT;
                a->state_reached = STEP_SERVER_FLIGHT;
                a->alert_received = 46;
                a->tls_error = -0x7780;
                r |= set_str(&a->error_text, "fatal alert received");
                r |= set_str(&a->version, "TLSv1.3");
                r |= set_str(&a->ja4, "t13d1517h2_8daaf6152771_cb7bf5808d99");
                a->bytes_in = 1800;
                a->bytes_out = 1100;
                break;
        case 2: /* TLS 1.0-only client */
                a->outcome = OUTCOME_TLS_ERROR;
                a->state_reached = STEP_CLIENT_HELLO;
                a->alert_sent = 70;
                a->tls_error = -0x6E80;
                r |= set_str(&a->offered_versions, "TLSv1.0");
                a->hello_retry = false;
                a->bytes_in = 180;
                a->bytes_out = 7;
                break;
        case 3: /* port check */
                a->outcome = OUTCOME_NO_DATA;
                a->state_reached = STEP_CONNECTED;
                a->tls_error = -0x7280;
                break;
        case 4: /* stalled IPv6 client */
                strcpy(a->peer_addr, "::1");
                strcpy(a->local_addr, "::1");
                a->outcome = OUTCOME_TIMEOUT;
                a->state_reached = STEP_CONNECTED;
                a->bytes_in = 3;
                break;
        case 5: /* hostile strings, failed */
                a->outcome = OUTCOME_PEER_CLOSED;
                a->state_reached = STEP_CLIENT_HELLO;
                r |= raw_string_set(&a->sni, sni_hostile, sizeof sni_hostile - 1);
                r |= raw_string_set(&a->alpn_offered, alpn_hostile, sizeof alpn_hostile - 1);
                break;
        case 6: /* hostile strings, success: ALPN shows in MESSAGE */
                a->outcome = OUTCOME_OK;
                a->state_reached = STEP_DONE;
                r |= set_str(&a->version, "TLSv1.2");
                r |= set_str(&a->cipher, "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
                r |= raw_string_set(&a->sni, sni_hostile, sizeof sni_hostile - 1);
                r |= raw_string_set(&a->alpn_offered, alpn_hostile, sizeof alpn_hostile - 1);
                r |= raw_string_set(&a->alpn, alpn_hostile, sizeof alpn_hostile - 1);
                a->hello_retry = true;
                a->http_requests = 1;
                r |= raw_string_set(&a->user_agent, ua_hostile, sizeof ua_hostile - 1);
                break;
        case 7: { /* a long, binary User-Agent: 16 KiB of every byte value */
                char ua[16384];

                for (size_t k = 0; k < sizeof ua; k++)
                        ua[k] = (char) (k & 0xff);
                a->outcome = OUTCOME_OK;
                a->state_reached = STEP_DONE;
                a->http_requests = 1;
                r |= raw_string_set(&a->user_agent, ua, sizeof ua);
                break;
        }
        case 8: /* a completed handshake whose request was refused (--backend-protocol http) */
                a->outcome = OUTCOME_OK;
                a->state_reached = STEP_DONE;
                r |= set_str(&a->backend_error, "request refused (400): a bare LF in the head");
                break;
        default: return -ENOENT;
        }
        return r < 0 ? -ENOMEM : 0;
}

/* Sends every record through the daemon's JournalSink; returns how many the mode let through, or a
 * negative errno. */
static int send_all(JournalMode mode) {
        _cleanup_(journal_sink_freep) JournalSink *sink = NULL;
        int sent = 0, r;

        r = journal_sink_new(mode, 64, &sink);
        if (r < 0)
                return log_error_errno(r, "Failed to start the journal sender: %m");

        for (unsigned i = 0;; i++) {
                _cleanup_(attempt_freep) Attempt *a = attempt_new();

                if (!a)
                        return log_oom();
                r = make_attempt(i, a);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        return log_oom();
                r = journal_sink_submit(sink, a);
                if (r < 0)
                        return log_error_errno(r, "Failed to queue attempt %u: %m", i);
                sent += r;
        }
        sink = journal_sink_free(sink); /* sends everything queued */
        return sent;
}

int main(int argc, char *argv[]) {
        JournalMode mode;
        int r;

        log_setup("journal-send");
        if (argc != 2 || (mode = journal_mode_from_string(argv[1])) < 0) {
                fprintf(stderr, "Usage: %s all|failures|none\n", argv[0]);
                return 2;
        }
        r = send_all(mode);
        if (r < 0)
                return 1;
        printf("sent %d\n", r);
        return 0;
}
