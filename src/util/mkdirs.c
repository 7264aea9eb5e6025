/* mkdir -p (mkdirs.h). */
#include "util/mkdirs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int mkdirs(const char *dir, mode_t mode, char *err, size_t len)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return snprintf(err, len, "folder name too long: %.100s...", dir), -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, mode) != 0 && errno != EEXIST)
            break; /* the last mkdir says why */
        *p = '/';
    }
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        snprintf(err, len, "cannot create folder %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
