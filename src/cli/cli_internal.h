/* cli_internal: what the subcommand files share (argument parsing and the
 * stats table); nothing outside src/cli/ includes it. */
#ifndef JOBQ_CLI_INTERNAL_H
#define JOBQ_CLI_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#define CLI_MAX_POS 4
#define CLI_MAX_OPTS 12

/* Options common to every subcommand, plus the ones a subcommand allows. */
typedef struct cli_opts {
    const char *server;
    bool json;
    const char *pos[CLI_MAX_POS];
    int npos;
    const char *names[CLI_MAX_OPTS], *values[CLI_MAX_OPTS];
    int n;
} cli_opts_t;

/* allowed: NULL-terminated list of value options, e.g. "--queue". Returns
 * 0, or 2 after printing a usage error. */
int cli_parse(const char *cmd, int argc, char **argv, const char *const *allowed, cli_opts_t *o);
const char *cli_opt(const cli_opts_t *o, const char *name);
int cli_usage_error(const char *cmd, const char *msg);
void cli_print_stats(json_t *stats);
int cli_top(int argc, char **argv);
int cli_wait(int argc, char **argv);
int cli_bulk(int argc, char **argv);
/* Polling commands wait between requests with this. */
void cli_sleep_ms(long ms);
/* One-line refusal on stderr; returns the exit code (1). */
int cli_report(int status, json_t *body, const char *err);
void cli_print_json(json_t *v);
/* The id, percent-escaped for a URL path; the caller frees it. */
char *cli_escape_id(const char *id);

#endif
