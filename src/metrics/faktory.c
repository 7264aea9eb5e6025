/* Faktory protocol metrics: commands and their error replies, by verb. */
#include <string.h>

#include "metrics/metrics_internal.h"

static const char *const verbs[METRICS_FWP_NVERBS] = { METRICS_FWP_VERBS };

static int verb_index(const char *verb)
{
    for (int i = 0; i < METRICS_FWP_NVERBS - 1; i++)
        if (verb && strcmp(verbs[i], verb) == 0)
            return i;
    return METRICS_FWP_NVERBS - 1; /* "other" */
}

void metrics_fwp_command(metrics_t *m, const char *verb) { m->fwp_commands[verb_index(verb)]++; }
void metrics_fwp_error(metrics_t *m, const char *verb) { m->fwp_errors[verb_index(verb)]++; }

static void by_verb(sbuf_t *s, const char *name, const char *help, const uint64_t *counts)
{
    metrics_family(s, name, "counter", help);
    for (int i = 0; i < METRICS_FWP_NVERBS; i++) {
        sbuf_t lab;
        sbuf_init(&lab, 32);
        metrics_label(&lab, "command", verbs[i], true);
        metrics_sample(s, name, lab.p, (double)counts[i]);
        sbuf_free(&lab);
    }
}

void metrics_render_faktory(sbuf_t *s, metrics_t *m)
{
    by_verb(s, "jobq_faktory_commands_total",
            "Faktory protocol commands received, by verb (other: unknown verbs).", m->fwp_commands);
    by_verb(s, "jobq_faktory_errors_total",
            "Faktory protocol -ERR replies, by the verb they answered.", m->fwp_errors);
}
