/*
 * Validation of the device-facing request bodies of the wire contract (docs/DESIGN.md,
 * "Wire contracts"): telemetry and commands.
 *
 * Clients written for the reference design expect a 400 whose body lists EVERY failing
 * field, not just the first, so a validator here does not stop at the first error: it
 * collects details {"code","path","message"} into a JSON array, which
 * iotsec_schema_error_body() wraps as {"error":"Validation failed","details":[...]}.
 *
 * - "path" is an array of member names from the top level (["payload","confirm"]), the
 *   reference design's shape; [] means the body as a whole.
 * - "code" is one of: "too_big_body" (over max_body_bytes; checked before parsing),
 *   "invalid_json" (refused by iotsec_json_parse: syntax, duplicate keys, trailing bytes,
 *   depth, invalid UTF-8, numbers beyond range; JSON has no NaN), "invalid_type" (wrong
 *   JSON type; null is a wrong type, not absence), "required", "too_small", "too_big",
 *   "invalid_string" (a string outside its grammar), "invalid_enum_value",
 *   "invalid_date" (not RFC 3339, or not UTC), "future_date" (beyond the skew),
 *   "unrecognized_keys" (a member the schema does not name) and "custom" (the reset rule).
 * - "message" is plain text for people; clients should branch on "code" and "path". It
 *   names schema fields, not client-chosen ones (an unknown member's name is only in the
 *   path), except that a parse error may quote a duplicate key, escaped by the parser.
 *
 * Unknown members are rejected at the top level of both bodies, so that a misspelt
 * optional field ("temprature") is an error rather than silently dropped. A command's
 * "payload" is free-form (its shape depends on the action), so members inside it are not
 * checked, except payload.confirm for reset.
 *
 * Timestamps must be UTC: a 'Z' (or 'z') suffix, or the offset +00:00 / -00:00. A local
 * offset is refused rather than converted, as the contract says UTC and a device sending
 * local time has a clock configuration problem worth surfacing.
 */
#ifndef IOTSEC_SCHEMA_H
#define IOTSEC_SCHEMA_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/time.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define IOTSEC_SCHEMA_DEFAULT_MAX_BODY_BYTES ((size_t)16 * 1024)
#define IOTSEC_SCHEMA_DEFAULT_MAX_SKEW_SEC   60
#define IOTSEC_SCHEMA_ID_MAX                 64

/* A zero field means its default; pass NULL for all defaults. */
struct iotsec_schema_options {
    size_t max_body_bytes; /* bodies larger than this are refused before parsing */
    int64_t max_skew_sec;  /* how far in the future a telemetry timestamp may be */
};

/*
 * Both validators parse body strictly and check it against the schema at time now.
 *
 * Valid: returns OK, *details_out is NULL, and *doc_out (if doc_out is not NULL) is the
 * parsed document, a new reference for the caller.
 * Invalid: fails with IOTSEC_ERR_FORMAT ("schema: telemetry: 3 fields failed
 * validation"), *doc_out is NULL, and *details_out is a new JSON array of details (never
 * empty) for the caller to release.
 * Other failures (out of memory, bad arguments): another error code, both outputs NULL.
 */
IOTSEC_MUST_CHECK iotsec_result iotsec_schema_telemetry(struct iotsec_slice body,
                                                        const struct iotsec_schema_options *options,
                                                        struct iotsec_time now, json_t **doc_out,
                                                        json_t **details_out);

IOTSEC_MUST_CHECK iotsec_result iotsec_schema_command(struct iotsec_slice body,
                                                      const struct iotsec_schema_options *options,
                                                      struct iotsec_time now, json_t **doc_out,
                                                      json_t **details_out);

/* {"error":"Validation failed","details":details}, a new reference (details is borrowed
 * and shared, not copied), or NULL when out of memory. */
json_t *iotsec_schema_error_body(json_t *details);

#endif
