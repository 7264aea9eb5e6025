/* `jobq wait ID`: follow one job until it finishes, showing its state and
 * progress; exit 0 only if it completed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_internal.h"
#include "cli/client.h"

#define POLL_MS 200

/* "running, attempt 1, progress {"pct":40}" */
static void describe(json_t *job, char *out, size_t len)
{
    char *progress = json_dumps(json_object_get(job, "progress"), JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out, len, "%s, attempt %lld%s%s",
             json_string_value(json_object_get(job, "state")),
             json_integer_value(json_object_get(job, "attempts")),
             progress && strcmp(progress, "null") ? ", progress " : "",
             progress && strcmp(progress, "null") ? progress : "");
    free(progress);
}

static bool finished(const char *state)
{
    return !strcmp(state, "completed") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

int cli_wait(int argc, char **argv)
{
    static const char *const allowed[] = { "--timeout-ms", NULL };
    cli_opts_t o;
    if (cli_parse("wait", argc, argv, allowed, &o))
        return 2;
    if (o.npos != 1)
        return cli_usage_error("wait", "give exactly one job ID");
    const char *to = cli_opt(&o, "--timeout-ms");
    long timeout = to ? strtol(to, NULL, 10) : 0;
    if (to && timeout < 1)
        return cli_usage_error("wait", "--timeout-ms must be a positive integer");
    client_t c;
    client_init(&c, o.server);
    char *id = cli_escape_id(o.pos[0]);
    char path[1024];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    free(id);
    bool tty = isatty(STDOUT_FILENO);
    char last[512] = "";
    for (long waited = 0;; waited += POLL_MS) {
        json_t *job;
        char err[512];
        int status = client_request(&c, "GET", path, NULL, &job, err, sizeof err);
        if (status != 200)
            return cli_report(status, job, err);
        const char *state = json_string_value(json_object_get(job, "state"));
        char now[512];
        describe(job, now, sizeof now);
        if (strcmp(now, last) != 0) {
            /* On a terminal the line is rewritten in place; else one line per change. */
            printf(tty ? "\r\x1b[K%s: %s" : "%s: %s\n", o.pos[0], now);
            fflush(stdout);
            snprintf(last, sizeof last, "%s", now);
        }
        if (state && finished(state)) {
            if (tty)
                putchar('\n');
            if (o.json)
                cli_print_json(job);
            int rc = strcmp(state, "completed") == 0 ? 0 : 1;
            json_decref(job);
            return rc;
        }
        if (timeout && waited >= timeout) {
            fprintf(stderr, "%sjobq: %s is still %s after %ld ms\n", tty ? "\n" : "", o.pos[0],
                    state ? state : "?", timeout);
            json_decref(job);
            return 1;
        }
        json_decref(job);
        cli_sleep_ms(POLL_MS);
    }
}
