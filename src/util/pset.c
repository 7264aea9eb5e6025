#include "util/pset.h"

#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"

static uint8_t tag_of(uint64_t h) { return (uint8_t)(0x80u | (h >> 57)); }

void pset_init(pset_t *s, pset_key_fn key) { *s = (pset_t){ .key = key }; }

void pset_free(pset_t *s)
{
    free(s->tags);
    free(s->items);
    *s = (pset_t){ .key = s->key };
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const pset_t *s, const char *key, uint64_t h)
{
    size_t mask = s->cap - 1;
    uint8_t tag = tag_of(h);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (!s->tags[i] || (s->tags[i] == tag && strcmp(s->key(s->items[i]), key) == 0))
            return i;
    }
}

static int grow(pset_t *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    uint8_t *tags = calloc(cap, 1);
    void **items = malloc(cap * sizeof *items);
    if (!tags || !items) {
        free(tags);
        free(items);
        return -1;
    }
    pset_t old = *s;
    s->tags = tags;
    s->items = items;
    s->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.tags[i])
            continue;
        uint64_t h = hmap_hash(s->key(old.items[i]));
        size_t j = h & (cap - 1); /* keys are distinct: the first hole is its place */
        while (s->tags[j])
            j = (j + 1) & (cap - 1);
        s->tags[j] = old.tags[i];
        s->items[j] = old.items[i];
    }
    free(old.tags);
    free(old.items);
    return 0;
}

void *pset_get(const pset_t *s, const char *key)
{
    if (!s->len)
        return NULL;
    size_t i = find(s, key, hmap_hash(key));
    return s->tags[i] ? s->items[i] : NULL;
}

int pset_add(pset_t *s, void *item)
{
    if ((s->len + 1) * 4 > s->cap * 3 && grow(s) != 0)
        return -1;
    const char *key = s->key(item);
    uint64_t h = hmap_hash(key);
    size_t i = find(s, key, h);
    if (!s->tags[i])
        s->len++;
    s->tags[i] = tag_of(h);
    s->items[i] = item;
    return 0;
}

void *pset_del(pset_t *s, const char *key)
{
    if (!s->len)
        return NULL;
    size_t mask = s->cap - 1;
    size_t i = find(s, key, hmap_hash(key));
    if (!s->tags[i])
        return NULL;
    void *item = s->items[i];
    /* Backward shift: pull later members of the probe run into the hole. */
    for (size_t j = (i + 1) & mask; s->tags[j]; j = (j + 1) & mask) {
        size_t home = hmap_hash(s->key(s->items[j])) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->tags[i] = s->tags[j];
            s->items[i] = s->items[j];
            i = j;
        }
    }
    s->tags[i] = 0;
    s->len--;
    return item;
}

void *pset_next(const pset_t *s, size_t *iter)
{
    for (; *iter < s->cap; (*iter)++)
        if (s->tags[*iter])
            return s->items[(*iter)++];
    return NULL;
}
