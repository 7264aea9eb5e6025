/*
 * serve: the `jobq serve` and `jobq migrate` commands. Wires the engine,
 * the store and the HTTP API onto one libevent loop and owns them all for
 * the life of the process; runs recovery at start and the graceful stop.
 */
#ifndef JOBQ_SERVE_H
#define JOBQ_SERVE_H

/* argv holds the arguments after the subcommand. Return the exit code. */
int serve_main(int argc, char **argv);
int migrate_main(int argc, char **argv);

#endif
