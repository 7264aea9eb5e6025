/* API keys, roles and per-client rate limits; see guard.h. */
#include "api/guard.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



typedef struct gkey {
    char name[64];
    config_role_t role;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    double rate, burst;
} gkey_t;

struct guard {
    gkey_t keys[CONFIG_MAX_KEYS];
    int nkeys;
    double rate, burst;
    ratelimit_t *rl; /* borrowed: shared with the other front ends */
};

void guard_reload(guard_t *g, const config_t *cfg)
{
    g->nkeys = cfg->nkeys;
    for (int i = 0; i < cfg->nkeys; i++) {
        const config_key_t *k = &cfg->keys[i];
        gkey_t *d = &g->keys[i];
        snprintf(d->name, sizeof d->name, "%s", k->name);
        d->role = k->role;
        d->rate = k->rate >= 0 ? k->rate : cfg->rate_limit;
        d->burst = k->burst >= 0 ? k->burst : cfg->rate_burst;
        SHA256((const unsigned char *)k->secret, strlen(k->secret), d->digest);
    }
    g->rate = cfg->rate_limit;
    g->burst = cfg->rate_burst;
}

guard_t *guard_new(const config_t *cfg, ratelimit_t *rl)
{
    guard_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->rl = rl;
    guard_reload(g, cfg);
    return g;
}

void guard_free(guard_t *g)
{
    if (!g)
        return;
    OPENSSL_cleanse(g->keys, sizeof g->keys);
    free(g);
}

bool guard_keys_enabled(const guard_t *g) { return g->nkeys > 0; }

/* The presented secret: "Authorization: Bearer S" or "X-API-Key: S". */
static const char *presented(const http_req_t *r)
{
    const char *auth = http_header(r, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    return http_header(r, "X-API-Key");
}

/* Compares against every key without stopping early: the time taken says
 * nothing about which key, or how much of one, matched. */
static const gkey_t *find_key(const guard_t *g, const char *secret)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, strlen(secret), d);
    const gkey_t *found = NULL;
    for (int i = 0; i < g->nkeys; i++)
        if (CRYPTO_memcmp(d, g->keys[i].digest, sizeof d) == 0)
            found = &g->keys[i];
    return found;
}

static bool role_allows(config_role_t role, guard_access_t need)
{
    switch (need) {
    case ACCESS_PUBLIC:
    case ACCESS_READ: return true;
    case ACCESS_WORK: return role == ROLE_WORKER || role == ROLE_ADMIN;
    case ACCESS_PRODUCE: return role == ROLE_PRODUCER || role == ROLE_ADMIN;
    case ACCESS_ADMIN: return role == ROLE_ADMIN;
    }
    return false;
}

static const char *const access_names[] = { "public", "read", "work", "produce", "admin" };

static void add_num_header(http_req_t *r, const char *name, double v)
{
    char text[32];
    snprintf(text, sizeof text, "%.0f", v);
    http_add_header(r, name, text);
}

static guard_verdict_t limit(guard_t *g, http_req_t *r, const char *id, double rate,
                             double burst, int64_t now)
{
    if (rate <= 0)
        return GUARD_OK;
    ratelimit_verdict_t v;
    ratelimit_take(g->rl, id, rate, burst, now, &v);
    add_num_header(r, "RateLimit-Limit", v.depth);
    add_num_header(r, "RateLimit-Remaining", v.remaining);
    add_num_header(r, "RateLimit-Reset", v.reset_s > 0 ? ceil(v.reset_s) : 0);
    if (v.ok)
        return GUARD_OK;
    double wait = (double)v.wait_ms;
    add_num_header(r, "Retry-After", wait / 1000.0 + 0.999);
    problem_t p;
    problem_set(&p, ERR_RATE_LIMITED, "", "client %s is over its limit of %g requests per "
                "second (burst %g); retry after %.0f ms", id, rate, v.depth, wait);
    http_reply_problem(r, &p);
    return GUARD_RATE_LIMITED;
}

guard_verdict_t guard_admit(guard_t *g, http_req_t *r, guard_access_t need, int64_t now)
{
    if (need == ACCESS_PUBLIC)
        return GUARD_OK;
    if (g->nkeys == 0) {
        if (g->rate <= 0)
            return GUARD_OK; /* the common case: no keys, no limit, no work */
        char addr[64];
        http_client(r, addr, sizeof addr);
        return limit(g, r, addr, g->rate, g->burst, now);
    }
    const char *secret = presented(r);
    const gkey_t *k = secret ? find_key(g, secret) : NULL;
    problem_t p;
    if (!k) {
        problem_set(&p, ERR_UNAUTHORIZED, "Authorization", secret
                    ? "the API key is not valid" : "an API key is required: send "
                    "\"Authorization: Bearer <key>\" or \"X-API-Key: <key>\"");
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"jobq\"");
        http_reply_problem(r, &p);
        return GUARD_UNAUTHORIZED;
    }
    http_set_principal(r, k->name);
    if (!role_allows(k->role, need)) {
        problem_set(&p, ERR_UNAUTHORIZED, "Authorization", "key %s has role %s, which may not "
                    "do this (needs %s access)", k->name, config_role_name(k->role),
                    access_names[need]);
        p.status = 403;
        http_reply_problem(r, &p);
        return GUARD_FORBIDDEN;
    }
    return limit(g, r, k->name, k->rate, k->burst, now);
}
