#include "metrics/workers.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/hmap.h"

typedef struct worker {
    char *id; /* owned; the hmap key */
    int64_t first_seen, last_seen;
    int64_t active, completed, failed;
    double exec_ms_sum;
    int64_t exec_count;
    /* A registered process (workers_hello), else all NULL / 0. */
    char *protocol, *hostname;
    int64_t pid, last_beat;
    json_t *labels;
    workers_state_t state;
    char reported[16]; /* the state its last BEAT said it is in, "" if none */
    int64_t rss_kb;    /* -1: not reported */
} worker_t;

/* A running attempt: which worker holds it and since when. One
 * allocation with its key: a lease comes and goes with every job. */
typedef struct lease_rec {
    worker_t *worker;
    int64_t since;
    char job_id[]; /* the hmap key */
} lease_rec_t;

struct workers {
    int64_t gone_ms;
    hmap_t byid;   /* worker id -> worker_t */
    hmap_t leases; /* job id -> lease_rec_t */
};

workers_t *workers_new(int64_t gone_ms)
{
    workers_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->gone_ms = gone_ms;
    hmap_init(&w->byid);
    hmap_init(&w->leases);
    return w;
}

/* h: hmap_hash(l->job_id), as the caller found it. */
static void drop_lease(workers_t *w, lease_rec_t *l, uint64_t h)
{
    hmap_del_h(&w->leases, l->job_id, h);
    free(l);
}

static void free_worker(void *v)
{
    worker_t *k = v;
    free(k->id);
    free(k->protocol);
    free(k->hostname);
    json_decref(k->labels);
    free(k);
}

static void forget(workers_t *w, worker_t *k)
{
    const char *key;
    void *v;
    /* Leases that point at it lose their owner; they are few (running jobs). */
    for (size_t i = 0; hmap_next(&w->leases, &i, &key, &v);)
        if (((lease_rec_t *)v)->worker == k)
            ((lease_rec_t *)v)->worker = NULL;
    hmap_del(&w->byid, k->id);
    free_worker(k);
}

void workers_free(workers_t *w)
{
    if (!w)
        return;
    hmap_free_values(&w->byid, free_worker);
    hmap_free_values(&w->leases, free);
    free(w);
}

static worker_t *oldest(workers_t *w)
{
    worker_t *old = NULL;
    const char *key;
    void *v;
    for (size_t i = 0; hmap_next(&w->byid, &i, &key, &v);)
        if (!old || ((worker_t *)v)->last_seen < old->last_seen)
            old = v;
    return old;
}

static worker_t *get(workers_t *w, const char *id, int64_t now)
{
    worker_t *k = hmap_get(&w->byid, id);
    if (k)
        return k;
    if (hmap_len(&w->byid) >= WORKERS_MAX)
        forget(w, oldest(w));
    k = calloc(1, sizeof *k);
    if (!k || !(k->id = strdup(id)) || hmap_put(&w->byid, k->id, k) != 0) {
        if (k)
            free(k->id);
        free(k);
        return NULL;
    }
    k->first_seen = now;
    return k;
}

void workers_seen(workers_t *w, const char *worker, int64_t now)
{
    worker_t *k = worker ? get(w, worker, now) : NULL;
    if (k)
        k->last_seen = now;
}

static void start(workers_t *w, const job_t *job, int64_t now)
{
    worker_t *k = job->lease_worker ? get(w, job->lease_worker, now) : NULL;
    uint64_t h = hmap_hash(job->id);
    lease_rec_t *l = hmap_get_h(&w->leases, job->id, h);
    if (l) { /* a lease that expired unseen: the new one replaces it */
        if (l->worker)
            l->worker->active--;
        drop_lease(w, l, h);
    }
    size_t len = strlen(job->id) + 1;
    if (!k || !(l = calloc(1, sizeof *l + len)))
        return;
    memcpy(l->job_id, job->id, len);
    if (hmap_put_h(&w->leases, l->job_id, h, l) != 0) {
        free(l);
        return;
    }
    l->worker = k;
    l->since = now;
    k->active++;
    k->last_seen = now;
}

void workers_job(workers_t *w, const job_t *job, job_event_t ev, int64_t now)
{
    if (ev == JOB_EV_LEASED) {
        start(w, job, now);
        return;
    }
    if (ev == JOB_EV_UPDATED || ev == JOB_EV_ENQUEUED)
        return; /* not the end of an attempt */
    uint64_t h = hmap_hash(job->id);
    lease_rec_t *l = hmap_get_h(&w->leases, job->id, h);
    if (!l)
        return; /* the end of one we did not see start */
    worker_t *k = l->worker;
    if (k) {
        k->active--;
        k->last_seen = now;
        if (ev == JOB_EV_COMPLETED)
            k->completed++;
        else if (ev == JOB_EV_FAILED || ev == JOB_EV_RETRIED)
            k->failed++;
        k->exec_ms_sum += (double)(now - l->since);
        k->exec_count++;
    }
    drop_lease(w, l, h);
}

const char *workers_state_name(workers_state_t s)
{
    return s == WORKERS_QUIET ? "quiet" : s == WORKERS_TERMINATE ? "terminate" : "active";
}

static int set_text(char **dst, const char *src)
{
    char *t = strdup(src ? src : "");
    if (!t)
        return -1;
    free(*dst);
    *dst = t;
    return 0;
}

int workers_hello(workers_t *w, const char *wid, const char *protocol, const char *hostname,
                  int64_t pid, json_t *labels, int64_t now)
{
    worker_t *k = get(w, wid, now);
    if (!k || set_text(&k->protocol, protocol) != 0 || set_text(&k->hostname, hostname) != 0)
        return -1;
    json_decref(k->labels);
    k->labels = json_is_array(labels) ? json_incref(labels) : json_array();
    k->pid = pid;
    k->rss_kb = -1;
    k->last_beat = k->last_seen = now;
    return 0;
}

int workers_beat(workers_t *w, const char *wid, const char *current_state, int64_t rss_kb,
                 int64_t now, workers_state_t *state)
{
    worker_t *k = hmap_get(&w->byid, wid);
    if (!k || !k->protocol)
        return -1;
    k->last_beat = k->last_seen = now;
    k->rss_kb = rss_kb;
    k->reported[0] = '\0';
    for (size_t i = 0; current_state && current_state[i] && i < sizeof k->reported - 1; i++) {
        char ch = current_state[i]; /* shown to operators: letters only */
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'))
            break;
        k->reported[i] = ch;
        k->reported[i + 1] = '\0';
    }
    *state = k->state;
    return 0;
}

workers_state_t workers_state(const workers_t *w, const char *wid)
{
    worker_t *k = hmap_get(&w->byid, wid);
    return k ? k->state : WORKERS_ACTIVE;
}

int64_t workers_last_beat(const workers_t *w, const char *wid)
{
    worker_t *k = hmap_get(&w->byid, wid);
    return k ? k->last_beat : 0;
}

err_t workers_signal(workers_t *w, const char *wid, workers_state_t to, problem_t *p)
{
    worker_t *k = hmap_get(&w->byid, wid);
    if (!k || !k->protocol)
        return problem_set(p, ERR_NOT_FOUND, "wid", "no worker process %s is connected (only "
                           "Faktory protocol workers can be told to quiet or terminate)", wid);
    if (k->state != WORKERS_TERMINATE) /* terminate is final */
        k->state = to;
    return ERR_OK;
}

size_t workers_processes(const workers_t *w, int64_t now)
{
    size_t n = 0;
    const char *key;
    void *v;
    for (size_t i = 0; hmap_next(&w->byid, &i, &key, &v);) {
        const worker_t *k = v;
        n += k->protocol && now - k->last_beat <= w->gone_ms;
    }
    return n;
}

size_t workers_live(const workers_t *w, int64_t now)
{
    size_t n = 0;
    const char *key;
    void *v;
    for (size_t i = 0; hmap_next(&w->byid, &i, &key, &v);)
        n += now - ((const worker_t *)v)->last_seen <= w->gone_ms;
    return n;
}

static void add_process(json_t *o, const worker_t *k)
{
    if (!k->protocol)
        return;
    json_object_set_new(o, "protocol", json_string(k->protocol));
    json_object_set_new(o, "hostname", json_string(k->hostname));
    json_object_set_new(o, "pid", json_integer(k->pid));
    json_object_set(o, "labels", k->labels);
    json_object_set_new(o, "state", json_string(workers_state_name(k->state)));
    json_object_set_new(o, "last_beat", clock_json(k->last_beat));
    json_object_set_new(o, "reported_state", k->reported[0] ? json_string(k->reported) : json_null());
    json_object_set_new(o, "rss_kb", k->rss_kb >= 0 ? json_integer(k->rss_kb) : json_null());
}

static json_t *one(const workers_t *w, const worker_t *k, int64_t now)
{
    int64_t done = k->completed + k->failed;
    json_t *o = json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:b}", "id", k->id, "first_seen",
                          clock_json(k->first_seen), "last_seen", clock_json(k->last_seen),
                          "active_leases", (json_int_t)k->active, "completed",
                          (json_int_t)k->completed, "failed", (json_int_t)k->failed, "gone",
                          now - k->last_seen > w->gone_ms);
    json_object_set_new(o, "success_rate",
                        done ? json_real((double)k->completed / (double)done) : json_null());
    json_object_set_new(o, "avg_execution_ms",
                        k->exec_count ? json_real(k->exec_ms_sum / (double)k->exec_count)
                                      : json_null());
    add_process(o, k);
    return o;
}

static int by_id(const void *a, const void *b)
{
    return strcmp((*(worker_t *const *)a)->id, (*(worker_t *const *)b)->id);
}

json_t *workers_json(workers_t *w, int64_t now)
{
    const char *key;
    void *v;
    worker_t *old;
    while (hmap_len(&w->byid) && (old = oldest(w)) && old->active == 0 &&
           now - old->last_seen > 10 * w->gone_ms)
        forget(w, old);
    size_t n = hmap_len(&w->byid), i = 0;
    worker_t **all = calloc(n ? n : 1, sizeof *all);
    json_t *arr = json_array();
    if (!all)
        return json_pack("{s:o}", "workers", arr);
    for (size_t it = 0; hmap_next(&w->byid, &it, &key, &v);)
        all[i++] = v;
    qsort(all, n, sizeof *all, by_id);
    for (i = 0; i < n; i++)
        json_array_append_new(arr, one(w, all[i], now));
    free(all);
    return json_pack("{s:o}", "workers", arr);
}
