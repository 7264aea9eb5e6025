/* The webhook runner: job type "http.request" on queue "webhook".
 *
 * args: {"url": http(s) URL, "method"?: GET|POST|PUT|PATCH|DELETE|HEAD
 * (default POST with a body, else GET), "headers"?: {name: string},
 * "body"?: string or any JSON (sent as application/json), "timeout_ms"?:
 * 100 .. the job's timeout}. Success is a 2xx reply; the result keeps the
 * status, the content type and the first 4 KiB of the body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runners/runners_internal.h"

#define MAX_REPLY_BYTES (16L << 20)

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    task_t *t = ud;
    size_t len = size * n;
    size_t room = t->excerpt.len < TASK_EXCERPT_MAX ? TASK_EXCERPT_MAX - t->excerpt.len : 0;
    sbuf_add(&t->excerpt, data, len < room ? len : room);
    t->body_bytes += len;
    return len;
}

static bool refuse(task_t *t, const char *field, const char *detail)
{
    t->refused = true;
    problem_set(&t->problem, ERR_VALIDATION, field, "%s", detail);
    return false;
}

static bool set_body(task_t *t, json_t *body)
{
    if (!body)
        return true;
    if (json_is_string(body)) {
        t->body = strdup(json_string_value(body));
    } else {
        t->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    }
    if (!t->body)
        return refuse(t, "args.body", "the body could not be prepared");
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
    return true;
}

static bool check_args(task_t *t, json_t *args, const char **url, const char **method)
{
    static const char *const known[] = { "url", "method", "headers", "body", "timeout_ms", NULL };
    static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL };
    if (!runner_http_args(t, args, known, url))
        return false;
    *method = json_string_value(json_object_get(args, "method"));
    if (!*method)
        *method = json_object_get(args, "body") ? "POST" : "GET";
    for (const char *const *m = methods; *m; m++)
        if (strcmp(*m, *method) == 0)
            return true;
    return refuse(t, "args.method", "args.method must be GET, POST, PUT, PATCH, DELETE or HEAD");
}

static bool prepare(task_t *t, const job_t *job)
{
    const char *url, *method;
    if (strcmp(job->type, "http.request") != 0)
        return refuse(t, "type", "the webhook queue runs only jobs of type http.request");
    json_t *args = job_args(job);
    if (!check_args(t, args, &url, &method))
        return false;
    /* Leave half a second of the lease to report the outcome. */
    int64_t timeout = job->timeout_ms - 500;
    json_t *tm = json_object_get(args, "timeout_ms");
    if (tm) {
        if (!json_is_integer(tm) || json_integer_value(tm) < 100 || json_integer_value(tm) > timeout)
            return refuse(t, "args.timeout_ms", "args.timeout_ms must be 100 .. the job's timeout_ms - 500");
        timeout = json_integer_value(tm);
    }
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10000 ? timeout : 10000));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_REPLY_BYTES);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "jobq-webhook");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    if (!set_body(t, json_object_get(args, "body")))
        return false;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    return true;
}

/* The reply's first bytes as a JSON string, or null if they are not text. */
static json_t *excerpt(task_t *t)
{
    json_t *s = json_stringn(t->excerpt.p ? t->excerpt.p : "", t->excerpt.len);
    return s ? s : json_null();
}

static err_t outcome(task_t *t, CURLcode rc, json_t **result, char *msg, size_t len,
                     json_t **context)
{
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        snprintf(msg, len, "%s%s%s", curl_easy_strerror(rc), t->errbuf[0] ? ": " : "", t->errbuf);
        return runner_err_for_curl(rc);
    }
    const char *ctype = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
    json_t *body = excerpt(t);
    if (status >= 200 && status < 300) {
        *result = json_pack("{s:i, s:s?, s:o, s:I}", "status", (int)status, "content_type", ctype,
                            "body", body, "body_bytes", (json_int_t)t->body_bytes);
        return ERR_OK;
    }
    snprintf(msg, len, "HTTP %ld", status);
    *context = json_pack("{s:i, s:o}", "status", (int)status, "body", body);
    return runner_err_for_status(status);
}

const runner_kind_t runner_webhook = {
    .name = "webhook",
    .queue = "webhook",
    .type = "http.request",
    .prepare = prepare,
    .outcome = outcome,
};
