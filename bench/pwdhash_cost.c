/*
 * pwdhash_cost: what one Faktory password check costs per configured
 * credential, at the most iterations the server offers (8095).
 * Run: make build/bench/pwdhash_cost && build/bench/pwdhash_cost
 */
#include <stdio.h>
#include <time.h>

#include "faktory/auth.h"

int main(void)
{
    enum { RUNS = 200 };
    char out[FWP_HASH_HEX + 1];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < RUNS; i++)
        fwp_pwdhash("a-secret-of-the-usual-length-0123456789", "0123456789abcdef",
                    FWP_ITER_MIN + FWP_ITER_SPAN - 1, out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = ((double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6) / RUNS;
    printf("%.2f ms per credential at %d iterations (%s)\n", ms, FWP_ITER_MIN + FWP_ITER_SPAN - 1,
           out[0] ? "ok" : "?");
    return 0;
}
