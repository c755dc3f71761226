/* SPDX-License-Identifier: MIT */
/* The attempts verb's output: one attempt per line; JSON and CSV are the shared writer's (attempt-format.h),
 * as the daemon's page writes them. */
#include "attempt-format.h"
#include "report-output.h"
#include "report-time.h"

static void attempt_json(ReportOutput *o, const Attempt *a, const char *host) {
        attempt_json_write_host(o->f, a, o->mode == OUTPUT_JSON_PRETTY, true, host);
        fputc('\n', o->f);
}

/* the host first, then the columns as the daemon's page writes them */
static void attempt_csv(ReportOutput *o, const Attempt *a, const char *host) {
        if (!o->header_done) {
                fputs("host,", o->f);
                attempt_csv_write_header(o->f);
                o->header_done = true;
        }
        csv_str(o, true, host);
        fputc(',', o->f);
        attempt_csv_write(o->f, a);
}

/* The table: by default what tells attempts apart at a glance, the User-Agent summarised as labels are
 * ("Chrome/156 (Linux)"); --full adds the version and the JA4 and shows the whole User-Agent, escaped. */
static const TableColumn attempt_table_columns[] = {
        {"TIME", .stream = 12},
        {"HOST", .cap = 24, .shrink = 2, .soft = 12, .hard = 8, .stream = 12},
        {"CLIENT", .cap = 32, .shrink = 2, .soft = 21, .hard = 15, .stream = 21},
        {"RESULT", .stream = 6, .tokens = true},
        {"STATE", .shrink = 4, .soft = 13, .hard = 9, .stream = 13},
        {"SNI", .cap = 24, .shrink = 1, .soft = 12, .hard = 8, .stream = 16},
        {"USER-AGENT", .shrink = 3, .soft = 18, .hard = 10, .stream = 20},
};

static const TableColumn attempt_table_columns_full[] = {
        {"TIME", .stream = 23},
        {"HOST", .stream = 16},
        {"CLIENT", .stream = 21},
        {"RESULT", .stream = 6, .tokens = true},
        {"STATE", .stream = 13},
        {"VERSION", .stream = 7},
        {"JA4", .stream = 36},
        {"SNI", .stream = 16},
        {"USER-AGENT", .stream = 20},
};

static void attempt_table(ReportOutput *o, const Attempt *a, const char *host, const char *label) {
        static TableColumn without[2][TABLE_COLUMNS_MAX];
        size_t n_columns;
        const TableColumn *columns = o->full
                ? table_columns_host(
                          o,
                          attempt_table_columns_full,
                          ELEMENTSOF(attempt_table_columns_full),
                          without[1],
                          &n_columns)
                : table_columns_host(
                          o, attempt_table_columns, ELEMENTSOF(attempt_table_columns), without[0], &n_columns);
        SequenceAttempt sa = {
                .outcome = a->outcome,
                .alert_received = (int16_t) a->alert_received,
                .alert_sent = (int16_t) a->alert_sent,
                .resumed = a->resumed,
        };
        const char *cells[TABLE_COLUMNS_MAX] = {}, *above = NULL;
        char t[32], day[32], tok[24], client[sizeof a->peer_addr + 16], ua_summary[REPORT_LABEL_MAX];
        _cleanup_free_ char *sni_escaped = NULL, *ua_escaped = NULL, *label_cell = NULL, *below = NULL,
                            *host_escaped = NULL;
        const char *sni = display_cell(&a->sni, o->ascii, &sni_escaped),
                   *ua = display_cell(&a->user_agent, o->ascii, &ua_escaped);
        bool v6 = strchr(a->peer_addr, ':');
        size_t k = 0;

        if (!table_ready(o, columns, n_columns))
                return;
        report_time_format(a->started_us, t);
        if (o->full)
                cells[k++] = t;
        else {
                t[10] = '\0';
                above = table_day_change(o, t, day);
                cells[k++] = t + 11;
        }
        if (o->hosts) {
                host = display_host(host, o->ascii, &host_escaped);
                cells[k++] = host ?: "-";
        }
        (void) snprintf(
                client, sizeof client, "%s%s%s:%u", v6 ? "[" : "", a->peer_addr, v6 ? "]" : "", a->peer_port);
        cells[k++] = client;
        cells[k++] = sequence_attempt_token(&sa, o->ascii, tok);
        cells[k++] = handshake_step_to_string(a->state_reached);
        if (o->full) {
                cells[k++] = a->version;
                cells[k++] = a->ja4;
        }
        cells[k++] = sni;
        if (!a->user_agent.data && label) { /* the family's label, in parentheses: not this attempt's own */
                _cleanup_free_ char *l = escape_display(label, strlen(label));

                if (l && asprintf(&label_cell, "(%s)", l) < 0)
                        label_cell = NULL;
                cells[k++] = label_cell ?: ua;
        } else if (o->full || !a->user_agent.data)
                cells[k++] = ua;
        else { /* "Chrome/156 (Linux)", as the labels of sequences read */
                report_user_agent_summary(a->user_agent.data, a->user_agent.len, ua_summary);
                cells[k++] = ua_summary;
        }
        if (a->backend_error) { /* the handshake went well, what came after did not (--backend) */
                _cleanup_free_ char *e = escape_display(a->backend_error, strlen(a->backend_error));

                if (e && asprintf(&below, "forwarding: %s", e) < 0)
                        below = NULL;
        }
        (void) table_add(o, columns, n_columns, cells, NULL, above, NULL, below, ANSI_GREY);
}

void report_output_attempt_host(ReportOutput *o, const Attempt *a, const char *host, const char *label) {
        switch (o->mode) {
        case OUTPUT_JSON:
        case OUTPUT_JSON_PRETTY: attempt_json(o, a, host); break;
        case OUTPUT_CSV: attempt_csv(o, a, host); break;
        default: attempt_table(o, a, host, label); break;
        }
        o->rows++;
}

void report_output_attempt_labelled(ReportOutput *o, const Attempt *a, const char *label) {
        report_output_attempt_host(o, a, NULL, label);
}

void report_output_attempt(ReportOutput *o, const Attempt *a) {
        report_output_attempt_labelled(o, a, NULL);
}
