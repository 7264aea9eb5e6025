/* The database file's lock, identity and rescue; see sqlite_file.h. */
#include "store/sqlite_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int sqlite_file_lock(sqlite_file_t *f, const char *path, char *err, size_t len)
{
    memset(f, 0, sizeof *f);
    f->lock_fd = -1;
    snprintf(f->path, sizeof f->path, "%s", path);
    char lock[1100];
    snprintf(lock, sizeof lock, "%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return snprintf(err, len, "cannot open %s: %s", lock, strerror(errno)), -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        return snprintf(err, len, "%s is in use by another jobq (pid %s, holding %s): only one "
                        "server may own a database; stop the other one first", path,
                        pid[0] ? pid : "?", lock), -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The pid is only for the message above: the lock is what counts. */
    }
    f->lock_fd = fd;
    return 0;
}

void sqlite_file_unlock(sqlite_file_t *f)
{
    if (f->lock_fd >= 0)
        close(f->lock_fd); /* releases the flock */
    f->lock_fd = -1;
}

static int same(const char *path, bool *known, dev_t *dev, ino_t *ino, bool must_exist,
                char *why, size_t len, const char *what)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && (*known || must_exist))
            return snprintf(why, len, "the %s %s was deleted while jobq ran", what, path), -1;
        return 0; /* not there yet (a WAL before the first write), or unreadable for now */
    }
    if (!*known) {
        *known = true;
        *dev = st.st_dev;
        *ino = st.st_ino;
        return 0;
    }
    if (st.st_dev != *dev || st.st_ino != *ino)
        return snprintf(why, len, "the %s %s was replaced by another file while jobq ran", what,
                        path), -1;
    return 0;
}

int sqlite_file_check(sqlite_file_t *f, char *why, size_t len)
{
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    if (same(f->path, &f->known, &f->dev, &f->ino, true, why, len, "database file") != 0)
        return -1;
    return same(wal, &f->wal_known, &f->wal_dev, &f->wal_ino, false, why, len, "WAL file");
}

static int copy_to(sqlite3 *db, const char *target, char *err, size_t len)
{
    sqlite3 *out = NULL;
    int rc = sqlite3_open_v2(target, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(out, "main", db, "main") : NULL;
    if (b) {
        sqlite3_backup_step(b, -1);
        sqlite3_backup_finish(b);
    }
    rc = sqlite3_errcode(out);
    if (rc == SQLITE_OK) /* the copy's own WAL into its file, synced */
        rc = sqlite3_exec(out, "PRAGMA synchronous=FULL; PRAGMA wal_checkpoint(TRUNCATE);", NULL,
                          NULL, NULL);
    if (rc != SQLITE_OK)
        snprintf(err, len, "cannot write %s: %s", target, out ? sqlite3_errmsg(out) : "?");
    sqlite3_close(out);
    return rc == SQLITE_OK ? 0 : -1;
}

int sqlite_file_rescue(sqlite_file_t *f, sqlite3 *db, char *where, size_t len)
{
    struct stat st;
    char tmp[1100], target[1100];
    bool free_path = stat(f->path, &st) != 0 && errno == ENOENT;
    snprintf(target, sizeof target, free_path ? "%s" : "%s.rescued", f->path);
    snprintf(tmp, sizeof tmp, "%s.rescue-tmp", f->path);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", f->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) { /* the whole data folder may have gone */
        *slash = '\0';
        mkdir(dir, 0700);
    }
    unlink(tmp);
    if (copy_to(db, tmp, where, len) != 0)
        return -1;
    if (rename(tmp, target) != 0)
        return snprintf(where, len, "cannot rename %s to %s: %s", tmp, target, strerror(errno)),
               -1;
    snprintf(where, len, "%s", target);
    return 0;
}
