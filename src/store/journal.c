/* The journal file: framing, group commit, replay. See journal.h. */
#include "store/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/check.h"
#include "util/crc32c.h"
#include "util/le.h"

#define REC_HEAD 17 /* u32 len, u32 crc, u64 gen, u8 kind */
static const char magic[] = "jobq-journal";
#define MAGIC_LEN (sizeof magic - 1)

/* One of the two files: the generation it holds and where that ends. */
typedef struct slot {
    char path[1030];
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t gen; /* 0: none known (nothing read or written yet) */
    uint64_t end;
} slot_t;

struct journal {
    slot_t slot[2];
    int cur; /* the file new records go to */
    bool sync;
    bool full;
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

static int open_fd(slot_t *f, char *err, size_t len)
{
    f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (f->fd < 0 || fstat(f->fd, &st) != 0) {
        snprintf(err, len, "cannot open the journal %s: %s", f->path, strerror(errno));
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
        return -1;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return 0;
}

journal_t *journal_open(const char *path, bool sync, char *err, size_t len)
{
    journal_t *j = calloc(1, sizeof *j);
    if (!j || strlen(path) + 2 > sizeof j->slot[0].path - 1) {
        snprintf(err, len, j ? "journal path too long" : "out of memory");
        free(j);
        return NULL;
    }
    snprintf(j->slot[0].path, sizeof j->slot[0].path, "%s", path);
    snprintf(j->slot[1].path, sizeof j->slot[1].path, "%s%s", path, JOURNAL_SECOND_SUFFIX);
    j->slot[0].fd = j->slot[1].fd = -1;
    j->sync = sync;
    j->pwrite_fn = pwrite;
    if (open_fd(&j->slot[0], err, len) != 0 || open_fd(&j->slot[1], err, len) != 0) {
        journal_close(j);
        return NULL;
    }
    return j;
}

void journal_close(journal_t *j)
{
    if (!j)
        return;
    for (int i = 0; i < 2; i++)
        if (j->slot[i].fd >= 0)
            close(j->slot[i].fd);
    free(j->buf);
    free(j);
}

void journal_set_pwrite(journal_t *j, journal_pwrite_fn fn) { j->pwrite_fn = fn ? fn : pwrite; }

/* Reads exactly n bytes at off: 1, 0 at or past the end of the file (a
 * torn tail), -1 on error. */
static int read_at(const slot_t *f, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(f->fd, (char *)p + got, n - got, (off_t)(off + got));
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
static int read_rec(const slot_t *f, uint64_t off, rec_t *r, unsigned char **buf, size_t *cap)
{
    unsigned char h[REC_HEAD];
    int rc = read_at(f, h, REC_HEAD, off);
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
    if (n && (rc = read_at(f, *buf, n, off + REC_HEAD)) <= 0)
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
static int replay_from(const slot_t *f, uint64_t want, uint64_t off, journal_record_cb cb,
                       void *ud, unsigned char **buf, size_t *cap, char *err, size_t len)
{
    rec_t r;
    int rc;
    while ((rc = read_rec(f, off, &r, buf, cap)) > 0 && r.gen == want) {
        if (cb(ud, r.kind, r.p, r.n) != 0) {
            snprintf(err, len, "journal replay stopped at offset %llu of %s",
                     (unsigned long long)off, f->path);
            return -1;
        }
        off += REC_HEAD + r.n;
    }
    if (rc < 0)
        snprintf(err, len, "cannot read the journal %s: %s", f->path, strerror(errno));
    return rc < 0 ? -1 : 0;
}

/* The generation a file's header names (f->gen, 0 if none) and where its
 * records start. 0, or -1 on a read error or a newer format. */
static int read_header(slot_t *f, uint64_t *first, unsigned char **buf, size_t *cap, char *err,
                       size_t len)
{
    rec_t r;
    f->gen = 0;
    int rc = read_rec(f, 0, &r, buf, cap);
    if (rc < 0)
        snprintf(err, len, "cannot read the journal %s: %s", f->path, strerror(errno));
    else if (rc > 0)
        rc = check_header(&r, err, len); /* 0: no journal here yet */
    if (rc > 0) {
        f->gen = r.gen;
        *first = REC_HEAD + r.n;
    }
    return rc < 0 ? -1 : 0;
}

int journal_replay(journal_t *j, uint64_t applied, uint64_t *gen, journal_record_cb cb, void *ud,
                   char *err, size_t len)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    uint64_t first[2] = { 0, 0 };
    *gen = 0;
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = read_header(&j->slot[i], &first[i], &buf, &cap, err, len);
    /* Older generation first: it was acknowledged first. */
    int order = j->slot[1].gen < j->slot[0].gen, replayed = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        slot_t *f = &j->slot[order ^ k];
        if (f->gen <= applied)
            continue;
        rc = replay_from(f, f->gen, first[order ^ k], cb, ud, &buf, &cap, err, len);
        *gen = f->gen;
        replayed++;
    }
    free(buf);
    return rc < 0 ? -1 : replayed;
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
    le_put64(h + 8, j->slot[j->cur].gen);
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
    if (j->slot[j->cur].end == 0 && j->n == 0 && kind != JOURNAL_HEADER && add_header(j) != 0)
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
    j->slot[j->cur].gen = gen;
    j->slot[j->cur].end = 0;
    j->n = 0;
}

uint64_t journal_rotate(journal_t *j)
{
    CHECK(j->n == 0); /* a batch half written would land in the wrong file */
    uint64_t closed = j->slot[j->cur].gen;
    j->cur ^= 1;
    journal_reset(j, closed + 1);
    return closed;
}

uint64_t journal_gen(const journal_t *j) { return j->slot[j->cur].gen; }
uint64_t journal_size(const journal_t *j) { return j->slot[j->cur].end; }
bool journal_full(const journal_t *j) { return j->full; }

void journal_discard(journal_t *j) { j->n = 0; }

int journal_commit(journal_t *j, char *err, size_t len)
{
    slot_t *f = &j->slot[j->cur];
    size_t done = 0;
    j->full = false;
    while (done < j->n) {
        ssize_t w = j->pwrite_fn(f->fd, j->buf + done, j->n - done, (off_t)(f->end + done));
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
    if (j->sync && fdatasync(f->fd) != 0) {
        j->full = errno == ENOSPC || errno == EDQUOT;
        snprintf(err, len, "journal sync failed: %s", strerror(errno));
        return -1;
    }
    f->end += j->n;
    j->n = 0;
    return 0;
}

static int check_slot(const slot_t *f, char *why, size_t len)
{
    struct stat st;
    if (fstat(f->fd, &st) == 0 && st.st_nlink == 0) {
        snprintf(why, len, "the journal %s was deleted", f->path);
        return -1;
    }
    if (stat(f->path, &st) != 0 || st.st_dev != f->dev || st.st_ino != f->ino) {
        snprintf(why, len, "the journal %s was deleted or replaced", f->path);
        return -1;
    }
    return 0;
}

int journal_check(journal_t *j, char *why, size_t len)
{
    return check_slot(&j->slot[0], why, len) != 0 || check_slot(&j->slot[1], why, len) != 0
               ? -1
               : 0;
}

/* A new file for one slot; a foreign file found at its path is kept aside. */
static int recreate_slot(slot_t *f, char *err, size_t len)
{
    struct stat st;
    if (stat(f->path, &st) == 0) { /* someone else's file: keep it, out of the way */
        char aside[sizeof f->path + 16];
        snprintf(aside, sizeof aside, "%s.foreign", f->path);
        if (rename(f->path, aside) != 0) {
            snprintf(err, len, "cannot move %s aside: %s", f->path, strerror(errno));
            return -1;
        }
    }
    int old = f->fd;
    if (open_fd(f, err, len) != 0) {
        f->fd = old;
        return -1;
    }
    close(old);
    f->end = 0;
    return 0;
}

int journal_recreate(journal_t *j, char *err, size_t len)
{
    char why[8];
    j->n = 0;
    for (int i = 0; i < 2; i++)
        if (check_slot(&j->slot[i], why, sizeof why) != 0 && recreate_slot(&j->slot[i], err, len))
            return -1;
    return 0;
}
