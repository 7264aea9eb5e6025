/*
 * clock: wall-clock milliseconds and RFC 3339 text.
 *
 * Job times are wall-clock because they are persisted and compared across
 * restarts; durations that never leave the process use clock_mono_ns().
 * All functions are pure and thread-safe.
 */
#ifndef JOBQ_CLOCK_H
#define JOBQ_CLOCK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

int64_t clock_now_ms(void);
int64_t clock_mono_ns(void);

/* Writes "2026-11-28T14:02:48.123Z" (needs 25 bytes); returns 0 or -1. */
int clock_format_rfc3339(int64_t ms, char *out, size_t len);

/* The RFC 3339 text as a new JSON string; JSON null for 0 ("not yet"). */
json_t *clock_json(int64_t ms);

/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t'/'z'/' ' too).
 * Returns 0 and the UTC milliseconds, or -1 when the text is not RFC 3339. */
int clock_parse_rfc3339(const char *s, int64_t *ms_out);

#endif
