#include "net/offload.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/check.h"
#include "util/list.h"

typedef struct task {
    list_node_t link;
    offload_work_fn work;
    offload_done_fn done;
    void *arg;
} task_t;

struct offload {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    list_node_t todo, done; /* under mu */
    unsigned pending;       /* submitted, done not yet run (loop thread) */
    unsigned max_pending;
    bool stopping;
    int efd;
    struct event *ev;
};

static void *run(void *arg)
{
    offload_t *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (list_empty(&o->todo) && !o->stopping)
            pthread_cond_wait(&o->cv, &o->mu);
        if (list_empty(&o->todo))
            break;
        task_t *t = LIST_ENTRY(list_first(&o->todo), task_t, link);
        list_remove(&t->link);
        pthread_mutex_unlock(&o->mu);
        t->work(t->arg);
        pthread_mutex_lock(&o->mu);
        list_push_back(&o->done, &t->link);
        uint64_t one = 1;
        if (write(o->efd, &one, sizeof one) < 0) { /* a full counter still wakes the loop */
        }
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Runs every finished task's done on the loop thread. */
static void drain(offload_t *o, bool cancelled)
{
    list_node_t ready;
    list_init(&ready);
    pthread_mutex_lock(&o->mu);
    while (!list_empty(&o->done)) {
        list_node_t *n = list_first(&o->done);
        list_remove(n);
        list_push_back(&ready, n);
    }
    pthread_mutex_unlock(&o->mu);
    while (!list_empty(&ready)) {
        task_t *t = LIST_ENTRY(list_first(&ready), task_t, link);
        list_remove(&t->link);
        o->pending--;
        t->done(t->arg, cancelled);
        free(t);
    }
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0) { /* nothing to read: spurious wake-up */
    }
    drain(arg, false);
}

offload_t *offload_new(struct event_base *base, unsigned max_pending)
{
    offload_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    list_init(&o->todo);
    list_init(&o->done);
    o->max_pending = max_pending;
    o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    if (o->efd < 0 || !(o->ev = event_new(base, o->efd, EV_READ | EV_PERSIST, on_done, o)) ||
        event_add(o->ev, NULL) != 0 || pthread_create(&o->thread, NULL, run, o) != 0) {
        if (o->ev)
            event_free(o->ev);
        if (o->efd >= 0)
            close(o->efd);
        free(o);
        return NULL;
    }
    return o;
}

int offload_submit(offload_t *o, offload_work_fn work, offload_done_fn done, void *arg)
{
    CHECK_LOOP_THREAD();
    task_t *t = o->pending < o->max_pending ? malloc(sizeof *t) : NULL;
    if (!t)
        return -1;
    *t = (task_t){ .work = work, .done = done, .arg = arg };
    o->pending++;
    pthread_mutex_lock(&o->mu);
    list_init(&t->link);
    list_push_back(&o->todo, &t->link);
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

/* Finishes what was submitted (work still runs), then cancels the dones. */
void offload_free(offload_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stopping = true;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    drain(o, true);
    CHECK(o->pending == 0);
    event_free(o->ev);
    close(o->efd);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
