/* Bounded JSON; see jsonb.h. */
#include "util/jsonb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"

static void path_add(char *path, size_t len, const char *key, size_t index, bool is_key)
{
    size_t n = strlen(path);
    if (n + 1 >= len)
        return;
    if (is_key)
        snprintf(path + n, len - n, "%s%s", n ? "." : "", key);
    else
        snprintf(path + n, len - n, "[%zu]", index);
}

/* Recursion is bounded: jansson never builds more than 2048 levels. */
static bool within(const json_t *v, int left, char *path, size_t len)
{
    if (!json_is_object(v) && !json_is_array(v))
        return true;
    if (left == 0)
        return false;
    size_t n = path ? strlen(path) : 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child) {
            if (path)
                path_add(path, len, k, 0, true);
            if (!within(child, left - 1, path, len))
                return false;
            if (path)
                path[n] = '\0';
        }
        return true;
    }
    size_t i;
    json_t *child;
    json_array_foreach(v, i, child) {
        if (path)
            path_add(path, len, NULL, i, false);
        if (!within(child, left - 1, path, len))
            return false;
        if (path)
            path[n] = '\0';
    }
    return true;
}

bool jsonb_within(const json_t *v, int max_depth, char *path, size_t len)
{
    if (path && len)
        path[0] = '\0';
    /* Paths only for the answer that needs one: building them as it goes
     * cost every parse a formatted print per key. */
    if (within(v, max_depth, NULL, 0))
        return true;
    if (path && len)
        within(v, max_depth, path, len);
    return false;
}

json_t *jsonb_loadb(const char *text, size_t len, size_t flags, int max_depth,
                    json_error_t *err)
{
    json_t *v = jsonb_parse(text, len, flags, err);
    if (!v)
        return NULL;
    char path[128];
    if (!jsonb_within(v, max_depth, path, sizeof path)) {
        json_decref(v);
        snprintf(err->text, sizeof err->text, "nests deeper than %d levels at %s", max_depth,
                 path[0] ? path : "the top");
        err->line = err->column = -1;
        err->position = 0;
        return NULL;
    }
    return v;
}

static void write_real(sbuf_t *s, double v, int digits)
{
    if (!digits) {
        sbuf_add_double(s, v, true);
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    sbuf_adds(s, buf);
    if (!strpbrk(buf, ".eE"))
        sbuf_add(s, ".0", 2);
}

/* Recursion is bounded as in within(): jansson builds at most 2048 levels. */
static void write_value(sbuf_t *s, const json_t *v, int digits)
{
    if (!v) {
        sbuf_add(s, "null", 4);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *child;
        char sep = '{';
        json_object_keylen_foreach((json_t *)v, k, klen, child) {
            sbuf_addc(s, sep);
            sep = ',';
            sbuf_add_jstrn(s, k, klen);
            sbuf_addc(s, ':');
            write_value(s, child, digits);
        }
        sbuf_adds(s, sep == '{' ? "{}" : "}");
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        sbuf_addc(s, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                sbuf_addc(s, ',');
            write_value(s, json_array_get(v, i), digits);
        }
        sbuf_addc(s, ']');
        return;
    }
    case JSON_STRING: sbuf_add_jstrn(s, json_string_value(v), json_string_length(v)); return;
    case JSON_INTEGER: sbuf_add_int(s, json_integer_value(v)); return;
    case JSON_REAL: write_real(s, json_real_value(v), digits); return;
    case JSON_TRUE: sbuf_add(s, "true", 4); return;
    case JSON_FALSE: sbuf_add(s, "false", 5); return;
    default: sbuf_add(s, "null", 4); return;
    }
}

void jsonb_write(sbuf_t *s, const json_t *v) { write_value(s, v, 0); }

static char *text_of(const json_t *v, int digits)
{
    sbuf_t s;
    sbuf_init(&s, 64);
    write_value(&s, v, digits);
    size_t n = s.len + 1;
    char *text = sbuf_take(&s), *fit = realloc(text, n);
    return fit ? fit : text;
}

char *jsonb_text(const json_t *v) { return text_of(v, 0); }

char *jsonb_reply_text(json_t *v, int real_digits)
{
    char *text = text_of(v, real_digits);
    json_decref(v);
    return text;
}
