/*
 * Fuzzes the telemetry and command validators (iotsec_schema_telemetry/_command) with the
 * default options, the ones the HTTP endpoints use, at a fixed "now".
 *
 * Invariants beyond "no crash":
 * - a body is either valid (OK, a document that is an object, no details) or invalid
 *   (IOTSEC_ERR_FORMAT, no document, a non-empty details array); nothing else but
 *   out-of-memory may happen;
 * - every detail is exactly {code, path, message}: code one of the documented codes, path
 *   an array of at most two strings, message a non-empty string without control
 *   characters, so the 400 body is always well-formed for clients;
 * - the error body built from the details serialises.
 */
#include "iotsec/json.h"
#include "iotsec/schema.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const codes[] = {
    "too_big_body", "invalid_json", "invalid_type",      "required",
    "too_small",    "too_big",      "invalid_string",    "invalid_enum_value",
    "invalid_date", "future_date",  "unrecognized_keys", "custom",
    NULL,
};

static void check_detail(const json_t *d)
{
    if (!json_is_object(d) || json_object_size(d) != 3)
        abort();
    const char *code = json_string_value(json_object_get(d, "code"));
    if (code == NULL)
        abort();
    bool known = false;
    for (const char *const *c = codes; *c != NULL; c++)
        known = known || strcmp(*c, code) == 0;
    if (!known)
        abort();
    const json_t *path = json_object_get(d, "path");
    if (!json_is_array(path) || json_array_size(path) > 2)
        abort();
    for (size_t i = 0; i < json_array_size(path); i++) {
        if (!json_is_string(json_array_get(path, i)))
            abort();
    }
    const char *m = json_string_value(json_object_get(d, "message"));
    if (m == NULL || m[0] == '\0')
        abort();
    for (const char *p = m; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    }
}

static void run(iotsec_result (*v)(struct iotsec_slice, const struct iotsec_schema_options *,
                                   struct iotsec_time, json_t **, json_t **),
                const uint8_t *data, size_t size)
{
    /* 2026-11-25T09:00:00Z */
    struct iotsec_time now = {.sec = 1795597200, .nsec = 0};
    json_t *doc = NULL, *details = NULL;
    if (iotsec_ok(v(iotsec_slice_make(data, size), NULL, now, &doc, &details))) {
        if (!json_is_object(doc) || details != NULL)
            abort();
        json_decref(doc);
        return;
    }
    if (iotsec_error_code() == IOTSEC_ERR_NOMEM) {
        if (doc != NULL || details != NULL)
            abort();
        return;
    }
    if (iotsec_error_code() != IOTSEC_ERR_FORMAT || doc != NULL || !json_is_array(details) ||
        json_array_size(details) == 0)
        abort();
    for (size_t i = 0; i < json_array_size(details); i++)
        check_detail(json_array_get(details, i));
    json_t *body = iotsec_schema_error_body(details);
    struct iotsec_buf out = {0};
    if (body == NULL || !iotsec_ok(iotsec_json_dump(body, 0, &out)))
        abort();
    iotsec_buf_free(&out);
    json_decref(body);
    json_decref(details);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(iotsec_schema_telemetry, data, size);
    run(iotsec_schema_command, data, size);
    return 0;
}
