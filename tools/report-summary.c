/* SPDX-License-Identifier: MIT */
/* The summary verb's output: totals, outcomes, alerts, patterns, attempts needed. */
#include <inttypes.h>

#include "report-output.h"
#include "report-time.h"

/* The fleet's families: the label, else the stable JA4, else what clients without a ClientHello did. */
static const char *fleet_name(const ReportClient *cl, ReportLabels *l) {
        const char *label = l ? report_labels_get(l, cl->ja4, NULL, NULL) : NULL;

        return label ?: cl->ja4 ?: "(no ClientHello)";
}

void report_output_summary(ReportOutput *o, const ReportSummary *s) {
        report_output_summary_fleet(o, s, NULL, NULL);
}

void report_output_summary_fleet(ReportOutput *o, const ReportSummary *s, ReportClients *c, ReportLabels *l) {
        _cleanup_free_ ReportClient **fleet = NULL;
        size_t n_fleet = c ? report_clients_sorted_by_hosts(c, REPORT_FLEET_FAMILIES, &fleet) : 0;
        char a[32], b[32];
        Json j;

        if (o->mode == OUTPUT_CSV) {
                fputs("section,name,count", o->f);
                csv_end(o);
                fprintf(o->f, "total,attempts,%" PRIu64 "\r\n", s->attempts);
                fprintf(o->f, "total,failures,%" PRIu64 "\r\n", s->failures);
                fprintf(o->f, "total,forwarding_errors,%" PRIu64 "\r\n", s->forwarding_errors);
                fprintf(o->f, "total,sequences,%" PRIu64 "\r\n", s->sequences);
                for (int i = 0; i < _OUTCOME_MAX; i++)
                        fprintf(o->f, "outcome,%s,%" PRIu64 "\r\n", outcome_to_string(i), s->outcomes[i]);
                for (int i = 0; i < 256; i++)
                        if (s->alerts_received[i])
                                fprintf(o->f, "alert_received,%d,%" PRIu64 "\r\n", i, s->alerts_received[i]);
                for (int i = 0; i < 256; i++)
                        if (s->alerts_sent[i])
                                fprintf(o->f, "alert_sent,%d,%" PRIu64 "\r\n", i, s->alerts_sent[i]);
                for (int i = 0; i < _SEQUENCE_OUTCOME_MAX; i++)
                        fprintf(o->f,
                                "sequence_outcome,%s,%" PRIu64 "\r\n",
                                sequence_outcome_to_string(i),
                                s->sequence_outcomes[i]);
                for (int i = 0; i < _PATTERN_MAX; i++)
                        fprintf(o->f, "pattern,%s,%" PRIu64 "\r\n", pattern_to_string(i), s->patterns[i]);
                for (int i = 1; i <= REPORT_RETRY_BUCKETS; i++)
                        if (s->retries_ok[i])
                                fprintf(o->f,
                                        "attempts_to_success,%d%s,%" PRIu64 "\r\n",
                                        i,
                                        i == REPORT_RETRY_BUCKETS ? "+" : "",
                                        s->retries_ok[i]);
                if (c) {
                        fprintf(o->f, "total,hosts,%" PRIu64 "\r\n", s->hosts);
                        for (size_t i = 0; i < n_fleet; i++) {
                                fputs("failing_hosts,", o->f);
                                escape_csv_fputs(
                                        o->f, fleet_name(fleet[i], l), strlen(fleet_name(fleet[i], l)));
                                fprintf(o->f, ",%zu\r\n", fleet[i]->n_failing_hosts);
                        }
                }
                o->rows++;
                return;
        }
        if (o->mode == OUTPUT_JSON || o->mode == OUTPUT_JSON_PRETTY) {
                Json sub;

                json_begin(&j, o);
                json_int(&j, "attempts", (int64_t) s->attempts);
                json_int(&j, "failures", (int64_t) s->failures);
                json_int(&j, "forwarding_errors", (int64_t) s->forwarding_errors);
                json_int_or_null(&j, "first_us", s->first_us, s->attempts == 0);
                json_int_or_null(&j, "last_us", s->last_us, s->attempts == 0);
#define JSON_MAP(key, cond, name_expr, value_expr, count)                          \
        do {                                                                       \
                json_key(&j, key);                                                 \
                json_begin(&sub, o);                                               \
                sub.depth = 1;                                                     \
                for (int i = 0; i < (count); i++)                                  \
                        if (cond) {                                                \
                                char _n_[32];                                      \
                                (void) snprintf(_n_, sizeof _n_, "%s", name_expr); \
                                json_int(&sub, _n_, (int64_t) (value_expr));       \
                        }                                                          \
                json_end(&sub);                                                    \
        } while (0)
                JSON_MAP("outcomes", true, outcome_to_string(i), s->outcomes[i], _OUTCOME_MAX);
                char num[8];
                JSON_MAP(
                        "alerts_received",
                        s->alerts_received[i] > 0,
                        (snprintf(num, sizeof num, "%d", i), num),
                        s->alerts_received[i],
                        256);
                JSON_MAP(
                        "alerts_sent",
                        s->alerts_sent[i] > 0,
                        (snprintf(num, sizeof num, "%d", i), num),
                        s->alerts_sent[i],
                        256);
                json_int(&j, "sequences", (int64_t) s->sequences);
                JSON_MAP(
                        "sequence_outcomes",
                        true,
                        sequence_outcome_to_string(i),
                        s->sequence_outcomes[i],
                        _SEQUENCE_OUTCOME_MAX);
                JSON_MAP("patterns", true, pattern_to_string(i), s->patterns[i], _PATTERN_MAX);
                JSON_MAP(
                        "attempts_to_success",
                        i > 0 && s->retries_ok[i] > 0,
                        (snprintf(num, sizeof num, "%d%s", i, i == REPORT_RETRY_BUCKETS ? "+" : ""), num),
                        s->retries_ok[i],
                        REPORT_RETRY_BUCKETS + 1);
#undef JSON_MAP
                json_int(&j, "hosts", (int64_t) s->hosts);
                if (c) {
                        json_key(&j, "fleet");
                        fputc('[', o->f);
                        for (size_t i = 0; i < n_fleet; i++) {
                                if (i > 0)
                                        fputc(',', o->f);
                                json_begin(&sub, o);
                                sub.depth = 2;
                                json_str(&sub, "ja4", fleet[i]->ja4);
                                json_str(
                                        &sub,
                                        "label",
                                        l ? report_labels_get(l, fleet[i]->ja4, NULL, NULL) : NULL);
                                json_int(&sub, "failing_hosts", (int64_t) fleet[i]->n_failing_hosts);
                                json_str(&sub, "first_failure_host", fleet[i]->first_failure_host);
                                json_int(&sub, "first_failure_us", fleet[i]->first_failure_us);
                                json_end(&sub);
                        }
                        fputc(']', o->f);
                }
                json_end(&j);
                o->rows++;
                return;
        }

        /* the text in a buffer first, then wrapped to the width line by line */
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *out = o->f;

        o->f = open_memstream(&text, &size);
        if (!o->f) {
                o->f = out;
                return;
        }
        if (s->attempts > 0) {
                report_time_format(s->first_us, a);
                report_time_format(s->last_us, b);
        }
        fprintf(o->f,
                "%sAttempts:%s %" PRIu64 ", %" PRIu64 " failed",
                color(o, ANSI_BOLD),
                color(o, ANSI_RESET),
                s->attempts,
                s->failures);
        if (s->forwarding_errors > 0)
                fprintf(o->f, ", %" PRIu64 " with a forwarding error", s->forwarding_errors);
        if (s->attempts > 0)
                fprintf(o->f, " (%s to %s)", a, b);
        fputs("\n  by outcome:", o->f);
        for (int i = 0; i < _OUTCOME_MAX; i++)
                if (s->outcomes[i])
                        fprintf(o->f, " %s %" PRIu64, outcome_to_string(i), s->outcomes[i]);
        fputs("\n  alerts received:", o->f);
        for (int i = 0; i < 256; i++)
                if (s->alerts_received[i])
                        fprintf(o->f,
                                " %d %s %" PRIu64 ";",
                                i,
                                strna(tls_alert_to_string(i)),
                                s->alerts_received[i]);
        fputs("\n  alerts sent:", o->f);
        for (int i = 0; i < 256; i++)
                if (s->alerts_sent[i])
                        fprintf(o->f, " %d %s %" PRIu64 ";", i, strna(tls_alert_to_string(i)), s->alerts_sent[i]);
        fprintf(o->f,
                "\n%sSequences:%s %" PRIu64 " (ok %" PRIu64 ", abandoned %" PRIu64 ", open %" PRIu64 ")\n  "
                "by "
                "patter"
                "n:",
                color(o, ANSI_BOLD),
                color(o, ANSI_RESET),
                s->sequences,
                s->sequence_outcomes[SEQUENCE_OK],
                s->sequence_outcomes[SEQUENCE_ABANDONED],
                s->sequence_outcomes[SEQUENCE_OPEN]);
        for (int i = 0; i < _PATTERN_MAX; i++)
                if (s->patterns[i])
                        fprintf(o->f, " %s %" PRIu64 ";", pattern_to_string(i), s->patterns[i]);
        fputs("\n  attempts needed by successful sequences:", o->f);
        for (int i = 1; i <= REPORT_RETRY_BUCKETS; i++)
                if (s->retries_ok[i])
                        fprintf(o->f,
                                " %d%s: %" PRIu64 ";",
                                i,
                                i == REPORT_RETRY_BUCKETS ? "+" : "",
                                s->retries_ok[i]);
        fputc('\n', o->f);
        if (c) {
                fprintf(o->f,
                        "%sHosts:%s %" PRIu64 "\n  client families failing on the most hosts:",
                        color(o, ANSI_BOLD),
                        color(o, ANSI_RESET),
                        s->hosts);
                if (n_fleet == 0)
                        fputs(" none", o->f);
                fputc('\n', o->f);
                for (size_t i = 0; i < n_fleet; i++) {
                        _cleanup_free_ char *host_escaped = NULL;
                        const char *host = display_host(fleet[i]->first_failure_host, o->ascii, &host_escaped);

                        report_time_format(fleet[i]->first_failure_us, a);
                        fprintf(o->f,
                                "    %s: %zu of %" PRIu64 " hosts, first on %s at %s\n",
                                fleet_name(fleet[i], l),
                                fleet[i]->n_failing_hosts,
                                s->hosts,
                                host ?: "(unknown host)",
                                a);
                }
        }
        bool written = fclose(o->f) == 0;

        o->f = out;
        if (written && text)
                table_wrap_lines(o, text);
        o->rows++;
}
