/* The journal file: framing, group commit, replay. See journal.h. */
#include "store/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "util/le.h"

#define REC_HEAD 17 /* u32 len, u32 crc, u64 gen, u8 kind */
static const char magic[] = "jobq-journal";
#define MAGIC_LEN (sizeof magic - 1)

struct journal {
    char path[1024];
    int fd;
    bool sync;
    bool full;
    dev_t dev;
    ino_t ino;
    uint64_t gen;
    uint64_t end; /* where the generation ends on disk */
    unsigned char *buf; /* the batch not yet written */
    size_t n, cap;
    size_t open; /* offset in buf of the record journal_seal() finishes */
    journal_pwrite_fn pwrite_fn;
};

/* CRC-32C over gen | kind | payload, as the header stores them. */
static uint32_t rec_crc(const unsigned char *gen_kind, const unsigned char *p, size_t n)
{
    return crc32c(crc32c(0, gen_kind, 9), p, n);
}

static int open_fd(journal_t *j, char *err, size_t len)
{
    j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        snprintf(err, len, "cannot open the journal %s: %s", j->path, strerror(errno));
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        return -1;
    }
    j->dev = st.st_dev;
    j->ino = st.st_ino;
    return 0;
}

journal_t *journal_open(const char *path, bool sync, char *err, size_t len)
{
    journal_t *j = calloc(1, sizeof *j);
    if (!j || strlen(path) >= sizeof j->path) {
        snprintf(err, len, j ? "journal path too long" : "out of memory");
        free(j);
        return NULL;
    }
    snprintf(j->path, sizeof j->path, "%s", path);
    j->sync = sync;
    j->pwrite_fn = pwrite;
    if (open_fd(j, err, len) != 0) {
        free(j);
        return NULL;
    }
    return j;
}

void journal_close(journal_t *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    free(j->buf);
    free(j);
}

void journal_set_pwrite(journal_t *j, journal_pwrite_fn fn) { j->pwrite_fn = fn ? fn : pwrite; }

/* Reads exactly n bytes at off: 1, 0 at or past the end of the file (a
 * torn tail), -1 on error. */
static int read_at(journal_t *j, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(j->fd, (char *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

typedef struct rec {
    uint64_t gen;
    uint8_t kind;
    unsigned char *p; /* owned by the reader's buffer */
    size_t n;
} rec_t;

/* One record at off: 1 (in *r, payload in *buf), 0 where the valid ones
 * end (torn, bad crc, too long), -1 on a read error. */
static int read_rec(journal_t *j, uint64_t off, rec_t *r, unsigned char **buf, size_t *cap)
{
    unsigned char h[REC_HEAD];
    int rc = read_at(j, h, REC_HEAD, off);
    if (rc <= 0)
        return rc;
    uint32_t n = le_get32(h);
    if (n > JOURNAL_RECORD_MAX)
        return 0;
    if (n > *cap) {
        unsigned char *nb = realloc(*buf, n);
        if (!nb) {
            errno = ENOMEM;
            return -1;
        }
        *buf = nb;
        *cap = n;
    }
    if (n && (rc = read_at(j, *buf, n, off + REC_HEAD)) <= 0)
        return rc;
    if (rec_crc(h + 8, *buf, n) != le_get32(h + 4))
        return 0;
    *r = (rec_t){ le_get64(h + 8), h[16], *buf, n };
    return 1;
}

static int check_header(const rec_t *r, char *err, size_t len)
{
    if (r->kind != JOURNAL_HEADER || r->n != MAGIC_LEN + 4 || memcmp(r->p, magic, MAGIC_LEN))
        return 0; /* not a journal header: treated as empty */
    uint32_t v = le_get32(r->p + MAGIC_LEN);
    if (v > JOURNAL_VERSION) {
        snprintf(err, len, "the journal was written by a newer jobq (format %u, this one knows %d)",
                 v, JOURNAL_VERSION);
        return -1;
    }
    return 1;
}

/* Hands every record of generation `want` after off to cb. 0 at the end of
 * the generation, -1 on a read error (errno) or when cb refused one. */
static int replay_from(journal_t *j, uint64_t want, uint64_t off, journal_record_cb cb, void *ud,
                       unsigned char **buf, size_t *cap, char *err, size_t len)
{
    rec_t r;
    int rc;
    while ((rc = read_rec(j, off, &r, buf, cap)) > 0 && r.gen == want) {
        if (cb(ud, r.kind, r.p, r.n) != 0) {
            snprintf(err, len, "journal replay stopped at offset %llu", (unsigned long long)off);
            return -1;
        }
        off += REC_HEAD + r.n;
    }
    if (rc < 0)
        snprintf(err, len, "cannot read the journal %s: %s", j->path, strerror(errno));
    return rc < 0 ? -1 : 0;
}

int journal_replay(journal_t *j, uint64_t applied, uint64_t *gen, journal_record_cb cb, void *ud,
                   char *err, size_t len)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    rec_t r;
    *gen = 0;
    int rc = read_rec(j, 0, &r, &buf, &cap);
    if (rc < 0)
        snprintf(err, len, "cannot read the journal %s: %s", j->path, strerror(errno));
    else if (rc > 0)
        rc = check_header(&r, err, len); /* 0: no journal here yet */
    if (rc > 0 && r.gen > applied) {
        *gen = r.gen;
        rc = replay_from(j, r.gen, REC_HEAD + r.n, cb, ud, &buf, &cap, err, len);
    }
    free(buf);
    return rc < 0 ? -1 : 0;
}

static int reserve(journal_t *j, size_t more)
{
    if (j->n + more <= j->cap)
        return 0;
    size_t cap = j->cap ? j->cap : 64 << 10;
    while (cap < j->n + more)
        cap *= 2;
    unsigned char *nb = realloc(j->buf, cap);
    if (!nb)
        return -1;
    j->buf = nb;
    j->cap = cap;
    return 0;
}

static void *reserve_record(journal_t *j, uint8_t kind, size_t n)
{
    if (n > JOURNAL_RECORD_MAX || reserve(j, REC_HEAD + n) != 0)
        return NULL;
    unsigned char *h = j->buf + j->n;
    le_put32(h, (uint32_t)n);
    le_put64(h + 8, j->gen);
    h[16] = kind;
    j->open = j->n;
    j->n += REC_HEAD + n;
    return h + REC_HEAD;
}

/* The header goes in front of a generation's first record, in the same
 * buffer, so no commit can put records at offset 0 without one. */
static int add_header(journal_t *j)
{
    unsigned char *p = reserve_record(j, JOURNAL_HEADER, MAGIC_LEN + 4);
    if (!p)
        return -1;
    memcpy(p, magic, MAGIC_LEN);
    le_put32(p + MAGIC_LEN, JOURNAL_VERSION);
    journal_seal(j);
    return 0;
}

void *journal_reserve(journal_t *j, uint8_t kind, size_t n)
{
    if (j->end == 0 && j->n == 0 && kind != JOURNAL_HEADER && add_header(j) != 0)
        return NULL;
    return reserve_record(j, kind, n);
}

void journal_seal(journal_t *j)
{
    unsigned char *h = j->buf + j->open;
    le_put32(h + 4, rec_crc(h + 8, h + REC_HEAD, le_get32(h)));
}

int journal_add(journal_t *j, uint8_t kind, const void *payload, size_t n)
{
    void *p = journal_reserve(j, kind, n);
    if (!p)
        return -1;
    if (n)
        memcpy(p, payload, n);
    journal_seal(j);
    return 0;
}

void journal_reset(journal_t *j, uint64_t gen)
{
    j->gen = gen;
    j->end = 0;
    j->n = 0;
}

uint64_t journal_gen(const journal_t *j) { return j->gen; }
uint64_t journal_size(const journal_t *j) { return j->end; }
bool journal_full(const journal_t *j) { return j->full; }

void journal_discard(journal_t *j) { j->n = 0; }

int journal_commit(journal_t *j, char *err, size_t len)
{
    size_t done = 0;
    j->full = false;
    while (done < j->n) {
        ssize_t w = j->pwrite_fn(j->fd, j->buf + done, j->n - done, (off_t)(j->end + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            j->full = w == 0 || errno == ENOSPC || errno == EDQUOT || errno == EFBIG;
            snprintf(err, len, "journal write failed: %s",
                     w == 0 ? "no space written" : strerror(errno));
            return -1;
        }
        done += (size_t)w;
    }
    if (j->sync && fdatasync(j->fd) != 0) {
        j->full = errno == ENOSPC || errno == EDQUOT;
        snprintf(err, len, "journal sync failed: %s", strerror(errno));
        return -1;
    }
    j->end += j->n;
    j->n = 0;
    return 0;
}

int journal_check(journal_t *j, char *why, size_t len)
{
    struct stat st;
    if (fstat(j->fd, &st) == 0 && st.st_nlink == 0) {
        snprintf(why, len, "the journal %s was deleted", j->path);
        return -1;
    }
    if (stat(j->path, &st) != 0 || st.st_dev != j->dev || st.st_ino != j->ino) {
        snprintf(why, len, "the journal %s was deleted or replaced", j->path);
        return -1;
    }
    return 0;
}

int journal_recreate(journal_t *j, char *err, size_t len)
{
    struct stat st;
    if (stat(j->path, &st) == 0) { /* someone else's file: keep it, out of the way */
        char aside[sizeof j->path + 16];
        snprintf(aside, sizeof aside, "%s.foreign", j->path);
        if (rename(j->path, aside) != 0) {
            snprintf(err, len, "cannot move %s aside: %s", j->path, strerror(errno));
            return -1;
        }
    }
    int old = j->fd;
    if (open_fd(j, err, len) != 0) {
        j->fd = old;
        return -1;
    }
    close(old);
    j->n = 0;
    j->end = 0;
    return 0;
}
