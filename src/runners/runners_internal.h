/* runners_internal: the pool and task layout shared by pool.c (leasing and
 * reporting) and each kind's file (webhook.c). Nothing else includes it. */
#ifndef JOBQ_RUNNERS_INTERNAL_H
#define JOBQ_RUNNERS_INTERNAL_H

#include <curl/curl.h>
#include <stdbool.h>

#include "core/errors.h"
#include "runners/curl_loop.h"
#include "runners/runners.h"
#include "util/list.h"
#include "util/sbuf.h"

#define TASK_EXCERPT_MAX 4096

typedef struct pool pool_t;

/* One job being run: the lease, and the HTTP transfer doing it. */
typedef struct task {
    pool_t *pool;
    list_node_t link; /* in pool.tasks */
    char job_id[JOB_NAME_MAX + 1];
    char lease_id[JOB_LEASE_ID_LEN + 1];
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    sbuf_t excerpt;    /* the first TASK_EXCERPT_MAX bytes of the reply */
    size_t body_bytes; /* all of them */
    char errbuf[CURL_ERROR_SIZE];
    /* Set when the job cannot even start (bad args): reported from the
     * pool's next loop turn, never from inside an engine callback. */
    bool refused;
    problem_t problem;
    void *kind_data; /* the kind's own state for this task */
    int64_t last_progress_ns;
    bool cancelling;
} task_t;

/* Runner-wide settings a kind may need. */
typedef struct runner_env {
    struct event_base *base;
    const char *download_dir;
    bool allow_private;
    const char *command_dir;
    const runner_command_t *commands;
    int ncommands;
} runner_env_t;

/* What a kind does with a job; the pool does the leasing and reporting. */
typedef struct runner_kind {
    const char *name, *queue, *type;
    /* Configures t->easy from the job; false with t->problem to refuse. */
    bool (*prepare)(task_t *t, const job_t *job);
    /* Decides the outcome once the transfer ends: 0 with *result (new
     * reference) for success, else the failure's type/message/context. */
    err_t (*outcome)(task_t *t, CURLcode rc, json_t **result, char *msg, size_t len,
                     json_t **context);
    void (*cleanup)(task_t *t); /* optional: frees kind_data */
    /* Kinds that do not use libcurl set this instead of prepare/outcome:
     * start the work (false with t->problem to refuse) and later call
     * runner_finish() from a loop event. */
    bool (*start)(task_t *t, const job_t *job);
    /* Non-curl kinds: the job was cancelled; stop, then runner_finish(). */
    void (*cancel)(task_t *t);
} runner_kind_t;

extern const runner_kind_t runner_webhook;
extern const runner_kind_t runner_download;
extern const runner_kind_t runner_command;

/* A non-curl kind's outcome (ERR_OK with result, else a failure; retry as
 * for engine_fail: -1 by type, 0 never); the pool reports it and frees the
 * task. Borrowed arguments. */
void runner_finish(task_t *t, err_t type, const char *msg, json_t *result, json_t *context,
                   int retry);

/* Checks an HTTP runner's args: only known fields, args.url http(s), and
 * args.headers (appended to t->headers). False with t->problem if not. */
bool runner_http_args(task_t *t, json_t *args, const char *const *known, const char **url);

/* HTTP status (non-2xx) and libcurl failures -> error type (http_common.c). */
err_t runner_err_for_status(long status);
err_t runner_err_for_curl(CURLcode rc);

/* The settings the pools were started with. */
const runner_env_t *runner_env(const task_t *t);
/* Reports progress (a heartbeat that also extends the lease), at most once
 * a second per task; progress is borrowed. Call from transfer callbacks. */
void runner_progress(task_t *t, json_t *progress);

#endif
