/*
 * sqlite_file: the SQLite backend owns its database file.
 *
 * - An exclusive lock on "<db>.lock" (flock, held for the life of the
 *   writer connection) so that a second server, or `jobq migrate`, started
 *   by mistake on the same database exits with a clear message instead of
 *   leasing the same jobs and overwriting the other's results.
 * - The identity (device, inode) of the database file and of its WAL as
 *   opened, so the writer notices when either is deleted or replaced while
 *   it runs: it would otherwise acknowledge writes into a file nobody reads.
 * - Rescue: a copy of everything the live connection holds, written back
 *   to the database's path (or beside it if something else is there now)
 *   through SQLite's backup API.
 *
 * Threads: whoever owns the writer connection (see backend.h).
 */
#ifndef JOBQ_SQLITE_FILE_H
#define JOBQ_SQLITE_FILE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct sqlite_file {
    char path[1024];
    int lock_fd;
    dev_t dev, wal_dev;
    ino_t ino, wal_ino;
    bool known, wal_known;
} sqlite_file_t;

/* Takes the lock; -1 with a message naming the holder's pid if taken. */
int sqlite_file_lock(sqlite_file_t *f, const char *path, char *err, size_t len);
void sqlite_file_unlock(sqlite_file_t *f);
/* 0 while the files are those first seen (learning the WAL's once it
 * exists); -1 with why when one was deleted or replaced. */
int sqlite_file_check(sqlite_file_t *f, char *why, size_t len);
/* Writes db's whole content back to f->path if nothing is there, else to
 * "<path>.rescued"; where says which. 0 or -1 with why in where. */
int sqlite_file_rescue(sqlite_file_t *f, sqlite3 *db, char *where, size_t len);

#endif
