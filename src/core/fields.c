#include "core/fields.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int fields_only(json_t *obj, const char *const *allowed, const char *prefix, problem_t *p)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            char field[160];
            snprintf(field, sizeof field, "%s%.100s", prefix, key);
            problem_set(p, ERR_VALIDATION, field, "unknown field %s", field);
            return -1;
        }
    }
    return 0;
}
