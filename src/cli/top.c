/* `jobq top`: a live view of queues, rates and workers, refreshed every
 * second like top(1). Stops on Ctrl-C, or after --iterations N. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_internal.h"
#include "cli/client.h"

static volatile sig_atomic_t stop;
static void on_sigint(int sig)
{
    (void)sig;
    stop = 1;
}

static json_t *fetch(const client_t *c, const char *path, char *err, size_t len)
{
    json_t *out = NULL;
    int status = client_request(c, "GET", path, NULL, &out, err, len);
    if (status != 200) {
        if (status > 0)
            snprintf(err, len, "%s answered HTTP %d", path, status);
        json_decref(out);
        return NULL;
    }
    return out;
}

static void print_workers(json_t *workers)
{
    printf("\n%-24s %7s %9s %7s %8s %10s %s\n", "WORKER", "ACTIVE", "COMPLETED", "FAILED",
           "SUCCESS", "AVG-EXEC", "LAST SEEN");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(workers, "workers"), i, w) {
        json_t *rate = json_object_get(w, "success_rate");
        char pct[16] = "-";
        if (json_is_number(rate))
            snprintf(pct, sizeof pct, "%.1f%%", json_number_value(rate) * 100);
        printf("%-24.24s %7lld %9lld %7lld %8s %8.1fms %s%s\n",
               json_string_value(json_object_get(w, "id")),
               json_integer_value(json_object_get(w, "active_leases")),
               json_integer_value(json_object_get(w, "completed")),
               json_integer_value(json_object_get(w, "failed")), pct,
               json_number_value(json_object_get(w, "avg_execution_ms")),
               json_string_value(json_object_get(w, "last_seen")),
               json_is_true(json_object_get(w, "gone")) ? " (gone)" : "");
    }
}

int cli_top(int argc, char **argv)
{
    static const char *const allowed[] = { "--iterations", NULL };
    cli_opts_t o;
    if (cli_parse("top", argc, argv, allowed, &o))
        return 2;
    const char *it = cli_opt(&o, "--iterations");
    long iterations = it ? strtol(it, NULL, 10) : -1;
    if (it && iterations < 1)
        return cli_usage_error("top", "--iterations must be a positive integer");
    client_t c;
    client_init(&c, o.server);
    signal(SIGINT, on_sigint);
    bool tty = isatty(STDOUT_FILENO);
    int rc = 0;
    for (long n = 0; !stop && (iterations < 0 || n < iterations); n++) {
        char err[512];
        json_t *stats = fetch(&c, "/v1/stats", err, sizeof err);
        json_t *workers = stats ? fetch(&c, "/v1/workers", err, sizeof err) : NULL;
        if (!stats || !workers) {
            json_decref(stats);
            fprintf(stderr, "jobq: %s\n", err);
            rc = 1;
            break;
        }
        if (tty)
            fputs("\x1b[H\x1b[2J", stdout); /* home and clear, like top */
        time_t now = time(NULL);
        printf("jobq top - %s - %s", c.base, ctime(&now));
        cli_print_stats(stats);
        print_workers(workers);
        fflush(stdout);
        json_decref(stats);
        json_decref(workers);
        if (iterations < 0 || n + 1 < iterations)
            sleep(1);
    }
    return rc;
}
