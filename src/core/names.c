/* Interned names (names.h). */
#include "core/names.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hmap_t table; /* name -> itself; zeroed is an empty map */

/* Each thread's last few answers: a job's queue and type are interned
 * when it is parsed and again when it thaws, nearly always the same few
 * names, and a compare costs less than the lock and the hash (~250
 * instructions). Interned names live as long as the process, so keeping
 * pointers to them is safe. */
#define RECENT 4
static _Thread_local const char *recent[RECENT];
static _Thread_local unsigned recent_next;

static const char *recently(const char *s)
{
    for (unsigned i = 0; i < RECENT; i++)
        if (recent[i] && strcmp(recent[i], s) == 0)
            return recent[i];
    return NULL;
}

const char *names_intern(const char *s)
{
    const char *seen = recently(s);
    if (seen)
        return seen;
    pthread_mutex_lock(&mu);
    char *name = hmap_get(&table, s);
    if (!name && hmap_len(&table) < NAMES_MAX && (name = strdup(s)) &&
        hmap_put(&table, name, name) != 0) {
        free(name);
        name = NULL;
    }
    pthread_mutex_unlock(&mu);
    if (name)
        recent[recent_next++ % RECENT] = name;
    return name;
}
