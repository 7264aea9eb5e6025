#include "util/randid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>

/* Per-thread pool: one getrandom(2) per 4 KiB instead of one per id (the
 * syscall showed up at ~2% of the loop thread under load). */
static _Thread_local unsigned char pool[4096];
static _Thread_local size_t pool_left;

static int take(unsigned char *out, size_t n)
{
    if (n > sizeof pool)
        return -1;
    if (pool_left < n) {
        if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool)
            return -1;
        pool_left = sizeof pool;
    }
    pool_left -= n;
    memcpy(out, pool + pool_left, n);
    memset(pool + pool_left, 0, n); /* handed-out bytes do not linger */
    return 0;
}

int randid_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (nbytes > sizeof raw || take(raw, nbytes) != 0)
        return -1;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return 0;
}

double randid_unit(void)
{
    uint64_t r = 0;
    if (take((unsigned char *)&r, sizeof r) != 0)
        return 0.5;
    return (double)(r >> 11) / 9007199254740992.0; /* 2^53 */
}
