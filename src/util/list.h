/*
 * list: an intrusive circular doubly-linked list (header only).
 *
 * Nodes live inside the caller's structs; the list owns nothing. A node not
 * in any list is self-linked after list_init/list_remove, so list_linked()
 * tells whether it is queued. Single-threaded. The test build checks that a
 * node is pushed only when not linked, and removed only when its
 * neighbours agree.
 */
#ifndef JOBQ_LIST_H
#define JOBQ_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "util/check.h"

typedef struct list_node {
    struct list_node *prev, *next;
} list_node_t;

#define LIST_ENTRY(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(list_node_t *n) { n->prev = n->next = n; }
static inline bool list_empty(const list_node_t *head) { return head->next == head; }
static inline bool list_linked(const list_node_t *n) { return n->next != n; }

static inline void list_push_back(list_node_t *head, list_node_t *n)
{
    CHECK(!n->next || n->next == n); /* not linked anywhere already */
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void list_remove(list_node_t *n)
{
    CHECK(n->prev->next == n && n->next->prev == n);
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

static inline list_node_t *list_first(const list_node_t *head)
{
    return list_empty(head) ? NULL : head->next;
}

#endif
