/*
 * jsonb_parse against jansson's own json_loadb: for any bytes, and each
 * set of flags jobq uses, both accept or both refuse, and what both
 * accept is the same tree (json_equal, and the same compact text, which
 * tells integers from reals), but for a raw NUL byte (jsonb_parse.c).
 * Input: one byte of flags, then the text.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonb.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static const size_t flag_sets[] = { 0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY,
                                    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t flags = flag_sets[data[0] % 4];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    json_error_t e1, e2;
    json_t *mine = jsonb_parse(text, len, flags, &e1);
    json_t *theirs = json_loadb(text, len, flags, &e2);
    /* The one difference allowed (jsonb_parse.c): a raw NUL byte is
     * refused even where jansson lets it pass. */
    bool nul_refused = !mine && theirs && memchr(text, '\0', len);
    if (!mine != !theirs && !nul_refused) {
        fprintf(stderr, "jsonb_parse %s, jansson %s (%s)\n", mine ? "accepts" : "refuses",
                theirs ? "accepts" : "refuses", mine ? e2.text : e1.text);
        abort();
    }
    if (mine && theirs) {
        char *a = json_dumps(mine, JSON_COMPACT | JSON_ENCODE_ANY);
        char *b = json_dumps(theirs, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!json_equal(mine, theirs) || !a || !b || strcmp(a, b) != 0) {
            fprintf(stderr, "different trees:\n%s\n%s\n", a, b);
            abort();
        }
        free(a);
        free(b);
    }
    json_decref(mine);
    json_decref(theirs);
    return 0;
}
