#include "faktory/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define VERB(name, verb) { name, sizeof name - 1, verb }
static const struct {
    const char *name;
    size_t len;
    fwp_verb_t verb;
} verbs[] = {
    VERB("HELLO", FWP_HELLO),   VERB("PUSH", FWP_PUSH),   VERB("PUSHB", FWP_PUSHB),
    VERB("FETCH", FWP_FETCH),   VERB("ACK", FWP_ACK),     VERB("FAIL", FWP_FAIL),
    VERB("BEAT", FWP_BEAT),     VERB("INFO", FWP_INFO),   VERB("FLUSH", FWP_FLUSH),
    VERB("MUTATE", FWP_MUTATE), VERB("QUEUE", FWP_QUEUE), VERB("END", FWP_END),
    VERB("BATCH", FWP_BATCH),   VERB("TRACK", FWP_TRACK),
};

void fwp_parse(const char *line, size_t len, fwp_cmd_t *out)
{
    const char *sp = memchr(line, ' ', len);
    size_t vl = sp ? (size_t)(sp - line) : len;
    size_t shown = vl < FWP_VERB_MAX ? vl : FWP_VERB_MAX;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)line[i];
        out->name[i] = (c > 32 && c < 127) ? (char)c : '?';
    }
    out->name[shown] = '\0';
    out->args = sp ? sp + 1 : "";
    out->args_len = sp ? len - vl - 1 : 0;
    out->verb = FWP_UNKNOWN;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].len == vl && memcmp(verbs[i].name, line, vl) == 0) {
            out->verb = verbs[i].verb;
            break;
        }
}

int fwp_words(const char *args, size_t len, char *buf, const char **words, int max)
{
    memcpy(buf, args, len);
    buf[len] = '\0';
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (n == max)
            return -1;
        words[n++] = w;
    }
    return n;
}

void fwp_reply_ok(sbuf_t *out) { sbuf_add(out, "+OK\r\n", 5); }

void fwp_reply_err(sbuf_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fwp_reply_verr(out, fmt, ap);
    va_end(ap);
}

void fwp_reply_verr(sbuf_t *out, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 32 || *c == 127)
            *c = ' ';
    sbuf_add(out, "-ERR ", 5);
    sbuf_adds(out, msg);
    sbuf_add(out, "\r\n", 2);
}

void fwp_reply_bulk(sbuf_t *out, const char *data, size_t len)
{
    sbuf_addc(out, '$');
    sbuf_add_int(out, (int64_t)len);
    sbuf_add(out, "\r\n", 2);
    sbuf_add(out, data, len);
    sbuf_add(out, "\r\n", 2);
}

void fwp_reply_null(sbuf_t *out) { sbuf_add(out, "$-1\r\n", 5); }
