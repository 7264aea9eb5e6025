#include "cli/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *data;
    size_t len;
} buf_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;
    size_t add = size * n;
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    d[b->len] = '\0';
    return add;
}

void client_init(client_t *c, const char *server_flag)
{
    const char *url = server_flag ? server_flag : getenv("JOBQ_URL");
    const char *listen = getenv("JOBQ_LISTEN");
    if (url)
        snprintf(c->base, sizeof c->base, "%s", url);
    else if (listen && strncmp(listen, "0.0.0.0:", 8) == 0)
        snprintf(c->base, sizeof c->base, "http://127.0.0.1:%s", listen + 8);
    else
        snprintf(c->base, sizeof c->base, "http://%s", listen ? listen : "127.0.0.1:7420");
    size_t n = strlen(c->base);
    if (n && c->base[n - 1] == '/')
        c->base[n - 1] = '\0';
    const char *key = getenv("JOBQ_API_KEY");
    c->auth[0] = '\0';
    if (key && *key && strlen(key) < sizeof c->auth - 32)
        snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", key);
}

int client_request(const client_t *c, const char *method, const char *path, json_t *body,
                   json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    CURL *h = curl_easy_init();
    if (!h)
        return snprintf(err, errlen, "cannot start libcurl"), -1;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (c->auth[0])
        hdrs = curl_slist_append(hdrs, c->auth);
    buf_t resp = { 0 };
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (text)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc != CURLE_OK)
        snprintf(err, errlen, "cannot reach jobq at %s: %s", c->base, curl_easy_strerror(rc));
    else
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && resp.len)
        *out = json_loads(resp.data, 0, NULL);
    free(resp.data);
    free(text);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return (int)status;
}
