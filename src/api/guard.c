/* API keys, roles and per-client rate limits; see guard.h. */
#include "api/guard.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/token_bucket.h"

#define MAX_CLIENTS 65536 /* buckets kept; beyond, idle ones are dropped */

typedef struct gkey {
    char name[64];
    config_role_t role;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    double rate, burst;
} gkey_t;

typedef struct client {
    char *id; /* owned; the hmap key */
    token_bucket_t bucket;
} client_t;

struct guard {
    gkey_t keys[CONFIG_MAX_KEYS];
    int nkeys;
    double rate, burst;
    hmap_t clients;
    client_t overflow; /* shared by new clients while the map is full */
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

guard_t *guard_new(const config_t *cfg)
{
    guard_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    hmap_init(&g->clients);
    g->overflow.id = "(overflow)";
    guard_reload(g, cfg);
    return g;
}

void guard_free(guard_t *g)
{
    if (!g)
        return;
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&g->clients, &i, &k, &v);) {
        free(((client_t *)v)->id);
        free(v);
    }
    hmap_free(&g->clients);
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

/* Drops buckets that have refilled completely: they are as good as new. */
static void prune(guard_t *g, int64_t now)
{
    size_t n = hmap_len(&g->clients), m = 0;
    client_t **idle = calloc(n, sizeof *idle);
    if (!idle)
        return;
    const char *k;
    void *v;
    double depth = tb_default_depth(g->rate, g->burst);
    for (size_t i = 0; hmap_next(&g->clients, &i, &k, &v);) {
        client_t *c = v;
        tb_ready(&c->bucket, g->rate, depth, now);
        if (c->bucket.tokens >= depth)
            idle[m++] = c;
    }
    for (size_t i = 0; i < m; i++) {
        hmap_del(&g->clients, idle[i]->id);
        free(idle[i]->id);
        free(idle[i]);
    }
    free(idle);
}

static client_t *client(guard_t *g, const char *id, double depth, int64_t now)
{
    client_t *c = hmap_get(&g->clients, id);
    if (c)
        return c;
    if (hmap_len(&g->clients) >= MAX_CLIENTS)
        prune(g, now);
    if (hmap_len(&g->clients) >= MAX_CLIENTS)
        return &g->overflow;
    c = calloc(1, sizeof *c);
    if (!c || !(c->id = strdup(id)) || hmap_put(&g->clients, c->id, c) != 0) {
        if (c)
            free(c->id);
        free(c);
        return &g->overflow;
    }
    tb_init(&c->bucket, depth, now);
    return c;
}

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
    double depth = tb_default_depth(rate, burst);
    client_t *c = client(g, id, depth, now);
    bool ok = tb_take(&c->bucket, rate, depth, now);
    /* Seconds until the bucket is full again, and until one more token. */
    double reset = (depth - c->bucket.tokens) / rate, wait = (double)tb_wait_ms(&c->bucket, rate);
    add_num_header(r, "RateLimit-Limit", depth);
    add_num_header(r, "RateLimit-Remaining", c->bucket.tokens < 0 ? 0 : (double)(int64_t)c->bucket.tokens);
    add_num_header(r, "RateLimit-Reset", reset > 0 ? ceil(reset) : 0);
    if (ok)
        return GUARD_OK;
    add_num_header(r, "Retry-After", wait / 1000.0 + 0.999);
    problem_t p;
    problem_set(&p, ERR_RATE_LIMITED, "", "client %s is over its limit of %g requests per "
                "second (burst %g); retry after %.0f ms", id, rate, depth, wait);
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
