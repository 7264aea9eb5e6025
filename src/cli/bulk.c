/* `jobq bulk ACTION [filters] [--dry-run]`: one server-side action on every
 * job matching the filters (POST /v1/jobs/bulk), followed to its end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"
#include "cli/client.h"

#define POLL_MS 200

/* "--breaker-key" -> "breaker_key" */
static json_t *filter_of(const cli_opts_t *o)
{
    json_t *f = json_object();
    for (int i = 0; f && i < o->n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", o->names[i] + 2);
        for (char *p = name; *p; p++)
            *p = *p == '-' ? '_' : *p;
        json_object_set_new(f, name, json_string(o->values[i]));
    }
    return f;
}

static bool over(const char *state)
{
    return !strcmp(state, "done") || !strcmp(state, "cancelled") || !strcmp(state, "failed");
}

static int follow(const client_t *c, const cli_opts_t *o, json_t *b)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/bulk/%s", json_string_value(json_object_get(b, "id")));
    json_incref(b);
    for (;;) {
        const char *state = json_string_value(json_object_get(b, "state"));
        if (!state || over(state))
            break;
        cli_sleep_ms(POLL_MS);
        json_t *next;
        char err[512];
        int status = client_request(c, "GET", path, NULL, &next, err, sizeof err);
        if (status != 200) {
            json_decref(b);
            return cli_report(status, next, err);
        }
        json_decref(b);
        b = next;
    }
    const char *state = json_string_value(json_object_get(b, "state"));
    if (o->json)
        cli_print_json(b);
    else
        printf("%s: %lld matched, %lld changed, %lld skipped (%s)%s%s\n",
               json_string_value(json_object_get(b, "action")),
               json_integer_value(json_object_get(b, "matched")),
               json_integer_value(json_object_get(b, "changed")),
               json_integer_value(json_object_get(b, "skipped")), state ? state : "?",
               json_is_string(json_object_get(b, "error")) ? ": " : "",
               json_is_string(json_object_get(b, "error"))
                   ? json_string_value(json_object_get(b, "error")) : "");
    int rc = state && !strcmp(state, "done") ? 0 : 1;
    json_decref(b);
    return rc;
}

int cli_bulk(int argc, char **argv)
{
    static const char *const allowed[] = { "--queue", "--state", "--type", "--priority",
                                           "--breaker-key", "--worker", "--text",
                                           "--created-after", "--created-before",
                                           "--finished-after", "--finished-before", NULL };
    bool dry_run = false;
    char *rest[64];
    int n = 0;
    for (int i = 0; i < argc && n < 64; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry_run = true;
        else
            rest[n++] = argv[i];
    }
    cli_opts_t o;
    if (cli_parse("bulk", n, rest, allowed, &o))
        return 2;
    if (o.npos != 1)
        return cli_usage_error("bulk", "give one action: retry, cancel or delete");
    client_t c;
    client_init(&c, o.server);
    json_t *body = json_pack("{s:o, s:s, s:b}", "filter", filter_of(&o), "action", o.pos[0],
                             "dry_run", dry_run);
    json_t *out;
    char err[512];
    int status = client_request(&c, "POST", "/v1/jobs/bulk", body, &out, err, sizeof err);
    json_decref(body);
    int rc = status == 202 ? follow(&c, &o, out) : cli_report(status, out, err);
    json_decref(out);
    return rc;
}
