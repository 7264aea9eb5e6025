/*
 * peergen: the full cycle of fwpgen.c against the servers a user would pick
 * instead of jobq, in the same client style (one command in flight per
 * connection, one libevent loop, ~100-byte jobs), so their figures sit in
 * one table with jobq's (bench/peers.py):
 *
 *   --proto beanstalk  put -> reserve-with-timeout -> delete (beanstalkd)
 *   --proto redis      LPUSH -> BLMOVE q processing -> LREM processing, the
 *                      reliable-queue pattern (a job survives its consumer)
 *
 * --pipeline N sends N commands in one write and waits for their N
 * replies: producers N puts, consumers N takes, then a delete for each job
 * taken. --consumers 0 measures enqueues alone. Bounded: stops after --jobs jobs
 * are finished (or enqueued) or --max-seconds passed.
 * Loopback only.
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

typedef enum { P_BEANSTALK, P_REDIS } proto_t;
typedef enum { S_PUT, S_TAKE, S_DONE } state_t;

typedef struct conn {
    struct bufferevent *bev;
    bool producer;
    state_t st;
    int waiting;   /* replies still to come for what was sent */
    int ntaken;
    char (*taken)[160]; /* redis: the bodies taken, to remove; beanstalk: their ids */
} conn_t;

static struct event_base *base;
static proto_t proto;
static long want, pushed, done, errors;
static double t0, t_end, max_seconds;
static int open_conns, consumers, pipeline = 1;
static char body[101]; /* 100 bytes, unique per job in its first digits */

static void finish(conn_t *c)
{
    bufferevent_free(c->bev);
    free(c->taken);
    free(c);
    if (--open_conns == 0)
        event_base_loopbreak(base);
}

static void resp(struct evbuffer *out, int n, const char **argv, const size_t *lens)
{
    evbuffer_add_printf(out, "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        evbuffer_add_printf(out, "$%zu\r\n", lens[i]);
        evbuffer_add(out, argv[i], lens[i]);
        evbuffer_add(out, "\r\n", 2);
    }
}

static void send_put(conn_t *c, long n)
{
    char b[101];
    memcpy(b, body, sizeof b);
    char digits[16];
    snprintf(digits, sizeof digits, "%010ld", n % 10000000000L);
    memcpy(b, digits, 10);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (proto == P_BEANSTALK) {
        evbuffer_add_printf(out, "put 0 0 60 100\r\n%s\r\n", b);
    } else {
        const char *a[] = { "LPUSH", "q", b };
        size_t l[] = { 5, 1, 100 };
        resp(out, 3, a, l);
    }
}

/* The first take of a pipelined group waits up to 1 s for a job; the rest
 * take what is there at once. */
static void send_take(conn_t *c, bool wait)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (proto == P_BEANSTALK) {
        evbuffer_add_printf(out, "reserve-with-timeout %d\r\n", wait ? 1 : 0);
    } else if (wait) {
        const char *a[] = { "BLMOVE", "q", "processing", "RIGHT", "LEFT", "1" };
        size_t l[] = { 6, 1, 10, 5, 4, 1 };
        resp(out, 6, a, l);
    } else {
        const char *a[] = { "LMOVE", "q", "processing", "RIGHT", "LEFT" };
        size_t l[] = { 5, 1, 10, 5, 4 };
        resp(out, 5, a, l);
    }
}

static void send_done(conn_t *c, const char *job)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (proto == P_BEANSTALK) {
        evbuffer_add_printf(out, "delete %s\r\n", job);
    } else {
        const char *a[] = { "LREM", "processing", "1", job };
        size_t l[] = { 4, 10, 1, strlen(job) };
        resp(out, 4, a, l);
    }
}

static bool over(void) { return done >= want || gen_now_s() - t0 > max_seconds; }

/* Sends the connection's next command; false if it is done (and freed). */
static bool next(conn_t *c)
{
    if (over() || (c->producer && pushed >= want)) {
        finish(c);
        return false;
    }
    c->st = c->producer ? S_PUT : S_TAKE;
    c->waiting = 0;
    c->ntaken = 0;
    for (int i = 0; i < pipeline && (!c->producer || pushed < want); i++, c->waiting++)
        if (c->producer)
            send_put(c, pushed++);
        else
            send_take(c, i == 0);
    return true;
}

/* One reply: a line, with the data that follows it if it announces some
 * (beanstalk "RESERVED id n", redis "$n"). NULL until all has arrived. */
static char *reply(struct evbuffer *in, char *data, size_t cap)
{
    size_t n;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &n, EVBUFFER_EOL_CRLF_STRICT);
    if (eol.pos < 0)
        return NULL;
    char line[200];
    size_t ll = (size_t)eol.pos < sizeof line - 1 ? (size_t)eol.pos : sizeof line - 1;
    evbuffer_copyout(in, line, ll);
    line[ll] = '\0';
    long bulk = -1;
    unsigned long long id;
    if (proto == P_REDIS && line[0] == '$')
        bulk = atol(line + 1);
    else if (proto == P_BEANSTALK && sscanf(line, "RESERVED %llu %ld", &id, &bulk) != 2)
        bulk = -1;
    size_t need = (size_t)eol.pos + 2 + (bulk >= 0 ? (size_t)bulk + 2 : 0);
    if (evbuffer_get_length(in) < need)
        return NULL;
    evbuffer_drain(in, (size_t)eol.pos + 2);
    data[0] = '\0';
    if (bulk >= 0) {
        size_t k = (size_t)bulk < cap - 1 ? (size_t)bulk : cap - 1;
        evbuffer_remove(in, data, k);
        data[k] = '\0';
        evbuffer_drain(in, (size_t)bulk - k + 2);
    }
    if (proto == P_BEANSTALK && bulk >= 0)
        snprintf(data, cap, "%llu", id); /* what delete needs */
    return strcpy(malloc(strlen(line) + 1), line);
}

/* False if the connection is done (and freed). */
static bool on_reply(conn_t *c, const char *line, const char *data)
{
    bool bad = line[0] == '-' || strncmp(line, "ERR", 3) == 0 || strstr(line, "BAD") ||
               strstr(line, "UNKNOWN") || strstr(line, "DRAINING") || strstr(line, "BURIED");
    if (bad && errors++ < 5)
        fprintf(stderr, "peergen: %s\n", line);
    bool last = --c->waiting == 0;
    switch (c->st) {
    case S_PUT:
        if (!consumers && ++done == want) { /* enqueue only */
            t_end = gen_now_s();
            event_base_loopbreak(base);
            return false;
        }
        return last ? next(c) : true;
    case S_TAKE:
        if (data[0]) /* else timed out or empty */
            snprintf(c->taken[c->ntaken++], sizeof c->taken[0], "%s", data);
        if (!last)
            return true;
        if (!c->ntaken)
            return next(c);
        c->st = S_DONE;
        for (c->waiting = 0; c->waiting < c->ntaken; c->waiting++)
            send_done(c, c->taken[c->waiting]);
        return true;
    case S_DONE:
        if (++done == want) {
            t_end = gen_now_s();
            event_base_loopbreak(base);
            return false;
        }
        return last ? next(c) : true;
    }
    return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    char data[200], *line;
    while ((line = reply(bufferevent_get_input(bev), data, sizeof data))) {
        bool alive = on_reply(c, line, data);
        free(line);
        if (!alive)
            return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        next(arg);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        errors++;
        finish(arg);
    }
}

/* peergen's own options beside gen's. */
static int own_option(const char *name, const char *value)
{
    if (!strcmp(name, "--proto"))
        proto = strcmp(value, "redis") ? P_BEANSTALK : P_REDIS;
    else if (!strcmp(name, "--pipeline"))
        pipeline = atoi(value);
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    gen_opts_t o = { .producers = 1, .consumers = 1, .jobs = 10000, .max_seconds = 60 };
    int rc = gen_parse(argc, argv, &o, own_option);
    if (rc)
        return rc;
    if (pipeline < 1 || pipeline > 1000)
        return fprintf(stderr, "--pipeline must be 1-1000\n"), 2;
    if (!o.port)
        return fprintf(stderr, "usage: peergen --proto beanstalk|redis --port N ...\n"), 2;
    consumers = o.consumers;
    want = o.jobs;
    max_seconds = o.max_seconds;
    memset(body, 'x', 100);
    base = event_base_new();
    t0 = gen_now_s();
    for (int i = 0; i < o.producers + o.consumers; i++) {
        conn_t *c = calloc(1, sizeof *c);
        c->producer = i < o.producers;
        c->taken = calloc((size_t)pipeline, sizeof *c->taken);
        if (!(c->bev = gen_connect(base, o.port, on_read, on_event, c)))
            return 1;
        open_conns++;
    }
    event_base_dispatch(base);
    double secs = (t_end ? t_end : gen_now_s()) - t0;
    printf("full cycle over %s: %ld jobs in %.2f s = %.0f jobs/s; errors %ld\n",
           proto == P_REDIS ? "redis" : "beanstalk", done, secs, (double)done / secs, errors);
    return errors ? 1 : 0;
}
