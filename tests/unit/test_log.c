/* Unit tests for JSON-lines logging: the exact record layout, escaping of hostile values,
 * levels, and whole lines under concurrent writers. Records go to a temporary file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotsec/json.h"
#include "iotsec/log.h"
#include "iotsec/time.h"

#define TS_LEN 24 /* "2026-11-25T07:14:28.123Z" */

static int sink = -1;

static int open_sink(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    if (f == NULL)
        return -1;
    sink = dup(fileno(f));
    fclose(f);
    iotsec_log_set_fd(sink);
    iotsec_log_set_level(IOTSEC_LOG_INFO);
    return sink < 0 ? -1 : 0;
}

static int close_sink(void **state)
{
    (void)state;
    iotsec_log_set_fd(2);
    close(sink);
    return 0;
}

/* Everything written so far, NUL-terminated; the sink is emptied. Caller frees. */
static char *drain(void)
{
    off_t len = lseek(sink, 0, SEEK_END);
    assert_true(len >= 0);
    char *text = malloc((size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(pread(sink, text, (size_t)len, 0), len);
    text[len] = '\0';
    assert_int_equal(ftruncate(sink, 0), 0);
    assert_int_equal(lseek(sink, 0, SEEK_SET), 0);
    return text;
}

/* Checks the timestamp is a current RFC 3339 time with milliseconds and returns the rest
 * of the line after it, so tests can compare the remainder exactly. */
static const char *after_ts(const char *line)
{
    assert_memory_equal(line, "{\"ts\":\"", 7);
    struct iotsec_time t;
    assert_true(iotsec_ok(iotsec_time_parse(iotsec_slice_make(line + 7, TS_LEN), &t)));
    assert_int_equal(line[7 + TS_LEN - 5], '.');
    struct iotsec_time now = iotsec_time_now();
    assert_true(t.sec <= now.sec && t.sec >= now.sec - 5);
    return line + 7 + TS_LEN;
}

static void log_writes_one_json_line_per_record(void **state)
{
    (void)state;
    iotsec_log_info("listening", IOTSEC_LOG_STR("addr", "0.0.0.0"), IOTSEC_LOG_INT("port", 8443),
                    IOTSEC_LOG_BOOL("tls", true), IOTSEC_LOG_INT("min", INT64_MIN));
    char *text = drain();
    assert_string_equal(after_ts(text), "\",\"level\":\"info\",\"msg\":\"listening\","
                                        "\"addr\":\"0.0.0.0\",\"port\":8443,\"tls\":true,"
                                        "\"min\":-9223372036854775808}\n");
    json_t *v = NULL;
    assert_true(iotsec_ok(iotsec_json_parse(iotsec_slice_make(text, strlen(text) - 1), NULL, &v)));
    json_decref(v);
    free(text);
}

static void log_writes_a_record_without_fields(void **state)
{
    (void)state;
    iotsec_log_error("shutting down");
    iotsec_log_write(IOTSEC_LOG_WARN, NULL, NULL);
    char *text = drain();
    char *second = strchr(text, '\n') + 1;
    char first[256];
    snprintf(first, sizeof(first), "%.*s", (int)(second - text), text);
    assert_string_equal(after_ts(first), "\",\"level\":\"error\",\"msg\":\"shutting down\"}\n");
    assert_string_equal(after_ts(second), "\",\"level\":\"warn\",\"msg\":\"\"}\n");
    free(text);
}

static void log_escapes_values_that_could_break_the_line(void **state)
{
    (void)state;
    iotsec_log_warn("bad \"id\"",
                    IOTSEC_LOG_STR("deviceId", "x\"}\n{\"level\":\"debug\\\t\x01\x7f"),
                    IOTSEC_LOG_STR("k\"ey", "v"));
    char *text = drain();
    assert_string_equal(after_ts(text),
                        "\",\"level\":\"warn\",\"msg\":\"bad \\\"id\\\"\","
                        "\"deviceId\":\"x\\\"}\\n{\\\"level\\\":\\\"debug\\\\\\t\\u0001\\u007f\","
                        "\"k\\\"ey\":\"v\"}\n");
    /* It is still exactly one line of valid JSON that keeps the value intact. */
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    json_t *v = NULL;
    assert_true(iotsec_ok(iotsec_json_parse(iotsec_slice_make(text, strlen(text)), NULL, &v)));
    assert_string_equal(json_string_value(json_object_get(v, "deviceId")),
                        "x\"}\n{\"level\":\"debug\\\t\x01\x7f");
    assert_string_equal(json_string_value(json_object_get(v, "level")), "warn");
    json_decref(v);
    free(text);
}

static void log_replaces_invalid_utf8_with_replacement_characters(void **state)
{
    (void)state;
    /* Valid 2/3/4-byte characters pass through; a lone 0xff, an overlong '/', a UTF-8
     * surrogate and a sequence cut off at the end do not. */
    iotsec_log_info("utf8", IOTSEC_LOG_STR("v", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xff|"
                                                "\xc0\xaf|\xed\xa0\x80|\xe2\x82"));
    char *text = drain();
    assert_string_equal(
        after_ts(text),
        "\",\"level\":\"info\",\"msg\":\"utf8\",\"v\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f"
        "\x98\x80|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"}\n");
    json_t *v = NULL;
    assert_true(iotsec_ok(iotsec_json_parse(iotsec_slice_make(text, strlen(text)), NULL, &v)));
    json_decref(v);
    free(text);
}

static void log_never_lets_a_field_replace_level_or_msg(void **state)
{
    (void)state;
    iotsec_log_info("real", IOTSEC_LOG_STR("level", "error"), IOTSEC_LOG_STR("msg", "fake"),
                    IOTSEC_LOG_STR("ts", "0"), IOTSEC_LOG_INT("n", 1), IOTSEC_LOG_INT("n", 2));
    char *text = drain();
    assert_string_equal(after_ts(text), "\",\"level\":\"info\",\"msg\":\"real\",\"n\":1}\n");
    free(text);
}

static void log_writes_null_for_a_null_string(void **state)
{
    (void)state;
    iotsec_log_info("m", IOTSEC_LOG_STR("peer", NULL));
    char *text = drain();
    assert_string_equal(after_ts(text), "\",\"level\":\"info\",\"msg\":\"m\",\"peer\":null}\n");
    free(text);
}

static void log_cuts_long_values(void **state)
{
    (void)state;
    char *big = malloc(5001);
    memset(big, 'a', 5000);
    big[5000] = '\0';
    iotsec_log_info("big", IOTSEC_LOG_STR("v", big));
    char *text = drain();
    const char *v = strstr(text, "\"v\":\"") + 5;
    assert_int_equal(strspn(v, "a"), 4096);
    assert_string_equal(v + 4096, "...\"}\n");
    free(text);
    free(big);
}

static void log_skips_records_below_the_minimum_level(void **state)
{
    (void)state;
    iotsec_log_debug("hidden");
    assert_false(iotsec_log_enabled(IOTSEC_LOG_DEBUG));
    assert_true(iotsec_log_enabled(IOTSEC_LOG_INFO));
    iotsec_log_set_level(IOTSEC_LOG_ERROR);
    iotsec_log_warn("hidden too");
    iotsec_log_error("shown");
    iotsec_log_set_level(IOTSEC_LOG_DEBUG);
    iotsec_log_debug("shown too");
    iotsec_log_set_level(IOTSEC_LOG_INFO);
    char *text = drain();
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, "\"level\":\"error\",\"msg\":\"shown\"}\n"));
    assert_non_null(strstr(text, "\"level\":\"debug\",\"msg\":\"shown too\"}\n"));
    free(text);
}

static void log_level_parse_accepts_config_names(void **state)
{
    (void)state;
    enum iotsec_log_level level = IOTSEC_LOG_ERROR;
    assert_true(iotsec_ok(iotsec_log_level_parse("info", &level)));
    assert_int_equal(level, IOTSEC_LOG_INFO);
    assert_true(iotsec_ok(iotsec_log_level_parse("DEBUG", &level)));
    assert_int_equal(level, IOTSEC_LOG_DEBUG);
    assert_true(iotsec_ok(iotsec_log_level_parse("warn", &level)));
    assert_int_equal(level, IOTSEC_LOG_WARN);
    assert_true(iotsec_ok(iotsec_log_level_parse("error", &level)));
    assert_int_equal(level, IOTSEC_LOG_ERROR);
    assert_string_equal(iotsec_log_level_name(IOTSEC_LOG_WARN), "warn");

    assert_false(iotsec_ok(iotsec_log_level_parse("verbose", &level)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    assert_string_equal(iotsec_error_message(),
                        "log: unknown level 'verbose' (expected debug, info, warn or error)");
    assert_false(iotsec_ok(iotsec_log_level_parse("", &level)));
    assert_int_equal(level, IOTSEC_LOG_ERROR);
}

static void log_keeps_the_callers_error(void **state)
{
    (void)state;
    iotsec_error_set(IOTSEC_ERR_AUTH, "auth: bad token");
    iotsec_log_warn("login failed");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    assert_string_equal(iotsec_error_message(), "auth: bad token");
    free(drain());
}

#define THREADS          8
#define LINES_PER_THREAD 300

static void *log_from_thread(void *arg)
{
    char value[600];
    memset(value, 'a' + (int)(intptr_t)arg, sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++)
        iotsec_log_info("tick", IOTSEC_LOG_INT("i", i), IOTSEC_LOG_STR("v", value));
    return NULL;
}

static void log_lines_from_threads_never_interleave(void **state)
{
    (void)state;
    pthread_t threads[THREADS];
    for (intptr_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, log_from_thread, (void *)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    char *text = drain();
    size_t lines = 0;
    for (char *line = text, *end; (end = strchr(line, '\n')) != NULL; line = end + 1) {
        json_t *v = NULL;
        iotsec_result r =
            iotsec_json_parse(iotsec_slice_make(line, (size_t)(end - line)), NULL, &v);
        if (!iotsec_ok(r))
            fail_msg("line %zu: %s", lines, iotsec_error_message());
        const char *s = json_string_value(json_object_get(v, "v"));
        /* Each value is 599 copies of one thread's letter: no other thread's bytes. */
        assert_int_equal(strlen(s), 599);
        assert_int_equal(strspn(s, (char[]){s[0], '\0'}), 599);
        json_decref(v);
        lines++;
    }
    assert_int_equal(lines, THREADS * LINES_PER_THREAD);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_writes_one_json_line_per_record),
        cmocka_unit_test(log_writes_a_record_without_fields),
        cmocka_unit_test(log_escapes_values_that_could_break_the_line),
        cmocka_unit_test(log_replaces_invalid_utf8_with_replacement_characters),
        cmocka_unit_test(log_never_lets_a_field_replace_level_or_msg),
        cmocka_unit_test(log_writes_null_for_a_null_string),
        cmocka_unit_test(log_cuts_long_values),
        cmocka_unit_test(log_skips_records_below_the_minimum_level),
        cmocka_unit_test(log_level_parse_accepts_config_names),
        cmocka_unit_test(log_keeps_the_callers_error),
        cmocka_unit_test(log_lines_from_threads_never_interleave),
    };
    return cmocka_run_group_tests(tests, open_sink, close_sink);
}
