/* The list-valued settings: JOBQ_LIMITS and JOBQ_API_KEYS. They are parsed
 * after every layer is loaded, so a later layer replaces a list whole. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

static const char *const role_names[] = { "reader", "worker", "producer", "admin" };

const char *config_role_name(config_role_t r) { return role_names[r]; }

static int parse_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(d) || d < lo || d > hi)
        return -1;
    *out = d;
    return 0;
}

/* "concurrency=4", "rate=10" or "burst=20" into l. */
static int limit_attr(config_limit_t *l, char *tok)
{
    char *eq = strchr(tok, '=');
    double v;
    if (!eq)
        return -1;
    *eq = '\0';
    if (!strcmp(tok, "concurrency") && !parse_number(eq + 1, 0, 1e6, &v) && v == floor(v))
        l->concurrency = (int)v;
    else if (!strcmp(tok, "rate") && !parse_number(eq + 1, 0, 1e6, &v))
        l->rate = v;
    else if (!strcmp(tok, "burst") && !parse_number(eq + 1, 0, 1e6, &v))
        l->burst = v;
    else
        return -1;
    return 0;
}

/* "queue:NAME attr=v ..." into l. */
static int limit_entry(config_limit_t *l, char *entry)
{
    char *save, *target = strtok_r(entry, " \t", &save);
    if (!target)
        return -1;
    const char *name;
    if (!strncmp(target, "queue:", 6))
        name = target + 6;
    else if (!strncmp(target, "type:", 5))
        name = target + 5, l->target = LIMIT_TYPE;
    else if (!strncmp(target, "key:", 4))
        name = target + 4, l->target = LIMIT_KEY;
    else
        return -1;
    if (!job_name_valid(name))
        return -1;
    snprintf(l->name, sizeof l->name, "%s", name);
    int attrs = 0;
    for (char *tok; (tok = strtok_r(NULL, " \t", &save)); attrs++)
        if (limit_attr(l, tok) != 0)
            return -1;
    return attrs > 0 ? 0 : -1;
}

int config_parse_limits(config_t *cfg, char *err, size_t len)
{
    char text[sizeof cfg->limits_text];
    snprintf(text, sizeof text, "%s", cfg->limits_text);
    cfg->nlimits = 0;
    char *save;
    for (char *e = strtok_r(text, ";", &save); e; e = strtok_r(NULL, ";", &save)) {
        if (strspn(e, " \t") == strlen(e))
            continue;
        char shown[160];
        snprintf(shown, sizeof shown, "%s", e);
        config_limit_t l = { 0 };
        if (cfg->nlimits == CONFIG_MAX_LIMITS || limit_entry(&l, e) != 0) {
            snprintf(err, len, "JOBQ_LIMITS entry \"%s\" is not valid: expected \"queue:NAME\", "
                     "\"type:NAME\" or \"key:BREAKER_KEY\" then concurrency=N, rate=PER_SECOND and/or burst=N "
                     "(at most %d entries, separated by ';')", shown, CONFIG_MAX_LIMITS);
            return -1;
        }
        cfg->limits[cfg->nlimits++] = l;
    }
    return 0;
}

static int key_entry(config_key_t *k, char *entry)
{
    char *f[6] = { 0 };
    int n = 0;
    for (char *p = entry; n < 6;) {
        f[n++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    if (n < 3 || n > 5 || !job_name_valid(f[0]) || strlen(f[0]) >= sizeof k->name ||
        strlen(f[2]) < 16 || strlen(f[2]) >= sizeof k->secret)
        return -1;
    int r = 0;
    while (r < 4 && strcmp(f[1], role_names[r]) != 0)
        r++;
    if (r == 4)
        return -1;
    snprintf(k->name, sizeof k->name, "%s", f[0]);
    snprintf(k->secret, sizeof k->secret, "%s", f[2]);
    k->role = (config_role_t)r;
    k->rate = k->burst = -1;
    if (n >= 4 && parse_number(f[3], 0, 1e6, &k->rate) != 0)
        return -1;
    if (n == 5 && parse_number(f[4], 0, 1e6, &k->burst) != 0)
        return -1;
    return 0;
}

int config_parse_keys(config_t *cfg, char *err, size_t len)
{
    char text[sizeof cfg->api_keys_text];
    snprintf(text, sizeof text, "%s", cfg->api_keys_text);
    cfg->nkeys = 0;
    char *save;
    for (char *e = strtok_r(text, ", \t", &save); e; e = strtok_r(NULL, ", \t", &save)) {
        config_key_t k;
        char shown[64];
        snprintf(shown, sizeof shown, "%.*s", (int)strcspn(e, ":"), e); /* never the secret */
        if (cfg->nkeys == CONFIG_MAX_KEYS || key_entry(&k, e) != 0) {
            snprintf(err, len, "JOBQ_API_KEYS entry \"%s:...\" is not valid: expected "
                     "name:role:secret[:rate[:burst]] with role admin, producer, worker or "
                     "reader and a secret of 16 to 255 characters without ':' or ',' (at most "
                     "%d keys)", shown, CONFIG_MAX_KEYS);
            return -1;
        }
        for (int i = 0; i < cfg->nkeys; i++) {
            if (!strcmp(cfg->keys[i].name, k.name) || !strcmp(cfg->keys[i].secret, k.secret)) {
                snprintf(err, len, "JOBQ_API_KEYS: key \"%s\" repeats another key's name or "
                         "secret", k.name);
                return -1;
            }
        }
        cfg->keys[cfg->nkeys++] = k;
    }
    return 0;
}
