/* Operator operations on jobs that are not running (removal, killing,
 * running now), and jobs discarded when their retries ran out. */
#include <stdlib.h>

#include "engine/engine_internal.h"

void eng_reap(engine_t *e)
{
    while (!list_empty(&e->graveyard)) {
        ejob_t *ej = LIST_ENTRY(list_first(&e->graveyard), ejob_t, link);
        list_remove(&ej->link);
        job_free(ej->job);
        free(ej);
    }
}

/* The job was just finished as failed: gone from the table and the store
 * at once, but its record lives until the next engine call, because the
 * call that failed it hands it back to its caller (engine.h). */
void eng_discard(engine_t *e, ejob_t *ej)
{
    e->deletes++;
    ENG_HOOK(e, e->h.persist_delete(e->h.ud, ej->job->id));
    eng_unlink(e, ej);
    hmap_del(&e->jobs, ej->job->id);
    ej->queue->count[ej->job->state]--;
    e->bytes -= (int64_t)ej->bytes;
    list_push_back(&e->graveyard, &ej->link);
}

static ejob_t *not_running(engine_t *e, const char *id, problem_t *p)
{
    ejob_t *ej = eng_find(e, id, p);
    if (ej && ej->job->state == JOB_RUNNING) {
        problem_set(p, ERR_CONFLICT, "state", "job %s is running", id);
        return NULL;
    }
    return ej;
}

err_t engine_remove(engine_t *e, const char *id, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = not_running(e, id, p);
    if (!ej)
        return p->type;
    if (!job_state_terminal(ej->job->state)) {
        eng_unlink(e, ej);
        eng_lane_detach(e, ej);
    }
    e->deletes++;
    ENG_HOOK(e, e->h.persist_delete(e->h.ud, ej->job->id));
    eng_drop(e, ej);
    eng_settle(e);
    return ERR_OK;
}

err_t engine_kill(engine_t *e, const char *id, const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = not_running(e, id, p);
    if (!ej)
        return p->type;
    if (job_state_terminal(ej->job->state))
        return problem_set(p, ERR_CONFLICT, "state", "job %s is already %s", id,
                           job_state_name(ej->job->state));
    eng_finish(e, ej, JOB_FAILED, JOB_EV_FAILED);
    *out = ej->job;
    eng_settle(e);
    return ERR_OK;
}

err_t engine_run_now(engine_t *e, const char *id, const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = not_running(e, id, p);
    if (!ej)
        return p->type;
    job_t *j = ej->job;
    if (j->state != JOB_PENDING && j->state != JOB_RETRYING)
        return problem_set(p, ERR_CONFLICT, "state", "job %s is %s, not scheduled", id,
                           job_state_name(j->state));
    j->run_at = j->updated_at = eng_now(e);
    eng_make_ready(e, ej);
    eng_persist(e, ej, JOB_EV_UPDATED);
    *out = j;
    eng_settle(e);
    return ERR_OK;
}

void engine_job_foreach(engine_t *e, bool (*fn)(void *ud, const job_t *job), void *ud)
{
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&e->jobs, &i, &k, &v);)
        if (!fn(ud, ((ejob_t *)v)->job))
            return;
}
