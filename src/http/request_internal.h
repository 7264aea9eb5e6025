/* request_internal: the http_req_t layout, shared by server.c and request.c only. */
#ifndef JOBQ_HTTP_REQUEST_INTERNAL_H
#define JOBQ_HTTP_REQUEST_INTERNAL_H

#include <microhttpd.h>
#include <stdbool.h>

#include "http/request.h"

#define HTTP_MAX_HEADERS 12

typedef enum { REQ_NEW, REQ_HANDLING, REQ_DEFERRED, REQ_REPLIED } req_phase_t;

struct http_server;
struct http_conn;
struct http_synthetic;
struct http_stream;

struct http_req {
    struct MHD_Connection *conn;
    struct http_server *srv;
    struct http_conn *hc; /* its connection's record in the server */
    const struct http_synthetic *syn; /* set for a request without a socket (synthetic.h) */
    const char *method, *url; /* owned by MHD, valid for the request */
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    char principal[64];
    char *body;
    size_t body_len, body_cap, max_body, received;
    bool too_big, too_many, suspended, sent;
    req_phase_t phase;
    const char *route;
    int64_t started_ns;
    char *params[HTTP_MAX_PARAMS];
    void *hdata;
    void (*hdata_detach)(void *);

    int status;
    size_t reply_bytes;
    const char *ctype;
    char *resp;
    const void *static_body; /* http_reply_static's, borrowed */
    size_t static_len;
    struct http_stream *stream; /* a streamed reply's body (server.c), NULL otherwise */
    struct {
        char *name, *value;
    } headers[HTTP_MAX_HEADERS];
    int nheaders;
};

void http_req_free(http_req_t *r);
void http_req_resume(http_req_t *r);
/* The request lets go of its stream (server.c): the reply may outlive it. */
void http_stream_release(struct http_stream *st);

#endif
