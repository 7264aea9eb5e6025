#include "util/histogram.h"

const double histogram_seconds[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,
                                     2.5,     5,      10,      30 };
const int histogram_seconds_n = sizeof histogram_seconds / sizeof histogram_seconds[0];

const double histogram_sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2500, 10000 };
const int histogram_sizes_n = sizeof histogram_sizes / sizeof histogram_sizes[0];

void histogram_init(histogram_t *h, const double *bounds, int nbounds)
{
    *h = (histogram_t){ .bounds = bounds,
                        .nbounds = nbounds > HISTOGRAM_MAX_BUCKETS ? HISTOGRAM_MAX_BUCKETS
                                                                   : nbounds };
}

void histogram_observe(histogram_t *h, double v)
{
    if (!(v >= 0)) /* negative or NaN: a clock step; count it as zero */
        v = 0;
    int i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

double histogram_quantile(const histogram_t *h, double q)
{
    if (!h->count)
        return 0;
    double rank = q * (double)h->count;
    uint64_t seen = 0;
    for (int i = 0; i <= h->nbounds; i++) {
        if (h->counts[i] == 0 || (double)(seen + h->counts[i]) < rank) {
            seen += h->counts[i];
            continue;
        }
        double lo = i == 0 ? 0 : h->bounds[i - 1];
        if (lo < h->min)
            lo = h->min; /* nor below it */
        double hi = i < h->nbounds ? h->bounds[i] : h->max;
        if (hi > h->max)
            hi = h->max; /* never report beyond what was seen */
        if (hi < lo)
            return hi;
        return lo + (hi - lo) * ((rank - (double)seen) / (double)h->counts[i]);
    }
    return h->max;
}
