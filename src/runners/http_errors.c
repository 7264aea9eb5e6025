/* How HTTP outcomes map onto jobq's error taxonomy, for every HTTP runner. */
#include "runners/runners_internal.h"

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

