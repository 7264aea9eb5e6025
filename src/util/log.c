#include "util/log.h"

#include <jansson.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(log_level_t level) { atomic_store(&g_level, (int)level); }
bool log_enabled(log_level_t level) { return (int)level >= atomic_load(&g_level); }
void log_set_fd(int fd) { atomic_store(&g_fd, fd); }

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

static json_t *field_value(const log_field_t *f)
{
    switch (f->kind) {
    case LOG_F_STR: return f->s ? json_string(f->s) : json_null();
    case LOG_F_INT: return json_integer(f->i);
    case LOG_F_DBL: return json_real(f->d);
    case LOG_F_BOOL: return json_boolean(f->i);
    case LOG_F_END: break;
    }
    return json_null();
}

void log_emit(log_level_t level, const char *msg, const log_field_t *fields)
{
    if (!log_enabled(level))
        return;
    char ts[32];
    clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
    json_t *o = json_object();
    if (!o)
        return;
    /* json_string() rejects invalid UTF-8; a log line must never vanish for that. */
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(log_level_name(level)));
    json_t *m = json_string(msg);
    json_object_set_new(o, "msg", m ? m : json_string("<invalid utf-8>"));
    for (const log_field_t *f = fields; f && f->kind != LOG_F_END; f++) {
        json_t *v = field_value(f);
        json_object_set_new(o, f->key, v ? v : json_string("<invalid utf-8>"));
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n'; /* overwrite the NUL: we write exactly n + 1 bytes */
    ssize_t w = write(atomic_load(&g_fd), line, n + 1);
    (void)w; /* nowhere left to report a failed log write */
    free(line);
}
