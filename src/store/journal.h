/*
 * journal: the store's durable hot path. Framed records appended to one of
 * two files, one group commit per batch (a write, and in "fsync"
 * durability an fdatasync), which compaction empties into the database in
 * large transactions. A write is acknowledged once it is in the journal;
 * the database catches up later (writer.c).
 *
 * On-disk format, version 2 (change JOURNAL_VERSION and this comment
 * together; an older jobq refuses a newer journal rather than guess):
 *
 *   record  = u32 len | u32 crc | u64 gen | u8 kind | payload[len]
 *             (little-endian; crc is the CRC-32C of gen, kind and payload)
 *   file    = header record (kind JOURNAL_HEADER, payload "jobq-journal" +
 *             u32 version) at offset 0, then records of the same gen
 *
 * A generation is one compaction's worth. A compaction first moves new
 * records to the other file (journal_rotate), so that writes go on being
 * acknowledged while it applies the generation it closed; once the
 * database records that generation as applied, its file is free, and the
 * generation after next overwrites it from offset 0 instead of truncating
 * it, so a sync rarely has to write file-size metadata. Replay reads both
 * files, older generation first, and stops in each at the first record
 * that is torn, fails its crc or carries another gen: whatever follows is
 * stale bytes of an earlier generation or a write that never completed,
 * and nothing after it was ever acknowledged. Version 1 had one file, and
 * reads as a version 2 journal whose second file is empty.
 *
 * Threads: one owner at a time (store_load before the store thread starts;
 * after that the store's mutex, store_internal.h). Nothing here allocates
 * per record on the write path beyond growing the batch buffer.
 */
#ifndef JOBQ_STORE_JOURNAL_H
#define JOBQ_STORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_VERSION 2
#define JOURNAL_SECOND_SUFFIX "2" /* the second file: <path>2 */
#define JOURNAL_HEADER 0         /* kind of the first record of a generation */
#define JOURNAL_RECORD_MAX (64u << 20) /* a longer length on disk is damage */

typedef struct journal journal_t;

/* Opens (creating them if missing) the journal's files at path and at
 * path JOURNAL_SECOND_SUFFIX. sync: fdatasync at every commit. */
journal_t *journal_open(const char *path, bool sync, char *err, size_t len);
void journal_close(journal_t *j);

/* Reads the generations on disk. For each newer than `applied`, oldest
 * first, calls cb for each of its records in order (payload borrowed for
 * the call; a nonzero return stops replay with an error), and sets *gen to
 * the newest replayed (0 if none). Returns how many generations it
 * replayed (0-2), or -1 with a message on a read error or a journal
 * written by a newer jobq. */
typedef int (*journal_record_cb)(void *ud, uint8_t kind, const uint8_t *p, size_t n);
int journal_replay(journal_t *j, uint64_t applied, uint64_t *gen, journal_record_cb cb, void *ud,
                   char *err, size_t len);

/* Starts generation gen in the current file: its first record brings the
 * header, and the commit that writes it starts at offset 0. */
void journal_reset(journal_t *j, uint64_t gen);
/* Closes the current generation and starts the next one in the other
 * file; returns the one closed. The other file must hold nothing the
 * database lacks (its generation applied), and the batch be empty. */
uint64_t journal_rotate(journal_t *j);
uint64_t journal_gen(const journal_t *j);
/* Bytes of the current generation written so far. */
uint64_t journal_size(const journal_t *j);

/* Adds a record to the batch in memory; -1 when out of memory. */
int journal_add(journal_t *j, uint8_t kind, const void *payload, size_t n);
/* The same in two steps, for a record built in place: room for n payload
 * bytes (NULL when out of memory), to be filled, then journal_seal(). */
void *journal_reserve(journal_t *j, uint8_t kind, size_t n);
void journal_seal(journal_t *j);
/* Writes the batch where the generation ends, then syncs if asked. On
 * failure nothing counts as written: the batch stays, and the next commit
 * writes it at the same offset again. */
int journal_commit(journal_t *j, char *err, size_t len);
/* Drops the batch (it went to the database another way; the caller then
 * starts a new generation). */
void journal_discard(journal_t *j);
/* The last commit failed for lack of space. */
bool journal_full(const journal_t *j);

/* 0 while both files at their paths are still the ones open; -1 with why
 * if one was deleted or replaced (then nothing written to it would be
 * replayed). */
int journal_check(journal_t *j, char *why, size_t len);
/* After a failed check: a new empty file for each one lost (a foreign file
 * found at its path is renamed to "<path>.foreign" first). The batch is
 * dropped; the caller has put everything in the database. */
int journal_recreate(journal_t *j, char *err, size_t len);

/* Seam for tests of a full disk (beanstalkd's falloc idea): replaces
 * pwrite for this journal. NULL restores it. */
typedef ssize_t (*journal_pwrite_fn)(int fd, const void *buf, size_t n, off_t at);
void journal_set_pwrite(journal_t *j, journal_pwrite_fn fn);

#endif
