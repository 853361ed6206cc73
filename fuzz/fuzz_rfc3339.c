/*
 * Fuzzes the RFC 3339 parser (iotsec_time_parse): timestamps arrive in telemetry, in
 * challenge responses and in firmware manifests.
 *
 * Invariants beyond "no crash": a refusal is IOTSEC_ERR_TIME with a message free of
 * control characters; an accepted time is within the formattable range and below one
 * second of nanoseconds; formatting it at each precision and parsing the result gives
 * the same instant (truncated to that precision); and our calendar agrees with glibc's
 * gmtime_r, an independent implementation, wherever time_t can hold the value.
 */
#include "iotsec/time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(void)
{
    if (iotsec_error_code() != IOTSEC_ERR_TIME)
        abort();
    for (const char *m = iotsec_error_message(); *m != '\0'; m++) {
        if ((unsigned char)*m < 0x20 || *m == 0x7f)
            abort();
    }
}

static void check_round_trip(struct iotsec_time t, enum iotsec_time_precision precision,
                             uint32_t unit)
{
    char text[IOTSEC_TIME_STR_MAX];
    if (!iotsec_ok(iotsec_time_format(t, precision, text)))
        abort();
    struct iotsec_time back;
    if (!iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(text), &back)))
        abort();
    if (back.sec != t.sec || back.nsec != t.nsec - t.nsec % unit)
        abort();
}

static void check_against_gmtime(struct iotsec_time t)
{
    time_t tt = (time_t)t.sec;
    struct tm tm;
    if ((int64_t)tt != t.sec || gmtime_r(&tt, &tm) == NULL)
        return;
    char want[64], got[IOTSEC_TIME_STR_MAX];
    if (strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return;
    if (tm.tm_year + 1900 < 1000) /* glibc does not zero-pad years below 1000 */
        return;
    if (!iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_SECONDS, got)) || strcmp(want, got) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct iotsec_time t;
    if (!iotsec_ok(iotsec_time_parse(iotsec_slice_make(data, size), &t))) {
        check_message();
        return 0;
    }
    if (t.sec < IOTSEC_TIME_MIN_SEC || t.sec > IOTSEC_TIME_MAX_SEC || t.nsec >= 1000000000u)
        abort();
    check_round_trip(t, IOTSEC_TIME_NANOS, 1);
    check_round_trip(t, IOTSEC_TIME_MILLIS, 1000000);
    check_round_trip(t, IOTSEC_TIME_SECONDS, 1000000000);
    check_against_gmtime(t);
    return 0;
}
