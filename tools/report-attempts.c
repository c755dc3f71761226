/* SPDX-License-Identifier: MIT */
/* The attempts verb's output: one attempt per line; JSON and CSV are the shared writer's (attempt-format.h),
 * as the daemon's page writes them. */
#include "attempt-format.h"
#include "report-output.h"
#include "report-time.h"

static void attempt_json(ReportOutput *o, const Attempt *a) {
        attempt_json_write(o->f, a, o->mode == OUTPUT_JSON_PRETTY);
        fputc('\n', o->f);
}

static void attempt_csv(ReportOutput *o, const Attempt *a) {
        if (!o->header_done) {
                attempt_csv_write_header(o->f);
                o->header_done = true;
        }
        attempt_csv_write(o->f, a);
}

static void attempt_table(ReportOutput *o, const Attempt *a) {
        _cleanup_free_ char *sni = display(&a->sni), *ua = display(&a->user_agent);
        SequenceAttempt sa = {
                .outcome = a->outcome,
                .alert_received = (int16_t) a->alert_received,
                .alert_sent = (int16_t) a->alert_sent,
                .resumed = a->resumed,
        };
        char t[32], tok[24];

        if (!o->header_done) {
                fprintf(o->f,
                        "%s%-23s  %-21s  %-8s  %-13s  %-7s  %-36s  %-20s  %s%s\n",
                        color(o, ANSI_BOLD),
                        "TIME",
                        "CLIENT",
                        "RESULT",
                        "STATE",
                        "VERSION",
                        "JA4",
                        "SNI",
                        "USER-AGENT",
                        color(o, ANSI_RESET));
                o->header_done = true;
        }
        report_time_format(a->started_us, t);
        fprintf(o->f, "%s  %s", t, strchr(a->peer_addr, ':') ? "[" : "");
        fprintf(o->f, "%s%s:%u", a->peer_addr, strchr(a->peer_addr, ':') ? "]" : "", a->peer_port);
        for (size_t w = strlen(a->peer_addr) + 1 + (strchr(a->peer_addr, ':') ? 2 : 0) +
                     (size_t) snprintf(NULL, 0, "%u", a->peer_port);
             w < 21;
             w++)
                fputc(' ', o->f);
        fprintf(o->f, "  %s", color(o, a->outcome == OUTCOME_OK ? ANSI_GREEN : ANSI_RED));
        table_padded(o, sequence_attempt_token(&sa, o->ascii, tok), 8);
        fprintf(o->f,
                "%s  %-13s  %-7s  %-36s  ",
                color(o, ANSI_RESET),
                handshake_step_to_string(a->state_reached),
                a->version ?: "-",
                a->ja4 ?: "-");
        table_padded(o, sni, 20);
        fprintf(o->f, "  %s\n", ua);
}

void report_output_attempt(ReportOutput *o, const Attempt *a) {
        switch (o->mode) {
        case OUTPUT_JSON:
        case OUTPUT_JSON_PRETTY: attempt_json(o, a); break;
        case OUTPUT_CSV: attempt_csv(o, a); break;
        default: attempt_table(o, a); break;
        }
        o->rows++;
}
