/*
 * bloom: a set of strings that can say "certainly not a member", in about
 * two bytes a member. A scalable Bloom filter: stages of doubling capacity,
 * so it needs no size up front; each stage keeps a member's bits in one
 * 64-byte block (one cache line a lookup, whatever k). A false "maybe" is
 * rare (well under 1% for a million members) and only ever costs the
 * caller the lookup it would have made without the filter.
 *
 * Out of memory never makes it lie: a stage it cannot allocate saturates
 * the filter, which answers "maybe" to everything from then on.
 *
 * Threads: none; one owner at a time. Ownership: the caller owns the
 * bloom_t; keys are hashed (hmap_hash, seeded per process), never kept.
 */
#ifndef JOBQ_BLOOM_H
#define JOBQ_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bloom_stage {
    uint64_t *words; /* nblocks * 8 */
    size_t nblocks;  /* a power of two */
    size_t n, cap;
} bloom_stage_t;

typedef struct bloom {
    bloom_stage_t *stages;
    size_t nstages;
    size_t first_cap;
    bool saturated;
} bloom_t;

/* An empty filter whose first stage (allocated at the first add) holds
 * first_cap members; later stages double. */
void bloom_init(bloom_t *b, size_t first_cap);
void bloom_free(bloom_t *b);
void bloom_add(bloom_t *b, const char *key);
/* false: key was certainly never added. */
bool bloom_maybe(const bloom_t *b, const char *key);
size_t bloom_bytes(const bloom_t *b);

#endif
