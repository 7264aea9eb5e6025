/* GET /v1/history: a queue's chart points, from the metrics registry's
 * rings (metrics/history.h); no store query. */
#include <string.h>

#include "api/api_internal.h"
#include "metrics/metrics.h"
#include "util/clock.h"

static int parse_history_query(api_call_t *c, const char **queue, int *res, int64_t *since,
                               problem_t *p)
{
    static const char *const known[] = { "queue", "resolution", "since", NULL };
    const char *unknown = http_query_unknown(c->r, known);
    const char *r = http_query(c->r, "resolution"), *s = http_query(c->r, "since");
    *queue = http_query(c->r, "queue");
    *res = 1;
    *since = 0;
    if (unknown)
        return problem_set(p, ERR_VALIDATION, job_name_valid(unknown) ? unknown : "query",
                           "unknown query parameter (allowed: queue, resolution, since)"), -1;
    if (*queue && !job_name_valid(*queue))
        return problem_set(p, ERR_VALIDATION, "queue", "queue is not a valid name"), -1;
    if (r && strcmp(r, "1s") != 0 && strcmp(r, "1m") != 0)
        return problem_set(p, ERR_VALIDATION, "resolution", "resolution must be 1s or 1m"), -1;
    if (r && strcmp(r, "1m") == 0)
        *res = 60;
    if (s && clock_parse_rfc3339(s, since) != 0)
        return problem_set(p, ERR_VALIDATION, "since",
                           "since must be an RFC 3339 time, e.g. 2026-12-01T10:00:00Z"), -1;
    return 0;
}

void api_history(api_call_t *c)
{
    const char *queue;
    int res;
    int64_t since;
    problem_t p;
    if (parse_history_query(c, &queue, &res, &since, &p) != 0) {
        api_reply_problem(c, &p);
        return;
    }
    json_t *out = metrics_history_json(c->api->metrics, queue, res, since);
    if (!out) {
        api_reply_error(c, ERR_NOT_FOUND, "queue",
                        queue ? "no history for that queue (never seen since start, or past "
                                "the bound of queues kept: operations.md)"
                              : "no history yet");
        return;
    }
    json_object_set_new(out, "queue", queue ? json_string(queue) : json_null());
    api_reply_text(c, 200, api_dump(out));
}
