#include "faktory/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fwp_pwdhash(const char *password, const char *salt, int iterations,
                 char out[FWP_HASH_HEX + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    size_t pl = strlen(password), sl = strlen(salt);
    char *buf = malloc(pl + sl + 1);
    if (!buf) {
        out[0] = '\0'; /* matches nothing */
        return;
    }
    memcpy(buf, password, pl);
    memcpy(buf + pl, salt, sl);
    SHA256((const unsigned char *)buf, pl + sl, md);
    OPENSSL_cleanse(buf, pl + sl);
    free(buf);
    for (int i = 1; i < iterations; i++)
        SHA256(md, sizeof md, md);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[FWP_HASH_HEX] = '\0';
}

bool fwp_hash_equal(const char *given, const char *expected)
{
    size_t n = strlen(expected);
    if (n != FWP_HASH_HEX || strnlen(given, n + 1) != n)
        return false;
    return CRYPTO_memcmp(given, expected, n) == 0;
}
