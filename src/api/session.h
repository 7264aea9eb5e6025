/*
 * session: the dashboard's sign-in. A browser that presents an API key
 * once (POST /v1/session) gets a session token in an HttpOnly,
 * SameSite=Strict cookie, which then stands for that key: an EventSource
 * and a page's fetches cannot send an Authorization header, and the page's
 * script never holds the key after sign-in.
 *
 * Only SHA-256 digests of tokens are kept, compared in constant time, so
 * neither memory nor timing gives one away. A session names its key, not
 * its role: the key's role in force decides, and a key removed by a reload
 * ends its sessions. At most SESSION_MAX live at once (the oldest goes
 * first); each lasts SESSION_TTL_MS.
 *
 * Threads: the loop thread only. Ownership: the guard owns the table.
 */
#ifndef JOBQ_API_SESSION_H
#define JOBQ_API_SESSION_H

#include <stdint.h>

#define SESSION_MAX 1024
#define SESSION_TTL_MS (12 * 3600 * 1000LL)
#define SESSION_TOKEN_LEN 64 /* hex digits */
#define SESSION_COOKIE "jobq_session"

typedef struct sessions sessions_t;

sessions_t *sessions_new(void);
void sessions_free(sessions_t *s);
/* A new session for key_name: its token (SESSION_TOKEN_LEN hex digits and
 * a NUL) into token. -1 if the kernel gave no randomness. */
int sessions_open(sessions_t *s, const char *key_name, int64_t now_ms,
                  char token[SESSION_TOKEN_LEN + 1]);
/* The key name of a live session with this token, or NULL. */
const char *sessions_find(const sessions_t *s, const char *token, int64_t now_ms);
/* Ends the session with this token, if any. */
void sessions_close(sessions_t *s, const char *token);
/* When the session ends (ms since the epoch); 0 if there is none. */
int64_t sessions_expiry(const sessions_t *s, const char *token, int64_t now_ms);

#endif
