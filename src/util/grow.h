/*
 * grow: room for one more element in a growable array, its capacity
 * doubled from a first size. The same few lines were written by hand at
 * a dozen places (heap, bulk ids, a store op's joined readers, ...).
 *
 * Ownership: the caller owns the array before and after; on failure the
 * old array is untouched and still the caller's. Any thread, for arrays
 * it owns.
 */
#ifndef JOBQ_GROW_H
#define JOBQ_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* items holds len of *cap elements of elem bytes. Returns the array with
 * room for len + 1 (items itself when it has room; *cap updated when it
 * grew), or NULL when out of memory (items and *cap unchanged). */
static inline void *grow_array(void *items, size_t *cap, size_t len, size_t elem, size_t first)
{
    if (len < *cap)
        return items;
    size_t want = *cap ? *cap * 2 : first;
    if (want <= *cap || want > SIZE_MAX / elem)
        return NULL;
    void *v = realloc(items, want * elem);
    if (v)
        *cap = want;
    return v;
}

#endif
