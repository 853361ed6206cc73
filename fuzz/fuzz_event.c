/*
 * Fuzzes the monitor's parsers: the event JSON form (iotsec_event_record_from_json),
 * block durations (iotsec_monitor_duration_parse) and event log heads
 * (iotsec_eventlog_head_parse). The first byte picks the parser; the rest is the input.
 *
 * Invariants beyond "no crash": an accepted event writes back to JSON that parses to
 * the same record (a fixed point after one round); an accepted duration is 0
 * (permanent) or within 1 s .. IOTSEC_MONITOR_DURATION_MAX_MS and a whole number of
 * seconds; an accepted head formats back to the same head.
 */
#include "iotsec/event.h"
#include "iotsec/eventlog.h"
#include "iotsec/monitor.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void event_round_trip(struct iotsec_slice in)
{
    struct iotsec_store_event a, b;
    if (!iotsec_ok(iotsec_event_record_from_json(in, &a)))
        return;
    struct iotsec_buf out = {0};
    if (!iotsec_ok(iotsec_event_record_to_json(&a, &out)) ||
        !iotsec_ok(iotsec_event_record_from_json(iotsec_buf_slice(&out), &b)))
        abort();
    if (a.ts != b.ts || a.severity != b.severity || strcmp(a.event_type, b.event_type) != 0 ||
        strcmp(a.device_id, b.device_id) != 0 || strcmp(a.source_ip, b.source_ip) != 0 ||
        strcmp(a.details, b.details) != 0)
        abort();
    iotsec_store_event_clear(&a);
    iotsec_store_event_clear(&b);
    iotsec_buf_free(&out);
}

static void duration(struct iotsec_slice in)
{
    int64_t ms;
    if (!iotsec_ok(iotsec_monitor_duration_parse(in, &ms)))
        return;
    if (ms != 0 && (ms < 1000 || ms > IOTSEC_MONITOR_DURATION_MAX_MS || ms % 1000 != 0))
        abort();
}

static void head(const uint8_t *data, size_t size)
{
    char text[128];
    if (size >= sizeof(text))
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    struct iotsec_eventlog_head h, back;
    if (!iotsec_ok(iotsec_eventlog_head_parse(text, &h)))
        return;
    char out[IOTSEC_EVENTLOG_HEAD_STR_MAX];
    iotsec_eventlog_head_format(&h, out);
    if (!iotsec_ok(iotsec_eventlog_head_parse(out, &back)) || back.seq != h.seq ||
        memcmp(back.hash, h.hash, sizeof(h.hash)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct iotsec_slice rest = iotsec_slice_make(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        event_round_trip(rest);
        break;
    case 1:
        duration(rest);
        break;
    default:
        head(data + 1, size - 1);
        break;
    }
    return 0;
}
