/*
 * Security events: the model every security-relevant decision is reported in
 * (docs/events.md).
 *
 * An event says when (Unix ms), what (a type from the table below), how bad (severity
 * low|medium|high|critical), about which device (may be empty), from which network
 * address (may be empty) and details (a JSON object). Its wire form is DESIGN.md's
 * contract, one JSON object with exactly these members:
 *
 *   {"timestamp":"2026-11-25T07:14:28.123Z","eventType":"auth_failure","severity":"medium",
 *    "deviceId":"dev-1","sourceIp":"198.51.100.7","details":{"reason":"bad signature"}}
 *
 * An absent device or address is written as null and read from null or "".
 *
 * Types are a closed list: the parser refuses names it does not know, so a misspelt type
 * cannot slip past a filter. Each type has a default severity that reporters use unless
 * they know better (a tamper attempt is always critical).
 *
 * Events are stored through the store (iotsec/store.h) as `struct iotsec_store_event`,
 * whose severity enumeration this module shares; see iotsec/eventlog.h for the chain.
 */
#ifndef IOTSEC_EVENT_H
#define IOTSEC_EVENT_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/store.h"

#include <stdint.h>

#define IOTSEC_EVENT_JSON_MAX ((size_t)IOTSEC_STORE_DETAILS_MAX + 1024)

enum iotsec_event_type {
    IOTSEC_EVENT_AUTH_FAILURE = 1,     /* a credential was refused (medium) */
    IOTSEC_EVENT_BRUTE_FORCE_DETECTED, /* too many auth failures (high) */
    IOTSEC_EVENT_TAMPER_ATTEMPT,       /* integrity of the platform or a device (critical) */
    IOTSEC_EVENT_FIRMWARE_REJECTED,    /* signature, hash, size, model or version (high) */
    IOTSEC_EVENT_RATE_LIMITED,         /* a request was refused with 429 (low) */
    IOTSEC_EVENT_VALIDATION_FAILED,    /* input refused by a schema (low) */
    IOTSEC_EVENT_DEVICE_REVOKED,       /* (medium) */
    IOTSEC_EVENT_DEVICE_DISABLED,      /* (medium) */
    IOTSEC_EVENT_BLOCK_ADDED,          /* a source was blocked (medium) */
    IOTSEC_EVENT_BLOCK_REMOVED,        /* a block was lifted by an operator (medium) */
    IOTSEC_EVENT_BLOCKED_REQUEST,      /* a blocked source tried to connect (low) */
    IOTSEC_EVENT_ANOMALY_DETECTED,     /* telemetry out of its usual range (medium) */
};
#define IOTSEC_EVENT_TYPE_FIRST IOTSEC_EVENT_AUTH_FAILURE
#define IOTSEC_EVENT_TYPE_LAST  IOTSEC_EVENT_ANOMALY_DETECTED

/* An event as a reporter builds it. Strings are borrowed for the call; details is the
 * text of a JSON object, NULL meaning {}. */
struct iotsec_event {
    int64_t ts; /* Unix milliseconds, >= 0 */
    enum iotsec_event_type type;
    enum iotsec_store_severity severity; /* 0: the type's default */
    const char *device_id;               /* NULL or "": none */
    const char *source_ip;               /* NULL or "": none; any spelling, stored canonical */
    const char *details;
};

/* "auth_failure", ...; NULL for a value out of range. */
const char *iotsec_event_type_name(enum iotsec_event_type type);
/* The inverse; IOTSEC_ERR_INVALID_ARG naming the accepted words otherwise. */
IOTSEC_MUST_CHECK iotsec_result iotsec_event_type_parse(const char *name,
                                                        enum iotsec_event_type *out);
enum iotsec_store_severity iotsec_event_default_severity(enum iotsec_event_type type);

/* Fills a store record from ev (type name, the default severity when ev's is 0, empty
 * strings for NULL). IOTSEC_ERR_INVALID_ARG for an unknown type or severity, a negative
 * time or a string longer than its field; the store checks characters on append.
 * rec->details borrows ev->details. */
IOTSEC_MUST_CHECK iotsec_result iotsec_event_to_record(const struct iotsec_event *ev,
                                                       struct iotsec_store_event *rec);

/* Appends the DESIGN.md JSON form of a stored record (no newline), ASCII only (non-ASCII
 * characters are \u-escaped, so the text is safe for any transport). Details that are not
 * a JSON object (a tampered store) are written as {"unparsable":true}. */
IOTSEC_MUST_CHECK iotsec_result iotsec_event_record_to_json(const struct iotsec_store_event *rec,
                                                            struct iotsec_buf *out);

/* Parses the JSON form strictly (no unknown or duplicate members, a known type and
 * severity, an RFC 3339 timestamp, details an object, at most IOTSEC_EVENT_JSON_MAX
 * bytes). rec is filled (seq and hashes zero); rec->details is allocated and released
 * with iotsec_store_event_clear(). Errors are IOTSEC_ERR_JSON, IOTSEC_ERR_TIME,
 * IOTSEC_ERR_INVALID_ARG or IOTSEC_ERR_TOO_LARGE naming the member. */
IOTSEC_MUST_CHECK iotsec_result iotsec_event_record_from_json(struct iotsec_slice text,
                                                              struct iotsec_store_event *rec);

#endif
