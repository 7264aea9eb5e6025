/* Contract checks; see check.h. */
#include "util/check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_t loop_thread;
static atomic_bool loop_set;

_Noreturn void check_failed(const char *cond, const char *file, int line, const char *func)
{
    fprintf(stderr, "jobq: contract broken: CHECK(%s) at %s:%d in %s\n", cond, file, line, func);
    abort();
}

void check_set_loop_thread(void)
{
    loop_thread = pthread_self();
    atomic_store(&loop_set, true);
}

bool check_on_loop_thread(void)
{
    return !atomic_load(&loop_set) || pthread_equal(loop_thread, pthread_self());
}
