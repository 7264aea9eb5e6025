#include "metrics/process.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int64_t boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    long long bt = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    if (f)
        fclose(f);
    return bt;
}

static int64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory handle itself */
}

int process_read(process_figures_t *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may itself hold spaces. */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st, start, vsize;
    long long rss, threads;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                     "%lld %*d %llu %llu %lld",
                     &ut, &st, &threads, &start, &vsize, &rss) != 6)
        return -1;
    double tick = (double)sysconf(_SC_CLK_TCK);
    struct rusage ru; /* microseconds, where /proc's ticks round a quiet process to 0 */
    out->cpu_seconds = getrusage(RUSAGE_SELF, &ru) == 0
                           ? (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6
                           : (double)(ut + st) / tick;
    out->start_time = (double)boot_time() + (double)start / tick;
    out->virtual_bytes = (int64_t)vsize;
    out->resident_bytes = rss * sysconf(_SC_PAGESIZE);
    out->threads = threads;
    out->open_fds = count_fds();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds = (int64_t)rl.rlim_cur;
    return 0;
}
