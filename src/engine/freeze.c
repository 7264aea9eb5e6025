/* Frozen jobs. A job waiting its turn is kept as its packed bytes instead
 * of a job_t: for a 100-byte job ~180 bytes instead of ~550, which is most
 * of what a deep queue costs (docs/performance.md). Ordering needs none of
 * the bytes: the lane holds queue, type, key and priority, and seq the
 * FIFO order. Whatever reads or changes a job thaws it first (eng_job()).
 *
 * When a job freezes again is what keeps the engine's pointer rule
 * (engine.h: a returned job lives until the next engine call): a job the
 * engine changed on its own (a timer, a load) freezes before the call
 * returns; the one job a call hands back is lent (eng_lend()) and freezes
 * at the start of the next call. Jobs that are running or finished never
 * freeze: they are few and are read and changed all the time. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static bool waiting(job_state_t s)
{
    return s == JOB_PENDING || s == JOB_QUEUED || s == JOB_RETRYING;
}

job_state_t eng_state(const ejob_t *ej)
{
    if (!eng_frozen(ej))
        return ej->rec.job->state;
    const char *id = ej->rec.frozen;
    return job_packed_state(id + strlen(id) + 1);
}

int64_t eng_run_at(const ejob_t *ej)
{
    if (!eng_frozen(ej))
        return ej->rec.job->run_at;
    const char *id = ej->rec.frozen;
    return job_packed_run_at(id + strlen(id) + 1, ej->frozen_len);
}

void eng_free_rec(ejob_t *ej)
{
    if (eng_frozen(ej))
        free(ej->rec.frozen);
    else
        job_free(ej->rec.job);
    ej->rec.job = NULL;
    ej->frozen_len = 0;
}

void eng_freeze(engine_t *e, ejob_t *ej)
{
    if (eng_frozen(ej) || !waiting(ej->rec.job->state))
        return;
    job_t *j = ej->rec.job;
    e->pack.len = 0;
    job_pack(j, &e->pack);
    size_t idn = strlen(j->id) + 1;
    char *b = malloc(idn + e->pack.len);
    if (!b)
        return; /* it stays thawed: bigger, but right */
    memcpy(b, j->id, idn);
    memcpy(b + idn, e->pack.p, e->pack.len);
    ej->rec.frozen = b;
    ej->frozen_len = (uint32_t)e->pack.len;
    job_free(j);
    eng_account(e, ej);
}

job_t *eng_unpack(const ejob_t *ej)
{
    const char *id = ej->rec.frozen;
    job_t *j;
    problem_t p;
    /* Our own bytes, from this process's memory: only a lack of memory
     * can make them fail. */
    if (job_unpack(id + strlen(id) + 1, ej->frozen_len, id, ej->queue->name,
                   ej->lane->type->name, &j, &p) != ERR_OK)
        return NULL;
    return j;
}

job_t *eng_job(engine_t *e, ejob_t *ej)
{
    if (!eng_frozen(ej))
        return ej->rec.job;
    job_t *j = eng_unpack(ej);
    if (!j)
        return NULL;
    free(ej->rec.frozen);
    ej->rec.job = j;
    ej->frozen_len = 0;
    eng_account(e, ej);
    return j;
}

void eng_lend(engine_t *e, ejob_t *ej)
{
    if (e->lent != ej)
        eng_unlend(e);
    e->lent = ej;
}

void eng_unlend(engine_t *e)
{
    ejob_t *ej = e->lent;
    e->lent = NULL;
    if (ej)
        eng_freeze(e, ej);
}
