/* SPDX-License-Identifier: MIT */
/* The clients verb's output: one line per client family. */
#include <inttypes.h>

#include "report-output.h"
#include "report-time.h"

/* The whole stable JA4 (this verb is where it is shown), who it is and how it fares. The commonest failure
 * gets a line of its own under its family when the width is under 120 columns. */
static const TableColumn client_columns[] = {
        {"CLIENT FAMILY (STABLE JA4)", .shrink = 2, .soft = 16, .hard = 16, .stream = 36},
        {"USER-AGENT", .cap = 24, .shrink = 1, .soft = 12, .hard = 8, .stream = 20},
        {"ATTEMPTS", .right = true, .stream = 8},
        {"SUCCESS", .right = true, .stream = 7},
        {"RETRIES/OK", .right = true, .stream = 10},
        {"COMMONEST FAILURE", .hard = 10, .stream = 20},
};

void report_output_clients(ReportOutput *o, ReportClients *c, ReportLabels *l) {
        _cleanup_free_ ReportClient **v = NULL;
        size_t n = report_clients_sorted(c, &v);
        bool wide = o->width == 0 || o->width >= 120;
        const TableColumn *columns = client_columns;

        if (o->mode == OUTPUT_CSV && n > 0) {
                fputs("ja4,label,attempts,successes,success_rate,sequences,ok_sequences,retries_per_success,"
                      "commonest_failure,failing_hosts,first_failure_host,first_failure_us",
                      o->f);
                csv_end(o);
        }
        for (size_t i = 0; i < n; i++) {
                const ReportClient *cl = v[i];
                const ReportAgentCount *agents;
                size_t n_agents;
                const char *label = report_labels_get(l, cl->ja4, &agents, &n_agents);
                char fb[64];
                const char *failure = report_client_commonest_failure(cl, fb);
                double rate = cl->attempts ? (double) cl->successes / (double) cl->attempts : 0;
                double retries = cl->ok_sequences ? (double) cl->retries / (double) cl->ok_sequences : 0;
                Json j;

                switch (o->mode) {
                case OUTPUT_JSON:
                case OUTPUT_JSON_PRETTY:
                        json_begin(&j, o);
                        json_str(&j, "ja4", cl->ja4);
                        json_str(&j, "label", label);
                        json_key(&j, "user_agents");
                        fputc('[', o->f);
                        for (size_t k = 0; k < n_agents; k++) {
                                Json a;

                                if (k > 0)
                                        fputc(',', o->f);
                                json_begin(&a, o);
                                a.depth = j.depth + 1;
                                json_str(&a, "summary", agents[k].summary);
                                json_int(&a, "count", (int64_t) agents[k].count);
                                json_end(&a);
                        }
                        fputc(']', o->f);
                        json_int(&j, "attempts", (int64_t) cl->attempts);
                        json_int(&j, "successes", (int64_t) cl->successes);
                        json_double(&j, "success_rate", rate, cl->attempts == 0);
                        json_int(&j, "sequences", (int64_t) cl->sequences);
                        json_int(&j, "ok_sequences", (int64_t) cl->ok_sequences);
                        json_double(&j, "retries_per_success", retries, cl->ok_sequences == 0);
                        json_str(&j, "commonest_failure", failure);
                        /* the fleet: on how many hosts it fails, and where first */
                        json_int(&j, "failing_hosts", (int64_t) cl->n_failing_hosts);
                        json_str(&j, "first_failure_host", cl->first_failure_host);
                        json_int_or_null(
                                &j, "first_failure_us", cl->first_failure_us, cl->first_failure_us == INT64_MAX);
                        json_end(&j);
                        break;
                case OUTPUT_CSV:
                        csv_str(o, true, cl->ja4);
                        csv_str(o, false, label);
                        csv_int(o, (int64_t) cl->attempts, false);
                        csv_int(o, (int64_t) cl->successes, false);
                        fprintf(o->f, ",%.4g", rate);
                        csv_int(o, (int64_t) cl->sequences, false);
                        csv_int(o, (int64_t) cl->ok_sequences, false);
                        fprintf(o->f, ",%.4g", retries);
                        csv_str(o, false, failure);
                        csv_int(o, (int64_t) cl->n_failing_hosts, false);
                        csv_str(o, false, cl->first_failure_host);
                        if (cl->first_failure_us != INT64_MAX)
                                fprintf(o->f, ",%" PRId64, cl->first_failure_us);
                        else
                                fputc(',', o->f);
                        csv_end(o);
                        break;
                default: {
                        const char *cells[TABLE_COLUMNS_MAX] = {}, *below = NULL;
                        char n_attempts[DECIMAL_MAX], rate_text[16], retries_text[32], below_text[512];

                        (void) snprintf(n_attempts, sizeof n_attempts, "%" PRIu64, cl->attempts);
                        (void) snprintf(rate_text, sizeof rate_text, "%.1f%%", rate * 100);
                        (void) snprintf(retries_text, sizeof retries_text, "%.2f", retries);
                        cells[0] = cl->ja4 ?: "(no ClientHello)";
                        cells[1] = label;
                        cells[2] = n_attempts;
                        cells[3] = rate_text;
                        cells[4] = retries_text;
                        if (wide)
                                cells[5] = failure;
                        else if (failure) {
                                (void) snprintf(
                                        below_text, sizeof below_text, "commonest failure: %s", failure);
                                below = below_text;
                        }
                        /* the fleet: a line under the family */
                        if (o->hosts && cl->first_failure_us != INT64_MAX) {
                                _cleanup_free_ char *host_escaped = NULL;
                                const char *host = display_host(
                                        cl->first_failure_host, o->ascii, &host_escaped);
                                char t[32];
                                size_t used = below ? strlen(below_text) : 0;

                                report_time_format(cl->first_failure_us, t);
                                (void) snprintf(
                                        below_text + used,
                                        sizeof below_text - used,
                                        "%sfails on %zu host%s, first on %s at %s",
                                        used > 0 ? "; " : "",
                                        cl->n_failing_hosts,
                                        cl->n_failing_hosts == 1 ? "" : "s",
                                        host ?: "(unknown host)",
                                        t);
                                below = below_text;
                        }
                        (void) table_add(
                                o,
                                columns,
                                wide ? ELEMENTSOF(client_columns) : ELEMENTSOF(client_columns) - 1,
                                cells,
                                NULL,
                                NULL,
                                NULL,
                                below,
                                NULL);
                }
                }
                o->rows++;
        }
}
