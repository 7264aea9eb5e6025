/* The two entry points libFuzzer calls in every harness of this folder. */
#ifndef JOBQ_FUZZ_H
#define JOBQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/job.h"
#include "util/jsonb.h"
#include "util/sbuf.h"

/* The built-in defaults, as a server with no settings would have them. */
static inline config_t fuzz_default_config(void)
{
    config_t cfg;
    char err[512];
    setenv("JOBQ_ENV_FILE", "/nonexistent/.env", 1);
    if (config_load(&cfg, 0, NULL, NULL, err, sizeof err) != 0)
        abort();
    return cfg;
}

/* The packed form of a job must read back as the same stored text. */
static inline void fuzz_packed_round_trip(const job_t *job, const char *text)
{
    sbuf_t s;
    sbuf_init(&s, 64);
    job_pack(job, &s);
    job_t *back = NULL;
    problem_t p;
    if (job_unpack(s.p, s.len, job->id, job->queue, job->type, &back, &p) != ERR_OK)
        abort(); /* packed, and not read back */
    char *again = job_json(back, JOB_JSON_STORED);
    if (strcmp(text, again) != 0)
        abort(); /* packing changed it */
    free(again);
    job_free(back);
    sbuf_free(&s);
}

/* jobq's promise for every front end: what it accepts, it can read back.
 * The job's stored text must read back as the same job (job_same_spec),
 * and writing that again must give the same text (a fixpoint); its packed
 * form must read back as that text too. */
static inline void fuzz_stored_round_trip(const job_t *job)
{
    char *text = job_json(job, JOB_JSON_STORED);
    fuzz_packed_round_trip(job, text);
    json_error_t e;
    json_t *doc = jsonb_loadb(text, strlen(text), 0, JSONB_STORED_DEPTH, &e);
    job_t *again = NULL;
    problem_t p;
    if (!doc || job_from_doc(doc, &again, &p) != ERR_OK || !job_same_spec(job, again))
        abort(); /* accepted, written, and not read back as the same job */
    char *text2 = job_json(again, JOB_JSON_STORED);
    if (strcmp(text, text2) != 0)
        abort(); /* reading changed it */
    free(job_json(again, JOB_JSON_PUBLIC));
    free(text2);
    job_free(again);
    json_decref(doc);
    free(text);
}

#endif
