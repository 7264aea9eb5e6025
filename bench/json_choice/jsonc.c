/* json-c apart from parse.c: its names clash with jansson's. */
#include <json-c/json.h>

int jsonc_one(const char *text);

int jsonc_one(const char *text)
{
    json_object *v = json_tokener_parse(text);
    int ok = v != NULL;
    json_object_put(v);
    return ok;
}
