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

#include <event2/listener.h>
#include <netinet/in.h>

#include "net/linger.h"
#include "http/request_internal.h"
#include "http/stream_internal.h"
#include "http/synthetic.h"
#include "net/listen.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"
#include "util/randid.h"

/* One accepted connection. We accept ourselves (libmicrohttpd gets each
 * socket through MHD_add_connection) so that admission, per-client limits
 * and deadlines are ours, and libmicrohttpd never reaches a connection
 * limit of its own: in external-loop mode it stops watching its listening
 * socket at its limit and, with no connection left to time out, was never
 * run again (the server stopped accepting for good). */
typedef struct http_conn {
    list_node_t link;    /* http_server.conns */
    int fd;
    admit_slot_t slot;
    int64_t deadline_ns; /* close it if still here then; INT64_MAX: a handler holds it */
    bool shut;
} http_conn_t;

struct http_server {
    struct MHD_Daemon *d;
    struct event *io, *timer, *sweep;
    net_listener_t listener;
    http_route_fn route;
    http_done_fn done;
    void *done_ud;
    void *ud;
    size_t max_body;
    unsigned inflight;
    admit_t *admit;
    int64_t idle_ns, header_ns, body_ns;
    list_node_t conns;         /* http_conn_t, every connection libmicrohttpd holds */
    http_conn_t *adding;       /* the one inside MHD_add_connection */
    net_linger_t *linger;     /* closed sockets still draining the client's bytes */
};

#define SWEEP_MS 250

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
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->hc = ci ? ci->socket_context : NULL;
    r->too_many = r->hc && r->hc->slot.verdict != ADMIT_OK;
    s->inflight++;
    return r;
}

static struct MHD_Response *reply_body(http_req_t *r)
{
    if (r->stream)
        return http_stream_response(r->stream);
    if (r->static_body) {
        r->reply_bytes = r->static_len;
        return MHD_create_response_from_buffer(r->static_len, (void *)r->static_body,
                                               MHD_RESPMEM_PERSISTENT);
    }
    const char *body = r->resp ? r->resp : "";
    r->reply_bytes = strlen(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->reply_bytes, (void *)body, r->resp ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp)
        r->resp = NULL; /* MHD frees it now */
    return resp;
}

static enum MHD_Result send_reply(http_req_t *r)
{
    struct MHD_Response *resp = reply_body(r);
    if (!resp)
        return MHD_NO;
    if (r->ctype)
        MHD_add_response_header(resp, "Content-Type", r->ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    bool retry_after = false;
    for (int i = 0; i < r->nheaders; i++) {
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
        retry_after = retry_after || strcasecmp(r->headers[i].name, "Retry-After") == 0;
    }
    /* The API promises Retry-After on every 503 and 429 (docs/api.md);
     * handlers that know better say so themselves. */
    if (!retry_after && (r->status == 503 || r->status == 429))
        MHD_add_response_header(resp, "Retry-After", "5");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    r->sent = true;
    MHD_destroy_response(resp);
    return ret;
}

static void set_deadline(http_req_t *r, int64_t ns)
{
    if (r->hc)
        r->hc->deadline_ns = ns == INT64_MAX ? ns : clock_mono_ns() + ns;
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
    unsigned from = admit_open_from(r->srv->admit, r->hc->slot.addr);
    if (admit_open(r->srv->admit) > admit_max(r->srv->admit))
        problem_set(&p, ERR_UNAVAILABLE, "", "too many open connections (%u allowed); retry "
                    "shortly", admit_max(r->srv->admit));
    else
        problem_set(&p, ERR_UNAVAILABLE, "", "too many open connections from %s (%u open, "
                    "JOBQ_MAX_CONNECTIONS_PER_CLIENT); retry shortly", r->hc->slot.addr, from);
    http_add_header(r, "Retry-After", "1");
    http_add_header(r, "Connection", "close");
    http_reply_problem(r, &p);
}

/* A request whose framing a proxy in front could read differently (request
 * smuggling) is refused and its connection closed; see bad_framing. */
static void refuse_framing(http_req_t *r, int status, const char *field, const char *why)
{
    problem_t p;
    problem_set(&p, ERR_VALIDATION, field, "%s", why);
    p.status = status;
    http_add_header(r, "Connection", "close");
    http_reply_problem(r, &p);
}

typedef struct header_count {
    const char *name;
    int n;
    const char *first;
} header_count_t;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    header_count_t *h = cls;
    if (strcasecmp(key, h->name) != 0)
        return MHD_YES;
    if (h->n++ == 0)
        h->first = value;
    return MHD_YES;
}

/* RFC 9112 6.3: a message with both Transfer-Encoding and Content-Length,
 * several Content-Lengths, or a transfer coding other than chunked cannot
 * be framed safely. Returns true (and answers) if r is one. */
static bool bad_framing(http_req_t *r)
{
    header_count_t cl = { "Content-Length" }, te = { "Transfer-Encoding" };
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &cl);
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &te);
    if (cl.n > 1) {
        refuse_framing(r, 400, "Content-Length", "Content-Length is given more than once");
    } else if (te.n && cl.n) {
        refuse_framing(r, 400, "Transfer-Encoding",
                       "Transfer-Encoding and Content-Length are both given");
    } else if (te.n > 1 || (te.n && strcasecmp(te.first ? te.first : "", "chunked") != 0)) {
        refuse_framing(r, 501, "Transfer-Encoding",
                       "only Transfer-Encoding: chunked is supported");
    } else {
        return false;
    }
    return true;
}

static enum MHD_Result dispatch(http_server_t *s, http_req_t *r)
{
    r->phase = REQ_HANDLING;
    set_deadline(r, INT64_MAX); /* the handler's now; its waits are bounded */
    if (r->too_big)
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
 * Too-big bodies are read and discarded up to DISCARD_MAX past the limit,
 * and the 413 sent at the end: a client that writes its whole body before
 * reading gets the answer instead of a reset (nginx's lingering close). A
 * Content-Length beyond even that is refused on the first call, without
 * reading (the connection then closes); a chunked body that keeps going
 * past it is cut off. The body deadline bounds how long either may take. */
#define DISCARD_MAX (8u << 20)

/* The first call: headers are in. Reads the body from here on. */
static bool begin_request(http_server_t *s, struct MHD_Connection *c, const char *url,
                          const char *method, void **con_cls)
{
    http_req_t *r = new_request(s, c, url, method);
    if (!(*con_cls = r))
        return false;
    set_deadline(r, s->body_ns);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    r->too_big = n > s->max_body;
    r->phase = REQ_HANDLING;
    if (r->too_many)
        too_many(r);
    else if (bad_framing(r))
        ; /* answered */
    else if (n > s->max_body + DISCARD_MAX)
        too_big(r);
    else
        r->phase = REQ_NEW; /* read the body (or discard it), answer at the end */
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)version;
    http_server_t *s = cls;
    http_req_t *r = *con_cls;
    if (!r) {
        if (!begin_request(s, c, url, method, con_cls))
            return MHD_NO;
        r = *con_cls;
        if (r->phase == REQ_NEW)
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
    if (r->phase == REQ_REPLIED && !r->sent) {
        /* The reply must be read in time too; a stream is bounded by what it queues. */
        set_deadline(r, r->stream ? INT64_MAX : s->body_ns);
        return send_reply(r);
    }
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
    http_server_t *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        CHECK(s->adding); /* connections arrive only through on_accept */
        *socket_context = s->adding;
        if (s->adding)
            list_push_back(&s->conns, &s->adding->link);
        s->adding = NULL;
        return;
    }
    http_conn_t *hc = *socket_context;
    if (!hc)
        return;
    if (!hc->shut) /* one we shut past its deadline has had its time */
        net_linger_closing(s->linger, hc->fd);
    list_remove(&hc->link);
    admit_leave(s->admit, &hc->slot);
    free(hc);
    *socket_context = NULL;
}

/* The request line is in (the URI log callback runs then): its headers
 * get the header deadline from here, whatever idle time came before. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)uri;
    http_server_t *s = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    http_conn_t *hc = ci ? ci->socket_context : NULL;
    if (hc) {
        int64_t d = clock_mono_ns() + s->header_ns;
        if (d < hc->deadline_ns)
            hc->deadline_ns = d;
    }
    return NULL;
}

/* The server's %-decoding (http_unescape): no NUL byte survives it. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *str)
{
    (void)cls;
    (void)c;
    return http_unescape(str);
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
    if (r->hc) /* keep-alive: the next request has the idle time, then its deadline */
        r->hc->deadline_ns = clock_mono_ns() + s->idle_ns + s->header_ns;
    if (s->done && r->sent)
        s->done(s->done_ud, r, (double)(clock_mono_ns() - r->started_ns) / 1e9);
    http_req_free(r);
    *con_cls = NULL;
}

/* Past its deadline a connection is shut down; libmicrohttpd then sees the
 * end of the stream and closes it as it would any other. A suspended one
 * (a handler holds it) has no deadline. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_server_t *s = arg;
    int64_t now = clock_mono_ns();
    bool any = false;
    for (list_node_t *n = s->conns.next; n != &s->conns; n = n->next) {
        http_conn_t *hc = LIST_ENTRY(n, http_conn_t, link);
        if (hc->shut || now < hc->deadline_ns)
            continue;
        hc->shut = any = true;
        admit_timed_out(s->admit);
        shutdown(hc->fd, SHUT_RDWR);
    }
    if (any)
        run(s);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    http_server_t *s = arg;
    http_conn_t *hc = calloc(1, sizeof *hc);
    if (!hc || admit_enter(s->admit, sa, &hc->slot) == ADMIT_REFUSE) {
        free(hc); /* far past the limits: no word, no memory */
        evutil_closesocket(fd);
        return;
    }
    hc->fd = fd;
    hc->deadline_ns = clock_mono_ns() + s->idle_ns + s->header_ns;
    list_init(&hc->link);
    s->adding = hc;
    if (MHD_add_connection(s->d, fd, sa, (socklen_t)salen) != MHD_YES) {
        /* libmicrohttpd closed the socket; it never saw it as started. */
        if (s->adding == hc) {
            admit_leave(s->admit, &hc->slot);
            free(hc);
        }
    }
    s->adding = NULL;
    run(s);
}

http_server_t *http_server_start(struct event_base *base, const http_options_t *opt,
                                 http_route_fn route, void *ud, char *err, size_t len)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->route = route;
    s->done = opt->done;
    s->done_ud = opt->done_ud;
    s->ud = ud;
    s->max_body = opt->max_body_bytes;
    s->admit = opt->admit;
    s->idle_ns = (int64_t)opt->idle_timeout_s * 1000000000LL;
    s->header_ns = opt->header_timeout_ms * 1000000LL;
    s->body_ns = opt->body_timeout_ms * 1000000LL;
    list_init(&s->conns);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO |
                     MHD_USE_NO_LISTEN_SOCKET;
    /* Its connection limit is never the one that bites: admission is ours.
     * Its per-connection pool holds the request line, the headers and the
     * reply's headers (bodies have their own buffers), and libmicrohttpd
     * zeroes all of it for every request: at its 32 KiB default that was a
     * third of the server's instructions per job (docs/performance.md). */
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_POOL_BYTES,
                            MHD_OPTION_CONNECTION_TIMEOUT, opt->idle_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, 1u << 20,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape, s, MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, len, "cannot start the HTTP server");
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    s->io = event_new(base, info->epoll_fd, EV_READ | EV_PERSIST, on_io, s);
    s->timer = evtimer_new(base, on_io, s);
    s->sweep = event_new(base, -1, EV_PERSIST, on_sweep, s);
    s->linger = net_linger_new(base);
    if (!s->linger || !s->io || !s->timer || !s->sweep || net_listen(&s->listener, base, opt->listen, "JOBQ_LISTEN", on_accept, s, err, len)) {
        http_server_stop(s);
        return NULL;
    }
    event_add(s->io, NULL);
    struct timeval tv = { 0, SWEEP_MS * 1000 };
    event_add(s->sweep, &tv);
    schedule(s);
    return s;
}

unsigned http_server_port(const http_server_t *s) { return s->listener.port; }
unsigned http_server_inflight(const http_server_t *s) { return s->inflight; }

void http_server_stop(http_server_t *s)
{
    if (!s)
        return;
    net_listen_free(&s->listener);
    if (s->io)
        event_free(s->io);
    if (s->timer)
        event_free(s->timer);
    if (s->sweep)
        event_free(s->sweep);
    MHD_stop_daemon(s->d); /* closes every connection: on_connection frees each */
    CHECK(list_empty(&s->conns));
    net_linger_free(s->linger);
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
