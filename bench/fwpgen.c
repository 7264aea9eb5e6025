/*
 * fwpgen: full-cycle load over the Faktory Work Protocol (PUSH -> FETCH ->
 * ACK), the counterpart of loadgen.c for HTTP.
 *
 * P producer and C consumer connections, one command in flight each, on
 * one libevent loop (the client should cost little of the shared CPU).
 * Producers PUSH jobs with ~100-byte args; consumers FETCH and ACK them.
 * Bounded: stops after --jobs jobs are acknowledged or --max-seconds have
 * passed. Prints jobs/s for the full cycle and PUSH latency percentiles.
 * No password support: run it against a server without one (loopback).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum { S_HI, S_HELLO, S_PUSH, S_FETCH, S_ACK } state_t;

typedef struct conn {
    struct bufferevent *bev;
    bool producer;
    state_t st;
    double sent_at;
    char jid[64];
} conn_t;

static struct event_base *base;
static long want, pushed, acked, errors;
static double t0, t_end, max_seconds;
static double *lat;
static long nlat;
static int open_conns;
static int run_id; /* jids differ from run to run against one server */
static const char pad[] = "0123456789012345678901234567890123456789012345678901234567890123456789"
                          "012345678901234567";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish(conn_t *c)
{
    bufferevent_free(c->bev);
    free(c);
    if (--open_conns == 0)
        event_base_loopbreak(base);
}

static bool over(void) { return acked >= want || now_s() - t0 > max_seconds; }

/* Sends the connection's next command; false if it is done (and freed). */
static bool next(conn_t *c)
{
    if (over() || (c->producer && pushed >= want)) {
        finish(c);
        return false;
    }
    if (c->producer) {
        long n = pushed++;
        c->st = S_PUSH;
        c->sent_at = now_s();
        evbuffer_add_printf(bufferevent_get_output(c->bev),
                            "PUSH {\"jid\":\"bench-%d-%08ld\",\"jobtype\":\"bench\",\"args\":[%ld,\"%s\"]}"
                            "\r\n", run_id, n, n, pad);
    } else {
        c->st = S_FETCH;
        evbuffer_add_printf(bufferevent_get_output(c->bev), "FETCH default\r\n");
    }
    return true;
}

/* One reply line, or a whole bulk reply; NULL until it has all arrived. */
static char *reply(struct evbuffer *in, size_t *len)
{
    size_t n;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
    if (!line || line[0] != '$')
        return *len = n, line;
    long bulk = atol(line + 1);
    if (bulk < 0)
        return *len = 0, line; /* "$-1" */
    if ((long)evbuffer_get_length(in) < bulk + 2) {
        evbuffer_prepend(in, "\r\n", 2);
        evbuffer_prepend(in, line, strlen(line));
        free(line);
        return NULL;
    }
    free(line);
    char *data = malloc((size_t)bulk + 1);
    evbuffer_remove(in, data, (size_t)bulk);
    evbuffer_drain(in, 2);
    data[bulk] = '\0';
    *len = (size_t)bulk;
    return data;
}

/* False if the connection is done (and freed). */
static bool on_reply(conn_t *c, char *r)
{
    if (r[0] == '-' && errors < 5)
        fprintf(stderr, "fwpgen: %s\n", r);
    switch (c->st) {
    case S_HI:
        c->st = S_HELLO;
        evbuffer_add_printf(bufferevent_get_output(c->bev),
                            "HELLO {\"v\":2,\"hostname\":\"fwpgen\",\"pid\":1,\"wid\":\"fwpgen%p\"}"
                            "\r\n", (void *)c);
        return true;
    case S_PUSH:
        if (nlat < want)
            lat[nlat++] = now_s() - c->sent_at;
        /* fall through */
    case S_HELLO:
        errors += strcmp(r, "+OK") != 0;
        return next(c);
    case S_FETCH: {
        char *j = strstr(r, "\"jid\":\"");
        if (!j) /* $-1: nothing yet */
            return next(c);
        snprintf(c->jid, sizeof c->jid, "%.*s", (int)strcspn(j + 7, "\""), j + 7);
        c->st = S_ACK;
        evbuffer_add_printf(bufferevent_get_output(c->bev), "ACK {\"jid\":\"%s\"}\r\n", c->jid);
        return true;
    }
    case S_ACK:
        errors += strcmp(r, "+OK") != 0;
        if (++acked == want) { /* done: the others may sit in a FETCH for 2 s */
            t_end = now_s();
            event_base_loopbreak(base);
            return false;
        }
        return next(c);
    }
    return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    size_t n;
    char *r;
    while ((r = reply(bufferevent_get_input(bev), &n))) {
        bool alive = on_reply(c, r);
        free(r);
        if (!alive)
            return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        errors++;
        finish(arg);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int port = 7419, producers = 1, consumers = 1;
    want = 10000;
    max_seconds = 60;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--producers")) producers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--consumers")) consumers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs")) want = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = atof(argv[i + 1]);
        else return fprintf(stderr, "unknown option %s\n", argv[i]), 2;
    }
    run_id = (int)getpid();
    base = event_base_new();
    lat = calloc((size_t)want, sizeof *lat);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    t0 = now_s();
    for (int i = 0; i < producers + consumers; i++) {
        conn_t *c = calloc(1, sizeof *c);
        c->producer = i < producers;
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sa, sizeof sa) != 0)
            return fprintf(stderr, "cannot connect to 127.0.0.1:%d\n", port), 1;
        open_conns++;
    }
    event_base_dispatch(base);
    double secs = (t_end ? t_end : now_s()) - t0;
    qsort(lat, (size_t)nlat, sizeof *lat, cmp);
    printf("full cycle over FWP: %ld jobs in %.2f s = %.0f jobs/s; push p50 %.2f ms p99 %.2f ms; "
           "errors %ld\n", acked, secs, (double)acked / secs,
           nlat ? lat[nlat / 2] * 1e3 : 0, nlat ? lat[nlat * 99 / 100] * 1e3 : 0, errors);
    return errors ? 1 : 0;
}
