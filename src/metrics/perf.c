#include "metrics/perf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics/process.h"
#include "util/clock.h"
#include "util/histogram.h"

typedef struct slow {
    char route[64], method[12], request_id[72];
    int status;
    double seconds;
    int64_t at_ms;
} slow_t;

struct perf {
    histogram_t lag; /* seconds */
    /* CPU sampling: the previous readings and the last computed shares. */
    int64_t last_sample_ns;
    double last_proc_cpu;
    uint64_t last_total, last_idle;
    double proc_cpu_pct, machine_cpu_pct;
    slow_t slow[PERF_SLOWEST];
    int nslow;
};

perf_t *perf_new(void)
{
    perf_t *p = calloc(1, sizeof *p);
    if (p)
        histogram_init(&p->lag, histogram_seconds, histogram_seconds_n);
    return p;
}

void perf_free(perf_t *p) { free(p); }

static int read_machine(uint64_t *total, uint64_t *idle)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = { 0 };
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5], &v[6], &v[7])
              : 0;
    if (f)
        fclose(f);
    if (n < 4)
        return -1;
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += v[i];
    *idle = v[3] + v[4]; /* idle + iowait */
    return 0;
}

static void sample_cpu(perf_t *p, int64_t now_ns)
{
    process_figures_t pf;
    uint64_t total, idle;
    if (process_read(&pf) != 0 || read_machine(&total, &idle) != 0)
        return;
    if (p->last_sample_ns) {
        double wall = (double)(now_ns - p->last_sample_ns) / 1e9;
        if (wall > 0)
            p->proc_cpu_pct = (pf.cpu_seconds - p->last_proc_cpu) / wall * 100;
        if (total > p->last_total)
            p->machine_cpu_pct = 100.0 * (1.0 - (double)(idle - p->last_idle) /
                                                    (double)(total - p->last_total));
    }
    p->last_sample_ns = now_ns;
    p->last_proc_cpu = pf.cpu_seconds;
    p->last_total = total;
    p->last_idle = idle;
}

void perf_tick(perf_t *p, int64_t due_ns, int64_t now_ns)
{
    histogram_observe(&p->lag, (double)(now_ns - due_ns) / 1e9);
    if (now_ns - p->last_sample_ns >= 1000000000LL)
        sample_cpu(p, now_ns);
}

void perf_request(perf_t *p, const char *route, const char *method, int status,
                  const char *request_id, double seconds, int64_t now_ms)
{
    /* Forget entries older than the window, then keep the PERF_SLOWEST slowest. */
    int w = 0;
    for (int i = 0; i < p->nslow; i++)
        if (now_ms - p->slow[i].at_ms <= PERF_SLOW_WINDOW_MS)
            p->slow[w++] = p->slow[i];
    p->nslow = w;
    int at = p->nslow;
    if (at == PERF_SLOWEST) {
        at = 0;
        for (int i = 1; i < p->nslow; i++)
            if (p->slow[i].seconds < p->slow[at].seconds)
                at = i;
        if (p->slow[at].seconds >= seconds)
            return;
    } else {
        p->nslow++;
    }
    slow_t *s = &p->slow[at];
    snprintf(s->route, sizeof s->route, "%s", route);
    snprintf(s->method, sizeof s->method, "%s", method);
    snprintf(s->request_id, sizeof s->request_id, "%s", request_id);
    s->status = status;
    s->seconds = seconds;
    s->at_ms = now_ms;
}

static int slower_first(const void *a, const void *b)
{
    double x = ((const slow_t *)a)->seconds, y = ((const slow_t *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

json_t *perf_json(perf_t *p, int64_t now_ms)
{
    slow_t sorted[PERF_SLOWEST];
    int n = 0;
    for (int i = 0; i < p->nslow; i++)
        if (now_ms - p->slow[i].at_ms <= PERF_SLOW_WINDOW_MS)
            sorted[n++] = p->slow[i];
    qsort(sorted, (size_t)n, sizeof *sorted, slower_first);
    json_t *slowest = json_array();
    for (int i = 0; i < n; i++) {
        char at[32];
        clock_format_rfc3339(sorted[i].at_ms, at, sizeof at);
        json_array_append_new(slowest, json_pack("{s:s, s:s, s:i, s:s, s:f, s:s}", "route",
                                                 sorted[i].route, "method", sorted[i].method,
                                                 "status", sorted[i].status, "request_id",
                                                 sorted[i].request_id, "duration_ms",
                                                 sorted[i].seconds * 1e3, "at", at));
    }
    json_t *lag = json_pack("{s:I, s:f, s:f, s:f}", "samples", (json_int_t)p->lag.count, "p50",
                            histogram_quantile(&p->lag, 0.5) * 1e3, "p99",
                            histogram_quantile(&p->lag, 0.99) * 1e3, "max", p->lag.max * 1e3);
    json_t *cpu = json_pack("{s:f, s:f, s:i}", "process_pct", p->proc_cpu_pct, "machine_pct",
                            p->machine_cpu_pct, "cores", (int)sysconf(_SC_NPROCESSORS_ONLN));
    return json_pack("{s:o, s:o, s:o}", "loop_lag_ms", lag, "cpu", cpu, "slowest_requests",
                     slowest);
}
