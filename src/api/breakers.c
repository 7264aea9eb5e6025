/* GET /v1/breakers and POST /v1/breakers/{key}/reset. */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "util/clock.h"

static json_t *breaker_json(const engine_breaker_info_t *b)
{
    return json_pack("{s:s, s:s, s:i, s:{s:i, s:i}, s:I, s:I, s:o, s:o, s:I, s:o, s:i, s:I}",
                     "key", b->key, "state", engine_breaker_state_name(b->state),
                     "consecutive_failures", b->consecutive_failures, "window", "failures",
                     (int)b->window_failures, "total", (int)b->window_total, "failures",
                     (json_int_t)b->failures, "successes", (json_int_t)b->successes,
                     "opened_at", clock_json(b->opened_at), "next_probe_at",
                     clock_json(b->next_probe_at), "cooldown_ms", (json_int_t)b->cooldown_ms,
                     "held_until", clock_json(b->held_until), "probes_in_flight",
                     b->probes_in_flight, "queued", (json_int_t)b->queued);
}

static void add_breaker(void *ud, const engine_breaker_info_t *b)
{
    json_array_append_new(ud, breaker_json(b));
}

static int by_state_then_key(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    /* open, half_open, closed: what needs attention first */
    int sx = json_string_value(json_object_get(x, "state"))[0];
    int sy = json_string_value(json_object_get(y, "state"))[0];
    if (sx != sy)
        return sy - sx; /* 'o' > 'h' > 'c' */
    return strcmp(json_string_value(json_object_get(x, "key")),
                  json_string_value(json_object_get(y, "key")));
}

static void sort_list(json_t *list)
{
    size_t n = json_array_size(list);
    json_t **items = n ? malloc(n * sizeof *items) : NULL;
    for (size_t i = 0; items && i < n; i++)
        items[i] = json_incref(json_array_get(list, i));
    if (items) {
        qsort(items, n, sizeof *items, by_state_then_key);
        json_array_clear(list);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, items[i]);
        free(items);
    }
}

static void reply_list(api_call_t *c, json_t *list)
{
    sort_list(list);
    api_reply_text(c, 200, api_dump(json_pack("{s:o, s:o}", "breakers", list, "changes",
                                              api_breaker_changes(c->api))));
}

static json_t *find_key(json_t *list, const char *key)
{
    size_t i;
    json_t *b;
    json_array_foreach(list, i, b)
        if (!strcmp(json_string_value(json_object_get(b, "key")), key))
            return b;
    return NULL;
}

/* Cluster mode: the state is the cluster's (the database's row of each
 * breaker not closed); the counts are what this node saw. */
static void with_shared(api_call_t *c, json_t *result, const char *error)
{
    if (error) {
        api_reply_error(c, ERR_UNAVAILABLE, "", error);
        return;
    }
    json_t *list = json_array();
    engine_breaker_foreach(c->api->engine, add_breaker, list);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(result, "breakers"), i, row) {
        const char *key = json_string_value(json_object_get(row, "key"));
        json_t *b = find_key(list, key);
        if (!b) {
            engine_breaker_info_t none = { .key = key, .state = ENGINE_BREAKER_CLOSED };
            b = breaker_json(&none);
            json_array_append_new(list, b);
        }
        json_object_update_existing(b, row);
        json_object_set(b, "probe_node", json_object_get(row, "probe_node"));
    }
    reply_list(c, list);
}

void api_breakers(api_call_t *c)
{
    static const char *const allowed[] = { NULL };
    if (http_query_unknown(c->r, allowed)) {
        api_reply_error(c, ERR_VALIDATION, http_query_unknown(c->r, allowed),
                        "unknown query parameter");
        return;
    }
    if (store_clustered(c->api->store)) {
        api_read_breakers(c, with_shared);
        return;
    }
    json_t *list = json_array();
    engine_breaker_foreach(c->api->engine, add_breaker, list);
    reply_list(c, list);
}

typedef struct find {
    const char *key;
    json_t *found;
} find_t;

static void find_breaker(void *ud, const engine_breaker_info_t *b)
{
    find_t *f = ud;
    if (!f->found && strcmp(b->key, f->key) == 0)
        f->found = breaker_json(b);
}

void api_breaker_reset(api_call_t *c)
{
    const char *key = http_param(c->r, 0);
    problem_t p;
    if (!job_name_valid(key)) {
        api_reply_error(c, ERR_VALIDATION, "key", "not a valid breaker key");
        return;
    }
    if (engine_breaker_reset(c->api->engine, key, &p) != ERR_OK) {
        api_reply_problem(c, &p);
        return;
    }
    find_t f = { key, NULL };
    engine_breaker_foreach(c->api->engine, find_breaker, &f);
    if (!f.found) /* nothing left to remember: it is closed and idle */
        f.found = json_pack("{s:s, s:s}", "key", key, "state", "closed");
    if (store_clustered(c->api->store)) /* closed once the cluster's row is gone */
        api_reply_durable(c, 200, api_dump(f.found));
    else
        api_reply_text(c, 200, api_dump(f.found));
}
