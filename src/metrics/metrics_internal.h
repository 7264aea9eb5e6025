/* metrics_internal: the registry layout, shared by metrics.c (recording)
 * and exposition.c (rendering) only. */
#ifndef JOBQ_METRICS_INTERNAL_H
#define JOBQ_METRICS_INTERNAL_H

#include "metrics/history.h"
#include "metrics/metrics.h"
#include "util/histogram.h"
#include "util/hmap.h"
#include "util/sbuf.h"

#define WINDOW_SECONDS 300

/* Outcomes in one second, in a ring of the last WINDOW_SECONDS. */
typedef struct msecond {
    int64_t second;
    uint32_t completed, failed;
} msecond_t;

typedef struct mqueue {
    char *name; /* owned; the hmap key */
    uint64_t events[JOB_EV_COUNT];
    histogram_t exec, wait;
    msecond_t ring[WINDOW_SECONDS];
    history_t *history; /* owned; NULL past METRICS_HISTORY_QUEUES (series.c) */
    uint32_t depth[HISTORY_DEPTHS]; /* the tick's sum of its engine queues (series.c) */
} mqueue_t;

typedef struct mroute {
    char *key;         /* owned: "route method status" */
    const char *route; /* static, from the router */
    char method[12];
    int status;
    histogram_t h;
} mroute_t;

#define METRICS_NREASONS 5

#define METRICS_RECENT_ROUTES 64

struct metrics {
    char version[64];
    uint64_t rejected[METRICS_NREASONS];
    uint64_t breaker_to[3]; /* transitions, by the state entered */
    uint64_t retention_deleted;
    uint64_t retention_dropped;
    uint64_t fwp_commands[METRICS_FWP_NVERBS], fwp_errors[METRICS_FWP_NVERBS];
    hmap_t queues; /* name -> mqueue_t */
    /* The entry found last: a job's events come one queue at a time. The
     * table never loses an entry before the registry goes. */
    mqueue_t *last_queue;
    hmap_t routes; /* key -> mroute_t */
    /* The entries requests found lately, by route address, method and
     * status: the key's snprintf and hash were ~1.5 k instructions a
     * request. Entries live as long as the registry. */
    mroute_t *recent_routes[METRICS_RECENT_ROUTES];
    history_t *all; /* every queue together (series.c) */
    size_t nhistory; /* queues with a series of their own */
};

/* metrics.c: the queue's registry entry, made if new; past
 * METRICS_QUEUES_MAX, the entry of METRICS_OTHER_QUEUES (NULL: no memory). */
mqueue_t *metrics_queue_of(metrics_t *m, const char *name);

/* faktory.c */
void metrics_render_faktory(sbuf_t *s, metrics_t *m);

/* protection.c */
void metrics_render_protection(sbuf_t *s, metrics_t *m, const metrics_gauges_t *g);

/* exposition.c: text primitives shared by the renderers. */
void metrics_family(sbuf_t *s, const char *name, const char *type, const char *help);
void metrics_sample(sbuf_t *s, const char *name, const char *labels, double v);
void metrics_label(sbuf_t *s, const char *key, const char *value, bool first);

#endif
