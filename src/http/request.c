/* Request accessors and replies; see request.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/request_internal.h"
#include "http/synthetic.h"
#include "util/check.h"
#include "util/jsonb.h"

const char *http_method(const http_req_t *r) { return r->method; }
const char *http_path(const http_req_t *r) { return r->url; }
const char *http_request_id(const http_req_t *r) { return r->request_id; }

static const char *pair(const http_pair_t *p, size_t n, const char *name, bool nocase)
{
    for (size_t i = 0; i < n; i++)
        if ((nocase ? strcasecmp(p[i].name, name) : strcmp(p[i].name, name)) == 0)
            return p[i].value;
    return NULL;
}

const char *http_header(const http_req_t *r, const char *name)
{
    if (r->syn)
        return pair(r->syn->headers, r->syn->nheaders, name, true);
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void http_set_principal(http_req_t *r, const char *name)
{
    snprintf(r->principal, sizeof r->principal, "%s", name ? name : "");
}

const char *http_principal(const http_req_t *r) { return r->principal; }

const char *http_query(const http_req_t *r, const char *key)
{
    if (r->syn)
        return pair(r->syn->query, r->syn->nquery, key, false);
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

typedef struct unknown_ctx {
    const char *const *allowed;
    const char *found;
} unknown_ctx_t;

static enum MHD_Result check_key(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)value;
    unknown_ctx_t *u = cls;
    for (const char *const *a = u->allowed; *a; a++)
        if (strcmp(*a, key) == 0)
            return MHD_YES;
    u->found = key;
    return MHD_NO; /* stop at the first unknown key */
}

const char *http_query_unknown(const http_req_t *r, const char *const *allowed)
{
    unknown_ctx_t u = { allowed, NULL };
    for (size_t i = 0; r->syn && i < r->syn->nquery && !u.found; i++)
        check_key(&u, MHD_GET_ARGUMENT_KIND, r->syn->query[i].name, r->syn->query[i].value);
    if (!r->syn)
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_key, &u);
    return u.found;
}

json_t *http_body_json(http_req_t *r, bool allow_empty, problem_t *p)
{
    if (r->body_len == 0) {
        if (allow_empty)
            return json_object();
        problem_set(p, ERR_VALIDATION, "body", "a JSON object body is required");
        return NULL;
    }
    json_error_t e;
    json_t *j = jsonb_parse(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        problem_set(p, ERR_VALIDATION, "body", "malformed JSON at line %d column %d: %s", e.line,
                    e.column, e.text);
        return NULL;
    }
    char path[sizeof p->field];
    if (!jsonb_within(j, JSONB_INPUT_DEPTH, path, sizeof path)) {
        json_decref(j);
        problem_set(p, ERR_VALIDATION, path[0] ? path : "body",
                    "the body nests deeper than %d levels", JSONB_INPUT_DEPTH);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        problem_set(p, ERR_VALIDATION, "body", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

size_t http_unescape(char *str)
{
    size_t n = MHD_http_unescape(str);
    for (char *p = memchr(str, '\0', n); p; p = memchr(p, '\0', n - (size_t)(p - str)))
        *p = 0x7f;
    return n;
}

void http_set_route(http_req_t *r, const char *route) { r->route = route; }
const char *http_route(const http_req_t *r) { return r->route ? r->route : "unmatched"; }
int http_status(const http_req_t *r) { return r->status; }
size_t http_reply_bytes(const http_req_t *r) { return r->reply_bytes; }

void http_client(const http_req_t *r, char *buf, size_t len)
{
    buf[0] = '\0';
    if (r->syn) {
        snprintf(buf, len, "127.0.0.1");
        return;
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

void http_set_param(http_req_t *r, int i, const char *value)
{
    if (i < 0 || i >= HTTP_MAX_PARAMS)
        return;
    free(r->params[i]);
    r->params[i] = strdup(value);
}

const char *http_param(const http_req_t *r, int i)
{
    return (i >= 0 && i < HTTP_MAX_PARAMS && r->params[i]) ? r->params[i] : "";
}

void http_attach(http_req_t *r, void *data, void (*detach)(void *data))
{
    CHECK(!r->hdata);
    r->hdata = data;
    r->hdata_detach = detach;
}

void http_req_free(http_req_t *r)
{
    free(r->body);
    free(r->resp);
    if (r->stream)
        http_stream_release(r->stream);
    if (r->hdata)
        r->hdata_detach(r->hdata);
    for (int i = 0; i < HTTP_MAX_PARAMS; i++)
        free(r->params[i]);
    for (int i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r);
}

void http_defer(http_req_t *r)
{
    if (r->phase == REQ_HANDLING)
        r->phase = REQ_DEFERRED;
}

bool http_peer_alive(const http_req_t *r)
{
    if (r->syn)
        return true;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return true;
    char byte;
    ssize_t n = recv(info->connect_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return true; /* the client already sent more: alive */
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

void http_add_header(http_req_t *r, const char *name, const char *value)
{
    if (r->nheaders == HTTP_MAX_HEADERS)
        return;
    r->headers[r->nheaders].name = strdup(name);
    r->headers[r->nheaders].value = strdup(value);
    r->nheaders++;
}

void http_reply_text(http_req_t *r, int status, const char *ctype, char *body)
{
    if (r->phase == REQ_REPLIED) { /* a second reply is a bug; keep the first */
        free(body);
        return;
    }
    r->status = status;
    r->ctype = ctype;
    r->resp = body;
    r->phase = REQ_REPLIED;
    http_req_resume(r);
}

void http_reply_static(http_req_t *r, int status, const char *ctype, const void *body, size_t n)
{
    if (r->phase == REQ_REPLIED)
        return;
    r->static_body = body;
    r->static_len = n;
    r->status = status;
    r->ctype = ctype;
    r->phase = REQ_REPLIED;
    http_req_resume(r);
}

void http_reply_json(http_req_t *r, int status, json_t *body)
{
    char *text = body ? jsonb_reply_text(body, 15) : NULL;
    http_reply_text(r, status, text ? "application/json" : NULL, text);
}

void http_reply_problem(http_req_t *r, const problem_t *p)
{
    int status = p->status ? p->status : err_status(p->type);
    json_t *detail = json_string(p->detail); /* NULL if truncation split a UTF-8 sequence */
    json_t *body = json_pack("{s:s, s:s, s:i, s:o, s:s}", "type", err_name(p->type), "title",
                             err_title(p->type), "status", status, "detail",
                             detail ? detail : json_string(err_title(p->type)), "request_id",
                             r->request_id);
    if (body && p->field[0])
        json_object_set_new(body, "field", json_string(p->field));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    http_reply_text(r, status, "application/problem+json", text);
}
