/* SPDX-License-Identifier: MIT */
#pragma once

/* Sans-I/O handling of the client's first flight:
 *
 *  - RecordScanner follows the TLS record headers of one direction of a connection (inbound or
 *    outbound), fed incrementally in chunks of any size. It counts bytes and records and remembers the
 *    last *plaintext* alert (content type 21 with a record length of exactly 2: encrypted TLS 1.3 alerts
 *    travel as type 23, encrypted TLS 1.2 alerts are longer than 2 bytes). After a header that cannot be
 *    a TLS record it stops interpreting and only counts bytes ("desynced").
 *
 *  - ClientHelloCapture (inbound only) reassembles the first handshake message, which must be a
 *    ClientHello, from the payload of handshake records, across records (down to 1-byte records) and
 *    across chunks. Only handshake payload bytes are copied, once, into a buffer that grows (doubling)
 *    as they arrive, up to the announced message size (capped at CLIENTHELLO_CAPTURE_MAX): a client that
 *    announces a large hello and stalls holds only what it sent.
 *
 *  - clienthello_parse() decodes a complete handshake message into a ClientHello that points into the
 *    message buffer (no allocation). It never reads out of bounds and rejects malformed input with
 *    -EBADMSG and a short reason.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define TLS_CONTENT_CHANGE_CIPHER_SPEC 20
#define TLS_CONTENT_ALERT 21
#define TLS_CONTENT_HANDSHAKE 22
#define TLS_CONTENT_APPLICATION_DATA 23
#define TLS_CONTENT_HEARTBEAT 24

#define TLS_RECORD_HEADER_SIZE 5
/* Largest record body we accept: 2^14 plus TLS 1.2's maximal ciphertext expansion. */
#define TLS_RECORD_MAX_BODY (16384 + 2048)

#define TLS_HANDSHAKE_CLIENT_HELLO 1
#define TLS_HANDSHAKE_HEADER_SIZE 4

/* The largest ClientHello handshake message we capture, header included. */
#define CLIENTHELLO_CAPTURE_MAX (64 * 1024)

/* Extension types the parser decodes. */
#define TLS_EXT_SERVER_NAME 0x0000
#define TLS_EXT_SUPPORTED_GROUPS 0x000a
#define TLS_EXT_EC_POINT_FORMATS 0x000b
#define TLS_EXT_SIGNATURE_ALGORITHMS 0x000d
#define TLS_EXT_ALPN 0x0010
#define TLS_EXT_PADDING 0x0015
#define TLS_EXT_SESSION_TICKET 0x0023
#define TLS_EXT_PRE_SHARED_KEY 0x0029
#define TLS_EXT_EARLY_DATA 0x002a
#define TLS_EXT_SUPPORTED_VERSIONS 0x002b
#define TLS_EXT_KEY_SHARE 0x0033

/* GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ..., 0xfafa. */
static inline bool tls_is_grease(uint16_t v) {
        return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static inline uint16_t tls_get_u16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

/* ---- record scanner ---- */

typedef struct RecordScanner {
        uint64_t bytes;   /* all bytes fed */
        uint64_t records; /* record headers seen */

        uint8_t header[TLS_RECORD_HEADER_SIZE];
        uint8_t header_len; /* header bytes of the current record collected so far */
        uint8_t type;       /* content type of the current record */
        size_t remaining;   /* body bytes of the current record still to come */
        size_t body_len;    /* body length of the current record */

        uint8_t alert[2];
        uint8_t alert_len; /* bytes of a 2-byte type-21 record body collected so far */

        int alert_level;           /* of the last plaintext alert, -1 if none */
        int alert_description;     /* of the last plaintext alert, -1 if none */
        uint64_t alerts;           /* plaintext alerts seen */
        uint64_t encrypted_alerts; /* TLS 1.2 alert records after ChangeCipherSpec (type 21, longer than 2) */
        uint64_t handshake_records; /* handshake records (type 22; TLS 1.3 encrypts its later ones as 23) */

        bool desynced; /* a header that cannot be TLS was seen; bytes are only counted from there */
} RecordScanner;

void record_scanner_init(RecordScanner *s);

/* Feeds the next len bytes of the stream. Never fails; see s->desynced. */
void record_scanner_feed(RecordScanner *s, const void *data, size_t len);

/* ---- ClientHello capture ---- */

typedef enum CaptureState {
        CAPTURE_NEED_MORE, /* feed more bytes */
        CAPTURE_COMPLETE,  /* c->msg holds the whole handshake message (c->msg_len bytes) */
        CAPTURE_NOT_TLS,   /* the stream does not start with a handshake record; see c->looks_like_http */
        CAPTURE_TOO_BIG,   /* the ClientHello is longer than CLIENTHELLO_CAPTURE_MAX */
        CAPTURE_MALFORMED, /* records or handshake header broken; see c->reason */
        CAPTURE_NO_MEMORY, /* the message buffer could not be allocated */
        _CAPTURE_STATE_MAX,
        _CAPTURE_STATE_INVALID = -EINVAL,
} CaptureState;

typedef struct ClientHelloCapture {
        CaptureState state;
        RecordScanner scanner; /* follows the inbound stream for the whole connection */

        uint8_t prefix[4]; /* the first bytes of the stream, for not-TLS/HTTP detection */
        uint8_t prefix_len;
        bool looks_like_http; /* with CAPTURE_NOT_TLS: starts like an HTTP request ("GET ", "POST", ...) */

        uint8_t hs_header[TLS_HANDSHAKE_HEADER_SIZE];
        size_t hs_header_len;
        uint8_t *msg;         /* handshake header + body; grows as bytes arrive, up to msg_size */
        size_t msg_size;      /* TLS_HANDSHAKE_HEADER_SIZE + the announced body length */
        size_t msg_len;       /* bytes of msg filled */
        size_t msg_allocated; /* bytes of msg allocated: a client announcing 64 KiB costs what it sent */

        uint64_t records;       /* handshake records that carried part of the ClientHello */
        bool header_split;      /* the 4-byte handshake header itself spans records (Mbed TLS 3.6 fails) */
        bool released;          /* clienthello_capture_done() was called: from then on only scan */
        uint32_t announced_len; /* body length in the handshake header (also set for CAPTURE_TOO_BIG) */
        const char *reason;     /* static text, set with CAPTURE_MALFORMED / CAPTURE_TOO_BIG / NOT_TLS */
} ClientHelloCapture;

void clienthello_capture_init(ClientHelloCapture *c);
/* Frees the message buffer. Further clienthello_capture_feed() calls only go through c->scanner (the
 * state stays as it was); clienthello_capture_init() starts over. */
void clienthello_capture_done(ClientHelloCapture *c);

/* Feeds the next len inbound bytes. Returns the new state. Once the state is final (anything but
 * CAPTURE_NEED_MORE) it no longer changes; further bytes only go through c->scanner, so the caller may
 * keep feeding every inbound chunk for the whole connection. */
CaptureState clienthello_capture_feed(ClientHelloCapture *c, const void *data, size_t len);

const char *capture_state_to_string(CaptureState s) _pure_;

/* ---- parser ---- */

/* n big-endian 16-bit values at data. */
typedef struct U16List {
        const uint8_t *data;
        size_t n;
} U16List;

static inline uint16_t u16_list_get(const U16List *l, size_t i) {
        return tls_get_u16(l->data + 2 * i);
}

typedef struct ByteSpan {
        const uint8_t *data;
        size_t len;
} ByteSpan;

/* All pointers point into the message passed to clienthello_parse(). Lists hold the values exactly as
 * sent (GREASE included). Where an extension appears more than once, the first occurrence is decoded;
 * every occurrence is counted in n_extensions and shows up when iterating extensions. */
typedef struct ClientHello {
        uint16_t legacy_version;
        ByteSpan random; /* 32 bytes */
        ByteSpan session_id;
        U16List ciphers;
        ByteSpan compression_methods;

        bool has_extensions_block; /* false for a hello that ends after compression_methods */
        ByteSpan extensions;       /* the extensions block; walk it with clienthello_extension_next() */
        size_t n_extensions;

        bool has_supported_versions;
        U16List supported_versions;
        bool has_supported_groups;
        U16List supported_groups;
        bool has_ec_point_formats;
        ByteSpan ec_point_formats;
        bool has_signature_algorithms;
        U16List signature_algorithms; /* from extension 0x000d only */

        bool has_sni;      /* the extension is present (possibly empty) */
        bool has_sni_name; /* it holds a host_name entry */
        ByteSpan sni;      /* the first host_name entry, raw */

        bool has_alpn;
        ByteSpan alpn_list; /* the protocol_name_list, validated; walk it with clienthello_alpn_next() */
        size_t n_alpn;

        bool has_key_share;
        ByteSpan key_shares; /* client_shares; walk it with clienthello_key_share_next() */
        size_t n_key_shares;

        bool has_psk;        /* pre_shared_key (0x0029) */
        bool has_early_data; /* early_data (0x002a) */

        const char *reason; /* why parsing failed, static text */
} ClientHello;

/* Parses a complete handshake message (4-byte header: type 1 and the 24-bit body length, then the
 * body) as captured in ClientHelloCapture.msg. Returns 0, or -EBADMSG with ret->reason set. */
int clienthello_parse(const uint8_t *msg, size_t len, ClientHello *ret);

/* Iterators over the validated lists. Start with *offset = 0; each returns false at the end. */
bool clienthello_extension_next(const ClientHello *ch, size_t *pos, uint16_t *ret_type, ByteSpan *ret_data);
bool clienthello_alpn_next(const ClientHello *ch, size_t *offset, ByteSpan *ret_protocol);
bool clienthello_key_share_next(const ClientHello *ch, size_t *offset, uint16_t *ret_group);
