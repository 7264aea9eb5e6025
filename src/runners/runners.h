/*
 * runners: workers inside the server. Each enabled kind has a pool that
 * leases from its queue through the same engine calls as an external
 * worker (lease, complete, fail), so priorities, retries, fencing and
 * metrics apply unchanged. Their I/O runs on the loop through libcurl's
 * multi interface; nothing blocks and no thread touches the engine.
 *
 * Kinds: `webhook` (queue "webhook", job type "http.request"), `download`
 * (queue "download", job type "http.download") and `command` (queue
 * "command", types declared by JOBQ_COMMAND_<type>). JOBQ_RUNNERS enables
 * them with their concurrency: "webhook=16,download=4,command=2".
 *
 * Threads: the loop thread only. Ownership: runners_start() borrows the
 * base and the engine, which must outlive runners_stop().
 */
#ifndef JOBQ_RUNNERS_H
#define JOBQ_RUNNERS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/engine.h"

typedef struct runners runners_t;

typedef struct runner_command {
    const char *type, *argv; /* a job type and its argv template */
    const char *progress;    /* regex, group 1 = percent; "" for none */
    const char *no_retry;    /* exit codes not retried, "2,3"; "" for none */
} runner_command_t;

typedef struct runners_options {
    const char *spec;         /* JOBQ_RUNNERS, "" for none */
    const char *command_dir;  /* working folder for command jobs */
    const runner_command_t *commands;
    int ncommands;
    const char *download_dir; /* JOBQ_DOWNLOAD_DIR */
    bool download_allow_private;
} runners_options_t;

/* NULL with a message on a bad spec. */
runners_t *runners_start(struct event_base *base, engine_t *e, const runners_options_t *opt,
                         char *err, size_t errlen);
/* Shutdown has begun: lease nothing more; transfers in flight go on. */
void runners_drain(runners_t *r);
/* Stops leasing and aborts transfers in flight; their jobs keep their
 * leases and run again after them. Safe with NULL. */
void runners_stop(runners_t *r);

#endif
