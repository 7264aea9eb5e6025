/* jsonb_parse (jsonb.h): jansson's json_loadb, with yajl's lexer.
 *
 * jansson reads a document a byte at a time through a chain of calls; for
 * a Faktory PUSH that was ~40 k instructions, a quarter of all a job cost
 * (bench/json_choice: yajl's event parser reads the same text in ~6 k).
 * yajl reads and validates; this file builds the same jansson tree from
 * its events, with jansson's rules where they are stricter than yajl's:
 * no duplicate keys (with JSON_REJECT_DUPLICATES), no NUL in strings, no
 * integer beyond 64 bits, no real that overflows, at most 2048 levels, a
 * container at the top unless JSON_DECODE_ANY, nothing but space after it,
 * no vertical tab or form feed for space, and strict UTF-8 (yajl lets
 * overlong forms such as C1 9E pass; fuzz_stored_doc found one). yajl turns an unpaired
 * UTF-16 surrogate escape into a replacement where jansson refuses it, so
 * text with a surrogate escape goes to jansson itself (rare: emoji sent
 * escaped). fuzz/fuzz_json.c holds both to the same answers, but for one
 * thing: a raw NUL byte, which no JSON text holds, is refused wherever it
 * is (jansson drops one that follows a number or a literal). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "util/jsonb.h"
#include "util/utf8.h"

#define MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

typedef struct build {
    json_t *stack[MAX_DEPTH];
    int depth;
    json_t *root;
    size_t flags;
    char key[256]; /* the pending key; longer ones in long_key */
    char *long_key;
    size_t key_len;
    const char *fail; /* why the build refused, or NULL */
    yajl_handle h;
    bool finishing; /* in yajl_complete_parse, whose offsets are not into the text */
    size_t len, end; /* the text's length; where its top value ended */
} build_t;

/* The top value is complete: note where, since yajl ignores an unfinished
 * token after it ("0\"" passes), where jansson refuses anything but space. */
static void top_done(build_t *b)
{
    b->end = b->finishing ? b->len : yajl_get_bytes_consumed(b->h);
}

static int refuse(build_t *b, const char *why)
{
    b->fail = why;
    return 0;
}

static const char *pending_key(const build_t *b) { return b->long_key ? b->long_key : b->key; }

/* Places v (a new reference) in the container being built, or at the top. */
static int add(build_t *b, json_t *v)
{
    if (!v)
        return refuse(b, "out of memory");
    if (b->depth == 0) {
        b->root = v;
        if (!json_is_object(v) && !json_is_array(v) && !(b->flags & JSON_DECODE_ANY))
            return refuse(b, "'[' or '{' expected");
        top_done(b);
        return 1;
    }
    json_t *top = b->stack[b->depth - 1];
    if (json_is_array(top))
        return json_array_append_new(top, v) == 0 ? 1 : refuse(b, "out of memory");
    const char *k = pending_key(b);
    if ((b->flags & JSON_REJECT_DUPLICATES) && json_object_getn(top, k, b->key_len)) {
        json_decref(v);
        return refuse(b, "duplicate object key");
    }
    int rc = json_object_setn_new_nocheck(top, k, b->key_len, v);
    return rc == 0 ? 1 : refuse(b, "out of memory");
}

static int open_container(build_t *b, json_t *v)
{
    if (b->depth == MAX_DEPTH) {
        json_decref(v);
        return refuse(b, "maximum parsing depth reached");
    }
    if (!add(b, v))
        return 0;
    b->stack[b->depth++] = v; /* borrowed: its parent (or root) holds it */
    return 1;
}

static int on_null(void *ctx) { return add(ctx, json_null()); }
static int on_bool(void *ctx, int v) { return add(ctx, json_boolean(v)); }

static int on_number(void *ctx, const char *s, size_t n)
{
    build_t *b = ctx;
    char buf[64], *text = n < sizeof buf ? buf : malloc(n + 1);
    if (!text)
        return refuse(b, "out of memory");
    memcpy(text, s, n);
    text[n] = '\0';
    const char *why = NULL;
    double d = 0;
    long long i = 0;
    bool real = strpbrk(text, ".eE");
    errno = 0;
    if (real && isinf(d = strtod(text, NULL)))
        why = "real number overflow";
    else if (!real && (i = strtoll(text, NULL, 10), errno == ERANGE))
        why = text[0] == '-' ? "too big negative integer" : "too big integer";
    if (text != buf)
        free(text);
    if (why)
        return refuse(b, why);
    return add(b, real ? json_real(d) : json_integer(i));
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
    if (memchr(s, '\0', n))
        return refuse(ctx, "\\u0000 is not allowed without JSON_ALLOW_NUL");
    if (!utf8_valid((const char *)s, n)) /* yajl lets overlong forms pass */
        return refuse(ctx, "invalid UTF-8 in string");
    return add(ctx, json_stringn_nocheck((const char *)s, n));
}

static int on_key(void *ctx, const unsigned char *s, size_t n)
{
    build_t *b = ctx;
    if (memchr(s, '\0', n))
        return refuse(b, "NUL byte in object key not supported");
    if (!utf8_valid((const char *)s, n))
        return refuse(b, "invalid UTF-8 in object key");
    free(b->long_key);
    b->long_key = NULL;
    char *to = b->key;
    if (n >= sizeof b->key && !(to = b->long_key = malloc(n + 1)))
        return refuse(b, "out of memory");
    memcpy(to, s, n);
    to[n] = '\0';
    b->key_len = n;
    return 1;
}

static int on_start_map(void *ctx) { return open_container(ctx, json_object()); }
static int on_start_array(void *ctx) { return open_container(ctx, json_array()); }

static int on_end(void *ctx)
{
    build_t *b = ctx;
    if (--b->depth == 0)
        top_done(b);
    return 1;
}

static const yajl_callbacks events = {
    .yajl_null = on_null, .yajl_boolean = on_bool, .yajl_number = on_number,
    .yajl_string = on_string, .yajl_start_map = on_start_map, .yajl_map_key = on_key,
    .yajl_end_map = on_end, .yajl_start_array = on_start_array, .yajl_end_array = on_end,
};

/* A \u escape of a UTF-16 surrogate (D800-DFFF) anywhere in text. */
static bool has_surrogate_escape(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while ((p = memchr(p, '\\', (size_t)(end - p)))) {
        if (end - p >= 4 && p[1] == 'u' && (p[2] == 'd' || p[2] == 'D') && p[3] &&
            strchr("89abcdefABCDEF", p[3]))
            return true;
        p += end - p >= 2 ? 2 : 1; /* past the escaped character: an escaped backslash is no escape */
    }
    return false;
}

static bool only_space(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            return false;
    return true;
}

static void set_error(json_error_t *err, const char *text, size_t len, size_t at, const char *why)
{
    int line = 1, column = 0;
    for (size_t i = 0; i < at && i < len; i++) {
        if (text[i] == '\n')
            line++, column = 0;
        else
            column++;
    }
    snprintf(err->text, sizeof err->text, "%s", why);
    err->text[strcspn(err->text, "\n")] = '\0';
    snprintf(err->source, sizeof err->source, "<buffer>");
    err->line = line;
    err->column = column;
    err->position = (int)(at < (size_t)INT32_MAX ? at : INT32_MAX);
}

json_t *jsonb_parse(const char *text, size_t len, size_t flags, json_error_t *err)
{
    if (has_surrogate_escape(text, len))
        return json_loadb(text, len, flags, err);
    /* yajl takes them for space; JSON allows them nowhere (a string must
     * escape every control character). */
    const char *ctl = memchr(text, '\v', len);
    if (ctl || (ctl = memchr(text, '\f', len))) {
        set_error(err, text, len, (size_t)(ctl - text), "invalid token");
        return NULL;
    }
    /* On the stack (16 KiB, no recursion anywhere): a malloc this size was
     * a tenth of a parse. */
    build_t build, *b = &build;
    yajl_handle h = yajl_alloc(&events, NULL, b);
    if (!h) {
        set_error(err, text, len, 0, "out of memory");
        return NULL;
    }
    b->depth = 0;
    b->root = NULL;
    b->flags = flags;
    b->long_key = NULL;
    b->fail = NULL;
    b->h = h;
    b->finishing = false;
    b->len = len;
    b->end = len;
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok) {
        b->finishing = true;
        st = yajl_complete_parse(h);
    }
    if (st == yajl_status_ok && !only_space(text + b->end, len - b->end)) {
        b->fail = "end of file expected";
        st = yajl_status_error;
    }
    json_t *out = b->root;
    if (st != yajl_status_ok) {
        unsigned char *why = b->fail ? NULL : yajl_get_error(h, 0, NULL, 0);
        /* A text that stops short fails in the finish, whose offsets are
         * not into the text: the error is at its end. */
        set_error(err, text, len, b->finishing ? len : yajl_get_bytes_consumed(h),
                  b->fail ? b->fail : why ? (const char *)why : "malformed JSON");
        if (why)
            yajl_free_error(h, why);
        json_decref(out);
        out = NULL;
    } else if (!out) {
        set_error(err, text, len, len, "'[' or '{' expected near end of file");
    }
    free(b->long_key);
    yajl_free(h);
    return out;
}
