/* SPDX-License-Identifier: MIT */
/* tlsreport's verbs: what each command reads, groups, counts and writes. tlsreport.c parses the command
 * line and calls one of them; the tests call them the same way. */
#include "hashmap.h"
#include "log.h"
#include "report.h"

typedef struct Context {
        ReportRun *run;
        ReportSummary summary;
        ReportLabels *labels;
        ReportClients *clients;
        Sequencer *sequencer;
        ReportHtml *html;   /* -o html: what the page draws */
        bool list;          /* write each sequence as it is found (sequences) */
        uint64_t shown;     /* sequences written */
        bool labels_inline; /* the labels are gathered from the attempts as they are grouped */
        HashMap hosts;      /* of HostSeen: the hosts of the attempts read, for summary.hosts */
        const char *last_host;
} Context;

typedef struct HostSeen {
        HashEntry map; /* first */
        const char *host;
} HostSeen;

static void context_done(Context *c) {
        for (size_t i = 0; i < c->hosts.n_buckets; i++)
                for (HashEntry *m = c->hosts.buckets[i], *next; m; m = next) {
                        next = m->next;
                        free(m);
                }
        hashmap_done(&c->hosts);
        c->labels = report_labels_free(c->labels);
        c->clients = report_clients_free(c->clients);
        c->sequencer = sequencer_free(c->sequencer);
        c->html = report_html_free(c->html);
}

static int load_label(const char *ja4, const RawString *ua, uint64_t count, void *userdata) {
        return report_labels_add(userdata, ja4, ua, count);
}

/* The labels (who each family is) before grouping. at_end: the verb uses them only once everything is
 * read (clients, summary), so from a journal, where a pass costs what journalctl -o export does, they are
 * gathered from the attempts as they are grouped instead of in a pass of their own: the same labels when
 * no filter but the time range and the hosts narrows the attempts. */
static int load_labels(Context *c, bool at_end) {
        const ReportFilter *f = &c->run->filter;
        int r = report_labels_new(&c->labels);

        if (r < 0)
                return log_oom();
        if (at_end && report_source_is_journal(c->run->source) && !f->client && !f->ja4 && !f->sni) {
                c->labels_inline = true;
                return 0;
        }
        r = report_source_foreach_user_agent(c->run->source, &c->run->filter, load_label, c->labels);
        if (r < 0)
                return log_error_errno(
                        r, "Failed to read User-Agents: %s", report_source_error(c->run->source));
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
        if (c->list && (c->run->all || !sequence_is_clean(q))) {
                report_output_sequence_labelled(o, q, c->labels);
                c->shown++;
        }
        return ferror(o->f) ? -EIO : 0;
}

/* Counts the distinct hosts (interned: by pointer; the same host comes in runs, mostly). */
static int host_seen(Context *c, const char *host) {
        uint64_t h;
        HostSeen *e;

        if (!host || host == c->last_host)
                return 0;
        c->last_host = host;
        h = hash_finish((uint64_t) (uintptr_t) host);
        HASHMAP_FOREACH_CHAIN(m, &c->hosts, h)
        if (((HostSeen *) m)->host == host)
                return 0;
        e = malloc(sizeof *e);
        if (!e)
                return -ENOMEM;
        e->host = host;
        if (hashmap_put(&c->hosts, &e->map, h) < 0) {
                free(e);
                return -ENOMEM;
        }
        c->summary.hosts++;
        return 0;
}

static int on_attempt_sequence(const Attempt *a, const char *host, void *userdata) {
        Context *c = userdata;

        if (host_seen(c, host) < 0)
                return -ENOMEM;
        report_summary_add_attempt(&c->summary, a);
        if (c->clients && report_clients_add_attempt(c->clients, a) < 0)
                return -ENOMEM;
        if (c->html && report_html_add_attempt(c->html, a) < 0)
                return -ENOMEM;
        if (c->labels_inline && a->outcome == OUTCOME_OK && a->ja4_stable && a->user_agent.data &&
            report_labels_add(c->labels, a->ja4_stable, &a->user_agent, 1) < 0)
                return -ENOMEM;
        return sequencer_feed_host(c->sequencer, a, host);
}

static int group(Context *c) {
        int r;

        r = sequencer_new(&c->run->params, on_sequence, c, &c->sequencer);
        if (r < 0)
                return log_error_errno(r, "Failed to set up grouping: %m");
        r = report_source_foreach_attempt(
                c->run->source,
                &c->run->filter,
                c->labels_inline ? REPORT_READ_USER_AGENT : REPORT_READ_GROUPING,
                on_attempt_sequence,
                c);
        if (r == -EPIPE || r == -EIO)
                return r;
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to read attempts: %s", report_source_error(c->run->source));
        r = sequencer_flush(c->sequencer, c->run->now_us != 0 ? c->run->now_us : now_realtime_us());
        if (r < 0)
                return r;
        if (c->labels_inline)
                report_labels_seal(c->labels);
        return 0;
}

static int verb_sequences(Context *c) {
        int r;

        r = load_labels(c, false);
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

static int on_attempt_output(const Attempt *a, const char *host, void *userdata) {
        ReportOutput *o = userdata;

        report_output_attempt_host(o, a, host, NULL);
        return ferror(o->f) ? -EIO : 0;
}

static int verb_attempts(Context *c) {
        ReportOutput *o = &c->run->out;
        int r;

        r = report_source_foreach_attempt(
                c->run->source, &c->run->filter, REPORT_READ_ALL, on_attempt_output, o);
        if (r == -EIO && ferror(o->f))
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to read attempts: %s", report_source_error(c->run->source));
        if (o->rows == 0)
                log_notice("No attempts matched.");
        return 0;
}

static int verb_clients(Context *c) {
        int r;

        r = load_labels(c, true);
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
        int r;

        /* the fleet: which client families fail on how many hosts, and where first */
        if (c->run->out.hosts) {
                r = load_labels(c, true);
                if (r < 0)
                        return r;
                r = report_clients_new(&c->clients);
                if (r < 0)
                        return log_oom();
        }
        r = group(c);
        if (r < 0)
                return r;
        if (c->summary.attempts == 0)
                log_notice("No attempts matched.");
        /* the fleet part only when the attempts were more than one host's */
        report_output_summary_fleet(
                &c->run->out, &c->summary, c->summary.hosts > 1 ? c->clients : NULL, c->labels);
        return 0;
}

/* -o html, whatever the verb: the whole report as one page (report-html.c). */
static int verb_html(Context *c) {
        int r;

        r = load_labels(c, false);
        if (r < 0)
                return r;
        r = report_html_new(c->labels, c->run->all, &c->html);
        if (r < 0)
                return log_oom();
        if (c->run->out.hosts) { /* the fleet, as summary shows it */
                r = report_clients_new(&c->clients);
                if (r < 0)
                        return log_oom();
        }
        r = group(c);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return r;
        if (c->summary.attempts == 0)
                log_notice("No attempts matched.");
        r = report_output_html(&c->run->out, c->html, &c->summary, c->summary.hosts > 1 ? c->clients : NULL);
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

static int verb_run(const char *name, ReportRun *run) {
        _cleanup_(context_done) Context c = {.run = run};

        if (hashmap_init(&c.hosts, 16) < 0)
                return log_oom();
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

int report_verb_run(const char *name, ReportRun *run) {
        _cleanup_(report_source_freep) ReportSource *own = NULL;
        int r;

        /* a caller that has one database and no host (the tests): a source of it alone */
        if (!run->source) {
                r = report_source_new(&own);
                if (r >= 0)
                        r = report_source_add_db(own, run->db, NULL);
                if (r < 0)
                        return log_oom();
                run->source = own;
        }
        if (report_source_many_hosts(run->source, &run->filter))
                run->out.hosts = true;
        r = verb_run(name, run);
        if (own)
                run->source = NULL;
        return r;
}
