/* The spill file (spill.h). */
#include "server/spill.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/grow.h"

#define NCLASS 38 /* 32 steps of 32 bytes, then 2 KiB .. 64 KiB */
#define BATCH (1 << 20) /* new slots gathered before one write */

typedef struct offs {
    int64_t *v;
    size_t n, cap;
} offs_t;

struct spill {
    int fd;
    int64_t end;     /* the file's length once the batch is written */
    int64_t flushed; /* what is written; [flushed, end) is in batch */
    char *batch;
    offs_t free_[NCLASS];
    spill_figures_t fig;
};

/* Slots of 32-byte steps up to 1 KiB (a queued job is a few hundred
 * bytes: a power of two would waste a quarter of the file), then powers
 * of two up to SPILL_SLOT_MAX. */
static int class_of(size_t n)
{
    if (n <= 1024)
        return (int)((n - 1) / 32);
    int bits = 11;
    while (((size_t)1 << bits) < n)
        bits++;
    return 32 + bits - 11;
}

static size_t slot_size(int k) { return k < 32 ? (size_t)(k + 1) * 32 : (size_t)1024 << (k - 31); }

static int open_unlinked(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    /* A file system without O_TMPFILE: the same, by unlinking at once. */
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.jobq-spill-XXXXXX", dir) >= (int)sizeof path)
        return errno = ENAMETOOLONG, -1;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

spill_t *spill_open(const char *dir, char *err, size_t len)
{
    spill_t *s = calloc(1, sizeof *s);
    if (!s || !(s->batch = malloc(BATCH))) {
        free(s);
        snprintf(err, len, "out of memory");
        return NULL;
    }
    if ((s->fd = open_unlinked(dir)) < 0) {
        snprintf(err, len, "cannot create a spill file in %s: %s", dir, strerror(errno));
        free(s->batch);
        free(s);
        return NULL;
    }
    return s;
}

void spill_close(spill_t *s)
{
    if (!s)
        return;
    close(s->fd);
    for (int k = 0; k < NCLASS; k++)
        free(s->free_[k].v);
    free(s->batch);
    free(s);
}

static int write_all(int fd, const char *p, size_t n, int64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w, off += w;
    }
    return 0;
}

static int flush(spill_t *s)
{
    size_t n = (size_t)(s->end - s->flushed);
    if (n && write_all(s->fd, s->batch, n, s->flushed) != 0)
        return -1; /* the batch stays; reads are still served from it */
    s->flushed = s->end;
    return 0;
}

static int64_t reuse(spill_t *s, int k, const void *bytes, size_t n)
{
    offs_t *f = &s->free_[k];
    int64_t off = f->v[--f->n];
    if (off >= s->flushed) {
        memcpy(s->batch + (off - s->flushed), bytes, n);
    } else if (write_all(s->fd, bytes, n, off) != 0) {
        f->n++;
        return -1;
    }
    return off;
}

static int64_t append(spill_t *s, int k, const void *bytes, size_t n)
{
    size_t size = slot_size(k);
    if (s->end + (int64_t)size > SPILL_FILE_MAX)
        return -1;
    if ((size_t)(s->end - s->flushed) + size > BATCH && flush(s) != 0)
        return -1;
    int64_t off = s->end;
    memcpy(s->batch + (off - s->flushed), bytes, n);
    s->end += (int64_t)size;
    return off;
}

int64_t spill_write(spill_t *s, const void *bytes, size_t n)
{
    if (n == 0 || n > SPILL_SLOT_MAX)
        return -1;
    int k = class_of(n);
    int64_t off = s->free_[k].n ? reuse(s, k, bytes, n) : append(s, k, bytes, n);
    if (off < 0) {
        s->fig.write_errors++;
        return -1;
    }
    s->fig.live_slots++;
    s->fig.live_bytes += (int64_t)n;
    return off;
}

int spill_read(spill_t *s, int64_t off, void *buf, size_t n)
{
    if (off >= s->flushed) {
        memcpy(buf, s->batch + (off - s->flushed), n);
        return 0;
    }
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(s->fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            s->fig.read_errors++;
            return -1;
        }
        p += r, n -= (size_t)r, off += r;
    }
    return 0;
}

/* Nothing is spilled: give the disk back and start again from 0. */
static void reset(spill_t *s)
{
    if (ftruncate(s->fd, 0) != 0)
        return; /* keep the slots: they are still valid, just not reclaimed */
    s->end = s->flushed = 0;
    for (int k = 0; k < NCLASS; k++) {
        free(s->free_[k].v);
        s->free_[k] = (offs_t){ 0 };
    }
}

void spill_free(spill_t *s, int64_t off, size_t n)
{
    s->fig.live_slots--;
    s->fig.live_bytes -= (int64_t)n;
    if (s->fig.live_slots == 0) {
        reset(s);
        return;
    }
    offs_t *f = &s->free_[class_of(n)];
    int64_t *v = grow_array(f->v, &f->cap, f->n, sizeof *v, 64);
    if (!v)
        return; /* the slot is lost to reuse until the next reset */
    f->v = v;
    f->v[f->n++] = off;
}

void spill_figures(const spill_t *s, spill_figures_t *out)
{
    *out = s->fig;
    out->file_bytes = s->end;
}
