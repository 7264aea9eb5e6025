/*
 * utf8: strict UTF-8 (RFC 3629: no overlong forms, no UTF-16 surrogates,
 * nothing past U+10FFFF), as jansson checks it. Header only; any thread.
 */
#ifndef JOBQ_UTF8_H
#define JOBQ_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (avail > 0 bytes there), or 0 if
 * it is not one. */
static inline size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                            : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > avail || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f)))
        return 0;
    return n;
}

/* ASCII, the common case, eight bytes a step. */
static inline bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        uint64_t w;
        if (end - p >= 8 && (memcpy(&w, p, 8), (w & 0x8080808080808080ULL) == 0)) {
            p += 8;
            continue;
        }
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq_len(p, (size_t)(end - p));
        if (!k)
            return false;
        p += k;
    }
    return true;
}

#endif
