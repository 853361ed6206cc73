/*
 * The monitor: what servers call with every security-relevant decision, and ask before
 * serving a connection (docs/events.md).
 *
 *   iotsec_monitor_report(m, &ev, NULL)
 *       1. appends the event to the hash-chained log (iotsec/eventlog.h);
 *       2. writes the stored record to every sink (iotsec/sink.h);
 *       3. for auth_failure: feeds the brute-force detector (iotsec/bruteforce.h); when a
 *          device or a source address trips, appends brute_force_detected (high) and
 *          blocks the source address for block_ms (IOTSEC_STORE_BLOCK_EXTEND: an
 *          operator's longer block is never shortened). While a device is under attack
 *          (it tripped within the window), every source that fails against it is
 *          blocked too, so spreading guesses over many addresses gains one attempt per
 *          address. The device itself is blocked only when block_device is set, since
 *          blocking "device:<id>" lets an attacker lock a real device out.
 *   iotsec_monitor_is_blocked(m, ip, device, now, ...)
 *       one indexed store lookup per given key; the servers call it per connection.
 *
 * The event's own time is the detector's clock (the library reads none). Failures are
 * reported in order: the log append failing fails the report (nothing else happens); a
 * sink failing does not (the event is safe in the log) but is counted in the stats and
 * its message kept in last_sink_error.
 *
 * Thread-safe: a mutex serialises the store handle and the sinks (a store handle is for
 * one thread at a time). The monitor borrows the store and owns the sinks added to it.
 */
#ifndef IOTSEC_MONITOR_H
#define IOTSEC_MONITOR_H

#include "iotsec/bruteforce.h"
#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/event.h"
#include "iotsec/sink.h"
#include "iotsec/store.h"

#include <stdbool.h>
#include <stdint.h>

#define IOTSEC_MONITOR_DEFAULT_BLOCK_MS ((int64_t)15 * 60 * 1000)
#define IOTSEC_MONITOR_MAX_SINKS        8
/* The longest block a duration can ask for: ten years. Longer is "permanent". */
#define IOTSEC_MONITOR_DURATION_MAX_MS ((int64_t)3650 * 24 * 3600 * 1000)

struct iotsec_monitor_config {
    struct iotsec_bruteforce_config bruteforce; /* zero fields: the detector's defaults */
    int64_t block_ms;                           /* 0: IOTSEC_MONITOR_DEFAULT_BLOCK_MS */
    bool block_device;                          /* also block "device:<id>" on detection */
};

/* What a report led to (optional out-parameter). */
struct iotsec_monitor_outcome {
    int64_t seq;               /* the reported event's record */
    bool brute_force_detected; /* a brute_force_detected event was appended */
    bool source_blocked;       /* the event's source address was blocked */
    bool device_blocked;       /* "device:<id>" was blocked */
    unsigned sink_failures;    /* sinks that failed for this event */
};

struct iotsec_monitor_stats {
    uint64_t reported;
    uint64_t detections;
    uint64_t blocks;
    uint64_t sink_failures;
    char last_sink_error[256];
    struct iotsec_bruteforce_stats bruteforce;
};

struct iotsec_monitor;

IOTSEC_MUST_CHECK iotsec_result iotsec_monitor_new(struct iotsec_store *store,
                                                   const struct iotsec_monitor_config *config,
                                                   struct iotsec_monitor **out);
/* Closes the sinks; the store stays open (it is the caller's). */
void iotsec_monitor_free(struct iotsec_monitor *m);

/* The monitor owns the sink from now on, also when this fails (at most
 * IOTSEC_MONITOR_MAX_SINKS). */
IOTSEC_MUST_CHECK iotsec_result iotsec_monitor_add_sink(struct iotsec_monitor *m,
                                                        struct iotsec_sink *sink);

IOTSEC_MUST_CHECK iotsec_result iotsec_monitor_report(struct iotsec_monitor *m,
                                                      const struct iotsec_event *ev,
                                                      struct iotsec_monitor_outcome *out);

/* *blocked when source_ip (any spelling) or "device:<device_id>" has a block in force at
 * now. Either may be NULL or "". which (may be NULL) receives the block found. A value
 * that is not an address or a device id is IOTSEC_ERR_INVALID_ARG: callers must refuse
 * the connection then, as for a block. */
IOTSEC_MUST_CHECK iotsec_result iotsec_monitor_is_blocked(struct iotsec_monitor *m,
                                                          const char *source_ip,
                                                          const char *device_id, int64_t now,
                                                          bool *blocked,
                                                          struct iotsec_store_block *which);

/* An operator's block: put (REPLACE: the operator's word is final) and a block_added
 * event, in one transaction. expires_at 0 is permanent. actor names who did it in the
 * event's details ("cli"). stored (may be NULL) receives the block as stored, its source
 * in canonical form. */
IOTSEC_MUST_CHECK iotsec_result iotsec_monitor_block(struct iotsec_monitor *m, const char *source,
                                                     int64_t now, int64_t expires_at,
                                                     const char *reason, const char *actor,
                                                     struct iotsec_store_block *stored);
/* Lifts a block and records block_removed, in one transaction. NOT_FOUND when none. */
IOTSEC_MUST_CHECK iotsec_result iotsec_monitor_unblock(struct iotsec_monitor *m, const char *source,
                                                       int64_t now, const char *actor);

void iotsec_monitor_get_stats(struct iotsec_monitor *m, struct iotsec_monitor_stats *out);

/* Durations for blocks: a positive decimal count and a unit, s, m, h or d ("15m", "2h",
 * "7d"), at most IOTSEC_MONITOR_DURATION_MAX_MS; or "permanent" (*ms = 0). Nothing else:
 * no spaces, signs, fractions or combined units. IOTSEC_ERR_INVALID_ARG with the reason. */
IOTSEC_MUST_CHECK iotsec_result iotsec_monitor_duration_parse(struct iotsec_slice text,
                                                              int64_t *ms);

#endif
