/*
 * The PostgreSQL backend's prepared statements (postgres_internal.h:
 * pg_statements): the writer's, and the lookup by id every session
 * prepares. Alone, a jobq writes a job's row as it is (put); in cluster
 * mode every write is conditioned on the node's claim or on the token an
 * operator's read saw (postgres_write.c: cluster_put), and a finished job moves
 * between the hot table and history (migration 5).
 */
#include "store/postgres_internal.h"
/* A row moved to history (schema version 5) from a deleted one, `d`,
 * with the write's state ($2), priority, times, doc and args_at ($3-$6,
 * $9). Its payload, if apart, stays where it is (migration 8). */
#define PG_TO_HISTORY(d)                                                                    \
    "INSERT INTO history(id,queue,type,state,priority,created_at,updated_at,run_at,doc,bkey,"  \
    "token,origin,failed,args_at) SELECT id,queue,type,$2,$3,created_at,$4,$5,$6,bkey,"        \
    "token,origin,$2='failed',$9 FROM " d " RETURNING tableoid,queue,state"
/* ... and back to jobs (an operator's retry of a finished job): a new
 * arrival (seq), free; a row there already (an enqueue of the same id
 * that slipped in) keeps it, and the write is refused. */
#define PG_FROM_HISTORY(d)                                                                   \
    "INSERT INTO jobs(id,queue,type,state,priority,created_at,updated_at,run_at,doc,bkey,token," \
    "origin,args_at) SELECT id,queue,type,$2,$3,created_at,$4,$5,$6,bkey,token,origin,$9"        \
    " FROM " d " ON CONFLICT (id) DO NOTHING RETURNING 1"
#define PG_MOVED "RETURNING id,queue,type,created_at,bkey,token,origin,tableoid,state"
/* A change's args_at ($9 after its eight parameters). */
#define PG_SET_AT ", args_at=$9"
#define PG_CHANGE_TYPES { 25, 25, 23, 20, 20, 17, 20, 20, 23 }
#define PG_CHANGE_BIN (1u << 5)
const pg_statement_t pg_statements[P_COUNT_] = {
#define PG_PUT_SET                                                                          \
    " DO UPDATE SET state=excluded.state, priority=excluded.priority,"                      \
    " updated_at=excluded.updated_at, run_at=excluded.run_at, doc=excluded.doc,"            \
    " args_at=excluded.args_at"
#define PG_PUT_TYPES { 25, 25, 25, 25, 23, 20, 20, 20, 17, 25, 23 }
    [P_PUT] = { "put", "INSERT INTO jobs(id,queue,type,state,priority,created_at,updated_at,"
                       "run_at,doc,bkey,args_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
                       " ON CONFLICT (id)" PG_PUT_SET,
                11, PG_PUT_TYPES, 1u << 8 },
    /* A job alone's write whose row may be in history (its last known
     * state finished, or unknown): its row there goes. */
    [P_PUT_ANY] = { "put_any", "WITH h AS (DELETE FROM history WHERE id=$1 " PG_GONE "), k AS ("
                               PG_COUNT(PG_OUT("h")) ") INSERT INTO jobs(id,"
                               "queue,type,state,priority,created_at,updated_at,run_at,doc,bkey,"
                               "args_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
                               " ON CONFLICT (id)" PG_PUT_SET,
                    11, PG_PUT_TYPES, 1u << 8 },
    /* A job alone that finishes moves to history, as in a cluster (so
     * jobs holds the live jobs, history's partitions go whole and
     * statistics count the live rows, migration 7). Its row is in jobs or
     * nowhere yet (enqueued and finished in one batch); run again, or
     * with its last known state finished or unknown, its own row may
     * already be in history, which goes first: history has no key to
     * conflict on. */
#define PG_INTO_HISTORY                                                                       \
    "i AS (INSERT INTO history(id,queue,type,state,priority,created_at,updated_at,run_at,doc,"  \
    "bkey,token,failed,args_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,0,$4='failed',$11)"     \
    " RETURNING tableoid,queue,state)"
    [P_PUT_DONE] = { "put_done", "WITH d AS (DELETE FROM jobs WHERE id=$1), " PG_INTO_HISTORY
                                 ", k AS (" PG_COUNTED("i") ") SELECT 1 FROM i",
                     11, PG_PUT_TYPES, 1u << 8 },
    [P_PUT_DONE_ANY] = { "put_done_any", "WITH h AS (DELETE FROM history WHERE id=$1 " PG_GONE
                                         "), d AS (DELETE FROM jobs WHERE id=$1), "
                                         PG_INTO_HISTORY ", k AS (" PG_COUNT(PG_OUT("h")
                                         " UNION ALL " PG_IN("i")) ") SELECT 1 FROM i",
                         11, PG_PUT_TYPES, 1u << 8 },
    /* Retention's, of a row of jobs it read; an operator's (any) finds
     * the job where it is. A job deleted takes its payload along. */
#define PG_JOB_GONE "RETURNING id,origin,args_at"
    [P_DELETE] = { "delete", "WITH d AS (DELETE FROM jobs WHERE id=$1 " PG_JOB_GONE ") "
                             PG_PAYLOADS_GONE("SELECT * FROM d"), 1, { 25 }, 0 },
    [P_DELETE_ANY] = { "delete_any", "WITH h AS (DELETE FROM history WHERE id=$1 " PG_GONE
                                     "), k AS (" PG_COUNT(PG_OUT("h")) "), d AS (DELETE FROM"
                                     " jobs WHERE id=$1 " PG_JOB_GONE ") " PG_PAYLOADS_GONE(
                                     "SELECT id,origin,args_at FROM h UNION ALL SELECT * FROM d"),
                       1, { 25 }, 0 },
    [P_QUEUE] = { "queue", "INSERT INTO queues(name,paused) VALUES($1,$2)"
                           " ON CONFLICT (name) DO UPDATE SET paused=excluded.paused",
                  2, { 25, 16 }, 0 },
    [P_COUNTER] = { "counter", "INSERT INTO counters(name,value) VALUES($1,$2)"
                               " ON CONFLICT (name) DO UPDATE SET value=counters.value+excluded.value",
                    2, { 25, 20 }, 0 },
    /* Cluster mode (cluster_put()): an enqueue creates its job or finds
     * it there; the holder of a claim changes its job only under the
     * claim's token while its node's row lives, and gives the job back
     * (owner NULL) when it stops running; a job no node holds changes only
     * while none does. A transaction retried after a COMMIT whose outcome
     * was lost with its session must find its own writes acceptable
     * again: the same insert (its origin, drawn per insert), or a
     * holder's write after its give-back (owner NULL, but the token still
     * its claim's, since every claim draws a new one). */
#define PG_ENQUEUE(values)                                                                 \
    "INSERT INTO jobs(id,queue,type,state,priority,created_at,updated_at,run_at,doc,bkey,"  \
    "origin,args_at) " values " ON CONFLICT (id) DO UPDATE SET id=excluded.id"              \
    " WHERE jobs.origin=excluded.origin"
#define PG_ENQUEUE_TYPES { 25, 25, 25, 25, 23, 20, 20, 20, 17, 25, 20, 23 }
#define PG_ENQUEUE_BIN (1u << 8)
    [P_INSERT] = { "insert", PG_ENQUEUE("VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"),
                   12, PG_ENQUEUE_TYPES, PG_ENQUEUE_BIN },
    /* The same, in a transaction run again: its first run may have
     * committed, and the job finished since (moved to history, where a
     * plain insert would not look, and would make it anew). The insert's
     * own row, found in either table by its origin, says so: one
     * statement's snapshot sees a job's move to history whole, before or
     * after. A check that history has no row would not do: a move in
     * flight is not in it yet, and the insert, waiting for the moving
     * delete, then goes ahead (the lost-commit cluster test ran a job
     * twice in one run of ten). */
    [P_INSERT_AGAIN] = { "insert_again", "WITH mine AS (SELECT 1 FROM jobs WHERE id=$1 AND"
                                         " origin=$11 UNION ALL SELECT 1 FROM history WHERE"
                                         " id=$1 AND origin=$11), i AS ("
                                         PG_ENQUEUE("SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,"
                                                    "$12 WHERE NOT EXISTS (SELECT 1 FROM mine)")
                                         " RETURNING 1) SELECT 1 FROM i UNION ALL"
                                         " SELECT 1 FROM mine LIMIT 1",
                         12, PG_ENQUEUE_TYPES, PG_ENQUEUE_BIN },
    /* The last clause: the row is already this very write, given back
     * (a retried batch whose first COMMIT landed): accepted even if the
     * node's row expired meanwhile (an outage longer than the TTL), since
     * it overwrites nothing; refusing it would answer 409 to a completion
     * that took effect. */
    [P_FENCED] = { "fenced", "UPDATE jobs SET state=$2, priority=$3, updated_at=$4, run_at=$5,"
                             " doc=$6, owner=CASE WHEN $2='running' THEN owner END"
                             PG_SET_AT
                             " WHERE id=$1 AND token=$7 AND ((owner=$8 OR owner IS NULL) AND"
                             " EXISTS (SELECT 1 FROM nodes WHERE id=$8 AND expires_at > now())"
                             " OR (owner IS NULL AND state=$2 AND doc=$6))",
                   9, PG_CHANGE_TYPES, PG_CHANGE_BIN },
    /* The holder's last write, as a job finishes: moved to history under
     * the same conditions; run again (its first run may have committed),
     * it finds its row there as it wrote it. Only then does it look in
     * history: a statement that reads a partitioned table locks every
     * partition at each run (a generic plan), which the first runs,
     * nearly all of them, do without. */
#define PG_FENCED_DONE                                                                          \
    "WITH d AS (DELETE FROM jobs WHERE id=$1 AND token=$7 AND ((owner=$8 OR owner IS NULL) AND" \
    " EXISTS (SELECT 1 FROM nodes WHERE id=$8 AND expires_at > now()) OR (owner IS NULL AND"    \
    " state=$2 AND doc=$6)) " PG_MOVED "), i AS (" PG_TO_HISTORY("d") "),"                    \
    " k AS (" PG_COUNTED("i") ") SELECT 1 FROM i"
    [P_FENCED_DONE] = { "fenced_done", PG_FENCED_DONE, 9, PG_CHANGE_TYPES, PG_CHANGE_BIN },
    [P_FENCED_DONE_AGAIN] = { "fenced_done_again", PG_FENCED_DONE " UNION ALL SELECT 1 FROM"
                                                   " history WHERE id=$1 AND token=$7 AND"
                                                   " state=$2 AND doc=$6 AND NOT EXISTS"
                                                   " (SELECT 1 FROM d)",
                              9, PG_CHANGE_TYPES, PG_CHANGE_BIN },
    [P_FREE_PUT] = { "free_put", "UPDATE jobs SET state=$2, priority=$3, updated_at=$4,"
                                 " run_at=$5, doc=$6" PG_SET_AT " WHERE id=$1 AND"
                                 " owner IS NULL AND ($7 = -2 OR token = $7)",
                     9, PG_CHANGE_TYPES, PG_CHANGE_BIN },
    /* An operator's change of a free job that finished or finishes
     * ($8: the new state is a finished one): updated in the table it
     * belongs in, or moved there, under the same token condition. One row
     * at most: a job is in one table. A finished one changed is moved
     * within history (deleted and inserted, as PostgreSQL moves a row
     * whose updated_at puts it in another partition), so that the insert
     * is counted as the writer's others are. */
    [P_FREE_ANY] = { "free_any", "WITH uj AS (UPDATE jobs SET state=$2, priority=$3,"
                                 " updated_at=$4, run_at=$5, doc=$6" PG_SET_AT
                                 " WHERE id=$1 AND owner IS NULL"
                                 " AND ($7 = -2 OR token = $7) AND NOT $8 RETURNING 1),"
                                 " mj AS (DELETE FROM jobs WHERE id=$1 AND owner IS NULL AND"
                                 " ($7 = -2 OR token = $7) AND $8 " PG_MOVED "),"
                                 " ih AS (" PG_TO_HISTORY("mj") "),"
                                 " dh AS (DELETE FROM history WHERE id=$1 AND"
                                 " ($7 = -2 OR token = $7) AND $8 " PG_MOVED "),"
                                 " uh AS (" PG_TO_HISTORY("dh") "),"
                                 " mh AS (DELETE FROM history WHERE id=$1 AND"
                                 " ($7 = -2 OR token = $7) AND NOT $8 " PG_MOVED "),"
                                 " ij AS (" PG_FROM_HISTORY("mh") "),"
                                 " k AS (" PG_COUNT(PG_IN("ih") " UNION ALL " PG_IN("uh")
                                 " UNION ALL " PG_OUT("dh") " UNION ALL " PG_OUT("mh")) ")"
                                 " SELECT 1 FROM uj UNION ALL SELECT 1 FROM ih UNION ALL"
                                 " SELECT 1 FROM uh UNION ALL SELECT 1 FROM ij",
                     9, { 25, 25, 23, 20, 20, 17, 20, 16, 23 }, PG_CHANGE_BIN },
    [P_FREE_DELETE] = { "free_delete", "WITH d AS (DELETE FROM jobs WHERE id=$1 AND owner IS"
                                       " NULL " PG_JOB_GONE ") " PG_PAYLOADS_GONE("SELECT * FROM d"),
                        1, { 25 }, 0 },
    /* A delete that reports a refusal as a fenced write does, by a row
     * count of 0: one row when the job was deleted here, or is not there
     * at all (gone already: a retried batch's own delete, or another's);
     * none when it is there and held by a claim this one is not. */
    [P_HELD_DELETE] = { "held_delete", "WITH d AS (DELETE FROM jobs WHERE id=$1 AND"
                                       " (($2 = 0 AND owner IS NULL AND ($4 = -2 OR token=$4))"
                                       " OR ($2 <> 0 AND token=$2"
                                       " AND (owner=$3 OR owner IS NULL) AND EXISTS (SELECT 1"
                                       " FROM nodes WHERE id=$3 AND expires_at > now())))"
                                       " " PG_JOB_GONE "), h AS (DELETE FROM history WHERE id=$1"
                                       " AND $2 = 0 AND ($4 = -2 OR token=$4) " PG_GONE "),"
                                       " k AS (" PG_COUNT(PG_OUT("h")) "), g AS ("
                                       PG_PAYLOADS_GONE("SELECT * FROM d UNION ALL SELECT id,"
                                                        "origin,args_at FROM h") ")"
                                       " SELECT 1 WHERE EXISTS (SELECT 1 FROM d) OR EXISTS"
                                       " (SELECT 1 FROM h) OR NOT EXISTS (SELECT 1 FROM jobs_all"
                                       " WHERE id=$1)",
                        4, { 25, 20, 20, 20 }, 0 },
    /* A payload apart (PG_ARGS_APART) of a node alone (origin 0), with
     * every write of its job, as it wrote the args with the row before: a
     * new job's replaces what an operator's delete by hand left behind; a
     * later write's costs an index probe when it is there, and puts it
     * back under a row deleted by hand that the write then inserts again
     * (an upsert). */
    [P_PAYLOAD] = { "payload", "INSERT INTO payloads AS pay(id,origin,args) VALUES($1,$2,$3)"
                               " ON CONFLICT (id,origin) DO UPDATE SET args=excluded.args"
                               " WHERE pay.args IS DISTINCT FROM excluded.args",
                    3, { 25, 20, 17 }, 1u << 2 },
    [P_PAYLOAD_KEEP] = { "payload_keep", "INSERT INTO payloads(id,origin,args) VALUES($1,$2,$3)"
                                         " ON CONFLICT (id,origin) DO NOTHING",
                         3, { 25, 20, 17 }, 1u << 2 },
    /* Cluster mode, after the enqueue's insert: only under its own row (an
     * insert refused for another node's row of the id writes none). Run
     * again, it finds its payload there. */
    [P_PAYLOAD_MINE] = { "payload_mine", "INSERT INTO payloads(id,origin,args) SELECT $1,$2,$3"
                                         " WHERE EXISTS (SELECT 1 FROM jobs WHERE id=$1 AND"
                                         " origin=$2) ON CONFLICT (id,origin) DO NOTHING",
                         3, { 25, 20, 17 }, 1u << 2 },
    /* The token (cluster mode) of a row no node holds; -1 for a held one: a
     * change read from it would be refused even once it is given back. */
    [P_GET] = { PG_GET, "SELECT doc, created_at, id, queue, type, CASE WHEN owner IS NULL"
                        " THEN token ELSE -1 END FROM jobs_all WHERE id=$1 LIMIT 1", 1, { 25 },
                 0 },
    /* Breakers shared by the cluster (store.h: store_put_breaker), by the
     * database's clock. Opening keeps a breaker another node opened first;
     * the probe's verdict counts only from the node that holds the probe,
     * and a SET reads the row as it was (the doubled cool-down is both the
     * new cooldown_ms and the wait). */
    [P_BREAKER_OPEN] = { "breaker_open", "INSERT INTO breakers(key, opened_at, probe_at,"
                                         " cooldown_ms) VALUES($1, now(), now() + $2 *"
                                         " interval '1 ms', $2) ON CONFLICT (key) DO NOTHING",
                         2, { 25, 20 }, 0 },
    [P_BREAKER_REOPEN] = { "breaker_reopen", "UPDATE breakers SET opened_at = now(),"
                                             " cooldown_ms = least(cooldown_ms * 2, $2),"
                                             " probe_at = now() + least(cooldown_ms * 2, $2) *"
                                             " interval '1 ms', probe_node = NULL,"
                                             " probe_job = NULL, probe_until = NULL"
                                             " WHERE key = $1 AND probe_node = $3",
                           3, { 25, 20, 20 }, 0 },
    [P_BREAKER_CLOSE] = { "breaker_close", "DELETE FROM breakers WHERE key = $1 AND"
                                           " probe_node = $2", 2, { 25, 20 }, 0 },
    [P_BREAKER_RESET] = { "breaker_reset", "DELETE FROM breakers WHERE key = $1", 1, { 25 }, 0 },
};
