/*
 * A write op as a journal record, and back (journal.h has the framing).
 * Payloads, little-endian, version 1 of the journal format:
 *
 *   REC_PUT     u8 ev | i32 priority | i64 created_at | i64 updated_at |
 *               i64 run_at | str id | str queue | str type | str state | bytes doc
 *   REC_DELETE  str id
 *   REC_QUEUE   u8 paused | str name
 *
 * where str = u32 length | bytes (no NUL inside, none at the end), and
 * bytes the same with any byte inside (doc: job_pack()'s form, or a JSON
 * document in a journal written before jobs were packed). A record
 * read back is checked field by field: bytes from the disk are hostile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/journal.h"
#include "store/store_internal.h"
#include "util/le.h"

typedef struct wbuf {
    unsigned char *p;
} wbuf_t;

static void w_u8(wbuf_t *b, unsigned v) { *b->p++ = (unsigned char)v; }
static void w_u64(wbuf_t *b, uint64_t v)
{
    le_put64(b->p, v);
    b->p += 8;
}
static void w_u32(wbuf_t *b, uint32_t v)
{
    le_put32(b->p, v);
    b->p += 4;
}
static void w_str(wbuf_t *b, const char *s, size_t n)
{
    w_u32(b, (uint32_t)n);
    memcpy(b->p, s, n);
    b->p += n;
}

static int put_record(journal_t *j, const op_t *op)
{
    const store_row_t *r = &op->row;
    const char *str[5] = { r->id, r->queue, r->type, r->state, r->doc };
    size_t len[5], n = 1 + 4 + 3 * 8;
    for (int i = 0; i < 4; i++)
        n += 4 + (len[i] = strlen(str[i]));
    n += 4 + (len[4] = r->doc_len);
    wbuf_t b = { journal_reserve(j, REC_PUT, n) };
    if (!b.p)
        return -1;
    w_u8(&b, (unsigned)op->ev);
    w_u32(&b, (uint32_t)r->priority);
    w_u64(&b, (uint64_t)r->created_at);
    w_u64(&b, (uint64_t)r->updated_at);
    w_u64(&b, (uint64_t)r->run_at);
    for (int i = 0; i < 5; i++)
        w_str(&b, str[i], len[i]);
    journal_seal(j);
    return 0;
}

static int name_record(journal_t *j, uint8_t kind, const char *name, int flag)
{
    size_t len = strlen(name), n = (flag >= 0) + 4 + len;
    wbuf_t b = { journal_reserve(j, kind, n) };
    if (!b.p)
        return -1;
    if (flag >= 0)
        w_u8(&b, (unsigned)flag);
    w_str(&b, name, len);
    journal_seal(j);
    return 0;
}

int store_record_write(journal_t *j, const op_t *op)
{
    switch (op->kind) {
    case OP_PUT: return put_record(j, op);
    case OP_DELETE: return name_record(j, REC_DELETE, op->name, -1);
    case OP_QUEUE: return name_record(j, REC_QUEUE, op->name, op->paused);
    default: return 0; /* purges never reach the journal (writer.c) */
    }
}

/* ---- reading back ---- */

typedef struct rbuf {
    const unsigned char *p, *end;
    bool bad;
} rbuf_t;

/* A field of 1, 4 or 8 bytes; past the end, 0 and the buffer is bad. */
static uint64_t r_uint(rbuf_t *b, int bytes)
{
    if (b->end - b->p < bytes) {
        b->bad = true;
        return 0;
    }
    uint64_t v = bytes == 8 ? le_get64(b->p) : bytes == 4 ? le_get32(b->p) : b->p[0];
    b->p += bytes;
    return v;
}

typedef struct rstr {
    const char *s;
    size_t n;
} rstr_t;

static rstr_t r_bytes(rbuf_t *b, bool text)
{
    size_t n = (size_t)r_uint(b, 4);
    rstr_t out = { NULL, 0 };
    if (b->bad || (size_t)(b->end - b->p) < n || (text && memchr(b->p, '\0', n))) {
        b->bad = true;
        return out;
    }
    out = (rstr_t){ (const char *)b->p, n };
    b->p += n;
    return out;
}

static rstr_t r_str(rbuf_t *b) { return r_bytes(b, true); }

/* An op holding copies of k strings, NUL-terminated, in its str[]. */
static op_t *op_with(op_kind_t kind, const rstr_t *in, int k, const char **out)
{
    size_t n = 0;
    for (int i = 0; i < k; i++)
        n += in[i].n + 1;
    op_t *op = calloc(1, sizeof *op + n);
    if (!op)
        return NULL;
    op->kind = kind;
    char *p = op->str;
    for (int i = 0; i < k; i++) {
        memcpy(p, in[i].s, in[i].n);
        p[in[i].n] = '\0';
        out[i] = p;
        p += in[i].n + 1;
    }
    return op;
}

static op_t *read_put(rbuf_t *b)
{
    unsigned ev = (unsigned)r_uint(b, 1);
    int priority = (int)(int32_t)r_uint(b, 4);
    int64_t created = (int64_t)r_uint(b, 8), updated = (int64_t)r_uint(b, 8),
            run_at = (int64_t)r_uint(b, 8);
    rstr_t s[4];
    for (int i = 0; i < 4; i++)
        s[i] = r_str(b);
    rstr_t doc = r_bytes(b, false);
    if (b->bad || b->p != b->end || ev >= JOB_EV_COUNT || doc.n == 0)
        return NULL;
    const char *out[4];
    op_t *op = op_with(OP_PUT, s, 4, out);
    if (!op || !(op->doc = malloc(doc.n))) {
        free(op);
        return NULL;
    }
    memcpy(op->doc, doc.s, doc.n);
    op->ev = (job_event_t)ev;
    op->row = (store_row_t){ .id = out[0], .queue = out[1], .type = out[2], .state = out[3],
                             .priority = priority, .created_at = created, .updated_at = updated,
                             .run_at = run_at, .doc = op->doc, .doc_len = doc.n };
    return op;
}

op_t *store_record_read(uint8_t kind, const unsigned char *p, size_t n)
{
    rbuf_t b = { p, p + n, false };
    if (kind == REC_PUT)
        return read_put(&b);
    if (kind != REC_DELETE && kind != REC_QUEUE)
        return NULL;
    unsigned paused = kind == REC_QUEUE ? (unsigned)r_uint(&b, 1) : 0;
    rstr_t name = r_str(&b);
    const char *out[1];
    if (b.bad || b.p != b.end || paused > 1)
        return NULL;
    op_t *op = op_with(kind == REC_DELETE ? OP_DELETE : OP_QUEUE, &name, 1, out);
    if (op) {
        op->name = out[0];
        op->paused = paused;
    }
    return op;
}
