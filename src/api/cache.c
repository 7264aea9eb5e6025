/* The query cache; see cache.h. */
#include "api/cache.h"

#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/list.h"

typedef struct entry {
    char *key;   /* owned; the hmap key */
    char *queue; /* owned; NULL: all queues */
    char *text;  /* owned */
    size_t bytes;
    uint64_t generation;
    int64_t expires_at;
    list_node_t lru; /* most recently used last */
} entry_t;

/* Queues whose generation is kept apart; the rest share unseen_generation,
 * so a change to any of them goes stale every read of an untracked queue.
 * Queue names are the clients' to invent: kept for each, they grew the
 * server for good. */
#define CACHE_QUEUES_MAX 4096

typedef struct qgen {
    char *name; /* owned; the hmap key */
    uint64_t generation;
} qgen_t;

struct cache {
    int64_t ttl_ms;
    size_t max_bytes, bytes;
    hmap_t entries;
    list_node_t lru;
    hmap_t queues;      /* name -> qgen_t */
    qgen_t *last;       /* the entry touched last (entries stay until cache_free) */
    uint64_t global;    /* bumped by every change */
    uint64_t unseen_generation; /* of queues not yet tracked: last change to all */
    cache_stats_t st;
};

cache_t *cache_new(int64_t ttl_ms, size_t max_bytes)
{
    cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    hmap_init(&c->entries);
    hmap_init(&c->queues);
    list_init(&c->lru);
    c->ttl_ms = ttl_ms;
    c->max_bytes = max_bytes;
    return c;
}

static void drop(cache_t *c, entry_t *e)
{
    hmap_del(&c->entries, e->key);
    list_remove(&e->lru);
    c->bytes -= e->bytes;
    free(e->key);
    free(e->queue);
    free(e->text);
    free(e);
}

static void trim(cache_t *c, size_t room)
{
    while (!list_empty(&c->lru) && c->bytes + room > c->max_bytes) {
        drop(c, LIST_ENTRY(list_first(&c->lru), entry_t, lru));
        c->st.evictions++;
    }
}

static void free_qgen(void *v)
{
    free(((qgen_t *)v)->name);
    free(v);
}

void cache_free(cache_t *c)
{
    if (!c)
        return;
    c->max_bytes = 0;
    trim(c, 0);
    hmap_free(&c->entries);
    hmap_free_values(&c->queues, free_qgen);
    free(c);
}

void cache_configure(cache_t *c, int64_t ttl_ms, size_t max_bytes)
{
    c->ttl_ms = ttl_ms;
    c->max_bytes = ttl_ms > 0 ? max_bytes : 0;
    trim(c, 0);
}

static uint64_t queue_generation(cache_t *c, const char *queue)
{
    qgen_t *g = hmap_get(&c->queues, queue);
    return g ? g->generation : c->unseen_generation;
}

uint64_t cache_generation(cache_t *c, const char *queue)
{
    return queue ? queue_generation(c, queue) : c->global;
}

void cache_touch(cache_t *c, const char *queue)
{
    c->global++;
    if (c->ttl_ms <= 0)
        return;
    if (!queue) { /* a change we cannot place (a delete by id): every queue */
        const char *k;
        void *v;
        for (size_t i = 0; hmap_next(&c->queues, &i, &k, &v);)
            ((qgen_t *)v)->generation = c->global;
        c->unseen_generation = c->global;
        return;
    }
    qgen_t *g = c->last && !strcmp(c->last->name, queue) ? c->last : hmap_get(&c->queues, queue);
    if (!g) {
        if (hmap_len(&c->queues) >= CACHE_QUEUES_MAX || !(g = calloc(1, sizeof *g)) ||
            !(g->name = strdup(queue)) || hmap_put(&c->queues, g->name, g) != 0) {
            if (g)
                free(g->name);
            free(g);
            c->unseen_generation = c->global; /* cannot track it: every untracked queue */
            return;
        }
    }
    c->last = g;
    g->generation = c->global; /* distinct from any generation read before */
}

const char *cache_get(cache_t *c, const char *key, const char *queue, int64_t now)
{
    entry_t *e = c->ttl_ms > 0 ? hmap_get(&c->entries, key) : NULL;
    if (e && e->generation != cache_generation(c, queue)) {
        drop(c, e);
        c->st.invalidations++;
        e = NULL;
    } else if (e && now >= e->expires_at) {
        drop(c, e);
        c->st.expirations++;
        e = NULL;
    }
    if (!e) {
        c->st.misses++;
        return NULL;
    }
    c->st.hits++;
    list_remove(&e->lru);
    list_push_back(&c->lru, &e->lru);
    return e->text;
}

void cache_put(cache_t *c, const char *key, const char *queue, uint64_t generation,
               const char *text, int64_t now)
{
    if (c->ttl_ms <= 0 || generation != cache_generation(c, queue))
        return; /* off, or a change came in while the store was read */
    size_t bytes = sizeof(entry_t) + strlen(key) + strlen(text) + (queue ? strlen(queue) : 0) + 3;
    if (bytes > c->max_bytes / 4)
        return; /* one huge answer would push out everything else */
    entry_t *old = hmap_get(&c->entries, key);
    if (old)
        drop(c, old);
    trim(c, bytes);
    entry_t *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key)) || !(e->text = strdup(text)) ||
        (queue && !(e->queue = strdup(queue))) || hmap_put(&c->entries, e->key, e) != 0) {
        if (e) {
            free(e->key);
            free(e->text);
            free(e->queue);
        }
        free(e);
        return;
    }
    e->bytes = bytes;
    e->generation = generation;
    e->expires_at = now + c->ttl_ms;
    list_push_back(&c->lru, &e->lru);
    c->bytes += bytes;
}

size_t cache_bytes(const cache_t *c) { return c->bytes; }

void cache_stats(const cache_t *c, cache_stats_t *out)
{
    *out = c->st;
    out->entries = hmap_len(&c->entries);
    out->bytes = c->bytes;
    out->max_bytes = c->max_bytes;
    out->ttl_ms = c->ttl_ms;
}
