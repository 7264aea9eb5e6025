/* The two entry points libFuzzer calls in every harness of this folder. */
#ifndef JOBQ_FUZZ_H
#define JOBQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include <stdlib.h>

#include "core/config.h"

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

#endif
