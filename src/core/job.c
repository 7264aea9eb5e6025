#include "core/job.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"
#include "util/clock.h"
#include "util/jsonb.h"

static const char *const state_names[JOB_STATE_COUNT] = {
    "pending", "queued", "running", "retrying", "completed", "failed", "cancelled",
};
static const char *const priority_names[JOB_PRIORITIES] = {
    "critical", "high", "normal", "low", "background",
};

static const char *const event_names[JOB_EV_COUNT] = {
    "enqueued", "updated", "leased", "completed", "failed", "retried", "cancelled", "requeued",
};

const char *job_event_name(job_event_t ev) { return ev < JOB_EV_COUNT ? event_names[ev] : "?"; }

const char *job_state_name(job_state_t s) { return s < JOB_STATE_COUNT ? state_names[s] : "?"; }

int job_state_parse(const char *s, job_state_t *out)
{
    for (int i = 0; i < JOB_STATE_COUNT; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (job_state_t)i;
            return 0;
        }
    }
    return -1;
}

bool job_state_terminal(job_state_t s)
{
    return s == JOB_COMPLETED || s == JOB_FAILED || s == JOB_CANCELLED;
}

const char *job_priority_name(int p)
{
    return (p >= 0 && p < JOB_PRIORITIES) ? priority_names[p] : "normal";
}

/* [A-Za-z0-9._:-] as a table: every id, queue and type is checked
 * character by character several times in a job's life. */
static const unsigned char name_chars[256] = {
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['.'] = 1, ['_'] = 1,
    [':'] = 1, ['-'] = 1,
};

bool job_name_char(char c) { return name_chars[(unsigned char)c]; }

bool job_lease_id_valid(const char *s)
{
    for (int i = 0; i < JOB_LEASE_ID_LEN; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

bool job_name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!name_chars[(unsigned char)s[n]] || n >= JOB_NAME_MAX)
            return false;
    return n > 0;
}

/* A million queued jobs each hold one: past 280 bytes malloc hands out the
 * next size, 16 bytes more per job. Grow it knowingly. */
_Static_assert(sizeof(job_t) <= 280, "job_t grew past 280 bytes");

job_t *job_new(void)
{
    return calloc(1, sizeof(job_t));
}

void job_free(job_t *j)
{
    if (!j)
        return;
    free(j->id);
    if (j->own_queue)
        free((char *)j->queue);
    if (j->own_type)
        free((char *)j->type);
    free(j->breaker_key);
    free(j->lease_worker);
    free(j->args_text);
    json_decref(j->args);
    json_decref(j->progress);
    json_decref(j->result);
    json_decref(j->errors);
    json_decref(j->faktory);
    free(j->cache_progress);
    free(j->cache_result);
    free(j->cache_errors);
    free(j->cache_faktory);
    free(j);
}

/* Same text is the common case; else the same values in another order. */
static bool same_args(const job_t *a, const job_t *b)
{
    size_t na, nb;
    const char *ta = job_args_text(a, &na), *tb = job_args_text(b, &nb);
    return (na == nb && memcmp(ta, tb, na) == 0) || json_equal(job_args(a), job_args(b));
}

/* Same text, or the same values. */
static bool same_faktory(const job_t *a, const job_t *b)
{
    if (!job_has_faktory(a) || !job_has_faktory(b))
        return !job_has_faktory(a) && !job_has_faktory(b);
    if (a->cache_faktory && b->cache_faktory && strcmp(a->cache_faktory, b->cache_faktory) == 0)
        return true;
    json_t *fa = job_faktory(a), *fb = job_faktory(b);
    return fa && fb && json_equal(fa, fb);
}

bool job_same_spec(const job_t *a, const job_t *b)
{
    bool same_breaker = (!a->breaker_key && !b->breaker_key) ||
                        (a->breaker_key && b->breaker_key &&
                         strcmp(a->breaker_key, b->breaker_key) == 0);
    return strcmp(a->queue, b->queue) == 0 && strcmp(a->type, b->type) == 0 && same_breaker &&
           a->priority == b->priority && a->max_retries == b->max_retries &&
           a->timeout_ms == b->timeout_ms && a->backoff.initial_ms == b->backoff.initial_ms &&
           a->backoff.max_ms == b->backoff.max_ms &&
           a->backoff.multiplier == b->backoff.multiplier &&
           a->backoff.jitter == b->backoff.jitter && a->backoff.curve == b->backoff.curve &&
           a->discard_failed == b->discard_failed && same_args(a, b) &&
           same_faktory(a, b);
}

static int set_name(const char **field, bool *own, const char *name)
{
    const char *shared = names_intern(name);
    char *copy = shared ? NULL : strdup(name);
    if (!shared && !copy)
        return -1;
    if (*own)
        free((char *)*field);
    *field = shared ? shared : copy;
    *own = !shared;
    return 0;
}

int job_set_queue(job_t *j, const char *name) { return set_name(&j->queue, &j->own_queue, name); }
int job_set_type(job_t *j, const char *name) { return set_name(&j->type, &j->own_type, name); }

static void drop(char **cache)
{
    free(*cache);
    *cache = NULL;
}

void job_set_result(job_t *j, json_t *v)
{
    json_decref(j->result);
    j->result = v ? json_incref(v) : NULL;
    drop(&j->cache_result);
}

void job_set_faktory(job_t *j, json_t *v)
{
    json_decref(j->faktory);
    j->faktory = v ? json_incref(v) : NULL;
    drop(&j->cache_faktory);
    j->faktory_plain = j->faktory_created = false;
}

void job_set_faktory_plain(job_t *j, char *text, bool created)
{
    job_set_faktory(j, NULL);
    j->cache_faktory = text;
    j->faktory_plain = true;
    j->faktory_created = created;
}

json_t *job_faktory(const job_t *cj)
{
    job_t *j = (job_t *)cj; /* only the tree is filled in */
    if (!j->faktory && j->cache_faktory) {
        json_error_t e;
        j->faktory = jsonb_loadb(j->cache_faktory, strlen(j->cache_faktory), 0,
                                 JSONB_STORED_DEPTH, &e);
    }
    return j->faktory;
}

void job_set_progress(job_t *j, json_t *v)
{
    json_decref(j->progress);
    j->progress = v ? json_incref(v) : NULL;
    drop(&j->cache_progress);
}

void job_add_error(job_t *j, err_t type, const char *message, json_t *context,
                   const char *worker, int64_t at_ms)
{
    json_t *e = json_pack("{s:i, s:s, s:s, s:O?, s:s?, s:o}", "attempt", j->attempts, "type",
                          err_name(type), "message", message ? message : "", "context", context,
                          "worker", worker, "at", clock_json(at_ms));
    if (!j->errors)
        j->errors = json_array();
    if (e && j->errors)
        json_array_append_new(j->errors, e);
    else
        json_decref(e); /* out of memory: the attempt still counts */
    /* Bounded, or a job retried for days would grow without end. */
    while (json_array_size(j->errors) > JOB_ERRORS_MAX)
        json_array_remove(j->errors, 0);
    drop(&j->cache_errors);
}

static size_t text_or_tree(const char *cache, const json_t *v)
{
    if (cache)
        return strlen(cache);
    return v ? json_dumpb(v, NULL, 0, JSON_COMPACT) : 0;
}

size_t job_memory_estimate(const job_t *j)
{
    size_t n = sizeof *j + 256; /* the engine's record, hash entry, allocator slack */
    n += strlen(j->id) + 1;
    n += j->own_queue ? strlen(j->queue) + 1 : 0;
    n += j->own_type ? strlen(j->type) + 1 : 0;
    n += j->breaker_key ? strlen(j->breaker_key) + 1 : 0;
    n += j->lease_worker ? strlen(j->lease_worker) + 1 : 0;
    n += j->args_len + 1 + (j->args ? 2 * j->args_len : 0);
    size_t text = text_or_tree(j->cache_progress, j->progress) +
                  text_or_tree(j->cache_result, j->result) +
                  text_or_tree(j->cache_errors, j->errors) +
                  text_or_tree(j->cache_faktory, j->faktory);
    return n + 2 * text;
}

/* Faktory's curve, n = retries so far (attempt - 1); bounded by the 1000
 * retries a job may have, so it cannot overflow. */
static int64_t faktory_delay_ms(int n, double unit_rand)
{
    int64_t r = n > 1 ? n - 1 : 0;
    int64_t s = r * r * r * r + 15 + (int64_t)(unit_rand * 30) * (r + 1);
    return s * 1000;
}

int64_t backoff_delay_ms(const backoff_t *b, int n, double unit_rand)
{
    if (b->curve == BACKOFF_FAKTORY)
        return faktory_delay_ms(n, unit_rand);
    double d = (double)b->initial_ms * pow(b->multiplier, n > 1 ? n - 1 : 0);
    if (!(d <= (double)b->max_ms)) /* also catches inf and nan */
        d = (double)b->max_ms;
    d *= 1.0 + b->jitter * (2.0 * unit_rand - 1.0);
    return d < 0 ? 0 : (int64_t)llround(d);
}
