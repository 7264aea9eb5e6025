/*
 * spill: the engine's cold tier for waiting jobs (engine.h, spill hooks).
 *
 * A file in the data folder, unlinked from the start (O_TMPFILE), holding
 * the packed bytes of jobs the engine keeps out of its memory. It is a
 * cache of what the store holds durably: a crash or a restart loses it
 * harmlessly, nobody can delete it by mistake, and a second server has
 * its own. Its pages live in the kernel's page cache, not in jobq's
 * resident memory, and under memory pressure the kernel writes them out
 * instead of the process being killed.
 *
 * Space: slots of a few sizes (32-byte steps to 1 KiB, then powers of two
 * to 64 KiB) reused through a free list per size, so the file never
 * outgrows the most jobs it held at once, and it is truncated whenever it
 * holds none; SPILL_FILE_MAX bounds it. New slots at the end are written in
 * batches (a restart spills a deep queue a megabyte per write).
 *
 * Threads: loop thread only, like the engine that calls it.
 */
#ifndef JOBQ_SPILL_H
#define JOBQ_SPILL_H

#include <stddef.h>
#include <stdint.h>

#define SPILL_FILE_MAX (4LL << 30)
#define SPILL_SLOT_MAX (64 << 10)

typedef struct spill spill_t;

/* NULL when the folder cannot hold such a file (err says why). */
spill_t *spill_open(const char *dir, char *err, size_t len);
void spill_close(spill_t *s);
/* The offset the bytes went to, or -1 (too big, file full, write error):
 * the caller keeps them in memory. */
int64_t spill_write(spill_t *s, const void *bytes, size_t n);
/* 0, or -1 on a read error. */
int spill_read(spill_t *s, int64_t off, void *buf, size_t n);
/* The slot at off, written with n bytes, is free again. */
void spill_free(spill_t *s, int64_t off, size_t n);

typedef struct spill_figures {
    int64_t file_bytes, live_bytes;
    uint64_t live_slots, write_errors, read_errors;
} spill_figures_t;
void spill_figures(const spill_t *s, spill_figures_t *out);

#endif
