/*
 * process: the standard Prometheus process_* figures, read from /proc.
 * Pure functions of the running process; any thread.
 */
#ifndef JOBQ_PROCESS_H
#define JOBQ_PROCESS_H

#include <stdint.h>

typedef struct process_figures {
    double cpu_seconds;     /* user + system */
    double start_time;      /* seconds since the epoch */
    int64_t resident_bytes, virtual_bytes;
    int64_t open_fds, max_fds, threads;
} process_figures_t;

/* Returns 0, or -1 if /proc could not be read (fields then 0). */
int process_read(process_figures_t *out);

#endif
