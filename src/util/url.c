/* Showing URLs without their passwords (url.h). */
#include "util/url.h"

#include <stdio.h>
#include <string.h>

char *url_redact(const char *url, char *out, size_t n)
{
    if (!n)
        return out;
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t host = strcspn(auth, "/?#"); /* the authority ends here */
    const char *at = memrchr(auth, '@', host);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        snprintf(out, n, "%s", url);
    else
        snprintf(out, n, "%.*s***%s", (int)(colon + 1 - url), url, at);
    return out;
}
