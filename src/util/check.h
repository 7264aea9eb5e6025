/*
 * check: contracts that the headers state in prose (which thread, no
 * re-entry, list and heap shape), checked in the test build.
 *
 * CHECK(cond) aborts with the condition, file and line when JOBQ_CHECKS is
 * defined (the sanitizer build that every test runs) and compiles to
 * nothing in the release build, so checks may be as expensive as a walk of
 * a small structure. They are for invariants only: input from outside is
 * validated and answered, never CHECKed.
 *
 * The loop thread: check_set_loop_thread() is called once by whoever runs
 * the loop (serve, tests); CHECK_LOOP_THREAD() then fires on any other
 * thread. Before it is called, every thread counts as the loop thread
 * (start-up runs on main before any other thread exists).
 */
#ifndef JOBQ_CHECK_H
#define JOBQ_CHECK_H

#include <stdbool.h>

_Noreturn void check_failed(const char *cond, const char *file, int line, const char *func);
void check_set_loop_thread(void);
bool check_on_loop_thread(void);

#ifdef JOBQ_CHECKS
#define CHECK(cond) ((cond) ? (void)0 : check_failed(#cond, __FILE__, __LINE__, __func__))
#else
#define CHECK(cond) ((void)sizeof(!(cond)))
#endif

#define CHECK_LOOP_THREAD() CHECK(check_on_loop_thread())

#endif
