/* /v1/session: the dashboard's sign-in with an API key, held as an
 * HttpOnly, SameSite=Strict session cookie (api/session.h, guard.h). */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/guard.h"
#include "api/session.h"
#include "util/clock.h"

static json_t *identity_json(const guard_identity_t *who, bool signed_in)
{
    char until[32] = "";
    if (who->expires_ms)
        clock_format_rfc3339(who->expires_ms, until, sizeof until);
    return json_pack("{s:b, s:b, s:s?, s:s, s:s?}", "keys", who->keys, "signed_in", signed_in,
                     "name", who->name, "role", config_role_name(who->role), "expires_at",
                     until[0] ? until : NULL);
}

/* GET: who this browser is. Always 200, so a page can ask before it has
 * signed in (signed_in false) without an error in its console. */
void api_session_get(api_call_t *c)
{
    guard_identity_t who;
    bool in = guard_identify(c->api->guard, c->r, clock_now_ms(), &who);
    api_reply_text(c, 200, api_dump(identity_json(&who, in)));
}

void api_session_post(api_call_t *c)
{
    problem_t p;
    if (!(c->body = http_body_json(c->r, false, &p))) {
        api_reply_problem(c, &p);
        return;
    }
    json_t *key = json_object_get(c->body, "key");
    const char *secret = json_string_value(key);
    const char *unknown = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(c->body, k, v) if (strcmp(k, "key") != 0) unknown = k;
    if (unknown) {
        api_reply_error(c, ERR_VALIDATION, unknown, "unknown field");
        return;
    }
    if (!guard_keys_enabled(c->api->guard)) {
        guard_identity_t who;
        guard_identify(c->api->guard, c->r, clock_now_ms(), &who);
        api_reply_text(c, 200, api_dump(identity_json(&who, true)));
        return;
    }
    if (!secret || !secret[0] || strlen(secret) > 512) {
        api_reply_error(c, ERR_VALIDATION, "key", "key must be the API key, a string of 1-512 bytes");
        return;
    }
    char token[SESSION_TOKEN_LEN + 1];
    guard_identity_t who;
    if (guard_sign_in(c->api->guard, c->r, secret, clock_now_ms(), token, &who) != GUARD_OK)
        return; /* answered */
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld",
             SESSION_COOKIE, token, (long long)(SESSION_TTL_MS / 1000));
    http_add_header(c->r, "Set-Cookie", cookie);
    http_add_header(c->r, "Cache-Control", "no-store");
    api_reply_text(c, 200, api_dump(identity_json(&who, true)));
}

void api_session_delete(api_call_t *c)
{
    guard_sign_out(c->api->guard, c->r);
    http_add_header(c->r, "Set-Cookie",
                    SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    http_reply_text(c->r, 204, NULL, NULL);
}
