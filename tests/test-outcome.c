/* SPDX-License-Identifier: MIT */
/* core/outcome: how an attempt ended, row by row. The inbound stream of each row is real bytes fed
 * through the ClientHello capture, as conn.c feeds it; the Mbed TLS error codes, alerts and texts are
 * those the daemon records for the same client (tests/integration/test-record.py, test-clients.py,
 * test-daemon.py, tlswatchd(8)), or, where no test covers them, what tlswatchd recorded when the same
 * bytes were sent to it by hand (noted "measured"). */
#include <stdlib.h>
#include <string.h>

#include "hello-util.h"
#include "outcome.h"
#include "tap.h"

/* Mbed TLS codes only the rows use (outcome.h names those the rules tell apart). */
#define ERR_SSL_UNEXPECTED_MESSAGE (-0x7700)
#define ERR_SSL_BAD_INPUT_DATA (-0x7100)

/* Alerts in rows: ALERT(n) is alert n, 0 (the default) is none. */
#define ALERT(n) ((n) + 1)

typedef enum Stage {
        FAILED,    /* outcome_handshake_failed() */
        TIMED_OUT, /* outcome_handshake_timed_out() */
        DONE,      /* outcome_handshake_done() */
        ABORTED,   /* outcome_handshake_aborted() */
        HTTP_END,  /* outcome_http_ended() after a completed handshake */
} Stage;

/* What the client sent, as bytes. */
typedef enum Inbound {
        IN_NOTHING,
        IN_HELLO,                 /* a complete modern ClientHello (GREASE, x25519, TLS 1.3) */
        IN_HALF_HELLO,            /* its first half */
        IN_HELLO_FATAL_ALERT_46,  /* the hello, then a plaintext fatal certificate_unknown alert */
        IN_HELLO_WARNING_ALERT,   /* the hello, then a plaintext warning user_canceled alert */
        IN_HELLO_ENCRYPTED_ALERT, /* the hello, ChangeCipherSpec, then an encrypted (26-byte) alert */
        IN_HTTP,                  /* "GET / HTTP/1.1" */
        IN_GE,                    /* "GE" */
        IN_SSH,                   /* an SSH banner */
        IN_BYTE_80,               /* one byte 0x80 */
        IN_SPLIT_HEADER,          /* the hello with its handshake header split across two records */
        IN_FFDHE_HELLO,           /* groups GREASE, ffdhe2048, ffdhe3072, 0x1234 */
        IN_NO_GROUPS_HELLO,       /* no supported_groups extension */
        IN_NOT_A_HELLO,           /* a handshake record holding a ServerHello header */
        IN_HUGE_HELLO,            /* a handshake header announcing 70000 bytes */
        IN_BIG_HELLO_PART,        /* 17384 of a 20000-byte hello, in two records */
        IN_BIG_HELLO,             /* the whole 20000-byte hello */
        IN_16MB_HELLO_HEADER,     /* one record of a hello whose header announces 16 MiB - 1 */
        IN_20000_HELLO_HEADER,    /* the first 200 bytes of a hello announcing 20000 bytes */
        IN_HELLO_NO_MEMORY,       /* half a hello, then the capture could not grow its buffer */
} Inbound;

typedef struct Row {
        const char *name;
        Stage stage;
        Inbound in;
        /* HandshakeFacts / HttpEndFacts */
        int tls_error;
        int alert_read, alert_sent_scanned, alert_pending; /* ALERT(n) or 0 */
        bool hello_seen, failed_in_hrr, local_fault, saw_cert, saw_finished, saw_hrr, drain_cut;
        int64_t timeout_us;
        uint32_t message_too_large; /* FAILED: a later handshake message announced this many bytes */
        const char *reason;         /* ABORTED */
        unsigned requests;          /* HTTP_END */
        size_t request_bytes;       /* HTTP_END */
        bool served_elsewhere;      /* HTTP_END */
        bool renegotiation_refused; /* HTTP_END */
        int64_t closed_after_us;    /* HTTP_END: closed_us - ended_us */
        /* expected */
        Outcome outcome;
        CloseKind close_kind;           /* returned, or (DONE, ABORTED, HTTP_END) the attempt's */
        int alert_received, alert_sent; /* ALERT(n) or 0 */
        int want_tls_error;
        const char *error_text;
        bool resumed, hello_retry;
} Row;

#define SEC (USEC_PER_SEC)

static const Row rows[] = {
        /* ---- a handshake step failed ---- */
        {"connect and close (test-record)",
         FAILED,
         IN_NOTHING,
         OUTCOME_ERR_SSL_CONN_EOF,
         .outcome = OUTCOME_NO_DATA,
         .close_kind = CLOSE_FIN,
         .want_tls_error = OUTCOME_ERR_SSL_CONN_EOF,
         .error_text = "connection closed without data"},
        {"connect and reset (measured)",
         FAILED,
         IN_NOTHING,
         OUTCOME_ERR_NET_CONN_RESET,
         .outcome = OUTCOME_NO_DATA,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_CONN_RESET,
         .error_text = "connection reset by the client"},
        {"half a hello then FIN (test-record)",
         FAILED,
         IN_HALF_HELLO,
         OUTCOME_ERR_SSL_CONN_EOF,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_FIN,
         .want_tls_error = OUTCOME_ERR_SSL_CONN_EOF,
         .error_text = "connection closed by the client"},
        {"curl without -k, TLS 1.3: plaintext alert 48, Mbed TLS says bad MAC (test-record)",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_INVALID_MAC,
         .alert_read = ALERT(48),
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(48),
         .want_tls_error = OUTCOME_ERR_SSL_INVALID_MAC,
         .error_text = "client sent fatal alert unknown_ca(48)"},
        {"curl without -k, TLS 1.2 (test-record)",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(48),
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(48),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "client sent fatal alert unknown_ca(48)"},
        {"gnutls-cli and Go reject the certificate: alert 42 (test-clients)",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(42),
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(42),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "client sent fatal alert bad_certificate(42)"},
        {"TLS 1.2 client resets after our certificate (test-record)",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_NET_CONN_RESET,
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_RESET,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_CONN_RESET,
         .error_text = "connection reset by the client"},
        {"TLS 1.2 client sends alert 46 then RST, Chromium (test-record): the alert from the drained bytes",
         FAILED,
         IN_HELLO_FATAL_ALERT_46,
         OUTCOME_ERR_NET_CONN_RESET,
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(46),
         .want_tls_error = OUTCOME_ERR_NET_CONN_RESET,
         .error_text = "client sent fatal alert certificate_unknown(46)"},
        {"a warning alert then RST: not a fatal alert",
         FAILED,
         IN_HELLO_WARNING_ALERT,
         OUTCOME_ERR_NET_CONN_RESET,
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_RESET,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_CONN_RESET,
         .error_text = "connection reset by the client"},
        {"TLS 1.3 hello then a plaintext warning alert: bad MAC (measured)",
         FAILED,
         IN_HELLO_WARNING_ALERT,
         OUTCOME_ERR_SSL_INVALID_MAC,
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_INVALID_MAC,
         .error_text = "Verification of the message MAC failed"},
        {"close_notify during the handshake: alert 0",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY,
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_CLOSE_NOTIFY,
         .alert_received = ALERT(0),
         .want_tls_error = OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY,
         .error_text = "connection closed by the client"},
        {"a fatal alert record with description 0",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(0),
         .hello_seen = true,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(0),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "connection closed by the client"},
        {"Firefox on TLS 1.2 with False Start: encrypted alert, then RST",
         FAILED,
         IN_HELLO_ENCRYPTED_ALERT,
         OUTCOME_ERR_NET_CONN_RESET,
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .want_tls_error = OUTCOME_ERR_NET_CONN_RESET,
         .error_text = "client sent an encrypted alert, then reset the connection"},
        {"encrypted alert, then FIN: closed",
         FAILED,
         IN_HELLO_ENCRYPTED_ALERT,
         OUTCOME_ERR_SSL_CONN_EOF,
         .hello_seen = true,
         .saw_cert = true,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_FIN,
         .want_tls_error = OUTCOME_ERR_SSL_CONN_EOF,
         .error_text = "connection closed by the client"},
        {"recv() failed after the hello: a reset",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_NET_RECV_FAILED,
         .hello_seen = true,
         .outcome = OUTCOME_PEER_RESET,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_RECV_FAILED,
         .error_text = "connection reset by the client"},
        {"send() failed before any byte came",
         FAILED,
         IN_NOTHING,
         OUTCOME_ERR_NET_SEND_FAILED,
         .outcome = OUTCOME_NO_DATA,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_SEND_FAILED,
         .error_text = "connection reset by the client"},
        {"recv() failed for lack of memory: ours",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_NET_RECV_FAILED,
         .hello_seen = true,
         .local_fault = true,
         .outcome = OUTCOME_SERVER_ERROR,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_RECV_FAILED,
         .error_text = "server error: NET - Reading information from the socket failed"},
        {"Mbed TLS out of memory",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_ALLOC_FAILED,
         .hello_seen = true,
         .outcome = OUTCOME_SERVER_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_ALLOC_FAILED,
         .error_text = "server error: SSL - Memory allocation failed"},
        {"Mbed TLS internal error",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_INTERNAL_ERROR,
         .hello_seen = true,
         .outcome = OUTCOME_SERVER_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_INTERNAL_ERROR,
         .error_text = "server error: SSL - Internal error (eg, unexpected failure in lower-level module)"},
        {"the capture ran out of memory: ours, even when the client then closed",
         FAILED,
         IN_HELLO_NO_MEMORY,
         OUTCOME_ERR_SSL_CONN_EOF,
         .outcome = OUTCOME_SERVER_ERROR,
         .close_kind = CLOSE_FIN,
         .want_tls_error = OUTCOME_ERR_SSL_CONN_EOF,
         .error_text = "server error: SSL - The connection indicated an EOF"},
        {"plain HTTP (test-record)",
         FAILED,
         IN_HTTP,
         OUTCOME_ERR_SSL_INVALID_RECORD,
         .outcome = OUTCOME_NOT_TLS,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_INVALID_RECORD,
         .error_text = "plain HTTP request on the TLS port (answered with HTTP 400)"},
        {"an SSH banner (measured)",
         FAILED,
         IN_SSH,
         OUTCOME_ERR_SSL_INVALID_RECORD,
         .outcome = OUTCOME_NOT_TLS,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_INVALID_RECORD,
         .error_text = "first bytes are not a TLS handshake record"},
        {"\"GE\" then FIN (measured): could be HTTP",
         FAILED,
         IN_GE,
         OUTCOME_ERR_SSL_CONN_EOF,
         .outcome = OUTCOME_NOT_TLS,
         .close_kind = CLOSE_FIN,
         .want_tls_error = OUTCOME_ERR_SSL_CONN_EOF,
         .error_text = "plain HTTP request on the TLS port (answered with HTTP 400)"},
        {"not TLS comes before a fault of ours",
         FAILED,
         IN_HTTP,
         OUTCOME_ERR_NET_RECV_FAILED,
         .local_fault = true,
         .outcome = OUTCOME_NOT_TLS,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_RECV_FAILED,
         .error_text = "plain HTTP request on the TLS port (answered with HTTP 400)"},
        {"a handshake record that is not a ClientHello (measured)",
         FAILED,
         IN_NOT_A_HELLO,
         ERR_SSL_UNEXPECTED_MESSAGE,
         .alert_sent_scanned = ALERT(10),
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .alert_sent = ALERT(10),
         .want_tls_error = ERR_SSL_UNEXPECTED_MESSAGE,
         .error_text = "ClientHello first handshake message is not a ClientHello"},
        {"a ClientHello announcing 70000 bytes: conn.c refuses it at its header",
         FAILED,
         IN_HUGE_HELLO,
         OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .error_text = "ClientHello of 70000 bytes is larger than Mbed TLS accepts (16384)"},
        {"a ClientHello announcing 16 MiB, one record of it sent: refused alike",
         FAILED,
         IN_16MB_HELLO_HEADER,
         OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .error_text = "ClientHello of 16777215 bytes is larger than Mbed TLS accepts (16384)"},
        {"the ClientHello after our HelloRetryRequest announcing 16 MiB (test-record)",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .hello_seen = true,
         .saw_hrr = true,
         .message_too_large = 0xffffff,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .error_text = "handshake message of 16777215 bytes is larger than Mbed TLS accepts (16384)",
         .hello_retry = true},
        {"200 bytes of a ClientHello announcing 20000: refused alike",
         FAILED,
         IN_20000_HELLO_HEADER,
         OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_BUFFER_TOO_SMALL,
         .error_text = "ClientHello of 20000 bytes is larger than Mbed TLS accepts (16384)"},
        {"17384 bytes of a 20000-byte ClientHello (measured)",
         FAILED,
         IN_BIG_HELLO_PART,
         ERR_SSL_BAD_INPUT_DATA,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = ERR_SSL_BAD_INPUT_DATA,
         .error_text = "ClientHello of 20000 bytes is larger than Mbed TLS accepts (16384)"},
        {"a whole 20000-byte ClientHello (measured): Mbed TLS's own words",
         FAILED,
         IN_BIG_HELLO,
         ERR_SSL_BAD_INPUT_DATA,
         .hello_seen = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = ERR_SSL_BAD_INPUT_DATA,
         .error_text = "Bad input parameters to function"},
        {"ClientHello's header split across records (tlswatchd(8))",
         FAILED,
         IN_SPLIT_HEADER,
         OUTCOME_ERR_SSL_INVALID_RECORD,
         .hello_seen = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_INVALID_RECORD,
         .error_text = "ClientHello's handshake header is split across TLS records (legal, RFC 8446 5.1), "
                       "which "
                       "Mbed TLS 3.6 cannot reassemble"},
        {"an invalid record after a whole, unsplit hello",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_INVALID_RECORD,
         .hello_seen = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_INVALID_RECORD,
         .error_text = "An invalid SSL record was received"},
        {"no key-exchange group in common (tlswatchd(8), test-clients): GREASE left out, unknown in hex",
         FAILED,
         IN_FFDHE_HELLO,
         OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .hello_seen = true,
         .failed_in_hrr = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .error_text = "no key-exchange group in common: the client offers ffdhe2048,ffdhe3072,0x1234"},
        {"no key-exchange group in common, no supported_groups at all",
         FAILED,
         IN_NO_GROUPS_HELLO,
         OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .hello_seen = true,
         .failed_in_hrr = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .want_tls_error = OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .error_text = "no key-exchange group in common: the client offers none we know"},
        {"no cipher in common (test-record): handshake_failure sent",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .alert_sent_scanned = ALERT(40),
         .hello_seen = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .alert_sent = ALERT(40),
         .want_tls_error = OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .error_text = "The handshake negotiation failed"},
        {"TLS 1.1-only client (test-record): protocol_version through Mbed TLS's pending alert",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_BAD_PROTOCOL_VERSION,
         .alert_pending = ALERT(70),
         .hello_seen = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .alert_sent = ALERT(70),
         .want_tls_error = OUTCOME_ERR_SSL_BAD_PROTOCOL_VERSION,
         .error_text = "Handshake protocol not within min/max boundaries"},
        {"the alert seen in our output comes before Mbed TLS's pending one",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .alert_sent_scanned = ALERT(40),
         .alert_pending = ALERT(70),
         .hello_seen = true,
         .outcome = OUTCOME_TLS_ERROR,
         .close_kind = CLOSE_SERVER,
         .alert_sent = ALERT(40),
         .want_tls_error = OUTCOME_ERR_SSL_HANDSHAKE_FAILURE,
         .error_text = "The handshake negotiation failed"},
        {"a failed resumption: our Finished without a Certificate",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_NET_CONN_RESET,
         .hello_seen = true,
         .saw_finished = true,
         .outcome = OUTCOME_PEER_RESET,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_CONN_RESET,
         .error_text = "connection reset by the client",
         .resumed = true},
        {"rejected after a HelloRetryRequest",
         FAILED,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(48),
         .hello_seen = true,
         .saw_hrr = true,
         .saw_cert = true,
         .saw_finished = true,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(48),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "client sent fatal alert unknown_ca(48)",
         .hello_retry = true},

        /* ---- the handshake timed out ---- */
        {"an idle socket (test-clients: \"sent nothing\")",
         TIMED_OUT,
         IN_NOTHING,
         .timeout_us = 10 * SEC,
         .outcome = OUTCOME_TIMEOUT,
         .close_kind = CLOSE_HANDSHAKE_TIMEOUT,
         .error_text = "client sent nothing within 10 s"},
        {"stalled client (test-record)",
         TIMED_OUT,
         IN_HALF_HELLO,
         .timeout_us = 2 * SEC,
         .outcome = OUTCOME_TIMEOUT,
         .close_kind = CLOSE_HANDSHAKE_TIMEOUT,
         .error_text = "handshake not completed within 2 s"},
        {"whole seconds in the text",
         TIMED_OUT,
         IN_HALF_HELLO,
         .timeout_us = 2500 * USEC_PER_MSEC,
         .outcome = OUTCOME_TIMEOUT,
         .close_kind = CLOSE_HANDSHAKE_TIMEOUT,
         .error_text = "handshake not completed within 2 s"},
        {"two bytes of plain HTTP, then silence (test-record)",
         TIMED_OUT,
         IN_GE,
         .timeout_us = 2 * SEC,
         .outcome = OUTCOME_NOT_TLS,
         .close_kind = CLOSE_HANDSHAKE_TIMEOUT,
         .error_text = "plain HTTP request on the TLS port (answered with HTTP 400)"},
        {"one byte 0x80, then silence (measured)",
         TIMED_OUT,
         IN_BYTE_80,
         .timeout_us = 2 * SEC,
         .outcome = OUTCOME_NOT_TLS,
         .close_kind = CLOSE_HANDSHAKE_TIMEOUT,
         .error_text = "first bytes are not a TLS handshake record"},
        {"the server drained (test-daemon: \"shut down\")",
         TIMED_OUT,
         IN_NOTHING,
         .timeout_us = 60 * SEC,
         .drain_cut = true,
         .outcome = OUTCOME_SERVER_ERROR,
         .close_kind = CLOSE_SHUTDOWN,
         .error_text = "server shut down before the handshake completed"},
        {"the server drained, not TLS anyway",
         TIMED_OUT,
         IN_GE,
         .timeout_us = 60 * SEC,
         .drain_cut = true,
         .outcome = OUTCOME_NOT_TLS,
         .close_kind = CLOSE_SHUTDOWN,
         .error_text = "plain HTTP request on the TLS port (answered with HTTP 400)"},
        {"our flight after a HelloRetryRequest went unanswered",
         TIMED_OUT,
         IN_HELLO,
         .hello_seen = true,
         .saw_hrr = true,
         .saw_cert = true,
         .timeout_us = 2 * SEC,
         .outcome = OUTCOME_TIMEOUT,
         .close_kind = CLOSE_HANDSHAKE_TIMEOUT,
         .error_text = "handshake not completed within 2 s",
         .hello_retry = true},

        /* ---- the handshake completed ---- */
        {"curl -k (test-record)",
         DONE,
         IN_HELLO,
         .hello_seen = true,
         .saw_cert = true,
         .saw_finished = true,
         .outcome = OUTCOME_OK},
        {"resumed session (test-record)",
         DONE,
         IN_HELLO,
         .hello_seen = true,
         .saw_finished = true,
         .outcome = OUTCOME_OK,
         .resumed = true},
        {"HelloRetryRequest (test-record)",
         DONE,
         IN_HELLO,
         .hello_seen = true,
         .saw_cert = true,
         .saw_finished = true,
         .saw_hrr = true,
         .outcome = OUTCOME_OK,
         .hello_retry = true},

        /* ---- we gave up during the handshake ---- */
        {"out of memory setting up TLS",
         ABORTED,
         IN_NOTHING,
         .reason = "out of memory setting up TLS",
         .outcome = OUTCOME_SERVER_ERROR,
         .error_text = "out of memory setting up TLS"},
        {"server shutting down",
         ABORTED,
         IN_HALF_HELLO,
         .reason = "server shutting down",
         .outcome = OUTCOME_SERVER_ERROR,
         .error_text = "server shutting down"},

        /* ---- the client ended the connection after the handshake (tlswatchd(8), "Rejected after the
         * handshake") ---- */
        {"openssl s_client -tls1_2, R: renegotiation refused, then alert 40 (test-record)",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(40),
         .renegotiation_refused = true,
         .closed_after_us = 1 * SEC,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(40),
         .alert_sent = ALERT(100),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "the client asked to renegotiate the TLS session before any request; renegotiation "
                       "is "
                       "disabled, so we refused (alert no_renegotiation(100)); the client then closed with "
                       "alert "
                       "handshake_failure(40)"},
        {"renegotiation refused after a request, then alert 40: still ok",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(40),
         .renegotiation_refused = true,
         .requests = 1,
         .closed_after_us = 5 * SEC,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(40),
         .alert_sent = ALERT(100),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "the client asked to renegotiate the TLS session; renegotiation is disabled, so we "
                       "refused (alert no_renegotiation(100)); the client then closed with alert "
                       "handshake_failure(40)"},
        {"renegotiation refused, then FIN 3 s later: not ok, not a certificate rejection",
         HTTP_END,
         IN_HELLO,
         0,
         .renegotiation_refused = true,
         .closed_after_us = 3 * SEC,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_FIN,
         .alert_sent = ALERT(100),
         .error_text = "the client asked to renegotiate the TLS session before any request; renegotiation "
                       "is "
                       "disabled, so we refused (alert no_renegotiation(100)); the client then closed the "
                       "connection (fin)"},
        {"a handshake record, then a record with a bad MAC: Mbed TLS's error, no renegotiation",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_INVALID_MAC,
         .renegotiation_refused = true,
         .closed_after_us = 2 * SEC,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_SERVER},
        {"wget: FIN 0.4 ms after the handshake (tlswatchd(8))",
         HTTP_END,
         IN_HELLO,
         0,
         .closed_after_us = 400,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_FIN,
         .error_text = "client closed the connection 0.4 ms after the handshake, without a request (fin)"},
        {"close_notify 3.25 ms after the handshake",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY,
         .closed_after_us = 3250,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_CLOSE_NOTIFY,
         .want_tls_error = OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY,
         .error_text = "client closed the connection 3.2 ms after the handshake, without a request "
                       "(close_notify)"},
        {"RST at once",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_NET_CONN_RESET,
         .closed_after_us = 0,
         .outcome = OUTCOME_PEER_RESET,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_CONN_RESET,
         .error_text = "client closed the connection 0.0 ms after the handshake, without a request (reset)"},
        {"recv() failed 2 ms after: a reset",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_NET_RECV_FAILED,
         .closed_after_us = 2000,
         .outcome = OUTCOME_PEER_RESET,
         .close_kind = CLOSE_RESET,
         .want_tls_error = OUTCOME_ERR_NET_RECV_FAILED,
         .error_text = "client closed the connection 2.0 ms after the handshake, without a request (reset)"},
        {"FIN exactly 1 s after",
         HTTP_END,
         IN_HELLO,
         0,
         .closed_after_us = REJECT_AFTER_HANDSHAKE_US,
         .outcome = OUTCOME_PEER_CLOSED,
         .close_kind = CLOSE_FIN,
         .error_text = "client closed the connection 1000.0 ms after the handshake, without a request "
                       "(fin)"},
        {"FIN more than 1 s after: an unused connection",
         HTTP_END,
         IN_HELLO,
         0,
         .closed_after_us = REJECT_AFTER_HANDSHAKE_US + 1,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_FIN},
        {"a browser's spare connection: another one of the client served requests",
         HTTP_END,
         IN_HELLO,
         0,
         .closed_after_us = 300,
         .served_elsewhere = true,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_FIN},
        {"FIN after a request",
         HTTP_END,
         IN_HELLO,
         0,
         .closed_after_us = 300,
         .requests = 1,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_FIN},
        {"FIN within part of a request",
         HTTP_END,
         IN_HELLO,
         0,
         .closed_after_us = 300,
         .request_bytes = 10,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_FIN},
        {"we closed it (bad MAC) soon after: no rejection",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_INVALID_MAC,
         .closed_after_us = 300,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_SERVER},
        {"Firefox on TLS 1.2: alert 42 after the handshake, before any request",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(42),
         .closed_after_us = 5000,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(42),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "client sent fatal alert bad_certificate(42) after the handshake, before any "
                       "request"},
        {"an alert after the handshake counts whenever it comes, spare connection or not",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(200),
         .closed_after_us = 5 * SEC,
         .served_elsewhere = true,
         .outcome = OUTCOME_PEER_ALERT,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(200),
         .want_tls_error = OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .error_text = "client sent fatal alert n/a(200) after the handshake, before any request"},
        {"an alert after requests: noted, still ok",
         HTTP_END,
         IN_HELLO,
         OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE,
         .alert_read = ALERT(46),
         .requests = 2,
         .closed_after_us = 300,
         .outcome = OUTCOME_OK,
         .close_kind = CLOSE_ALERT,
         .alert_received = ALERT(46)},
};

static void feed(ClientHelloCapture *c, const void *p, size_t n) {
        (void) clienthello_capture_feed(c, p, n);
}

static void feed_hello(ClientHelloCapture *c, bool half) {
        Buf b = {};

        hello_example(&b, true);
        feed(c, b.data, half ? b.len / 2 : b.len);
        buf_free(&b);
}

/* A hello with the given supported_groups (none: no extension), as one record. */
static void feed_groups_hello(ClientHelloCapture *c, const uint16_t *groups, size_t n) {
        static const uint16_t ciphers[] = {0x1301, 0x1302};
        Buf exts = {}, msg = {}, rec = {};

        ext_sni(&exts, "example.com");
        if (n > 0)
                ext_u16_list(&exts, TLS_EXT_SUPPORTED_GROUPS, groups, n, false);
        ext_u16_list(&exts, TLS_EXT_SUPPORTED_VERSIONS, (const uint16_t[]){0x0304}, 1, true);
        hello_message(&msg, 0x0303, ciphers, ELEMENTSOF(ciphers), &exts);
        hello_records(&rec, msg.data, msg.len, 16384);
        feed(c, rec.data, rec.len);
        buf_free(&exts);
        buf_free(&msg);
        buf_free(&rec);
}

/* A handshake message of type 1 announcing len body bytes; the first `have` bytes of it as records. */
static void feed_big_hello(ClientHelloCapture *c, uint32_t len, size_t have) {
        Buf msg = {}, rec = {};

        buf_u8(&msg, 1);
        buf_u24(&msg, len);
        buf_u16(&msg, 0x0303);
        while (msg.len < TLS_HANDSHAKE_HEADER_SIZE + len && msg.len < have)
                buf_u8(&msg, 0);
        hello_records(&rec, msg.data, MIN(msg.len, have), 16384);
        feed(c, rec.data, rec.len);
        buf_free(&msg);
        buf_free(&rec);
}

static void feed_inbound(ClientHelloCapture *c, Inbound in) {
        static const uint8_t fatal46[] = {21, 3, 3, 0, 2, 2, 46}, warning90[] = {21, 3, 3, 0, 2, 1, 90},
                             ccs[] = {20, 3, 3, 0, 1, 1}, not_hello[] = {22, 3, 1, 0, 4, 2, 0, 0, 0};
        uint8_t encrypted_alert[5 + 26] = {21, 3, 3, 0, 26};

        switch (in) {
        case IN_NOTHING: break;
        case IN_HELLO: feed_hello(c, false); break;
        case IN_HALF_HELLO: feed_hello(c, true); break;
        case IN_HELLO_FATAL_ALERT_46:
                feed_hello(c, false);
                feed(c, fatal46, sizeof fatal46);
                break;
        case IN_HELLO_WARNING_ALERT:
                feed_hello(c, false);
                feed(c, warning90, sizeof warning90);
                break;
        case IN_HELLO_ENCRYPTED_ALERT:
                feed_hello(c, false);
                feed(c, ccs, sizeof ccs);
                feed(c, encrypted_alert, sizeof encrypted_alert);
                break;
        case IN_HTTP: feed(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27); break;
        case IN_GE: feed(c, "GE", 2); break;
        case IN_SSH: feed(c, "SSH-2.0-OpenSSH_9.2\r\n", 21); break;
        case IN_BYTE_80: feed(c, "\x80", 1); break;
        case IN_SPLIT_HEADER: {
                Buf b = {}, msg = {}, rec = {};

                hello_example(&b, false);
                buf_put(&msg, b.data + TLS_RECORD_HEADER_SIZE, b.len - TLS_RECORD_HEADER_SIZE);
                hello_records(&rec, msg.data, 2, 2);
                hello_records(&rec, msg.data + 2, msg.len - 2, 16384);
                feed(c, rec.data, rec.len);
                buf_free(&b);
                buf_free(&msg);
                buf_free(&rec);
                break;
        }
        case IN_FFDHE_HELLO:
                feed_groups_hello(c, (const uint16_t[]){0x0a0a, 0x0100, 0x0101, 0x1234}, 4);
                break;
        case IN_NO_GROUPS_HELLO: feed_groups_hello(c, NULL, 0); break;
        case IN_NOT_A_HELLO: feed(c, not_hello, sizeof not_hello); break;
        case IN_HUGE_HELLO: feed_big_hello(c, 70000, 16384); break;
        case IN_BIG_HELLO_PART: feed_big_hello(c, 20000, 17384); break;
        case IN_BIG_HELLO: feed_big_hello(c, 20000, 20004); break;
        case IN_16MB_HELLO_HEADER: feed_big_hello(c, 0xffffff, 16384); break;
        case IN_20000_HELLO_HEADER: feed_big_hello(c, 20000, 200); break;
        case IN_HELLO_NO_MEMORY:
                feed_hello(c, true);
                /* as clienthello_capture_feed() leaves it when growing its buffer fails */
                c->state = CAPTURE_NO_MEMORY;
                c->reason = "out of memory";
                break;
        }
}

static int alert_in(int row_alert) {
        return row_alert - 1; /* ALERT(n) -> n, 0 -> -1 */
}

static void test_row(const Row *r) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();
        ClientHelloCapture cap;
        CloseKind kind = CLOSE_UNKNOWN;
        HandshakeFacts f = {
                .tls_error = r->tls_error,
                .alert_read = alert_in(r->alert_read),
                .alert_sent_scanned = alert_in(r->alert_sent_scanned),
                .alert_pending = alert_in(r->alert_pending),
                .capture = &cap,
                .hello_seen = r->hello_seen,
                .failed_in_hrr = r->failed_in_hrr,
                .local_fault = r->local_fault,
                .saw_server_cert = r->saw_cert,
                .saw_server_finished = r->saw_finished,
                .saw_hrr = r->saw_hrr,
                .handshake_timeout_us = r->timeout_us,
                .drain_cut = r->drain_cut,
                .message_too_large = r->message_too_large,
        };
        HttpEndFacts h = {
                .tls_error = r->tls_error,
                .alert_read = alert_in(r->alert_read),
                .requests = r->requests,
                .request_bytes = r->request_bytes,
                .served_elsewhere = r->served_elsewhere,
                .renegotiation_refused = r->renegotiation_refused,
        };

        if (!ok(a != NULL, "%s: attempt", r->name))
                return;
        clienthello_capture_init(&cap);
        feed_inbound(&cap, r->in);
        a->started_us = 1700000000 * SEC;
        switch (r->stage) {
        case FAILED: kind = outcome_handshake_failed(a, &f); break;
        case TIMED_OUT: kind = outcome_handshake_timed_out(a, &f); break;
        case DONE:
                outcome_handshake_done(a, &f);
                kind = a->close_kind;
                is_int(a->state_reached, STEP_DONE, "%s: state_reached done", r->name);
                break;
        case ABORTED:
                outcome_handshake_aborted(a, r->reason);
                kind = a->close_kind;
                break;
        case HTTP_END:
                /* as conn.c has it: the handshake done, then the close noted before the call */
                outcome_handshake_done(a, &f);
                a->ended_us = a->started_us + 20 * USEC_PER_MSEC;
                a->close_kind = outcome_close_kind(r->tls_error);
                a->closed_us = a->ended_us + r->closed_after_us;
                outcome_http_ended(a, &h);
                kind = a->close_kind;
                break;
        }
        is_str(outcome_to_string(a->outcome), outcome_to_string(r->outcome), "%s: outcome", r->name);
        is_str(close_kind_to_string(kind), close_kind_to_string(r->close_kind), "%s: close_kind", r->name);
        is_int(a->alert_received, alert_in(r->alert_received), "%s: alert_received", r->name);
        is_int(a->alert_sent, alert_in(r->alert_sent), "%s: alert_sent", r->name);
        is_int(a->tls_error, r->want_tls_error, "%s: tls_error", r->name);
        is_str(a->error_text, r->error_text, "%s: error_text", r->name);
        is_int(a->resumed, r->resumed, "%s: resumed", r->name);
        is_int(a->hello_retry, r->hello_retry, "%s: hello_retry", r->name);
        clienthello_capture_done(&cap);
}

/* The inputs are what the rows say they are: the capture ends in the state each row relies on. */
static void test_inbound(void) {
        static const struct {
                Inbound in;
                CaptureState state;
                uint64_t bytes;
        } want[] = {
                {IN_NOTHING, CAPTURE_NEED_MORE, 0},
                {IN_HELLO, CAPTURE_COMPLETE, 0},
                {IN_HALF_HELLO, CAPTURE_NEED_MORE, 0},
                {IN_HTTP, CAPTURE_NOT_TLS, 27},
                {IN_GE, CAPTURE_NEED_MORE, 2}, /* could still become "GET " */
                {IN_SSH, CAPTURE_NOT_TLS, 21},
                {IN_SPLIT_HEADER, CAPTURE_COMPLETE, 0},
                {IN_FFDHE_HELLO, CAPTURE_COMPLETE, 0},
                {IN_NOT_A_HELLO, CAPTURE_MALFORMED, 9},
                {IN_HUGE_HELLO, CAPTURE_TOO_BIG, 0},
                {IN_16MB_HELLO_HEADER, CAPTURE_TOO_BIG, 0},
                {IN_20000_HELLO_HEADER, CAPTURE_NEED_MORE, 200 + TLS_RECORD_HEADER_SIZE},
                {IN_BIG_HELLO_PART, CAPTURE_NEED_MORE, 17384 + 2 * TLS_RECORD_HEADER_SIZE},
                {IN_BIG_HELLO, CAPTURE_COMPLETE, 20004 + 2 * TLS_RECORD_HEADER_SIZE},
        };

        FOREACH_ARRAY(w, want, ELEMENTSOF(want)) {
                ClientHelloCapture cap;

                clienthello_capture_init(&cap);
                feed_inbound(&cap, w->in);
                is_str(capture_state_to_string(cap.state),
                       capture_state_to_string(w->state),
                       "inbound %d: capture state",
                       (int) w->in);
                if (w->bytes > 0)
                        is_int(cap.scanner.bytes, w->bytes, "inbound %d: bytes", (int) w->in);
                if (w->in == IN_SPLIT_HEADER)
                        ok(cap.header_split, "the split hello's header is split");
                if (w->in == IN_BIG_HELLO_PART)
                        is_int(cap.announced_len, 20000, "the big hello announces 20000 bytes");
                /* what conn.c refuses as soon as the handshake header is in */
                is_int(outcome_hello_too_large(&cap),
                       w->in == IN_HUGE_HELLO || w->in == IN_16MB_HELLO_HEADER ||
                               w->in == IN_20000_HELLO_HEADER || w->in == IN_BIG_HELLO_PART,
                       "inbound %d: too large for Mbed TLS",
                       (int) w->in);
                clienthello_capture_done(&cap);
        }
}

static void test_close_kind(void) {
        static const struct {
                int ret;
                CloseKind kind;
        } want[] = {
                {0, CLOSE_FIN},
                {OUTCOME_ERR_SSL_CONN_EOF, CLOSE_FIN},
                {OUTCOME_ERR_SSL_PEER_CLOSE_NOTIFY, CLOSE_CLOSE_NOTIFY},
                {OUTCOME_ERR_SSL_FATAL_ALERT_MESSAGE, CLOSE_ALERT},
                {OUTCOME_ERR_NET_CONN_RESET, CLOSE_RESET},
                {OUTCOME_ERR_NET_RECV_FAILED, CLOSE_RESET},
                {OUTCOME_ERR_NET_SEND_FAILED, CLOSE_RESET},
                {OUTCOME_ERR_SSL_INVALID_MAC, CLOSE_SERVER},
                {OUTCOME_ERR_SSL_HANDSHAKE_FAILURE, CLOSE_SERVER},
                {OUTCOME_ERR_SSL_ALLOC_FAILED, CLOSE_SERVER},
        };

        FOREACH_ARRAY(w, want, ELEMENTSOF(want))
                is_str(close_kind_to_string(outcome_close_kind(w->ret)),
                       close_kind_to_string(w->kind),
                       "close kind for -0x%04x",
                       (unsigned) -w->ret);
}

/* A second failure on the same record replaces the text (conn.c aborts a connection whose handshake
 * failed only before it is recorded, but the text must never leak or pile up). */
static void test_error_replaced(void) {
        _cleanup_(attempt_freep) Attempt *a = attempt_new();

        outcome_handshake_aborted(a, "first");
        outcome_handshake_aborted(a, "second");
        is_str(a->error_text, "second", "a later error text replaces the earlier one");
}

int main(void) {
        FOREACH_ARRAY(r, rows, ELEMENTSOF(rows))
                test_row(r);
        test_inbound();
        test_close_kind();
        test_error_replaced();
        return tap_done();
}
