/* GET /v1/workers: who is working, and how well (metrics/workers.h). */
#include "api/api_internal.h"
#include "util/clock.h"

void api_workers(api_call_t *c)
{
    api_reply_text(c, 200, api_dump(workers_json(c->api->workers, clock_now_ms())));
}
