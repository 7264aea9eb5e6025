/*
 * fwpgen: full-cycle load over the Faktory Work Protocol (PUSH -> FETCH ->
 * ACK), the counterpart of loadgen.c for HTTP.
 *
 * P producer and C consumer connections, one command in flight each, on
 * one libevent loop (the client should cost little of the shared CPU).
 * Producers PUSH jobs with ~100-byte args; consumers FETCH and ACK them.
 * Bounded: stops after --jobs jobs are acknowledged or --max-seconds have
 * passed. --rate R paces the pushes to R a second in all (a queue that
 * does not build up), instead of as fast as they are answered; --work-ms
 * M makes each consumer hold a job M ms before its ACK, as a worker
 * would. Prints jobs/s for the full cycle and PUSH latency percentiles.
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

#include "gen.h"

typedef enum { S_HI, S_HELLO, S_PUSH, S_FETCH, S_ACK } state_t;

typedef struct conn {
    struct bufferevent *bev;
    bool producer;
    state_t st;
    double sent_at;
    char jid[64];
    struct event *timer; /* --rate and --work-ms waits; freed with the connection */
} conn_t;

static struct event_base *base;
static long want, pushed, acked, errors;
static double t0, t_end, max_seconds;
static double *lat;
static long nlat;
static int open_conns;
static int run_id; /* jids differ from run to run against one server */
static double work_ms; /* --work-ms: a consumer holds each job this long before its ACK */
static double rate; /* --rate: pushes a second at most, all producers (0: as fast as answered) */
static const char pad[] = "0123456789012345678901234567890123456789012345678901234567890123456789"
                          "012345678901234567";

static void finish(conn_t *c)
{
    if (c->timer)
        event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
    if (--open_conns == 0)
        event_base_loopbreak(base);
}

static bool over(void) { return acked >= want || gen_now_s() - t0 > max_seconds; }

static bool next(conn_t *c);

static void send_ack(conn_t *c)
{
    c->st = S_ACK;
    evbuffer_add_printf(bufferevent_get_output(c->bev), "ACK {\"jid\":\"%s\"}\r\n", c->jid);
}

/* The connection's one wait: when it ends, an ACK if it holds a job,
 * else its next PUSH. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_t *c = arg;
    if (c->st == S_FETCH)
        send_ack(c);
    else
        next(c);
}

static void wait_for(conn_t *c, double seconds)
{
    if (!c->timer)
        c->timer = evtimer_new(base, on_timer, c);
    struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };
    evtimer_add(c->timer, &tv);
}

/* Sends the connection's next command; false if it is done (and freed). */
static bool next(conn_t *c)
{
    if (over() || (c->producer && pushed >= want)) {
        finish(c);
        return false;
    }
    double due = rate > 0 ? t0 + (double)pushed / rate : 0, now = gen_now_s();
    if (c->producer && due > now) { /* ahead of --rate: push when due */
        wait_for(c, due - now);
        return true;
    }
    if (c->producer) {
        long n = pushed++;
        c->st = S_PUSH;
        c->sent_at = gen_now_s();
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
            lat[nlat++] = gen_now_s() - c->sent_at;
        /* fall through */
    case S_HELLO:
        errors += strcmp(r, "+OK") != 0;
        return next(c);
    case S_FETCH: {
        char *j = strstr(r, "\"jid\":\"");
        if (!j) /* $-1: nothing yet */
            return next(c);
        snprintf(c->jid, sizeof c->jid, "%.*s", (int)strcspn(j + 7, "\""), j + 7);
        if (work_ms > 0)
            wait_for(c, work_ms / 1e3); /* c->st stays S_FETCH until its ACK goes */
        else
            send_ack(c);
        return true;
    }
    case S_ACK:
        errors += strcmp(r, "+OK") != 0;
        if (++acked == want) { /* done: the others may sit in a FETCH for 2 s */
            t_end = gen_now_s();
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

static int extra_opt(const char *name, const char *value)
{
    if (!strcmp(name, "--rate"))
        rate = atof(value);
    else if (!strcmp(name, "--work-ms"))
        work_ms = atof(value);
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    gen_opts_t o = { .port = 7419, .producers = 1, .consumers = 1, .jobs = 10000,
                     .max_seconds = 60 };
    int rc = gen_parse(argc, argv, &o, extra_opt);
    if (rc)
        return rc;
    want = o.jobs;
    max_seconds = o.max_seconds;
    run_id = (int)getpid();
    base = event_base_new();
    lat = calloc((size_t)want, sizeof *lat);
    t0 = gen_now_s();
    for (int i = 0; i < o.producers + o.consumers; i++) {
        conn_t *c = calloc(1, sizeof *c);
        c->producer = i < o.producers;
        if (!(c->bev = gen_connect(base, o.port, on_read, on_event, c)))
            return 1;
        open_conns++;
    }
    event_base_dispatch(base);
    double secs = (t_end ? t_end : gen_now_s()) - t0;
    qsort(lat, (size_t)nlat, sizeof *lat, cmp);
    printf("full cycle over FWP: %ld jobs in %.2f s = %.0f jobs/s; push p50 %.2f ms p99 %.2f ms; "
           "errors %ld\n", acked, secs, (double)acked / secs,
           nlat ? lat[nlat / 2] * 1e3 : 0, nlat ? lat[nlat * 99 / 100] * 1e3 : 0, errors);
    return errors ? 1 : 0;
}
