/*
 * url: what of a URL may be shown. A database URL may carry a password
 * (postgres://user:secret@host/db); logs, errors and --print-config show
 * it as ***. Pure, any thread.
 */
#ifndef JOBQ_UTIL_URL_H
#define JOBQ_UTIL_URL_H

#include <stddef.h>

/* url with the password of its user info (between "scheme://user:" and
 * "@") replaced by ***, into out (truncated to n-1 bytes); out if n > 0. */
char *url_redact(const char *url, char *out, size_t n);

#endif
