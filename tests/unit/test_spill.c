/* The spill file: bytes read back as written, from the pending batch and
 * from the file; slots are reused; an empty file is truncated; what does
 * not fit is refused so the engine keeps it in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/spill.h"
#include "tmpdir_fixture.h"

static void fill(char *b, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(seed * 31 + (int)i);
}

static void test_round_trips_reuse_and_reset(void **state)
{
    (void)state;
    char dir[64], err[256];
    assert_int_equal(tmpdir_make(dir, "spill"), 0);
    spill_t *s = spill_open(dir, err, sizeof err);
    assert_non_null(s);
    DIR *d = opendir(dir); /* unlinked from the start: the folder stays empty */
    int names = 0;
    for (struct dirent *de; (de = readdir(d));)
        names += de->d_name[0] != '.';
    closedir(d);
    assert_int_equal(names, 0);

    enum { N = 12000 }; /* ~2.4 MB: past the 1 MiB batch, so some go to the file */
    static int64_t off[N];
    char b[300], got[300];
    for (int i = 0; i < N; i++) {
        size_t n = 100 + (size_t)(i % 190);
        fill(b, n, i);
        assert_true((off[i] = spill_write(s, b, n)) >= 0);
    }
    for (int i = 0; i < N; i++) {
        size_t n = 100 + (size_t)(i % 190);
        fill(b, n, i);
        assert_int_equal(spill_read(s, off[i], got, n), 0);
        assert_memory_equal(got, b, n);
    }
    spill_figures_t f;
    spill_figures(s, &f);
    assert_int_equal(f.live_slots, N);
    int64_t size = f.file_bytes;

    for (int i = 0; i < N / 2; i++) /* free half, write them again: the file does not grow */
        spill_free(s, off[i], 100 + (size_t)(i % 190));
    for (int i = 0; i < N / 2; i++) {
        size_t n = 100 + (size_t)(i % 190);
        fill(b, n, i + 7);
        assert_true((off[i] = spill_write(s, b, n)) >= 0);
    }
    spill_figures(s, &f);
    assert_int_equal(f.file_bytes, size);
    for (int i = 0; i < N; i++) {
        size_t n = 100 + (size_t)(i % 190);
        fill(b, n, i < N / 2 ? i + 7 : i);
        assert_int_equal(spill_read(s, off[i], got, n), 0);
        assert_memory_equal(got, b, n);
    }

    for (int i = 0; i < N; i++)
        spill_free(s, off[i], 100 + (size_t)(i % 190));
    spill_figures(s, &f);
    assert_int_equal(f.file_bytes, 0); /* empty: truncated */
    assert_int_equal(f.live_bytes, 0);

    static char big[SPILL_SLOT_MAX + 1];
    assert_int_equal(spill_write(s, big, sizeof big), -1); /* the engine keeps it */
    assert_true(spill_write(s, big, SPILL_SLOT_MAX) >= 0);
    spill_close(s);
    assert_int_equal(tmpdir_remove(dir), 0);
}

static void test_a_missing_folder_is_an_error(void **state)
{
    (void)state;
    char err[256];
    assert_null(spill_open("/nonexistent/jobq", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/jobq"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips_reuse_and_reset),
        cmocka_unit_test(test_a_missing_folder_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
