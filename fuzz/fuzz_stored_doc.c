/*
 * The stored-document reader, and the promise it keeps: whatever jobq
 * accepts, it can read back. Input: one byte of mode, then JSON text.
 *
 * mode even: the text as a stored document (what recovery and the readers
 *   parse). If it reads as a job, writing that job and reading it again
 *   must give the same document (a fixpoint).
 * mode odd: the text as an enqueue body. If the API's bounds and the spec
 *   parser accept it, the job's stored document must read back as a job.
 * mode 'P': the bytes as a packed job (job_unpack, the restart's reader).
 *   Whatever reads as a job must write a document that reads back, and
 *   round-trips from there, unless its args are not JSON: unpacking takes
 *   the args' text on the strength of the CRC (job_pack.c), and only a
 *   hostile writer can make a CRC match.
 * mode 'Q': the same, with a matching CRC appended to the bytes, so that
 *   every field's checks meet hostile bytes (a damaged file fails the CRC
 *   first; this is the hostile writer).
 */
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/job.h"
#include "util/crc32c.h"
#include "util/jsonb.h"
#include "util/le.h"

static job_defaults_t defaults;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    defaults = fuzz_default_config().job;
    return 0;
}

static void packed_reads_back(const job_t *job)
{
    size_t n;
    const char *args = job_args_text(job, &n);
    json_error_t e;
    json_t *v = jsonb_loadb(args, n, JSON_DECODE_ANY, JSONB_STORED_DEPTH, &e);
    if (!v)
        return;
    json_decref(v);
    char *text = job_json(job, JOB_JSON_STORED);
    json_t *doc = jsonb_loadb(text, strlen(text), 0, JSONB_STORED_DEPTH, &e);
    job_t *again = NULL;
    problem_t p;
    if (!doc || job_from_doc(doc, &again, &p) != ERR_OK)
        abort(); /* unpacked, and its document does not read */
    fuzz_stored_round_trip(again);
    job_free(again);
    json_decref(doc);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    json_error_t e;
    problem_t p;
    job_t *job = NULL;
    const char *text = (const char *)data + 1;
    if (data[0] == 'P') {
        if (job_unpack(data + 1, size - 1, "fuzz-id", "q", "t", &job, &p) == ERR_OK)
            packed_reads_back(job);
        job_free(job);
        return 0;
    }
    if (data[0] == 'Q') {
        unsigned char *b = malloc(size + 4);
        if (!b)
            return 0;
        memcpy(b, data + 1, size - 1);
        le_put32(b + size - 1, crc32c(0, b, size - 1));
        if (job_unpack(b, size + 3, "fuzz-id", "q", "t", &job, &p) == ERR_OK)
            packed_reads_back(job);
        job_free(job);
        free(b);
        return 0;
    }
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
