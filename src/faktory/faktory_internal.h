/*
 * faktory_internal: what the front end's files share: the server, one
 * connection's state, and the command handlers. Nothing outside
 * src/faktory/ includes this file.
 *
 * A connection's life: accepted and counted (admit), greeted with +HI,
 * HELLO within FWP_HANDSHAKE_MS, then commands one at a time. A command
 * that waits (durability, a lease, a store read) leaves `busy` set and
 * finishes through fwp_finish(), which resumes reading from a loop event of
 * the server's own (never from inside the engine's or the store's
 * callback). The bufferevent callbacks only schedule that event too.
 *
 * Lifetime: fwp_close() cancels a lease wait and a durability wait at once
 * and frees the connection, unless a store read is in flight (reads cannot
 * be cancelled): then the connection is only marked dead, and the read's
 * callback frees it without running the command's continuation.
 */
#ifndef JOBQ_FAKTORY_INTERNAL_H
#define JOBQ_FAKTORY_INTERNAL_H

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "faktory/faktory.h"
#include "faktory/proto.h"
#include "net/linger.h"
#include "net/listen.h"
#include "net/offload.h"
#include "util/list.h"

#define FWP_HANDSHAKE_MS 2000
#define FWP_FETCH_WAIT_MS 2000
#define FWP_BEAT_REAP_MS 60000
#define FWP_OUTPUT_MAX (4u << 20) /* replies not yet read; past it, commands wait */
#define FWP_BATCH_MAX 1000
#define FWP_INFO_FRESH_MS 1000
#define FWP_AUTH_PENDING_MAX 64 /* password checks queued; past it HELLO gets -ERR busy */

typedef enum { FWP_GREETING, FWP_READY, FWP_CLOSING } fwp_phase_t;

typedef struct fwp_conn fwp_conn_t;
typedef void (*fwp_read_fn)(fwp_conn_t *c, json_t *result, const char *error);

struct fwp_conn {
    list_node_t link; /* fwp_server.conns */
    list_node_t resume_link; /* fwp_server.resume while it needs the loop */
    list_node_t info_link;   /* fwp_server.info_waiters while its INFO waits */
    /* What answers once the store's statistics are in (INFO, and QUEUE
     * LATENCY in cluster mode), and what it needs (owned). */
    void (*stats_cont)(struct fwp_conn *c, json_t *stats);
    json_t *stats_arg;
    bool broken;        /* the peer closed, or the socket failed: close at the next step */
    fwp_server_t *srv;
    struct bufferevent *bev;
    admit_slot_t slot;
    fwp_phase_t phase;
    const char *verb;   /* the command being answered, for metrics (static text) */
    int64_t handshake_deadline, read_deadline, write_deadline; /* mono ns; 0: none */
    char salt[17];
    int iterations;
    config_role_t role;
    char principal[72]; /* "key NAME", "password", or "" without passwords */
    char key[64];       /* the API key's name when it authenticated with one */
    char *wid;          /* owned; NULL if HELLO named none */
    char worker[JOB_NAME_MAX + 1]; /* who holds its leases: the wid, else host-pid */
    bool processing;    /* inside fwp_process(): no re-entry */
    bool busy;          /* a command is waiting */
    bool reading;       /* a store read is in flight */
    bool authing;       /* a password check is on the offload thread */
    bool dead;          /* closed while reading or authing: the callback frees it */
    json_t *hello;      /* the HELLO being checked, owned */
    fwp_read_fn read_fn;
    uint64_t deletes_seen;
    store_waiter_t durable;
    sbuf_t reply;       /* held back until durable */
    sbuf_t out;         /* replies of this round, not yet handed to the socket (conn.c) */
    bool stepping;      /* inside step(), which flushes out as it ends */
    engine_waiter_t lease;
    bool counted_waiter;
    char *fetch_buf;    /* owned: the FETCH's queue names */
    const char *queues[ENGINE_LEASE_MAX];
    job_t **batch;      /* PUSH / PUSHB: parsed, owned until enqueued */
    size_t nbatch;
    size_t nread;       /* PUSH / PUSHB: stored jobs asked of the store */
    json_t *rejected;   /* PUSHB: jid -> reason */
    struct fwp_admin *admin; /* FLUSH / MUTATE across store pages, owned */
};

struct fwp_server {
    fwp_deps_t d;
    struct event_base *base;
    net_listener_t listener;
    SSL_CTX *tls; /* NULL: plain TCP */
    offload_t *auth; /* password checks, off the loop thread */
    struct event *sweep;
    struct event *resume_ev; /* runs the connections in resume */
    net_linger_t *linger;    /* closed sockets still draining the client's bytes */
    list_node_t conns;
    list_node_t resume;
    /* INFO's store figures: one read serves every INFO that waits for it,
     * and its answer serves the next ones for FWP_INFO_FRESH_MS. */
    json_t *stats;
    int64_t stats_at; /* mono ms */
    bool stats_reading;
    list_node_t info_waiters;
    unsigned busy;
    unsigned waiters;
    bool draining;
    int64_t started_ms;
    uint64_t commands;
};

/* conn.c */
void fwp_send(fwp_conn_t *c, sbuf_t *out);          /* writes and empties out */
void fwp_send_err(fwp_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fwp_send_text(fwp_conn_t *c, const char *text); /* a whole reply: "+OK\r\n" */
void fwp_send_bulk(fwp_conn_t *c, const char *data, size_t len);
void fwp_send_json(fwp_conn_t *c, json_t *v); /* a bulk reply of v, which it steals */
void fwp_close_after_reply(fwp_conn_t *c);
/* A waiting command is over (its reply is written): read on. */
void fwp_finish(fwp_conn_t *c);
/* Marks c busy and sends c->reply once every write so far is durable. */
void fwp_reply_durable(fwp_conn_t *c);
/* A store read for c (see the lifetime rule above). fwp_read_jobs' docs
 * may be shorter than n: the read stops at fwp_read_budget(c) bytes of
 * stored jobs (store_get_jobs). */
void fwp_read_jobs(fwp_conn_t *c, const char *const *ids, size_t n, fwp_read_fn fn);
size_t fwp_read_budget(const fwp_conn_t *c);
void fwp_read_list(fwp_conn_t *c, const store_query_t *q, fwp_read_fn fn);
void fwp_purge(fwp_conn_t *c, const store_purge_t *p, fwp_read_fn fn);

/* conn.c: frees a connection closed while a callback was due, once none is. */
void fwp_release(fwp_conn_t *c);

/* hello.c */
void fwp_greet(fwp_conn_t *c);
void fwp_hello(fwp_conn_t *c, const fwp_cmd_t *cmd);

/* push.c */
void fwp_push(fwp_conn_t *c, const fwp_cmd_t *cmd, bool bulk);

/* work.c */
void fwp_fetch(fwp_conn_t *c, const fwp_cmd_t *cmd);
void fwp_ack(fwp_conn_t *c, const fwp_cmd_t *cmd);
void fwp_fail(fwp_conn_t *c, const fwp_cmd_t *cmd);
void fwp_beat(fwp_conn_t *c, const fwp_cmd_t *cmd);
void fwp_cancel_fetch(fwp_conn_t *c);

/* info.c */
void fwp_info(fwp_conn_t *c);
void fwp_info_forget(fwp_conn_t *c); /* c closes while its INFO waits */
/* cont(c, stats) with the store's statistics (fresh ones kept a moment,
 * else read); arg (owned) is c->stats_arg meanwhile. An error is answered
 * here. */
void fwp_with_stats(fwp_conn_t *c, void (*cont)(fwp_conn_t *c, json_t *stats), json_t *arg);

/* admin.c */
void fwp_flush(fwp_conn_t *c);
void fwp_mutate(fwp_conn_t *c, const fwp_cmd_t *cmd);
void fwp_queue(fwp_conn_t *c, const fwp_cmd_t *cmd);
void fwp_admin_free(struct fwp_admin *a);

/* Parses a command's JSON argument (bounded); on error replies -ERR naming
 * what, and returns NULL. */
json_t *fwp_json_arg(fwp_conn_t *c, const fwp_cmd_t *cmd, const char *what);

#endif
