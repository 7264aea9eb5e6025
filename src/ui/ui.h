/*
 * ui: the web dashboard's files, compiled into the binary (assets.h) and
 * served under /ui/ on the HTTP port (docs/dashboard.md). Only files: the
 * pages read and change everything through the HTTP API, with its keys,
 * roles and limits, so this module knows nothing of jobs.
 *
 * Threads: the loop thread, like every request. Ownership: nothing is
 * allocated; the bodies are static.
 */
#ifndef JOBQ_UI_H
#define JOBQ_UI_H

#include <stdbool.h>

#include "http/request.h"

/* Answers r if its path is /ui or under /ui/ and returns true; false
 * (nothing done) for any other path. */
bool ui_route(http_req_t *r);

#endif
