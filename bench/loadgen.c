/*
 * loadgen: full-cycle load for jobq (enqueue -> lease -> complete).
 *
 * P producer and C consumer connections, each one keep-alive HTTP/1.1
 * connection with one request in flight at a time, driven by libevent's HTTP
 * client from T threads (connections are dealt round-robin). Event-driven so
 * that the client spends as little of the shared CPU as it can.
 *
 * With --batch B > 1 producers use /v1/jobs/batch and consumers lease B at a
 * time and /v1/ack them. --payload N pads each job's args with N bytes.
 * --consumers 0 measures enqueues alone (a job counts once enqueued).
 * --prefer minimal sends Prefer: return=minimal, for the short replies.
 * Bounded: stops after --jobs jobs are completed or
 * --max-seconds have passed, whichever comes first. Prints jobs/s for the
 * full cycle and enqueue request latency percentiles.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cfg {
    char host[128];
    int port;
    int producers, consumers, batch, threads;
    int payload; /* bytes of padding in each job's args (0: {"n":N} only) */
    long jobs;
    double max_seconds;
    bool minimal; /* Prefer: return=minimal */
} cfg_t;

static cfg_t g;
static char g_pad[300]; /* ,"pad":"xxx..." or "" */
static atomic_long g_enqueued, g_completed, g_errors;
static atomic_bool g_stop;
static double g_t0;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
        if (!l->v)
            abort();
    }
    l->v[l->n++] = x;
}

typedef struct worker worker_t;

typedef struct client {
    worker_t *w;
    struct evhttp_connection *conn;
    bool producer;
    int id;
    double sent_at;
    json_t *pending; /* consumer: leased jobs still to complete (one at a time) */
    size_t next;
} client_t;

struct worker {
    struct event_base *base;
    client_t *clients;
    int nclients;
    lat_t lat;
    pthread_t th;
};

static void send_next(client_t *c);
static void count_done(long n);

static bool finished(void)
{
    return atomic_load(&g_stop) || now_s() - g_t0 > g.max_seconds;
}

static void post(client_t *c, const char *path, const char *body,
                 void (*done)(struct evhttp_request *, void *))
{
    struct evhttp_request *req = evhttp_request_new(done, c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", g.host);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (g.minimal)
        evhttp_add_header(h, "Prefer", "return=minimal");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    c->sent_at = now_s();
    if (evhttp_make_request(c->conn, req, EVHTTP_REQ_POST, path) != 0) {
        atomic_fetch_add(&g_errors, 1);
        atomic_store(&g_stop, true);
    }
}

/* The body of a reply, NUL-terminated, in buf (which it may grow). */
static char *body_of(struct evhttp_request *req, char **buf, size_t *cap)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n + 1 > *cap) {
        *cap = (n + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    evbuffer_copyout(in, *buf, n);
    (*buf)[n] = '\0';
    return *buf;
}

static int status_of(struct evhttp_request *req)
{
    return req ? evhttp_request_get_response_code(req) : -1;
}

static void on_enqueued(struct evhttp_request *req, void *arg)
{
    client_t *c = arg;
    lat_add(&c->w->lat, now_s() - c->sent_at);
    if (status_of(req) != 201)
        atomic_fetch_add(&g_errors, 1);
    else if (g.consumers == 0) /* enqueue only: an enqueue is the whole job */
        count_done(g.batch);
    send_next(c);
}

static void produce(client_t *c)
{
    long got = atomic_fetch_add(&g_enqueued, g.batch);
    if (got >= g.jobs) {
        atomic_fetch_sub(&g_enqueued, g.batch);
        return; /* this producer is done */
    }
    char body[100 * (48 + sizeof g_pad) + 32];
    if (g.batch == 1) {
        snprintf(body, sizeof body, "{\"type\":\"bench\",\"args\":{\"n\":%ld%s}}", got, g_pad);
        post(c, "/v1/jobs", body, on_enqueued);
        return;
    }
    size_t n = (size_t)snprintf(body, sizeof body, "{\"jobs\":[");
    for (int i = 0; i < g.batch; i++)
        n += (size_t)snprintf(body + n, sizeof body - n,
                              "%s{\"type\":\"bench\",\"args\":{\"n\":%ld%s}}", i ? "," : "",
                              got + i, g_pad);
    snprintf(body + n, sizeof body - n, "]}");
    post(c, "/v1/jobs/batch", body, on_enqueued);
}

static void count_done(long n)
{
    if (atomic_fetch_add(&g_completed, n) + n >= g.jobs)
        atomic_store(&g_stop, true);
}

static void on_completed(struct evhttp_request *req, void *arg)
{
    client_t *c = arg;
    if (status_of(req) != 200)
        atomic_fetch_add(&g_errors, 1);
    else
        count_done(1);
    send_next(c);
}

static void on_acked(struct evhttp_request *req, void *arg)
{
    client_t *c = arg;
    if (status_of(req) != 200)
        atomic_fetch_add(&g_errors, 1);
    else
        count_done((long)json_array_size(c->pending));
    json_decref(c->pending);
    c->pending = NULL;
    send_next(c);
}

static void ack_all(client_t *c)
{
    json_t *results = json_array(), *j;
    size_t i;
    json_array_foreach(c->pending, i, j)
        json_array_append_new(results, json_pack("{s:O, s:O}", "id", json_object_get(j, "id"),
                                                 "lease_id", json_object_get(j, "lease_id")));
    json_t *req = json_pack("{s:o}", "results", results);
    char *body = json_dumps(req, JSON_COMPACT);
    post(c, "/v1/ack", body, on_acked);
    free(body);
    json_decref(req);
}

static void on_leased(struct evhttp_request *req, void *arg)
{
    static _Thread_local char *buf;
    static _Thread_local size_t cap;
    client_t *c = arg;
    json_decref(c->pending);
    c->pending = NULL;
    c->next = 0;
    if (status_of(req) == 200) {
        json_t *reply = json_loads(body_of(req, &buf, &cap), 0, NULL);
        c->pending = json_incref(json_object_get(reply, "jobs"));
        json_decref(reply);
    } else {
        atomic_fetch_add(&g_errors, 1);
    }
    if (g.batch > 1 && json_array_size(c->pending) > 0) {
        ack_all(c);
        return;
    }
    send_next(c);
}

static void consume(client_t *c)
{
    if (c->pending && c->next < json_array_size(c->pending)) {
        json_t *j = json_array_get(c->pending, c->next++);
        char path[300], body[128];
        snprintf(path, sizeof path, "/v1/jobs/%s/complete", json_string_value(json_object_get(j, "id")));
        snprintf(body, sizeof body, "{\"lease_id\":\"%s\"}",
                 json_string_value(json_object_get(j, "lease_id")));
        post(c, path, body, on_completed);
        return;
    }
    char body[160];
    snprintf(body, sizeof body, "{\"worker\":\"bench-%d\",\"max\":%d,\"wait_ms\":500}", c->id, g.batch);
    post(c, "/v1/lease", body, on_leased);
}

static void send_next(client_t *c)
{
    if (finished()) {
        event_base_loopexit(c->w->base, NULL);
        return;
    }
    if (c->producer)
        produce(c);
    else
        consume(c);
}

/* Ends the loop once the run is over, even if every client is idle. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_t *w = arg;
    if (finished())
        event_base_loopexit(w->base, NULL);
}

static void *run_worker(void *arg)
{
    worker_t *w = arg;
    struct event *tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    struct timeval tv = { 0, 50000 };
    event_add(tick, &tv);
    for (int i = 0; i < w->nclients; i++)
        send_next(&w->clients[i]);
    event_base_dispatch(w->base);
    event_free(tick);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int parse_args(int argc, char **argv)
{
    const char *url = "http://127.0.0.1:7420";
    g = (cfg_t){ .producers = 4, .consumers = 4, .batch = 1, .threads = 2, .jobs = 100000,
                 .max_seconds = 60 };
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--producers")) g.producers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--consumers")) g.consumers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) g.batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) g.threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs")) g.jobs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds")) g.max_seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--payload")) g.payload = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prefer")) g.minimal = !strcmp(argv[i + 1], "minimal");
        else return fprintf(stderr, "unknown option %s\n", argv[i]), -1;
    }
    if (g.payload < 0 || g.payload > 256)
        return fprintf(stderr, "--payload must be 0-256\n"), -1;
    if (g.payload) {
        int n = snprintf(g_pad, sizeof g_pad, ",\"pad\":\"");
        memset(g_pad + n, 'x', (size_t)g.payload);
        snprintf(g_pad + n + g.payload, sizeof g_pad - (size_t)(n + g.payload), "\"");
    }
    if (sscanf(url, "http://%127[^:]:%d", g.host, &g.port) != 2)
        return fprintf(stderr, "--url must be http://HOST:PORT\n"), -1;
    if (g.producers < 1 || g.consumers < 0 || g.batch < 1 || g.batch > 100 || g.jobs < 1 ||
        g.threads < 1 || g.threads > 16 || g.max_seconds <= 0 || g.max_seconds > 600)
        return fprintf(stderr, "bad arguments\n"), -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0)
        return 2;
    int total = g.producers + g.consumers;
    worker_t *w = calloc((size_t)g.threads, sizeof *w);
    for (int t = 0; t < g.threads; t++) {
        w[t].base = event_base_new();
        w[t].clients = calloc((size_t)total, sizeof *w[t].clients);
    }
    for (int i = 0; i < total; i++) {
        worker_t *wt = &w[i % g.threads];
        client_t *c = &wt->clients[wt->nclients++];
        c->w = wt;
        c->id = i;
        c->producer = i < g.producers;
        c->conn = evhttp_connection_base_new(wt->base, NULL, g.host, (unsigned short)g.port);
        evhttp_connection_set_timeout(c->conn, 30);
    }
    g_t0 = now_s();
    for (int t = 0; t < g.threads; t++)
        pthread_create(&w[t].th, NULL, run_worker, &w[t]);
    lat_t all = { 0 };
    for (int t = 0; t < g.threads; t++) {
        pthread_join(w[t].th, NULL);
        for (size_t k = 0; k < w[t].lat.n; k++)
            lat_add(&all, w[t].lat.v[k]);
    }
    double secs = now_s() - g_t0;
    qsort(all.v, all.n, sizeof *all.v, cmp);
#define PCT(p) (all.n ? all.v[(size_t)((double)(all.n - 1) * (p))] * 1e3 : 0.0)
    printf("producers=%d consumers=%d batch=%d threads=%d enqueued=%ld completed=%ld errors=%ld "
           "seconds=%.2f\n",
           g.producers, g.consumers, g.batch, g.threads, (long)atomic_load(&g_enqueued),
           (long)atomic_load(&g_completed), (long)atomic_load(&g_errors), secs);
    printf("full_cycle_jobs_per_s=%.0f\n", (double)atomic_load(&g_completed) / secs);
    printf("enqueue_request_latency_ms p50=%.2f p95=%.2f p99=%.2f max=%.2f\n", PCT(0.50),
           PCT(0.95), PCT(0.99), PCT(1.0));
    for (int t = 0; t < g.threads; t++) {
        for (int i = 0; i < w[t].nclients; i++) {
            json_decref(w[t].clients[i].pending);
            evhttp_connection_free(w[t].clients[i].conn);
        }
        event_base_free(w[t].base);
        free(w[t].clients);
        free(w[t].lat.v);
    }
    free(w);
    free(all.v);
    return atomic_load(&g_errors) ? 1 : 0;
}
