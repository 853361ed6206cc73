/* Unit tests for RFC 3339 parsing and formatting: each accepted form, each way an input
 * can be wrong (with its exact message), and the calendar cross-checked against glibc. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "iotsec/time.h"

static void parses_to(const char *text, int64_t sec, uint32_t nsec)
{
    struct iotsec_time t = {.sec = 12345, .nsec = 6789};
    iotsec_result r = iotsec_time_parse(iotsec_slice_from_str(text), &t);
    if (!iotsec_ok(r))
        fail_msg("%s: %s", text, iotsec_error_message());
    assert_true(t.sec == sec);
    assert_int_equal(t.nsec, nsec);
}

static void fails_with(const char *text, const char *message)
{
    struct iotsec_time t;
    assert_false(iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(text), &t)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TIME);
    assert_string_equal(iotsec_error_message(), message);
}

static void time_parses_utc(void **state)
{
    (void)state;
    parses_to("2026-11-25T07:14:28Z", 1795590868, 0);
    parses_to("1970-01-01T00:00:00Z", 0, 0);
    parses_to("1969-12-31T23:59:59Z", -1, 0);
}

static void time_accepts_lowercase_t_and_z(void **state)
{
    (void)state;
    parses_to("2026-11-25t07:14:28z", 1795590868, 0);
}

static void time_keeps_fraction_as_nanoseconds(void **state)
{
    (void)state;
    parses_to("2026-11-25T07:14:28.5Z", 1795590868, 500000000);
    parses_to("2026-11-25T07:14:28.123Z", 1795590868, 123000000);
    parses_to("2026-11-25T07:14:28.000000001Z", 1795590868, 1);
    parses_to("2026-11-25T07:14:28.123456789Z", 1795590868, 123456789);
}

static void time_applies_offsets_to_reach_utc(void **state)
{
    (void)state;
    parses_to("2026-11-25T07:14:28+02:00", 1795583668, 0);
    parses_to("2026-11-25T07:14:28-05:30", 1795610668, 0);
    parses_to("2026-11-25T07:14:28.25+00:00", 1795590868, 250000000);
    parses_to("2026-11-25T07:14:28-00:00", 1795590868, 0);
    /* The offset moves the time across midnight and into the previous year. */
    parses_to("2027-01-01T01:00:00+02:00", 1798758000, 0);
}

static void time_accepts_feb_29_in_leap_years(void **state)
{
    (void)state;
    parses_to("2024-02-29T00:00:00Z", 1709164800, 0);
    parses_to("2000-02-29T00:00:00Z", 951782400, 0);
}

static void time_rejects_feb_29_in_2025(void **state)
{
    (void)state;
    fails_with("2025-02-29T00:00:00Z", "rfc3339: day 29 is out of range for 2025-02 (28 days)");
}

static void time_rejects_feb_29_in_1900(void **state)
{
    (void)state;
    /* Divisible by 100 but not by 400: not a leap year. */
    fails_with("1900-02-29T00:00:00Z", "rfc3339: day 29 is out of range for 1900-02 (28 days)");
}

static void time_rejects_day_31_in_april(void **state)
{
    (void)state;
    fails_with("2026-04-31T00:00:00Z", "rfc3339: day 31 is out of range for 2026-04 (30 days)");
    fails_with("2026-04-00T00:00:00Z", "rfc3339: day 00 is out of range for 2026-04 (30 days)");
}

static void time_rejects_month_13(void **state)
{
    (void)state;
    fails_with("2026-13-01T00:00:00Z", "rfc3339: month 13 is out of range 01-12");
    fails_with("2026-00-01T00:00:00Z", "rfc3339: month 00 is out of range 01-12");
}

static void time_rejects_hour_24(void **state)
{
    (void)state;
    fails_with("2026-11-25T24:00:00Z", "rfc3339: hour 24 is out of range 00-23");
}

static void time_rejects_minute_60(void **state)
{
    (void)state;
    fails_with("2026-11-25T07:60:00Z", "rfc3339: minute 60 is out of range 00-59");
}

static void time_rejects_leap_second(void **state)
{
    (void)state;
    fails_with("2016-12-31T23:59:60Z", "rfc3339: leap second (second 60) is not supported");
    fails_with("2016-12-31T23:59:61Z", "rfc3339: second 61 is out of range 00-59");
}

static void time_rejects_missing_t(void **state)
{
    (void)state;
    fails_with("2026-11-25 07:14:28Z", "rfc3339: expected 'T' between date and time at byte 10");
    fails_with("2026-11-25", "rfc3339: expected 'T' between date and time at byte 10");
}

static void time_rejects_missing_zone(void **state)
{
    (void)state;
    fails_with("2026-11-25T07:14:28",
               "rfc3339: missing time zone (expected 'Z' or an offset such as +02:00) at byte 19");
    fails_with("2026-11-25T07:14:28 UTC",
               "rfc3339: expected 'Z' or an offset such as +02:00 at byte 19");
}

static void time_rejects_trailing_bytes(void **state)
{
    (void)state;
    fails_with("2026-11-25T07:14:28Zjunk", "rfc3339: 4 unexpected trailing bytes at byte 20");
    fails_with("2026-11-25T07:14:28+02:00\n", "rfc3339: 1 unexpected trailing bytes at byte 25");
}

static void time_rejects_bad_fractions(void **state)
{
    (void)state;
    fails_with("2026-11-25T07:14:28.Z", "rfc3339: expected a digit after '.' at byte 20");
    fails_with("2026-11-25T07:14:28.1234567891Z",
               "rfc3339: more than 9 fractional digits at byte 29");
    fails_with("2026-11-25T07:14:28,5Z",
               "rfc3339: expected 'Z' or an offset such as +02:00 at byte 19");
}

static void time_rejects_bad_offsets(void **state)
{
    (void)state;
    fails_with("2026-11-25T07:14:28+24:00", "rfc3339: offset hour 24 is out of range 00-23");
    fails_with("2026-11-25T07:14:28+02:60", "rfc3339: offset minute 60 is out of range 00-59");
    fails_with("2026-11-25T07:14:28+0200", "rfc3339: expected ':' in the offset at byte 22");
    fails_with("2026-11-25T07:14:28+2:00", "rfc3339: expected 2-digit offset hour at byte 21");
}

static void time_rejects_short_fields(void **state)
{
    (void)state;
    fails_with("", "rfc3339: empty time");
    fails_with("26-11-25T07:14:28Z", "rfc3339: expected 4-digit year at byte 2");
    fails_with("2026/11/25T07:14:28Z", "rfc3339: expected '-' after the year at byte 4");
    fails_with("2026-1-25T07:14:28Z", "rfc3339: expected 2-digit month at byte 6");
    fails_with("2026-11-25T7:14:28Z", "rfc3339: expected 2-digit hour at byte 12");
    fails_with("2026-11-25T07:14Z", "rfc3339: expected ':' after the minute at byte 16");
    fails_with("+2026-11-25T07:14:28Z", "rfc3339: expected 4-digit year at byte 0");
}

static void time_rejects_times_outside_years_0000_to_9999(void **state)
{
    (void)state;
    parses_to("0000-01-01T00:00:00Z", IOTSEC_TIME_MIN_SEC, 0);
    parses_to("9999-12-31T23:59:59.999999999Z", IOTSEC_TIME_MAX_SEC, 999999999);
    fails_with("0000-01-01T00:00:00+00:01",
               "rfc3339: time is outside years 0000-9999 once converted to UTC");
    fails_with("9999-12-31T23:59:59-00:01",
               "rfc3339: time is outside years 0000-9999 once converted to UTC");
}

static void time_formats_each_precision(void **state)
{
    (void)state;
    char s[IOTSEC_TIME_STR_MAX];
    struct iotsec_time t = {.sec = 1795590868, .nsec = 123456789};
    assert_true(iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_SECONDS, s)));
    assert_string_equal(s, "2026-11-25T07:14:28Z");
    assert_true(iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_MILLIS, s)));
    assert_string_equal(s, "2026-11-25T07:14:28.123Z");
    assert_true(iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_NANOS, s)));
    assert_string_equal(s, "2026-11-25T07:14:28.123456789Z");
    t.nsec = 999999999; /* milliseconds are truncated, never rounded up into the next second */
    assert_true(iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_MILLIS, s)));
    assert_string_equal(s, "2026-11-25T07:14:28.999Z");
}

static void time_formats_before_1970_and_the_range_ends(void **state)
{
    (void)state;
    char s[IOTSEC_TIME_STR_MAX];
    assert_true(iotsec_ok(iotsec_time_format((struct iotsec_time){-1, 0}, IOTSEC_TIME_SECONDS, s)));
    assert_string_equal(s, "1969-12-31T23:59:59Z");
    assert_true(iotsec_ok(
        iotsec_time_format((struct iotsec_time){IOTSEC_TIME_MIN_SEC, 0}, IOTSEC_TIME_SECONDS, s)));
    assert_string_equal(s, "0000-01-01T00:00:00Z");
    assert_true(iotsec_ok(
        iotsec_time_format((struct iotsec_time){IOTSEC_TIME_MAX_SEC, 0}, IOTSEC_TIME_SECONDS, s)));
    assert_string_equal(s, "9999-12-31T23:59:59Z");
}

static void time_format_rejects_unrepresentable_times(void **state)
{
    (void)state;
    char s[IOTSEC_TIME_STR_MAX];
    assert_false(iotsec_ok(iotsec_time_format((struct iotsec_time){IOTSEC_TIME_MAX_SEC + 1, 0},
                                              IOTSEC_TIME_SECONDS, s)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TIME);
    assert_string_equal(iotsec_error_message(),
                        "rfc3339: 253402300800 seconds is outside years 0000-9999");
    assert_false(
        iotsec_ok(iotsec_time_format((struct iotsec_time){0, 1000000000u}, IOTSEC_TIME_NANOS, s)));
    assert_string_equal(iotsec_error_message(),
                        "rfc3339: 1000000000 nanoseconds is not below one second");
}

/* Our calendar against glibc's gmtime_r over four centuries, a day and an odd number of
 * seconds at a time, and each formatted time parsed back to the same second. */
static void time_calendar_matches_gmtime_and_round_trips(void **state)
{
    (void)state;
    const int64_t start = -2208988800; /* 1900-01-01 */
    const int64_t end = 10413792000;   /* 2300-01-01 */
    for (int64_t sec = start; sec < end; sec += 86400 + 3607) {
        time_t tt = (time_t)sec;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char want[IOTSEC_TIME_STR_MAX], got[IOTSEC_TIME_STR_MAX];
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
        assert_true(
            iotsec_ok(iotsec_time_format((struct iotsec_time){sec, 0}, IOTSEC_TIME_SECONDS, got)));
        assert_string_equal(got, want);
        struct iotsec_time back;
        assert_true(iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(got), &back)));
        assert_true(back.sec == sec);
    }
}

static void time_now_is_the_wall_clock(void **state)
{
    (void)state;
    time_t before = time(NULL);
    struct iotsec_time now = iotsec_time_now();
    time_t after = time(NULL);
    assert_true(now.sec >= (int64_t)before && now.sec <= (int64_t)after);
    assert_true(now.nsec < 1000000000u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(time_parses_utc),
        cmocka_unit_test(time_accepts_lowercase_t_and_z),
        cmocka_unit_test(time_keeps_fraction_as_nanoseconds),
        cmocka_unit_test(time_applies_offsets_to_reach_utc),
        cmocka_unit_test(time_accepts_feb_29_in_leap_years),
        cmocka_unit_test(time_rejects_feb_29_in_2025),
        cmocka_unit_test(time_rejects_feb_29_in_1900),
        cmocka_unit_test(time_rejects_day_31_in_april),
        cmocka_unit_test(time_rejects_month_13),
        cmocka_unit_test(time_rejects_hour_24),
        cmocka_unit_test(time_rejects_minute_60),
        cmocka_unit_test(time_rejects_leap_second),
        cmocka_unit_test(time_rejects_missing_t),
        cmocka_unit_test(time_rejects_missing_zone),
        cmocka_unit_test(time_rejects_trailing_bytes),
        cmocka_unit_test(time_rejects_bad_fractions),
        cmocka_unit_test(time_rejects_bad_offsets),
        cmocka_unit_test(time_rejects_short_fields),
        cmocka_unit_test(time_rejects_times_outside_years_0000_to_9999),
        cmocka_unit_test(time_formats_each_precision),
        cmocka_unit_test(time_formats_before_1970_and_the_range_ends),
        cmocka_unit_test(time_format_rejects_unrepresentable_times),
        cmocka_unit_test(time_calendar_matches_gmtime_and_round_trips),
        cmocka_unit_test(time_now_is_the_wall_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
