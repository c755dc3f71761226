/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <strings.h>

#include "describe.h"
#include "escape.h"

char *tls_alert_format(int alert, char buf[static 32]) {
        const char *name = tls_alert_to_string(alert);

        (void) snprintf(buf, 32, "%s(%d)", name ?: "alert", alert);
        return buf;
}

/* The sentence being built; oom is set when escaping a string failed. */
typedef struct Out {
        FILE *f;
        bool oom;
} Out;

/* Appends a string from the record, escaped. */
static void put_escaped(Out *o, const char *s, size_t len) {
        _cleanup_free_ char *e = escape_display(s, len);

        if (!e) {
                o->oom = true;
                return;
        }
        fputs(e, o->f);
}

static void put_str(Out *o, const char *s) {
        put_escaped(o, s, strlen(s));
}

static void put_alert(FILE *f, const char *prefix, int alert) {
        char buf[32];

        fprintf(f, "%s%s", prefix, tls_alert_format(alert, buf));
}

/* Where the client was when it acted (sent an alert, reset, closed). */
static const char *client_phrase(const Attempt *a) {
        switch (a->state_reached) {
        case STEP_CONNECTED:
                return a->bytes_in > 0 ? "in the middle of its ClientHello" : "before sending any data";
        case STEP_CLIENT_HELLO: return "after its ClientHello, before our certificate";
        case STEP_SERVER_FLIGHT: return a->resumed ? "after our Finished" : "after our certificate";
        case STEP_CLIENT_FLIGHT: return "at the end of the handshake";
        case STEP_DONE: return "after the handshake completed";
        default: return "at an unknown step";
        }
}

static const char *timeout_phrase(const Attempt *a) {
        switch (a->state_reached) {
        case STEP_CONNECTED:
                return a->bytes_in > 0 ? "waiting for the rest of the ClientHello"
                                       : "waiting for the ClientHello";
        case STEP_CLIENT_HELLO: return "while sending our certificate";
        case STEP_SERVER_FLIGHT: return "waiting for the client's answer to our certificate";
        case STEP_CLIENT_FLIGHT: return "while finishing the handshake";
        case STEP_DONE: return "after the handshake completed";
        default: return "at an unknown step";
        }
}

static void describe_ok(Out *o, const Attempt *a) {
        FILE *f = o->f;

        const char *sep = " (";

        fputs("handshake complete", f);
        if (a->version) {
                fputs(sep, f);
                put_str(o, a->version);
                sep = ", ";
        }
        if (a->cipher) {
                fputs(sep, f);
                put_str(o, a->cipher);
                sep = ", ";
        }
        if (a->alpn.data) {
                fprintf(f, "%sALPN ", sep);
                put_escaped(o, a->alpn.data, a->alpn.len);
                sep = ", ";
        }
        if (a->resumed) {
                fprintf(f, "%sresumed", sep);
                sep = ", ";
        }
        if (a->hello_retry) {
                fprintf(f, "%safter HelloRetryRequest", sep);
                sep = ", ";
        }
        if (sep[0] == ',')
                fputc(')', f);
}

/* "TLSv1.1,TLSv1.0" -> "TLSv1.1, TLSv1.0"; one version -> "only TLSv1.0". */
static void put_versions(Out *o, const char *versions) {
        FILE *f = o->f;

        if (!strchr(versions, ',')) {
                fputs("only ", f);
                put_str(o, versions);
                return;
        }
        for (const char *p = versions; *p;) {
                size_t n = strcspn(p, ",");

                put_escaped(o, p, n);
                p += n;
                if (*p == ',') {
                        fputs(", ", f);
                        p++;
                }
        }
}

static void put_tls_error_code(FILE *f, int code) {
        if (code < 0)
                fprintf(f, "-0x%04x", (unsigned) -code);
        else
                fprintf(f, "%d", code);
}

static void describe_tls_error(Out *o, const Attempt *a) {
        FILE *f = o->f;

        if (a->alert_sent == 70) {
                fputs("no TLS version in common", f);
                if (a->offered_versions) {
                        fputs(": client offers ", f);
                        put_versions(o, a->offered_versions);
                }
        } else if (a->alert_sent == 40 && a->state_reached <= STEP_CLIENT_HELLO)
                fputs("no usable cipher suite in common", f);
        else {
                fputs("we aborted the handshake: ", f);
                if (a->error_text) {
                        put_str(o, a->error_text);
                        if (a->tls_error != 0) {
                                fputs(" (", f);
                                put_tls_error_code(f, a->tls_error);
                                fputc(')', f);
                        }
                } else if (a->tls_error != 0) {
                        fputs("Mbed TLS error ", f);
                        put_tls_error_code(f, a->tls_error);
                } else
                        fputs("unknown reason", f);
                fprintf(f, " %s", client_phrase(a));
        }
        if (a->alert_sent >= 0)
                put_alert(f, "; we sent alert ", a->alert_sent);
}

static void describe_not_tls(Out *o, const Attempt *a) {
        FILE *f = o->f;

        if (a->error_text && strcasestr(a->error_text, "http")) {
                fputs("plain HTTP sent to the TLS port", f);
                return;
        }
        fputs("the client sent something that is not TLS", f);
        if (a->error_text) {
                fputs(" (", f);
                put_str(o, a->error_text);
                fputc(')', f);
        }
}

/* The client asked to renegotiate after the handshake; we refused (alert_sent no_renegotiation). */
static void describe_renegotiation(Out *o, const Attempt *a) {
        FILE *f = o->f;

        fputs("the client asked to renegotiate after the handshake and we refused "
              "(renegotiation is disabled; we sent alert no_renegotiation(100)); then ",
              f);
        switch (a->outcome) {
        case OUTCOME_PEER_ALERT:
                if (a->alert_received >= 0)
                        put_alert(f, "it sent alert ", a->alert_received);
                else
                        fputs("it sent a fatal alert", f);
                break;
        case OUTCOME_PEER_RESET: fputs("it reset the connection", f); break;
        default: fputs("it closed the connection", f); break;
        }
}

static void describe_failure(Out *o, const Attempt *a) {
        FILE *f = o->f;

        if (a->alert_sent == 100 && a->state_reached == STEP_DONE && a->outcome != OUTCOME_TLS_ERROR) {
                describe_renegotiation(o, a);
                return;
        }
        switch (a->outcome) {
        case OUTCOME_PEER_ALERT:
                if (a->alert_received >= 0)
                        put_alert(f, "client sent alert ", a->alert_received);
                else
                        fputs("client sent a fatal alert", f);
                fprintf(f, " %s", client_phrase(a));
                break;
        case OUTCOME_PEER_RESET: fprintf(f, "client reset the connection %s", client_phrase(a)); break;
        case OUTCOME_PEER_CLOSED: fprintf(f, "client closed the connection %s", client_phrase(a)); break;
        case OUTCOME_NO_DATA: fputs("connection closed without sending any data", f); break;
        case OUTCOME_TIMEOUT: fprintf(f, "handshake timed out %s", timeout_phrase(a)); break;
        case OUTCOME_NOT_TLS: describe_not_tls(o, a); break;
        case OUTCOME_TLS_ERROR: describe_tls_error(o, a); return; /* names alert_sent itself */
        case OUTCOME_SERVER_ERROR:
                fputs("server-side failure", f);
                if (a->error_text) {
                        fputs(": ", f);
                        put_str(o, a->error_text);
                }
                break;
        default: fputs("unknown outcome", f); break;
        }
        if (a->outcome != OUTCOME_PEER_ALERT && a->alert_received >= 0)
                put_alert(f, "; client sent alert ", a->alert_received);
        if (a->alert_sent >= 0)
                put_alert(f, "; we sent alert ", a->alert_sent);
}

char *attempt_describe(const Attempt *a) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        Out o = {};
        bool failed;

        o.f = open_memstream(&buf, &size);
        if (!o.f)
                return NULL;
        if (a->outcome == OUTCOME_OK)
                describe_ok(&o, a);
        else
                describe_failure(&o, a);
        failed = ferror(o.f) || o.oom;
        if (fclose(o.f) != 0 || failed)
                return NULL;
        return TAKE_PTR(buf);
}
