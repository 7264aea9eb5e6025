/* Dashboard sessions: token digests in a fixed table; see session.h. */
#include "api/session.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/randid.h"

typedef struct session {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char key[64];
    int64_t expires_ms; /* 0: a free slot */
} session_t;

struct sessions {
    session_t v[SESSION_MAX];
};

sessions_t *sessions_new(void) { return calloc(1, sizeof(sessions_t)); }

void sessions_free(sessions_t *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

static void digest_of(const char *token, unsigned char out[SHA256_DIGEST_LENGTH])
{
    SHA256((const unsigned char *)token, strlen(token), out);
}

/* Every slot is compared, live or not, so the time says nothing. */
static int find(const sessions_t *s, const char *token, int64_t now)
{
    if (!token || strlen(token) != SESSION_TOKEN_LEN)
        return -1;
    unsigned char d[SHA256_DIGEST_LENGTH];
    digest_of(token, d);
    int found = -1;
    for (int i = 0; i < SESSION_MAX; i++) {
        bool same = CRYPTO_memcmp(d, s->v[i].digest, sizeof d) == 0;
        if (same && s->v[i].expires_ms > now)
            found = i;
    }
    return found;
}

int sessions_open(sessions_t *s, const char *key_name, int64_t now,
                  char token[SESSION_TOKEN_LEN + 1])
{
    if (randid_hex(token, SESSION_TOKEN_LEN / 2) != 0)
        return -1;
    int slot = 0; /* a free or expired slot, else the one ending first */
    for (int i = 0; i < SESSION_MAX; i++) {
        if (s->v[i].expires_ms <= now) {
            slot = i;
            break;
        }
        if (s->v[i].expires_ms < s->v[slot].expires_ms)
            slot = i;
    }
    session_t *e = &s->v[slot];
    digest_of(token, e->digest);
    snprintf(e->key, sizeof e->key, "%s", key_name);
    e->expires_ms = now + SESSION_TTL_MS;
    return 0;
}

const char *sessions_find(const sessions_t *s, const char *token, int64_t now)
{
    int i = find(s, token, now);
    return i < 0 ? NULL : s->v[i].key;
}

int64_t sessions_expiry(const sessions_t *s, const char *token, int64_t now)
{
    int i = find(s, token, now);
    return i < 0 ? 0 : s->v[i].expires_ms;
}

void sessions_close(sessions_t *s, const char *token)
{
    int i = find(s, token, INT64_MIN);
    if (i >= 0)
        memset(&s->v[i], 0, sizeof s->v[i]);
}
