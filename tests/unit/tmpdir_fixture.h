/*
 * tmpdir_fixture: a fresh folder under /tmp per test, removed after it,
 * for the unit tests that write real files (the store, the journal).
 */
#ifndef JOBQ_TMPDIR_FIXTURE_H
#define JOBQ_TMPDIR_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dir (at least 64 bytes) becomes a new folder /tmp/jobq-test-<name>-XXXXXX. */
static inline int tmpdir_make(char *dir, const char *name)
{
    snprintf(dir, 64, "/tmp/jobq-test-%.30s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

static inline int tmpdir_remove(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

#endif
