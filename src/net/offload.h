/*
 * offload: one thread for CPU-heavy work a listener must not do on the
 * loop thread (a Faktory password check costs thousands of SHA-256 per
 * configured key: done on the loop, a flood of bogus HELLOs would stall
 * every connection).
 *
 * offload_submit() queues work(arg) for the thread; done(arg) then runs on
 * the loop thread, from the loop, exactly once, even when the offload is
 * freed first (done runs then with cancelled = true, from offload_free).
 * At most `max_pending` tasks wait; past it submit refuses (-1) and the
 * caller answers "busy" itself.
 *
 * Threads: new/submit/free on the loop thread; work runs on the offload
 * thread and must touch only what arg owns. Ownership: arg belongs to the
 * caller, which keeps it alive until done has run.
 */
#ifndef JOBQ_NET_OFFLOAD_H
#define JOBQ_NET_OFFLOAD_H

#include <event2/event.h>
#include <stdbool.h>

typedef struct offload offload_t;
typedef void (*offload_work_fn)(void *arg);
typedef void (*offload_done_fn)(void *arg, bool cancelled);

offload_t *offload_new(struct event_base *base, unsigned max_pending);
int offload_submit(offload_t *o, offload_work_fn work, offload_done_fn done, void *arg);
void offload_free(offload_t *o);

#endif
