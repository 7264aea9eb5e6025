#include "util/clock.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* Hand-rolled: it runs several times per job on the hot path, where
 * gmtime_r + snprintf cost more than everything else in a job's reply. */
int clock_format_rfc3339(int64_t ms, char *out, size_t len)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    unsigned frac = (unsigned)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    unsigned sod = (unsigned)(secs - days * 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (len < 25 || y < 0 || y > 9999)
        return -1;
    memcpy(out, "0000-00-00T00:00:00.000Z", 25);
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    put2(out + 5, m);
    put2(out + 8, d);
    put2(out + 11, sod / 3600);
    put2(out + 14, sod / 60 % 60);
    put2(out + 17, sod % 60);
    out[20] = (char)('0' + frac / 100);
    put2(out + 21, frac % 100);
    return 0;
}

/* Reads exactly `n` digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, const char *oneof)
{
    for (const char *c = oneof; *c; c++) {
        if (**p == *c) {
            (*p)++;
            return 0;
        }
    }
    return -1;
}

static int days_in_month(int y, int m)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : d[m - 1];
}

static int parse_offset(const char **p, int *offset_min)
{
    if (expect(p, "Zz") == 0) {
        *offset_min = 0;
        return 0;
    }
    int sign = **p == '-' ? -1 : 1;
    int oh, om;
    if (expect(p, "+-") || digits(p, 2, &oh) || expect(p, ":") || digits(p, 2, &om) ||
        oh > 23 || om > 59)
        return -1;
    *offset_min = sign * (oh * 60 + om);
    return 0;
}

int clock_parse_rfc3339(const char *s, int64_t *ms_out)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, off;
    if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) || expect(&p, "-") ||
        digits(&p, 2, &d) || expect(&p, "Tt ") || digits(&p, 2, &h) || expect(&p, ":") ||
        digits(&p, 2, &mi) || expect(&p, ":") || digits(&p, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -1;
    int ms = 0;
    if (*p == '.') {
        p++;
        int scale = 100, nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd++ < 3) {
                ms += (*p - '0') * scale;
                scale /= 10;
            }
            p++;
        }
        if (nd == 0)
            return -1;
    }
    if (parse_offset(&p, &off) || *p != '\0')
        return -1;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = sec > 59 ? 59 : sec };
    time_t t = timegm(&tm);
    *ms_out = ((int64_t)t - (int64_t)off * 60) * 1000 + ms;
    return 0;
}

json_t *clock_json(int64_t ms)
{
    char buf[32];
    if (ms == 0 || clock_format_rfc3339(ms, buf, sizeof buf) != 0)
        return json_null();
    return json_string(buf);
}
