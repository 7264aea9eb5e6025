/* Streamed replies (request.h, http_stream_*): a body libmicrohttpd pulls
 * from a queue the handler fills, for server-sent events.
 *
 * The queue has two owners, the request and libmicrohttpd's response, so
 * it is freed by whichever lets go last: the connection may close before
 * the response is destroyed, or the other way round. When the queue is
 * empty the reader suspends the connection (libmicrohttpd's rule for "no
 * data yet": returning 0 alone would spin the loop) and the next write
 * resumes it. */
#include <stdlib.h>
#include <string.h>

#include "http/request_internal.h"
#include "http/stream_internal.h"
#include "util/check.h"

struct http_stream {
    http_req_t *r; /* NULL once the request is freed */
    char *buf;
    size_t off, len, cap, max;
    bool ended, failed;
    int refs;
};

static void unref(http_stream_t *st)
{
    if (--st->refs == 0) {
        free(st->buf);
        free(st);
    }
}

void http_stream_release(http_stream_t *st)
{
    st->r = NULL;
    unref(st);
}

static void response_gone(void *cls) { unref(cls); }

static ssize_t pull(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    http_stream_t *st = cls;
    if (st->failed || (!st->r && st->off == st->len))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (st->off == st->len) {
        if (st->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (st->r->conn && !st->r->suspended) {
            MHD_suspend_connection(st->r->conn);
            st->r->suspended = true;
        }
        return 0;
    }
    size_t n = st->len - st->off < max ? st->len - st->off : max;
    memcpy(out, st->buf + st->off, n);
    st->off += n;
    if (st->off == st->len)
        st->off = st->len = 0;
    return (ssize_t)n;
}

struct MHD_Response *http_stream_response(http_stream_t *st)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, pull, st, response_gone);
    if (resp)
        st->refs++;
    return resp;
}

bool http_stream_begin(http_req_t *r, int status, const char *ctype, size_t max_queued)
{
    CHECK(!r->stream);
    if (r->phase == REQ_REPLIED)
        return false;
    http_stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return false;
    st->r = r;
    st->max = max_queued;
    st->refs = 1;
    r->stream = st;
    r->status = status;
    r->ctype = ctype;
    r->phase = REQ_REPLIED;
    http_req_resume(r);
    return true;
}

static bool fail(http_stream_t *st)
{
    st->failed = true;
    http_req_resume(st->r); /* the reader ends it, and the connection closes */
    return false;
}

bool http_stream_write(http_req_t *r, const char *data, size_t n)
{
    http_stream_t *st = r->stream;
    CHECK(st);
    if (!st || st->failed || st->ended)
        return false;
    if (st->len - st->off + n > st->max)
        return fail(st);
    if (st->len + n > st->cap) {
        if (st->off) { /* what was sent makes room first */
            memmove(st->buf, st->buf + st->off, st->len - st->off);
            st->len -= st->off;
            st->off = 0;
        }
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + n)
            cap *= 2;
        if (cap != st->cap) {
            char *b = realloc(st->buf, cap);
            if (!b)
                return fail(st);
            st->buf = b;
            st->cap = cap;
        }
    }
    memcpy(st->buf + st->len, data, n);
    st->len += n;
    http_req_resume(r);
    return true;
}

void http_stream_end(http_req_t *r)
{
    if (!r->stream)
        return;
    r->stream->ended = true;
    http_req_resume(r);
}
