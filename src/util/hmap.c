#include "util/hmap.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/randid.h"

/* Eight bytes a step from a per-process random basis, each step a
 * multiply and a shift (as in splitmix64), then a finaliser: keys are
 * client-chosen job ids, and a fixed public hash would let a client pick
 * ids that all collide and turn every probe into a scan. Not a keyed PRF,
 * but the seed is unknown to clients and every step is non-linear in it.
 * The byte-at-a-time FNV-1a it replaced was 4% of all server instructions
 * over FWP (docs/performance.md). */
static uint64_t seed(void)
{
    static _Atomic uint64_t s;
    uint64_t v = atomic_load_explicit(&s, memory_order_relaxed);
    if (!v) {
        char hex[17];
        uint64_t mine = (randid_hex(hex, 8) == 0 ? strtoull(hex, NULL, 16) : 0x9e3779b97f4a7c15ULL) | 1;
        v = atomic_compare_exchange_strong(&s, &v, mine) ? mine : v; /* first one wins */
    }
    return v;
}

static inline uint64_t step(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 31);
}

uint64_t hmap_hash(const char *s)
{
    size_t n = strlen(s);
    uint64_t h = seed() ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL), w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = step(h, w);
    }
    w = 0;
    memcpy(&w, s, n);
    h = step(h, w ^ ((uint64_t)n << 59));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h | 1; /* 0 never appears, so hash 0 can mean "empty" */
}

void hmap_init(hmap_t *m) { *m = (hmap_t){ 0 }; }

void hmap_free(hmap_t *m)
{
    free(m->slots);
    *m = (hmap_t){ 0 };
}

void hmap_free_values(hmap_t *m, void (*free_value)(void *value))
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            free_value(m->slots[i].value);
    hmap_free(m);
}

static size_t find(const hmap_t *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const hmap_slot_t *s = &m->slots[i];
        if (!s->hash || (s->hash == h && strcmp(s->key, key) == 0))
            return i;
    }
}

static int grow(hmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    hmap_slot_t *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) {
        m->slots = old;
        return -1;
    }
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].hash)
            m->slots[find(m, old[i].key, old[i].hash)] = old[i];
    }
    free(old);
    return 0;
}

void *hmap_get_h(const hmap_t *m, const char *key, uint64_t h)
{
    if (!m->len)
        return NULL;
    const hmap_slot_t *s = &m->slots[find(m, key, h)];
    return s->hash ? s->value : NULL;
}

void *hmap_get(const hmap_t *m, const char *key)
{
    return m->len ? hmap_get_h(m, key, hmap_hash(key)) : NULL;
}

int hmap_put(hmap_t *m, const char *key, void *value)
{
    return hmap_put_h(m, key, hmap_hash(key), value);
}

int hmap_put_h(hmap_t *m, const char *key, uint64_t h, void *value)
{
    if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return -1;
    hmap_slot_t *s = &m->slots[find(m, key, h)];
    if (!s->hash)
        m->len++;
    *s = (hmap_slot_t){ .key = key, .hash = h, .value = value };
    return 0;
}

void *hmap_del(hmap_t *m, const char *key)
{
    return m->len ? hmap_del_h(m, key, hmap_hash(key)) : NULL;
}

void *hmap_del_h(hmap_t *m, const char *key, uint64_t h)
{
    if (!m->len)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find(m, key, h);
    if (!m->slots[i].hash)
        return NULL;
    void *value = m->slots[i].value;
    /* Backward shift: pull later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; m->slots[j].hash; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (hmap_slot_t){ 0 };
    m->len--;
    return value;
}

int hmap_next(const hmap_t *m, size_t *iter, const char **key, void **value)
{
    for (; *iter < m->cap; (*iter)++) {
        const hmap_slot_t *s = &m->slots[*iter];
        if (s->hash) {
            *key = s->key;
            *value = s->value;
            (*iter)++;
            return 1;
        }
    }
    return 0;
}
