/* Serving the compiled-in dashboard (ui.h). Every path under /ui/ that is
 * not a file is the page itself, whose script draws the view the path
 * names, so a reload or a shared link lands where it was. */
#include "ui/ui.h"

#include <string.h>
#include <strings.h>

#include "ui/assets.h"

/* No script, style or connection but our own; no framing (clickjacking);
 * nothing inline. */
#define UI_CSP \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; " \
    "frame-ancestors 'none'"

static const ui_asset_t *find(const char *path)
{
    for (size_t i = 0; i < ui_nassets; i++)
        if (strcmp(ui_assets[i].path, path) == 0)
            return &ui_assets[i];
    return NULL;
}

static bool accepts_gzip(const http_req_t *r)
{
    const char *ae = http_header(r, "Accept-Encoding");
    return ae && strcasestr(ae, "gzip") != NULL; /* "gzip;q=0" is not worth a parser here */
}

static void security_headers(http_req_t *r)
{
    http_add_header(r, "Content-Security-Policy", UI_CSP);
    http_add_header(r, "X-Frame-Options", "DENY");
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    http_add_header(r, "Referrer-Policy", "no-referrer");
}

static void send_asset(http_req_t *r, const ui_asset_t *a)
{
    security_headers(r);
    http_add_header(r, "ETag", a->etag);
    http_add_header(r, "Vary", "Accept-Encoding");
    http_add_header(r, "Cache-Control",
                    a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    const char *inm = http_header(r, "If-None-Match");
    if (inm && strstr(inm, a->etag)) {
        http_reply_static(r, 304, NULL, "", 0);
        return;
    }
    if (a->gz && accepts_gzip(r)) {
        http_add_header(r, "Content-Encoding", "gzip");
        http_reply_static(r, 200, a->ctype, a->gz, a->gz_len);
        return;
    }
    http_reply_static(r, 200, a->ctype, a->body, a->len);
}

static void refuse(http_req_t *r, int status, const char *field, const char *detail)
{
    problem_t p;
    problem_set(&p, status == 405 ? ERR_VALIDATION : ERR_NOT_FOUND, field, "%s", detail);
    p.status = status;
    http_reply_problem(r, &p);
}

bool ui_route(http_req_t *r)
{
    const char *path = http_path(r);
    if (strncmp(path, "/ui", 3) != 0 || (path[3] != '\0' && path[3] != '/'))
        return false;
    http_set_route(r, "/ui/*");
    const char *m = http_method(r);
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        http_add_header(r, "Allow", "GET, HEAD");
        refuse(r, 405, "method", "the dashboard's files are only read (GET, HEAD)");
        return true;
    }
    if (path[3] == '\0') {
        http_add_header(r, "Location", "/ui/");
        http_reply_static(r, 308, NULL, "", 0);
        return true;
    }
    const ui_asset_t *a = find(path);
    if (!a && strncmp(path, "/ui/assets/", 11) == 0) {
        refuse(r, 404, "path", "no such file");
        return true;
    }
    send_asset(r, a ? a : find("/ui/"));
    return true;
}
