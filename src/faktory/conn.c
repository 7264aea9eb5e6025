/* The Faktory listener: connections, their lines and deadlines, and the
 * dispatch of commands (faktory_internal.h has the lifetime rules). */
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faktory/faktory_internal.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/jsonb.h"
#include "util/log.h"

#define SWEEP_MS 250
#define CLOSE_GRACE_NS (2000LL * 1000000) /* a last reply gets this long to be read */

static void process(fwp_conn_t *c);

static size_t max_line(const fwp_conn_t *c) { return (size_t)c->srv->d.cfg->max_body_bytes; }

static void free_conn(fwp_conn_t *c)
{
    sbuf_free(&c->reply);
    sbuf_free(&c->out);
    free(c->fetch_buf);
    for (size_t i = 0; i < c->nbatch; i++)
        job_free(c->batch[i]);
    free(c->batch);
    json_decref(c->rejected);
    json_decref(c->hello);
    fwp_admin_free(c->admin);
    free(c->wid);
    free(c);
}

/* Frees c now, or (a read in flight) leaves it to the read's callback. */
static void fwp_close(fwp_conn_t *c)
{
    fwp_server_t *s = c->srv;
    if (c->dead)
        return;
    fwp_cancel_fetch(c);
    fwp_info_forget(c);
    store_waiter_cancel(&c->durable);
    if (c->busy)
        s->busy--;
    c->busy = false;
    list_remove(&c->link);
    if (list_linked(&c->resume_link))
        list_remove(&c->resume_link);
    admit_leave(s->d.admit, &c->slot);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->dead = true;
    fwp_release(c);
}

void fwp_release(fwp_conn_t *c)
{
    if (c->dead && !c->reading && !c->authing)
        free_conn(c);
}

static void resume_later(fwp_conn_t *c);

/* Every reply goes out here: the client has JOBQ_BODY_TIMEOUT to read it.
 * Replies gather in c->out until the connection's next step (this loop
 * round), which hands them to the socket at once. */
static void send_bytes(fwp_conn_t *c, const char *data, size_t len)
{
    if (!c->bev || !len)
        return;
    sbuf_add(&c->out, data, len);
    if (!c->write_deadline)
        c->write_deadline = clock_mono_ns() + c->srv->d.cfg->body_timeout_ms * 1000000LL;
    if (!c->stepping)
        resume_later(c); /* a step flushes as it ends */
}

/* Straight to the socket when nothing is queued before it (plain TCP):
 * libevent would first arm the socket for writing and disarm it once
 * written, two epoll_ctl calls per reply (bench/ab.py: 6% of the server's
 * CPU per job for one command in flight per connection). What the socket
 * does not take, and anything over TLS, goes through the bufferevent. */
static void flush_out(fwp_conn_t *c)
{
    if (!c->out.len || !c->bev)
        return;
    size_t sent = 0;
    struct evbuffer *o = bufferevent_get_output(c->bev);
    if (!c->srv->tls && evbuffer_get_length(o) == 0) {
        ssize_t n = send(bufferevent_getfd(c->bev), c->out.p, c->out.len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        sent = n > 0 ? (size_t)n : 0; /* an error: the bufferevent meets it and reports it */
    }
    if (sent < c->out.len)
        bufferevent_write(c->bev, c->out.p + sent, c->out.len - sent);
    c->out.len = 0;
}

static size_t pending_out(fwp_conn_t *c)
{
    return c->out.len + evbuffer_get_length(bufferevent_get_output(c->bev));
}

void fwp_send(fwp_conn_t *c, sbuf_t *out)
{
    send_bytes(c, out->p, out->len);
    out->len = 0;
}

void fwp_send_text(fwp_conn_t *c, const char *text) { send_bytes(c, text, strlen(text)); }

void fwp_send_json(fwp_conn_t *c, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (text)
        fwp_send_bulk(c, text, strlen(text));
    else
        fwp_send_err(c, "unavailable: out of memory");
    free(text);
}

void fwp_send_bulk(fwp_conn_t *c, const char *data, size_t len)
{
    char head[32], *p = head + sizeof head; /* the length's digits, last first: no snprintf */
    *--p = '\n';
    *--p = '\r';
    size_t n = len;
    do
        *--p = (char)('0' + n % 10);
    while (n /= 10);
    *--p = '$';
    send_bytes(c, p, (size_t)(head + sizeof head - p));
    send_bytes(c, data, len);
    send_bytes(c, "\r\n", 2);
}

void fwp_send_err(fwp_conn_t *c, const char *fmt, ...)
{
    metrics_fwp_error(c->srv->d.metrics, c->verb);
    sbuf_t out;
    sbuf_init(&out, 64);
    va_list ap;
    va_start(ap, fmt);
    fwp_reply_verr(&out, fmt, ap);
    va_end(ap);
    fwp_send(c, &out);
    sbuf_free(&out);
}


/* The connection needs the loop's attention: it runs in on_resume(), a
 * loop event of its own, never from inside whatever asked (an engine or
 * store callback, a command, or a bufferevent callback that OpenSSL's
 * bufferevent may call from within a write). */
static void resume_later(fwp_conn_t *c)
{
    if (c->dead || list_linked(&c->resume_link))
        return;
    list_push_back(&c->srv->resume, &c->resume_link);
    event_active(c->srv->resume_ev, EV_TIMEOUT, 0);
}

void fwp_close_after_reply(fwp_conn_t *c)
{
    c->phase = FWP_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    int64_t by = clock_mono_ns() + CLOSE_GRACE_NS;
    if (!c->write_deadline || c->write_deadline > by)
        c->write_deadline = by;
    resume_later(c); /* closes once the reply is out */
}

void fwp_finish(fwp_conn_t *c)
{
    CHECK(c->busy);
    c->busy = false;
    c->srv->busy--;
    resume_later(c); /* read on */
}

static void on_durable(store_waiter_t *w)
{
    fwp_conn_t *c = (fwp_conn_t *)((char *)w - offsetof(fwp_conn_t, durable));
    if (w->failed) {
        c->reply.len = 0;
        fwp_reply_err(&c->reply, "unavailable: the database was lost before this was durable");
    } else if (w->refused) {
        c->reply.len = 0;
        fwp_reply_err(&c->reply, "conflict: " STORE_REFUSED);
    }
    fwp_send(c, &c->reply);
    fwp_finish(c);
}

void fwp_reply_durable(fwp_conn_t *c)
{
    c->busy = true;
    c->srv->busy++;
    c->durable = (store_waiter_t){ .cb = on_durable };
    store_when_durable(c->srv->d.store, &c->durable, store_last_seq(c->srv->d.store));
}

/* ---- store reads ---- */

static void on_read(void *ud, json_t *result, const char *error)
{
    fwp_conn_t *c = ud;
    CHECK(c->reading);
    c->reading = false;
    if (c->dead) {
        fwp_release(c);
        return;
    }
    fwp_read_fn fn = c->read_fn;
    c->read_fn = NULL;
    c->busy = false;
    c->srv->busy--;
    fn(c, result, error); /* it replies, or waits again (marking busy) */
    resume_later(c);
}

static void start_read(fwp_conn_t *c, fwp_read_fn fn)
{
    CHECK(!c->reading); /* one read per connection at a time */
    c->reading = true;
    c->read_fn = fn;
    c->busy = true;
    c->srv->busy++;
}

void fwp_read_jobs(fwp_conn_t *c, const char *const *ids, size_t n, fwp_read_fn fn)
{
    start_read(c, fn);
    c->deletes_seen = engine_deletes(c->srv->d.engine);
    store_get_jobs(c->srv->d.store, ids, n, fwp_read_budget(c), on_read, c);
}

size_t fwp_read_budget(const fwp_conn_t *c) { return store_get_budget(max_line(c)); }

void fwp_read_list(fwp_conn_t *c, const store_query_t *q, fwp_read_fn fn)
{
    start_read(c, fn);
    store_list_jobs(c->srv->d.store, q, on_read, c);
}

void fwp_purge(fwp_conn_t *c, const store_purge_t *p, fwp_read_fn fn)
{
    start_read(c, fn);
    store_purge(c->srv->d.store, p, on_read, c);
}

json_t *fwp_json_arg(fwp_conn_t *c, const fwp_cmd_t *cmd, const char *what)
{
    json_error_t e;
    json_t *v = jsonb_loadb(cmd->args, cmd->args_len, JSON_REJECT_DUPLICATES, JSONB_INPUT_DEPTH,
                            &e);
    if (!v)
        fwp_send_err(c, "%s %s: malformed JSON at column %d: %s", cmd->name, what, e.column,
                     e.text);
    return v;
}

/* ---- commands ---- */

/* Which roles may send a verb (docs/faktory.md): producers push, workers
 * fetch and report, readers ask INFO, admins do everything. */
static bool allowed(config_role_t role, fwp_verb_t v)
{
    if (role == ROLE_ADMIN)
        return true;
    switch (v) {
    case FWP_PUSH: case FWP_PUSHB: return role == ROLE_PRODUCER;
    case FWP_FETCH: case FWP_ACK: case FWP_FAIL: case FWP_BEAT: return role == ROLE_WORKER;
    case FWP_FLUSH: case FWP_MUTATE: case FWP_QUEUE: return false;
    default: return true;
    }
}

_Static_assert(FWP_UNKNOWN == METRICS_FWP_NVERBS - 1, "verbs and their metric labels agree");

static const char *verb_name(fwp_verb_t v)
{
    static const char *const names[] = { METRICS_FWP_VERBS };
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "other";
}

/* JOBQ_RATE_LIMIT and the keys' own rates, as for HTTP and in the same
 * buckets: a key's name, or the client's address for everyone else. */
static bool over_rate(fwp_conn_t *c)
{
    const config_t *cfg = c->srv->d.cfg;
    double rate = cfg->rate_limit, burst = cfg->rate_burst;
    for (int i = 0; c->key[0] && i < cfg->nkeys; i++)
        if (strcmp(cfg->keys[i].name, c->key) == 0) {
            rate = cfg->keys[i].rate >= 0 ? cfg->keys[i].rate : rate;
            burst = cfg->keys[i].burst >= 0 ? cfg->keys[i].burst : burst;
        }
    if (rate <= 0)
        return false;
    const char *who = c->key[0] ? c->key : c->slot.addr;
    ratelimit_verdict_t v;
    ratelimit_take(c->srv->d.ratelimit, who, rate, burst, clock_now_ms(), &v);
    if (v.ok)
        return false;
    metrics_rejected(c->srv->d.metrics, "rate_limited");
    fwp_send_err(c, "rate limited: client %s is over its limit of %g commands per second "
                 "(burst %g); retry after %lld ms", who, rate, v.depth, (long long)v.wait_ms);
    return true;
}

static void dispatch(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    c->srv->commands++;
    c->verb = verb_name(cmd->verb);
    metrics_fwp_command(c->srv->d.metrics, c->verb);
    if (c->phase == FWP_GREETING) {
        if (cmd->verb == FWP_HELLO)
            fwp_hello(c, cmd);
        else if (cmd->verb == FWP_END)
            fwp_close_after_reply(c);
        else {
            fwp_send_err(c, "HELLO first: the handshake is not finished");
            fwp_close_after_reply(c);
        }
        return;
    }
    if (!allowed(c->role, cmd->verb)) {
        fwp_send_err(c, "forbidden: %s (role %s) may not send %s", c->principal,
                     config_role_name(c->role), cmd->name);
        return;
    }
    if (cmd->verb != FWP_END && over_rate(c))
        return;
    switch (cmd->verb) {
    case FWP_HELLO: fwp_send_err(c, "HELLO was already said"); break;
    case FWP_PUSH: fwp_push(c, cmd, false); break;
    case FWP_PUSHB: fwp_push(c, cmd, true); break;
    case FWP_FETCH: fwp_fetch(c, cmd); break;
    case FWP_ACK: fwp_ack(c, cmd); break;
    case FWP_FAIL: fwp_fail(c, cmd); break;
    case FWP_BEAT: fwp_beat(c, cmd); break;
    case FWP_INFO: fwp_info(c); break;
    case FWP_FLUSH: fwp_flush(c); break;
    case FWP_MUTATE: fwp_mutate(c, cmd); break;
    case FWP_QUEUE: fwp_queue(c, cmd); break;
    case FWP_END: fwp_close_after_reply(c); break;
    case FWP_BATCH: case FWP_TRACK:
        fwp_send_err(c, "%s is not supported by jobq (Faktory Enterprise feature)", cmd->name);
        break;
    default: fwp_send_err(c, "unknown command %s", cmd->name); break;
    }
}

/* One line, if a whole one is there: runs it and returns true. */
static bool one_line(fwp_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in), limit = max_line(c);
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
    if (eol.pos < 0 || (size_t)eol.pos > limit + 1) {
        if (eol.pos >= 0 || have > limit + 1) {
            fwp_send_err(c, "line too long: at most %zu bytes (JOBQ_MAX_BODY_BYTES)", limit);
            fwp_close_after_reply(c);
        } else if (have && !c->read_deadline) {
            c->read_deadline = clock_mono_ns() + c->srv->d.cfg->body_timeout_ms * 1000000LL;
        }
        return false;
    }
    c->read_deadline = 0;
    size_t n = (size_t)eol.pos;
    char *line = (char *)evbuffer_pullup(in, (ev_ssize_t)n + 1);
    size_t len = n && line[n - 1] == '\r' ? n - 1 : n;
    fwp_cmd_t cmd;
    fwp_parse(line, len, &cmd);
    dispatch(c, &cmd); /* copies what it keeps */
    if (c->bev)
        evbuffer_drain(in, n + 1);
    return true;
}

static bool backed_up(fwp_conn_t *c) { return pending_out(c) > FWP_OUTPUT_MAX; }

static void process(fwp_conn_t *c)
{
    if (c->processing)
        return;
    c->processing = true;
    while (c->bev && !c->busy && c->phase != FWP_CLOSING && !backed_up(c) && one_line(c))
        ;
    c->processing = false;
}

/* What the loop does for a connection that needs attention. */
static void step(fwp_conn_t *c)
{
    c->stepping = true;
    flush_out(c);
    if (!c->broken && c->phase != FWP_CLOSING) {
        process(c); /* new lines, or room again for replies */
        flush_out(c);
    }
    c->stepping = false;
    bool drained = pending_out(c) == 0;
    if (drained)
        c->write_deadline = 0;
    if (!c->broken && c->phase == FWP_CLOSING && drained) /* the reply is out: no reset after it */
        net_linger_closing(c->srv->linger, (int)bufferevent_getfd(c->bev));
    if (c->broken || (c->phase == FWP_CLOSING && drained))
        fwp_close(c);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fwp_server_t *s = arg;
    list_node_t now; /* this round's; what they queue waits for the next */
    list_init(&now);
    while (!list_empty(&s->resume)) {
        list_node_t *n = list_first(&s->resume);
        list_remove(n);
        list_push_back(&now, n);
    }
    while (!list_empty(&now)) {
        fwp_conn_t *c = LIST_ENTRY(list_first(&now), fwp_conn_t, resume_link);
        list_remove(&c->resume_link);
        step(c);
    }
}

static void on_readable(struct bufferevent *bev, void *arg)
{
    (void)bev;
    resume_later(arg);
}

static void on_writable(struct bufferevent *bev, void *arg)
{
    (void)bev;
    resume_later(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    fwp_conn_t *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        c->broken = true;
        resume_later(c);
    }
}

/* ---- accepting ---- */

static struct bufferevent *new_bev(fwp_server_t *s, evutil_socket_t fd)
{
    /* No BEV_OPT_DEFER_CALLBACKS: a deferred callback holds a reference that
     * only a later loop iteration releases, so connections closed when the
     * loop is over would never be freed. Callbacks only schedule on_resume. */
    int opts = BEV_OPT_CLOSE_ON_FREE;
    if (!s->tls)
        return bufferevent_socket_new(s->base, fd, opts);
    SSL *ssl = SSL_new(s->tls);
    if (!ssl)
        return NULL;
    struct bufferevent *b =
        bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
    if (!b)
        SSL_free(ssl);
    return b;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)salen;
    fwp_server_t *s = arg;
    fwp_conn_t *c = calloc(1, sizeof *c);
    if (!c || admit_enter(s->d.admit, sa, &c->slot) == ADMIT_REFUSE) {
        free(c); /* far past the limits: no word, no memory */
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    sbuf_init(&c->reply, 64);
    sbuf_init(&c->out, 256);
    list_init(&c->link);
    list_init(&c->resume_link);
    list_init(&c->info_link);
    list_push_back(&s->conns, &c->link);
    if (!(c->bev = new_bev(s, fd))) {
        evutil_closesocket(fd);
        list_remove(&c->link);
        admit_leave(s->d.admit, &c->slot);
        free_conn(c);
        return;
    }
    bufferevent_setcb(c->bev, on_readable, on_writable, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, max_line(c) + 2);
    bufferevent_setwatermark(c->bev, EV_WRITE, FWP_OUTPUT_MAX / 2, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (c->slot.verdict == ADMIT_OVER) {
        fwp_send_err(c, "too many connections (JOBQ_MAX_CONNECTIONS)");
        fwp_close_after_reply(c);
        return;
    }
    c->handshake_deadline = clock_mono_ns() + FWP_HANDSHAKE_MS * 1000000LL;
    fwp_greet(c);
}

/* ---- deadlines and reaping ---- */

static bool overdue(const fwp_conn_t *c, int64_t now)
{
    return (c->handshake_deadline && now > c->handshake_deadline) ||
           (c->read_deadline && now > c->read_deadline && !c->busy) ||
           (c->write_deadline && now > c->write_deadline);
}

/* A worker process silent for FWP_BEAT_REAP_MS is gone: its connections
 * are closed, so its leases run out as any other. */
static bool reaped(const fwp_conn_t *c, int64_t now_ms)
{
    if (!c->wid || c->phase != FWP_READY)
        return false;
    int64_t last = workers_last_beat(c->srv->d.workers, c->wid);
    return now_ms - last > FWP_BEAT_REAP_MS;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fwp_server_t *s = arg;
    int64_t now = clock_mono_ns(), now_ms = clock_now_ms();
    list_node_t *n = s->conns.next;
    while (n != &s->conns) {
        fwp_conn_t *c = LIST_ENTRY(n, fwp_conn_t, link);
        n = n->next;
        if (overdue(c, now)) {
            admit_timed_out(s->d.admit);
            fwp_close(c);
        } else if (reaped(c, now_ms)) {
            log_info("faktory worker reaped: no heartbeat", LOG_S("wid", c->wid),
                     LOG_I("silent_ms", FWP_BEAT_REAP_MS));
            fwp_close(c);
        }
    }
}

/* ---- the server ---- */

static int tls_setup(fwp_server_t *s, const config_t *cfg, char *err, size_t len)
{
    if (!cfg->faktory_tls_cert[0] && !cfg->faktory_tls_key[0])
        return 0;
    if (!cfg->faktory_tls_cert[0] || !cfg->faktory_tls_key[0])
        return snprintf(err, len, "JOBQ_FAKTORY_TLS_CERT and JOBQ_FAKTORY_TLS_KEY go together"),
               -1;
    s->tls = SSL_CTX_new(TLS_server_method());
    if (!s->tls || SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION) != 1)
        return snprintf(err, len, "cannot set up TLS"), -1;
    if (SSL_CTX_use_certificate_chain_file(s->tls, cfg->faktory_tls_cert) != 1)
        return snprintf(err, len, "JOBQ_FAKTORY_TLS_CERT=%s: cannot read a PEM certificate",
                        cfg->faktory_tls_cert), -1;
    if (SSL_CTX_use_PrivateKey_file(s->tls, cfg->faktory_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->tls) != 1)
        return snprintf(err, len, "JOBQ_FAKTORY_TLS_KEY=%s: cannot read the certificate's "
                        "private key", cfg->faktory_tls_key), -1;
    return 0;
}

fwp_server_t *fwp_server_start(struct event_base *base, const fwp_deps_t *d, char *err,
                               size_t len)
{
    fwp_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, len, "out of memory"), NULL;
    s->d = *d;
    s->base = base;
    s->started_ms = clock_now_ms();
    list_init(&s->conns);
    list_init(&s->resume);
    list_init(&s->info_waiters);
    struct timeval tv = { 0, SWEEP_MS * 1000 };
    if (tls_setup(s, d->cfg, err, len) != 0 ||
        !(s->auth = offload_new(base, FWP_AUTH_PENDING_MAX)) ||
        !(s->sweep = event_new(base, -1, EV_PERSIST, on_sweep, s)) ||
        !(s->resume_ev = event_new(base, -1, 0, on_resume, s)) ||
        !(s->linger = net_linger_new(base)) ||
        event_add(s->sweep, &tv) != 0 ||
        net_listen(&s->listener, base, d->cfg->faktory_listen, "JOBQ_FAKTORY_LISTEN", on_accept,
                   s, err, len) != 0) {
        fwp_server_stop(s);
        return NULL;
    }
    return s;
}

unsigned fwp_server_port(const fwp_server_t *s) { return s->listener.port; }
unsigned fwp_server_busy(const fwp_server_t *s) { return s->busy; }
void fwp_server_drain(fwp_server_t *s) { s->draining = true; }

void fwp_server_stop(fwp_server_t *s)
{
    if (!s)
        return;
    net_listen_free(&s->listener);
    while (!list_empty(&s->conns))
        fwp_close(LIST_ENTRY(list_first(&s->conns), fwp_conn_t, link));
    offload_free(s->auth); /* checks in flight end cancelled, freeing their connections */
    net_linger_free(s->linger);
    if (s->sweep)
        event_free(s->sweep);
    if (s->resume_ev)
        event_free(s->resume_ev);
    json_decref(s->stats);
    if (s->tls)
        SSL_CTX_free(s->tls);
    free(s);
}
