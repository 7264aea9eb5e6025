/*
 * The Faktory protocol's parsing (faktory/proto.h, faktory/job.h). Input:
 * one command line as a client would send it, without its line end.
 *
 * Every line parses into a verb whose shown name is printable and whose
 * arguments lie inside the line. FETCH and QUEUE arguments split into
 * words inside the copy. A PUSH job that fwp_job_parse accepts must keep
 * jobq's promise for every front end: its stored document reads back as
 * the same job (the Faktory fields included), and its FETCH form is JSON
 * that names the same jid, jobtype, queue and args.
 */
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "faktory/job.h"
#include "faktory/proto.h"
#include "util/jsonb.h"

static job_defaults_t defaults;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    defaults = fuzz_default_config().job;
    return 0;
}

static void fetch_form(const job_t *job)
{
    sbuf_t s;
    sbuf_init(&s, 256);
    fwp_job_write(job, &s);
    json_error_t e;
    json_t *v = json_loadb(s.p, s.len, 0, &e);
    if (!v || strcmp(json_string_value(json_object_get(v, "jid")), job->id) ||
        strcmp(json_string_value(json_object_get(v, "jobtype")), job->type) ||
        strcmp(json_string_value(json_object_get(v, "queue")), job->queue) ||
        !json_equal(json_object_get(v, "args"), job_args(job)))
        abort();
    json_decref(v);
    sbuf_free(&s);
}

static void push(const fwp_cmd_t *cmd)
{
    json_error_t e;
    json_t *arg = jsonb_loadb(cmd->args, cmd->args_len, JSON_REJECT_DUPLICATES,
                              JSONB_INPUT_DEPTH, &e);
    job_t *job = NULL;
    problem_t p;
    if (arg && fwp_job_parse(arg, &defaults, 1764547200000, &job, &p) == ERR_OK) {
        fuzz_stored_round_trip(job);
        fetch_form(job);
        job_free(job);
    }
    json_decref(arg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    fwp_cmd_t cmd;
    fwp_parse(line, size, &cmd);
    for (const char *c = cmd.name; *c; c++)
        if (*c <= ' ' || *c >= 127)
            abort();
    if (cmd.args_len && (cmd.args < line || cmd.args + cmd.args_len > line + size))
        abort();
    if (cmd.verb == FWP_PUSH)
        push(&cmd);
    if (cmd.verb == FWP_FETCH || cmd.verb == FWP_QUEUE) {
        char *buf = malloc(cmd.args_len + 1);
        const char *words[8];
        int n = fwp_words(cmd.args, cmd.args_len, buf, words, 8);
        for (int i = 0; i < n; i++)
            if (words[i] < buf || words[i] > buf + cmd.args_len || !*words[i])
                abort();
        free(buf);
    }
    return 0;
}
