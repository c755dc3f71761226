/* SPDX-License-Identifier: MIT */
#include "clienthello.h"

/* ---- record scanner ---- */

void record_scanner_init(RecordScanner *s) {
        *s = (RecordScanner){
                .alert_level = -1,
                .alert_description = -1,
        };
}

typedef struct ScanStep {
        size_t consumed;
        bool header_done; /* a record header was completed (and is valid) in this step */
        ByteSpan payload; /* record body bytes passed in this step */
} ScanStep;

static bool record_header_valid(const uint8_t h[static TLS_RECORD_HEADER_SIZE]) {
        return h[0] >= TLS_CONTENT_CHANGE_CIPHER_SPEC && h[0] <= TLS_CONTENT_HEARTBEAT && h[1] == 3 &&
                tls_get_u16(h + 3) <= TLS_RECORD_MAX_BODY;
}

/* Consumes bytes up to the next header or body boundary. Requires len > 0 and !s->desynced. */
static ScanStep scanner_step(RecordScanner *s, const uint8_t *p, size_t len) {
        ScanStep r = {};

        if (s->header_len < TLS_RECORD_HEADER_SIZE) {
                r.consumed = MIN((size_t) (TLS_RECORD_HEADER_SIZE - s->header_len), len);
                memcpy(s->header + s->header_len, p, r.consumed);
                s->header_len += r.consumed;
                if (s->header_len < TLS_RECORD_HEADER_SIZE)
                        return r;

                if (!record_header_valid(s->header)) {
                        s->desynced = true;
                        return r;
                }
                s->records++;
                s->type = s->header[0];
                if (s->type == TLS_CONTENT_ALERT && tls_get_u16(s->header + 3) != 2)
                        s->encrypted_alerts++;
                if (s->type == TLS_CONTENT_HANDSHAKE)
                        s->handshake_records++;
                s->body_len = s->remaining = tls_get_u16(s->header + 3);
                s->alert_len = 0;
                r.header_done = true;
                if (s->remaining == 0)
                        s->header_len = 0;
                return r;
        }

        r.consumed = MIN(s->remaining, len);
        r.payload = (ByteSpan){p, r.consumed};
        if (s->type == TLS_CONTENT_ALERT && s->body_len == 2) {
                memcpy(s->alert + s->alert_len, p, r.consumed);
                s->alert_len += r.consumed;
        }
        s->remaining -= r.consumed;
        if (s->remaining == 0) {
                if (s->type == TLS_CONTENT_ALERT && s->body_len == 2) {
                        s->alert_level = s->alert[0];
                        s->alert_description = s->alert[1];
                        s->alerts++;
                }
                s->header_len = 0;
        }
        return r;
}

static void scanner_scan(RecordScanner *s, const uint8_t *p, size_t len) {
        while (len > 0 && !s->desynced) {
                ScanStep r = scanner_step(s, p, len);
                p += r.consumed;
                len -= r.consumed;
        }
}

void record_scanner_feed(RecordScanner *s, const void *data, size_t len) {
        s->bytes += len;
        scanner_scan(s, data, len);
}

/* ---- ClientHello capture ---- */

static const char *const capture_state_table[_CAPTURE_STATE_MAX] = {
        [CAPTURE_NEED_MORE] = "need_more",
        [CAPTURE_COMPLETE] = "complete",
        [CAPTURE_NOT_TLS] = "not_tls",
        [CAPTURE_TOO_BIG] = "too_big",
        [CAPTURE_MALFORMED] = "malformed",
        [CAPTURE_NO_MEMORY] = "no_memory",
};

const char *capture_state_to_string(CaptureState s) {
        if (s < 0 || s >= _CAPTURE_STATE_MAX)
                return NULL;
        return capture_state_table[s];
}

void clienthello_capture_init(ClientHelloCapture *c) {
        *c = (ClientHelloCapture){
                .state = CAPTURE_NEED_MORE,
        };
        record_scanner_init(&c->scanner);
}

void clienthello_capture_done(ClientHelloCapture *c) {
        free(c->msg);
        c->msg = NULL;
        c->released = true;
        c->msg_size = c->msg_len = c->msg_allocated = 0;
}

static const char http_methods[][4] = {
        "GET ",
        "POST",
        "HEAD",
        "PUT ",
        "OPTI",
        "DELE",
        "CONN",
        "PATC",
        "PRI ",
        "TRAC",
};

/* Whether the first n (<= 4) bytes match the start of an HTTP method. */
static bool prefix_is_http(const uint8_t *prefix, size_t n) {
        FOREACH_ARRAY(m, http_methods, ELEMENTSOF(http_methods))
                if (memcmp(*m, prefix, n) == 0)
                        return true;
        return false;
}

static CaptureState capture_fail(ClientHelloCapture *c, CaptureState state, const char *reason) {
        c->reason = reason;
        return (c->state = state);
}

/* Enough for almost every real ClientHello (Chromium's are about 2 KB). */
#define CAPTURE_INITIAL_ALLOCATION 2048

/* The 4-byte handshake header is complete: check it and allocate the message buffer. */
static void capture_header(ClientHelloCapture *c) {
        const uint8_t *h = c->hs_header;

        if (h[0] != TLS_HANDSHAKE_CLIENT_HELLO) {
                capture_fail(c, CAPTURE_MALFORMED, "first handshake message is not a ClientHello");
                return;
        }
        c->announced_len = (uint32_t) h[1] << 16 | (uint32_t) h[2] << 8 | h[3];
        if (c->announced_len > CLIENTHELLO_CAPTURE_MAX - TLS_HANDSHAKE_HEADER_SIZE) {
                capture_fail(c, CAPTURE_TOO_BIG, "ClientHello larger than 64 KiB");
                return;
        }
        c->msg_size = TLS_HANDSHAKE_HEADER_SIZE + c->announced_len;
        c->msg_allocated = MIN(c->msg_size, (size_t) CAPTURE_INITIAL_ALLOCATION);
        c->msg = malloc(c->msg_allocated);
        if (!c->msg) {
                capture_fail(c, CAPTURE_NO_MEMORY, "out of memory");
                return;
        }
        memcpy(c->msg, h, TLS_HANDSHAKE_HEADER_SIZE);
        c->msg_len = TLS_HANDSHAKE_HEADER_SIZE;
}

/* Makes room for n more bytes of the message (never beyond msg_size). */
static bool capture_reserve(ClientHelloCapture *c, size_t n) {
        size_t want = c->msg_len + n, size;
        uint8_t *grown;

        if (want <= c->msg_allocated)
                return true;
        size = MIN(MAX(want, c->msg_allocated * 2), c->msg_size);
        grown = realloc(c->msg, size);
        if (!grown) {
                capture_fail(c, CAPTURE_NO_MEMORY, "out of memory");
                return false;
        }
        c->msg = grown;
        c->msg_allocated = size;
        return true;
}

/* Takes handshake record payload bytes: each is copied once, into the header or the message buffer. */
static void capture_payload(ClientHelloCapture *c, const uint8_t *p, size_t len) {
        while (len > 0 && c->state == CAPTURE_NEED_MORE) {
                size_t k;

                if (c->hs_header_len < TLS_HANDSHAKE_HEADER_SIZE) {
                        k = MIN(TLS_HANDSHAKE_HEADER_SIZE - c->hs_header_len, len);
                        memcpy(c->hs_header + c->hs_header_len, p, k);
                        c->hs_header_len += k;
                        if (c->hs_header_len == TLS_HANDSHAKE_HEADER_SIZE)
                                capture_header(c);
                } else {
                        k = MIN(c->msg_size - c->msg_len, len);
                        if (!capture_reserve(c, k))
                                return;
                        memcpy(c->msg + c->msg_len, p, k);
                        c->msg_len += k;
                }
                p += k;
                len -= k;

                if (c->state == CAPTURE_NEED_MORE && c->msg && c->msg_len == c->msg_size)
                        c->state = CAPTURE_COMPLETE;
        }
}

CaptureState clienthello_capture_feed(ClientHelloCapture *c, const void *data, size_t len) {
        const uint8_t *p = data;

        c->scanner.bytes += len;
        if (c->state != CAPTURE_NEED_MORE || c->released) {
                scanner_scan(&c->scanner, p, len);
                return c->state;
        }

        if (c->prefix_len < sizeof(c->prefix) && len > 0) {
                size_t k = MIN(sizeof(c->prefix) - c->prefix_len, len);
                memcpy(c->prefix + c->prefix_len, p, k);
                c->prefix_len += k;
        }
        if (c->prefix_len > 0 && c->prefix[0] != TLS_CONTENT_HANDSHAKE) {
                c->looks_like_http = prefix_is_http(c->prefix, c->prefix_len);
                if (!c->looks_like_http || c->prefix_len == sizeof(c->prefix))
                        capture_fail(c, CAPTURE_NOT_TLS, "not a TLS handshake record");
                /* else: could still become an HTTP method: wait for 4 bytes. */
                scanner_scan(&c->scanner, p, len);
                return c->state;
        }

        while (len > 0) {
                if (c->state != CAPTURE_NEED_MORE || c->scanner.desynced) {
                        scanner_scan(&c->scanner, p, len);
                        break;
                }

                RecordScanner *s = &c->scanner;
                ScanStep r = scanner_step(s, p, len);
                p += r.consumed;
                len -= r.consumed;

                if (s->desynced)
                        capture_fail(c, CAPTURE_MALFORMED, "invalid TLS record header");
                else if (r.header_done && s->type != TLS_CONTENT_HANDSHAKE)
                        capture_fail(c, CAPTURE_MALFORMED, "non-handshake record before the ClientHello");
                else if (r.header_done && s->body_len == 0)
                        capture_fail(c, CAPTURE_MALFORMED, "empty handshake record");
                else if (r.header_done)
                        c->records++;
                else if (r.payload.len > 0) {
                        capture_payload(c, r.payload.data, r.payload.len);
                        /* a record ended inside the handshake header: the header continues in the next one */
                        if (s->remaining == 0 && c->hs_header_len > 0 &&
                            c->hs_header_len < TLS_HANDSHAKE_HEADER_SIZE)
                                c->header_split = true;
                }
        }

        return c->state;
}

/* ---- parser ---- */

typedef struct Reader {
        const uint8_t *p;
        size_t left;
} Reader;

static bool reader_bytes(Reader *r, size_t n, ByteSpan *ret) {
        if (r->left < n)
                return false;
        *ret = (ByteSpan){r->p, n};
        r->p += n;
        r->left -= n;
        return true;
}

static bool reader_u8(Reader *r, uint8_t *ret) {
        if (r->left < 1)
                return false;
        *ret = r->p[0];
        r->p++;
        r->left--;
        return true;
}

static bool reader_u16(Reader *r, uint16_t *ret) {
        if (r->left < 2)
                return false;
        *ret = tls_get_u16(r->p);
        r->p += 2;
        r->left -= 2;
        return true;
}

/* A vector with a 1-byte length prefix. */
static bool reader_vec8(Reader *r, ByteSpan *ret) {
        uint8_t n;
        return reader_u8(r, &n) && reader_bytes(r, n, ret);
}

/* A vector with a 2-byte length prefix. */
static bool reader_vec16(Reader *r, ByteSpan *ret) {
        uint16_t n;
        return reader_u16(r, &n) && reader_bytes(r, n, ret);
}

/* A list of 16-bit values with a length prefix of 1 or 2 bytes that fills the whole data. */
static bool parse_u16_list(ByteSpan data, bool len8, U16List *ret) {
        Reader r = {data.data, data.len};
        ByteSpan v;

        if (!(len8 ? reader_vec8(&r, &v) : reader_vec16(&r, &v)) || r.left != 0 || v.len % 2 != 0)
                return false;
        *ret = (U16List){v.data, v.len / 2};
        return true;
}

static bool parse_server_name(ByteSpan data, ClientHello *ch) {
        Reader r = {data.data, data.len};
        ByteSpan list;

        ch->has_sni = true;
        if (data.len == 0) /* an empty extension: present, no name */
                return true;
        if (!reader_vec16(&r, &list) || r.left != 0)
                return false;

        Reader l = {list.data, list.len};
        while (l.left > 0) {
                uint8_t type;
                ByteSpan name;

                if (!reader_u8(&l, &type) || !reader_vec16(&l, &name))
                        return false;
                if (type == 0 && !ch->has_sni_name) {
                        ch->has_sni_name = true;
                        ch->sni = name;
                }
        }
        return true;
}

static bool parse_alpn(ByteSpan data, ClientHello *ch) {
        Reader r = {data.data, data.len};
        ByteSpan list = {}, proto;

        ch->has_alpn = true;
        if (data.len > 0 && (!reader_vec16(&r, &list) || r.left != 0))
                return false;

        Reader l = {list.data, list.len};
        while (l.left > 0) {
                if (!reader_vec8(&l, &proto))
                        return false;
                ch->n_alpn++;
        }
        ch->alpn_list = list;
        return true;
}

static bool parse_key_share(ByteSpan data, ClientHello *ch) {
        Reader r = {data.data, data.len};
        ByteSpan list, key;
        uint16_t group;

        if (!reader_vec16(&r, &list) || r.left != 0)
                return false;

        Reader l = {list.data, list.len};
        while (l.left > 0) {
                if (!reader_u16(&l, &group) || !reader_vec16(&l, &key))
                        return false;
                ch->n_key_shares++;
        }
        ch->has_key_share = true;
        ch->key_shares = list;
        return true;
}

/* Decodes the first occurrence of the extensions we care about. Returns NULL or the reason. */
static const char *parse_extension(uint16_t type, ByteSpan data, ClientHello *ch) {
        switch (type) {
        case TLS_EXT_SERVER_NAME:
                if (ch->has_sni)
                        return NULL;
                return parse_server_name(data, ch) ? NULL : "malformed server_name extension";
        case TLS_EXT_SUPPORTED_GROUPS:
                if (ch->has_supported_groups)
                        return NULL;
                ch->has_supported_groups = true;
                return parse_u16_list(data, false, &ch->supported_groups) ? NULL
                                                                          : "malformed supported_groups "
                                                                            "extension";
        case TLS_EXT_EC_POINT_FORMATS: {
                Reader r = {data.data, data.len};

                if (ch->has_ec_point_formats)
                        return NULL;
                ch->has_ec_point_formats = true;
                return reader_vec8(&r, &ch->ec_point_formats) && r.left == 0 ? NULL
                                                                             : "malformed ec_point_formats "
                                                                               "extension";
        }
        case TLS_EXT_SIGNATURE_ALGORITHMS:
                if (ch->has_signature_algorithms)
                        return NULL;
                ch->has_signature_algorithms = true;
                return parse_u16_list(data, false, &ch->signature_algorithms) ? NULL
                                                                              : "malformed "
                                                                                "signature_algorithms "
                                                                                "extension";
        case TLS_EXT_ALPN:
                if (ch->has_alpn)
                        return NULL;
                return parse_alpn(data, ch) ? NULL : "malformed ALPN extension";
        case TLS_EXT_SUPPORTED_VERSIONS:
                if (ch->has_supported_versions)
                        return NULL;
                ch->has_supported_versions = true;
                return parse_u16_list(data, true, &ch->supported_versions) ? NULL
                                                                           : "malformed supported_versions "
                                                                             "extension";
        case TLS_EXT_KEY_SHARE:
                if (ch->has_key_share)
                        return NULL;
                return parse_key_share(data, ch) ? NULL : "malformed key_share extension";
        case TLS_EXT_PRE_SHARED_KEY: ch->has_psk = true; return NULL;
        case TLS_EXT_EARLY_DATA: ch->has_early_data = true; return NULL;
        default: return NULL;
        }
}

static int parse_fail(ClientHello *ch, const char *reason) {
        ch->reason = reason;
        return -EBADMSG;
}

int clienthello_parse(const uint8_t *msg, size_t len, ClientHello *ret) {
        Reader r = {msg, len};
        ByteSpan v;
        uint8_t type;
        uint16_t version;

        *ret = (ClientHello){};

        if (!reader_u8(&r, &type) || type != TLS_HANDSHAKE_CLIENT_HELLO)
                return parse_fail(ret, "not a ClientHello message");
        if (!reader_bytes(&r, 3, &v) ||
            ((size_t) v.data[0] << 16 | (size_t) v.data[1] << 8 | v.data[2]) != r.left)
                return parse_fail(ret, "handshake length does not match the message");

        if (!reader_u16(&r, &version))
                return parse_fail(ret, "truncated legacy_version");
        ret->legacy_version = version;
        if (!reader_bytes(&r, 32, &ret->random))
                return parse_fail(ret, "truncated random");
        if (!reader_vec8(&r, &ret->session_id))
                return parse_fail(ret, "truncated session_id");
        if (ret->session_id.len > 32)
                return parse_fail(ret, "session_id longer than 32 bytes");
        if (!reader_vec16(&r, &v))
                return parse_fail(ret, "truncated cipher_suites");
        if (v.len % 2 != 0)
                return parse_fail(ret, "odd cipher_suites length");
        ret->ciphers = (U16List){v.data, v.len / 2};
        if (!reader_vec8(&r, &ret->compression_methods))
                return parse_fail(ret, "truncated compression_methods");

        if (r.left == 0) /* no extensions block at all (SSL 3.0 style) */
                return 0;

        ret->has_extensions_block = true;
        if (!reader_vec16(&r, &ret->extensions))
                return parse_fail(ret, "truncated extensions");
        if (r.left != 0)
                return parse_fail(ret, "trailing bytes after the extensions");

        Reader e = {ret->extensions.data, ret->extensions.len};
        while (e.left > 0) {
                uint16_t ext;
                const char *reason;

                if (!reader_u16(&e, &ext) || !reader_vec16(&e, &v))
                        return parse_fail(ret, "truncated extension");
                ret->n_extensions++;
                reason = parse_extension(ext, v, ret);
                if (reason)
                        return parse_fail(ret, reason);
        }

        return 0;
}

bool clienthello_extension_next(const ClientHello *ch, size_t *pos, uint16_t *ret_type, ByteSpan *ret_data) {
        if (*pos >= ch->extensions.len)
                return false;

        Reader r = {ch->extensions.data + *pos, ch->extensions.len - *pos};
        if (!reader_u16(&r, ret_type) || !reader_vec16(&r, ret_data))
                return false;
        *pos = ch->extensions.len - r.left;
        return true;
}

bool clienthello_alpn_next(const ClientHello *ch, size_t *offset, ByteSpan *ret_protocol) {
        if (*offset >= ch->alpn_list.len)
                return false;

        Reader r = {ch->alpn_list.data + *offset, ch->alpn_list.len - *offset};
        if (!reader_vec8(&r, ret_protocol))
                return false;
        *offset = ch->alpn_list.len - r.left;
        return true;
}

bool clienthello_key_share_next(const ClientHello *ch, size_t *offset, uint16_t *ret_group) {
        ByteSpan key;

        if (*offset >= ch->key_shares.len)
                return false;

        Reader r = {ch->key_shares.data + *offset, ch->key_shares.len - *offset};
        if (!reader_u16(&r, ret_group) || !reader_vec16(&r, &key))
                return false;
        *offset = ch->key_shares.len - r.left;
        return true;
}
