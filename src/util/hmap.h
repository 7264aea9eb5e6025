/*
 * hmap: a string-keyed hash map with open addressing.
 *
 * Keys are borrowed: the caller keeps each key alive (it is normally a field
 * of the value, such as a job's id) until the entry is deleted. Values are
 * opaque pointers the map never frees. Linear probing with backward-shift
 * deletion, so there are no tombstones to clean. Single-threaded.
 */
#ifndef JOBQ_HMAP_H
#define JOBQ_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap_slot {
    const char *key;
    uint64_t hash;
    void *value;
} hmap_slot_t;

typedef struct hmap {
    hmap_slot_t *slots;
    size_t cap, len; /* cap is a power of two or 0 */
} hmap_t;

void hmap_init(hmap_t *m);
void hmap_free(hmap_t *m);
/* Calls free_value on every value (the map owns them after all), then
 * frees the map. free_value must not touch the map. */
void hmap_free_values(hmap_t *m, void (*free_value)(void *value));
void *hmap_get(const hmap_t *m, const char *key);
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int hmap_put(hmap_t *m, const char *key, void *value);
/* Returns the removed value, or NULL if absent. */
void *hmap_del(hmap_t *m, const char *key);
static inline size_t hmap_len(const hmap_t *m) { return m->len; }

/* The map's hash of a string (never 0), for pset, which shares it. */
uint64_t hmap_hash(const char *s);
/* The same three with the key's hmap_hash() given: a key looked up in
 * several maps, or several times, is hashed once. */
void *hmap_get_h(const hmap_t *m, const char *key, uint64_t h);
int hmap_put_h(hmap_t *m, const char *key, uint64_t h, void *value);
void *hmap_del_h(hmap_t *m, const char *key, uint64_t h);

/* Iteration: for (size_t i = 0; hmap_next(m, &i, &k, &v);) ... ; no mutation meanwhile. */
int hmap_next(const hmap_t *m, size_t *iter, const char **key, void **value);

#endif
