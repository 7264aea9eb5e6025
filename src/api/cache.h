/*
 * cache: an LRU cache with a TTL for the answers of list and statistics
 * queries, which otherwise scan the store.
 *
 * Entries are scoped to one queue or to all of them. Every job change bumps
 * its queue's generation and the global one; an entry is served only while
 * the generation it was read under is current, so a write makes the
 * entries it could change wrong at once (read-your-writes holds), without
 * walking the cache. A result that comes back from the store after a write
 * was queued is not cached at all.
 *
 * Bounded by max_bytes (key + text, accounted against JOBQ_MEMORY_LIMIT),
 * least recently used first out. Threads: the loop thread only.
 * Ownership: the cache copies keys and texts; cache_get's text is borrowed
 * until the next call.
 */
#ifndef JOBQ_API_CACHE_H
#define JOBQ_API_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cache cache_t;

typedef struct cache_stats {
    uint64_t hits, misses, evictions, invalidations, expirations;
    size_t entries, bytes, max_bytes;
    int64_t ttl_ms;
} cache_stats_t;

cache_t *cache_new(int64_t ttl_ms, size_t max_bytes);
void cache_free(cache_t *c);
/* New limits (reload); a ttl of 0 turns the cache off and empties it. */
void cache_configure(cache_t *c, int64_t ttl_ms, size_t max_bytes);

/* A job in queue changed (NULL: something not tied to one queue). */
void cache_touch(cache_t *c, const char *queue);
/* The generation a read of this scope (queue or NULL for all) starts under. */
uint64_t cache_generation(cache_t *c, const char *queue);

const char *cache_get(cache_t *c, const char *key, const char *queue, int64_t now_ms);
/* Keeps text if no change touched the scope since `generation`. */
void cache_put(cache_t *c, const char *key, const char *queue, uint64_t generation,
               const char *text, int64_t now_ms);

size_t cache_bytes(const cache_t *c);
void cache_stats(const cache_t *c, cache_stats_t *out);

#endif
