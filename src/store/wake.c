/* Cluster mode's wake-ups (docs/architecture.md): a node that made jobs
 * free to claim (an enqueue, a give-back) announces their queues, and a
 * node whose workers wait on one claims at once instead of at its next
 * poll. A thread of the store's with a session of its own (backend.h,
 * wake_*): announcements go out at most every WAKE_GAP_MS (a burst of
 * enqueues costs a few a second, not one each), and what it hears goes
 * to the loop through the store's eventfd (store_wake_dispatch). Polling
 * stays the fallback: a lost wake-up, or a session down, delays a claim
 * by one poll and loses nothing. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "core/job.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/sbuf.h"

#define WAKE_GAP_MS 200
#define WAKE_RETRY_MS 2000

static void set_add(store_wake_set_t *set, const char *name, size_t len)
{
    if (set->any)
        return;
    for (int i = 0; i < set->n; i++)
        if (strlen(set->names[i]) == len && !memcmp(set->names[i], name, len))
            return;
    if (set->n == STORE_WAKE_NAMES || len > JOB_NAME_MAX) {
        set->any = true;
        return;
    }
    memcpy(set->names[set->n], name, len);
    set->names[set->n++][len] = '\0';
}

static void signal_thread(store_t *s)
{
    uint64_t one = 1;
    if (write(s->wake_efd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_error("wake-up signal failed", LOG_S("error", strerror(errno)));
}

void store_wake_announce(store_t *s, const char *queue)
{
    CHECK_LOOP_THREAD();
    if (!s->wake_running)
        return;
    pthread_mutex_lock(&s->mu);
    bool first = !s->announce.n && !s->announce.any && !s->announce_breaker;
    if (!strcmp(queue, STORE_WAKE_BREAKER))
        s->announce_breaker = true; /* never lost in a "*" */
    else
        set_add(&s->announce, queue, strlen(queue));
    pthread_mutex_unlock(&s->mu);
    if (first)
        signal_thread(s);
}

/* A payload is queue names joined by commas, or "*"; anything else a peer
 * sent (or a stranger on the channel) counts as "*": a claim too many
 * costs one statement, a wake-up missed costs a poll. */
static void heard(void *ud, const char *payload)
{
    store_t *s = ud;
    pthread_mutex_lock(&s->mu);
    for (const char *p = payload; !s->heard.any || !s->heard_breaker;) {
        size_t len = strcspn(p, ",");
        if (len == strlen(STORE_WAKE_BREAKER) && !memcmp(p, STORE_WAKE_BREAKER, len)) {
            s->heard_breaker = true;
            if (!p[len])
                break;
            p += len + 1;
            continue;
        }
        bool ok = len > 0 && len <= JOB_NAME_MAX;
        for (size_t i = 0; ok && i < len; i++)
            ok = job_name_char(p[i]);
        if (!ok)
            s->heard.any = true;
        else
            set_add(&s->heard, p, len);
        if (!p[len])
            break;
        p += len + 1;
    }
    pthread_mutex_unlock(&s->mu);
    store_notify(s);
}

void store_wake_dispatch(store_t *s)
{
    CHECK_LOOP_THREAD();
    if (!s->wake_running)
        return;
    store_wake_set_t got;
    pthread_mutex_lock(&s->mu);
    got = s->heard;
    s->heard.n = 0;
    s->heard.any = false;
    if (s->heard_breaker) {
        s->breakers_open = true;
        s->breakers_gen++;
    }
    s->heard_breaker = false;
    pthread_mutex_unlock(&s->mu);
    if (!got.n && !got.any)
        return;
    const char *names[STORE_WAKE_NAMES];
    for (int i = 0; i < got.n; i++)
        names[i] = got.names[i];
    if (s->woken_cb)
        s->woken_cb(s->woken_ud, names, got.any ? 0 : got.n);
}

/* What waits to be announced, as one payload; the set is emptied. */
static bool take_payload(store_t *s, sbuf_t *out)
{
    pthread_mutex_lock(&s->mu);
    bool any = s->announce.any, some = any || s->announce.n || s->announce_breaker;
    for (int i = 0; !any && i < s->announce.n; i++) {
        if (i)
            sbuf_addc(out, ',');
        sbuf_adds(out, s->announce.names[i]);
    }
    if (any)
        sbuf_adds(out, "*");
    if (s->announce_breaker)
        sbuf_adds(out, out->len ? "," STORE_WAKE_BREAKER : STORE_WAKE_BREAKER);
    s->announce.n = 0;
    s->announce.any = false;
    s->announce_breaker = false;
    pthread_mutex_unlock(&s->mu);
    return some;
}

static void wait_for(store_t *s, void *w, int timeout_ms)
{
    struct pollfd p[2] = { { s->wake_efd, POLLIN, 0 }, { w ? s->ops->wake_fd(w) : -1, POLLIN, 0 } };
    if (poll(p, w ? 2 : 1, timeout_ms) > 0 && (p[0].revents & POLLIN)) {
        uint64_t n;
        while (read(s->wake_efd, &n, sizeof n) > 0)
            ;
    }
}

static bool stopping(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool stop = s->wake_stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* One turn with a session: announce if due, then wait for input, an
 * announcement or the gap's end. false: the session broke. */
static bool turn(store_t *s, void *w, int64_t *last_sent)
{
    pthread_mutex_lock(&s->mu);
    bool want = s->announce.n || s->announce.any || s->announce_breaker;
    bool urgent = s->announce_breaker; /* rare, and every node's claims should know at once */
    pthread_mutex_unlock(&s->mu);
    int64_t now = clock_mono_ns() / 1000000, due = *last_sent + WAKE_GAP_MS;
    if (want && (now >= due || urgent)) {
        sbuf_t payload;
        sbuf_init(&payload, 256);
        bool some = take_payload(s, &payload);
        int rc = some && payload.p ? s->ops->wake_send(w, payload.p) : 0;
        sbuf_free(&payload);
        *last_sent = now;
        /* Notifications that came during the call are queued in libpq:
         * the socket will not say so. */
        return rc == 0 && s->ops->wake_read(w, heard, s) == 0;
    }
    wait_for(s, w, want ? (int)(due - now) : -1);
    return s->ops->wake_read(w, heard, s) == 0;
}

static void *wake_main(void *arg)
{
    store_t *s = arg;
    void *w = NULL;
    bool down = false;
    int64_t last_sent = 0;
    while (!stopping(s)) {
        if (!w) {
            char err[300];
            if (!(w = s->ops->wake_open(s->url, err, sizeof err))) {
                if (!down)
                    log_warn("cannot listen for other nodes' wake-ups; claims wait for their "
                             "poll meanwhile", LOG_S("error", err));
                down = true;
                wait_for(s, NULL, WAKE_RETRY_MS);
                continue;
            }
            if (down)
                log_info("listening for other nodes' wake-ups again");
            down = false;
            pthread_mutex_lock(&s->mu);
            s->heard.any = true; /* a wake-up may have been missed while down: claim now */
            pthread_mutex_unlock(&s->mu);
            store_notify(s);
        }
        if (!turn(s, w, &last_sent)) {
            s->ops->wake_close(w);
            w = NULL;
        }
    }
    if (w)
        s->ops->wake_close(w);
    return NULL;
}

int store_wake_start(store_t *s, char *err, size_t len)
{
    if (!s->cluster || !s->ops->wake_open || !s->woken_cb)
        return 0;
    if ((s->wake_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, len, "eventfd: %s", strerror(errno));
        return -1;
    }
    if (pthread_create(&s->wake_thread, NULL, wake_main, s) != 0) {
        close(s->wake_efd);
        snprintf(err, len, "cannot start the wake-up thread");
        return -1;
    }
    s->wake_running = true;
    return 0;
}

/* Bounded by the session's short timeouts (backend.h: wake_open). */
void store_wake_stop(store_t *s)
{
    if (!s->wake_running)
        return;
    pthread_mutex_lock(&s->mu);
    s->wake_stop = true;
    pthread_mutex_unlock(&s->mu);
    signal_thread(s);
    pthread_join(s->wake_thread, NULL);
    close(s->wake_efd);
    s->wake_running = false;
}
