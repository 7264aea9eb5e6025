/*
 * journal: the store's durable hot path. One file of framed records that
 * the store thread appends to, one group commit per batch (a write, and in
 * "fsync" durability an fdatasync), and that compaction empties into the
 * database in large transactions. A write is acknowledged once it is in
 * the journal; the database catches up later (writer.c).
 *
 * On-disk format, version 1 (change JOURNAL_VERSION and this comment
 * together; an older jobq refuses a newer journal rather than guess):
 *
 *   record  = u32 len | u32 crc | u64 gen | u8 kind | payload[len]
 *             (little-endian; crc is the CRC-32C of gen, kind and payload)
 *   file    = header record (kind JOURNAL_HEADER, payload "jobq-journal" +
 *             u32 version) at offset 0, then records of the same gen
 *
 * A generation is one compaction's worth. When compaction has committed a
 * generation into the database (which records it as applied), the next one
 * overwrites the file from offset 0 instead of truncating it, so a sync
 * rarely has to write file-size metadata. Replay stops at the first record
 * that is torn, fails its crc or carries another gen: whatever follows is
 * stale bytes of an earlier generation or a write that never completed,
 * and nothing after it was ever acknowledged.
 *
 * Threads: one owner at a time (store_load before the store thread starts,
 * the store thread after). Nothing here allocates per record on the write
 * path beyond growing the batch buffer.
 */
#ifndef JOBQ_STORE_JOURNAL_H
#define JOBQ_STORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_VERSION 1
#define JOURNAL_HEADER 0         /* kind of the first record of a generation */
#define JOURNAL_RECORD_MAX (64u << 20) /* a longer length on disk is damage */

typedef struct journal journal_t;

/* Opens (creating it if missing) the journal at path. sync: fdatasync at
 * every commit. */
journal_t *journal_open(const char *path, bool sync, char *err, size_t len);
void journal_close(journal_t *j);

/* Reads the generation on disk. If it is newer than `applied`, calls cb
 * for each of its records in order (payload borrowed for the call; a
 * nonzero return stops replay with an error) and sets *gen to it; else
 * calls nothing and sets *gen to 0. -1 with a message on a read error or a
 * journal written by a newer jobq. */
typedef int (*journal_record_cb)(void *ud, uint8_t kind, const uint8_t *p, size_t n);
int journal_replay(journal_t *j, uint64_t applied, uint64_t *gen, journal_record_cb cb, void *ud,
                   char *err, size_t len);

/* Starts generation gen: its first record brings the header, and the
 * commit that writes it starts at offset 0. */
void journal_reset(journal_t *j, uint64_t gen);
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

/* 0 while the file at path is still the one open; -1 with why if it was
 * deleted or replaced (then nothing written to it would be replayed). */
int journal_check(journal_t *j, char *why, size_t len);
/* After a failed check: a new empty file at path (a foreign file found
 * there is renamed to "<path>.foreign" first). The batch is dropped; the
 * caller puts everything in the database, then starts a new generation. */
int journal_recreate(journal_t *j, char *err, size_t len);

/* Seam for tests of a full disk (beanstalkd's falloc idea): replaces
 * pwrite for this journal. NULL restores it. */
typedef ssize_t (*journal_pwrite_fn)(int fd, const void *buf, size_t n, off_t at);
void journal_set_pwrite(journal_t *j, journal_pwrite_fn fn);

#endif
