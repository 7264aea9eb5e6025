/* The client subcommands over the HTTP API. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cli/client.h"

typedef cli_opts_t opts_t;

const char *cli_opt(const opts_t *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->names[i], name) == 0)
            return o->values[i];
    return NULL;
}

void cli_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

int cli_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "jobq %s: %s (see jobq help)\n", cmd, msg);
    return 2;
}

int cli_parse(const char *cmd, int argc, char **argv, const char *const *allowed, opts_t *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (o->npos == CLI_MAX_POS)
                return cli_usage_error(cmd, "too many arguments");
            o->pos[o->npos++] = a;
            continue;
        }
        bool known = strcmp(a, "--server") == 0;
        for (const char *const *k = allowed; *k && !known; k++)
            known = strcmp(*k, a) == 0;
        if (!known || i + 1 >= argc || o->n == CLI_MAX_OPTS) {
            char msg[128];
            snprintf(msg, sizeof msg, known ? "%s needs a value" : "unknown option %s", a);
            return cli_usage_error(cmd, msg);
        }
        if (strcmp(a, "--server") == 0)
            o->server = argv[++i];
        else {
            o->names[o->n] = a;
            o->values[o->n++] = argv[++i];
        }
    }
    return 0;
}

/* Prints a refusal from the server as one line; returns the exit code. */
int cli_report(int status, json_t *body, const char *err)
{
    if (status < 0) {
        fprintf(stderr, "jobq: %s\n", err);
        return 1;
    }
    const char *detail = json_string_value(json_object_get(body, "detail"));
    const char *type = json_string_value(json_object_get(body, "type"));
    fprintf(stderr, "jobq: %s (%s, HTTP %d)\n", detail ? detail : "request failed",
            type ? type : "error", status);
    return 1;
}

void cli_print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void print_job(json_t *j)
{
    printf("id:          %s\nqueue:       %s\ntype:        %s\npriority:    %s\n"
           "state:       %s\nattempts:    %lld of %lld\ncreated_at:  %s\nrun_at:      %s\n",
           str(j, "id"), str(j, "queue"), str(j, "type"), str(j, "priority"), str(j, "state"),
           json_integer_value(json_object_get(j, "attempts")),
           json_integer_value(json_object_get(j, "max_retries")) + 1, str(j, "created_at"),
           str(j, "run_at"));
    json_t *errors = json_object_get(j, "errors"), *e;
    size_t i;
    json_array_foreach(errors, i, e)
        printf("error:       attempt %lld %s: %s\n",
               json_integer_value(json_object_get(e, "attempt")), str(e, "type"),
               str(e, "message"));
}

/* Sends one request and prints its job or refusal. */
static int job_call(const opts_t *o, const char *method, const char *path, json_t *body,
                    const char *verb)
{
    client_t c;
    client_init(&c, o->server);
    json_t *out;
    char err[512];
    int status = client_request(&c, method, path, body, &out, err, sizeof err);
    int rc = 0;
    if (status < 200 || status > 299)
        rc = cli_report(status, out, err);
    else if (o->json)
        cli_print_json(out);
    else if (verb)
        printf("%s %s (state %s)\n", verb, str(out, "id"), str(out, "state"));
    else
        print_job(out);
    json_decref(out);
    return rc;
}

static int set_int(json_t *job, const char *key, const char *v)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end)
        return -1;
    json_object_set_new(job, key, json_integer(n));
    return 0;
}

static int cmd_enqueue(int argc, char **argv)
{
    static const char *const allowed[] = { "--queue", "--args", "--priority", "--id",
                                           "--max-retries", "--timeout-ms", "--delay-ms",
                                           "--run-at", NULL };
    opts_t o;
    if (cli_parse("enqueue", argc, argv, allowed, &o))
        return 2;
    if (o.npos != 1)
        return cli_usage_error("enqueue", "give exactly one job TYPE");
    json_t *job = json_pack("{s:s}", "type", o.pos[0]);
    const char *v;
    int bad = 0;
    if ((v = cli_opt(&o, "--queue")))
        json_object_set_new(job, "queue", json_string(v));
    if ((v = cli_opt(&o, "--id")))
        json_object_set_new(job, "id", json_string(v));
    if ((v = cli_opt(&o, "--run-at")))
        json_object_set_new(job, "run_at", json_string(v));
    if ((v = cli_opt(&o, "--priority")) && set_int(job, "priority", v) != 0)
        json_object_set_new(job, "priority", json_string(v)); /* a name, not 0-4 */
    if ((v = cli_opt(&o, "--args"))) {
        json_t *args = json_loads(v, JSON_DECODE_ANY, NULL);
        bad |= !args;
        json_object_set_new(job, "args", args ? args : json_null());
    }
    if ((v = cli_opt(&o, "--max-retries")))
        bad |= set_int(job, "max_retries", v);
    if ((v = cli_opt(&o, "--timeout-ms")))
        bad |= set_int(job, "timeout_ms", v);
    if ((v = cli_opt(&o, "--delay-ms")))
        bad |= set_int(job, "delay_ms", v);
    int rc = bad ? cli_usage_error("enqueue", "--args must be JSON; numbers must be integers")
                 : job_call(&o, "POST", "/v1/jobs", job, "enqueued");
    json_decref(job);
    return rc;
}

char *cli_escape_id(const char *id)
{
    char *esc = curl_easy_escape(NULL, id, 0);
    char *copy = strdup(esc ? esc : "");
    curl_free(esc);
    return copy;
}

/* `jobq download URL [--to PATH] [--sha256 HEX] [--wait]`: an http.download
 * job for the built-in runner; with --wait, follows it like `jobq wait`. */
static int cmd_download(int argc, char **argv)
{
    static const char *const allowed[] = { "--to", "--sha256", "--max-retries", NULL };
    bool wait = false;
    char *rest[64];
    int n = 0;
    for (int i = 0; i < argc && n < 63; i++) {
        if (strcmp(argv[i], "--wait") == 0)
            wait = true;
        else
            rest[n++] = argv[i];
    }
    opts_t o;
    if (cli_parse("download", n, rest, allowed, &o))
        return 2;
    if (o.npos != 1)
        return cli_usage_error("download", "give exactly one URL");
    const char *url = o.pos[0], *to = cli_opt(&o, "--to"), *v;
    if (!to) { /* default: the URL's last path segment */
        const char *end = url + strcspn(url, "?#"), *slash = end;
        while (slash > url && slash[-1] != '/')
            slash--;
        static char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(end - slash), slash);
        to = name[0] ? name : "download";
    }
    json_t *job = json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "http.download", "queue",
                            "download", "args", "url", url, "path", to);
    if ((v = cli_opt(&o, "--sha256")))
        json_object_set_new(json_object_get(job, "args"), "sha256", json_string(v));
    if ((v = cli_opt(&o, "--max-retries")) && set_int(job, "max_retries", v) != 0) {
        json_decref(job);
        return cli_usage_error("download", "--max-retries must be an integer");
    }
    client_t c;
    client_init(&c, o.server);
    json_t *out;
    char err[512];
    int status = client_request(&c, "POST", "/v1/jobs", job, &out, err, sizeof err);
    json_decref(job);
    if (status != 201 && status != 200) {
        int rc = cli_report(status, out, err);
        json_decref(out);
        return rc;
    }
    char id[256];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    if (!wait) {
        printf("enqueued %s (download of %s to %s)\n", id, url, to);
        return 0;
    }
    char *wargv[4] = { id, NULL, NULL, NULL };
    int wargc = 1;
    if (o.server) {
        wargv[wargc++] = "--server";
        wargv[wargc++] = (char *)o.server;
    }
    return cli_wait(wargc, wargv);
}

/* One call on /v1/jobs/ID... or /v1/workers/WID... (base), ID the only argument. */
static int id_command(const char *cmd, int argc, char **argv, const char *method,
                      const char *base, const char *suffix, const char *verb)
{
    static const char *const none[] = { NULL };
    opts_t o;
    if (cli_parse(cmd, argc, argv, none, &o))
        return 2;
    if (o.npos != 1)
        return cli_usage_error(cmd, strcmp(base, "/v1/jobs/") == 0 ? "give exactly one job ID"
                                                                 : "give exactly one worker ID");
    char *id = curl_easy_escape(NULL, o.pos[0], 0);
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", base, id ? id : "", suffix);
    curl_free(id);
    return job_call(&o, method, path, NULL, verb);
}

static void append_query(char *path, size_t len, const char *key, const char *value)
{
    if (!value)
        return;
    char *esc = curl_easy_escape(NULL, value, 0);
    size_t n = strlen(path);
    snprintf(path + n, len - n, "%c%s=%s", strchr(path, '?') ? '&' : '?', key, esc ? esc : "");
    curl_free(esc);
}

static void print_list(json_t *out)
{
    printf("%-34s %-10s %-14s %-20s %-10s %s\n", "ID", "STATE", "QUEUE", "TYPE", "PRIORITY",
           "CREATED");
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(out, "jobs"), i, j)
        printf("%-34s %-10s %-14s %-20s %-10s %s\n", str(j, "id"), str(j, "state"),
               str(j, "queue"), str(j, "type"), str(j, "priority"), str(j, "created_at"));
    const char *next = json_string_value(json_object_get(out, "next_cursor"));
    if (next)
        printf("more: jobq list --cursor %s\n", next);
}

static int get_and_print(const opts_t *o, const char *path, void (*human)(json_t *))
{
    client_t c;
    client_init(&c, o->server);
    json_t *out;
    char err[512];
    int status = client_request(&c, "GET", path, NULL, &out, err, sizeof err);
    int rc = 0;
    if (status != 200)
        rc = cli_report(status, out, err);
    else if (o->json)
        cli_print_json(out);
    else
        human(out);
    json_decref(out);
    return rc;
}

static int cmd_list(int argc, char **argv)
{
    static const char *const allowed[] = { "--queue", "--state", "--type", "--limit",
                                           "--cursor", NULL };
    opts_t o;
    if (cli_parse("list", argc, argv, allowed, &o))
        return 2;
    if (o.npos)
        return cli_usage_error("list", "unexpected argument");
    char path[2048] = "/v1/jobs";
    for (int i = 0; i < o.n; i++)
        append_query(path, sizeof path, o.names[i] + 2, o.values[i]);
    return get_and_print(&o, path, print_list);
}

/* "97.5%" or "-" */
static const char *pct(json_t *v, char *buf, size_t len)
{
    if (!json_is_number(v))
        return "-";
    snprintf(buf, len, "%.1f%%", json_number_value(v) * 100);
    return buf;
}

static void print_queue_line(const char *name, json_t *q)
{
    json_t *c = json_object_get(q, "counts"), *ex = json_object_get(q, "execution_ms");
    char a[16], b[16];
    printf("%-16s %7lld %7lld %7lld %9lld %7lld %8s %8s %9.2f %9.1f %9.1f %8.1f\n", name,
           json_integer_value(json_object_get(c, "queued")),
           json_integer_value(json_object_get(c, "running")),
           json_integer_value(json_object_get(c, "retrying")) +
               json_integer_value(json_object_get(c, "pending")),
           json_integer_value(json_object_get(c, "completed")),
           json_integer_value(json_object_get(c, "failed")),
           pct(json_object_get(q, "success_rate"), a, sizeof a),
           pct(json_object_get(q, "success_rate_5m"), b, sizeof b),
           json_number_value(json_object_get(q, "throughput_1m")),
           json_number_value(json_object_get(ex, "avg")), json_number_value(json_object_get(ex, "p95")),
           json_number_value(json_object_get(q, "oldest_queued_age_s")));
}

void cli_print_stats(json_t *out)
{
    const char *k;
    json_t *v;
    printf("jobs by state:\n");
    json_object_foreach(json_object_get(out, "counts"), k, v)
        printf("  %-10s %lld\n", k, json_integer_value(v));
    printf("lifetime totals:\n");
    json_object_foreach(json_object_get(out, "totals"), k, v)
        printf("  %-10s %lld\n", k, json_integer_value(v));
    printf("\n%-16s %7s %7s %7s %9s %7s %8s %8s %9s %9s %9s %8s\n", "QUEUE", "QUEUED", "RUNNING",
           "WAITING", "COMPLETED", "FAILED", "SUCCESS", "SUCC-5M", "FINISH/S", "EXEC-AVG", "EXEC-P95",
           "OLDEST-S");
    json_object_foreach(json_object_get(out, "queues"), k, v)
        print_queue_line(k, v);
    print_queue_line("(all)", out);
}

static int cmd_stats(int argc, char **argv)
{
    static const char *const none[] = { NULL };
    opts_t o;
    if (cli_parse("stats", argc, argv, none, &o))
        return 2;
    if (o.npos)
        return cli_usage_error("stats", "unexpected argument");
    return get_and_print(&o, "/v1/stats", cli_print_stats);
}

static const char *const commands[] = { "enqueue", "get", "list", "cancel", "retry", "stats",
                                         "top", "wait", "download", "quiet", "terminate", "bulk" };

bool cli_is_command(const char *cmd)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i]) == 0)
            return true;
    return false;
}

int cli_main(const char *cmd, int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (strcmp(cmd, "enqueue") == 0)
        rc = cmd_enqueue(argc, argv);
    else if (strcmp(cmd, "get") == 0)
        rc = id_command(cmd, argc, argv, "GET", "/v1/jobs/", "", NULL);
    else if (strcmp(cmd, "cancel") == 0)
        rc = id_command(cmd, argc, argv, "POST", "/v1/jobs/", "/cancel", "cancel requested for");
    else if (strcmp(cmd, "retry") == 0)
        rc = id_command(cmd, argc, argv, "POST", "/v1/jobs/", "/retry", "requeued");
    else if (strcmp(cmd, "quiet") == 0)
        rc = id_command(cmd, argc, argv, "POST", "/v1/workers/", "/quiet", "told worker");
    else if (strcmp(cmd, "terminate") == 0)
        rc = id_command(cmd, argc, argv, "POST", "/v1/workers/", "/terminate", "told worker");
    else if (strcmp(cmd, "list") == 0)
        rc = cmd_list(argc, argv);
    else if (strcmp(cmd, "top") == 0)
        rc = cli_top(argc, argv);
    else if (strcmp(cmd, "wait") == 0)
        rc = cli_wait(argc, argv);
    else if (strcmp(cmd, "bulk") == 0)
        rc = cli_bulk(argc, argv);
    else if (strcmp(cmd, "download") == 0)
        rc = cmd_download(argc, argv);
    else
        rc = cmd_stats(argc, argv);
    curl_global_cleanup();
    return rc;
}
