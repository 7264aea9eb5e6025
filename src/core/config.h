/*
 * config: jobq's settings, from one table.
 *
 * Layers, lowest first: built-in defaults < the .env file < the process
 * environment < command-line flags. Every key is JOBQ_*; its flag is the key
 * in lower case without the prefix (JOBQ_LOG_LEVEL -> --log-level). Every
 * value is validated when it is set, and an error names the key, the value
 * and what is allowed. A config_t is a plain value owned by its caller.
 */
#ifndef JOBQ_CONFIG_H
#define JOBQ_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/job.h"
#include "util/log.h"

typedef enum { DURABILITY_FSYNC, DURABILITY_OS, DURABILITY_MEMORY } durability_t;

#define CONFIG_MAX_COMMANDS 32
#define CONFIG_COMMAND_PREFIX "JOBQ_COMMAND_"
#define CONFIG_MAX_LIMITS 64
#define CONFIG_MAX_KEYS 64

/* One entry of JOBQ_LIMITS: "queue:NAME concurrency=4 rate=10 burst=20";
 * the target may also be "type:NAME" or "key:BREAKER_KEY". */
typedef enum { LIMIT_QUEUE, LIMIT_TYPE, LIMIT_KEY } config_limit_target_t;
typedef struct config_limit {
    config_limit_target_t target;
    char name[JOB_NAME_MAX + 1];
    int concurrency;   /* 0: unlimited */
    double rate, burst;
} config_limit_t;

/* What a key may do: reader reads; worker and producer read and each do
 * their side of the work; admin does everything (docs/operations.md). */
typedef enum { ROLE_READER, ROLE_WORKER, ROLE_PRODUCER, ROLE_ADMIN } config_role_t;

/* One entry of JOBQ_API_KEYS: "name:role:secret[:rate[:burst]]". */
typedef struct config_key {
    char name[64];
    config_role_t role;
    char secret[256];
    double rate, burst; /* < 0: the global JOBQ_RATE_LIMIT / _BURST */
} config_key_t;

typedef struct config {
    char listen[256];
    char faktory_listen[256]; /* "off": none */
    char faktory_tls_cert[1024], faktory_tls_key[1024];
    char data_dir[1024];
    char database_url[1100];
    durability_t durability;
    bool cluster;                 /* several nodes on one PostgreSQL database */
    int64_t node_ttl_ms, claim_poll_ms;
    log_level_t log_level;
    log_format_t log_format;
    int64_t slow_request_ms, slow_commit_ms; /* logged at warn above these */
    int64_t compact_interval_ms; /* journal -> database, store/writer.c */
    int64_t max_body_bytes;
    int64_t idle_timeout_ms, header_timeout_ms, body_timeout_ms; /* http_options_t */
    bool auto_migrate;
    int64_t finished_in_memory; /* finished jobs kept in memory for fast reads */
    int64_t queued_in_memory;   /* bytes of packed waiting jobs before the spill file */
    int64_t min_free_disk_bytes; /* below this, /health/ready fails */
    int64_t worker_gone_ms;      /* a worker silent this long is reported gone */
    job_defaults_t job;
    int64_t fault_commit_delay_ms; /* testing seams, see store_faults_t */
    int64_t fault_commit_fail_ms;
    int64_t fault_commit_lost_every;
    int64_t fault_read_delay_ms;
    int64_t fault_step_delay_ms;
    char runners[256]; /* "webhook=16" */
    /* JOBQ_COMMAND_<type>="program {arg} ...": operator-declared command job types. */
    struct {
        char type[JOB_NAME_MAX + 1];
        char argv[1024];
        char progress[256]; /* JOBQ_COMMAND_PROGRESS_<type>: regex, group 1 = percent */
        char no_retry[128]; /* JOBQ_COMMAND_NORETRY_<type>: "2,3" */
    } commands[CONFIG_MAX_COMMANDS];
    int ncommands;
    char download_dir[1024];
    bool download_allow_private;
    char env_file[1024];

    /* Protection (docs/operations.md). Which settings SIGHUP applies is
     * marked in config.c's table (RELOAD), not by their place here. */
    char api_keys_text[4096];
    config_key_t keys[CONFIG_MAX_KEYS];
    int nkeys;
    char faktory_password[256];
    double rate_limit, rate_burst; /* API requests per second per client; 0: off */
    char limits_text[4096];
    config_limit_t limits[CONFIG_MAX_LIMITS];
    int nlimits;
    int breaker_failures;
    double breaker_ratio;
    int breaker_min_requests;
    int64_t breaker_window_ms, breaker_cooldown_ms, breaker_cooldown_max_ms;
    int breaker_probes;
    int64_t priority_aging_ms;
    int64_t retain_completed_ms, retain_failed_ms; /* 0: keep forever */
    int64_t history_partition_min_ms; /* PostgreSQL cluster mode (postgres_history.c) */
    int64_t memory_limit;  /* bytes; 0: no limit */
    int64_t cache_ttl_ms;  /* 0: no query cache */
    int64_t max_connections, max_connections_per_client, max_waiters, max_streams;
    int64_t shutdown_grace_ms;
} config_t;

/* Fills cfg from all layers. `argv` holds only flags (the subcommand already
 * removed); `rest` receives the index of the first non-flag argument, or NULL
 * to refuse positional arguments. Returns 0, or -1 with a message in err. */
int config_load(config_t *cfg, int argc, char **argv, int *rest, char *err, size_t errlen);

/* Sets one key from text ("JOBQ_LISTEN", "127.0.0.1:0"). 0 or -1 + err. */
int config_set(config_t *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Writes KEY=value lines, one per setting, in table order. */
void config_print(const config_t *cfg, FILE *out);

/* Writes the flags with their help text, for --help. */
void config_print_help(FILE *out);

/* A reload: copies every restart-only setting (the table's rows without
 * RELOAD, and the JOBQ_COMMAND_* programs) from old into fresh. Returns
 * whether any of them had changed, and writes their keys, comma-separated,
 * into changed (never their values: some are secret). */
bool config_keep_fixed(config_t *fresh, const config_t *old, char *changed, size_t len);

const char *config_durability_name(durability_t d);
const char *config_role_name(config_role_t r);

/* config_lists.c: the list-valued settings, parsed once every layer is in. */
int config_parse_limits(config_t *cfg, char *err, size_t errlen);
int config_parse_keys(config_t *cfg, char *err, size_t errlen);
/* A JOBQ_COMMAND_PROGRESS_/NORETRY_<type> needs its JOBQ_COMMAND_<type>. */
int config_check_commands(const config_t *cfg, char *err, size_t errlen);

#endif
