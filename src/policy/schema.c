/*
 * Telemetry and command body validation (contract in include/iotsec/schema.h).
 *
 * Field checks go through the strict JSON getters, so type and range rules are the same
 * everywhere in iotsec; what this file adds is collecting every failure instead of
 * returning at the first, and naming each one with a stable code and a path. A getter's
 * failure is classified by looking at the member (absent, wrong type, out of range), and
 * its message is kept minus the "json: " prefix, which means nothing to an API client.
 */
#include "iotsec/schema.h"

#include "iotsec/json.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Collected details. Out of memory while reporting is remembered and reported once, so
 * that a validator never claims a body is valid because it could not record why not. */
struct collector {
    json_t *details;
    bool nomem;
};

static void add_detail(struct collector *c, const char *code, const char *path0, const char *path1,
                       const char *message)
{
    json_t *path = json_array();
    json_t *d = json_object();
    bool ok = path != NULL && d != NULL;
    if (ok && path0 != NULL)
        ok = json_array_append_new(path, json_string(path0)) == 0;
    if (ok && path1 != NULL)
        ok = json_array_append_new(path, json_string(path1)) == 0;
    /* Messages come from our own code and the parser, which escapes what it quotes; a
     * message that is somehow not valid UTF-8 still yields a detail, with a fixed text. */
    json_t *m = json_string(message);
    if (m == NULL)
        m = json_string("invalid value");
    ok = ok && json_object_set_new(d, "code", json_string(code)) == 0 &&
         json_object_set_new(d, "path", path) == 0 && json_object_set_new(d, "message", m) == 0;
    path = NULL;
    if (!ok || json_array_append_new(c->details, d) != 0)
        c->nomem = true;
    json_decref(path);
}

/* The last error's message without the module prefix that the getters add. */
static const char *error_text(void)
{
    const char *m = iotsec_error_message();
    if (strncmp(m, "json: ", 6) == 0)
        return m + 6;
    return m;
}

/* The code for a getter's failure on obj[key]; range_code when the type was right. */
static const char *classify(const json_t *obj, const char *key, bool type_ok_fn(const json_t *),
                            const char *range_code)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return "required";
    if (!type_ok_fn(v))
        return "invalid_type";
    return range_code;
}

static bool is_string(const json_t *v)
{
    return json_is_string(v);
}
static bool is_number(const json_t *v)
{
    return json_is_number(v);
}
static bool is_object(const json_t *v)
{
    return json_is_object(v);
}

/* A string member; *out stays NULL when absent or failing. */
static void check_string(struct collector *c, const json_t *obj, const char *key,
                         enum iotsec_json_presence presence, size_t max_len, const char **out)
{
    *out = NULL;
    if (!iotsec_ok(iotsec_json_get_string(obj, key, presence, max_len, out))) {
        *out = NULL;
        add_detail(c, classify(obj, key, is_string, "too_big"), key, NULL, error_text());
    }
}

static void check_number(struct collector *c, const json_t *obj, const char *key, double min,
                         double max)
{
    double x = 0;
    if (iotsec_ok(iotsec_json_get_number(obj, key, IOTSEC_JSON_OPTIONAL, min, max, &x)))
        return;
    const json_t *v = json_object_get(obj, key);
    const char *range =
        v != NULL && json_is_number(v) && json_number_value(v) < min ? "too_small" : "too_big";
    add_detail(c, classify(obj, key, is_number, range), key, NULL, error_text());
}

/* Every top-level member not in allowed, each reported (iotsec_json_reject_unknown stops at
 * the first; the contract wants all). The name is in the path, not the message. */
static void check_unknown(struct collector *c, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)(uintptr_t)obj, key, member)
    {
        bool known = false;
        for (const char *const *a = allowed; *a != NULL && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known)
            add_detail(c, "unrecognized_keys", key, NULL, "unknown field");
    }
}

static bool is_id_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* Size bound, strict parse, object at the top. Returns the document or NULL (with a
 * detail recorded, or nomem set). */
static json_t *parse_body(struct collector *c, struct iotsec_slice body, size_t max_bytes)
{
    if (body.len > max_bytes) {
        char msg[96];
        snprintf(msg, sizeof(msg), "body is %zu bytes, the limit is %zu", body.len, max_bytes);
        add_detail(c, "too_big_body", NULL, NULL, msg);
        return NULL;
    }
    struct iotsec_json_limits limits = {.max_bytes = max_bytes};
    json_t *doc = NULL;
    if (!iotsec_ok(iotsec_json_parse(body, &limits, &doc))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOMEM)
            c->nomem = true;
        else
            add_detail(c, "invalid_json", NULL, NULL, error_text());
        return NULL;
    }
    if (!json_is_object(doc)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "expected an object, got %s", iotsec_json_type_name(doc));
        add_detail(c, "invalid_type", NULL, NULL, msg);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static iotsec_result finish(struct collector *c, const char *what, json_t *doc, json_t **doc_out,
                            json_t **details_out)
{
    if (c->nomem) {
        json_decref(doc);
        json_decref(c->details);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "schema: %s: out of memory", what);
    }
    size_t n = json_array_size(c->details);
    if (n > 0) {
        json_decref(doc);
        *details_out = c->details;
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "schema: %s: %zu field%s failed validation", what, n,
                    n == 1 ? "" : "s");
    }
    json_decref(c->details);
    if (doc_out != NULL)
        *doc_out = doc;
    else
        json_decref(doc);
    return IOTSEC_RESULT_OK;
}

static iotsec_result start(struct collector *c, const struct iotsec_schema_options *options,
                           size_t *max_bytes, int64_t *skew, json_t **doc_out, json_t **details_out)
{
    IOTSEC_ENSURE(details_out != NULL, IOTSEC_ERR_INVALID_ARG, "schema: no details output");
    *details_out = NULL;
    if (doc_out != NULL)
        *doc_out = NULL;
    *max_bytes = IOTSEC_SCHEMA_DEFAULT_MAX_BODY_BYTES;
    *skew = IOTSEC_SCHEMA_DEFAULT_MAX_SKEW_SEC;
    if (options != NULL && options->max_body_bytes != 0)
        *max_bytes = options->max_body_bytes;
    if (options != NULL && options->max_skew_sec != 0)
        *skew = options->max_skew_sec;
    IOTSEC_ENSURE(*skew > 0 && *skew <= 24 * 3600, IOTSEC_ERR_CONFIG,
                  "schema: skew %lld s is out of range 1..86400", (long long)*skew);
    c->nomem = false;
    c->details = json_array();
    IOTSEC_ENSURE_ALLOC(c->details);
    return IOTSEC_RESULT_OK;
}

/* ---- telemetry ---- */

static void check_device_id(struct collector *c, const json_t *obj)
{
    const char *id;
    check_string(c, obj, "device_id", IOTSEC_JSON_REQUIRED, IOTSEC_SCHEMA_ID_MAX, &id);
    if (id == NULL)
        return;
    if (id[0] == '\0') {
        add_detail(c, "too_small", "device_id", NULL, "field 'device_id': must not be empty");
        return;
    }
    for (const char *p = id; *p != '\0'; p++) {
        if (!is_id_char(*p)) {
            add_detail(c, "invalid_string", "device_id", NULL,
                       "field 'device_id': only A-Z, a-z, 0-9, '_' and '-' are allowed");
            return;
        }
    }
}

/* Offset zero: "Z", "z", "+00:00" or "-00:00" at the end. The grammar itself is checked by
 * iotsec_time_parse; this only looks at the suffix of text it accepted. */
static bool is_utc_suffix(const char *s, size_t len)
{
    if (len >= 1 && (s[len - 1] == 'Z' || s[len - 1] == 'z'))
        return true;
    return len >= 6 && (s[len - 6] == '+' || s[len - 6] == '-') &&
           memcmp(s + len - 5, "00:00", 5) == 0;
}

static void check_timestamp(struct collector *c, const json_t *obj, struct iotsec_time now,
                            int64_t skew)
{
    const char *ts;
    /* 64 bytes is well over the longest RFC 3339 text (35). */
    check_string(c, obj, "timestamp", IOTSEC_JSON_REQUIRED, 64, &ts);
    if (ts == NULL)
        return;
    struct iotsec_time t;
    size_t len = strlen(ts);
    if (!iotsec_ok(iotsec_time_parse(iotsec_slice_make(ts, len), &t))) {
        add_detail(c, "invalid_date", "timestamp", NULL, error_text());
        return;
    }
    if (!is_utc_suffix(ts, len)) {
        add_detail(c, "invalid_date", "timestamp", NULL,
                   "field 'timestamp': must be UTC ('Z' or +00:00)");
        return;
    }
    /* Both times are within years 0000-9999, so the difference cannot overflow. */
    int64_t ahead = t.sec - now.sec;
    if (ahead > skew || (ahead == skew && t.nsec > now.nsec)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "field 'timestamp': more than %lld s in the future",
                 (long long)skew);
        add_detail(c, "future_date", "timestamp", NULL, msg);
    }
}

iotsec_result iotsec_schema_telemetry(struct iotsec_slice body,
                                      const struct iotsec_schema_options *options,
                                      struct iotsec_time now, json_t **doc_out,
                                      json_t **details_out)
{
    static const char *const allowed[] = {"device_id", "timestamp", "temperature",
                                          "humidity",  "battery",   NULL};
    struct collector c;
    size_t max_bytes;
    int64_t skew;
    IOTSEC_GUARD(start(&c, options, &max_bytes, &skew, doc_out, details_out));
    json_t *doc = parse_body(&c, body, max_bytes);
    if (doc != NULL) {
        check_unknown(&c, doc, allowed);
        check_device_id(&c, doc);
        check_timestamp(&c, doc, now, skew);
        check_number(&c, doc, "temperature", -50, 100);
        check_number(&c, doc, "humidity", 0, 100);
        check_number(&c, doc, "battery", 0, 100);
    }
    return finish(&c, "telemetry", doc, doc_out, details_out);
}

/* ---- command ---- */

iotsec_result iotsec_schema_command(struct iotsec_slice body,
                                    const struct iotsec_schema_options *options,
                                    struct iotsec_time now, json_t **doc_out, json_t **details_out)
{
    static const char *const allowed[] = {"action", "target", "payload", NULL};
    static const char *const actions[] = {"restart", "update", "configure", "reset", NULL};
    struct collector c;
    size_t max_bytes;
    int64_t skew;
    (void)now; /* commands carry no time today; the signature matches telemetry's */
    IOTSEC_GUARD(start(&c, options, &max_bytes, &skew, doc_out, details_out));
    json_t *doc = parse_body(&c, body, max_bytes);
    if (doc != NULL) {
        check_unknown(&c, doc, allowed);

        const char *action;
        bool is_reset = false;
        check_string(&c, doc, "action", IOTSEC_JSON_REQUIRED, 0, &action);
        if (action != NULL) {
            bool known = false;
            for (const char *const *a = actions; *a != NULL && !known; a++)
                known = strcmp(*a, action) == 0;
            if (!known)
                add_detail(&c, "invalid_enum_value", "action", NULL,
                           "field 'action': must be one of restart, update, configure, reset");
            is_reset = strcmp(action, "reset") == 0;
        }

        const char *target;
        check_string(&c, doc, "target", IOTSEC_JSON_REQUIRED, IOTSEC_SCHEMA_ID_MAX, &target);
        if (target != NULL && target[0] == '\0')
            add_detail(&c, "too_small", "target", NULL, "field 'target': must not be empty");

        json_t *payload = NULL;
        if (!iotsec_ok(iotsec_json_get_object(doc, "payload", IOTSEC_JSON_OPTIONAL, &payload))) {
            payload = NULL;
            add_detail(&c, classify(doc, "payload", is_object, "invalid_type"), "payload", NULL,
                       error_text());
        }
        /* Exactly true: not "true", not 1 (the reference design's === true). */
        if (is_reset) {
            json_t *confirm = payload != NULL ? json_object_get(payload, "confirm") : NULL;
            if (confirm == NULL || !json_is_true(confirm))
                add_detail(&c, "custom", "payload", "confirm",
                           "Reset action requires confirmation");
        }
    }
    return finish(&c, "command", doc, doc_out, details_out);
}

json_t *iotsec_schema_error_body(json_t *details)
{
    return json_pack("{s:s, s:O}", "error", "Validation failed", "details", details);
}
