/* POST /v1/jobs/bulk, GET /v1/bulk[/{id}], POST /v1/bulk/{id}/cancel: the
 * HTTP face of bulk.c. */
#include <string.h>

#include "api/api_internal.h"
#include "api/guard.h"
#include "util/clock.h"

/* The filter object's members are strings, as the list's query values are. */
static const char *body_get(void *ud, const char *name)
{
    return json_string_value(json_object_get(ud, name));
}

static bool check_filter(api_call_t *c, json_t *filter)
{
    static const char *const names[] = { API_FILTER_NAMES };
    const char *k;
    json_t *v;
    json_object_foreach(filter, k, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            known = known || strcmp(k, names[i]) == 0;
        char field[160];
        snprintf(field, sizeof field, "filter.%.64s", k);
        if (!known || !json_is_string(v)) {
            api_reply_error(c, ERR_VALIDATION, field, known ? "a filter's value is a string"
                            : "unknown filter (allowed: those of GET /v1/jobs)");
            return false;
        }
    }
    return true;
}

static bool check_body(api_call_t *c, json_t **filter, const char **action, bool *dry_run)
{
    const char *k;
    json_t *v;
    json_object_foreach(c->body, k, v) {
        if (strcmp(k, "filter") && strcmp(k, "action") && strcmp(k, "dry_run")) {
            api_reply_error(c, ERR_VALIDATION, k, "unknown field (allowed: filter, action, dry_run)");
            return false;
        }
    }
    *filter = json_object_get(c->body, "filter");
    *action = json_string_value(json_object_get(c->body, "action"));
    json_t *dry = json_object_get(c->body, "dry_run");
    if (!json_is_object(*filter)) {
        api_reply_error(c, ERR_VALIDATION, "filter", "filter is required: an object of the "
                        "filters of GET /v1/jobs ({} for every job)");
        return false;
    }
    if (!*action) {
        api_reply_error(c, ERR_VALIDATION, "action", "action must be retry, cancel or delete");
        return false;
    }
    if (dry && !json_is_boolean(dry)) {
        api_reply_error(c, ERR_VALIDATION, "dry_run", "dry_run is true or false");
        return false;
    }
    *dry_run = json_is_true(dry);
    return check_filter(c, *filter);
}

/* Deleting needs admin, as DELETE /v1/jobs/{id} does; the route asks produce. */
static bool may(api_call_t *c, const char *action)
{
    guard_identity_t who;
    guard_identify(c->api->guard, c->r, clock_now_ms(), &who);
    if (strcmp(action, "delete") != 0 || who.role == ROLE_ADMIN)
        return true;
    problem_t p;
    problem_set(&p, ERR_UNAUTHORIZED, "action", "deleting in bulk needs an admin key");
    p.status = 403;
    api_reply_problem(c, &p);
    return false;
}

void api_bulk_post(api_call_t *c)
{
    problem_t p;
    json_t *filter;
    const char *action;
    bool dry_run;
    store_query_t q;
    if (!(c->body = http_body_json(c->r, false, &p))) {
        api_reply_problem(c, &p);
        return;
    }
    if (!check_body(c, &filter, &action, &dry_run) || !may(c, action))
        return;
    if (api_parse_job_filter(body_get, filter, "filter.", &q, &p) != 0 ||
        (!dry_run && api_refuse_writes(c, true)))
        goto refused;
    bulk_t *b = api_bulk_start(c->api, &q, action, dry_run, &p);
    if (!b)
        goto refused;
    json_t *out = api_bulk_json(b);
    char where[64];
    snprintf(where, sizeof where, "/v1/bulk/%s", json_string_value(json_object_get(out, "id")));
    http_add_header(c->r, "Location", where);
    api_reply_text(c, 202, api_dump(out));
    return;
refused:
    if (http_status(c->r) == 0)
        api_reply_problem(c, &p);
}

static bulk_t *path_bulk(api_call_t *c)
{
    const char *id = http_param(c->r, 0);
    bulk_t *b = api_valid_id(c, id) ? api_bulk_find(c->api, id) : NULL;
    if (!b && http_status(c->r) == 0)
        api_reply_error(c, ERR_NOT_FOUND, "id", "no such bulk action (the newest 32 finished "
                        "ones are kept)");
    return b;
}

void api_bulk_get(api_call_t *c)
{
    bulk_t *b = path_bulk(c);
    if (b)
        api_reply_text(c, 200, api_dump(api_bulk_json(b)));
}

void api_bulk_cancel_post(api_call_t *c)
{
    bulk_t *b = path_bulk(c);
    if (!b)
        return;
    api_bulk_cancel(b);
    api_reply_text(c, 202, api_dump(api_bulk_json(b)));
}

static void add(void *ud, const bulk_t *b) { json_array_append_new(ud, api_bulk_json(b)); }

void api_bulk_list(api_call_t *c)
{
    json_t *all = json_array();
    api_bulk_foreach(c->api, add, all);
    api_reply_text(c, 200, api_dump(json_pack("{s:o}", "bulk", all)));
}
