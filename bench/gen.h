/*
 * gen: what the C load generators (fwpgen.c, peergen.c) share: the clock,
 * the common options, and the loopback connections they open. Header only;
 * each generator is one program with its own state and protocol.
 */
#ifndef JOBQ_BENCH_GEN_H
#define JOBQ_BENCH_GEN_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double gen_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct gen_opts {
    int port, producers, consumers;
    long jobs;
    double max_seconds;
} gen_opts_t;

/* Reads "--name value" pairs: the common ones into o, the others through
 * extra (returns 0 if it took the option). 0, or 2 after saying what was
 * wrong (the exit status for a usage error). */
static inline int gen_parse(int argc, char **argv, gen_opts_t *o,
                            int (*extra)(const char *name, const char *value))
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *n = argv[i], *v = argv[i + 1];
        if (!strcmp(n, "--port")) o->port = atoi(v);
        else if (!strcmp(n, "--producers")) o->producers = atoi(v);
        else if (!strcmp(n, "--consumers")) o->consumers = atoi(v);
        else if (!strcmp(n, "--jobs")) o->jobs = atol(v);
        else if (!strcmp(n, "--max-seconds")) o->max_seconds = atof(v);
        else if (!extra || extra(n, v) != 0)
            return fprintf(stderr, "unknown option %s\n", n), 2;
    }
    return 0;
}

/* A bufferevent connecting to 127.0.0.1:port, reading and writing, with
 * the callbacks given; NULL (said on stderr) if it cannot start. */
static inline struct bufferevent *gen_connect(struct event_base *base, int port,
                                              bufferevent_data_cb on_read,
                                              bufferevent_event_cb on_event, void *arg)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct bufferevent *b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!b)
        return NULL;
    bufferevent_setcb(b, on_read, NULL, on_event, arg);
    bufferevent_enable(b, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(b, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "cannot connect to 127.0.0.1:%d\n", port);
        bufferevent_free(b);
        return NULL;
    }
    return b;
}

#endif
