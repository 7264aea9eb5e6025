/*
 * jsonb: bounded JSON. Every document that crosses a trust boundary (a
 * request body, a stored job read back, a worker's reply) is parsed here,
 * with a nesting bound, so that nothing accepted on the way in can fail to
 * parse on the way out: input is held to JSONB_INPUT_DEPTH, and stored
 * documents, which wrap client values a few levels deeper, are read with
 * JSONB_STORED_DEPTH. jansson alone refuses only past 2048 levels, which a
 * client could reach inside a job and so make it unreadable.
 *
 * Threads: any. Ownership: results are new references.
 */
#ifndef JOBQ_JSONB_H
#define JOBQ_JSONB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define JSONB_INPUT_DEPTH 64
#define JSONB_STORED_DEPTH (JSONB_INPUT_DEPTH + 16)

/* json_loadb(text, len, flags, err), the same answers (flags
 * JSON_REJECT_DUPLICATES and JSON_DECODE_ANY), read with yajl's lexer at a
 * sixth of jansson's cost (jsonb_parse.c). */
json_t *jsonb_parse(const char *text, size_t len, size_t flags, json_error_t *err);

/* Parses text (len bytes, flags as jansson's); NULL with err filled when it
 * is malformed or nests deeper than max_depth (err->text says which). */
json_t *jsonb_loadb(const char *text, size_t len, size_t flags, int max_depth,
                    json_error_t *err);

/* Whether v nests at most max_depth levels (a scalar is 0, [] is 1). If
 * not, and path is given, the dotted path of the first value too deep
 * ("error.context.a[0]"), cut to len. */
bool jsonb_within(const json_t *v, int max_depth, char *path, size_t len);

struct sbuf;
/* Appends v as compact JSON text (NULL as null): what json_dumps(v,
 * JSON_COMPACT | JSON_ENCODE_ANY) says, but reals in the shortest form
 * that reads back the same double. About a quarter of jansson's
 * instructions: the hot path writes every job's args once (callgrind:
 * docs/performance.md). */
void jsonb_write(struct sbuf *s, const json_t *v);
/* The same as a new string of exactly its size (the caller frees). */
char *jsonb_text(const json_t *v);
/* The same with reals in real_digits significant digits (as jansson's
 * JSON_REAL_PRECISION: replies show 0.3, not 0.30000000000000004), and v
 * given up (decref'd): what a reply does with its tree. */
char *jsonb_reply_text(json_t *v, int real_digits);

#endif
