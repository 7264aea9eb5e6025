/*
 * mkdirs: a folder and its missing parents (mkdir -p). Any thread.
 */
#ifndef JOBQ_UTIL_MKDIRS_H
#define JOBQ_UTIL_MKDIRS_H

#include <stddef.h>
#include <sys/types.h>

/* 0, or -1 with why in err. Parents made here get `mode` too. */
int mkdirs(const char *dir, mode_t mode, char *err, size_t len);

#endif
