/* SPDX-License-Identifier: MIT */
/* The clients verb's output: one line per client family. */
#include <inttypes.h>

#include "report-output.h"

void report_output_clients(ReportOutput *o, ReportClients *c, ReportLabels *l) {
        _cleanup_free_ ReportClient **v = NULL;
        size_t n = report_clients_sorted(c, &v);

        if (o->mode == OUTPUT_TABLE && n > 0)
                fprintf(o->f,
                        "%s%-36s  %-24s  %8s  %7s  %9s  %s%s\n",
                        color(o, ANSI_BOLD),
                        "CLIENT FAMILY (STABLE JA4)",
                        "USER-AGENT",
                        "ATTEMPTS",
                        "SUCCESS",
                        "RETRIES/OK",
                        "COMMONEST FAILURE",
                        color(o, ANSI_RESET));
        if (o->mode == OUTPUT_CSV && n > 0) {
                fputs("ja4,label,attempts,successes,success_rate,sequences,ok_sequences,retries_per_success,"
                      "commonest_failure",
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
                        csv_end(o);
                        break;
                default:
                        fprintf(o->f,
                                "%-36s  %-24s  %8" PRIu64 "  %6.1f%%  %9.2f   %s\n",
                                cl->ja4 ?: "(no ClientHello)",
                                label ?: "-",
                                cl->attempts,
                                rate * 100,
                                retries,
                                failure ?: "-");
                }
                o->rows++;
        }
}
