/*
 * token_bucket: the rate limiter behind API client limits and job execution
 * limits. A bucket `depth` deep refills at `rate` tokens per second; each
 * admitted event takes one token. The rate and depth are passed on every
 * call, so a reload changes them without touching the buckets' state.
 * A token_bucket_t is a plain value; the clock is the caller's (ms).
 */
#ifndef JOBQ_TOKEN_BUCKET_H
#define JOBQ_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct token_bucket {
    double tokens;
    int64_t at_ms; /* when tokens was last brought up to date */
} token_bucket_t;

/* A full bucket. */
void tb_init(token_bucket_t *b, double depth, int64_t now_ms);
/* The depth to use for a rate when none is configured: max(1, rate). */
double tb_default_depth(double rate, double burst);
/* A burst of B split into shares (cluster mode's nodes): B * share, but
 * never under one token, or the bucket would never fill. */
double tb_share_burst(double burst, double share);
/* Refills, then takes one token if there is one. */
bool tb_take(token_bucket_t *b, double rate, double depth, int64_t now_ms);
/* Refills, then says whether a token is there without taking it. */
bool tb_ready(token_bucket_t *b, double rate, double depth, int64_t now_ms);
/* Milliseconds until one whole token is there (0 if one is); after a refill. */
int64_t tb_wait_ms(const token_bucket_t *b, double rate);

#endif
