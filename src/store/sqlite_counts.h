/*
 * sqlite_counts: the job counts by queue and state (table state_counts)
 * that statistics read, kept by the writer connection itself. Each write
 * adds its change here; the sum goes to the table in the same transaction,
 * just before its commit. It replaced triggers (schema 5) that ran a
 * statement per row written: 14k of the 38k instructions a job's row cost
 * (docs/performance.md).
 *
 * Threads and ownership: one per writer connection, used by its thread
 * only; the caller's strings are copied.
 */
#ifndef JOBQ_SQLITE_COUNTS_H
#define JOBQ_SQLITE_COUNTS_H

#include <sqlite3.h>
#include <stdint.h>

#include "util/hmap.h"

typedef struct sqlite_counts {
    hmap_t queues;        /* queue name -> its changes by state */
    struct qcounts *last; /* the entry added to last: writes come by queue in runs */
} sqlite_counts_t;

void sqlite_counts_init(sqlite_counts_t *c);
void sqlite_counts_free(sqlite_counts_t *c);
/* Adds d to (queue, state); a state jobq does not know (a hand-edited
 * row) is not counted. 0, or -1 when out of memory. */
int sqlite_counts_add(sqlite_counts_t *c, const char *queue, const char *state, int64_t d);
/* Writes every change through upsert (queue ?1, state ?2, change ?3),
 * then forgets them: 0, or the failing step's SQLite code. */
int sqlite_counts_flush(sqlite_counts_t *c, sqlite3_stmt *upsert);
/* Forgets the changes (a rolled-back transaction). */
void sqlite_counts_clear(sqlite_counts_t *c);

#endif
