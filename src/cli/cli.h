/*
 * cli: the client subcommands (enqueue, get, list, cancel, retry, stats, top,
 * quiet and terminate for Faktory worker processes).
 * Human-readable output by default, --json for scripts; exit 0 on success,
 * 1 when the server refused or could not be reached, 2 on bad usage.
 */
#ifndef JOBQ_CLI_H
#define JOBQ_CLI_H

#include <stdbool.h>

/* True if cmd is one of the client subcommands. */
bool cli_is_command(const char *cmd);
/* argv holds the arguments after the subcommand. */
int cli_main(const char *cmd, int argc, char **argv);

#endif
