/*
 * fwp proto: the Faktory protocol's lines and replies, with no I/O, so the
 * parser can be fuzzed alone (fuzz/fuzz_fwp.c).
 *
 * A command is one line, "VERB" or "VERB <arguments>", ended by \r\n or a
 * bare \n (the reader strips it). Replies are RESP: +OK, +HI {...},
 * -ERR <message>, $<len>\r\n<payload> and the null $-1.
 *
 * Threads: any. Ownership: a parsed command points into the caller's line.
 */
#ifndef JOBQ_FAKTORY_PROTO_H
#define JOBQ_FAKTORY_PROTO_H

#include <stdarg.h>
#include <stddef.h>

#include "util/sbuf.h"

typedef enum {
    FWP_HELLO, FWP_PUSH, FWP_PUSHB, FWP_FETCH, FWP_ACK, FWP_FAIL, FWP_BEAT, FWP_INFO,
    FWP_FLUSH, FWP_MUTATE, FWP_QUEUE, FWP_END, FWP_BATCH, FWP_TRACK, FWP_UNKNOWN
} fwp_verb_t;

#define FWP_VERB_MAX 16 /* longer verbs are unknown, and shown cut */

typedef struct fwp_cmd {
    fwp_verb_t verb;
    char name[FWP_VERB_MAX + 1]; /* the verb as sent, printable, for errors */
    const char *args;            /* after the space; "" if none */
    size_t args_len;
} fwp_cmd_t;

/* Splits a line (without its line end). Never fails: an empty or
 * unprintable verb parses as FWP_UNKNOWN. */
void fwp_parse(const char *line, size_t len, fwp_cmd_t *out);

/* Splits space-separated words of args into words[] (pointers into buf,
 * which receives a NUL-terminated copy and needs args_len + 1 bytes).
 * Returns how many, or -1 if there are more than max. */
int fwp_words(const char *args, size_t len, char *buf, const char **words, int max);

void fwp_reply_ok(sbuf_t *out);
/* -ERR message: control characters become spaces (a reply is one line). */
void fwp_reply_err(sbuf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fwp_reply_verr(sbuf_t *out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void fwp_reply_bulk(sbuf_t *out, const char *data, size_t len);
void fwp_reply_null(sbuf_t *out);

#endif
