/*
 * http server: libmicrohttpd driven from a libevent loop.
 *
 * libmicrohttpd runs in external-loop epoll mode: its epoll fd is one event
 * in the caller's event_base, so HTTP, timers and store notifications share
 * one thread and the engine needs no locks (docs/architecture.md has the
 * measurements behind this). This module knows nothing of jobs: it reads
 * bodies within a size limit, assigns request ids, hands each complete
 * request to the route function, and sends whatever reply the handler
 * gives, at once or later (suspend/resume).
 *
 * Threads: everything runs on the loop thread.
 * Ownership: the server owns each http_req_t from the first byte until the
 * connection's completion; handlers borrow it and must reply exactly once.
 */
#ifndef JOBQ_HTTP_SERVER_H
#define JOBQ_HTTP_SERVER_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"
#include "net/admit.h"

typedef struct http_server http_server_t;

/* Bytes per connection for the request line, the headers and the reply's
 * headers: a request whose head is larger gets 431 from libmicrohttpd. */
#ifndef HTTP_CONN_POOL_BYTES
#define HTTP_CONN_POOL_BYTES (8 * 1024)
#endif

/* Called once per request, when its body is complete. */
typedef void (*http_route_fn)(void *ud, http_req_t *r);
/* Called once per request that got a reply, when the connection is done
 * with it, with the time from its first byte to the end of the reply. */
typedef void (*http_done_fn)(void *ud, const http_req_t *r, double seconds);

/* Deadlines: a connection that is idle (between requests, or stalled
 * mid-request) for idle_timeout_s is closed. Headers must be complete within
 * header_timeout_ms of the request line (and the request line within the
 * idle time plus that of connecting or the last reply), the body within
 * body_timeout_ms of the headers, and the reply read within body_timeout_ms
 * of being sent, however slowly bytes trickle in or out. A request held by
 * its handler (a long poll, a store wait) has no deadline here: those are
 * bounded where they wait. */
typedef struct http_options {
    const char *listen; /* "host:port", "[v6]:port"; port 0 picks a free port */
    size_t max_body_bytes;
    unsigned idle_timeout_s;
    int64_t header_timeout_ms, body_timeout_ms;
    admit_t *admit; /* connection limits, shared with other listeners; borrowed */
    http_done_fn done; /* optional */
    void *done_ud;
} http_options_t;

http_server_t *http_server_start(struct event_base *base, const http_options_t *opt,
                                 http_route_fn route, void *ud, char *err, size_t errlen);
/* The bound port (useful with port 0). */
unsigned http_server_port(const http_server_t *s);
/* Requests in flight (including suspended ones). */
unsigned http_server_inflight(const http_server_t *s);
void http_server_stop(http_server_t *s);

#endif
