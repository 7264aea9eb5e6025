/*
 * The stored-document reader, and the promise it keeps: whatever jobq
 * accepts, it can read back. Input: one byte of mode, then JSON text.
 *
 * mode even: the text as a stored document (what recovery and the readers
 *   parse). If it reads as a job, writing that job and reading it again
 *   must give the same document (a fixpoint).
 * mode odd: the text as an enqueue body. If the API's bounds and the spec
 *   parser accept it, the job's stored document must read back as a job.
 */
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/job.h"
#include "util/jsonb.h"

static job_defaults_t defaults;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    defaults = fuzz_default_config().job;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    json_error_t e;
    problem_t p;
    job_t *job = NULL;
    const char *text = (const char *)data + 1;
    if (data[0] % 2 == 0) {
        json_t *doc = jsonb_loadb(text, size - 1, 0, JSONB_STORED_DEPTH, &e);
        if (doc && job_from_doc(doc, &job, &p) == ERR_OK)
            fuzz_stored_round_trip(job);
        job_free(job);
        json_decref(doc);
        return 0;
    }
    json_t *spec = jsonb_loadb(text, size - 1, JSON_REJECT_DUPLICATES, JSONB_INPUT_DEPTH, &e);
    if (json_is_object(spec) && job_parse_spec(spec, &defaults, 1700000000000LL, &job, &p) == ERR_OK)
        fuzz_stored_round_trip(job);
    job_free(job);
    json_decref(spec);
    return 0;
}
