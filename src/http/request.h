/*
 * request: one HTTP request as handlers see it, and the ways to answer it.
 *
 * A handler either replies before returning, or calls http_defer() and
 * replies later from a callback on the loop thread; either way exactly one
 * reply. Reply bodies are taken over by the request.
 */
#ifndef JOBQ_HTTP_REQUEST_H
#define JOBQ_HTTP_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/errors.h"

#define HTTP_REQUEST_ID_MAX 64
#define HTTP_MAX_PARAMS 2

typedef struct http_req http_req_t;

const char *http_method(const http_req_t *r);
const char *http_path(const http_req_t *r);
const char *http_request_id(const http_req_t *r);
/* Query-string argument, or NULL. */
const char *http_query(const http_req_t *r, const char *key);
/* The first query-string key not in the NULL-terminated list, or NULL. */
const char *http_query_unknown(const http_req_t *r, const char *const *allowed);

/* A request header's value, or NULL. */
const char *http_header(const http_req_t *r, const char *name);

/* Who the request authenticated as (an API key's name), for logs; the
 * request keeps a copy. "" until set. */
void http_set_principal(http_req_t *r, const char *name);
const char *http_principal(const http_req_t *r);

/* Parses the body as a JSON object. On failure fills p (validation). An empty
 * body is an empty object when allow_empty. New reference on success. */
json_t *http_body_json(http_req_t *r, bool allow_empty, problem_t *p);

/* The route pattern that matched (such as "/v1/jobs/{id}"), static, for
 * metrics and logs; "unmatched" until the router sets it. */
void http_set_route(http_req_t *r, const char *route);
const char *http_route(const http_req_t *r);
/* The status of the reply given, 0 before one; its body size in bytes. */
int http_status(const http_req_t *r);
size_t http_reply_bytes(const http_req_t *r);
/* The client's address as text ("127.0.0.1"), into buf. */
void http_client(const http_req_t *r, char *buf, size_t len);

/* Path parameters set by the router. */
void http_set_param(http_req_t *r, int i, const char *value);
const char *http_param(const http_req_t *r, int i);

/* Ties a handler's state to the request: detach(data) runs exactly once,
 * when the request is freed (reply sent, client gone, or server stopping),
 * and r is invalid from then on. The state stays the handler's: detach
 * frees it, or keeps it until whatever still refers to it (a store read in
 * flight) has finished. One attachment per request. */
void http_attach(http_req_t *r, void *data, void (*detach)(void *data));

void http_reply_json(http_req_t *r, int status, json_t *body); /* steals body; NULL: no body */
void http_reply_text(http_req_t *r, int status, const char *ctype, char *body); /* takes body */
void http_reply_problem(http_req_t *r, const problem_t *p);
/* A body that outlives the request (compiled-in assets): not copied, not
 * freed, any bytes; ctype static too. */
void http_reply_static(http_req_t *r, int status, const char *ctype, const void *body, size_t n);
void http_add_header(http_req_t *r, const char *name, const char *value);
/* The reply will come later, from a callback. */
void http_defer(http_req_t *r);

/* A streamed reply (server-sent events): http_stream_begin answers r with
 * status, ctype and the headers added so far, and a body that stays open;
 * http_stream_write queues a copy of bytes for it; http_stream_end closes
 * the body once what is queued has left. Instead of a deadline the stream
 * has a bound: a write that would hold more than max_queued unsent bytes
 * (a client that stopped reading) ends the stream with an error and
 * returns false. Either way r stays valid until its detach (http_attach)
 * runs: client gone, stream ended, or server stopped. Loop thread. */
bool http_stream_begin(http_req_t *r, int status, const char *ctype, size_t max_queued);
bool http_stream_write(http_req_t *r, const char *data, size_t n);
void http_stream_end(http_req_t *r);

/* The server's %-decoding of paths and query strings (libmicrohttpd's),
 * in place, except that a NUL byte becomes DEL (0x7f): the rest of the
 * server sees C strings, where "victim%00x" would have acted on "victim".
 * DEL is valid in no id, name or number, so such a request is refused by
 * the validation of the very field that held it. Returns the new length. */
size_t http_unescape(char *s);

/* False once the client has closed its end. libmicrohttpd does not watch
 * suspended connections, so a long poll checks before it is handed work. */
bool http_peer_alive(const http_req_t *r);

#endif
