/* /v1/workers: who is working, and how well (metrics/workers.h); worker
 * processes told to quiet or terminate. */
#include "api/api_internal.h"
#include "metrics/workers.h"
#include "util/clock.h"

void api_workers(api_call_t *c)
{
    api_reply_text(c, 200, api_dump(workers_json(c->api->workers, clock_now_ms())));
}

/* POST /v1/workers/{wid}/quiet|terminate: the process learns it on its
 * next heartbeat (Faktory protocol BEAT); quiet stops its fetching,
 * terminate asks it to exit. */
static void signal_worker(api_call_t *c, workers_state_t to)
{
    problem_t p;
    const char *wid = http_param(c->r, 0);
    if (!api_valid_id(c, wid))
        return;
    if (workers_signal(c->api->workers, wid, to, &p) != ERR_OK) {
        api_reply_problem(c, &p);
        return;
    }
    api_reply_text(c, 200, api_dump(json_pack("{s:s, s:s}", "id", wid, "state",
                                              workers_state_name(workers_state(c->api->workers,
                                                                               wid)))));
}

void api_worker_quiet(api_call_t *c) { signal_worker(c, WORKERS_QUIET); }
void api_worker_terminate(api_call_t *c) { signal_worker(c, WORKERS_TERMINATE); }
