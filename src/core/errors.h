/*
 * errors: jobq's one error taxonomy, shared by API errors and job failures.
 *
 * One X-macro table yields the enum, the wire names, the HTTP statuses and
 * whether a job failure of that type is retried (libuv's UV_ERRNO_MAP shape).
 * A `problem_t` carries one error with the field it concerns; it is a plain
 * value, owned by whoever declared it.
 */
#ifndef JOBQ_ERRORS_H
#define JOBQ_ERRORS_H

#include <stdarg.h>
#include <stdbool.h>

/*   enum           name            status retried title */
#define ERR_TABLE(X)                                                           \
    X(VALIDATION,   "validation",   400, false, "Invalid request")            \
    X(UNAUTHORIZED, "unauthorized", 401, false, "Unauthorized")               \
    X(NOT_FOUND,    "not_found",    404, false, "Not found")                  \
    X(CONFLICT,     "conflict",     409, false, "Conflict")                   \
    X(RATE_LIMITED, "rate_limited", 429, true,  "Too many requests")          \
    X(TIMEOUT,      "timeout",      504, true,  "Timed out")                  \
    X(UNAVAILABLE,  "unavailable",  503, true,  "Service unavailable")        \
    X(INTERNAL,     "internal",     500, true,  "Internal error")

typedef enum {
    ERR_OK = 0,
#define X(e, name, status, retried, title) ERR_##e,
    ERR_TABLE(X)
#undef X
    ERR_COUNT_
} err_t;

const char *err_name(err_t e);
const char *err_title(err_t e);
int err_status(err_t e);
/* Whether a job failure of this type is retried by default. */
bool err_retried(err_t e);
/* Parses a wire name; returns 0, or -1 if it is not one of the eight. */
int err_parse(const char *name, err_t *out);

typedef struct problem {
    err_t type;
    int status;       /* 0: err_status(type) */
    char field[128];  /* JSON path of the offending field, "" if none */
    char detail[320];
} problem_t;

/* Fills p and returns p->type, so validators can `return problem_set(...)`. */
err_t problem_set(problem_t *p, err_t type, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefixes the field path, e.g. "jobs[3]." before "priority". */
void problem_prefix_field(problem_t *p, const char *prefix);

#endif
