/*
 * Carrying running jobs past a compaction (writer.c). A job enqueued and
 * leased shortly before a timed compaction usually finishes shortly after
 * it; applied now, it costs a row insert now and a row update at the next
 * compaction, where waiting would cost the one insert of its final state.
 * So a timed compaction leaves out the writes of each job whose enqueue
 * is among them and that is running, up to CARRY_MAX times, and journals
 * the job's last write again in the generation that follows: once the
 * database records the closed generation as applied, replay no longer
 * reads it, and the copy is what keeps the job. A job still waiting is
 * not carried: in a backlog it may wait long, and a copy at every
 * compaction would cost more than its row. Any other compaction (a read
 * waiting for the database, a size bound, a purge, a stop) applies
 * everything.
 */
#include "store/store_internal.h"

#include "core/job.h"
#include "util/check.h"

/* The job's last write handed over, if it is in first..upto: no later
 * write of it waits to be journaled. NULL otherwise. Called with mu. */
static op_t *last_write(store_t *s, op_t *of, const char *id, uint64_t upto)
{
    op_t *op = hmap_get_h(&s->pending_ids, id, store_op_hash(of, id));
    return op && op->seq <= upto ? op : NULL;
}

static bool running(const op_t *op)
{
    job_state_t st;
    return op->kind == OP_PUT && job_state_parse(op->row.state, &st) == 0 && st == JOB_RUNNING;
}

/* Marks the last write of each job to carry (op->carry). */
static size_t mark(store_t *s, op_t *first, uint64_t upto)
{
    size_t n = 0;
    for (op_t *op = first; op; op = op->next) {
        if (op->kind != OP_PUT || op->ev != JOB_EV_ENQUEUED || op->carries >= CARRY_MAX)
            continue;
        op_t *last = last_write(s, op, op->row.id, upto);
        if (!last || !running(last) || last->carry)
            continue;
        last->carry = true;
        op->carries++;
        n++;
    }
    return n;
}

/* Undoes mark() after a journal record could not be built. */
static void unmark(store_t *s, op_t *first, uint64_t upto)
{
    for (op_t *op = first; op; op = op->next) {
        if (op->kind != OP_PUT || op->ev != JOB_EV_ENQUEUED)
            continue;
        op_t *last = last_write(s, op, op->row.id, upto);
        if (last && last->carry) { /* mark() counted it on this, the job's first enqueue */
            last->carry = false;
            op->carries--;
        }
    }
}

/* The carried jobs' last writes into the journal's batch. */
static int journal_marked(store_t *s, op_t *first)
{
    for (op_t *op = first; op; op = op->next)
        if (op->carry && store_record_write(s->journal, op) != 0) {
            journal_discard(s->journal);
            return -1;
        }
    return 0;
}

/* Moves every write of a marked job from the list to the carried one,
 * keeping the order of both. */
static void split(store_t *s, op_t **first, op_t **last, op_t **carried, op_t **carried_last,
                  uint64_t upto)
{
    op_t *keep = NULL, *keep_last = NULL;
    *carried = *carried_last = NULL;
    for (op_t *op = *first, *next; op; op = next) {
        next = op->next;
        op->next = NULL;
        const char *id = store_op_id(op);
        op_t *lw = id ? last_write(s, op, id, upto) : NULL;
        bool carry = lw && lw->carry;
        if (carry)
            store_ops_append(carried, carried_last, op, op);
        else
            store_ops_append(&keep, &keep_last, op, op);
    }
    for (op_t *op = *carried; op; op = op->next)
        op->carry = false;
    *first = keep;
    *last = keep_last;
}

size_t store_carry(store_t *s, op_t **first, op_t **last, op_t **carried, op_t **carried_last)
{
    *carried = *carried_last = NULL;
    if (!*first || !s->journal || s->index_gap_seq > s->applied)
        return 0; /* the index may miss a later write of some job */
    uint64_t upto = (*last)->seq;
    size_t n = mark(s, *first, upto);
    if (!n)
        return 0;
    if (journal_marked(s, *first) != 0) {
        unmark(s, *first, upto);
        return 0;
    }
    split(s, first, last, carried, carried_last, upto);
    CHECK(*carried != NULL);
    return n;
}
