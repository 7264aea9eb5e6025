/*
 * faktory: the Faktory Work Protocol (FWP v2) front end, so that Faktory's
 * worker libraries (Ruby, Go, Node, Python, ...) use jobq unchanged.
 *
 * One more listener in the loop (bufferevents, optionally TLS through
 * OpenSSL), calling the same engine API as the HTTP handlers: a PUSH is
 * answered once durable, a FETCH is a long-poll lease, ACK and FAIL settle
 * the lease, BEAT keeps a worker process registered (metrics/workers.h).
 * Connections count against the same admission limits as HTTP (admit_t).
 * Commands of one connection run one at a time, in order; pipelined lines
 * wait in the input buffer, which is bounded.
 *
 * Threads: the loop thread only. Ownership: the server borrows every
 * dependency (they outlive it) and owns its connections; the
 * configuration is read through its pointer, so a reload (SIGHUP) applies
 * to passwords and limits at the next use.
 */
#ifndef JOBQ_FAKTORY_H
#define JOBQ_FAKTORY_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "metrics/workers.h"
#include "net/admit.h"
#include "net/ratelimit.h"
#include "store/store.h"

typedef struct fwp_server fwp_server_t;

typedef struct fwp_deps {
    engine_t *engine;
    store_t *store;
    const config_t *cfg;
    workers_t *workers;
    admit_t *admit;
    metrics_t *metrics;
    ratelimit_t *ratelimit; /* shared with HTTP: a key has one budget */
} fwp_deps_t;

/* Listens on cfg->faktory_listen (with TLS if cfg names a certificate). */
fwp_server_t *fwp_server_start(struct event_base *base, const fwp_deps_t *deps, char *err,
                               size_t len);
unsigned fwp_server_port(const fwp_server_t *s);
/* Commands waiting for durability or a store read (the drain waits for them). */
unsigned fwp_server_busy(const fwp_server_t *s);
/* Shutting down: PUSH is refused and FETCH answers $-1 at once; ACK, FAIL
 * and BEAT go on, so that running jobs can still be reported. */
void fwp_server_drain(fwp_server_t *s);
void fwp_server_stop(fwp_server_t *s); /* closes every connection */

#endif
