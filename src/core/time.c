/*
 * RFC 3339 parsing and formatting (include/iotsec/time.h).
 *
 * The parser walks the grammar left to right with one small reader per field, so each
 * way an input can be wrong has its own message and byte position. The calendar is
 * converted with Howard Hinnant's days-from-civil algorithm (proleptic Gregorian, exact
 * integer arithmetic) instead of timegm()/gmtime_r(): no dependency on TZ, on the C
 * library's time_t range, or on a struct tm normalising "February 30" into March.
 */
#include "iotsec/time.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#define SECONDS_PER_DAY 86400

static bool is_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01. The year is shifted to start in March so that the leap day is
 * the last day of the shifted year and every month before it has a fixed length. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- the parser ---- */

struct cursor {
    struct iotsec_slice in;
    size_t pos; /* bytes consumed, for messages */
};

static bool peek(const struct cursor *c, uint8_t *ch)
{
    if (c->pos >= c->in.len)
        return false;
    *ch = c->in.ptr[c->pos];
    return true;
}

static bool is_digit(uint8_t ch)
{
    return ch >= '0' && ch <= '9';
}

/* Exactly n digits: RFC 3339 fields are fixed width, "2026-1-5" is not a date. */
static iotsec_result read_digits(struct cursor *c, size_t n, const char *what, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch;
        IOTSEC_ENSURE(peek(c, &ch) && is_digit(ch), IOTSEC_ERR_TIME,
                      "rfc3339: expected %zu-digit %s at byte %zu", n, what, c->pos);
        v = v * 10 + (ch - '0');
        c->pos++;
    }
    *out = v;
    return IOTSEC_RESULT_OK;
}

static iotsec_result expect_char(struct cursor *c, char want, const char *where)
{
    uint8_t ch;
    IOTSEC_ENSURE(peek(c, &ch) && ch == (uint8_t)want, IOTSEC_ERR_TIME,
                  "rfc3339: expected '%c' %s at byte %zu", want, where, c->pos);
    c->pos++;
    return IOTSEC_RESULT_OK;
}

/* "." 1*DIGIT, kept to nanoseconds. */
static iotsec_result read_fraction(struct cursor *c, uint32_t *nsec)
{
    uint8_t ch;
    *nsec = 0;
    if (!peek(c, &ch) || ch != '.')
        return IOTSEC_RESULT_OK;
    c->pos++;
    size_t digits = 0;
    uint32_t v = 0;
    while (peek(c, &ch) && is_digit(ch)) {
        IOTSEC_ENSURE(digits < 9, IOTSEC_ERR_TIME,
                      "rfc3339: more than 9 fractional digits at byte %zu", c->pos);
        v = v * 10 + (uint32_t)(ch - '0');
        digits++;
        c->pos++;
    }
    IOTSEC_ENSURE(digits > 0, IOTSEC_ERR_TIME, "rfc3339: expected a digit after '.' at byte %zu",
                  c->pos);
    for (; digits < 9; digits++)
        v *= 10;
    *nsec = v;
    return IOTSEC_RESULT_OK;
}

/* "Z" / ("+" / "-") hh ":" mm, as seconds east of UTC. */
static iotsec_result read_offset(struct cursor *c, int *offset)
{
    uint8_t ch;
    IOTSEC_ENSURE(peek(c, &ch), IOTSEC_ERR_TIME,
                  "rfc3339: missing time zone (expected 'Z' or an offset such as +02:00) at "
                  "byte %zu",
                  c->pos);
    if (ch == 'Z' || ch == 'z') {
        c->pos++;
        *offset = 0;
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_ENSURE(ch == '+' || ch == '-', IOTSEC_ERR_TIME,
                  "rfc3339: expected 'Z' or an offset such as +02:00 at byte %zu", c->pos);
    c->pos++;
    int hh, mm;
    IOTSEC_GUARD(read_digits(c, 2, "offset hour", &hh));
    IOTSEC_GUARD(expect_char(c, ':', "in the offset"));
    IOTSEC_GUARD(read_digits(c, 2, "offset minute", &mm));
    IOTSEC_ENSURE(hh <= 23, IOTSEC_ERR_TIME, "rfc3339: offset hour %02d is out of range 00-23", hh);
    IOTSEC_ENSURE(mm <= 59, IOTSEC_ERR_TIME, "rfc3339: offset minute %02d is out of range 00-59",
                  mm);
    *offset = (ch == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_time_parse(struct iotsec_slice text, struct iotsec_time *out)
{
    struct cursor c = {.in = text, .pos = 0};
    int year, month, day, hour, minute, second, offset;
    uint32_t nsec;
    uint8_t ch;

    IOTSEC_ENSURE(text.len > 0, IOTSEC_ERR_TIME, "rfc3339: empty time");
    IOTSEC_GUARD(read_digits(&c, 4, "year", &year));
    IOTSEC_GUARD(expect_char(&c, '-', "after the year"));
    IOTSEC_GUARD(read_digits(&c, 2, "month", &month));
    IOTSEC_GUARD(expect_char(&c, '-', "after the month"));
    IOTSEC_GUARD(read_digits(&c, 2, "day", &day));
    IOTSEC_ENSURE(peek(&c, &ch) && (ch == 'T' || ch == 't'), IOTSEC_ERR_TIME,
                  "rfc3339: expected 'T' between date and time at byte %zu", c.pos);
    c.pos++;
    IOTSEC_GUARD(read_digits(&c, 2, "hour", &hour));
    IOTSEC_GUARD(expect_char(&c, ':', "after the hour"));
    IOTSEC_GUARD(read_digits(&c, 2, "minute", &minute));
    IOTSEC_GUARD(expect_char(&c, ':', "after the minute"));
    IOTSEC_GUARD(read_digits(&c, 2, "second", &second));
    IOTSEC_GUARD(read_fraction(&c, &nsec));
    IOTSEC_GUARD(read_offset(&c, &offset));
    IOTSEC_ENSURE(c.pos == text.len, IOTSEC_ERR_TIME,
                  "rfc3339: %zu unexpected trailing bytes at byte %zu", text.len - c.pos, c.pos);

    /* Syntax first, then meaning: a message about the calendar means the shape was right. */
    IOTSEC_ENSURE(month >= 1 && month <= 12, IOTSEC_ERR_TIME,
                  "rfc3339: month %02d is out of range 01-12", month);
    int mdays = days_in_month(year, month);
    IOTSEC_ENSURE(day >= 1 && day <= mdays, IOTSEC_ERR_TIME,
                  "rfc3339: day %02d is out of range for %04d-%02d (%d days)", day, year, month,
                  mdays);
    IOTSEC_ENSURE(hour <= 23, IOTSEC_ERR_TIME, "rfc3339: hour %02d is out of range 00-23", hour);
    IOTSEC_ENSURE(minute <= 59, IOTSEC_ERR_TIME, "rfc3339: minute %02d is out of range 00-59",
                  minute);
    IOTSEC_ENSURE(second != 60, IOTSEC_ERR_TIME,
                  "rfc3339: leap second (second 60) is not supported");
    IOTSEC_ENSURE(second <= 59, IOTSEC_ERR_TIME, "rfc3339: second %02d is out of range 00-59",
                  second);

    int64_t sec = days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 +
                  second - offset;
    IOTSEC_ENSURE(sec >= IOTSEC_TIME_MIN_SEC && sec <= IOTSEC_TIME_MAX_SEC, IOTSEC_ERR_TIME,
                  "rfc3339: time is outside years 0000-9999 once converted to UTC");
    *out = (struct iotsec_time){.sec = sec, .nsec = nsec};
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_time_format(struct iotsec_time t, enum iotsec_time_precision precision,
                                 char out[IOTSEC_TIME_STR_MAX])
{
    IOTSEC_ENSURE(t.sec >= IOTSEC_TIME_MIN_SEC && t.sec <= IOTSEC_TIME_MAX_SEC, IOTSEC_ERR_TIME,
                  "rfc3339: %lld seconds is outside years 0000-9999", (long long)t.sec);
    IOTSEC_ENSURE(t.nsec < 1000000000u, IOTSEC_ERR_TIME,
                  "rfc3339: %u nanoseconds is not below one second", (unsigned)t.nsec);

    /* Floor division, so that times before 1970 land on the right day. */
    int64_t days = t.sec / SECONDS_PER_DAY;
    int64_t rem = t.sec % SECONDS_PER_DAY;
    if (rem < 0) {
        rem += SECONDS_PER_DAY;
        days--;
    }
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    int hour = (int)(rem / 3600), minute = (int)(rem / 60 % 60), second = (int)(rem % 60);

    int n;
    switch (precision) {
    case IOTSEC_TIME_SECONDS:
        n = snprintf(out, IOTSEC_TIME_STR_MAX, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)year, month,
                     day, hour, minute, second);
        break;
    case IOTSEC_TIME_MILLIS:
        n = snprintf(out, IOTSEC_TIME_STR_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", (int)year,
                     month, day, hour, minute, second, (unsigned)(t.nsec / 1000000u));
        break;
    case IOTSEC_TIME_NANOS:
        n = snprintf(out, IOTSEC_TIME_STR_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%09uZ", (int)year,
                     month, day, hour, minute, second, (unsigned)t.nsec);
        break;
    default:
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "rfc3339: unknown precision %d", (int)precision);
    }
    IOTSEC_ENSURE(n > 0 && n < IOTSEC_TIME_STR_MAX, IOTSEC_ERR_TIME, "rfc3339: format failed");
    return IOTSEC_RESULT_OK;
}

struct iotsec_time iotsec_time_now(void)
{
    struct timespec ts;
    /* CLOCK_REALTIME cannot fail with a valid clock id and pointer (clock_gettime(2)). */
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (struct iotsec_time){.sec = (int64_t)ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec};
}
