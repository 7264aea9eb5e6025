/*
 * guard: who may call what, and how often.
 *
 * API keys (JOBQ_API_KEYS) are kept as SHA-256 digests and checked in
 * constant time against every configured key, so neither timing nor logs
 * reveal them. Each key has a role; each route needs an access level.
 * Every client (its key's name, or its address without keys) has a token
 * bucket; a request over it gets 429 with Retry-After, and every limited
 * response carries RateLimit-Limit/-Remaining/-Reset.
 *
 * Threads: the loop thread only. Ownership: the guard copies what it needs
 * from the config; guard_reload() swaps keys and rates but keeps buckets.
 */
#ifndef JOBQ_GUARD_H
#define JOBQ_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "http/request.h"
#include "net/ratelimit.h"

typedef enum {
    ACCESS_PUBLIC,  /* health probes: no key, no rate limit */
    ACCESS_READ,    /* any role */
    ACCESS_WORK,    /* worker, admin */
    ACCESS_PRODUCE, /* producer, admin */
    ACCESS_ADMIN,
} guard_access_t;

typedef enum { GUARD_OK, GUARD_UNAUTHORIZED, GUARD_FORBIDDEN, GUARD_RATE_LIMITED } guard_verdict_t;

typedef struct guard guard_t;

/* rl: the per-client buckets, shared with every front end (borrowed). */
guard_t *guard_new(const config_t *cfg, ratelimit_t *rl);
void guard_free(guard_t *g);
void guard_reload(guard_t *g, const config_t *cfg);
bool guard_keys_enabled(const guard_t *g);

/* Decides whether r may go on. On refusal the request has been answered
 * (401, 403 or 429 problem+json). Sets the request's principal. */
guard_verdict_t guard_admit(guard_t *g, http_req_t *r, guard_access_t need, int64_t now_ms);

#endif
