/*
 * names: one shared copy of each queue and type name. A million queued
 * jobs name a handful of queues and types; a copy of each per job was two
 * allocations of 32 bytes a job (docs/performance.md).
 *
 * Threads: any (one mutex; the loop parses jobs, the store's readers
 * unpack them). Ownership: an interned name lives as long as the process.
 * The table is bounded (NAMES_MAX): past it, and when out of memory,
 * names_intern() returns NULL and the caller keeps a copy of its own, so
 * a client inventing names cannot grow the table without end.
 */
#ifndef JOBQ_NAMES_H
#define JOBQ_NAMES_H

#define NAMES_MAX 4096

/* The shared copy of s, or NULL (table full, out of memory). */
const char *names_intern(const char *s);

#endif
