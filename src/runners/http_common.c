/* What every HTTP runner shares: checking args (known fields, the URL,
 * headers) and mapping HTTP outcomes onto jobq's error taxonomy. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/fields.h"
#include "runners/policy.h"
#include "runners/runners_internal.h"

static bool refuse(task_t *t, const char *field, const char *detail)
{
    t->refused = true;
    problem_set(&t->problem, ERR_VALIDATION, field, "%s", detail);
    return false;
}

bool runner_http_args(task_t *t, json_t *args, const char *const *known, const char **url)
{
    if (!json_is_object(args))
        return refuse(t, "args", "args must be an object with a url");
    if (fields_only(args, known, "args.", &t->problem) != 0) {
        t->refused = true;
        return false;
    }
    const char *key;
    json_t *v;
    *url = json_string_value(json_object_get(args, "url"));
    if (!runner_url_valid(*url))
        return refuse(t, "args.url", "args.url must be an http:// or https:// URL with a host");
    json_t *headers = json_object_get(args, "headers");
    if (headers && !json_is_object(headers))
        return refuse(t, "args.headers", "args.headers must be an object of strings");
    json_object_foreach(headers, key, v) {
        if (!json_is_string(v) || !runner_header_valid(key, json_string_value(v)))
            return refuse(t, "args.headers", "header names must be tokens other than Host, "
                          "Content-Length and Transfer-Encoding, values single lines, each "
                          "line at most 1000 bytes");
        char line[RUNNER_HEADER_MAX + 1];
        snprintf(line, sizeof line, "%s: %s", key, json_string_value(v));
        t->headers = curl_slist_append(t->headers, line);
    }
    return true;
}

err_t runner_err_for_status(long status)
{
    if (status == 404 || status == 410)
        return ERR_NOT_FOUND;
    if (status == 401 || status == 403)
        return ERR_UNAUTHORIZED;
    if (status == 429)
        return ERR_RATE_LIMITED;
    if (status == 408 || status == 504)
        return ERR_TIMEOUT;
    if (status == 409)
        return ERR_CONFLICT;
    if (status >= 500)
        return ERR_UNAVAILABLE;
    return ERR_VALIDATION; /* other 4xx, and anything else unexpected */
}

err_t runner_err_for_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return ERR_TIMEOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_FILESIZE_EXCEEDED: return ERR_VALIDATION;
    default: return ERR_UNAVAILABLE; /* resets, refused connections, DNS, TLS */
    }
}

