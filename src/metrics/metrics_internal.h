/* metrics_internal: the registry layout, shared by metrics.c (recording)
 * and exposition.c (rendering) only. */
#ifndef JOBQ_METRICS_INTERNAL_H
#define JOBQ_METRICS_INTERNAL_H

#include "metrics/metrics.h"
#include "util/histogram.h"
#include "util/hmap.h"

#define WINDOW_SECONDS 300

/* Outcomes in one second, in a ring of the last WINDOW_SECONDS. */
typedef struct msecond {
    int64_t second;
    uint32_t completed, failed;
} msecond_t;

typedef struct mqueue {
    char *name; /* owned; the hmap key */
    uint64_t events[ENGINE_EV_COUNT];
    histogram_t exec, wait;
    msecond_t ring[WINDOW_SECONDS];
} mqueue_t;

typedef struct mroute {
    char *key;         /* owned: "route method status" */
    const char *route; /* static, from the router */
    char method[12];
    int status;
    histogram_t h;
} mroute_t;

struct metrics {
    char version[64];
    hmap_t queues; /* name -> mqueue_t */
    hmap_t routes; /* key -> mroute_t */
};

#endif
