/*
 * curl_loop: libcurl's multi interface driven by the libevent loop, so
 * built-in runners do their HTTP without a thread and without blocking.
 *
 * Threads: the loop thread only. Ownership: the caller creates and
 * configures each easy handle; curl_loop_add() borrows it until its done
 * callback, after which the caller cleans it up. Callbacks run from loop
 * events, never from inside a curl_loop_* call.
 */
#ifndef JOBQ_CURL_LOOP_H
#define JOBQ_CURL_LOOP_H

#include <curl/curl.h>
#include <event2/event.h>

typedef struct curl_loop curl_loop_t;
typedef void (*curl_loop_done_cb)(void *ud, CURL *easy, CURLcode result);

curl_loop_t *curl_loop_new(struct event_base *base);
/* Aborts every transfer still running, without calling their callbacks. */
void curl_loop_free(curl_loop_t *l);

/* Starts a transfer. Returns 0, or -1 (nothing started, no callback). */
int curl_loop_add(curl_loop_t *l, CURL *easy, curl_loop_done_cb done, void *ud);
/* Stops a running transfer; its callback will not run. */
void curl_loop_remove(curl_loop_t *l, CURL *easy);

#endif
