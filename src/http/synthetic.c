/* Requests without a socket; see synthetic.h. */
#include "http/synthetic.h"

#include <stdlib.h>
#include <string.h>

#include "http/request_internal.h"

http_req_t *http_synthetic_new(const http_synthetic_t *spec)
{
    http_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->syn = spec;
    r->method = spec->method;
    r->url = spec->path;
    strcpy(r->request_id, "synthetic");
    if (spec->body_len) {
        if (!(r->body = malloc(spec->body_len + 1))) {
            free(r);
            return NULL;
        }
        memcpy(r->body, spec->body, spec->body_len);
        r->body[spec->body_len] = '\0';
        r->body_len = spec->body_len;
    }
    r->phase = REQ_HANDLING;
    return r;
}

int http_synthetic_reply(const http_req_t *r, int *status, const char **body)
{
    if (r->phase != REQ_REPLIED)
        return 0;
    *status = r->status;
    *body = r->resp ? r->resp : "";
    return 1;
}

void http_synthetic_free(http_req_t *r) { http_req_free(r); }
