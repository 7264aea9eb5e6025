#include "util/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/sbuf.h"

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_fd = 2;
static _Atomic int g_format = LOG_FORMAT_JSON;

/* A thread that opts in (the loop) collects lines and writes them once per
 * loop iteration; warnings and errors, and a full buffer, go out at once. */
#define LOG_BUFFER_MAX (64 * 1024)
static _Thread_local sbuf_t tl_buf;
static _Thread_local bool tl_buffered;
static _Thread_local void (*tl_kick)(void *);
static _Thread_local void *tl_kick_ud;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(log_level_t level) { atomic_store(&g_level, (int)level); }
bool log_enabled(log_level_t level) { return (int)level >= atomic_load(&g_level); }
void log_set_fd(int fd) { atomic_store(&g_fd, fd); }
void log_set_format(log_format_t f) { atomic_store(&g_format, (int)f); }

const char *log_level_name(log_level_t level)
{
    return level <= LOG_ERROR ? level_names[level] : "error";
}

int log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *s, log_format_t *out)
{
    if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else if (strcmp(s, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else
        return -1;
    return 0;
}

static void write_all(const char *p, size_t n)
{
    int fd = atomic_load(&g_fd);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report a failed log write */
        p += w;
        n -= (size_t)w;
    }
}

void log_buffer_this_thread(void (*kick)(void *ud), void *ud)
{
    tl_buffered = true;
    tl_kick = kick;
    tl_kick_ud = ud;
}

void log_flush(void)
{
    if (tl_buf.len) {
        write_all(tl_buf.p, tl_buf.len);
        tl_buf.len = 0;
    }
}

void log_unbuffer_this_thread(void)
{
    log_flush();
    tl_buffered = false;
    tl_kick = NULL;
    sbuf_free(&tl_buf);
}

static void field_json(sbuf_t *s, const log_field_t *f)
{
    switch (f->kind) {
    case LOG_F_STR: sbuf_add_jstr(s, f->s); break;
    case LOG_F_INT: sbuf_add_int(s, f->i); break;
    case LOG_F_DBL: sbuf_add_double(s, f->d, false); break;
    case LOG_F_BOOL: sbuf_adds(s, f->i ? "true" : "false"); break;
    case LOG_F_END: break;
    }
}

static void line_json(sbuf_t *s, const char *ts, log_level_t level, const char *msg,
                      const log_field_t *fields)
{
    sbuf_adds(s, "{\"ts\":\"");
    sbuf_adds(s, ts);
    sbuf_adds(s, "\",\"level\":\"");
    sbuf_adds(s, log_level_name(level));
    sbuf_adds(s, "\",\"msg\":");
    sbuf_add_jstr(s, msg);
    for (const log_field_t *f = fields; f && f->kind != LOG_F_END; f++) {
        if (f->kind == LOG_F_STR && !f->s)
            continue; /* an absent value is left out, not written as null */
        sbuf_addc(s, ',');
        sbuf_add_jstr(s, f->key);
        sbuf_addc(s, ':');
        field_json(s, f);
    }
    sbuf_adds(s, "}\n");
}

/* For a person at a terminal: "ts LEVEL msg key=value ...", strings quoted
 * only when they hold spaces or quotes. */
static void line_text(sbuf_t *s, const char *ts, log_level_t level, const char *msg,
                      const log_field_t *fields)
{
    static const char *const upper[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
    sbuf_adds(s, ts);
    sbuf_addc(s, ' ');
    sbuf_adds(s, upper[level <= LOG_ERROR ? level : LOG_ERROR]);
    sbuf_addc(s, ' ');
    sbuf_adds(s, msg);
    for (const log_field_t *f = fields; f && f->kind != LOG_F_END; f++) {
        if (f->kind == LOG_F_STR && !f->s)
            continue;
        sbuf_addc(s, ' ');
        sbuf_adds(s, f->key);
        sbuf_addc(s, '=');
        if (f->kind == LOG_F_STR && f->s && !strpbrk(f->s, " \"=\n\t") && *f->s)
            sbuf_adds(s, f->s);
        else
            field_json(s, f);
    }
    sbuf_addc(s, '\n');
}

void log_emit(log_level_t level, const char *msg, const log_field_t *fields)
{
    if (!log_enabled(level))
        return;
    char ts[32];
    clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
    sbuf_t local, *s = tl_buffered ? &tl_buf : &local;
    if (!tl_buffered || !tl_buf.p) {
        if (tl_buffered)
            sbuf_init(&tl_buf, 8192);
        else
            sbuf_init(&local, 256);
    }
    bool was_empty = s->len == 0;
    if (atomic_load(&g_format) == LOG_FORMAT_TEXT)
        line_text(s, ts, level, msg, fields);
    else
        line_json(s, ts, level, msg, fields);
    if (!tl_buffered) {
        write_all(local.p, local.len);
        sbuf_free(&local);
        return;
    }
    if (level >= LOG_WARN || tl_buf.len > LOG_BUFFER_MAX)
        log_flush();
    else if (was_empty && tl_kick)
        tl_kick(tl_kick_ud);
}
