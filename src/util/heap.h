/*
 * heap: a binary min-heap of intrusive nodes keyed by int64.
 *
 * The node lives inside the caller's struct (a job's timer, a waiter's
 * deadline) so removal is O(log n) by the index the heap keeps in the node.
 * The heap owns no memory but its pointer array. Single-threaded. The test
 * build checks the heap property wherever a node comes to rest, and that a
 * node removed is the one the heap holds at its index.
 */
#ifndef JOBQ_HEAP_H
#define JOBQ_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct heap_node {
    /* First: the engine overlays a node on a list_node_t, and "in no heap,
     * in no list" is then idx == list prev == 0 (engine_internal.h). */
    size_t idx; /* position + 1 while in a heap, 0 when not */
    int64_t key;
} heap_node_t;

typedef struct heap {
    heap_node_t **items;
    size_t len, cap;
} heap_t;

void heap_init(heap_t *h);
void heap_free(heap_t *h);
/* Returns 0, or -1 when out of memory (node left out). */
int heap_push(heap_t *h, heap_node_t *n, int64_t key);
void heap_remove(heap_t *h, heap_node_t *n);
heap_node_t *heap_peek(const heap_t *h);
static inline bool heap_contains(const heap_node_t *n) { return n->idx != 0; }
static inline size_t heap_len(const heap_t *h) { return h->len; }

#endif
