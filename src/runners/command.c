/* The command runner: operator-declared job types on queue "command".
 *
 * JOBQ_COMMAND_<type>="program --flag {name} ..." declares a type. The
 * template is split on spaces into argv; every "{name}" is replaced by the
 * job's args.name (a string or number), and whatever it holds stays inside
 * that one argv element. No shell is involved and a job cannot choose the
 * program. The process runs with posix_spawn in its own process group, in
 * the command folder, with a cleared environment (PATH, LANG), stdin from
 * /dev/null; it is stopped with SIGTERM, then SIGKILL, when the job's
 * timeout (less half a second) runs out. Exit 0 completes the job; anything
 * else fails it with the exit code and the tail of its output. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <regex.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runners/runners_internal.h"
#include "util/clock.h"

#define TAIL_MAX 2048
#define MAX_ARGS 64
#define SAFE_PATH "/usr/local/bin:/usr/bin:/bin"

typedef struct tail {
    char buf[TAIL_MAX];
    size_t len;
} tail_t;

typedef struct line {
    char buf[1024];
    size_t len;
} line_t;

typedef struct cmd {
    const runner_command_t *spec;
    regex_t progress;
    bool has_progress;
    line_t line_out, line_err;
    pid_t pid;
    int pidfd, out, err;
    struct event *ev_exit, *ev_out, *ev_err, *ev_timeout;
    tail_t tail_out, tail_err;
    bool timed_out, killed;
} cmd_t;

static bool refuse(task_t *t, const char *field, const char *detail)
{
    t->refused = true;
    problem_set(&t->problem, ERR_VALIDATION, field, "%s", detail);
    return false;
}

/* Keeps the last TAIL_MAX bytes. */
static void tail_add(tail_t *t, const char *p, size_t n)
{
    if (n >= TAIL_MAX) {
        memcpy(t->buf, p + n - TAIL_MAX, TAIL_MAX);
        t->len = TAIL_MAX;
        return;
    }
    if (t->len + n > TAIL_MAX) {
        size_t drop = t->len + n - TAIL_MAX;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

static json_t *tail_json(const tail_t *t)
{
    json_t *s = json_stringn(t->buf, t->len);
    return s ? s : json_string("<not UTF-8>");
}

/* One template token with its {name} placeholders filled from args. */
static bool fill(task_t *t, const char *tok, json_t *args, char *out, size_t len)
{
    size_t o = 0;
    for (const char *c = tok; *c;) {
        if (*c != '{') {
            if (o + 1 >= len)
                return refuse(t, "args", "an argument is too long");
            out[o++] = *c++;
            continue;
        }
        const char *end = strchr(c, '}');
        char name[128];
        if (!end || (size_t)(end - c - 1) >= sizeof name)
            return refuse(t, "args", "the command template has a bad placeholder");
        memcpy(name, c + 1, (size_t)(end - c - 1));
        name[end - c - 1] = '\0';
        json_t *v = json_object_get(args, name);
        char num[64];
        const char *val = json_string_value(v);
        if (!val && json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), val = num;
        if (!val) {
            char detail[200];
            snprintf(detail, sizeof detail, "args.%s is required (a string or an integer)", name);
            return refuse(t, "args", detail);
        }
        size_t vl = strlen(val);
        if (o + vl + 1 >= len)
            return refuse(t, "args", "an argument is too long");
        memcpy(out + o, val, vl);
        o += vl;
        c = end + 1;
    }
    out[o] = '\0';
    return true;
}

/* argv from the template; argv[0] resolved on the safe PATH. */
static bool build_argv(task_t *t, const char *tmpl, json_t *args, char **argv, char *store,
                       size_t store_len)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", tmpl);
    int n = 0;
    size_t used = 0;
    bool options_ended = false;
    for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok;
         tok = strtok_r(NULL, " \t", &save)) {
        if (n == MAX_ARGS - 1)
            return refuse(t, "args", "the command has too many arguments");
        /* The program itself comes from the operator only. */
        if (n == 0 && strchr(tok, '{'))
            return refuse(t, "type", "the program may not be a placeholder");
        if (!fill(t, tok, args, store + used, store_len - used))
            return false;
        /* A value that would begin an argument with "-" would be read as an
         * option ("--exec ..."): refused, unless the operator's template
         * ends the options with "--" before it. */
        if (tok[0] == '{' && store[used] == '-' && !options_ended) {
            char detail[256];
            snprintf(detail, sizeof detail, "args.%.*s may not start with \"-\" (it would be an "
                     "option; the template may put -- before it)", (int)strcspn(tok + 1, "}"),
                     tok + 1);
            return refuse(t, "args", detail);
        }
        options_ended = options_ended || strcmp(tok, "--") == 0;
        argv[n++] = store + used;
        used += strlen(store + used) + 1;
    }
    argv[n] = NULL;
    if (n == 0)
        return refuse(t, "type", "the command template is empty");
    return true;
}

static bool resolve(const char *prog, char *out, size_t len)
{
    if (strchr(prog, '/')) {
        snprintf(out, len, "%s", prog);
        return access(out, X_OK) == 0;
    }
    char path[] = SAFE_PATH;
    for (char *save = NULL, *dir = strtok_r(path, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/%s", dir, prog);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static bool no_retry(const runner_command_t *spec, int code)
{
    char list[160];
    snprintf(list, sizeof list, ",%s,", spec->no_retry ? spec->no_retry : "");
    char needle[16];
    snprintf(needle, sizeof needle, ",%d,", code);
    return strstr(list, needle) != NULL;
}

/* A whole line of output: if it matches the type's progress pattern, its
 * first group is the percentage done. */
static void progress_line(task_t *t, cmd_t *c, const char *line)
{
    regmatch_t m[2];
    if (!c->has_progress || regexec(&c->progress, line, 2, m, 0) != 0 || m[1].rm_so < 0)
        return;
    if (clock_mono_ns() - t->last_progress_ns < 1000000000LL)
        return;
    json_t *line_json = json_string(line);
    json_t *p = json_pack("{s:f, s:o}", "percent", strtod(line + m[1].rm_so, NULL), "line",
                          line_json ? line_json : json_null());
    runner_progress(t, p);
    json_decref(p);
}

static void split_lines(task_t *t, cmd_t *c, line_t *l, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            l->buf[l->len] = '\0';
            if (l->len)
                progress_line(t, c, l->buf);
            l->len = 0;
        } else if (l->len + 1 < sizeof l->buf) {
            l->buf[l->len++] = p[i];
        }
    }
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    task_t *t = arg;
    cmd_t *c = t->kind_data;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        tail_add(fd == c->out ? &c->tail_out : &c->tail_err, buf, (size_t)n);
        split_lines(t, c, fd == c->out ? &c->line_out : &c->line_err, buf, (size_t)n);
        return;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) { /* closed: stop watching */
        event_del(fd == c->out ? c->ev_out : c->ev_err);
    }
}

static void drain(cmd_t *c, int fd)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        tail_add(fd == c->out ? &c->tail_out : &c->tail_err, buf, (size_t)n);
}

static void on_exit_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    task_t *t = arg;
    cmd_t *c = t->kind_data;
    int status;
    if (waitpid(c->pid, &status, WNOHANG) != c->pid)
        return;
    c->pid = 0;
    drain(c, c->out);
    drain(c, c->err);
    json_t *detail = json_pack("{s:o, s:o}", "stdout", tail_json(&c->tail_out), "stderr",
                               tail_json(&c->tail_err));
    char msg[128];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        json_object_set_new(detail, "exit_code", json_integer(0));
        runner_finish(t, ERR_OK, NULL, detail, NULL, -1);
    } else if (c->timed_out) {
        snprintf(msg, sizeof msg, "killed after the job's timeout");
        runner_finish(t, ERR_TIMEOUT, msg, NULL, detail, -1);
    } else if (WIFEXITED(status)) {
        json_object_set_new(detail, "exit_code", json_integer(WEXITSTATUS(status)));
        snprintf(msg, sizeof msg, "exit code %d", WEXITSTATUS(status));
        runner_finish(t, ERR_INTERNAL, msg, NULL, detail,
                      no_retry(c->spec, WEXITSTATUS(status)) ? 0 : -1);
    } else {
        json_object_set_new(detail, "signal", json_integer(WTERMSIG(status)));
        snprintf(msg, sizeof msg, "killed by signal %d", WTERMSIG(status));
        runner_finish(t, ERR_INTERNAL, msg, NULL, detail, -1);
    }
    json_decref(detail);
}

/* SIGTERM to the whole group first; SIGKILL if it is still there 2 s later. */
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    task_t *t = arg;
    cmd_t *c = t->kind_data;
    if (!c->pid)
        return;
    c->timed_out = true;
    kill(-c->pid, c->killed ? SIGKILL : SIGTERM);
    if (!c->killed) {
        c->killed = true;
        struct timeval tv = { 2, 0 };
        evtimer_add(c->ev_timeout, &tv);
    }
}

static const runner_command_t *spec_for(const runner_env_t *env, const char *type)
{
    for (int i = 0; i < env->ncommands; i++)
        if (strcmp(env->commands[i].type, type) == 0 && env->commands[i].argv[0])
            return &env->commands[i];
    return NULL;
}

static bool spawn(task_t *t, cmd_t *c, char **argv, const char *prog)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return refuse(t, "", "cannot create pipes");
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        return refuse(t, "", "cannot create pipes");
    }
    const runner_env_t *env = runner_env(t);
    mkdir(env->command_dir, 0700);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, env->command_dir);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    char *envp[] = { "PATH=" SAFE_PATH, "LANG=C.UTF-8", NULL };
    int rc = posix_spawn(&c->pid, prog, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(err[1]);
    c->out = out[0];
    c->err = err[0];
    if (rc != 0) {
        c->pid = 0;
        return refuse(t, "type", "the program could not be started");
    }
    fcntl(c->out, F_SETFL, O_NONBLOCK);
    fcntl(c->err, F_SETFL, O_NONBLOCK);
    return true;
}

static bool start(task_t *t, const job_t *job)
{
    cmd_t *c = calloc(1, sizeof *c);
    if (!c)
        return refuse(t, "", "out of memory");
    c->out = c->err = c->pidfd = -1;
    t->kind_data = c;
    const runner_env_t *env = runner_env(t);
    if (!(c->spec = spec_for(env, job->type)))
        return refuse(t, "type", "no JOBQ_COMMAND_<type> declares this job type");
    const char *tmpl = c->spec->argv;
    if (c->spec->progress && c->spec->progress[0]) {
        if (regcomp(&c->progress, c->spec->progress, REG_EXTENDED) != 0)
            return refuse(t, "type", "JOBQ_COMMAND_PROGRESS_<type> is not a valid regular expression");
        c->has_progress = true;
    }
    json_t *args = job_args(job);
    if (!json_is_object(args) && !json_is_null(args))
        return refuse(t, "args", "args must be an object");
    char *argv[MAX_ARGS], store[8192], prog[1024];
    if (!build_argv(t, tmpl, args, argv, store, sizeof store))
        return false;
    if (!resolve(argv[0], prog, sizeof prog))
        return refuse(t, "type", "the configured program is not found on " SAFE_PATH);
    if (!spawn(t, c, argv, prog))
        return false;
    c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    struct event_base *base = env->base;
    c->ev_exit = event_new(base, c->pidfd, EV_READ, on_exit_ready, t);
    c->ev_out = event_new(base, c->out, EV_READ | EV_PERSIST, on_output, t);
    c->ev_err = event_new(base, c->err, EV_READ | EV_PERSIST, on_output, t);
    c->ev_timeout = evtimer_new(base, on_timeout, t);
    int64_t ms = job->timeout_ms - 500;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (c->pidfd < 0 || !c->ev_exit || !c->ev_out || !c->ev_err || !c->ev_timeout) {
        kill(-c->pid, SIGKILL);
        return refuse(t, "", "cannot watch the process");
    }
    event_add(c->ev_exit, NULL);
    event_add(c->ev_out, NULL);
    event_add(c->ev_err, NULL);
    evtimer_add(c->ev_timeout, &tv);
    return true;
}

static void cancel(task_t *t)
{
    cmd_t *c = t->kind_data;
    if (c && c->pid > 0)
        kill(-c->pid, SIGTERM); /* its exit is reported, and the job becomes cancelled */
}

static void cleanup(task_t *t)
{
    cmd_t *c = t->kind_data;
    if (!c)
        return;
    if (c->pid > 0) { /* jobq is stopping with the process still running */
        kill(-c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    struct event *evs[] = { c->ev_exit, c->ev_out, c->ev_err, c->ev_timeout };
    for (int i = 0; i < 4; i++)
        if (evs[i])
            event_free(evs[i]);
    int fds[] = { c->pidfd, c->out, c->err };
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (c->has_progress)
        regfree(&c->progress);
    free(c);
    t->kind_data = NULL;
}

const runner_kind_t runner_command = {
    .name = "command",
    .queue = "command",
    .type = "(declared by JOBQ_COMMAND_<type>)",
    .start = start,
    .cancel = cancel,
    .cleanup = cleanup,
};
