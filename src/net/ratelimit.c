#include "net/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "util/check.h"
#include "util/hmap.h"
#include "util/token_bucket.h"

typedef struct client {
    char *id; /* owned; the hmap key */
    token_bucket_t bucket;
} client_t;

struct ratelimit {
    hmap_t clients;
    client_t overflow; /* shared by new clients while the table is full */
    bool overflow_init;
    double share; /* of every rate: ratelimit_set_share */
};

ratelimit_t *ratelimit_new(void)
{
    ratelimit_t *rl = calloc(1, sizeof *rl);
    if (rl) {
        rl->share = 1.0;
        hmap_init(&rl->clients);
    }
    return rl;
}

static void free_client(void *v)
{
    free(((client_t *)v)->id);
    free(v);
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl)
        return;
    hmap_free_values(&rl->clients, free_client);
    free(rl);
}

/* Drops buckets that have refilled completely. */
static void prune(ratelimit_t *rl, double rate, double depth, int64_t now)
{
    size_t n = hmap_len(&rl->clients), m = 0;
    client_t **idle = calloc(n ? n : 1, sizeof *idle);
    if (!idle)
        return;
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&rl->clients, &i, &k, &v);) {
        client_t *c = v;
        tb_ready(&c->bucket, rate, depth, now);
        if (c->bucket.tokens >= depth)
            idle[m++] = c;
    }
    for (size_t i = 0; i < m; i++) {
        hmap_del(&rl->clients, idle[i]->id);
        free_client(idle[i]);
    }
    free(idle);
}

static client_t *client(ratelimit_t *rl, const char *id, double rate, double depth, int64_t now)
{
    client_t *c = hmap_get(&rl->clients, id);
    if (c)
        return c;
    if (hmap_len(&rl->clients) >= RATELIMIT_CLIENTS)
        prune(rl, rate, depth, now);
    c = hmap_len(&rl->clients) < RATELIMIT_CLIENTS ? calloc(1, sizeof *c) : NULL;
    if (!c || !(c->id = strdup(id)) || hmap_put(&rl->clients, c->id, c) != 0) {
        if (c)
            free(c->id);
        free(c);
        if (!rl->overflow_init)
            tb_init(&rl->overflow.bucket, depth, now);
        rl->overflow_init = true;
        return &rl->overflow;
    }
    tb_init(&c->bucket, depth, now);
    return c;
}

void ratelimit_set_share(ratelimit_t *rl, double share)
{
    CHECK_LOOP_THREAD();
    rl->share = share > 0 && share <= 1 ? share : 1.0;
}

void ratelimit_take(ratelimit_t *rl, const char *who, double rate, double burst, int64_t now,
                    ratelimit_verdict_t *v)
{
    CHECK_LOOP_THREAD();
    *v = (ratelimit_verdict_t){ .ok = true };
    if (rate <= 0)
        return;
    rate *= rl->share;
    double depth = tb_default_depth(rate, burst >= 1 ? tb_share_burst(burst, rl->share) : 0);
    client_t *c = client(rl, who, rate, depth, now);
    v->ok = tb_take(&c->bucket, rate, depth, now);
    v->depth = depth;
    v->remaining = c->bucket.tokens < 0 ? 0 : (double)(int64_t)c->bucket.tokens;
    v->reset_s = (depth - c->bucket.tokens) / rate;
    v->wait_ms = v->ok ? 0 : tb_wait_ms(&c->bucket, rate);
}
