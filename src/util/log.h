/*
 * log: structured logging, one JSON object per line on stderr.
 *
 * Every line carries "ts" (RFC 3339 UTC, milliseconds), "level" and "msg",
 * then the caller's context fields in the order given. Fields are passed as
 * typed values so that nothing is formatted by hand and keys stay stable:
 *
 *     log_info("job enqueued", LOG_S("job_id", id), LOG_I("attempt", n));
 *
 * Thread-safety: any thread may log. A line is written whole with one
 * write(2), so lines from different threads never interleave. A thread may
 * opt into buffering (log_buffer_this_thread): its lines then go out
 * together once per loop iteration, warnings and errors at once. Strings are
 * borrowed for the duration of the call only and must be UTF-8 (invalid
 * bytes are written as U+FFFD).
 */
#ifndef JOBQ_LOG_H
#define JOBQ_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;
typedef enum { LOG_FORMAT_JSON, LOG_FORMAT_TEXT } log_format_t;

typedef enum { LOG_F_END, LOG_F_STR, LOG_F_INT, LOG_F_DBL, LOG_F_BOOL } log_kind_t;

typedef struct log_field {
    const char *key;
    log_kind_t kind;
    const char *s;
    int64_t i;
    double d;
} log_field_t;

#define LOG_S(k, v) ((log_field_t){ .key = (k), .kind = LOG_F_STR, .s = (v) })
#define LOG_I(k, v) ((log_field_t){ .key = (k), .kind = LOG_F_INT, .i = (int64_t)(v) })
#define LOG_D(k, v) ((log_field_t){ .key = (k), .kind = LOG_F_DBL, .d = (double)(v) })
#define LOG_B(k, v) ((log_field_t){ .key = (k), .kind = LOG_F_BOOL, .i = (v) ? 1 : 0 })
#define LOG_END_ ((log_field_t){ .key = 0, .kind = LOG_F_END })

#define LOG_EMIT_(lvl, msg, ...) \
    log_emit((lvl), (msg), (const log_field_t[]){ __VA_ARGS__ __VA_OPT__(,) LOG_END_ })
#define log_debug(msg, ...) LOG_EMIT_(LOG_DEBUG, msg __VA_OPT__(,) __VA_ARGS__)
#define log_info(msg, ...)  LOG_EMIT_(LOG_INFO, msg __VA_OPT__(,) __VA_ARGS__)
#define log_warn(msg, ...)  LOG_EMIT_(LOG_WARN, msg __VA_OPT__(,) __VA_ARGS__)
#define log_error(msg, ...) LOG_EMIT_(LOG_ERROR, msg __VA_OPT__(,) __VA_ARGS__)

/* Lines below this level are dropped before any formatting work. */
void log_set_level(log_level_t level);
bool log_enabled(log_level_t level);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 if unknown. */
int log_level_parse(const char *s, log_level_t *out);
const char *log_level_name(log_level_t level);

int log_format_parse(const char *s, log_format_t *out);
void log_set_format(log_format_t f);

/* Redirects output (tests); fd 2 by default. */
void log_set_fd(int fd);

/* The calling thread buffers its lines from now on; kick(ud) is called when
 * the first line of a batch arrives, so the owner can call log_flush() at
 * the end of the current loop iteration. */
void log_buffer_this_thread(void (*kick)(void *ud), void *ud);
/* Writes the calling thread's buffered lines. */
void log_flush(void);
/* Flushes and stops buffering the calling thread's lines. */
void log_unbuffer_this_thread(void);

/* The one entry point; `fields` ends with a LOG_F_END element. */
void log_emit(log_level_t level, const char *msg, const log_field_t *fields);

#endif
