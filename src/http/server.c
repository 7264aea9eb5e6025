/* libmicrohttpd inside a libevent loop; see server.h. */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/request_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/randid.h"

struct http_server {
    struct MHD_Daemon *d;
    struct event *io, *timer;
    http_route_fn route;
    http_done_fn done;
    void *done_ud;
    void *ud;
    size_t max_body;
    unsigned inflight;
    unsigned port;
    unsigned connections, max_connections; /* open now; past the max, 503 */
};

/* libmicrohttpd's own limit sits this far above ours, so that connections
 * past ours can still be told why (503) before they are closed. */
#define CONNECTION_SLACK 64

static void schedule(http_server_t *s);

static void run(http_server_t *s)
{
    MHD_run(s->d);
    schedule(s);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run(arg);
}

/* MHD must be run again within its timeout, and at once if it has work pending. */
static void schedule(http_server_t *s)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(s->d, &ms) == MHD_YES) {
        struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
        evtimer_add(s->timer, &tv);
    } else {
        evtimer_del(s->timer);
    }
}

static void request_id_for(struct MHD_Connection *c, char *out)
{
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    bool ok = n > 0 && n <= HTTP_REQUEST_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = given[i] > 32 && given[i] < 127 && given[i] != '"' && given[i] != '\\';
    if (ok)
        memcpy(out, given, n + 1);
    else if (randid_hex(out, 12) != 0)
        strcpy(out, "unknown");
}

static http_req_t *new_request(http_server_t *s, struct MHD_Connection *c, const char *url,
                               const char *method)
{
    http_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    r->srv = s;
    r->started_ns = clock_mono_ns();
    r->max_body = s->max_body;
    r->method = method;
    r->url = url;
    request_id_for(c, r->request_id);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->max_body)
        r->too_big = true;
    r->too_many = s->connections > s->max_connections;
    s->inflight++;
    return r;
}

static enum MHD_Result send_reply(http_req_t *r)
{
    const char *body = r->resp ? r->resp : "";
    r->reply_bytes = strlen(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->reply_bytes, (void *)body, r->resp ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->resp = NULL; /* MHD frees it now */
    if (r->ctype)
        MHD_add_response_header(resp, "Content-Type", r->ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    r->sent = true;
    MHD_destroy_response(resp);
    return ret;
}

static void too_big(http_req_t *r)
{
    problem_t p;
    problem_set(&p, ERR_VALIDATION, "body", "the request body exceeds %zu bytes", r->max_body);
    p.status = 413;
    http_reply_problem(r, &p);
}

static void append_body(http_req_t *r, const char *data, size_t n)
{
    if (r->too_big || r->body_len + n > r->max_body) {
        r->too_big = true;
        return;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            r->too_big = true;
            return;
        }
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

static void too_many(http_req_t *r)
{
    problem_t p;
    problem_set(&p, ERR_UNAVAILABLE, "", "too many open connections (%u allowed); retry shortly",
                r->srv->max_connections);
    http_add_header(r, "Retry-After", "1");
    http_add_header(r, "Connection", "close");
    http_reply_problem(r, &p);
}

static enum MHD_Result dispatch(http_server_t *s, http_req_t *r)
{
    r->phase = REQ_HANDLING;
    if (r->too_many)
        too_many(r);
    else if (r->too_big)
        too_big(r);
    else
        s->route(s->ud, r);
    if (r->phase == REQ_HANDLING) {
        problem_t p;
        problem_set(&p, ERR_INTERNAL, "", "the handler gave no reply");
        http_reply_problem(r, &p);
    }
    return MHD_YES;
}

/* libmicrohttpd calls this first with the headers only, then with each body
 * piece, then once more with none; replying only on that last call is what
 * keeps keep-alive (and throughput) intact.
 *
 * Too-big bodies: a Content-Length over the limit is refused on the first
 * call, without reading the body (the connection then closes). A chunked
 * body that grows past the limit cannot be answered mid-upload (MHD 0.9.75
 * would drop the connection without a reply), so the rest is discarded and
 * the 413 sent at the end, unless the sender keeps going past DISCARD_MAX,
 * when the connection is simply closed. */
#define DISCARD_MAX (64u << 20)

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)version;
    http_server_t *s = cls;
    http_req_t *r = *con_cls;
    if (!r) {
        if (!(*con_cls = r = new_request(s, c, url, method)))
            return MHD_NO;
        if (!r->too_big && !r->too_many)
            return MHD_YES;
    } else if (*data_size) {
        if (r->sent)
            return MHD_NO;
        append_body(r, data, *data_size);
        r->received += *data_size;
        *data_size = 0;
        return r->received > r->max_body + DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (r->phase == REQ_NEW)
        dispatch(s, r);
    if (r->phase == REQ_REPLIED && !r->sent)
        return send_reply(r);
    if (r->phase == REQ_DEFERRED && !r->suspended) {
        MHD_suspend_connection(c); /* http_reply_* resumes it */
        r->suspended = true;
    }
    return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    (void)socket_context;
    http_server_t *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        s->connections++;
    else if (s->connections > 0)
        s->connections--;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)c;
    (void)code;
    http_server_t *s = cls;
    http_req_t *r = *con_cls;
    if (!r)
        return;
    s->inflight--;
    if (s->done && r->sent)
        s->done(s->done_ud, r, (double)(clock_mono_ns() - r->started_ns) / 1e9);
    http_req_free(r);
    *con_cls = NULL;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t len)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (!colon || hl == 0 || hl >= sizeof host || !colon[1]) {
        snprintf(err, len, "JOBQ_LISTEN=\"%s\" is not valid: expected host:port", listen);
        return -1;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, len, "JOBQ_LISTEN=\"%s\" is not valid: %s", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

http_server_t *http_server_start(struct event_base *base, const http_options_t *opt,
                                 http_route_fn route, void *ud, char *err, size_t len)
{
    struct sockaddr_storage ss;
    if (parse_listen(opt->listen, &ss, err, len) != 0)
        return NULL;
    http_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->route = route;
    s->done = opt->done;
    s->done_ud = opt->done_ud;
    s->ud = ud;
    s->max_body = opt->max_body_bytes;
    s->max_connections = opt->max_connections;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
                            MHD_OPTION_CONNECTION_TIMEOUT, opt->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, opt->max_connections + CONNECTION_SLACK,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, len, "cannot listen on %s (address in use, or not allowed)", opt->listen);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = port ? port->port : 0;
    s->io = event_new(base, info->epoll_fd, EV_READ | EV_PERSIST, on_io, s);
    s->timer = evtimer_new(base, on_io, s);
    event_add(s->io, NULL);
    schedule(s);
    return s;
}

unsigned http_server_port(const http_server_t *s) { return s->port; }
unsigned http_server_inflight(const http_server_t *s) { return s->inflight; }

void http_server_stop(http_server_t *s)
{
    if (!s)
        return;
    event_free(s->io);
    event_free(s->timer);
    MHD_stop_daemon(s->d);
    free(s);
}

/* Called by http_reply_* on a deferred request. In external-loop mode MHD
 * does not wake its own epoll fd for a resumed connection, so we run it on
 * the next loop iteration ourselves. */
void http_req_resume(http_req_t *r)
{
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        event_active(r->srv->timer, EV_TIMEOUT, 0);
    }
}
