/* Rendering the Prometheus text exposition format, version 0.0.4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"
#include "metrics/process.h"
#include "util/clock.h"
#include "util/sbuf.h"

void metrics_family(sbuf_t *s, const char *name, const char *type, const char *help)
{
    sbuf_adds(s, "# HELP ");
    sbuf_adds(s, name);
    sbuf_addc(s, ' ');
    sbuf_adds(s, help);
    sbuf_adds(s, "\n# TYPE ");
    sbuf_adds(s, name);
    sbuf_addc(s, ' ');
    sbuf_adds(s, type);
    sbuf_addc(s, '\n');
}

static void num(sbuf_t *s, double v) { sbuf_add_double(s, v, false); }

/* A label value: escape backslash, quote and newline. */
void metrics_label(sbuf_t *s, const char *key, const char *value, bool first)
{
    if (!first)
        sbuf_addc(s, ',');
    sbuf_adds(s, key);
    sbuf_add(s, "=\"", 2);
    for (const char *c = value; *c; c++) {
        if (*c == '\\' || *c == '"')
            sbuf_addc(s, '\\');
        if (*c == '\n')
            sbuf_adds(s, "\\n");
        else
            sbuf_addc(s, *c);
    }
    sbuf_addc(s, '"');
}

void metrics_sample(sbuf_t *s, const char *name, const char *labels, double v)
{
    sbuf_adds(s, name);
    if (labels && *labels) {
        sbuf_addc(s, '{');
        sbuf_adds(s, labels);
        sbuf_addc(s, '}');
    }
    sbuf_addc(s, ' ');
    num(s, v);
    sbuf_addc(s, '\n');
}

/* name_bucket{labels,le=...}, name_sum, name_count. */
static void hist(sbuf_t *s, const char *name, const char *labels, const histogram_t *h)
{
    char key[128], lab[512];
    uint64_t cum = 0;
    for (int i = 0; i <= h->nbounds; i++) {
        cum += h->counts[i];
        char le[40];
        if (i < h->nbounds)
            snprintf(le, sizeof le, "%g", h->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        snprintf(lab, sizeof lab, "%s%sle=\"%s\"", labels, *labels ? "," : "", le);
        snprintf(key, sizeof key, "%s_bucket", name);
        metrics_sample(s, key, lab, (double)cum);
    }
    snprintf(key, sizeof key, "%s_sum", name);
    metrics_sample(s, key, labels, h->sum);
    snprintf(key, sizeof key, "%s_count", name);
    metrics_sample(s, key, labels, (double)h->count);
}

static char *queue_label(const char *queue)
{
    sbuf_t s;
    sbuf_init(&s, 64);
    metrics_label(&s, "queue", queue, true);
    return sbuf_take(&s);
}

static const struct {
    job_event_t ev;
    const char *name, *help;
} job_counters[] = {
    { JOB_EV_ENQUEUED, "jobq_jobs_enqueued_total", "Jobs accepted since start." },
    { JOB_EV_LEASED, "jobq_jobs_leased_total", "Attempts started since start." },
    { JOB_EV_COMPLETED, "jobq_jobs_completed_total", "Jobs completed since start." },
    { JOB_EV_FAILED, "jobq_jobs_failed_total", "Jobs failed for good since start." },
    { JOB_EV_RETRIED, "jobq_jobs_retried_total", "Failed attempts scheduled for retry since start." },
    { JOB_EV_CANCELLED, "jobq_jobs_cancelled_total", "Jobs cancelled since start." },
    { JOB_EV_REQUEUED, "jobq_jobs_requeued_total", "Finished jobs requeued by an operator since start." },
};

static void render_jobs(sbuf_t *s, metrics_t *m)
{
    const char *k;
    void *v;
    for (size_t c = 0; c < sizeof job_counters / sizeof job_counters[0]; c++) {
        metrics_family(s, job_counters[c].name, "counter", job_counters[c].help);
        for (size_t i = 0; hmap_next(&m->queues, &i, &k, &v);) {
            char *lab = queue_label(k);
            metrics_sample(s, job_counters[c].name, lab, (double)((mqueue_t *)v)->events[job_counters[c].ev]);
            free(lab);
        }
    }
    metrics_family(s, "jobq_job_execution_seconds", "histogram", "Time from lease to the worker's report, per attempt.");
    for (size_t i = 0; hmap_next(&m->queues, &i, &k, &v);) {
        char *lab = queue_label(k);
        hist(s, "jobq_job_execution_seconds", lab, &((mqueue_t *)v)->exec);
        free(lab);
    }
    metrics_family(s, "jobq_job_queue_wait_seconds", "histogram", "Time from due (run_at) to lease.");
    for (size_t i = 0; hmap_next(&m->queues, &i, &k, &v);) {
        char *lab = queue_label(k);
        hist(s, "jobq_job_queue_wait_seconds", lab, &((mqueue_t *)v)->wait);
        free(lab);
    }
}

/* The engine's queues with a registry entry of their own, then the
 * others summed as one (METRICS_QUEUES_MAX): *n of them, a new array. */
static metrics_queue_t *bounded_queues(metrics_t *m, const metrics_gauges_t *g, size_t *n)
{
    metrics_queue_t *out = calloc(g->nqueues + 1, sizeof *out), other = {
        .name = METRICS_OTHER_QUEUES };
    bool others = false;
    *n = 0;
    for (size_t i = 0; out && i < g->nqueues; i++) {
        const metrics_queue_t *q = &g->queues[i];
        mqueue_t *r = metrics_queue_of(m, q->name);
        if (r && strcmp(r->name, METRICS_OTHER_QUEUES) != 0) {
            out[(*n)++] = *q;
            continue;
        }
        others = true;
        for (int st = 0; st < JOB_STATE_COUNT; st++)
            other.count[st] += q->count[st];
        if (q->oldest_ready_at && (!other.oldest_ready_at || q->oldest_ready_at < other.oldest_ready_at))
            other.oldest_ready_at = q->oldest_ready_at;
    }
    if (out && others)
        out[(*n)++] = other;
    return out;
}

static void render_queues(sbuf_t *s, metrics_t *m, const metrics_gauges_t *g)
{
    size_t n;
    metrics_queue_t *q = bounded_queues(m, g, &n);
    static const job_state_t live[] = { JOB_PENDING, JOB_QUEUED, JOB_RUNNING, JOB_RETRYING };
    metrics_family(s, "jobq_jobs", "gauge", "Unfinished jobs by queue and state.");
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof live / sizeof live[0]; k++) {
            sbuf_t lab;
            sbuf_init(&lab, 64);
            metrics_label(&lab, "queue", q[i].name, true);
            metrics_label(&lab, "state", job_state_name(live[k]), false);
            metrics_sample(s, "jobq_jobs", lab.p, (double)q[i].count[live[k]]);
            sbuf_free(&lab);
        }
    }
    int64_t now = clock_now_ms();
    metrics_family(s, "jobq_queue_oldest_job_age_seconds", "gauge", "How long the longest-waiting queued job has been due (0 if none).");
    for (size_t i = 0; i < n; i++) {
        char *lab = queue_label(q[i].name);
        int64_t t = q[i].oldest_ready_at;
        metrics_sample(s, "jobq_queue_oldest_job_age_seconds", lab, t && now > t ? (double)(now - t) / 1e3 : 0);
        free(lab);
    }
    metrics_family(s, "jobq_queue_paused", "gauge", "1 if the queue is paused.");
    for (size_t i = 0; i < n; i++) {
        char *lab = queue_label(q[i].name);
        metrics_sample(s, "jobq_queue_paused", lab, q[i].paused);
        free(lab);
    }
    free(q);
}

static void render_http(sbuf_t *s, metrics_t *m)
{
    metrics_family(s, "jobq_http_request_duration_seconds", "histogram", "HTTP requests by route, method and status.");
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&m->routes, &i, &k, &v);) {
        mroute_t *r = v;
        char status[16];
        snprintf(status, sizeof status, "%d", r->status);
        sbuf_t lab;
        sbuf_init(&lab, 96);
        metrics_label(&lab, "route", r->route, true);
        metrics_label(&lab, "method", r->method, false);
        metrics_label(&lab, "status", status, false);
        hist(s, "jobq_http_request_duration_seconds", lab.p, &r->h);
        sbuf_free(&lab);
    }
}

static void render_store(sbuf_t *s, const metrics_store_t *f)
{
    metrics_family(s, "jobq_store_commit_duration_seconds", "histogram", "One group commit: begin, writes, commit (fsync).");
    hist(s, "jobq_store_commit_duration_seconds", "", &f->commit_seconds);
    metrics_family(s, "jobq_store_statement_duration_seconds", "histogram",
           "Store time per statement kind; statement=\"commit\" is the COMMIT (WAL write and fsync) alone.");
    for (int i = 0; i < f->nstatements; i++) {
        sbuf_t lab;
        sbuf_init(&lab, 48);
        metrics_label(&lab, "statement", f->statement_names[i], true);
        hist(s, "jobq_store_statement_duration_seconds", lab.p, &f->statement_seconds[i]);
        sbuf_free(&lab);
    }
    metrics_family(s, "jobq_store_commit_batch_size", "histogram", "Operations per group commit.");
    hist(s, "jobq_store_commit_batch_size", "", &f->batch_size);
    metrics_family(s, "jobq_store_roundtrip_seconds", "histogram", "From a write being queued to the loop learning it is durable.");
    hist(s, "jobq_store_roundtrip_seconds", "", &f->roundtrip_seconds);
    metrics_family(s, "jobq_store_failed_commits_total", "counter", "Commits that failed and were retried.");
    metrics_sample(s, "jobq_store_failed_commits_total", "", (double)f->failed_commits);
    metrics_family(s, "jobq_store_carried_jobs_total", "counter", "Running jobs a timed compaction left for the next one.");
    metrics_sample(s, "jobq_store_carried_jobs_total", "", (double)f->carried);
    metrics_family(s, "jobq_store_healthy", "gauge", "1 while the store commits.");
    metrics_sample(s, "jobq_store_healthy", "", f->healthy);
    metrics_family(s, "jobq_quarantined_jobs", "gauge", "Stored jobs that cannot be read, kept aside (GET /v1/quarantine).");
    metrics_sample(s, "jobq_quarantined_jobs", "", (double)f->quarantined);
}

static void render_process(sbuf_t *s, const char *version)
{
    process_figures_t p;
    process_read(&p);
    metrics_family(s, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    metrics_sample(s, "process_cpu_seconds_total", "", p.cpu_seconds);
    metrics_family(s, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    metrics_sample(s, "process_resident_memory_bytes", "", (double)p.resident_bytes);
    metrics_family(s, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    metrics_sample(s, "process_virtual_memory_bytes", "", (double)p.virtual_bytes);
    metrics_family(s, "process_open_fds", "gauge", "Number of open file descriptors.");
    metrics_sample(s, "process_open_fds", "", (double)p.open_fds);
    metrics_family(s, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    metrics_sample(s, "process_max_fds", "", (double)p.max_fds);
    metrics_family(s, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    metrics_sample(s, "process_start_time_seconds", "", p.start_time);
    metrics_family(s, "jobq_threads", "gauge", "Threads in the jobq process.");
    metrics_sample(s, "jobq_threads", "", (double)p.threads);
    metrics_family(s, "jobq_build_info", "gauge", "Always 1; the version is in the label.");
    sbuf_t lab;
    sbuf_init(&lab, 64);
    metrics_label(&lab, "version", version, true);
    metrics_sample(s, "jobq_build_info", lab.p, 1);
    sbuf_free(&lab);
}

char *metrics_render(metrics_t *m, const metrics_gauges_t *g)
{
    sbuf_t s;
    sbuf_init(&s, 16384);
    render_jobs(&s, m);
    render_queues(&s, m, g);
    render_http(&s, m);
    render_store(&s, &g->store);
    metrics_render_protection(&s, m, g);
    metrics_render_faktory(&s, m);
    render_process(&s, m->version);
    return sbuf_take(&s);
}
