/*
 * loadgen: full-cycle load for jobq (enqueue -> lease -> complete).
 *
 * P producer threads enqueue, C consumer threads lease and complete, each
 * over one keep-alive connection (libcurl). With --batch B > 1 producers use
 * /v1/jobs/batch and consumers lease B at a time and /v1/ack them. Bounded:
 * stops after --jobs jobs or --max-seconds, whichever comes first.
 * Prints jobs/s for the full cycle and enqueue latency percentiles.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cfg {
    const char *url;
    int producers, consumers, batch;
    long jobs;
    double max_seconds;
} cfg_t;

static cfg_t g;
static atomic_long g_enqueued, g_completed, g_errors;
static atomic_bool g_stop;
static double g_t0;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct conn {
    CURL *h;
    struct curl_slist *hdrs;
    char *buf;
    size_t len, cap;
} conn_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    conn_t *c = ud;
    size_t add = size * n;
    if (c->len + add + 1 > c->cap) {
        c->cap = (c->len + add + 1) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->len, p, add);
    c->len += add;
    c->buf[c->len] = '\0';
    return add;
}

static void conn_init(conn_t *c)
{
    memset(c, 0, sizeof *c);
    c->h = curl_easy_init();
    c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
}

/* POSTs body to path; returns the status, the reply in c->buf. */
static long post(conn_t *c, const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", g.url, path);
    c->len = 0;
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c->h) != CURLE_OK)
        return -1;
    long status;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

typedef struct lat {
    double *v;
    size_t n, cap;
} lat_t;

static void lat_add(lat_t *l, double x)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = x;
}

static void *producer(void *arg)
{
    lat_t *lat = arg;
    conn_t c;
    conn_init(&c);
    size_t cap = (size_t)g.batch * 64 + 32;
    char *body = malloc(cap);
    while (!atomic_load(&g_stop)) {
        long got = atomic_fetch_add(&g_enqueued, g.batch);
        if (got >= g.jobs) {
            atomic_fetch_sub(&g_enqueued, g.batch);
            break;
        }
        if (g.batch == 1) {
            snprintf(body, cap, "{\"type\":\"bench\",\"args\":{\"n\":%ld}}", got);
        } else {
            size_t n = (size_t)snprintf(body, cap, "{\"jobs\":[");
            for (int i = 0; i < g.batch; i++)
                n += (size_t)snprintf(body + n, cap - n, "%s{\"type\":\"bench\",\"args\":{\"n\":%ld}}",
                                      i ? "," : "", got + i);
            snprintf(body + n, cap - n, "]}");
        }
        double t = now_s();
        long st = post(&c, g.batch == 1 ? "/v1/jobs" : "/v1/jobs/batch", body);
        lat_add(lat, now_s() - t);
        if (st != 201)
            atomic_fetch_add(&g_errors, 1);
        if (now_s() - g_t0 > g.max_seconds)
            break;
    }
    free(body);
    curl_slist_free_all(c.hdrs);
    curl_easy_cleanup(c.h);
    free(c.buf);
    return NULL;
}

static int complete_all(conn_t *c, json_t *jobs)
{
    size_t i, n = json_array_size(jobs);
    json_t *j;
    if (g.batch == 1) {
        json_array_foreach(jobs, i, j) {
            char path[300], body[128];
            snprintf(path, sizeof path, "/v1/jobs/%s/complete",
                     json_string_value(json_object_get(j, "id")));
            snprintf(body, sizeof body, "{\"lease_id\":\"%s\"}",
                     json_string_value(json_object_get(j, "lease_id")));
            if (post(c, path, body) != 200)
                atomic_fetch_add(&g_errors, 1);
        }
        return (int)n;
    }
    json_t *results = json_array();
    json_array_foreach(jobs, i, j)
        json_array_append_new(results, json_pack("{s:O, s:O}", "id", json_object_get(j, "id"),
                                                 "lease_id", json_object_get(j, "lease_id")));
    json_t *req = json_pack("{s:o}", "results", results);
    char *body = json_dumps(req, JSON_COMPACT);
    if (post(c, "/v1/ack", body) != 200)
        atomic_fetch_add(&g_errors, 1);
    free(body);
    json_decref(req);
    return (int)n;
}

static void *consumer(void *arg)
{
    long id = (long)arg;
    conn_t c;
    conn_init(&c);
    char body[160];
    snprintf(body, sizeof body, "{\"worker\":\"bench-%ld\",\"max\":%d,\"wait_ms\":500}", id,
             g.batch);
    while (!atomic_load(&g_stop) && atomic_load(&g_completed) < g.jobs) {
        if (now_s() - g_t0 > g.max_seconds)
            break;
        if (post(&c, "/v1/lease", body) != 200) {
            atomic_fetch_add(&g_errors, 1);
            continue;
        }
        json_t *reply = json_loads(c.buf, 0, NULL);
        int n = complete_all(&c, json_object_get(reply, "jobs"));
        json_decref(reply);
        if (atomic_fetch_add(&g_completed, n) + n >= g.jobs)
            atomic_store(&g_stop, true);
    }
    curl_slist_free_all(c.hdrs);
    curl_easy_cleanup(c.h);
    free(c.buf);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    g = (cfg_t){ "http://127.0.0.1:7420", 4, 4, 1, 100000, 60 };
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) g.url = argv[i + 1];
        else if (!strcmp(argv[i], "--producers")) g.producers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--consumers")) g.consumers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) g.batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs")) g.jobs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds")) g.max_seconds = atof(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (g.producers < 1 || g.consumers < 1 || g.batch < 1 || g.batch > 100 || g.jobs < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t th[256];
    lat_t lats[128] = { 0 };
    int nt = 0;
    g_t0 = now_s();
    for (int i = 0; i < g.producers && nt < 128; i++)
        pthread_create(&th[nt++], NULL, producer, &lats[i]);
    for (long i = 0; i < g.consumers && nt < 256; i++)
        pthread_create(&th[nt++], NULL, consumer, (void *)i);
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    double secs = now_s() - g_t0;
    lat_t all = { 0 };
    for (int i = 0; i < g.producers; i++)
        for (size_t k = 0; k < lats[i].n; k++)
            lat_add(&all, lats[i].v[k]);
    qsort(all.v, all.n, sizeof *all.v, cmp);
#define PCT(p) (all.n ? all.v[(size_t)((double)(all.n - 1) * (p))] * 1e3 : 0.0)
    printf("producers=%d consumers=%d batch=%d jobs=%ld completed=%ld errors=%ld seconds=%.2f\n",
           g.producers, g.consumers, g.batch, (long)atomic_load(&g_enqueued),
           (long)atomic_load(&g_completed), (long)atomic_load(&g_errors), secs);
    printf("full_cycle_jobs_per_s=%.0f\n", (double)atomic_load(&g_completed) / secs);
    printf("enqueue_request_latency_ms p50=%.2f p95=%.2f p99=%.2f max=%.2f\n", PCT(0.50),
           PCT(0.95), PCT(0.99), PCT(1.0));
    curl_global_cleanup();
    return atomic_load(&g_errors) ? 1 : 0;
}
