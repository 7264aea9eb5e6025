/* Frozen jobs. A job waiting its turn is kept as its packed bytes instead
 * of a job_t: for a 100-byte job ~180 bytes instead of ~550, which is most
 * of what a deep queue costs (docs/performance.md). Ordering needs none of
 * the bytes: the lane holds queue, type, key and priority, and seq the
 * FIFO order. Whatever reads or changes a job thaws it first (eng_job()).
 *
 * A job just used (enqueued, read, retried, loaded) is parked instead of
 * frozen at once: the ring of the last thawed_max such jobs freezes its
 * oldest to make room. Most jobs are leased within a few calls of their
 * enqueue, and never pay for a pack and an unpack; a deep queue freezes
 * all but the last few hundred. A parked job freezes only in a later call
 * than the one that handed it out, which keeps the engine's pointer rule
 * (engine.h: a returned job lives until the next engine call). Jobs that
 * are running or finished never freeze: they are few and are read and
 * changed all the time.
 *
 * Past the resident budget a queued job freezes into the spill hooks
 * instead (the server's spill file): its record keeps only the offset and
 * the id, ~130 bytes a job with the table. Reading it back is one read of
 * a page the kernel most likely still caches; the CRC that job_unpack()
 * checks covers the trip. A read that fails is handled as a lack of
 * memory is: the job stays where it is, frozen. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static bool waiting(job_state_t s)
{
    return s == JOB_PENDING || s == JOB_QUEUED || s == JOB_RETRYING;
}

static int64_t spill_off(const ejob_t *ej)
{
    int64_t off;
    memcpy(&off, ej->rec.frozen, sizeof off);
    return off;
}

/* A frozen job's packed bytes: in its record, or read from the spill tier
 * into e->pack. NULL if that read fails. */
static const char *packed(engine_t *e, const ejob_t *ej)
{
    if (!ej->spilled)
        return ej->rec.frozen + strlen(ej->rec.frozen) + 1;
    e->pack.len = 0;
    if (e->pack.cap < ej->frozen_len + 1)
        sbuf_grow(&e->pack, ej->frozen_len);
    if (e->h.spill_read(e->h.ud, spill_off(ej), e->pack.p, ej->frozen_len) != 0)
        return NULL;
    return e->pack.p;
}

job_state_t eng_state(const ejob_t *ej)
{
    if (!eng_frozen(ej))
        return ej->rec.job->state;
    if (ej->spilled)
        return JOB_QUEUED;
    return job_packed_state(ej->rec.frozen + strlen(ej->rec.frozen) + 1);
}

int64_t eng_run_at(engine_t *e, const ejob_t *ej)
{
    if (!eng_frozen(ej))
        return ej->rec.job->run_at;
    const char *b = packed(e, ej);
    return b ? job_packed_run_at(b, ej->frozen_len) : 0;
}

/* Forgets a frozen record's bytes, wherever they are. */
static void drop_frozen(engine_t *e, ejob_t *ej)
{
    if (ej->spilled) {
        e->h.spill_free(e->h.ud, spill_off(ej), ej->frozen_len);
        e->nspilled--;
    } else {
        e->resident_bytes -= (int64_t)(strlen(ej->rec.frozen) + 1 + ej->frozen_len);
    }
    free(ej->rec.frozen);
    ej->spilled = 0;
    ej->frozen_len = 0;
}

void eng_free_rec(engine_t *e, ejob_t *ej)
{
    if (eng_frozen(ej))
        drop_frozen(e, ej);
    else
        job_free(ej->rec.job);
    ej->rec.job = NULL;
}

/* Spills the packed bytes in e->pack if the budget says so: the record
 * then keeps the offset and the id. NULL: keep them in memory. */
static char *try_spill(engine_t *e, const job_t *j, size_t idn)
{
    if (!e->h.spill_write || e->opt.resident_budget_bytes <= 0 || j->state != JOB_QUEUED ||
        e->resident_bytes + (int64_t)(idn + e->pack.len) <= e->opt.resident_budget_bytes)
        return NULL;
    char *b = malloc(ENG_SPILL_HEAD + idn);
    if (!b)
        return NULL;
    int64_t off = e->h.spill_write(e->h.ud, e->pack.p, e->pack.len);
    if (off < 0) {
        free(b);
        return NULL;
    }
    memcpy(b, &off, sizeof off);
    memcpy(b + ENG_SPILL_HEAD, j->id, idn);
    return b;
}

void eng_freeze(engine_t *e, ejob_t *ej)
{
    if (eng_frozen(ej) || !waiting(ej->rec.job->state))
        return;
    job_t *j = ej->rec.job;
    e->pack.len = 0;
    job_pack(j, &e->pack);
    size_t idn = strlen(j->id) + 1;
    char *b = try_spill(e, j, idn);
    if (b) {
        ej->spilled = 1;
        e->nspilled++;
    } else if ((b = malloc(idn + e->pack.len))) {
        memcpy(b, j->id, idn);
        memcpy(b + idn, e->pack.p, e->pack.len);
        e->resident_bytes += (int64_t)(idn + e->pack.len);
    } else {
        return; /* it stays thawed: bigger, but right */
    }
    ej->rec.frozen = b;
    ej->frozen_len = (uint32_t)e->pack.len;
    job_free(j);
    eng_account(e, ej);
}

job_t *eng_unpack(engine_t *e, const ejob_t *ej)
{
    const char *b = packed(e, ej);
    job_t *j;
    problem_t p;
    /* Our own bytes, from memory or our own spill file: only a lack of
     * memory or a failed read can make them fail. */
    if (!b || job_unpack(b, ej->frozen_len, eng_id(ej), ej->queue->name, ej->lane->type->name,
                         &j, &p) != ERR_OK)
        return NULL;
    return j;
}

err_t eng_thaw_problem(problem_t *p, const char *id)
{
    return problem_set(p, ERR_UNAVAILABLE, "", "job %s cannot be read back into memory now", id);
}

job_t *eng_job(engine_t *e, ejob_t *ej)
{
    if (!eng_frozen(ej))
        return ej->rec.job;
    job_t *j = eng_unpack(e, ej);
    if (!j)
        return NULL;
    drop_frozen(e, ej);
    ej->rec.job = j;
    eng_account(e, ej);
    return j;
}

/* Freezes the job parked longest (or skips its slot, if it was dropped). */
static void freeze_oldest(engine_t *e)
{
    ejob_t *old = e->parked.v[e->parked.head];
    e->parked.head = (e->parked.head + 1) % e->parked.cap;
    e->parked.n--;
    if (old) {
        old->parked = 0;
        eng_freeze(e, old);
    }
}

void eng_park(engine_t *e, ejob_t *ej)
{
    if (ej->parked || !e->parked.cap)
        return;
    if (e->parked.n == e->parked.cap)
        freeze_oldest(e);
    e->parked.v[(e->parked.head + e->parked.n++) % e->parked.cap] = ej;
    ej->parked = 1;
}

void eng_unpark(engine_t *e, ejob_t *ej)
{
    if (!ej->parked)
        return;
    ej->parked = 0;
    for (size_t i = 0; i < e->parked.n; i++) { /* rare: a job dropped soon after its use */
        size_t at = (e->parked.head + i) % e->parked.cap;
        if (e->parked.v[at] == ej)
            e->parked.v[at] = NULL;
    }
}

void engine_freeze_idle(engine_t *e)
{
    ENG_ENTER(e);
    while (e->parked.n)
        freeze_oldest(e);
}

void engine_set_resident_budget(engine_t *e, int64_t bytes)
{
    ENG_ENTER(e);
    e->opt.resident_budget_bytes = bytes;
}

size_t engine_spilled_count(const engine_t *e) { return e->nspilled; }
