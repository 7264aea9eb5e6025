/* jobq: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/version.h"
#include "server/serve.h"

static void help(FILE *out)
{
    fprintf(out,
            "jobq %s: a durable job server with an HTTP/JSON API and the Faktory protocol\n"
            "\n"
            "usage: jobq COMMAND [options]\n"
            "\n"
            "server:\n"
            "  serve [--print-config] [--KEY VALUE ...]   run the server (SIGTERM: drain and stop,\n"
            "                                             SIGHUP: reload keys, limits and settings)\n"
            "  migrate [--status] [--KEY VALUE ...]       apply (or show) schema migrations\n"
            "\n"
            "client (talks to a running server; --server URL, else JOBQ_URL, else JOBQ_LISTEN;\n"
            "        API key from JOBQ_API_KEY when the server has keys):\n"
            "  enqueue TYPE [--queue Q] [--args JSON] [--priority P] [--id ID]\n"
            "          [--max-retries N] [--timeout-ms N] [--delay-ms N] [--run-at RFC3339]\n"
            "  get ID            show one job\n"
            "  list [--queue Q] [--state S] [--type T] [--limit N] [--cursor C]\n"
            "  cancel ID         cancel a job (a running one is cancelled when its worker reports)\n"
            "  retry ID          requeue a failed or cancelled job\n"
            "  stats             counts, rates and execution times, in total and per queue\n"
            "  top [--iterations N]  a live view of queues and workers, refreshed every second\n"
            "  wait ID [--timeout-ms N]  follow a job until it finishes; exit 0 only if completed\n"
            "  download URL [--to PATH] [--sha256 HEX] [--max-retries N] [--wait]\n"
            "                    a download job for the built-in runner (JOBQ_RUNNERS=download=N)\n"
            "  bulk retry|cancel|delete [--queue Q] [--state S] [--type T] [--priority P]\n"
            "          [--breaker-key K] [--worker W] [--text X] [--created-after T]\n"
            "          [--created-before T] [--finished-after T] [--finished-before T] [--dry-run]\n"
            "                    act on every job matching the filters, on the server; waits\n"
            "                    for the end (--dry-run only counts them)\n"
            "  quiet WID         tell a Faktory worker process to stop fetching (on its next BEAT)\n"
            "  terminate WID     tell a Faktory worker process to exit (on its next BEAT)\n"
            "  Every client command takes --json for machine-readable output.\n"
            "\n"
            "  version           print the version\n"
            "  help              this text\n"
            "\n"
            "settings (defaults < .env file < environment < flags; JOBQ_ENV_FILE names the file):\n",
            JOBQ_VERSION);
    config_print_help(out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help(stdout);
            return 0;
        }
    }
    if (strcmp(cmd, "serve") == 0)
        return serve_main(argc - 2, argv + 2);
    if (strcmp(cmd, "migrate") == 0)
        return migrate_main(argc - 2, argv + 2);
    if (cli_is_command(cmd))
        return cli_main(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("jobq %s\n", JOBQ_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        help(stdout);
        return 0;
    }
    fprintf(stderr, "jobq: unknown command %s (see jobq help)\n", cmd);
    return 2;
}
