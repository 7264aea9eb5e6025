/*
 * histogram: a fixed-bucket histogram of non-negative values (seconds, or
 * counts), Prometheus-shaped: cumulative buckets, a count and a sum.
 * Percentiles are estimated by linear interpolation inside the bucket, so
 * memory stays fixed however many samples arrive.
 *
 * A histogram_t is a plain value; the bucket bounds are shared, static and
 * ascending. Not thread-safe: each one belongs to one thread (or is copied
 * under its owner's lock).
 */
#ifndef JOBQ_HISTOGRAM_H
#define JOBQ_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_MAX_BUCKETS 24

typedef struct histogram {
    const double *bounds; /* upper bounds, ascending; +Inf is implicit */
    int nbounds;
    uint64_t counts[HISTOGRAM_MAX_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t count;
    double sum, min, max;
} histogram_t;

/* Latency buckets in seconds, 50 us .. 30 s. */
extern const double histogram_seconds[];
extern const int histogram_seconds_n;
/* Size buckets (batch sizes), 1 .. 10,000. */
extern const double histogram_sizes[];
extern const int histogram_sizes_n;

void histogram_init(histogram_t *h, const double *bounds, int nbounds);
void histogram_observe(histogram_t *h, double v);
/* q in [0,1]; 0 when empty. */
double histogram_quantile(const histogram_t *h, double q);

#endif
