/*
 * randid: unguessable identifiers from the kernel's CSPRNG.
 *
 * Used for generated job ids and lease tokens, where guessability would let
 * a stale or hostile worker fence another. Thread-safe.
 */
#ifndef JOBQ_RANDID_H
#define JOBQ_RANDID_H

#include <stddef.h>

/* Writes 2*nbytes lowercase hex digits and a NUL into out (size >= 2*nbytes+1).
 * Returns 0, or -1 if the kernel refused randomness (never in practice). */
int randid_hex(char *out, size_t nbytes);

/* A uniform double in [0, 1), for jitter. Not for secrets. */
double randid_unit(void);

#endif
