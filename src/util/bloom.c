/* A scalable, blocked Bloom filter. See bloom.h. */
#include "util/bloom.h"

#include <stdlib.h>

#include "util/hmap.h"

#define BLOCK_BITS 512 /* one cache line */
#define BITS_PER_MEMBER 16
#define K 7 /* bits set a member: with 16 bits each, ~0.1% false "maybe" a stage */

/* The block from the hash, the bits within it from a second mix of it
 * (hmap_hash's low bit is always set, so it is not used). */
static uint64_t remix(uint64_t h)
{
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ULL;
    h ^= h >> 27;
    h *= 0x81dadef4bc2dd44dULL;
    return h ^ (h >> 33);
}

static bool stage_has(const bloom_stage_t *st, uint64_t h, uint64_t bits)
{
    const uint64_t *w = st->words + ((h >> 1) & (st->nblocks - 1)) * (BLOCK_BITS / 64);
    for (int i = 0; i < K; i++, bits >>= 9)
        if (!(w[(bits & 511) >> 6] & (1ULL << (bits & 63))))
            return false;
    return true;
}

static void stage_set(bloom_stage_t *st, uint64_t h, uint64_t bits)
{
    uint64_t *w = st->words + ((h >> 1) & (st->nblocks - 1)) * (BLOCK_BITS / 64);
    for (int i = 0; i < K; i++, bits >>= 9)
        w[(bits & 511) >> 6] |= 1ULL << (bits & 63);
    st->n++;
}

void bloom_init(bloom_t *b, size_t first_cap)
{
    *b = (bloom_t){ .first_cap = first_cap < 64 ? 64 : first_cap };
}

void bloom_free(bloom_t *b)
{
    for (size_t i = 0; i < b->nstages; i++)
        free(b->stages[i].words);
    free(b->stages);
    bloom_init(b, b->first_cap);
}

static int add_stage(bloom_t *b)
{
    size_t cap = b->nstages ? b->stages[b->nstages - 1].cap * 2 : b->first_cap;
    size_t nblocks = 1;
    while (nblocks * BLOCK_BITS < cap * BITS_PER_MEMBER)
        nblocks *= 2;
    bloom_stage_t *stages = realloc(b->stages, (b->nstages + 1) * sizeof *stages);
    if (!stages)
        return -1;
    b->stages = stages;
    uint64_t *words = calloc(nblocks * (BLOCK_BITS / 64), sizeof *words);
    if (!words)
        return -1;
    stages[b->nstages++] = (bloom_stage_t){ words, nblocks, 0, cap };
    return 0;
}

void bloom_add(bloom_t *b, const char *key)
{
    if (b->saturated)
        return;
    if ((!b->nstages || b->stages[b->nstages - 1].n >= b->stages[b->nstages - 1].cap) &&
        add_stage(b) != 0) {
        b->saturated = true;
        return;
    }
    uint64_t h = hmap_hash(key);
    stage_set(&b->stages[b->nstages - 1], h, remix(h));
}

bool bloom_maybe(const bloom_t *b, const char *key)
{
    if (b->saturated)
        return true;
    if (!b->nstages)
        return false;
    uint64_t h = hmap_hash(key), bits = remix(h);
    for (size_t i = b->nstages; i-- > 0;) /* the newest stage is the likeliest */
        if (stage_has(&b->stages[i], h, bits))
            return true;
    return false;
}

size_t bloom_bytes(const bloom_t *b)
{
    size_t n = b->nstages * sizeof *b->stages;
    for (size_t i = 0; i < b->nstages; i++)
        n += b->stages[i].nblocks * (BLOCK_BITS / 8);
    return n;
}
