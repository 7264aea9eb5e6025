/*
 * synthetic: a request that never touched a socket, for the request-path
 * fuzz harness (fuzz/fuzz_request.c) and tests. It goes through the same
 * route, guard, handlers and validation as one from libmicrohttpd; only
 * the header and query lookups read the given pairs instead.
 *
 * Ownership: the caller owns the request (http_synthetic_free) and the
 * pairs, which must outlive it. Loop thread, like every request.
 */
#ifndef JOBQ_HTTP_SYNTHETIC_H
#define JOBQ_HTTP_SYNTHETIC_H

#include <stddef.h>

#include "http/request.h"

typedef struct http_pair {
    const char *name, *value;
} http_pair_t;

typedef struct http_synthetic {
    const char *method, *path; /* path decoded, without the query */
    const http_pair_t *headers, *query;
    size_t nheaders, nquery;
    const char *body;
    size_t body_len;
} http_synthetic_t;

/* NULL if out of memory. The body is copied. */
http_req_t *http_synthetic_new(const http_synthetic_t *spec);
/* Whether the handler has replied; if so its status and body (borrowed). */
int http_synthetic_reply(const http_req_t *r, int *status, const char **body);
void http_synthetic_free(http_req_t *r);

#endif
