/*
 * pset: a set of items found by a string key that each item yields itself
 * (a job record and its id), with open addressing.
 *
 * What it keeps per slot is one pointer and one byte (a tag from the key's
 * hash): with a million jobs that is 18 MB where hmap's 24-byte slots
 * took 48. The key is asked of the item, never stored, so an item may move
 * its key's bytes (the engine freezing a job) without telling the set, as
 * long as the key's text stays the same. Linear probing with backward-shift
 * deletion; the hash is hmap_hash() (seeded per process). Single-threaded.
 */
#ifndef JOBQ_PSET_H
#define JOBQ_PSET_H

#include <stddef.h>
#include <stdint.h>

typedef const char *(*pset_key_fn)(const void *item);

typedef struct pset {
    uint8_t *tags; /* 0: empty; else 0x80 | 7 bits of the key's hash */
    void **items;
    size_t cap, len; /* cap is a power of two or 0 */
    pset_key_fn key;
} pset_t;

void pset_init(pset_t *s, pset_key_fn key);
/* Frees the set, not the items. */
void pset_free(pset_t *s);
void *pset_get(const pset_t *s, const char *key);
/* Adds an item whose key is not in the set yet. Returns 0, or -1 when out
 * of memory. */
int pset_add(pset_t *s, void *item);
/* Returns the removed item, or NULL if absent. */
void *pset_del(pset_t *s, const char *key);
static inline size_t pset_len(const pset_t *s) { return s->len; }
/* Iteration: for (size_t i = 0; (v = pset_next(s, &i));) ... ; no mutation meanwhile. */
void *pset_next(const pset_t *s, size_t *iter);

#endif
