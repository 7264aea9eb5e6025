/* Configuration: precedence of the layers and refusal of bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static char envfile[] = "/tmp/jobq-test-env-XXXXXX";

static int setup(void **state)
{
    (void)state;
    strcpy(envfile, "/tmp/jobq-test-env-XXXXXX");
    int fd = mkstemp(envfile);
    if (fd < 0)
        return -1;
    close(fd);
    setenv("JOBQ_ENV_FILE", envfile, 1);
    unsetenv("JOBQ_LISTEN");
    unsetenv("JOBQ_LOG_LEVEL");
    unsetenv("JOBQ_DATA_DIR");
    unsetenv("JOBQ_DATABASE_URL");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(envfile);
    unsetenv("JOBQ_ENV_FILE");
    unsetenv("JOBQ_LISTEN");
    unsetenv("JOBQ_LOG_LEVEL");
    return 0;
}

static void write_env(const char *text)
{
    FILE *f = fopen(envfile, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    (void)state;
    config_t c;
    char err[256];
    assert_int_equal(config_load(&c, 0, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(c.listen, "127.0.0.1:7420");
    assert_string_equal(c.data_dir, "./data");
    assert_string_equal(c.database_url, "sqlite://./data/jobq.db");
    assert_int_equal(c.durability, DURABILITY_FSYNC);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_int_equal(c.job.max_retries, 3);
    assert_int_equal(c.job.timeout_ms, 60000);
    assert_true(c.auto_migrate);
}

static void test_precedence(void **state)
{
    (void)state;
    write_env("# comment\nexport JOBQ_LISTEN=1.1.1.1:1\nJOBQ_LOG_LEVEL=\"debug\"\n"
              "JOBQ_DATA_DIR=/envfile\nOTHER_TOOL=x\n");
    config_t c;
    char err[256];
    assert_int_equal(config_load(&c, 0, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(c.listen, "1.1.1.1:1");
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_string_equal(c.database_url, "sqlite:///envfile/jobq.db");
    setenv("JOBQ_LISTEN", "2.2.2.2:2", 1);
    assert_int_equal(config_load(&c, 0, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(c.listen, "2.2.2.2:2");
    char *argv[] = { "--listen", "3.3.3.3:3", "--log-level=error" };
    assert_int_equal(config_load(&c, 3, argv, NULL, err, sizeof err), 0);
    assert_string_equal(c.listen, "3.3.3.3:3");
    assert_int_equal(c.log_level, LOG_ERROR);
}

static void test_bad_values(void **state)
{
    (void)state;
    const char *bad[][3] = {
        { "--durability", "sometimes", "JOBQ_DURABILITY" },
        { "--log-level", "loud", "JOBQ_LOG_LEVEL" },
        { "--max-body-bytes", "12", "JOBQ_MAX_BODY_BYTES" },
        { "--max-body-bytes", "1k", "JOBQ_MAX_BODY_BYTES" },
        { "--auto-migrate", "maybe", "JOBQ_AUTO_MIGRATE" },
        { "--default-max-retries", "-1", "JOBQ_DEFAULT_MAX_RETRIES" },
        { "--default-timeout-ms", "5", "JOBQ_DEFAULT_TIMEOUT_MS" },
        { "--backoff-jitter", "1.5", "JOBQ_BACKOFF_JITTER" },
        { "--backoff-multiplier", "nan", "JOBQ_BACKOFF_MULTIPLIER" },
        { "--no-such-thing", "1", "unknown option" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_t c;
        char err[256] = "";
        char *argv[] = { (char *)bad[i][0], (char *)bad[i][1] };
        assert_int_equal(config_load(&c, 2, argv, NULL, err, sizeof err), -1);
        assert_non_null(strstr(err, bad[i][2]));
        if (strcmp(bad[i][2], "unknown option") != 0)
            assert_non_null(strstr(err, bad[i][1]));
    }
    setenv("JOBQ_LISTEN", "", 1);
    write_env("JOBQ_DURABILITY=never\n");
    config_t c;
    char err[256];
    assert_int_equal(config_load(&c, 0, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, ":1:"));
    write_env("JOBQ_TYPO=1\n");
    assert_int_equal(config_load(&c, 0, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "JOBQ_TYPO"));
    write_env("");
    char *argv[] = { "--backoff-initial-ms", "5000", "--backoff-max-ms", "10" };
    assert_int_equal(config_load(&c, 4, argv, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "JOBQ_BACKOFF_MAX_MS"));
}

static void test_protection_lists_and_units(void **state)
{
    (void)state;
    config_t c;
    char err[512];
    char *argv[] = { "--limits", "queue:mail rate=2.5 burst=5; type:video concurrency=1;key:a.com concurrency=2",
                     "--api-keys", "ops:admin:0123456789abcdef, ci:producer:fedcba9876543210:10:20",
                     "--retain-completed", "90m", "--memory-limit", "512M", "--breaker-cooldown", "1500" };
    assert_int_equal(config_load(&c, 10, argv, NULL, err, sizeof err), 0);
    assert_int_equal(c.nlimits, 3);
    assert_int_equal(c.limits[0].target, LIMIT_QUEUE);
    assert_string_equal(c.limits[0].name, "mail");
    assert_true(c.limits[0].rate == 2.5 && c.limits[0].burst == 5);
    assert_int_equal(c.limits[1].target, LIMIT_TYPE);
    assert_int_equal(c.limits[1].concurrency, 1);
    assert_int_equal(c.limits[2].target, LIMIT_KEY);
    assert_int_equal(c.nkeys, 2);
    assert_int_equal(c.keys[0].role, ROLE_ADMIN);
    assert_true(c.keys[0].rate < 0); /* the global limit */
    assert_true(c.keys[1].rate == 10 && c.keys[1].burst == 20);
    assert_int_equal(c.retain_completed_ms, 90 * 60000);
    assert_int_equal(c.memory_limit, 512LL << 20);
    assert_int_equal(c.breaker_cooldown_ms, 1500);
    /* --print-config never shows a secret */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print(&c, f);
    fclose(f);
    assert_null(strstr(buf, "0123456789abcdef"));
    assert_non_null(strstr(buf, "JOBQ_API_KEYS=ops:admin:***,ci:producer:***"));
    free(buf);
    const char *bad[][2] = {
        { "--limits", "queue:x" },                        /* no attribute */
        { "--limits", "pool:x concurrency=1" },           /* unknown target */
        { "--limits", "type:x concurrency=1.5" },         /* not whole */
        { "--api-keys", "a:admin:short" },                /* secret too short */
        { "--api-keys", "a:root:0123456789abcdef" },      /* no such role */
        { "--api-keys", "a:admin:0123456789abcdef,a:reader:0123456789abcdeX" }, /* name twice */
        { "--retain-failed", "3 days" },
        { "--memory-limit", "12Q" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *av[] = { (char *)bad[i][0], (char *)bad[i][1] };
        assert_int_equal(config_load(&c, 2, av, NULL, err, sizeof err), -1);
        assert_null(strstr(err, "0123456789abcdef")); /* errors never echo a secret */
    }
}

/* Found by fuzz_config: a NORETRY (or PROGRESS) setting for a type with no
 * command was accepted, and printed as an empty command. */
static void test_command_options_need_their_command(void **state)
{
    (void)state;
    config_t c;
    char err[256];
    write_env("JOBQ_COMMAND_NORETRY_mi=9\n");
    assert_int_equal(config_load(&c, 0, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "JOBQ_COMMAND_NORETRY_mi is set but JOBQ_COMMAND_mi is not"));
    write_env("JOBQ_COMMAND_NORETRY_mi=9\nJOBQ_COMMAND_mi=echo {a}\n");
    assert_int_equal(config_load(&c, 0, NULL, NULL, err, sizeof err), 0);
    /* Also found by fuzz_config: a newline in a value (from the
     * environment) split the --print-config line in two. */
    assert_int_equal(config_set(&c, "JOBQ_COMMAND_x", "echo a\nJOBQ_LISTEN=0.0.0.0:1", err,
                                sizeof err), -1);
    assert_non_null(strstr(err, "control character"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protection_lists_and_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_options_need_their_command, setup, teardown),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
