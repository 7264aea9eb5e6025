/*
 * ratelimit: one token bucket per client (an API key's name, or an address
 * without keys), shared by every front end, so that a key has one budget
 * whether it speaks HTTP or the Faktory protocol. Buckets that have filled
 * up again are as good as new and are dropped when room is needed; at most
 * RATELIMIT_CLIENTS are kept, and past that new clients share one bucket.
 *
 * Threads: the loop thread. Ownership: the table copies the names.
 */
#ifndef JOBQ_NET_RATELIMIT_H
#define JOBQ_NET_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_CLIENTS 65536

typedef struct ratelimit ratelimit_t;

typedef struct ratelimit_verdict {
    bool ok;
    double depth;     /* the bucket's size */
    double remaining; /* whole tokens left */
    double reset_s;   /* until the bucket is full again */
    int64_t wait_ms;  /* refused: until one more token */
} ratelimit_verdict_t;

ratelimit_t *ratelimit_new(void);
void ratelimit_free(ratelimit_t *rl);
/* This process's share of every rate (cluster mode: 1 / the nodes alive,
 * so that the cluster as a whole admits about the rate configured); 1 by
 * default. A burst keeps at least one token. */
void ratelimit_set_share(ratelimit_t *rl, double share);
/* Takes one token from who's bucket, rate per second with burst depth (0:
 * max(1, rate)), both times the share. rate <= 0 means no limit: ok, and
 * no bucket is kept. */
void ratelimit_take(ratelimit_t *rl, const char *who, double rate, double burst, int64_t now_ms,
                    ratelimit_verdict_t *v);

#endif
