/*
 * Configuration parsing: a key and a value (split at the first NUL or
 * '='), set on the defaults, then the list-valued settings parsed as
 * start-up parses them. A refusal must come with a message; nothing may
 * crash, and an accepted setting must print and parse back unchanged.
 */
#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

static config_t defaults;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    setenv("JOBQ_ENV_FILE", "/nonexistent/.env", 1);
    if (config_load(&defaults, 0, NULL, NULL, err, sizeof err) != 0)
        abort();
    return 0;
}

/* KEY=value lines of cfg, into buf. */
static void print(const config_t *cfg, char *buf, size_t len)
{
    FILE *f = fmemopen(buf, len, "w");
    if (!f)
        abort();
    config_print(cfg, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t klen = strcspn(text, "=");
    char key[128] = "JOBQ_";
    if (klen < sizeof key - 6)
        memcpy(key + 5, text, klen), key[5 + klen] = '\0';
    const char *value = klen < size ? text + klen + 1 : "";
    static config_t cfg;
    cfg = defaults;
    char err[1024] = "";
    int rc = config_set(&cfg, key, value, err, sizeof err);
    if (rc == 0)
        rc = config_parse_limits(&cfg, err, sizeof err) || config_parse_keys(&cfg, err, sizeof err) ||
             config_check_commands(&cfg, err, sizeof err);
    if (rc != 0 && !err[0])
        abort(); /* a refusal says why */
    if (rc == 0) { /* printing and reading the printout back changes nothing */
        static char a[1 << 16];
        print(&cfg, a, sizeof a);
        static config_t again;
        again = defaults;
        for (char *save = NULL, *line = strtok_r(a, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(line, '=');
            if (!eq || strcmp(line + (eq - line) + 1, "***") == 0)
                continue;
            *eq = '\0';
            if (strcmp(line, "JOBQ_API_KEYS") != 0 && config_set(&again, line, eq + 1, err, sizeof err) != 0)
                abort();
            *eq = '=';
        }
    }
    free(text);
    return 0;
}
