/* Operator operations on jobs that are not running (removal, killing,
 * running now), and jobs discarded when their retries ran out. */
#include <stdlib.h>

#include "engine/engine_internal.h"

void eng_reap(engine_t *e)
{
    while (!list_empty(&e->graveyard)) {
        ejob_t *ej = LIST_ENTRY(list_first(&e->graveyard), ejob_t, link);
        list_remove(&ej->link);
        eng_free_rec(e, ej);
        free(ej);
    }
}

/* The job was just finished as failed: gone from the table and the store
 * at once, but its record lives until the next engine call, because the
 * call that failed it hands it back to its caller (engine.h). */
void eng_discard(engine_t *e, ejob_t *ej)
{
    e->deletes++;
    ENG_HOOK(e, e->h.persist_delete(e->h.ud, eng_id(ej)));
    eng_release_cancel(e, ej);
    eng_unlink(e, ej);
    pset_del(&e->jobs, eng_id(ej));
    eng_count_out(ej, eng_state(ej));
    e->bytes -= (int64_t)ej->bytes;
    eng_unpark(e, ej);
    list_push_back(&e->graveyard, &ej->link);
}

static ejob_t *not_running(engine_t *e, const char *id, problem_t *p)
{
    ejob_t *ej = eng_find(e, id, p);
    if (ej && eng_thawed(ej)->state == JOB_RUNNING) { /* eng_find thawed it */
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
    if (!job_state_terminal(eng_state(ej))) {
        eng_unlink(e, ej);
        eng_lane_detach(e, ej);
    }
    e->deletes++;
    ENG_HOOK(e, e->h.persist_delete(e->h.ud, eng_id(ej)));
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
    job_state_t s = eng_state(ej);
    if (job_state_terminal(s))
        return problem_set(p, ERR_CONFLICT, "state", "job %s is already %s", id,
                           job_state_name(s));
    eng_finish(e, ej, JOB_FAILED, JOB_EV_FAILED);
    *out = eng_thawed(ej);
    eng_settle(e);
    return ERR_OK;
}

err_t engine_run_now(engine_t *e, const char *id, const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = not_running(e, id, p);
    if (!ej)
        return p->type;
    job_t *j = eng_thawed(ej);
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
    ejob_t *ej;
    for (size_t i = 0; (ej = pset_next(&e->jobs, &i));) {
        /* A copy, not a thaw: fn may keep going over a million jobs. */
        job_t *copy = eng_frozen(ej) ? eng_unpack(e, ej) : NULL;
        if (eng_frozen(ej) && !copy)
            continue; /* out of memory */
        bool more = fn(ud, copy ? copy : ej->rec.job);
        job_free(copy);
        if (!more)
            return;
    }
}
