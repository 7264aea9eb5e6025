/* The cost of parsing one Faktory PUSH argument (what fwpgen sends, a
 * Ruby client's typical job) with each JSON library Debian offers, to
 * choose the hot path's parser by measurement (docs/performance.md).
 * usage: parse LIB N   (LIB: jansson | yajl-tree | yajl-sax | json-c | cjson | jobq)
 * jobq is what jobq uses: jsonb_parse (src/util/jsonb_parse.c), yajl's
 * events building a jansson tree.
 * Run under valgrind --tool=callgrind with N and with 0; the difference
 * over N is the instructions per parse, tree freed included (run.sh). */
#include <cjson/cJSON.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "util/jsonb.h"

int jsonc_one(const char *text);

static const char push[] =
    "{\"jid\":\"bench-7-00001234\",\"jobtype\":\"bench\",\"args\":[1234,"
    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"],"
    "\"queue\":\"default\",\"retry\":25,\"created_at\":\"2026-12-01T16:00:00.123Z\"}";

static int n_values;
static int on_null(void *c) { (void)c; n_values++; return 1; }
static int on_bool(void *c, int b) { (void)c; (void)b; n_values++; return 1; }
static int on_num(void *c, const char *s, size_t l) { (void)c; (void)s; (void)l; n_values++; return 1; }
static int on_str(void *c, const unsigned char *s, size_t l) { (void)c; (void)s; (void)l; n_values++; return 1; }
static int on_open(void *c) { (void)c; return 1; }
static int on_close(void *c) { (void)c; return 1; }
static const yajl_callbacks sax = { on_null, on_bool, NULL, NULL, on_num, on_str, on_open, on_str,
                                    on_close, on_open, on_close };

static int one(const char *lib)
{
    size_t n = sizeof push - 1;
    if (!strcmp(lib, "jansson")) {
        json_error_t e;
        json_t *v = json_loadb(push, n, JSON_REJECT_DUPLICATES, &e);
        int ok = v != NULL;
        json_decref(v);
        return ok;
    }
    if (!strcmp(lib, "yajl-tree")) {
        char err[128];
        yajl_val v = yajl_tree_parse(push, err, sizeof err); /* needs the NUL */
        int ok = v != NULL;
        yajl_tree_free(v);
        return ok;
    }
    if (!strcmp(lib, "yajl-sax")) {
        yajl_handle h = yajl_alloc(&sax, NULL, NULL);
        int ok = yajl_parse(h, (const unsigned char *)push, n) == yajl_status_ok &&
                 yajl_complete_parse(h) == yajl_status_ok;
        yajl_free(h);
        return ok;
    }
    if (!strcmp(lib, "jobq")) {
        json_error_t e;
        json_t *v = jsonb_parse(push, n, JSON_REJECT_DUPLICATES, &e);
        int ok = v != NULL;
        json_decref(v);
        return ok;
    }
    if (!strcmp(lib, "json-c"))
        return jsonc_one(push); /* its names clash with jansson's: jsonc.c */
    if (!strcmp(lib, "cjson")) {
        cJSON *v = cJSON_ParseWithLength(push, n);
        int ok = v != NULL;
        cJSON_Delete(v);
        return ok;
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: parse LIB N\n"), 2;
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++)
        if (one(argv[1]) != 1)
            return fprintf(stderr, "%s: parse failed\n", argv[1]), 1;
    return 0;
}
