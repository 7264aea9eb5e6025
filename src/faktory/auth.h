/*
 * fwp auth: the Faktory protocol's password hash. The server offers a salt
 * and an iteration count in its HI; the client answers with
 * SHA-256(password + salt), hashed again as raw bytes until `iterations`
 * hashes in all, in lowercase hex. Pure functions, any thread.
 */
#ifndef JOBQ_FAKTORY_AUTH_H
#define JOBQ_FAKTORY_AUTH_H

#include <stdbool.h>

#define FWP_HASH_HEX 64
#define FWP_ITER_MIN 4000
#define FWP_ITER_SPAN 4096 /* iterations are drawn from 4000..8095 */

/* Writes FWP_HASH_HEX digits and a NUL into out. iterations < 1 counts as 1. */
void fwp_pwdhash(const char *password, const char *salt, int iterations,
                 char out[FWP_HASH_HEX + 1]);
/* Constant time in the length of `expected`; false unless both are equal. */
bool fwp_hash_equal(const char *given, const char *expected);

#endif
