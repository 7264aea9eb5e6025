/*
 * Retention: deletes completed and cancelled jobs older than
 * JOBQ_RETAIN_COMPLETED and failed ones older than JOBQ_RETAIN_FAILED.
 *
 * A sweep walks the store's jobs oldest first, a batch at a time. Each
 * batch is one ordered store write (so it never races a change queued
 * before it) and runs on the store thread; the loop only hands it over and
 * drops the deleted jobs from the engine's memory when it comes back. A
 * sweep that found a full batch continues at once; then it rests. The
 * batch starts small (RETENTION_BATCH) and doubles, up to RETENTION_BATCH_MAX,
 * while most of what it sees is due: under steady load, deleting must keep
 * up with finishing (bench/retention.sh), yet one batch never holds the
 * store thread for long.
 */
#include <string.h>

#include "server/app.h"
#include "util/clock.h"
#include "util/log.h"

#define RETENTION_BATCH 256
#define RETENTION_BATCH_MAX 4096
#define RETENTION_REST_MS 5000   /* between sweeps, at most */

/* Short retentions (tests, bursty queues) are swept more often. */
static int64_t rest_ms(const config_t *c)
{
    int64_t shortest = c->retain_completed_ms;
    if (!shortest || (c->retain_failed_ms && c->retain_failed_ms < shortest))
        shortest = c->retain_failed_ms;
    int64_t ms = shortest / 4;
    return ms < 100 ? 100 : ms > RETENTION_REST_MS ? RETENTION_REST_MS : ms;
}

static void arm(app_t *a, int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(a->retention.timer, &tv);
}

static void on_batch(void *ud, json_t *result, const char *error)
{
    app_t *a = ud;
    retention_t *r = &a->retention;
    r->busy = false;
    if (error || !result) {
        log_warn("retention batch failed", LOG_S("error", error ? error : "?"));
        arm(a, rest_ms(&a->cfg));
        return;
    }
    json_t *ids = json_object_get(result, "deleted"), *id;
    size_t i;
    json_array_foreach(ids, i, id)
        engine_forget(a->engine, json_string_value(id));
    metrics_retention(a->metrics, json_array_size(ids),
                      (int64_t)json_integer_value(json_object_get(result, "dropped")));
    if (json_array_size(ids) && a->cache)
        cache_touch(a->cache, NULL);
    int scanned = (int)json_integer_value(json_object_get(result, "scanned"));
    json_t *cur = json_object_get(result, "cursor");
    if (json_array_size(ids))
        log_debug("retention deleted jobs", LOG_I("deleted", json_array_size(ids)),
                  LOG_I("scanned", scanned));
    r->has_cursor = scanned == r->batch;
    size_t deleted = json_array_size(ids);
    if (r->has_cursor && deleted * 2 >= (size_t)scanned && r->batch < RETENTION_BATCH_MAX)
        r->batch *= 2;
    else if (!r->has_cursor || deleted * 4 < (size_t)scanned)
        r->batch = RETENTION_BATCH;
    if (r->has_cursor) {
        r->cursor_created_at = json_integer_value(json_object_get(cur, "created_at"));
        snprintf(r->cursor_id, sizeof r->cursor_id, "%s",
                 json_string_value(json_object_get(cur, "id")));
    }
    arm(a, r->has_cursor ? 0 : rest_ms(&a->cfg));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    retention_t *r = &a->retention;
    const config_t *c = &a->cfg;
    if (r->busy || a->api.draining || !store_healthy(a->store) ||
        (c->retain_completed_ms == 0 && c->retain_failed_ms == 0)) {
        arm(a, rest_ms(c)); /* the settings may change on SIGHUP */
        return;
    }
    int64_t now = clock_now_ms();
    store_purge_t p = {
        .completed_before = c->retain_completed_ms ? now - c->retain_completed_ms : 0,
        .failed_before = c->retain_failed_ms ? now - c->retain_failed_ms : 0,
        .partition_min_ms = c->history_partition_min_ms,
        .has_cursor = r->has_cursor,
        .after_created_at = r->cursor_created_at,
        .after_id = r->cursor_id,
        .limit = r->batch,
    };
    r->busy = true;
    store_purge(a->store, &p, on_batch, a);
}

int app_retention_start(app_t *a)
{
    if (!(a->retention.timer = evtimer_new(a->base, on_timer, a)))
        return -1;
    a->retention.batch = RETENTION_BATCH;
    /* Nothing is due in the first moments. (A cluster's first node also
     * makes history's partitions then: what finishes before goes to the
     * default one, deleted by rows. A sweep at once made the store's first
     * commit a purge, whose failure refused the writes and reads that
     * came next, before any of theirs was tried.) */
    arm(a, rest_ms(&a->cfg));
    return 0;
}

void app_retention_stop(app_t *a)
{
    if (a->retention.timer)
        event_free(a->retention.timer);
    a->retention.timer = NULL;
}
