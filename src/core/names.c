/* Interned names (names.h). */
#include "core/names.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static hmap_t table; /* name -> itself; zeroed is an empty map */

const char *names_intern(const char *s)
{
    pthread_mutex_lock(&mu);
    char *name = hmap_get(&table, s);
    if (!name && hmap_len(&table) < NAMES_MAX && (name = strdup(s)) &&
        hmap_put(&table, name, name) != 0) {
        free(name);
        name = NULL;
    }
    pthread_mutex_unlock(&mu);
    return name;
}
