/*
 * sbuf: a growable byte string, and the JSON text primitives jobq writes
 * with it (strings with RFC 8259 escaping, integers). It writes JSON; it
 * never parses it (jansson does).
 *
 * Ownership: the sbuf owns its bytes until sbuf_take() hands them over.
 * Out of memory aborts: every caller would have to, and none can recover.
 */
#ifndef JOBQ_SBUF_H
#define JOBQ_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

void sbuf_init(sbuf_t *s, size_t cap);
void sbuf_free(sbuf_t *s);
/* Returns the NUL-terminated text (never NULL) and leaves s empty. */
char *sbuf_take(sbuf_t *s);
/* Grows s to hold n more bytes and a NUL (out of line: rarely taken). */
void sbuf_grow(sbuf_t *s, size_t n);
/* Appends are inline: the job writer makes dozens of small ones per
 * document, and a call each was a tenth of its cost. */
static inline void sbuf_add(sbuf_t *s, const char *data, size_t n)
{
    if (s->len + n + 1 > s->cap)
        sbuf_grow(s, n);
    memcpy(s->p + s->len, data, n);
    s->len += n;
    s->p[s->len] = '\0';
}
static inline void sbuf_adds(sbuf_t *s, const char *str) { sbuf_add(s, str, strlen(str)); }
static inline void sbuf_addc(sbuf_t *s, char c)
{
    if (s->len + 2 > s->cap)
        sbuf_grow(s, 1);
    s->p[s->len++] = c;
    s->p[s->len] = '\0';
}
void sbuf_add_int(sbuf_t *s, int64_t v);
/* Appends the shortest text that reads back as the same double; with
 * keep_real, a whole number gets ".0" so JSON keeps it a real. */
void sbuf_add_double(sbuf_t *s, double v, bool keep_real);
/* Appends "str" as a JSON string, escaping quotes, backslashes and controls.
 * str must be valid UTF-8 (all of jobq's strings come from jansson or are
 * restricted to ASCII). NULL appends null. */
void sbuf_add_jstr(sbuf_t *s, const char *str);
/* The same for len bytes, which may include NUL (written as \u0000). */
void sbuf_add_jstrn(sbuf_t *s, const char *str, size_t len);

#endif
