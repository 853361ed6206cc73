/*
 * RFC 3339 timestamps: parsing what devices and clients send, formatting what we send.
 *
 * A time is Unix seconds (UTC, int64) plus nanoseconds. Parsing is strict, because a
 * timestamp decides whether telemetry is accepted (not in the future beyond a skew) and
 * when a challenge or token expires; there is one accepted grammar (RFC 3339 section 5.6):
 *
 *     YYYY-MM-DD "T" hh:mm:ss [ "." 1-9 digits ] ( "Z" | ("+" / "-") hh:mm )
 *
 * - 't' and 'z' may be lowercase (the note in section 5.6); a space instead of 'T' is not.
 * - Fractional seconds keep up to 9 digits (nanoseconds); more digits are rejected rather
 *   than silently rounded.
 * - Numeric offsets (00:00..23:59, "-00:00" included) are applied, so the result is UTC.
 * - The calendar is checked: month 01-12, the day within the month (leap years by the
 *   Gregorian rule), hour 00-23, minute and second 00-59.
 * - Leap seconds (second 60) are rejected: Unix time cannot represent them, and mapping
 *   them onto a neighbouring second would let two distinct inputs mean the same time.
 * - The UTC result must lie in years 0000-9999, so that every parsed time can be
 *   formatted again; trailing bytes are rejected.
 * Every failure is IOTSEC_ERR_TIME with a message saying what is wrong ("rfc3339: day 31
 * is out of range for 2026-04 (30 days)").
 *
 * The calendar arithmetic is our own (days from civil date), so neither parsing nor
 * formatting depends on the TZ environment, the C library's timegm, or locale.
 */
#ifndef IOTSEC_TIME_H
#define IOTSEC_TIME_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <stdint.h>

struct iotsec_time {
    int64_t sec;   /* seconds since 1970-01-01T00:00:00Z */
    uint32_t nsec; /* 0..999999999 */
};

/* The range that RFC 3339's four-digit years can express. */
#define IOTSEC_TIME_MIN_SEC ((int64_t)-62167219200) /* 0000-01-01T00:00:00Z */
#define IOTSEC_TIME_MAX_SEC ((int64_t)253402300799) /* 9999-12-31T23:59:59Z */

enum iotsec_time_precision {
    IOTSEC_TIME_SECONDS, /* 2026-11-25T07:14:28Z */
    IOTSEC_TIME_MILLIS,  /* 2026-11-25T07:14:28.123Z (truncated, not rounded) */
    IOTSEC_TIME_NANOS,   /* 2026-11-25T07:14:28.123456789Z */
};

/* Room for the longest format plus its NUL. */
#define IOTSEC_TIME_STR_MAX 32

IOTSEC_MUST_CHECK iotsec_result iotsec_time_parse(struct iotsec_slice text,
                                                  struct iotsec_time *out);

/* Writes a NUL-terminated UTC timestamp ending in 'Z'. Fails with IOTSEC_ERR_TIME when t
 * is outside IOTSEC_TIME_MIN_SEC..IOTSEC_TIME_MAX_SEC or nsec is not below 10^9. */
IOTSEC_MUST_CHECK iotsec_result iotsec_time_format(struct iotsec_time t,
                                                   enum iotsec_time_precision precision,
                                                   char out[IOTSEC_TIME_STR_MAX]);

/* The wall-clock time (CLOCK_REALTIME). */
struct iotsec_time iotsec_time_now(void);

#endif
