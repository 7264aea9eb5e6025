#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/url.h"

/* T_INT is an int64_t unless the row's size says int; T_MS is a duration in
 * ms ("1500", "30s", "24h", "7d"); T_BYTES a size ("512M"); T_KEYS a string
 * printed without its secrets; T_SECRET a string printed as *** when set. */
typedef enum {
    T_STR, T_INT, T_MS, T_BYTES, T_BOOL, T_DBL, T_DURABILITY, T_LOGLEVEL, T_LOGFORMAT, T_KEYS,
    T_SECRET,
    T_URL /* a string printed without the password it may carry */
} ctype_t;

/* One row per setting: parsing, validation, printing and help all read it. */
typedef struct setting {
    const char *key;
    ctype_t type;
    size_t off;
    size_t size; /* for T_STR */
    double lo, hi;
    const char *def;
    const char *help;
    bool reload; /* RELOAD: SIGHUP applies it; otherwise only a restart does */
} setting_t;

#define RELOAD true

#define F(m) offsetof(config_t, m)
#define STR(m) F(m), sizeof(((config_t *)0)->m)
#define I32(m) F(m), sizeof(int)
static const setting_t settings[] = {
    { "JOBQ_LISTEN", T_STR, STR(listen), 0, 0, "127.0.0.1:7420", "HTTP address host:port (port 0 picks one)" },
    { "JOBQ_DATA_DIR", T_STR, STR(data_dir), 0, 0, "./data", "folder for the SQLite database (by default), the spill file, commands and downloads" },
    { "JOBQ_DATABASE_URL", T_URL, STR(database_url), 0, 0, "", "sqlite://PATH (default sqlite://<data dir>/jobq.db), or postgres://USER[:PASSWORD]@HOST[:PORT]/DB (one jobq per database unless JOBQ_CLUSTER)" },
    { "JOBQ_CLUSTER", T_BOOL, F(cluster), 0, 0, 0, "false", "several jobq nodes on one PostgreSQL database (every node sets it)" },
    { "JOBQ_NODE_TTL", T_MS, F(node_ttl_ms), 0, 1000, 600000, "10s", "cluster mode: a node that has not renewed its row this long is dead, and its running jobs are retried" },
    { "JOBQ_CLAIM_POLL", T_MS, F(claim_poll_ms), 0, 10, 60000, "500ms", "cluster mode: how often waiting workers' claims are asked again while none is due (jittered)" },
    { "JOBQ_DURABILITY", T_DURABILITY, F(durability), 0, 0, 0, "fsync", "fsync | os | memory (tests only)" },
    { "JOBQ_LOG_LEVEL", T_LOGLEVEL, F(log_level), 0, 0, 0, "info", "debug | info | warn | error", RELOAD },
    { "JOBQ_LOG_FORMAT", T_LOGFORMAT, F(log_format), 0, 0, 0, "json", "json | text (for a terminal)" },
    { "JOBQ_SLOW_REQUEST_MS", T_INT, F(slow_request_ms), 0, 1, 3600000, "1000", "requests slower than this are logged at warn" },
    { "JOBQ_SLOW_COMMIT_MS", T_INT, F(slow_commit_ms), 0, 1, 3600000, "500", "group commits slower than this are logged at warn" },
    { "JOBQ_COMPACT_INTERVAL", T_MS, F(compact_interval_ms), 0, 1, 600000, "250ms", "journaled writes reach the database at most this late, a running job's at most 3 times (a read of them compacts at once)" },
    { "JOBQ_MAX_BODY_BYTES", T_INT, F(max_body_bytes), 0, 1024, 64 << 20, "1048576", "largest request body" },
    { "JOBQ_IDLE_TIMEOUT", T_MS, F(idle_timeout_ms), 0, 1000, 3600000, "30s", "an HTTP connection with nothing to say this long is closed" },
    { "JOBQ_HEADER_TIMEOUT", T_MS, F(header_timeout_ms), 0, 100, 600000, "10s", "request headers must be complete this long after the request line" },
    { "JOBQ_BODY_TIMEOUT", T_MS, F(body_timeout_ms), 0, 100, 3600000, "30s", "a request body must arrive, and a reply be read, within this (however slowly bytes trickle)" },
    { "JOBQ_FAKTORY_LISTEN", T_STR, STR(faktory_listen), 0, 0, "127.0.0.1:7419", "Faktory protocol address host:port (port 0 picks one; off: no Faktory listener)" },
    { "JOBQ_FAKTORY_TLS_CERT", T_STR, STR(faktory_tls_cert), 0, 0, "", "PEM certificate (chain) file: the Faktory port speaks TLS 1.2+ only" },
    { "JOBQ_FAKTORY_TLS_KEY", T_STR, STR(faktory_tls_key), 0, 0, "", "PEM private key file for JOBQ_FAKTORY_TLS_CERT" },
    { "JOBQ_AUTO_MIGRATE", T_BOOL, F(auto_migrate), 0, 0, 0, "true", "apply schema migrations at start" },
    { "JOBQ_MIN_FREE_DISK_BYTES", T_INT, F(min_free_disk_bytes), 0, 0, 1e15, "67108864", "free space in the data folder below which ready fails" },
    { "JOBQ_WORKER_GONE_MS", T_INT, F(worker_gone_ms), 0, 1000, 86400000, "60000", "a worker silent this long is shown as gone (forgotten after 10x)" },
    { "JOBQ_RUNNERS", T_STR, STR(runners), 0, 0, "", "built-in runners and their concurrency, e.g. webhook=16,download=4,command=2 (none by default)" },
    { "JOBQ_DOWNLOAD_DIR", T_STR, STR(download_dir), 0, 0, "", "where download jobs write (default <data dir>/downloads)" },
    { "JOBQ_DOWNLOAD_ALLOW_PRIVATE", T_BOOL, F(download_allow_private), 0, 0, 0, "false", "let downloads reach loopback and private addresses" },
    { "JOBQ_FINISHED_IN_MEMORY", T_INT, F(finished_in_memory), 0, 0, 10000000, "10000", "finished jobs kept in memory" },
    { "JOBQ_QUEUED_IN_MEMORY", T_BYTES, F(queued_in_memory), 0, 0, 1e15, "64M", "bytes of queued jobs kept in memory; past it they wait in a spill file in the data folder (0 = all in memory)", RELOAD },
    { "JOBQ_DEFAULT_MAX_RETRIES", T_INT, I32(job.max_retries), 0, 1000, "3", "retries when a job names none" },
    { "JOBQ_DEFAULT_TIMEOUT_MS", T_INT, F(job.timeout_ms), 0, 1000, 86400000, "60000", "lease length when a job names none" },
    { "JOBQ_BACKOFF_INITIAL_MS", T_INT, F(job.backoff.initial_ms), 0, 0, 86400000, "1000", "first retry delay" },
    { "JOBQ_BACKOFF_MAX_MS", T_INT, F(job.backoff.max_ms), 0, 0, 604800000, "3600000", "longest retry delay" },
    { "JOBQ_BACKOFF_MULTIPLIER", T_DBL, F(job.backoff.multiplier), 0, 1, 100, "2.0", "growth per retry" },
    { "JOBQ_BACKOFF_JITTER", T_DBL, F(job.backoff.jitter), 0, 0, 1, "0.2", "+/- fraction of randomness" },
    { "JOBQ_API_KEYS", T_KEYS, STR(api_keys_text), 0, 0, "", "name:role:secret[:rate[:burst]],... roles admin|producer|worker|reader; set it in .env or the environment (flags show in ps); none: no authentication, keep jobq on loopback", RELOAD },
    { "JOBQ_FAKTORY_PASSWORD", T_SECRET, STR(faktory_password), 0, 0, "", "one admin password for the Faktory protocol, besides JOBQ_API_KEYS (whose secrets are passwords too); set it in .env or the environment", RELOAD },
    { "JOBQ_RATE_LIMIT", T_DBL, F(rate_limit), 0, 0, 1e6, "0", "API requests per second per client (key or address; in cluster mode each node enforces its share); 0 = off", RELOAD },
    { "JOBQ_RATE_BURST", T_DBL, F(rate_burst), 0, 0, 1e6, "0", "API burst per client (0 = max(1, rate))", RELOAD },
    { "JOBQ_LIMITS", T_STR, STR(limits_text), 0, 0, "", "execution limits: \"queue:NAME concurrency=N rate=R burst=B; type:NAME ...; key:HOST ...\" (cluster mode: concurrency for the whole cluster, each node its share of a rate)", RELOAD },
    { "JOBQ_BREAKER_FAILURES", T_INT, I32(breaker_failures), 0, 1000000, "5", "dependency failures (timeout, unavailable, internal) in a row that open a breaker (0 = rule off)", RELOAD },
    { "JOBQ_BREAKER_RATIO", T_DBL, F(breaker_ratio), 0, 0, 1, "0.5", "failure ratio over the window that opens a breaker (0 = rule off)", RELOAD },
    { "JOBQ_BREAKER_MIN_REQUESTS", T_INT, I32(breaker_min_requests), 1, 1000000, "20", "outcomes in the window before the ratio applies", RELOAD },
    { "JOBQ_BREAKER_WINDOW", T_MS, F(breaker_window_ms), 0, 1000, 86400000, "60s", "rolling window for the failure ratio", RELOAD },
    { "JOBQ_BREAKER_COOLDOWN", T_MS, F(breaker_cooldown_ms), 0, 10, 86400000, "30s", "how long a breaker stays open before a probe", RELOAD },
    { "JOBQ_BREAKER_COOLDOWN_MAX", T_MS, F(breaker_cooldown_max_ms), 0, 10, 604800000, "10m", "cap of the cool-down, which doubles on each re-open", RELOAD },
    { "JOBQ_BREAKER_PROBES", T_INT, I32(breaker_probes), 1, 1000, "1", "jobs leased at once while half-open", RELOAD },
    { "JOBQ_PRIORITY_AGING", T_MS, F(priority_aging_ms), 0, 0, 604800000, "0", "a queued job gains one priority level per this much waiting (0 = off)", RELOAD },
    { "JOBQ_RETAIN_COMPLETED", T_MS, F(retain_completed_ms), 0, 0, 3650LL * 86400000, "24h", "completed and cancelled jobs are deleted after this (0 = keep)", RELOAD },
    { "JOBQ_RETAIN_FAILED", T_MS, F(retain_failed_ms), 0, 0, 3650LL * 86400000, "7d", "failed jobs are deleted after this (0 = keep)", RELOAD },
    { "JOBQ_HISTORY_PARTITION_MIN", T_MS, F(history_partition_min_ms), 0, 1000, 86400000, "1m", "cluster mode: narrowest partition of finished jobs (a retention under 8x this deletes jobs one by one)", RELOAD },
    { "JOBQ_MEMORY_LIMIT", T_BYTES, F(memory_limit), 0, 0, 1e15, "1G", "bytes of jobs and caches held; above 80% low priorities are shed (0 = no limit)", RELOAD },
    { "JOBQ_CACHE_TTL_MS", T_INT, F(cache_ttl_ms), 0, 0, 3600000, "1000", "list and stats query cache lifetime (0 = no cache)", RELOAD },
    { "JOBQ_MAX_CONNECTIONS", T_INT, F(max_connections), 0, 4, 100000, "1024", "open connections at most (past it: 503 and close)", RELOAD },
    { "JOBQ_MAX_CONNECTIONS_PER_CLIENT", T_INT, F(max_connections_per_client), 0, 0, 100000, "256", "open connections from one address at most (0 = no limit)", RELOAD },
    { "JOBQ_MAX_WAITERS", T_INT, F(max_waiters), 0, 1, 100000, "512", "long-poll lease requests waiting at once at most", RELOAD },
    { "JOBQ_MAX_STREAMS", T_INT, F(max_streams), 0, 0, 10000, "64", "event streams (GET /v1/events, the dashboard's live data) open at once at most (0 = none)", RELOAD },
    { "JOBQ_SHUTDOWN_GRACE", T_MS, F(shutdown_grace_ms), 0, 0, 3600000, "10s", "on SIGTERM, how long running jobs may finish", RELOAD },
    { "JOBQ_FAULT_COMMIT_DELAY_MS", T_INT, F(fault_commit_delay_ms), 0, 0, 60000, "0", "TESTING ONLY: delay every commit" },
    { "JOBQ_FAULT_COMMIT_FAIL_MS", T_INT, F(fault_commit_fail_ms), 0, 0, 600000, "0", "TESTING ONLY: refuse commits this long after the first" },
    { "JOBQ_FAULT_COMMIT_LOST_EVERY", T_INT, F(fault_commit_lost_every), 0, 0, 1000000, "0", "TESTING ONLY (PostgreSQL): every Nth commit is reported failed after it committed, as when the session breaks in COMMIT" },
    { "JOBQ_FAULT_READ_DELAY_MS", T_INT, F(fault_read_delay_ms), 0, 0, 60000, "0", "TESTING ONLY: delay every list and stats read (a slow query)" },
    { "JOBQ_FAULT_STEP_DELAY_MS", T_INT, F(fault_step_delay_ms), 0, 0, 60000, "0", "TESTING ONLY: delay each step of a transaction, its first statement included (a slow database)" },
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

/* Bytes a setting's value takes in config_t. */
static size_t value_size(const setting_t *s)
{
    switch (s->type) {
    case T_STR: case T_KEYS: case T_SECRET: case T_URL: return s->size;
    case T_INT: return s->size == sizeof(int) ? sizeof(int) : sizeof(int64_t);
    case T_MS: case T_BYTES: return sizeof(int64_t);
    case T_BOOL: return sizeof(bool);
    case T_DBL: return sizeof(double);
    case T_DURABILITY: return sizeof(durability_t);
    case T_LOGLEVEL: return sizeof(log_level_t);
    case T_LOGFORMAT: return sizeof(log_format_t);
    }
    return 0;
}

bool config_keep_fixed(config_t *fresh, const config_t *old, char *changed, size_t len)
{
    bool any = false;
    if (len)
        changed[0] = '\0';
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const setting_t *s = &settings[i];
        if (s->reload)
            continue;
        char *dst = (char *)fresh + s->off;
        const char *src = (const char *)old + s->off;
        bool differs = s->type == T_STR || s->type == T_URL ? strcmp(dst, src) != 0
                                         : memcmp(dst, src, value_size(s)) != 0;
        if (differs && len) {
            size_t n = strlen(changed);
            snprintf(changed + n, len - n, "%s%s", any ? "," : "", s->key);
        }
        any = any || differs;
        memcpy(dst, src, value_size(s));
    }
    /* JOBQ_COMMAND_* are restart-only too. */
    bool commands = fresh->ncommands != old->ncommands ||
                    memcmp(fresh->commands, old->commands, sizeof old->commands) != 0;
    if (commands && len) {
        size_t n = strlen(changed);
        snprintf(changed + n, len - n, "%sJOBQ_COMMAND_*", any ? "," : "");
    }
    memcpy(fresh->commands, old->commands, sizeof old->commands);
    fresh->ncommands = old->ncommands;
    return any || commands;
}

const char *config_durability_name(durability_t d)
{
    return d == DURABILITY_FSYNC ? "fsync" : d == DURABILITY_OS ? "os" : "memory";
}

static const setting_t *find(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static int fail(char *err, size_t len, const setting_t *s, const char *v, const char *allowed)
{
    snprintf(err, len, "%s=\"%s\" is not valid: expected %s", s->key, v, allowed);
    return -1;
}

static int parse_int(const setting_t *s, const char *v, void *dst, char *err, size_t len)
{
    char allowed[96];
    snprintf(allowed, sizeof allowed, "an integer from %.0f to %.0f", s->lo, s->hi);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < (long long)s->lo || n > (long long)s->hi)
        return fail(err, len, s, v, allowed);
    if (s->size == sizeof(int))
        *(int *)dst = (int)n;
    else
        *(int64_t *)dst = n;
    return 0;
}

/* "1500" or a number with a unit: ms, s, m, h, d (T_MS); K, M, G, T (T_BYTES). */
static int parse_scaled(const setting_t *s, const char *v, void *dst, char *err, size_t len)
{
    static const struct { ctype_t t; const char *unit; double mul; } units[] = {
        { T_MS, "ms", 1 }, { T_MS, "s", 1e3 }, { T_MS, "m", 6e4 }, { T_MS, "h", 3.6e6 },
        { T_MS, "d", 8.64e7 }, { T_BYTES, "K", 1024.0 }, { T_BYTES, "M", 1048576.0 },
        { T_BYTES, "G", 1073741824.0 }, { T_BYTES, "T", 1099511627776.0 },
    };
    char allowed[128];
    snprintf(allowed, sizeof allowed, "%s from %.0f to %.0f", s->type == T_MS
             ? "a duration (1500 = ms, or with ms, s, m, h, d)" : "a size in bytes (or with K, M, G, T)",
             s->lo, s->hi);
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || !isfinite(d) || d < 0)
        return fail(err, len, s, v, allowed);
    double mul = *end ? 0 : 1;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && *end; i++)
        if (units[i].t == s->type && !strcmp(end, units[i].unit))
            mul = units[i].mul;
    d *= mul;
    if (mul == 0 || d < s->lo || d > s->hi)
        return fail(err, len, s, v, allowed);
    *(int64_t *)dst = (int64_t)d;
    return 0;
}

static int parse_value(const setting_t *s, const char *v, void *dst, char *err, size_t len)
{
    switch (s->type) {
    case T_MS:
    case T_BYTES:
        return parse_scaled(s, v, dst, err, len);
    case T_KEYS:
    case T_SECRET:
    case T_URL:
    case T_STR:
        if (strlen(v) >= s->size && s->type != T_STR) /* never echo a secret */
            return snprintf(err, len, "%s is too long: at most %zu characters", s->key,
                            s->size - 1), -1;
        if (strlen(v) >= s->size)
            return fail(err, len, s, v, "a shorter value");
        memcpy(dst, v, strlen(v) + 1);
        return 0;
    case T_INT:
        return parse_int(s, v, dst, err, len);
    case T_DBL: {
        char *end;
        double d = strtod(v, &end);
        char allowed[96];
        snprintf(allowed, sizeof allowed, "a number from %g to %g", s->lo, s->hi);
        if (end == v || *end || !isfinite(d) || d < s->lo || d > s->hi)
            return fail(err, len, s, v, allowed);
        *(double *)dst = d;
        return 0;
    }
    case T_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
            *(bool *)dst = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
            *(bool *)dst = false;
        else
            return fail(err, len, s, v, "true or false");
        return 0;
    case T_DURABILITY:
        if (!strcmp(v, "fsync"))
            *(durability_t *)dst = DURABILITY_FSYNC;
        else if (!strcmp(v, "os"))
            *(durability_t *)dst = DURABILITY_OS;
        else if (!strcmp(v, "memory"))
            *(durability_t *)dst = DURABILITY_MEMORY;
        else
            return fail(err, len, s, v, "fsync, os or memory");
        return 0;
    case T_LOGLEVEL:
        if (log_level_parse(v, (log_level_t *)dst) != 0)
            return fail(err, len, s, v, "debug, info, warn or error");
        return 0;
    case T_LOGFORMAT:
        if (log_format_parse(v, (log_format_t *)dst) != 0)
            return fail(err, len, s, v, "json or text");
        return 0;
    }
    return -1;
}

/* JOBQ_COMMAND_<type> (argv template), JOBQ_COMMAND_PROGRESS_<type> (a
 * regex whose first group is a percentage) and JOBQ_COMMAND_NORETRY_<type>
 * (exit codes not worth retrying, "2,3"). */
int config_check_commands(const config_t *cfg, char *err, size_t len)
{
    for (int i = 0; i < cfg->ncommands; i++)
        if (!cfg->commands[i].argv[0]) {
            snprintf(err, len, CONFIG_COMMAND_PREFIX "%s_%s is set but " CONFIG_COMMAND_PREFIX
                     "%s is not: there is no such command type",
                     cfg->commands[i].progress[0] ? "PROGRESS" : "NORETRY",
                     cfg->commands[i].type, cfg->commands[i].type);
            return -1;
        }
    return 0;
}

static int set_command(config_t *cfg, const char *key, const char *value, char *err, size_t len)
{
    const char *type = key + strlen(CONFIG_COMMAND_PREFIX);
    int what = 0; /* 0 argv, 1 progress, 2 no-retry */
    if (!strncmp(type, "PROGRESS_", 9))
        what = 1, type += 9;
    else if (!strncmp(type, "NORETRY_", 8))
        what = 2, type += 8;
    if (what == 2 && strspn(value, "0123456789,") != strlen(value)) {
        snprintf(err, len, "%s=\"%s\" is not valid: expected exit codes like 2,3", key, value);
        return -1;
    }
    size_t limit = what == 0   ? sizeof cfg->commands[0].argv
                   : what == 1 ? sizeof cfg->commands[0].progress
                               : sizeof cfg->commands[0].no_retry;
    if (!job_name_valid(type) || !value[0] || strlen(value) >= limit) {
        snprintf(err, len, "%s=\"%s\" is not valid: expected a job type name after "
                 CONFIG_COMMAND_PREFIX " and a program with arguments", key, value);
        return -1;
    }
    int i = 0;
    while (i < cfg->ncommands && strcmp(cfg->commands[i].type, type) != 0)
        i++;
    if (i == CONFIG_MAX_COMMANDS) {
        snprintf(err, len, "%s: at most %d command types", key, CONFIG_MAX_COMMANDS);
        return -1;
    }
    if (i == cfg->ncommands)
        cfg->ncommands++;
    snprintf(cfg->commands[i].type, sizeof cfg->commands[i].type, "%s", type);
    if (what == 0)
        snprintf(cfg->commands[i].argv, sizeof cfg->commands[i].argv, "%s", value);
    else if (what == 1)
        snprintf(cfg->commands[i].progress, sizeof cfg->commands[i].progress, "%s", value);
    else
        snprintf(cfg->commands[i].no_retry, sizeof cfg->commands[i].no_retry, "%s", value);
    return 0;
}

int config_set(config_t *cfg, const char *key, const char *value, char *err, size_t len)
{
    /* One line per setting, in .env files and --print-config alike: a
     * newline (from the environment) would split one into two. */
    for (const unsigned char *c = (const unsigned char *)value; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
            snprintf(err, len, "%s is not valid: its value contains a control character", key);
            return -1;
        }
    if (strncmp(key, CONFIG_COMMAND_PREFIX, strlen(CONFIG_COMMAND_PREFIX)) == 0)
        return set_command(cfg, key, value, err, len);
    const setting_t *s = find(key);
    if (!s) {
        snprintf(err, len, "unknown setting %s (see jobq help serve)", key);
        return -1;
    }
    return parse_value(s, value, (char *)cfg + s->off, err, len);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* KEY=VALUE lines; '#' comments, optional "export ", optional quotes. */
static int load_env_file(config_t *cfg, const char *path, char *err, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : (snprintf(err, len, "%s: %s", path, strerror(errno)), -1);
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (!strncmp(s, "export ", 7))
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, len, "%s:%d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = '\0';
            val++;
        }
        if (strncmp(key, "JOBQ_", 5) != 0)
            continue; /* the file may carry other tools' settings */
        char inner[512];
        if (config_set(cfg, key, val, inner, sizeof inner) != 0) {
            snprintf(err, len, "%s:%d: %s", path, lineno, inner);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

extern char **environ;

static int load_environment(config_t *cfg, char *err, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = getenv(settings[i].key);
        if (v && parse_value(&settings[i], v, (char *)cfg + settings[i].off, err, len) != 0)
            return -1;
    }
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, CONFIG_COMMAND_PREFIX, strlen(CONFIG_COMMAND_PREFIX)) != 0)
            continue;
        char key[256];
        size_t n = strcspn(*e, "=");
        if (n >= sizeof key || !(*e)[n])
            continue;
        memcpy(key, *e, n);
        key[n] = '\0';
        if (set_command(cfg, key, *e + n + 1, err, len) != 0)
            return -1;
    }
    return 0;
}

/* --log-level=debug or --log-level debug -> JOBQ_LOG_LEVEL */
static int flag_key(const char *flag, char *key, size_t keylen)
{
    size_t n = strcspn(flag + 2, "=");
    if (n == 0 || n + 6 > keylen)
        return -1;
    memcpy(key, "JOBQ_", 5);
    for (size_t i = 0; i < n; i++)
        key[5 + i] = flag[2 + i] == '-' ? '_' : (char)toupper((unsigned char)flag[2 + i]);
    key[5 + n] = '\0';
    return 0;
}

static int load_flags(config_t *cfg, int argc, char **argv, int *rest, char *err, size_t len)
{
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            break;
        char key[128];
        if (flag_key(a, key, sizeof key) != 0 || !find(key)) {
            snprintf(err, len, "unknown option %s (see jobq help serve)", a);
            return -1;
        }
        const char *eq = strchr(a, '=');
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            snprintf(err, len, "option %s needs a value", a);
            return -1;
        }
        if (config_set(cfg, key, v, err, len) != 0)
            return -1;
    }
    if (rest)
        *rest = i;
    else if (i < argc) {
        snprintf(err, len, "unexpected argument %s", argv[i]);
        return -1;
    }
    return 0;
}

int config_load(config_t *cfg, int argc, char **argv, int *rest, char *err, size_t len)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (parse_value(&settings[i], settings[i].def, (char *)cfg + settings[i].off, err, len))
            return -1;
    const char *env_file = getenv("JOBQ_ENV_FILE");
    snprintf(cfg->env_file, sizeof cfg->env_file, "%s", env_file ? env_file : ".env");
    if (load_env_file(cfg, cfg->env_file, err, len) || load_environment(cfg, err, len) ||
        load_flags(cfg, argc, argv, rest, err, len))
        return -1;
    if (!cfg->download_dir[0])
        snprintf(cfg->download_dir, sizeof cfg->download_dir, "%.1000s/downloads", cfg->data_dir);
    if (!cfg->database_url[0])
        snprintf(cfg->database_url, sizeof cfg->database_url, "sqlite://%s/jobq.db",
                 cfg->data_dir);
    if (config_parse_limits(cfg, err, len) || config_parse_keys(cfg, err, len) ||
        config_check_commands(cfg, err, len))
        return -1;
    if (cfg->breaker_cooldown_max_ms < cfg->breaker_cooldown_ms) {
        snprintf(err, len, "JOBQ_BREAKER_COOLDOWN_MAX=%lldms is not valid: expected >= "
                 "JOBQ_BREAKER_COOLDOWN", (long long)cfg->breaker_cooldown_max_ms);
        return -1;
    }
    if (cfg->job.backoff.max_ms < cfg->job.backoff.initial_ms) {
        snprintf(err, len, "JOBQ_BACKOFF_MAX_MS=%lld is not valid: expected >= JOBQ_BACKOFF_INITIAL_MS",
                 (long long)cfg->job.backoff.max_ms);
        return -1;
    }
    return 0;
}

static void print_value(const setting_t *s, const config_t *cfg, FILE *out)
{
    const void *p = (const char *)cfg + s->off;
    switch (s->type) {
    case T_STR: fprintf(out, "%s", (const char *)p); break;
    case T_SECRET: fprintf(out, "%s", *(const char *)p ? "***" : ""); break;
    case T_URL: {
        char shown[sizeof ((config_t *)0)->database_url];
        fprintf(out, "%s", url_redact(p, shown, sizeof shown));
        break;
    }
    case T_KEYS:
        for (int i = 0; i < cfg->nkeys; i++) /* never the secrets */
            fprintf(out, "%s%s:%s:***", i ? "," : "", cfg->keys[i].name,
                    config_role_name(cfg->keys[i].role));
        break;
    case T_INT:
        fprintf(out, "%lld", s->size == sizeof(int) ? (long long)*(const int *)p
                                                    : (long long)*(const int64_t *)p);
        break;
    case T_MS: fprintf(out, "%lldms", (long long)*(const int64_t *)p); break;
    case T_BYTES: fprintf(out, "%lld", (long long)*(const int64_t *)p); break;
    case T_DBL: fprintf(out, "%g", *(const double *)p); break;
    case T_BOOL: fprintf(out, "%s", *(const bool *)p ? "true" : "false"); break;
    case T_DURABILITY: fprintf(out, "%s", config_durability_name(*(const durability_t *)p)); break;
    case T_LOGLEVEL: fprintf(out, "%s", log_level_name(*(const log_level_t *)p)); break;
    case T_LOGFORMAT: fprintf(out, "%s", *(const log_format_t *)p == LOG_FORMAT_TEXT ? "text" : "json"); break;
    }
}

void config_print(const config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        fprintf(out, "%s=", settings[i].key);
        print_value(&settings[i], cfg, out);
        fputc('\n', out);
    }
    for (int i = 0; i < cfg->ncommands; i++) {
        fprintf(out, CONFIG_COMMAND_PREFIX "%s=%s\n", cfg->commands[i].type, cfg->commands[i].argv);
        if (cfg->commands[i].progress[0])
            fprintf(out, CONFIG_COMMAND_PREFIX "PROGRESS_%s=%s\n", cfg->commands[i].type,
                    cfg->commands[i].progress);
        if (cfg->commands[i].no_retry[0])
            fprintf(out, CONFIG_COMMAND_PREFIX "NORETRY_%s=%s\n", cfg->commands[i].type,
                    cfg->commands[i].no_retry);
    }
}

void config_print_help(FILE *out)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char flag[64];
        size_t n = 0;
        for (const char *k = settings[i].key + 5; *k && n + 1 < sizeof flag; k++)
            flag[n++] = *k == '_' ? '-' : (char)tolower((unsigned char)*k);
        flag[n] = '\0';
        const char *hup = settings[i].reload ? "; SIGHUP reloads it" : "";
        if (settings[i].def[0])
            fprintf(out, "  --%-22s %-26s %s (default %s%s)\n", flag, settings[i].key,
                    settings[i].help, settings[i].def, hup);
        else
            fprintf(out, "  --%-22s %-26s %s%s\n", flag, settings[i].key, settings[i].help,
                    hup[0] ? " (SIGHUP reloads it)" : "");
    }
    fprintf(out, "  %-24s %-26s %s\n", "(environment, .env only)", CONFIG_COMMAND_PREFIX "<type>",
            "a command job type: \"program {arg} ...\"");
    fprintf(out, "  %-24s %-26s %s\n", "", CONFIG_COMMAND_PREFIX "PROGRESS_<type>",
            "regex over its output; group 1 = percent done");
    fprintf(out, "  %-24s %-26s %s\n", "", CONFIG_COMMAND_PREFIX "NORETRY_<type>",
            "exit codes not retried, e.g. 2,3");
}
