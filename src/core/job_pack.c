/*
 * The packed form of a job: what the store writes for every change, and
 * what a restart reads back for every live job. The JSON document it
 * replaces was ~600 bytes for a 100-byte job and took a JSON parse per job
 * to read; this is ~140 and reads with no parser (docs/performance.md).
 *
 * Layout, version 1 (integers are unsigned LEB128 varints, "z" zigzag):
 *
 *   u8 version (JOB_PACK_VERSION) | u8 state (+0x80: FAKTORY, and with it +0x40 the
 *   extension is plain, +0x20 it has created_at: job.h) | u8 priority | u8 flags
 *   | attempts | max_retries | timeout_ms | backoff initial_ms | max_ms
 *   | num multiplier | num jitter
 *   | z created_at | t updated_at | t started_at | t finished_at | t run_at
 *   | [flag LEASE: 32 bytes lease id | str worker | t expires_at]
 *   | [flag BREAKER: str breaker_key] | str args
 *   | [flag PROGRESS: str] | [flag RESULT: str] | [flag ERRORS: str]
 *   | [FAKTORY: str]
 *   | u32 CRC-32C (little-endian) of every byte before it
 *
 * str = length | bytes; args, progress, result, errors and faktory are
 * compact JSON text. t = 0 for "not yet" (0 ms), else z(t - created_at) + 1:
 * a job's times are close together, so each takes a byte or three.
 * num = 2k for a value that is exactly k millionths (and not -0.0), else 1
 * and the eight bytes of the double.
 *
 * Reading trusts nothing: every field is bounded as job_parse_spec bounds
 * it, the CRC must match, and the JSON parts other than args and faktory
 * are parsed. Those two stay text (a queued job needs nothing else, and a
 * FETCH copies them); the CRC is what says they are the text jobq wrote.
 * An older jobq refuses a state byte with 0x40 or 0x20 (docs/operations.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/job.h"
#include "util/crc32c.h"
#include "util/jsonb.h"
#include "util/le.h"
#include "util/sbuf.h"

enum {
    F_CANCEL = 1 << 0,
    F_DISCARD = 1 << 1,
    F_CURVE_FAKTORY = 1 << 2,
    F_LEASE = 1 << 3,
    F_BREAKER = 1 << 4,
    F_PROGRESS = 1 << 5,
    F_RESULT = 1 << 6,
    F_ERRORS = 1 << 7,
};
/* The flags byte is full, and a second would cost every job a byte for a
 * rare field: "has a Faktory extension" is the top bit of the state byte
 * (states fit in 3 bits). */
#define STATE_FAKTORY 0x80u
/* With it, job_t's faktory_plain and faktory_created. */
#define STATE_FK_PLAIN 0x40u
#define STATE_FK_CREATED 0x20u
#define STATE_FK_ALL (STATE_FAKTORY | STATE_FK_PLAIN | STATE_FK_CREATED)

/* Years 0000 to 9999, what RFC 3339 can say (and clock_format_rfc3339). */
#define TIME_MIN (-62167219200000LL)
#define TIME_MAX 253402300799999LL
#define TEXT_MAX (64u << 20) /* no part of a job comes near this */


/* ---- writing ---- */

static void put_byte(sbuf_t *s, unsigned v)
{
    sbuf_addc(s, (char)(unsigned char)v);
}

/* Straight into the buffer (room for the longest, ten bytes, made once):
 * a job packs ~15 of them, 4 times in its life. */
static void put_uv(sbuf_t *s, uint64_t v)
{
    if (s->len + 11 > s->cap)
        sbuf_grow(s, 10);
    unsigned char *p = (unsigned char *)s->p + s->len;
    for (; v >= 0x80; v >>= 7)
        *p++ = (unsigned char)(v | 0x80);
    *p++ = (unsigned char)v;
    s->len = (size_t)(p - (unsigned char *)s->p);
    s->p[s->len] = '\0';
}

static uint64_t zig(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static void put_time(sbuf_t *s, int64_t t, int64_t base)
{
    put_uv(s, t == 0 ? 0 : zig((int64_t)((uint64_t)t - (uint64_t)base)) + 1);
}

static void put_num(sbuf_t *s, double v)
{
    double k = round(v * 1e6);
    if (!signbit(v) && k < 9007199254740992.0 && k / 1e6 == v) { /* -0.0 goes raw */
        put_uv(s, (uint64_t)k << 1);
        return;
    }
    unsigned char raw[8];
    uint64_t bits;
    memcpy(&bits, &v, 8);
    le_put64(raw, bits);
    put_uv(s, 1);
    sbuf_add(s, (const char *)raw, 8);
}

static void put_str(sbuf_t *s, const char *p, size_t n)
{
    put_uv(s, n);
    sbuf_add(s, p, n);
}

/* The value's cached text (the one its JSON form writes), made if missing. */
static void put_cached(sbuf_t *s, char **cache, json_t *v)
{
    const char *t = job_value_text(cache, v);
    put_str(s, t, strlen(t));
}

static unsigned flags_of(const job_t *j)
{
    return (j->cancel_requested ? F_CANCEL : 0) | (j->discard_failed ? F_DISCARD : 0) |
           (j->backoff.curve == BACKOFF_FAKTORY ? F_CURVE_FAKTORY : 0) |
           (j->state == JOB_RUNNING ? F_LEASE : 0) | (j->breaker_key ? F_BREAKER : 0) |
           (j->progress ? F_PROGRESS : 0) | (j->result ? F_RESULT : 0) |
           (j->errors ? F_ERRORS : 0);
}

void job_pack(const job_t *j, sbuf_t *s) { job_pack_at(j, s, NULL); }

void job_pack_at(const job_t *cj, sbuf_t *s, job_pack_args_t *at)
{
    job_t *j = (job_t *)cj; /* only the text caches change */
    size_t start = s->len, alen;
    unsigned flags = flags_of(j);
    put_byte(s, JOB_PACK_VERSION);
    unsigned fk = !job_has_faktory(j) ? 0
                  : STATE_FAKTORY | (j->faktory_plain ? STATE_FK_PLAIN : 0) |
                        (j->faktory_created ? STATE_FK_CREATED : 0);
    put_byte(s, (unsigned)j->state | fk);
    put_byte(s, (unsigned)j->priority);
    put_byte(s, flags);
    put_uv(s, (uint64_t)j->attempts);
    put_uv(s, (uint64_t)j->max_retries);
    put_uv(s, (uint64_t)j->timeout_ms);
    put_uv(s, (uint64_t)j->backoff.initial_ms);
    put_uv(s, (uint64_t)j->backoff.max_ms);
    put_num(s, j->backoff.multiplier);
    put_num(s, j->backoff.jitter);
    put_uv(s, zig(j->created_at));
    put_time(s, j->updated_at, j->created_at);
    put_time(s, j->started_at, j->created_at);
    put_time(s, j->finished_at, j->created_at);
    put_time(s, j->run_at, j->created_at);
    if (flags & F_LEASE) {
        sbuf_add(s, j->lease_id, JOB_LEASE_ID_LEN);
        put_str(s, j->lease_worker ? j->lease_worker : "", j->lease_worker ? strlen(j->lease_worker) : 0);
        put_time(s, j->lease_expires_at, j->created_at);
    }
    if (flags & F_BREAKER)
        put_str(s, j->breaker_key, strlen(j->breaker_key));
    const char *args = job_args_text(j, &alen);
    put_str(s, args, alen);
    if (at)
        *at = (job_pack_args_t){ .at = s->len - start - alen, .len = alen };
    if (flags & F_PROGRESS)
        put_cached(s, &j->cache_progress, j->progress);
    if (flags & F_RESULT)
        put_cached(s, &j->cache_result, j->result);
    if (flags & F_ERRORS)
        put_cached(s, &j->cache_errors, j->errors);
    if (fk)
        put_cached(s, &j->cache_faktory, j->faktory);
    unsigned char crc[4];
    le_put32(crc, crc32c(0, s->p + start, s->len - start));
    sbuf_add(s, (const char *)crc, 4);
}

/* ---- reading ---- */

typedef struct rd {
    const unsigned char *p, *end;
    const char *bad; /* the first field that did not read, or NULL */
} rd_t;

static void fail(rd_t *r, const char *field)
{
    if (!r->bad)
        r->bad = field;
    r->p = r->end; /* every later read fails too, and names nothing new */
}

static unsigned get_byte(rd_t *r, const char *field)
{
    if (r->p >= r->end) {
        fail(r, field);
        return 0;
    }
    return *r->p++;
}

static uint64_t get_uv(rd_t *r, const char *field)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        unsigned b = get_byte(r, field);
        if (r->bad)
            return 0;
        if (shift == 63 && b > 1)
            break; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    fail(r, field);
    return 0;
}

static int64_t unzig(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

static int64_t get_bounded(rd_t *r, const char *field, int64_t lo, int64_t hi)
{
    uint64_t v = get_uv(r, field);
    if (v < (uint64_t)lo || v > (uint64_t)hi)
        fail(r, field);
    return r->bad ? 0 : (int64_t)v;
}

static int64_t get_time(rd_t *r, const char *field, int64_t base)
{
    uint64_t u = get_uv(r, field);
    if (u == 0)
        return 0;
    int64_t t = (int64_t)((uint64_t)base + (uint64_t)unzig(u - 1));
    if (t < TIME_MIN || t > TIME_MAX)
        fail(r, field);
    return r->bad ? 0 : t;
}

static double get_num(rd_t *r, const char *field, double lo, double hi)
{
    uint64_t u = get_uv(r, field);
    double v = 0;
    if (u & 1) {
        if (u != 1 || r->end - r->p < 8) {
            fail(r, field);
            return 0;
        }
        uint64_t bits = le_get64(r->p);
        memcpy(&v, &bits, 8);
        r->p += 8;
    } else {
        v = (double)(u >> 1) / 1e6;
    }
    if (!(v >= lo && v <= hi)) /* also nan */
        fail(r, field);
    return r->bad ? 0 : v;
}

/* A string of n bytes, none of them NUL, borrowed from the buffer. */
static const char *get_str(rd_t *r, const char *field, size_t max, size_t *n)
{
    uint64_t len = get_uv(r, field);
    if (r->bad || len > max || len > (uint64_t)(r->end - r->p) || memchr(r->p, '\0', len)) {
        fail(r, field);
        *n = 0;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += len;
    *n = (size_t)len;
    return s;
}

static char *get_dup(rd_t *r, const char *field, size_t max)
{
    size_t n;
    const char *s = get_str(r, field, max, &n);
    char *d = s ? strndup(s, n) : NULL;
    if (s && !d)
        fail(r, field);
    return d;
}

/* A JSON part: parsed (bounded), and its text kept as the job's cache. */
static json_t *get_json(rd_t *r, const char *field, char **cache)
{
    size_t n;
    const char *s = get_str(r, field, TEXT_MAX, &n);
    json_error_t e;
    json_t *v = s ? jsonb_loadb(s, n, JSON_DECODE_ANY, JSONB_STORED_DEPTH, &e) : NULL;
    if (!v || !(*cache = strndup(s, n))) {
        json_decref(v);
        fail(r, field);
        return NULL;
    }
    return v;
}

static void get_head(rd_t *r, job_t *j, unsigned *flags, bool *faktory)
{
    get_byte(r, "version");
    unsigned st = get_byte(r, "state");
    *faktory = st & STATE_FAKTORY;
    j->faktory_plain = st & STATE_FK_PLAIN;
    j->faktory_created = st & STATE_FK_CREATED;
    if (!*faktory && (j->faktory_plain || j->faktory_created))
        fail(r, "state");
    st &= ~STATE_FK_ALL;
    j->state = st < JOB_STATE_COUNT ? (job_state_t)st : JOB_PENDING;
    if (st >= JOB_STATE_COUNT)
        fail(r, "state");
    j->priority = (int)get_byte(r, "priority");
    if (j->priority >= JOB_PRIORITIES)
        fail(r, "priority");
    *flags = get_byte(r, "flags");
    j->cancel_requested = *flags & F_CANCEL;
    j->discard_failed = *flags & F_DISCARD;
    j->backoff.curve = (*flags & F_CURVE_FAKTORY) ? BACKOFF_FAKTORY : BACKOFF_EXPONENTIAL;
    j->attempts = (int)get_bounded(r, "attempts", 0, INT32_MAX); /* requeues add up */
    j->max_retries = (int)get_bounded(r, "max_retries", 0, JOB_RETRIES_MAX);
    j->timeout_ms = get_bounded(r, "timeout_ms", JOB_TIMEOUT_MIN_MS, JOB_TIMEOUT_MAX_MS);
    j->backoff.initial_ms = get_bounded(r, "backoff.initial_ms", 0, JOB_BACKOFF_INITIAL_MAX_MS);
    j->backoff.max_ms = get_bounded(r, "backoff.max_ms", j->backoff.initial_ms,
                                    JOB_BACKOFF_MAX_MAX_MS);
    j->backoff.multiplier = get_num(r, "backoff.multiplier", 1.0, 100.0);
    j->backoff.jitter = get_num(r, "backoff.jitter", 0.0, 1.0);
    uint64_t c = get_uv(r, "created_at");
    j->created_at = unzig(c);
    if (j->created_at < TIME_MIN || j->created_at > TIME_MAX)
        fail(r, "created_at");
    j->updated_at = get_time(r, "updated_at", j->created_at);
    j->started_at = get_time(r, "started_at", j->created_at);
    j->finished_at = get_time(r, "finished_at", j->created_at);
    j->run_at = get_time(r, "run_at", j->created_at);
}

job_state_t job_packed_state(const void *bytes)
{
    return (job_state_t)(((const unsigned char *)bytes)[1] & ~STATE_FK_ALL);
}

int64_t job_packed_run_at(const void *bytes, size_t n)
{
    rd_t r = { bytes, (const unsigned char *)bytes + n, NULL };
    job_t head = { 0 };
    unsigned flags;
    bool faktory;
    get_head(&r, &head, &flags, &faktory);
    return head.run_at;
}

static void get_lease(rd_t *r, job_t *j, unsigned flags)
{
    if (!(flags & F_LEASE) != (j->state != JOB_RUNNING)) {
        fail(r, "lease"); /* a running job has one, no other job does */
        return;
    }
    if (!(flags & F_LEASE))
        return;
    if (r->end - r->p < JOB_LEASE_ID_LEN || !job_lease_id_valid((const char *)r->p)) {
        fail(r, "lease.id");
        return;
    }
    memcpy(j->lease_id, r->p, JOB_LEASE_ID_LEN);
    j->lease_id[JOB_LEASE_ID_LEN] = '\0';
    r->p += JOB_LEASE_ID_LEN;
    /* Any bytes but NUL, as a stored document allowed: the JSON writer
     * escapes what needs it, and a job must read back whatever it held. */
    j->lease_worker = get_dup(r, "lease.worker", TEXT_MAX);
    if (j->lease_worker && !*j->lease_worker) {
        free(j->lease_worker);
        j->lease_worker = NULL;
    }
    j->lease_expires_at = get_time(r, "lease.expires_at", j->created_at);
}

static void get_body(rd_t *r, job_t *j, unsigned flags, bool faktory)
{
    if (flags & F_BREAKER) {
        j->breaker_key = get_dup(r, "breaker_key", JOB_NAME_MAX);
        if (j->breaker_key && !job_name_valid(j->breaker_key))
            fail(r, "breaker_key");
    }
    size_t n;
    const char *args = get_str(r, "args", TEXT_MAX, &n);
    if (args && !(j->args_text = strndup(args, n)))
        fail(r, "args");
    j->args_len = (uint32_t)n;
    if (args && n == 0)
        fail(r, "args"); /* empty text is no JSON value */
    if (flags & F_PROGRESS)
        j->progress = get_json(r, "progress", &j->cache_progress);
    if (flags & F_RESULT)
        j->result = get_json(r, "result", &j->cache_result);
    if (flags & F_ERRORS) {
        j->errors = get_json(r, "errors", &j->cache_errors);
        if (j->errors && !json_is_array(j->errors))
            fail(r, "errors");
    }
    if (faktory) { /* text, as the args are: parsed when asked for */
        const char *t = get_str(r, "faktory", TEXT_MAX, &n);
        if (t && (n < 2 || t[0] != '{' || t[n - 1] != '}' || !(j->cache_faktory = strndup(t, n))))
            fail(r, "faktory");
    }
}

static bool names_valid(const char *id, const char *queue, const char *type, problem_t *p)
{
    const char *field = !job_name_valid(id) ? "id" : !job_name_valid(queue) ? "queue"
                        : !job_name_valid(type) ? "type" : NULL;
    if (field)
        problem_set(p, ERR_INTERNAL, field, "stored job has a bad %s", field);
    return !field;
}

err_t job_unpack(const void *bytes, size_t n, const char *id, const char *queue,
                 const char *type, job_t **out, problem_t *p)
{
    const unsigned char *b = bytes;
    if (n < 5 || !job_is_packed(b, n) || le_get32(b + n - 4) != crc32c(0, b, n - 4))
        return problem_set(p, ERR_INTERNAL, "", "stored job fails its checksum");
    if (!names_valid(id, queue, type, p))
        return ERR_INTERNAL;
    job_t *j = job_new();
    if (!j || !(j->id = strdup(id)) || job_set_queue(j, queue) != 0 || job_set_type(j, type) != 0) {
        job_free(j);
        return problem_set(p, ERR_INTERNAL, "", "out of memory");
    }
    rd_t r = { b, b + n - 4, NULL };
    unsigned flags;
    bool faktory;
    get_head(&r, j, &flags, &faktory);
    get_lease(&r, j, flags);
    get_body(&r, j, flags, faktory);
    if (!r.bad && r.p != r.end)
        r.bad = "length";
    if (r.bad) {
        problem_set(p, ERR_INTERNAL, r.bad, "stored job has a bad %s", r.bad);
        job_free(j);
        return ERR_INTERNAL;
    }
    j->stored = true;
    j->stored_state = (unsigned char)j->state;
    *out = j;
    return ERR_OK;
}
