/* The circuit breaker state machine; see breaker.h. */
#include "engine/breaker.h"

#include <string.h>

static int64_t bucket_ms(const engine_breaker_options_t *o)
{
    int64_t w = o->window_ms / BREAKER_BUCKETS;
    return w > 0 ? w : 1;
}

/* Slides the window so its newest bucket holds now, zeroing what fell out. */
static void slide(breaker_t *b, const engine_breaker_options_t *o, int64_t now)
{
    int64_t w = bucket_ms(o);
    int64_t start = now - now % w;
    if (b->bucket_at == start)
        return;
    int64_t steps = b->bucket_at ? (start - b->bucket_at) / w : BREAKER_BUCKETS;
    if (steps < 0 || steps >= BREAKER_BUCKETS) {
        memset(b->ok, 0, sizeof b->ok);
        memset(b->bad, 0, sizeof b->bad);
    } else {
        memmove(b->ok, b->ok + steps, (BREAKER_BUCKETS - steps) * sizeof b->ok[0]);
        memmove(b->bad, b->bad + steps, (BREAKER_BUCKETS - steps) * sizeof b->bad[0]);
        memset(b->ok + BREAKER_BUCKETS - steps, 0, steps * sizeof b->ok[0]);
        memset(b->bad + BREAKER_BUCKETS - steps, 0, steps * sizeof b->bad[0]);
    }
    b->bucket_at = start;
}

void breaker_window(breaker_t *b, const engine_breaker_options_t *o, int64_t now,
                    uint32_t *bad, uint32_t *total)
{
    slide(b, o, now);
    *bad = *total = 0;
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        *bad += b->bad[i];
        *total += b->bad[i] + b->ok[i];
    }
}

static void open_it(breaker_t *b, const engine_breaker_options_t *o, int64_t now)
{
    if (b->state == ENGINE_BREAKER_HALF_OPEN && b->cooldown_ms)
        b->cooldown_ms = b->cooldown_ms > o->cooldown_max_ms / 2 ? o->cooldown_max_ms
                                                                 : b->cooldown_ms * 2;
    else
        b->cooldown_ms = o->cooldown_ms;
    b->state = ENGINE_BREAKER_OPEN;
    b->opened_at = now;
    b->probe_at = now + b->cooldown_ms;
    b->probes_out = 0;
}

bool breaker_allows(breaker_t *b, const engine_breaker_options_t *o, int64_t now,
                    int64_t *wake)
{
    if (b->state == ENGINE_BREAKER_OPEN) {
        if (now < b->probe_at) {
            if (b->probe_at < *wake)
                *wake = b->probe_at;
            return false;
        }
        b->state = ENGINE_BREAKER_HALF_OPEN;
        b->probes_out = 0;
    }
    if (b->state == ENGINE_BREAKER_HALF_OPEN)
        return b->probes_out < (o->probes > 0 ? o->probes : 1);
    return true;
}

void breaker_leased(breaker_t *b)
{
    if (b->state == ENGINE_BREAKER_HALF_OPEN)
        b->probes_out++;
}

static bool should_open(breaker_t *b, const engine_breaker_options_t *o, int64_t now)
{
    if (o->failures > 0 && b->consecutive >= o->failures)
        return true;
    if (o->ratio <= 0)
        return false;
    uint32_t bad, total;
    breaker_window(b, o, now, &bad, &total);
    return total >= (uint32_t)(o->min_requests > 0 ? o->min_requests : 1) &&
           (double)bad >= o->ratio * (double)total;
}

engine_breaker_state_t breaker_record(breaker_t *b, const engine_breaker_options_t *o,
                                      int64_t now, bool failed, bool probe)
{
    if (probe && b->probes_out > 0)
        b->probes_out--;
    slide(b, o, now);
    if (failed) {
        b->failures++;
        b->consecutive++;
        b->bad[BREAKER_BUCKETS - 1]++;
    } else {
        b->successes++;
        b->consecutive = 0;
        b->ok[BREAKER_BUCKETS - 1]++;
    }
    bool enabled = o->failures > 0 || o->ratio > 0;
    switch (b->state) {
    case ENGINE_BREAKER_CLOSED:
        if (failed && enabled && should_open(b, o, now))
            open_it(b, o, now);
        break;
    case ENGINE_BREAKER_HALF_OPEN:
        if (!probe) /* leased before it opened: stale news */
            break;
        if (failed)
            open_it(b, o, now);
        else
            b->state = ENGINE_BREAKER_CLOSED, b->cooldown_ms = 0;
        break;
    case ENGINE_BREAKER_OPEN:
        /* Jobs leased before it opened still report; only probes decide, or
         * one lucky job among many failing ones would close it. */
        break;
    }
    return b->state;
}

void breaker_reset(breaker_t *b)
{
    uint64_t f = b->failures, s = b->successes;
    memset(b, 0, sizeof *b); /* probes in flight report into a closed breaker */
    b->failures = f;
    b->successes = s;
}

bool breaker_idle(const breaker_t *b, const engine_breaker_options_t *o, int64_t now)
{
    bool window_empty = !b->bucket_at || now >= b->bucket_at + bucket_ms(o) + o->window_ms;
    return b->state == ENGINE_BREAKER_CLOSED && b->consecutive == 0 && b->probes_out == 0 &&
           window_empty;
}
