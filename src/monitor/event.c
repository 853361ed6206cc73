/*
 * The security event model: type names, default severities, and the DESIGN.md JSON form
 * (see include/iotsec/event.h).
 *
 * JSON is built with jansson rather than by hand so that escaping is never ours to get
 * wrong, and dumped with JSON_ENSURE_ASCII so that one line is one line on every
 * transport (a syslog receiver that mangles UTF-8 still gets the bytes right).
 */
#include "iotsec/event.h"

#include "iotsec/json.h"
#include "iotsec/time.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    enum iotsec_store_severity severity;
} event_types[] = {
    [IOTSEC_EVENT_AUTH_FAILURE] = {"auth_failure", IOTSEC_STORE_SEVERITY_MEDIUM},
    [IOTSEC_EVENT_BRUTE_FORCE_DETECTED] = {"brute_force_detected", IOTSEC_STORE_SEVERITY_HIGH},
    [IOTSEC_EVENT_TAMPER_ATTEMPT] = {"tamper_attempt", IOTSEC_STORE_SEVERITY_CRITICAL},
    [IOTSEC_EVENT_FIRMWARE_REJECTED] = {"firmware_rejected", IOTSEC_STORE_SEVERITY_HIGH},
    [IOTSEC_EVENT_RATE_LIMITED] = {"rate_limited", IOTSEC_STORE_SEVERITY_LOW},
    [IOTSEC_EVENT_VALIDATION_FAILED] = {"validation_failed", IOTSEC_STORE_SEVERITY_LOW},
    [IOTSEC_EVENT_DEVICE_REVOKED] = {"device_revoked", IOTSEC_STORE_SEVERITY_MEDIUM},
    [IOTSEC_EVENT_DEVICE_DISABLED] = {"device_disabled", IOTSEC_STORE_SEVERITY_MEDIUM},
    [IOTSEC_EVENT_BLOCK_ADDED] = {"block_added", IOTSEC_STORE_SEVERITY_MEDIUM},
    [IOTSEC_EVENT_BLOCK_REMOVED] = {"block_removed", IOTSEC_STORE_SEVERITY_MEDIUM},
    [IOTSEC_EVENT_BLOCKED_REQUEST] = {"blocked_request", IOTSEC_STORE_SEVERITY_LOW},
    [IOTSEC_EVENT_ANOMALY_DETECTED] = {"anomaly_detected", IOTSEC_STORE_SEVERITY_MEDIUM},
};

static bool type_valid(enum iotsec_event_type type)
{
    return type >= IOTSEC_EVENT_TYPE_FIRST && type <= IOTSEC_EVENT_TYPE_LAST;
}

const char *iotsec_event_type_name(enum iotsec_event_type type)
{
    return type_valid(type) ? event_types[type].name : NULL;
}

enum iotsec_store_severity iotsec_event_default_severity(enum iotsec_event_type type)
{
    return type_valid(type) ? event_types[type].severity : IOTSEC_STORE_SEVERITY_ANY;
}

iotsec_result iotsec_event_type_parse(const char *name, enum iotsec_event_type *out)
{
    IOTSEC_ENSURE(name != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "event: no type");
    for (int t = IOTSEC_EVENT_TYPE_FIRST; t <= IOTSEC_EVENT_TYPE_LAST; t++) {
        if (strcmp(name, event_types[t].name) == 0) {
            *out = (enum iotsec_event_type)t;
            return IOTSEC_RESULT_OK;
        }
    }
    IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG,
                "event: unknown type '%.64s' (expected one of auth_failure, "
                "brute_force_detected, tamper_attempt, firmware_rejected, rate_limited, "
                "validation_failed, device_revoked, device_disabled, block_added, "
                "block_removed, blocked_request, anomaly_detected)",
                name);
}

static iotsec_result copy_field(const char *what, const char *src, char *dst, size_t size)
{
    if (src == NULL)
        src = "";
    size_t len = strlen(src);
    IOTSEC_ENSURE(len < size, IOTSEC_ERR_INVALID_ARG, "event: %s is longer than %zu characters",
                  what, size - 1);
    memcpy(dst, src, len + 1);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_event_to_record(const struct iotsec_event *ev, struct iotsec_store_event *rec)
{
    IOTSEC_ENSURE(ev != NULL && rec != NULL, IOTSEC_ERR_INVALID_ARG, "event: no event");
    memset(rec, 0, sizeof(*rec));
    IOTSEC_ENSURE(type_valid(ev->type), IOTSEC_ERR_INVALID_ARG, "event: type %d is unknown",
                  (int)ev->type);
    enum iotsec_store_severity sev =
        ev->severity == IOTSEC_STORE_SEVERITY_ANY ? event_types[ev->type].severity : ev->severity;
    IOTSEC_ENSURE(sev >= IOTSEC_STORE_SEVERITY_LOW && sev <= IOTSEC_STORE_SEVERITY_CRITICAL,
                  IOTSEC_ERR_INVALID_ARG, "event: severity %d is out of range", (int)sev);
    IOTSEC_ENSURE(ev->ts >= 0, IOTSEC_ERR_INVALID_ARG, "event: negative timestamp");
    rec->ts = ev->ts;
    rec->severity = sev;
    IOTSEC_GUARD(
        copy_field("type", event_types[ev->type].name, rec->event_type, sizeof(rec->event_type)));
    IOTSEC_GUARD(copy_field("device id", ev->device_id, rec->device_id, sizeof(rec->device_id)));
    IOTSEC_GUARD(
        copy_field("source address", ev->source_ip, rec->source_ip, sizeof(rec->source_ip)));
    rec->details = (char *)(uintptr_t)ev->details; /* borrowed; the store only reads it */
    return IOTSEC_RESULT_OK;
}

static json_t *string_or_null(const char *s)
{
    return s[0] == '\0' ? json_null() : json_string(s);
}

static void json_cleanup(json_t **j)
{
    json_decref(*j);
}

static void str_cleanup(char **s)
{
    free(*s);
}

iotsec_result iotsec_event_record_to_json(const struct iotsec_store_event *rec,
                                          struct iotsec_buf *out)
{
    IOTSEC_ENSURE(rec != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "event: no record");
    char ts[IOTSEC_TIME_STR_MAX];
    struct iotsec_time t = {.sec = rec->ts / 1000, .nsec = (uint32_t)(rec->ts % 1000) * 1000000u};
    IOTSEC_ENSURE(rec->ts >= 0, IOTSEC_ERR_TIME, "event %lld: negative timestamp",
                  (long long)rec->seq);
    IOTSEC_GUARD(iotsec_time_format(t, IOTSEC_TIME_MILLIS, ts));
    const char *sev = iotsec_store_severity_name(rec->severity);
    IOTSEC_ENSURE(sev != NULL, IOTSEC_ERR_INVALID_ARG, "event %lld: severity %d is out of range",
                  (long long)rec->seq, (int)rec->severity);

    json_t *details IOTSEC_DEFER(json_cleanup) = NULL;
    const char *text = rec->details != NULL ? rec->details : "{}";
    if (!iotsec_ok(iotsec_json_parse(iotsec_slice_from_str(text), NULL, &details)) ||
        !json_is_object(details)) {
        json_decref(details);
        details = json_pack("{s:b}", "unparsable", 1);
    }
    iotsec_error_clear();
    json_t *obj IOTSEC_DEFER(json_cleanup) = json_object();
    IOTSEC_ENSURE_ALLOC(obj);
    IOTSEC_ENSURE_ALLOC(details);
    /* Insertion order is the contract's order, which keeps lines easy to read. */
    bool ok = json_object_set_new(obj, "timestamp", json_string(ts)) == 0 &&
              json_object_set_new(obj, "eventType", json_string(rec->event_type)) == 0 &&
              json_object_set_new(obj, "severity", json_string(sev)) == 0 &&
              json_object_set_new(obj, "deviceId", string_or_null(rec->device_id)) == 0 &&
              json_object_set_new(obj, "sourceIp", string_or_null(rec->source_ip)) == 0 &&
              json_object_set(obj, "details", details) == 0;
    IOTSEC_ENSURE(ok, IOTSEC_ERR_NOMEM, "event: out of memory building JSON");
    char *s IOTSEC_DEFER(str_cleanup) = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    IOTSEC_ENSURE_ALLOC(s);
    return iotsec_buf_append_str(out, s);
}

/* deviceId / sourceIp: a string, "" or null (absent is the same as null). */
static iotsec_result optional_text(const json_t *obj, const char *key, char *dst, size_t size)
{
    const json_t *v = json_object_get(obj, key);
    dst[0] = '\0';
    if (v == NULL || json_is_null(v))
        return IOTSEC_RESULT_OK;
    const char *s;
    IOTSEC_GUARD(iotsec_json_get_string(obj, key, IOTSEC_JSON_REQUIRED, size - 1, &s));
    memcpy(dst, s, strlen(s) + 1);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_event_record_from_json(struct iotsec_slice text,
                                            struct iotsec_store_event *rec)
{
    IOTSEC_ENSURE(rec != NULL, IOTSEC_ERR_INVALID_ARG, "event: no record");
    memset(rec, 0, sizeof(*rec));
    struct iotsec_json_limits limits = {.max_bytes = IOTSEC_EVENT_JSON_MAX, .max_depth = 16};
    json_t *doc IOTSEC_DEFER(json_cleanup) = NULL;
    IOTSEC_GUARD(iotsec_json_parse(text, &limits, &doc));
    static const char *const allowed[] = {"timestamp", "eventType", "severity", "deviceId",
                                          "sourceIp",  "details",   NULL};
    IOTSEC_GUARD(iotsec_json_reject_unknown(doc, allowed));

    const char *s;
    IOTSEC_GUARD(iotsec_json_get_string(doc, "timestamp", IOTSEC_JSON_REQUIRED, 64, &s));
    struct iotsec_time t;
    IOTSEC_GUARD(iotsec_time_parse(iotsec_slice_from_str(s), &t));
    IOTSEC_ENSURE(t.sec >= 0 && t.sec <= INT64_MAX / 1000 - 1, IOTSEC_ERR_TIME,
                  "event: timestamp before 1970");
    rec->ts = t.sec * 1000 + t.nsec / 1000000;

    enum iotsec_event_type type;
    IOTSEC_GUARD(iotsec_json_get_string(doc, "eventType", IOTSEC_JSON_REQUIRED,
                                        IOTSEC_STORE_EVENT_TYPE_MAX, &s));
    IOTSEC_GUARD(iotsec_event_type_parse(s, &type));
    memcpy(rec->event_type, s, strlen(s) + 1);
    IOTSEC_GUARD(iotsec_json_get_string(doc, "severity", IOTSEC_JSON_REQUIRED, 16, &s));
    IOTSEC_GUARD(iotsec_store_severity_parse(s, &rec->severity));
    IOTSEC_GUARD(optional_text(doc, "deviceId", rec->device_id, sizeof(rec->device_id)));
    IOTSEC_GUARD(optional_text(doc, "sourceIp", rec->source_ip, sizeof(rec->source_ip)));

    json_t *details = NULL;
    IOTSEC_GUARD(iotsec_json_get_object(doc, "details", IOTSEC_JSON_OPTIONAL, &details));
    struct iotsec_buf b = {0};
    iotsec_buf_set_max(&b, IOTSEC_STORE_DETAILS_MAX + 1);
    iotsec_result r =
        details != NULL ? iotsec_json_dump(details, 0, &b) : iotsec_buf_append_str(&b, "{}");
    if (iotsec_ok(r) && b.len > IOTSEC_STORE_DETAILS_MAX) {
        iotsec_error_set(IOTSEC_ERR_TOO_LARGE, "event: details exceed %d bytes",
                         IOTSEC_STORE_DETAILS_MAX);
        r = IOTSEC_RESULT_ERR;
    }
    if (iotsec_ok(r))
        r = iotsec_buf_terminate(&b);
    if (!iotsec_ok(r)) {
        iotsec_buf_free(&b);
        return r;
    }
    rec->details = (char *)b.ptr; /* released by iotsec_store_event_clear (free) */
    return IOTSEC_RESULT_OK;
}
