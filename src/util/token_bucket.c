#include "util/token_bucket.h"

#include <math.h>

void tb_init(token_bucket_t *b, double depth, int64_t now_ms)
{
    b->tokens = depth;
    b->at_ms = now_ms;
}

double tb_share_burst(double burst, double share)
{
    double b = burst * share;
    return b >= 1 ? b : 1;
}

double tb_default_depth(double rate, double burst)
{
    return burst >= 1 ? burst : (rate > 1 ? rate : 1);
}

static void refill(token_bucket_t *b, double rate, double depth, int64_t now_ms)
{
    if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * rate / 1000.0;
        b->at_ms = now_ms;
    }
    if (b->tokens > depth) /* also after a reload made it shallower */
        b->tokens = depth;
}

bool tb_ready(token_bucket_t *b, double rate, double depth, int64_t now_ms)
{
    refill(b, rate, depth, now_ms);
    return b->tokens >= 1.0;
}

bool tb_take(token_bucket_t *b, double rate, double depth, int64_t now_ms)
{
    if (!tb_ready(b, rate, depth, now_ms))
        return false;
    b->tokens -= 1.0;
    return true;
}

int64_t tb_wait_ms(const token_bucket_t *b, double rate)
{
    if (b->tokens >= 1.0 || rate <= 0)
        return 0;
    return (int64_t)ceil((1.0 - b->tokens) * 1000.0 / rate);
}
