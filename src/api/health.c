/* The health probes: /health/live, /health/ready and /health (per component). */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "api/api_internal.h"

typedef struct check {
    const char *component;
    bool ok;
    char detail[300];
} check_t;

static check_t check_store(api_t *api)
{
    check_t c = { "store", store_healthy(api->store), "" };
    if (!c.ok) {
        char why[256];
        store_last_error(api->store, why, sizeof why);
        snprintf(c.detail, sizeof c.detail, "the store cannot commit%s: %s",
                 store_disk_full(api->store) ? " (the disk is full)" : "", why);
    }
    return c;
}

static check_t check_disk(api_t *api, int64_t *free_bytes)
{
    check_t c = { "disk", true, "" };
    struct statvfs v;
    *free_bytes = -1;
    if (statvfs(api->cfg->data_dir, &v) != 0)
        return c; /* not a folder we can see (another store): nothing to say */
    *free_bytes = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
    if (*free_bytes < api->cfg->min_free_disk_bytes) {
        c.ok = false;
        snprintf(c.detail, sizeof c.detail,
                 "%lld bytes free in %.200s, below JOBQ_MIN_FREE_DISK_BYTES=%lld",
                 (long long)*free_bytes, api->cfg->data_dir,
                 (long long)api->cfg->min_free_disk_bytes);
    }
    return c;
}

static check_t check_memory(api_t *api)
{
    check_t c = { "memory", !api_memory_full(api), "" };
    if (!c.ok)
        snprintf(c.detail, sizeof c.detail, "%lld bytes held, at JOBQ_MEMORY_LIMIT=%lld: "
                 "new jobs are refused", (long long)api_memory_used(api),
                 (long long)api->cfg->memory_limit);
    return c;
}

static check_t check_draining(api_t *api)
{
    check_t c = { "shutdown", !api->draining, "" };
    if (!c.ok)
        snprintf(c.detail, sizeof c.detail, "draining: jobq is shutting down");
    return c;
}

void api_health_live(api_call_t *c)
{
    api_reply_text(c, 200, api_dump(json_pack("{s:s}", "status", "ok")));
}

/* 200 when every component is fine; else 503 naming the first that is not. */
void api_health_ready(api_call_t *c)
{
    int64_t free_bytes;
    check_t checks[] = { check_draining(c->api), check_store(c->api),
                         check_disk(c->api, &free_bytes), check_memory(c->api) };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!checks[i].ok) {
            api_reply_error(c, ERR_UNAVAILABLE, checks[i].component, checks[i].detail);
            return;
        }
    }
    api_reply_text(c, 200, api_dump(json_pack("{s:s}", "status", "ready")));
}

static json_t *component(const check_t *c)
{
    json_t *o = json_pack("{s:s}", "status", c->ok ? "ok" : "failing");
    if (!c->ok)
        json_object_set_new(o, "detail", json_string(c->detail));
    return o;
}

void api_health(api_call_t *c)
{
    int64_t free_bytes;
    check_t checks[] = { check_draining(c->api), check_store(c->api),
                         check_disk(c->api, &free_bytes), check_memory(c->api) };
    json_t *components = json_object();
    bool ok = true;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        json_object_set_new(components, checks[i].component, component(&checks[i]));
        ok = ok && checks[i].ok;
    }
    json_t *disk = json_object_get(components, "disk");
    json_object_set_new(disk, "free_bytes", json_integer(free_bytes));
    json_object_set_new(disk, "min_free_bytes", json_integer(c->api->cfg->min_free_disk_bytes));
    json_t *mem = json_object_get(components, "memory");
    json_object_set_new(mem, "used_bytes", json_integer(api_memory_used(c->api)));
    json_object_set_new(mem, "limit_bytes", json_integer(c->api->cfg->memory_limit));
    json_object_set_new(components, "loop", json_pack("{s:s}", "status", "ok"));
    api_reply_text(c, ok ? 200 : 503,
                   api_dump(json_pack("{s:s, s:o}", "status", ok ? "ok" : "unavailable",
                                      "components", components)));
}
