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

/* Dashboard sessions (session.h). A request may present a session cookie
 * instead of a key; a change made so must also carry X-Jobq-Csrf, else
 * 403. Who a request is: its key's name (NULL without one) and role (admin
 * when no keys are configured), whether keys are configured, and when its
 * session ends (0: none). False if keys are configured and it presents
 * none that is valid. */
typedef struct guard_identity {
    const char *name; /* borrowed from the guard until its next reload */
    config_role_t role;
    bool keys;
    int64_t expires_ms;
} guard_identity_t;
bool guard_identify(guard_t *g, const http_req_t *r, int64_t now_ms, guard_identity_t *who);
/* Checks secret and opens a session for its key: GUARD_OK with the token;
 * otherwise r has been answered (401, or 429: sign-in attempts from one
 * address are limited to GUARD_SIGN_IN_RATE a second). */
#define GUARD_SIGN_IN_RATE 1.0
#define GUARD_SIGN_IN_BURST 10.0
guard_verdict_t guard_sign_in(guard_t *g, http_req_t *r, const char *secret, int64_t now_ms,
                              char token[65], guard_identity_t *who);
/* Ends the session r's cookie names, if any. */
void guard_sign_out(guard_t *g, const http_req_t *r);

#endif
