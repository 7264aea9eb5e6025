/*
 * job: the job record, its states, and its JSON forms.
 *
 * A job_t owns every pointer in it (strings and jansson references); free it
 * with job_free(). Its JSON forms (job_json_mode_t) are written by
 * job_json.c and job_from_doc() reads them back; job_pack.c writes and reads
 * the compact binary form the store keeps.
 * Client input is validated by job_parse_spec() in job_spec.c. No function
 * here keeps global state; all are safe on any thread for distinct jobs.
 */
#ifndef JOBQ_JOB_H
#define JOBQ_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/errors.h"

struct sbuf;

#define JOB_NAME_MAX 200  /* ids, queues, types, breaker keys */
#define JOB_PRIORITIES 5  /* 0 = critical ... 4 = background */
#define JOB_LEASE_ID_LEN 32
#define JOB_ERRORS_MAX 50 /* failure records kept per job, the latest */

/* Bounds of the spec's numbers, checked on enqueue and on every read back. */
#define JOB_RETRIES_MAX 1000
#define JOB_TIMEOUT_MIN_MS 1000
#define JOB_TIMEOUT_MAX_MS 86400000LL
#define JOB_BACKOFF_INITIAL_MAX_MS 86400000LL
#define JOB_BACKOFF_MAX_MAX_MS (7LL * 86400000)

typedef enum {
    JOB_PENDING,
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_RETRYING,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_STATE_COUNT
} job_state_t;

/* Exponential is jobq's own; the Faktory curve is that protocol's
 * n^4 + 15 + rand(30) * (n + 1) seconds, n counting retries from 0, which
 * its clients expect (the other fields are then unused). */
typedef enum { BACKOFF_EXPONENTIAL, BACKOFF_FAKTORY } backoff_curve_t;

/* Why a job changed (the engine reports each change with one; the store
 * keeps lifetime totals by event; metrics and logs name them). */
typedef enum {
    JOB_EV_ENQUEUED,
    JOB_EV_UPDATED, /* heartbeat, timer, cancel request: no total changes */
    JOB_EV_LEASED,  /* an attempt started */
    JOB_EV_COMPLETED,
    JOB_EV_FAILED,
    JOB_EV_RETRIED, /* an attempt failed and a retry is scheduled */
    JOB_EV_CANCELLED,
    JOB_EV_REQUEUED, /* an operator's retry of a failed/cancelled job */
    JOB_EV_COUNT
} job_event_t;

const char *job_event_name(job_event_t ev);

typedef struct backoff {
    int64_t initial_ms, max_ms;
    double multiplier, jitter;
    backoff_curve_t curve;
} backoff_t;

typedef struct job_defaults {
    int max_retries;
    int64_t timeout_ms;
    backoff_t backoff;
} job_defaults_t;

/* Fields are ordered so that the small ones share words: a million queued
 * jobs each hold one (its size is asserted in job.c). */
typedef struct job {
    char *id, *breaker_key; /* breaker_key may be NULL */
    /* Shared (core/names.h) unless own_queue / own_type says the job owns
     * its copy: set them with job_set_queue() and job_set_type() only. */
    const char *queue, *type;
    /* The args as compact JSON text, always; the tree only once someone
     * asked for the values (job_args()): a queued job needs just the text,
     * and the tree was a quarter of its memory. */
    char *args_text;
    json_t *args;
    uint32_t args_len;
    job_state_t state;
    int priority;
    int max_retries;
    int attempts;
    bool own_queue, own_type;
    bool cancel_requested;
    /* Deleted instead of kept as failed once its retries are spent
     * (Faktory's retry: 0). Part of the spec. */
    bool discard_failed;
    int64_t timeout_ms;
    backoff_t backoff;

    /* Milliseconds since the epoch; 0 means "not yet" (null in JSON). */
    int64_t created_at, updated_at, started_at, finished_at, run_at;
    json_t *progress, *result; /* NULL until reported */
    json_t *errors;            /* array of failure records; NULL until the first */

    /* Pushed over the Faktory protocol: the fields of its job that jobq has
     * no column for (custom, backtrace, retry, created_at as sent), kept
     * and returned as given; NULL for other jobs. Part of the spec. A job
     * read back from the store holds only its text (cache_faktory) until
     * someone needs the values: read it with job_faktory(). */
    json_t *faktory;

    /* Lease, valid while running. */
    char *lease_worker;
    int64_t lease_expires_at;
    char lease_id[JOB_LEASE_ID_LEN + 1];
    /* These four sit in the lease id's padding: job_t stays 280 bytes.
     * The state the store last received for this job (a job_state_t),
     * when `stored`: set by job_unpack (the bytes came from the store, or
     * were frozen from the job as it was persisted) and by the engine
     * after each persist, so that a store can update the job's row
     * without first reading which state it leaves. */
    bool stored;
    unsigned char stored_state;
    /* The Faktory extension holds just what a PUSH keeps (retry always,
     * created_at when faktory_created), so a FETCH copies its text
     * instead of reading its values. */
    bool faktory_plain, faktory_created;

    /* JSON text of the arbitrary values, dumped on first use and dropped by
     * the setters below: a job is written several times per life (store and
     * replies) but these rarely change. */
    char *cache_progress, *cache_result, *cache_errors, *cache_faktory;
} job_t;

typedef enum {
    JOB_JSON_PUBLIC, /* the API's form */
    JOB_JSON_STORED, /* adds lease.id, for the store */
    JOB_JSON_LEASED, /* the API's form plus top-level lease_id, for lessees */
    JOB_JSON_MINIMAL, /* id and state: an enqueue's reply under Prefer: return=minimal */
    JOB_JSON_LEASED_MINIMAL, /* what a worker needs to run it and report (the same) */
} job_json_mode_t;

const char *job_state_name(job_state_t s);
int job_state_parse(const char *s, job_state_t *out);
bool job_state_terminal(job_state_t s);
const char *job_priority_name(int priority);

/* A lease id as jobq makes them: JOB_LEASE_ID_LEN printable ASCII
 * characters (checked on every read of a stored job; s need not end). */
bool job_lease_id_valid(const char *s);

/* Characters allowed in ids, queue names, types and breaker keys. */
bool job_name_valid(const char *s);
bool job_name_char(char c); /* one of [A-Za-z0-9._:-] */

job_t *job_new(void);
void job_free(job_t *j);

/* Validates a client's enqueue object. On success *out is a new job in no
 * state yet (the engine decides pending/queued). On error fills p. */
err_t job_parse_spec(json_t *spec, const job_defaults_t *defaults, int64_t now_ms,
                     job_t **out, problem_t *p);

/* For a front end that checks its own fields (the Faktory protocol): a job
 * from parts already held to job_parse_spec's bounds (id, queue and type
 * valid names), plus those of extra's priority, breaker_key and backoff
 * that are present (extra may be NULL), checked as job_parse_spec checks
 * them; on error p names the field as in a spec. Borrows everything. */
typedef struct job_parts {
    const char *id, *queue, *type;
    json_t *args;
    int priority, max_retries;
    int64_t timeout_ms, run_at;
} job_parts_t;
err_t job_build(const job_parts_t *in, json_t *extra, const job_defaults_t *d, int64_t now,
                job_t **out, problem_t *p);

/* True when two jobs were enqueued from the same request, for idempotent
 * replay: everything the client chose except when it runs. */
bool job_same_spec(const job_t *a, const job_t *b);

/* Writes the job as one JSON object (job_json.c). The job is logically
 * const: only its text caches are filled. */
void job_write_json(const job_t *j, job_json_mode_t mode, struct sbuf *out);
/* The same, as a new string the caller frees. */
char *job_json(const job_t *j, job_json_mode_t mode);
/* The args as a tree (borrowed; never NULL): parsed from their text on
 * first use and kept, for whoever needs the values (runners, idempotent
 * replays). Text that does not parse (only a damaged store can hold such)
 * reads as null. Logically const, like the text caches. */
json_t *job_args(const job_t *j);
/* The args as compact JSON text (borrowed, *len bytes, NUL-terminated), so
 * a reply that carries them (a Faktory FETCH) need not dump them again. */
const char *job_args_text(const job_t *j, size_t *len);
/* Sets the queue or the type name (copied or shared): 0, or -1 when out
 * of memory. */
int job_set_queue(job_t *j, const char *name);
int job_set_type(job_t *j, const char *name);
/* Sets the args (borrows v): keeps their compact text, not the tree. */
void job_set_args(job_t *j, json_t *v);

/* The compact JSON text of v, one of j's values (progress, result,
 * errors, faktory), from *cache, its cache in the job, which is filled if
 * empty: the JSON writer and the packer share it. v is not NULL. */
const char *job_value_text(char **cache, json_t *v);

/* Setters for the parts with cached text (borrow v; NULL clears). */
void job_set_result(job_t *j, json_t *v);
void job_set_progress(job_t *j, json_t *v);

/* Sets the Faktory extension (borrows v; NULL clears; not plain). */
void job_set_faktory(job_t *j, json_t *v);
/* Sets it as the compact JSON text of a plain extension, an object
 * (taken: the job frees it; the tree is parsed when asked for); created:
 * it holds created_at. */
void job_set_faktory_plain(job_t *j, char *text, bool created);
/* Whether the job has one, and its tree (borrowed), parsed from its text
 * on first use like the args; NULL when it has none (or the text does not
 * parse: only a damaged store can hold such). Logically const. */
static inline bool job_has_faktory(const job_t *j) { return j->faktory || j->cache_faktory; }
json_t *job_faktory(const job_t *j);

/* Reads a stored document; the inverse of job_write_json(JOB_JSON_STORED). */
err_t job_from_doc(json_t *doc, job_t **out, problem_t *p);

/* The packed form (job_pack.c): the store's bytes for a job, a third the
 * size of its JSON and read back without a JSON parser (a restart reads
 * every live job). It holds everything but id, queue and type, which the
 * store keeps beside it as columns and keys; it ends with a CRC-32C of the
 * rest. Its first byte is JOB_PACK_VERSION, which no JSON document starts
 * with, so a store may hold both forms. The format is in job_pack.c. */
#define JOB_PACK_VERSION 0x01
void job_pack(const job_t *j, struct sbuf *out);
/* The same, and where in it the args' text is (offset from the form's
 * first byte, length): a store may keep a large payload apart from the
 * rest, which changes at every step of the job while the args never do. */
typedef struct job_pack_args {
    size_t at, len;
} job_pack_args_t;
void job_pack_at(const job_t *j, struct sbuf *out, job_pack_args_t *at);
static inline bool job_is_packed(const void *p, size_t n)
{
    return n > 0 && *(const unsigned char *)p == JOB_PACK_VERSION;
}
/* Checks every field (the bytes come from the disk: hostile) and builds the
 * job; on error fills p, naming the field. */
err_t job_unpack(const void *bytes, size_t n, const char *id, const char *queue,
                 const char *type, job_t **out, problem_t *p);
/* Two fields of bytes job_pack() wrote in this process (the engine keeps
 * waiting jobs packed and orders them without unpacking): nothing is
 * checked, so never call these on bytes from the disk. */
job_state_t job_packed_state(const void *bytes);
int64_t job_packed_run_at(const void *bytes, size_t n);

/* Appends a failure record {attempt,type,message,context,worker,at},
 * dropping the oldest beyond JOB_ERRORS_MAX. Borrows every argument. */
void job_add_error(job_t *j, err_t type, const char *message, json_t *context,
                   const char *worker, int64_t at_ms);

/* The share of JOBQ_MEMORY_LIMIT past which new jobs of this priority are
 * refused: background at 80%, low 85%, normal 90%, high 95%, critical 100%
 * (every front end sheds the same way). */
static inline double job_shed_level(int priority) { return 1.0 - 0.05 * priority; }

/* Bytes this job holds in memory, estimated: its structures plus twice its
 * JSON text (the jansson trees and the cached text of each part). */
size_t job_memory_estimate(const job_t *j);

/* Delay before retry n (n >= 1), given a uniform random number in [0, 1):
 * min(max, initial * multiplier^(n-1)) scaled by 1 +/- jitter. */
int64_t backoff_delay_ms(const backoff_t *b, int n, double unit_rand);

#endif
