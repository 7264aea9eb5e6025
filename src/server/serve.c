/* `jobq serve`: start-up, the loop, and shutdown. */
#include "server/app.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "core/config.h"
#include "core/version.h"
#include "engine/engine.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "net/listen.h"
#include "runners/runners.h"
#include "server/spill.h"
#include "store/store.h"
#include "ui/ui.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mkdirs.h"
#include "util/url.h"

void app_arm_engine_timer(app_t *a, int64_t deadline)
{
    if (!a->engine_timer)
        return;
    if (deadline == INT64_MAX) {
        evtimer_del(a->engine_timer);
        return;
    }
    int64_t ms = deadline - clock_now_ms();
    if (ms < 0)
        ms = 0;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(a->engine_timer, &tv);
}

static void on_engine_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    engine_tick(a->engine);
    /* Re-arm even if the deadline did not move: the timer may fire a hair early. */
    app_arm_engine_timer(a, engine_next_deadline(a->engine));
}

#define PERF_TICK_MS 250

/* Measures loop lag: how late a timer due every PERF_TICK_MS really fires. */
static void on_perf_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    int64_t now = clock_mono_ns();
    if (a->perf_due_ns)
        perf_tick(a->perf, a->perf_due_ns, now);
    if (++a->perf_ticks % (1000 / PERF_TICK_MS) == 0) {
        engine_freeze_idle(a->engine); /* a quiet second: nothing stays thawed */
        int64_t now_ms = clock_now_ms();
        api_history_tick(&a->api, now_ms);
        api_events_tick(&a->api, now_ms);
    }
    a->perf_due_ns = now + PERF_TICK_MS * 1000000LL;
    struct timeval tv = { 0, PERF_TICK_MS * 1000 };
    evtimer_add(a->perf_timer, &tv);
}

/* The loop thread's log lines go out once per loop iteration. */
static void on_log_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_flush();
}

static void kick_log(void *ud)
{
    app_t *a = ud;
    event_active(a->log_flush_ev, EV_TIMEOUT, 0);
}

static void on_store(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    store_dispatch(a->store);
}

/* Writes produced anywhere in one loop iteration reach the journal in one
 * write, or the store thread in one hand-off: one lock and one wake-up
 * instead of one per write. */
static void on_store_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    store_flush(a->store);
}

static void kick_store(void *ud)
{
    app_t *a = ud;
    event_active(a->store_flush, EV_TIMEOUT, 0);
}

/* ---- shutdown ---- */

#define REQUEST_GRACE_MS 10000 /* in-flight requests get this long at shutdown */

static void add_running(void *ud, const engine_queue_info_t *q)
{
    *(size_t *)ud += q->count[JOB_RUNNING];
}

/* Draining: no new jobs or leases, but workers (and built-in runners) may
 * still report the jobs they hold, for up to JOBQ_SHUTDOWN_GRACE. Jobs
 * still running after it keep their lease in the store and are requeued
 * when it runs out, after a restart or on another node. */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app_t *a = arg;
    int64_t now = clock_now_ms();
    size_t running = 0;
    engine_queue_foreach(a->engine, add_running, &running);
    unsigned left = http_server_inflight(a->http) + (a->fwp ? fwp_server_busy(a->fwp) : 0);
    bool jobs_done = running == 0 || now >= a->drain_deadline;
    bool requests_done = left == 0 || now >= a->drain_started + REQUEST_GRACE_MS;
    if (jobs_done && requests_done) {
        if (running)
            log_warn("grace period over; running jobs keep their leases",
                     LOG_I("running", running));
        if (left)
            log_warn("grace period over; closing open requests", LOG_I("requests", left));
        event_base_loopbreak(a->base);
        return;
    }
    struct timeval tv = { 0, 20000 };
    evtimer_add(a->drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    app_t *a = arg;
    if (++a->signals > 1) {
        /* Everything acknowledged is already committed; nothing is lost. */
        log_warn("second signal: exiting now", LOG_I("signal", sig));
        _exit(1);
    }
    log_info("shutting down", LOG_I("signal", sig), LOG_I("inflight", http_server_inflight(a->http)),
             LOG_I("grace_ms", a->cfg.shutdown_grace_ms));
    a->api.draining = true;
    api_events_end(&a->api);
    if (a->fwp)
        fwp_server_drain(a->fwp);
    runners_drain(a->runners);
    engine_release_waiters(a->engine);
    a->drain_started = clock_now_ms();
    a->drain_deadline = a->drain_started + a->cfg.shutdown_grace_ms;
    on_drain_tick(-1, 0, a);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    app_reload(arg);
}

/* ---- start-up ---- */

/* The dashboard's files, else the API. */
static void app_route(void *ud, http_req_t *r)
{
    app_t *a = ud;
    if (!ui_route(r))
        api_route(&a->api, r);
}

static int open_store(app_t *a, char *err, size_t len)
{
    /* Whatever the database, the data folder holds the spill file, the
     * commands' folder and the default downloads: made here, not by SQLite. */
    if (mkdirs(a->cfg.data_dir, 0700, err, len) != 0)
        return -1;
    a->store = a->cfg.cluster ? app_cluster_open(a, err, len)
                              : store_open(a->cfg.database_url, a->cfg.durability, err, len);
    if (!a->store)
        return -1;
    store_faults_t f = { .commit_delay_ms = a->cfg.fault_commit_delay_ms,
                         .commit_fail_ms = a->cfg.fault_commit_fail_ms,
                         .read_delay_ms = a->cfg.fault_read_delay_ms,
                         .commit_lost_every = a->cfg.fault_commit_lost_every,
                         .step_delay_ms = a->cfg.fault_step_delay_ms };
    if (f.commit_delay_ms > 0 || f.commit_fail_ms > 0 || f.read_delay_ms > 0 ||
        f.commit_lost_every > 0 || f.step_delay_ms > 0) {
        log_warn("JOBQ_FAULT_* is set: commits or reads are slowed or refused on purpose "
                 "(testing only)", LOG_I("commit_delay_ms", f.commit_delay_ms),
                 LOG_I("commit_fail_ms", f.commit_fail_ms),
                 LOG_I("commit_lost_every", f.commit_lost_every),
                 LOG_I("read_delay_ms", f.read_delay_ms),
                 LOG_I("step_delay_ms", f.step_delay_ms));
        store_set_faults(a->store, &f);
    }
    if (a->cfg.auto_migrate)
        return store_migrate(a->store, err, len);
    return store_check_schema(a->store, err, len);
}

static void recover_job(void *ud, job_t *job) { engine_load(ud, job); }
static void recover_queue(void *ud, const char *name, bool paused)
{
    engine_load_queue(ud, name, paused);
}

static int start_engine(app_t *a, char *err, size_t len)
{
    engine_hooks_t hooks;
    app_engine_hooks(a, &hooks);
    engine_options_t opt = { .finished_in_memory = a->cfg.finished_in_memory,
                             .resident_budget_bytes = a->cfg.queued_in_memory,
                             .shared = a->cfg.cluster, .claim_poll_ms = a->cfg.claim_poll_ms };
    char why[512];
    if (!(a->spill = spill_open(a->cfg.data_dir, why, sizeof why)))
        log_warn("queued jobs all stay in memory", LOG_S("reason", why));
    /* The hooks record into these from the first event on. */
    if (!(a->metrics = metrics_new(JOBQ_VERSION)) ||
        !(a->workers = workers_new(a->cfg.worker_gone_ms)) || !(a->perf = perf_new()))
        return snprintf(err, len, "out of memory"), -1;
    if (!(a->engine = engine_new(&hooks, &opt)))
        return snprintf(err, len, "out of memory"), -1;
    size_t n = 0;
    int64_t t0 = clock_mono_ns();
    store_recovery_t to = { .ud = a->engine, .job = recover_job, .queue = recover_queue };
    if (store_load(a->store, &to, &n, err, len) != 0)
        return -1;
    log_info("recovered jobs", LOG_I("jobs", n), LOG_D("ms", (clock_mono_ns() - t0) / 1e6));
    return 0;
}

static int start_runners(app_t *a, char *err, size_t len)
{
    static runner_command_t commands[CONFIG_MAX_COMMANDS];
    static char command_dir[1100];
    for (int i = 0; i < a->cfg.ncommands; i++)
        commands[i] = (runner_command_t){ a->cfg.commands[i].type, a->cfg.commands[i].argv,
                                          a->cfg.commands[i].progress,
                                          a->cfg.commands[i].no_retry };
    snprintf(command_dir, sizeof command_dir, "%s/commands", a->cfg.data_dir);
    runners_options_t opt = { .spec = a->cfg.runners,
                              .download_dir = a->cfg.download_dir,
                              .download_allow_private = a->cfg.download_allow_private,
                              .command_dir = command_dir,
                              .commands = commands,
                              .ncommands = a->cfg.ncommands };
    a->runners = runners_start(a->base, a->engine, &opt, err, len);
    return a->runners ? 0 : -1;
}

static int start_faktory(app_t *a, char *err, size_t len)
{
    if (strcmp(a->cfg.faktory_listen, "off") == 0)
        return 0;
    fwp_deps_t d = { .engine = a->engine, .store = a->store, .cfg = &a->cfg,
                     .workers = a->workers, .admit = a->admit, .metrics = a->metrics,
                     .ratelimit = a->ratelimit };
    a->fwp = fwp_server_start(a->base, &d, err, len);
    return a->fwp ? 0 : -1;
}

static int start_loop(app_t *a, char *err, size_t len)
{
    /* Precise timers (timerfd): long-poll deadlines and scheduled runs are
     * honoured to the millisecond, and loop-lag figures mean something. */
    struct event_config *ec = event_config_new();
    if (ec)
        event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    a->base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec)
        event_config_free(ec);
    if (!a->base)
        return snprintf(err, len, "cannot create the event loop"), -1;
    a->engine_timer = evtimer_new(a->base, on_engine_timer, a);
    a->drain_timer = evtimer_new(a->base, on_drain_tick, a);
    a->store_ev = event_new(a->base, store_notify_fd(a->store), EV_READ | EV_PERSIST, on_store, a);
    a->store_flush = evtimer_new(a->base, on_store_flush, a);
    a->perf_timer = evtimer_new(a->base, on_perf_tick, a);
    a->log_flush_ev = evtimer_new(a->base, on_log_flush, a);
    log_buffer_this_thread(kick_log, a);
    store_set_slow_commit_ms(a->store, a->cfg.slow_commit_ms);
    store_set_compact_interval_ms(a->store, a->cfg.compact_interval_ms);
    on_perf_tick(-1, 0, a);
    store_set_kick(a->store, kick_store, a);
    a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
    a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
    a->sighup = evsignal_new(a->base, SIGHUP, on_sighup, a);
    event_add(a->sighup, NULL);
    event_add(a->store_ev, NULL);
    event_add(a->sigterm, NULL);
    event_add(a->sigint, NULL);
    app_arm_engine_timer(a, engine_next_deadline(a->engine));
    if (!(a->admit = admit_new((unsigned)a->cfg.max_connections,
                               (unsigned)a->cfg.max_connections_per_client)) ||
        !(a->ratelimit = ratelimit_new()) || !(a->guard = guard_new(&a->cfg, a->ratelimit)) ||
        !(a->cache = cache_new(a->cfg.cache_ttl_ms, app_cache_bytes(&a->cfg))) ||
        !(a->events = api_events_new()) || !(a->bulks = api_bulks_new()))
        return snprintf(err, len, "out of memory"), -1;
    app_apply_settings(a);
    a->api = (api_t){ .engine = a->engine, .store = a->store, .cfg = &a->cfg,
                      .metrics = a->metrics, .workers = a->workers, .perf = a->perf,
                      .guard = a->guard, .cache = a->cache, .admit = a->admit,
                      .events = a->events, .bulks = a->bulks, .base = a->base };
    http_options_t hopt = { .listen = a->cfg.listen,
                            .max_body_bytes = (size_t)a->cfg.max_body_bytes,
                            .idle_timeout_s = (unsigned)((a->cfg.idle_timeout_ms + 999) / 1000),
                            .header_timeout_ms = a->cfg.header_timeout_ms,
                            .body_timeout_ms = a->cfg.body_timeout_ms,
                            .admit = a->admit, .done = app_on_http_done, .done_ud = a };
    if (!(a->http = http_server_start(a->base, &hopt, app_route, a, err, len)) ||
        start_faktory(a, err, len) != 0 || start_runners(a, err, len) != 0)
        return -1;
    if (app_retention_start(a) != 0)
        return snprintf(err, len, "out of memory"), -1;
    if (app_cluster_start(a, err, len) != 0)
        return -1;
    return store_start(a->store, err, len);
}

/* A store that fails for this long while stopping is given up on, even
 * with a shorter grace (0 included): a fault of a moment (a session
 * broken once) must not cost a clean stop. */
#define STOP_GIVE_UP_MIN_MS 5000

static void app_free(app_t *a)
{
    log_unbuffer_this_thread(); /* the loop is over: nothing will flush again */
    runners_stop(a->runners); /* before the engine, which holds its lessees */
    /* The store first: its last callbacks may answer requests still open
     * (a read that outlived the grace), which must not be freed yet. */
    app_cluster_leave(a); /* other nodes take over what still runs here */
    /* Commits whatever is still queued; a database gone for a whole grace
     * ends the process here instead of a stop that never ends. */
    if (a->store && store_stop(a->store, a->cfg.shutdown_grace_ms > STOP_GIVE_UP_MIN_MS
                                             ? a->cfg.shutdown_grace_ms
                                             : STOP_GIVE_UP_MIN_MS) != 0)
        _exit(1);
    http_server_stop(a->http);
    fwp_server_stop(a->fwp);
    admit_free(a->admit);
    store_close(a->store);
    engine_free(a->engine); /* before the spill file its jobs point into */
    spill_close(a->spill);
    metrics_free(a->metrics);
    workers_free(a->workers);
    perf_free(a->perf);
    guard_free(a->guard);
    ratelimit_free(a->ratelimit);
    cache_free(a->cache);
    api_events_free(a->events); /* after the HTTP server, which closed the streams */
    api_bulks_free(a->bulks);   /* the loop has stopped: no step will run */
    app_retention_stop(a);
    struct event *evs[] = { a->engine_timer, a->store_ev, a->store_flush, a->sigterm, a->sigint,
                            a->sighup, a->drain_timer, a->perf_timer, a->log_flush_ev,
                            a->beat_timer };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    if (a->base)
        event_base_free(a->base);
}

static void log_started(const app_t *a)
{
    if (!net_loopback(a->cfg.listen) && a->cfg.nkeys == 0)
        log_warn("listening beyond loopback without API keys (JOBQ_API_KEYS): anyone who can "
                 "reach this address can enqueue, lease and delete jobs",
                 LOG_S("listen", a->cfg.listen));
    if (a->fwp && !net_loopback(a->cfg.faktory_listen) && a->cfg.nkeys == 0 &&
        !a->cfg.faktory_password[0])
        log_warn("the Faktory port listens beyond loopback without a password "
                 "(JOBQ_API_KEYS or JOBQ_FAKTORY_PASSWORD): anyone who can reach it can push, "
                 "fetch and flush jobs", LOG_S("faktory_listen", a->cfg.faktory_listen));
    if (a->fwp)
        log_info("faktory protocol listening", LOG_S("listen", a->cfg.faktory_listen),
                 LOG_I("port", fwp_server_port(a->fwp)),
                 LOG_S("tls", a->cfg.faktory_tls_cert[0] ? "on" : "off"));
    char db[sizeof a->cfg.database_url];
    log_info("listening", LOG_S("listen", a->cfg.listen), LOG_I("port", http_server_port(a->http)),
             LOG_S("database", url_redact(a->cfg.database_url, db, sizeof db)),
             LOG_S("durability", config_durability_name(a->cfg.durability)),
             LOG_I("pid", getpid()));
    if (a->cfg.durability == DURABILITY_MEMORY)
        log_warn("JOBQ_DURABILITY=memory: requests are answered BEFORE their jobs are on disk; "
                 "a crash loses them. Use only for tests and benchmarks.");
}

int serve_main(int argc, char **argv)
{
    static app_t app; /* static: signal-safe lifetime for the whole process */
    app_t *a = &app;
    char err[1024];
    bool print;
    if (app_load_config(&a->cfg, argc, argv, "--print-config", &print, err, sizeof err) != 0) {
        fprintf(stderr, "jobq: %s\n", err);
        return 2;
    }
    a->argc = argc;
    a->argv = argv;
    if (print) {
        config_print(&a->cfg, stdout);
        return 0;
    }
    log_set_level(a->cfg.log_level);
    log_set_format(a->cfg.log_format);
    check_set_loop_thread(); /* this thread runs start-up, then the loop */
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit must fail a write (EFBIG: the store retries it, as
     * for a full disk), not kill the process. */
    signal(SIGXFSZ, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: it is not thread-safe */
    int rc = 0;
    if (open_store(a, err, sizeof err) || start_engine(a, err, sizeof err) ||
        start_loop(a, err, sizeof err)) {
        log_error("cannot start", LOG_S("error", err));
        rc = 1;
    } else {
        log_started(a);
        event_base_dispatch(a->base);
        log_info("stopped", LOG_I("jobs_in_memory", engine_job_count(a->engine)));
    }
    app_free(a);
    curl_global_cleanup();
    return rc;
}

static void print_status(const char *url, int cur, int latest)
{
    const char *verdict = cur == latest  ? "up to date"
                          : cur < latest ? "migrations pending"
                                         : "database is NEWER than this jobq";
    printf("database: %s\ncurrent version: %d\nlatest version: %d\n%s\n", url, cur, latest,
           verdict);
}

int migrate_main(int argc, char **argv)
{
    config_t cfg;
    char err[1024];
    bool status;
    if (app_load_config(&cfg, argc, argv, "--status", &status, err, sizeof err) != 0) {
        fprintf(stderr, "jobq: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_format);
    store_t *s = store_open(cfg.database_url, cfg.durability, err, sizeof err);
    int cur = 0, latest = 0, rc = 0;
    char db[sizeof cfg.database_url];
    url_redact(cfg.database_url, db, sizeof db);
    if (!s || store_schema_status(s, &cur, &latest, err, sizeof err) != 0)
        rc = 1;
    else if (status)
        print_status(db, cur, latest);
    else if (store_migrate(s, err, sizeof err) != 0)
        rc = 1;
    else
        printf("database %s is at schema version %d\n", db, latest);
    if (rc)
        fprintf(stderr, "jobq: %s\n", err);
    store_close(s);
    return rc ? 1 : (status && cur > latest ? 1 : 0);
}
