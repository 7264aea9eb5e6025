#include "util/sbuf.h"
#include "util/utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(sbuf_t *s, size_t cap)
{
    s->len = 0;
    s->cap = cap ? cap : 64;
    s->p = malloc(s->cap);
    if (!s->p)
        abort();
    s->p[0] = '\0';
}

void sbuf_free(sbuf_t *s)
{
    free(s->p);
    *s = (sbuf_t){ 0 };
}

char *sbuf_take(sbuf_t *s)
{
    char *p = s->p;
    *s = (sbuf_t){ 0 };
    return p;
}

void sbuf_grow(sbuf_t *s, size_t n)
{
    if (s->len + n + 1 <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->len + n + 1)
        cap *= 2;
    char *p = realloc(s->p, cap);
    if (!p)
        abort();
    s->p = p;
    s->cap = cap;
}


void sbuf_add_int(sbuf_t *s, int64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    sbuf_add(s, tmp + i, sizeof tmp - (size_t)i);
}

/* Short decimals (0.2, 2, 1.5: backoff settings, most metrics) without a
 * formatted print: v as a whole number of millionths, if that reads back
 * as exactly v. 0 when it does not. */
static size_t short_decimal(double v, char *buf)
{
    if (signbit(v) || !(v < 1e9)) /* -0, negatives, NaN, large: printf */
        return 0;
    uint64_t m = (uint64_t)(v * 1e6 + 0.5);
    if ((double)m / 1e6 != v)
        return 0;
    char tmp[32];
    int n = 0;
    uint64_t whole = m / 1000000, frac = m % 1000000;
    do
        tmp[n++] = (char)('0' + whole % 10);
    while ((whole /= 10));
    size_t out = 0;
    while (n)
        buf[out++] = tmp[--n];
    if (frac) {
        buf[out++] = '.';
        for (int d = 100000; d && frac; d /= 10) {
            buf[out++] = (char)('0' + frac / (uint64_t)d);
            frac %= (uint64_t)d;
        }
    }
    buf[out] = '\0';
    return out;
}

void sbuf_add_double(sbuf_t *s, double v, bool keep_real)
{
    char buf[40];
    if (short_decimal(v, buf)) {
        sbuf_adds(s, buf);
        if (keep_real && !strchr(buf, '.'))
            sbuf_add(s, ".0", 2);
        return;
    }
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
    if (keep_real && !strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    sbuf_adds(s, buf);
}

void sbuf_add_jstr(sbuf_t *s, const char *str)
{
    if (!str)
        sbuf_add(s, "null", 4);
    else
        sbuf_add_jstrn(s, str, strlen(str));
}

/* Whether none of the 8 bytes at p needs a look: none is a control
 * character, a quote, a backslash or part of a multibyte character. Bytes
 * of the flag words are set for every byte that may (a borrow can flag a
 * neighbour too, which only sends the word to the byte loop). Most text
 * jobq writes (ids, names, args) is plain: a word at a time is a third of
 * the instructions of a byte at a time. */
static bool plain8(const char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t w, q, b;
    memcpy(&w, p, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    uint64_t flags = w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b);
    return (flags & high) == 0;
}

void sbuf_add_jstrn(sbuf_t *s, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    sbuf_addc(s, '"');
    const char *run = str, *c = str, *end = str + len;
    while (c < end) {
        if (end - c >= 8 && plain8(c)) {
            c += 8;
            continue;
        }
        unsigned char u = (unsigned char)*c;
        if (u >= 0x80) {
            size_t n = utf8_seq_len((const unsigned char *)c, (size_t)(end - c));
            if (n) {
                c += n;
                continue;
            }
            sbuf_add(s, run, (size_t)(c - run));
            sbuf_adds(s, "\\ufffd");
            run = ++c;
            continue;
        }
        if (u >= 0x20 && u != '"' && u != '\\') {
            c++;
            continue;
        }
        sbuf_add(s, run, (size_t)(c - run));
        run = ++c;
        switch (u) {
        case '"': sbuf_add(s, "\\\"", 2); break;
        case '\\': sbuf_add(s, "\\\\", 2); break;
        case '\n': sbuf_add(s, "\\n", 2); break;
        case '\r': sbuf_add(s, "\\r", 2); break;
        case '\t': sbuf_add(s, "\\t", 2); break;
        default: {
            char esc[6] = { '\\', 'u', '0', '0', hex[u >> 4], hex[u & 15] };
            sbuf_add(s, esc, 6);
        }
        }
    }
    sbuf_add(s, run, (size_t)(end - run));
    sbuf_addc(s, '"');
}
