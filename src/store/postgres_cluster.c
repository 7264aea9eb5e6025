/* Cluster mode's statements for the PostgreSQL backend (backend.h: node_beat
 * and claim): the nodes' rows, the sweep of the dead, and claims. Every
 * expiry is judged by the database's clock: nodes' clocks may differ. */
#include <stdio.h>
#include <string.h>


#include "store/postgres_internal.h"
#include "util/sbuf.h"

static int id_row(const PGresult *r, int row, void *ud)
{
    *(int64_t *)ud = pg_int8_at(r, row, 0);
    return 0;
}

#define PG_DEAD "SELECT id FROM nodes WHERE expires_at < now()"

typedef struct beat_row {
    bool *breakers;
    store_beat_t *beat;
} beat_row_t;

static int beat_row(const PGresult *r, int row, void *ud)
{
    beat_row_t *b = ud;
    *b->breakers = PQgetvalue(r, row, 0)[0] != 0;
    int64_t n = pg_int8_at(r, row, 1);
    b->beat->nodes = n > 0 && n < INT32_MAX ? (int)n : 1;
    return 0;
}

int pg_node_beat(void *conn, store_beat_t *beat, bool *breakers, backend_doc_cb adopted,
                 void *ud)
{
    bool *lost = &beat->lost;
    int64_t *node = &beat->node;
    pg_t *c = conn;
    char ttl[24], me[24];
    snprintf(ttl, sizeof ttl, "%lld", (long long)c->ttl_ms);
    snprintf(me, sizeof me, "%lld", (long long)c->node);
    const char *renew[2] = { me, ttl }, *reg[2] = { c->node_name, ttl };
    static const Oid t_renew[2] = { 20, 20 }, t_reg[2] = { 25, 20 };
    int64_t got = 0;
    *lost = false;
    if (c->node && pg_each_row(c, NULL, "UPDATE nodes SET expires_at = now() + $2 * interval '1 ms'"
                            " WHERE id=$1 AND expires_at > now() RETURNING id",
                            2, t_renew, renew, id_row, &got) != 0)
        return -1;
    if (!got) {
        *lost = c->node != 0;
        if (pg_each_row(c, NULL, "INSERT INTO nodes(name, expires_at) VALUES($1, now() + $2 *"
                     " interval '1 ms') RETURNING id", 2, t_reg, reg, id_row, &got) != 0)
            return -1;
        c->node = got;
        snprintf(me, sizeof me, "%lld", (long long)c->node);
    }
    *node = c->node;
    *breakers = false;
    beat->nodes = 1;
    beat_row_t br = { breakers, beat };
    if (pg_each_row(c, NULL, "SELECT EXISTS (SELECT 1 FROM breakers), (SELECT count(*) FROM"
                    " nodes WHERE expires_at > now())", 0, NULL, NULL, beat_row, &br) != 0)
        return -1;
    /* The probes of half-open breakers this node still holds the job of
     * live on; one whose job it gave back lapses at its probe_until. */
    if (pg_each_row(c, NULL, "UPDATE breakers SET probe_until = now() + $2 * interval '1 ms'"
                    " WHERE probe_node = $1 AND EXISTS (SELECT 1 FROM jobs WHERE"
                    " id = breakers.probe_job AND owner = $1) RETURNING probe_node",
                    2, t_renew, renew, id_row, &(int64_t){ 0 }) != 0)
        return -1;
    /* The dead: claims not yet leased go back to the queue; running jobs
     * come here under new tokens, and this node's engine ends their
     * attempts at once; then their rows go (a node that comes back finds
     * its row gone: lost). Two nodes sweeping at once wait on the rows'
     * locks, and the second finds nothing left to take. */
    const char *mine[1] = { me };
    static const Oid t_me[1] = { 20 };
    doc_call_t d = { adopted, ud };
    if (pg_exec(c, "UPDATE jobs SET owner = NULL WHERE owner IN (" PG_DEAD ") AND state <> 'running'")
        || pg_each_row(c, NULL, "UPDATE jobs SET owner = $1, token = nextval('job_tokens')"
                    " WHERE owner IN (" PG_DEAD ") AND state = 'running'"
                    " RETURNING " PG_DOC("jobs.") ", created_at, id, queue, type, token",
                    1, t_me, mine, pg_doc_row, &d) != 0)
        return -1;
    return pg_exec(c, "DELETE FROM nodes WHERE expires_at < now() AND NOT EXISTS"
                   " (SELECT 1 FROM jobs WHERE owner = nodes.id)");
}

int pg_node_leave(void *conn)
{
    pg_t *c = conn;
    if (!c->node)
        return 0;
    char me[24];
    snprintf(me, sizeof me, "%lld", (long long)c->node);
    const char *vals[1] = { me };
    static const Oid types[1] = { 20 };
    c->node = 0;
    return pg_each_row(c, NULL, "UPDATE nodes SET expires_at = now() - interval '1 ms'"
                       " WHERE id=$1 RETURNING id", 1, types, vals, id_row, &(int64_t){ 0 });
}

int pg_held(void *conn, const int64_t *tokens, int n, backend_doc_cb cb, void *ud)
{
    pg_t *c = conn;
    char me[24];
    snprintf(me, sizeof me, "%lld", (long long)c->node);
    sbuf_t arr;
    sbuf_init(&arr, (size_t)n * 12 + 8);
    sbuf_addc(&arr, '{');
    for (int i = 0; i < n; i++) {
        if (i)
            sbuf_addc(&arr, ',');
        sbuf_add_int(&arr, tokens[i]);
    }
    sbuf_addc(&arr, '}');
    const char *vals[2] = { me, arr.p };
    static const Oid types[2] = { 20, 25 };
    doc_call_t d = { cb, ud };
    int rc = pg_each_row(c, NULL, "SELECT " PG_DOC("jobs.") ", created_at, id, queue, type, token,"
                         " EXISTS"
                         " (SELECT 1 FROM breakers WHERE probe_job = jobs.id AND probe_node = $1)"
                         " FROM jobs WHERE owner = $1 AND token = ANY($2::bigint[])"
                         " ORDER BY priority, run_at, seq", 2, types, vals, pg_doc_row, &d);
    sbuf_free(&arr);
    return rc;
}

/* "{a,b}": queue names are [A-Za-z0-9._:-] (names.h), nothing to quote. */
static void queue_array(const backend_claim_t *q, sbuf_t *out)
{
    sbuf_addc(out, '{');
    for (int i = 0; i < q->nqueues; i++) {
        if (i)
            sbuf_addc(out, ',');
        sbuf_adds(out, q->queues[i]);
    }
    sbuf_addc(out, '}');
}

/* Of a breaker that is open, or half-open with its probe out. */
#define PASS_OPEN                                                                        \
    " AND NOT EXISTS (SELECT 1 FROM breakers b WHERE b.key = coalesce(jobs.bkey, jobs.type)" \
    " AND (b.probe_at > now() OR b.probe_until > now()))"

/* Type and key concurrency limits (q->limits): the room each has left in
 * the cluster, counted once a claim from the jobs the nodes hold, read
 * through jobs_owned by owner (`owner IS NOT NULL AND type = n` got a
 * generic plan made while the table was small: a scan of the whole table
 * at every claim, 67 -> 352 us a claim). A slice passes over the jobs of a
 * type or key with none left, so that they do not hide other jobs behind
 * them. */
#define LIMITS_CTE                                                                             \
    "WITH held AS MATERIALIZED (SELECT type, coalesce(bkey, type) AS bk FROM jobs WHERE"       \
    " owner = ANY (ARRAY(SELECT id FROM nodes))),"                                             \
    " lim AS MATERIALIZED (SELECT true AS t, n, c - (SELECT count(*) FROM held WHERE"          \
    " held.type = l.n) AS room FROM unnest($5::text[], $6::int[]) AS l(n, c) UNION ALL SELECT" \
    " false, n, c - (SELECT count(*) FROM held WHERE held.bk = l.n) FROM unnest($7::text[],"   \
    " $8::int[]) AS l(n, c))"
#define PASS_FULL                                                                             \
    " AND NOT EXISTS (SELECT 1 FROM lim WHERE room <= 0 AND n = CASE WHEN t THEN jobs.type"    \
    " ELSE coalesce(jobs.bkey, jobs.type) END)"

static bool limited(const backend_claim_t *q) { return q->limits.ntypes + q->limits.nkeys > 0; }

/* Every (queue, priority) slice of a claim, in one statement whatever
 * the number of queues: a LATERAL subquery run once per pair, each a range
 * of jobs_ready, due jobs only, at most max, locked as they are read
 * (FOR UPDATE, which a UNION does not allow). One CTE a slice, as before,
 * made a claim of 100 queues 500 of them: 12 ms a claim for the executor
 * to start and end, 250 ms to prepare, where the slices ran in 0.2 ms. */
static void claim_slices(sbuf_t *sql, const backend_claim_t *q)
{
    char part[1200];
    snprintf(part, sizeof part,
             "SELECT s.* FROM unnest($1::text[]) WITH ORDINALITY AS q(name, n)"
             " CROSS JOIN generate_series(0, %d) AS p(pr)"
             " CROSS JOIN LATERAL (SELECT id, p.pr AS priority, q.n::int AS qi, run_at, seq,"
             " type, coalesce(bkey, type) AS bk FROM jobs"
             " WHERE queue = q.name AND priority = p.pr AND owner IS NULL"
             " AND state IN ('queued','pending','retrying')"
             " AND run_at <= (extract(epoch FROM now()) * 1000)::bigint"
             " AND NOT EXISTS (SELECT 1 FROM queues WHERE name = q.name AND paused)"
             "%s%s ORDER BY run_at, seq LIMIT $2 FOR UPDATE OF jobs SKIP LOCKED) s",
             JOB_PRIORITIES - 1, q->breakers ? PASS_OPEN : "", limited(q) ? PASS_FULL : "");
    sbuf_adds(sql, part);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The advisory transaction locks of n names (sorted here, in place), each
 * in a statement of its own in the pipeline. */
static int lock_names(pg_t *c, const char *sql, const char **names, int n)
{
    static const Oid types[1] = { 25 };
    qsort(names, (size_t)n, sizeof names[0], by_name);
    for (int i = 0; i < n; i++)
        if (pg_pipe_exec(c, sql, 1, types, &names[i]) != 0)
            return -1;
    return 0;
}

/* A limited queue's claims take its advisory lock first, each in a
 * statement of its own: the claim's snapshot, taken after, then sees
 * every claim the lock's last holder committed (one taken inside the
 * claim would count from a snapshot older than the lock). In name order,
 * so that two claims of the same queues cannot deadlock; a holder stopped
 * mid-transaction is ended by idle_in_transaction_session_timeout. */
static int lock_capped(pg_t *c, const backend_claim_t *q, sbuf_t *caps)
{
    const char *names[BACKEND_CLAIM_QUEUES];
    int n = 0;
    sbuf_addc(caps, '{');
    for (int i = 0; i < q->nqueues; i++) {
        if (i)
            sbuf_addc(caps, ',');
        sbuf_add_int(caps, q->caps[i] > 0 ? q->caps[i] : 0);
        if (q->caps[i] > 0 && n < BACKEND_CLAIM_QUEUES)
            names[n++] = q->queues[i];
    }
    sbuf_addc(caps, '}');
    return lock_names(c, "SELECT pg_advisory_xact_lock(hashtextextended('jobq.cap:' || $1, 0))",
                      names, n);
}

/* The advisory locks of limited types and keys, after the queues' (every
 * claim takes them in the same order: no deadlock), each kind sorted. */
static int lock_limits(pg_t *c, const store_limits_t *l)
{
    const char *names[BACKEND_CLAIM_LIMITS];
    memcpy(names, l->names, (size_t)l->ntypes * sizeof names[0]);
    if (lock_names(c, "SELECT pg_advisory_xact_lock(hashtextextended('jobq.tcap:' || $1, 0))",
                   names, l->ntypes) != 0)
        return -1;
    memcpy(names, l->names + l->ntypes, (size_t)l->nkeys * sizeof names[0]);
    return lock_names(c, "SELECT pg_advisory_xact_lock(hashtextextended('jobq.kcap:' || $1, 0))",
                      names, l->nkeys);
}

/* "{a,b}" and "{1,2}": n of the names and caps from at. */
static void limit_arrays(const store_limits_t *l, int at, int n, sbuf_t *names, sbuf_t *caps)
{
    sbuf_addc(names, '{');
    sbuf_addc(caps, '{');
    for (int i = 0; i < n; i++) {
        if (i) {
            sbuf_addc(names, ',');
            sbuf_addc(caps, ',');
        }
        sbuf_adds(names, l->names[at + i]);
        sbuf_add_int(caps, l->caps[at + i]);
    }
    sbuf_addc(names, '}');
    sbuf_addc(caps, '}');
}

/* Of each limited type and key, only as many as it has room for. */
static void limits_filter(sbuf_t *all, const char *order)
{
    char head[400];
    snprintf(head, sizeof head,
             "SELECT * FROM (SELECT x.*, row_number() OVER (PARTITION BY x.type ORDER BY %s,"
             " run_at, seq) AS rt, row_number() OVER (PARTITION BY x.bk ORDER BY %s, run_at,"
             " seq) AS rk FROM (", order, order);
    sbuf_t out;
    sbuf_init(&out, all->len + 700);
    sbuf_adds(&out, head);
    sbuf_adds(&out, all->p);
    sbuf_adds(&out, ") x) z WHERE rt <= coalesce((SELECT room FROM lim WHERE t AND n = z.type),"
                    " 2147483647) AND rk <= coalesce((SELECT room FROM lim WHERE NOT t AND"
                    " n = z.bk), 2147483647)");
    sbuf_free(all);
    *all = out;
}

/* Of each limited queue, only as many as the cluster may still hold: its
 * cap less the jobs any node holds now (jobs_held). */
#define CAPPED_C                                                                              \
    "c AS (SELECT * FROM (SELECT x.*, row_number() OVER (PARTITION BY qi ORDER BY priority," \
    " run_at, seq) AS rn FROM (%s) x) y WHERE ($4::int[])[qi] <= 0 OR rn <= ($4::int[])[qi] -" \
    " (SELECT count(*) FROM jobs h WHERE h.queue = ($1::text[])[y.qi] AND h.owner IS NOT NULL)" \
    " ORDER BY %s, run_at, seq LIMIT $2),"

/* The claim's writes: the jobs become this node's (while its row lives)
 * and, where a breaker is half-open, its probe with the one job of it the
 * claim may take (the rest of c's jobs of a breaker not closed stay). */
static void claim_tail(sbuf_t *sql, const char *order, bool breakers, int64_t ttl_ms)
{
    char tail[1800];
    if (!breakers) /* no breaker is open: no probe to take either */
        snprintf(tail, sizeof tail,
                 " u AS (UPDATE jobs j SET owner = $3, token = nextval('job_tokens') FROM c"
                 " WHERE j.id = c.id AND EXISTS (SELECT 1 FROM nodes WHERE id = $3 AND"
                 " expires_at > now())"
                 " RETURNING " PG_DOC("j.") " AS doc, j.created_at, j.id, j.queue, j.type,"
                 " j.token, c.priority,"
                 " c.qi, c.run_at, c.seq)"
                 " SELECT doc, created_at, id, queue, type, token FROM u ORDER BY %s, run_at, seq",
                 order);
    else
        snprintf(tail, sizeof tail,
                 " pc AS (SELECT DISTINCT ON (bk) id, bk FROM c WHERE EXISTS (SELECT 1 FROM"
                 " breakers b WHERE b.key = c.bk) ORDER BY bk, %s, run_at, seq),"
                 " p AS (UPDATE breakers b SET probe_node = $3, probe_job = pc.id, probe_until ="
                 " now() + interval '%lld ms' FROM pc WHERE b.key = pc.bk AND b.probe_at <= now()"
                 " AND (b.probe_until IS NULL OR b.probe_until <= now()) RETURNING pc.id),"
                 " u AS (UPDATE jobs j SET owner = $3, token = nextval('job_tokens') FROM c"
                 " WHERE j.id = c.id AND EXISTS (SELECT 1 FROM nodes WHERE id = $3 AND"
                 " expires_at > now()) AND (c.id IN (SELECT id FROM p) OR NOT EXISTS (SELECT 1"
                 " FROM breakers b WHERE b.key = c.bk))"
                 " RETURNING " PG_DOC("j.") " AS doc, j.created_at, j.id, j.queue, j.type,"
                 " j.token, c.priority,"
                 " c.qi, c.run_at, c.seq)"
                 " SELECT u.doc, u.created_at, u.id, u.queue, u.type, u.token, p.id IS NOT NULL"
                 " FROM u LEFT JOIN p ON p.id = u.id ORDER BY %s, run_at, seq",
                 order, (long long)ttl_ms, order);
    sbuf_adds(sql, tail);
}

/* HTTP: priority first, ties to the queue listed first; FWP: the queues in
 * order, priority within each. Then readiness, then arrival. A slice passes
 * over the jobs of a breaker that is open, or half-open with its probe
 * out; of one half-open with none out, the first job is the probe, which
 * the claim takes only if it also takes the probe (the breaker row's lock
 * decides between two claims at once: the second sees the first's
 * probe_until when it rechecks the row). Every slice (claim_slices)
 * is an index range (jobs_ready is (queue, priority, run_at, seq) over
 * free waiting jobs), so a claim reads at most max rows a slice however
 * many jobs wait, and never scans scheduled ones not yet due. A slice's
 * rows not taken stay locked until the transaction ends (moments): other
 * nodes' claims skip them meanwhile. */
/* A claim's statement text, for its shape's first run on a session (it is
 * prepared then, and known by its name after that). */
static char *claim_sql(const pg_t *c, const backend_claim_t *q, const char *order)
{
    sbuf_t sql;
    sbuf_init(&sql, 4096);
    sbuf_adds(&sql, limited(q) ? LIMITS_CTE ", " : "WITH ");
    sbuf_t all;
    sbuf_init(&all, 2048);
    claim_slices(&all, q);
    if (limited(q))
        limits_filter(&all, order);
    if (q->caps) {
        char *capped = malloc(strlen(CAPPED_C) + all.len + 32);
        if (!capped)
            abort(); /* as store_new_op: the write path cannot report it */
        sprintf(capped, CAPPED_C, all.p, order);
        sbuf_adds(&sql, capped);
        free(capped);
    } else {
        sbuf_adds(&sql, "c AS (SELECT * FROM (");
        sbuf_adds(&sql, all.p);
        char plain[80];
        snprintf(plain, sizeof plain, ") x ORDER BY %s, run_at, seq LIMIT $2),", order);
        sbuf_adds(&sql, plain);
    }
    sbuf_free(&all);
    claim_tail(&sql, order, q->breakers, c->ttl_ms);
    return sbuf_take(&sql);
}

int pg_claim(void *conn, const backend_claim_t *q, backend_doc_cb cb, void *ud)
{
    pg_t *c = conn;
    if (pg_dupes_check(c) != 0) /* before this claim can take a job it must undo */
        return -1;
    char max[16], me[24];
    sbuf_t queues, caps;
    sbuf_init(&queues, 256);
    sbuf_init(&caps, 64);
    queue_array(q, &queues);
    if ((q->caps && lock_capped(c, q, &caps) != 0) ||
        (limited(q) && lock_limits(c, &q->limits) != 0)) {
        sbuf_free(&queues);
        sbuf_free(&caps);
        return -1;
    }
    if (!q->caps)
        sbuf_adds(&caps, "{}");
    snprintf(max, sizeof max, "%d", q->max);
    snprintf(me, sizeof me, "%lld", (long long)c->node);
    const char *order = q->queue_order ? "qi, priority" : "priority, qi";
    char name[32];
    snprintf(name, sizeof name, "claim_%c%s%s%s", q->queue_order ? 'q' : 'p',
             q->caps ? "c" : "", q->breakers ? "b" : "", limited(q) ? "l" : "");
    char *sql = pg_extra_known(c, name) ? NULL : claim_sql(c, q, order);
    sbuf_t tn, tc, kn, kc;
    sbuf_init(&tn, 256);
    sbuf_init(&tc, 64);
    sbuf_init(&kn, 256);
    sbuf_init(&kc, 64);
    limit_arrays(&q->limits, 0, q->limits.ntypes, &tn, &tc);
    limit_arrays(&q->limits, q->limits.ntypes, q->limits.nkeys, &kn, &kc);
    const char *vals[8] = { queues.p, max, me, caps.p, tn.p, tc.p, kn.p, kc.p };
    static const Oid types[8] = { 25, 23, 20, 25, 25, 25, 25, 25 };
    int n = limited(q) ? 8 : q->caps ? 4 : 3;
    int rc = pg_pipe_rows(c, name, sql, n, types, vals, (doc_call_t){ cb, ud });
    free(sql);
    sbuf_free(&queues);
    sbuf_free(&caps);
    sbuf_free(&tn);
    sbuf_free(&tc);
    sbuf_free(&kn);
    sbuf_free(&kc);
    return rc;
}
