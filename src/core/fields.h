/*
 * fields: the one check that a client's JSON object holds only known keys,
 * shared by the API handlers and the runners' argument checks. Pure.
 */
#ifndef JOBQ_FIELDS_H
#define JOBQ_FIELDS_H

#include <jansson.h>

#include "core/errors.h"

/* Returns 0 if every key of obj is in the NULL-terminated allowed list; else
 * fills p (validation, field prefix+key) for the first stranger, returns -1. */
int fields_only(json_t *obj, const char *const *allowed, const char *prefix, problem_t *p);

#endif
