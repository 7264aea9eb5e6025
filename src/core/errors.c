#include "core/errors.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name, *title;
    int status;
    bool retried;
} table[] = {
    [ERR_OK] = { "ok", "OK", 200, false },
#define X(e, name, status, retried, title) [ERR_##e] = { name, title, status, retried },
    ERR_TABLE(X)
#undef X
};

static err_t clamp(err_t e) { return (e > ERR_OK && e < ERR_COUNT_) ? e : ERR_INTERNAL; }

const char *err_name(err_t e) { return table[clamp(e)].name; }
const char *err_title(err_t e) { return table[clamp(e)].title; }
int err_status(err_t e) { return table[clamp(e)].status; }
bool err_retried(err_t e) { return table[clamp(e)].retried; }

int err_parse(const char *name, err_t *out)
{
    for (int e = ERR_OK + 1; e < ERR_COUNT_; e++) {
        if (strcmp(name, table[e].name) == 0) {
            *out = (err_t)e;
            return 0;
        }
    }
    return -1;
}

err_t problem_set(problem_t *p, err_t type, const char *field, const char *fmt, ...)
{
    p->type = type;
    p->status = 0;
    snprintf(p->field, sizeof p->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
    return type;
}

void problem_prefix_field(problem_t *p, const char *prefix)
{
    char tmp[sizeof p->field];
    snprintf(tmp, sizeof tmp, "%s%s", prefix, p->field);
    memcpy(p->field, tmp, sizeof tmp);
}
