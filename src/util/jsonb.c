/* Bounded JSON; see jsonb.h. */
#include "util/jsonb.h"

#include <stdio.h>
#include <string.h>

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
    json_t *v = json_loadb(text, len, flags, err);
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
