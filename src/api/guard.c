/* API keys, roles and per-client rate limits; see guard.h. */
#include "api/guard.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/session.h"

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
    sessions_t *sessions;
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
    if (!(g->sessions = sessions_new())) {
        free(g);
        return NULL;
    }
    guard_reload(g, cfg);
    return g;
}

void guard_free(guard_t *g)
{
    if (!g)
        return;
    OPENSSL_cleanse(g->keys, sizeof g->keys);
    sessions_free(g->sessions);
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

static const gkey_t *key_named(const guard_t *g, const char *name)
{
    for (int i = 0; name && i < g->nkeys; i++)
        if (strcmp(g->keys[i].name, name) == 0)
            return &g->keys[i];
    return NULL;
}

/* The session token in the Cookie header, into out; NULL if none. */
static const char *cookie_token(const http_req_t *r, char out[SESSION_TOKEN_LEN + 1])
{
    const char *c = http_header(r, "Cookie");
    const size_t n = sizeof SESSION_COOKIE - 1;
    while (c && *c) {
        c += strspn(c, " \t;");
        if (strncmp(c, SESSION_COOKIE "=", n + 1) == 0) {
            c += n + 1;
            size_t len = strcspn(c, "; \t");
            if (len != SESSION_TOKEN_LEN)
                return NULL;
            memcpy(out, c, len);
            out[len] = '\0';
            return out;
        }
        c += strcspn(c, ";");
    }
    return NULL;
}

static bool safe_method(const http_req_t *r)
{
    const char *m = http_method(r);
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

/* The key a session cookie stands for, or NULL. */
static const gkey_t *session_key(const guard_t *g, const http_req_t *r, int64_t now)
{
    char token[SESSION_TOKEN_LEN + 1];
    const char *t = cookie_token(r, token);
    return t ? key_named(g, sessions_find(g->sessions, t, now)) : NULL;
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
    const gkey_t *k = secret ? find_key(g, secret) : session_key(g, r, now);
    problem_t p;
    /* A cookie rides along on any request the browser makes to us, so a
     * change made with one must also carry a header no cross-site form or
     * simple request can set (SameSite=Strict already keeps other sites'
     * requests from carrying the cookie; this holds without it too). */
    if (k && !secret && !safe_method(r) && !http_header(r, "X-Jobq-Csrf")) {
        problem_set(&p, ERR_UNAUTHORIZED, "X-Jobq-Csrf", "a change made with a session "
                    "cookie must carry the header X-Jobq-Csrf: 1");
        p.status = 403;
        http_reply_problem(r, &p);
        return GUARD_FORBIDDEN;
    }
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

static void identity_of(const guard_t *g, const gkey_t *k, guard_identity_t *who)
{
    /* No keys: everyone may do everything (loopback by default). */
    *who = (guard_identity_t){ .keys = g->nkeys > 0,
                               .role = g->nkeys > 0 ? ROLE_READER : ROLE_ADMIN };
    if (k) {
        who->name = k->name;
        who->role = k->role;
    }
}

bool guard_identify(guard_t *g, const http_req_t *r, int64_t now, guard_identity_t *who)
{
    identity_of(g, NULL, who);
    if (g->nkeys == 0)
        return true;
    const char *secret = presented(r);
    char token[SESSION_TOKEN_LEN + 1];
    const char *t = secret ? NULL : cookie_token(r, token);
    const gkey_t *k = secret ? find_key(g, secret)
                      : t    ? key_named(g, sessions_find(g->sessions, t, now))
                             : NULL;
    identity_of(g, k, who);
    if (k && t)
        who->expires_ms = sessions_expiry(g->sessions, t, now);
    return k != NULL;
}

guard_verdict_t guard_sign_in(guard_t *g, http_req_t *r, const char *secret, int64_t now,
                              char token[SESSION_TOKEN_LEN + 1], guard_identity_t *who)
{
    char addr[64], id[80];
    http_client(r, addr, sizeof addr);
    snprintf(id, sizeof id, "sign-in:%s", addr);
    /* Guessing keys costs a second a try from any one address. */
    guard_verdict_t v = limit(g, r, id, GUARD_SIGN_IN_RATE, GUARD_SIGN_IN_BURST, now);
    if (v != GUARD_OK)
        return v;
    const gkey_t *k = find_key(g, secret);
    if (!k) {
        problem_t p;
        problem_set(&p, ERR_UNAUTHORIZED, "key", "the API key is not valid");
        http_reply_problem(r, &p);
        return GUARD_UNAUTHORIZED;
    }
    if (sessions_open(g->sessions, k->name, now, token) != 0) {
        problem_t p;
        problem_set(&p, ERR_UNAVAILABLE, "", "no randomness for a session token; retry");
        http_reply_problem(r, &p);
        return GUARD_UNAUTHORIZED;
    }
    identity_of(g, k, who);
    who->expires_ms = now + SESSION_TTL_MS;
    http_set_principal(r, k->name);
    return GUARD_OK;
}

void guard_sign_out(guard_t *g, const http_req_t *r)
{
    char token[SESSION_TOKEN_LEN + 1];
    const char *t = cookie_token(r, token);
    if (t)
        sessions_close(g->sessions, t);
}
