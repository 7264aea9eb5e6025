#include "util/heap.h"

#include <stdlib.h>

#include "util/check.h"
#include "util/grow.h"

void heap_init(heap_t *h) { *h = (heap_t){ 0 }; }

void heap_free(heap_t *h)
{
    free(h->items);
    *h = (heap_t){ 0 };
}

static void place(heap_t *h, size_t i, heap_node_t *n)
{
    h->items[i] = n;
    n->idx = i + 1;
}

/* The heap property around position i, where a node just came to rest. */
static bool settled(const heap_t *h, size_t i)
{
    const heap_node_t *n = h->items[i];
    size_t c = 2 * i + 1;
    return n->idx == i + 1 && (i == 0 || h->items[(i - 1) / 2]->key <= n->key) &&
           (c >= h->len || n->key <= h->items[c]->key) &&
           (c + 1 >= h->len || n->key <= h->items[c + 1]->key);
}

static void sift_up(heap_t *h, size_t i)
{
    heap_node_t *n = h->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->items[parent]->key <= n->key)
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, n);
    CHECK(settled(h, i));
}

static void sift_down(heap_t *h, size_t i)
{
    heap_node_t *n = h->items[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && h->items[c + 1]->key < h->items[c]->key)
            c++;
        if (n->key <= h->items[c]->key)
            break;
        place(h, i, h->items[c]);
        i = c;
    }
    place(h, i, n);
    CHECK(settled(h, i));
}

int heap_push(heap_t *h, heap_node_t *n, int64_t key)
{
    if (n->idx)
        heap_remove(h, n);
    heap_node_t **items = grow_array(h->items, &h->cap, h->len, sizeof *items, 64);
    if (!items)
        return -1;
    h->items = items;
    n->key = key;
    place(h, h->len++, n);
    sift_up(h, h->len - 1);
    return 0;
}

void heap_remove(heap_t *h, heap_node_t *n)
{
    if (!n->idx)
        return;
    size_t i = n->idx - 1;
    CHECK(i < h->len && h->items[i] == n); /* this node, in this heap */
    n->idx = 0;
    h->len--;
    if (i == h->len)
        return;
    heap_node_t *last = h->items[h->len];
    place(h, i, last);
    if (i > 0 && h->items[(i - 1) / 2]->key > last->key)
        sift_up(h, i);
    else
        sift_down(h, i);
}

heap_node_t *heap_peek(const heap_t *h) { return h->len ? h->items[0] : NULL; }
