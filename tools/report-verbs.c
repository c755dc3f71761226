/* SPDX-License-Identifier: MIT */
/* tlsreport's verbs: what each command reads, groups, counts and writes. tlsreport.c parses the command
 * line and calls one of them; the tests call them the same way. */
#include "log.h"
#include "report.h"

typedef struct Context {
        ReportRun *run;
        ReportSummary summary;
        ReportLabels *labels;
        ReportClients *clients;
        Sequencer *sequencer;
        ReportHtml *html; /* -o html: what the page draws */
        bool list;        /* write each sequence as it is found (sequences) */
        uint64_t shown;   /* sequences written */
} Context;

static void context_done(Context *c) {
        c->labels = report_labels_free(c->labels);
        c->clients = report_clients_free(c->clients);
        c->sequencer = sequencer_free(c->sequencer);
        c->html = report_html_free(c->html);
}

static int load_label(const char *ja4, const RawString *ua, uint64_t count, void *userdata) {
        return report_labels_add(userdata, ja4, ua, count);
}

static int load_labels(Context *c) {
        int r = report_labels_new(&c->labels);

        if (r < 0)
                return log_oom();
        r = report_db_foreach_user_agent(c->run->db, &c->run->filter, load_label, c->labels);
        if (r < 0)
                return log_error_errno(r, "Failed to read User-Agents: %s", report_db_error(c->run->db));
        report_labels_seal(c->labels);
        return 0;
}

static int on_sequence(const Sequence *q, void *userdata) {
        Context *c = userdata;
        ReportOutput *o = &c->run->out;

        report_summary_add_sequence(&c->summary, q);
        if (c->clients && report_clients_add_sequence(c->clients, q) < 0)
                return -ENOMEM;
        if (c->html && report_html_add_sequence(c->html, q) < 0)
                return -ENOMEM;
        if (c->list && (c->run->all || q->n_failures > 0)) {
                report_output_sequence_labelled(o, q, c->labels);
                c->shown++;
        }
        return ferror(o->f) ? -EIO : 0;
}

static int on_attempt_sequence(const Attempt *a, void *userdata) {
        Context *c = userdata;

        report_summary_add_attempt(&c->summary, a);
        if (c->clients && report_clients_add_attempt(c->clients, a) < 0)
                return -ENOMEM;
        if (c->html && report_html_add_attempt(c->html, a) < 0)
                return -ENOMEM;
        return sequencer_feed(c->sequencer, a);
}

static int group(Context *c) {
        int r;

        r = sequencer_new(&c->run->params, on_sequence, c, &c->sequencer);
        if (r < 0)
                return log_error_errno(r, "Failed to set up grouping: %m");
        r = report_db_foreach_attempt(c->run->db, &c->run->filter, false, on_attempt_sequence, c);
        if (r == -EPIPE || r == -EIO)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to read attempts: %s", report_db_error(c->run->db));
        r = sequencer_flush(c->sequencer, c->run->now_us != 0 ? c->run->now_us : now_realtime_us());
        if (r < 0)
                return r;
        return 0;
}

static int verb_sequences(Context *c) {
        int r;

        r = load_labels(c);
        if (r < 0)
                return r;
        c->list = true;
        r = group(c);
        if (r < 0)
                return r;
        if (c->summary.attempts == 0)
                log_notice("No attempts matched.");
        else
                report_output_sequences_footer(&c->run->out, &c->summary, c->shown);
        if (c->summary.attempts > 0 && c->shown == 0 && !c->run->all && c->run->out.mode != OUTPUT_TABLE)
                log_notice("No sequence with a failure; use --all to list the clean ones.");
        return 0;
}

static int on_attempt_output(const Attempt *a, void *userdata) {
        ReportOutput *o = userdata;

        report_output_attempt(o, a);
        return ferror(o->f) ? -EIO : 0;
}

static int verb_attempts(Context *c) {
        ReportOutput *o = &c->run->out;
        int r;

        r = report_db_foreach_attempt(c->run->db, &c->run->filter, true, on_attempt_output, o);
        if (r == -EIO && ferror(o->f))
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to read attempts: %s", report_db_error(c->run->db));
        if (o->rows == 0)
                log_notice("No attempts matched.");
        return 0;
}

static int verb_clients(Context *c) {
        int r;

        r = load_labels(c);
        if (r < 0)
                return r;
        r = report_clients_new(&c->clients);
        if (r < 0)
                return log_oom();
        r = group(c);
        if (r < 0)
                return r;
        report_output_clients(&c->run->out, c->clients, c->labels);
        if (c->run->out.rows == 0)
                log_notice("No attempts matched.");
        return 0;
}

static int verb_summary(Context *c) {
        int r = group(c);

        if (r < 0)
                return r;
        if (c->summary.attempts == 0)
                log_notice("No attempts matched.");
        report_output_summary(&c->run->out, &c->summary);
        return 0;
}

/* -o html, whatever the verb: the whole report as one page (report-html.c). */
static int verb_html(Context *c) {
        int r;

        r = load_labels(c);
        if (r < 0)
                return r;
        r = report_html_new(c->labels, c->run->all, &c->html);
        if (r < 0)
                return log_oom();
        r = group(c);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return r;
        if (c->summary.attempts == 0)
                log_notice("No attempts matched.");
        r = report_output_html(&c->run->out, c->html, &c->summary);
        if (r < 0)
                return log_oom();
        return 0;
}

static const struct {
        const char *name;
        int (*run)(Context *c);
} verbs[] = {
        {"sequences", verb_sequences},
        {"attempts", verb_attempts},
        {"clients", verb_clients},
        {"summary", verb_summary},
};

bool report_verb_known(const char *name) {
        FOREACH_ARRAY(v, verbs, ELEMENTSOF(verbs))
                if (streq(v->name, name))
                        return true;
        return false;
}

int report_verb_run(const char *name, ReportRun *run) {
        _cleanup_(context_done) Context c = {.run = run};

        report_summary_init(&c.summary);
        if (run->out.mode == OUTPUT_HTML && report_verb_known(name))
                return verb_html(&c);
        FOREACH_ARRAY(v, verbs, ELEMENTSOF(verbs))
                if (streq(v->name, name)) {
                        int r = v->run(&c);

                        report_output_done(&run->out);
                        return r;
                }
        return -EINVAL;
}
