/* Unit tests for telemetry and command validation: every rule of the wire contract, that
 * all failing fields are reported together as {code, path, message}, the body bound, the
 * strict-JSON refusals, unknown members, UTC and skew rules for timestamps, and the exact
 * reset-confirmation message clients match on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "iotsec/schema.h"

typedef iotsec_result (*validator)(struct iotsec_slice, const struct iotsec_schema_options *,
                                   struct iotsec_time, json_t **, json_t **);

/* 2026-11-25T09:00:00Z */
static const struct iotsec_time NOW = {.sec = 1795597200, .nsec = 0};

static void valid(validator v, const char *body)
{
    json_t *doc = NULL, *details = NULL;
    iotsec_result r = v(iotsec_slice_from_str(body), NULL, NOW, &doc, &details);
    if (!iotsec_ok(r))
        fail_msg("%s: %s", body, iotsec_error_message());
    assert_null(details);
    assert_true(json_is_object(doc));
    json_decref(doc);
}

/* Validates an invalid body; returns its details (caller frees) after checking there are
 * exactly n of them and the error is a FORMAT one. */
static json_t *invalid_opts(validator v, const char *body, size_t len,
                            const struct iotsec_schema_options *opts, size_t n)
{
    json_t *doc = (json_t *)1, *details = NULL;
    assert_false(iotsec_ok(v(iotsec_slice_make(body, len), opts, NOW, &doc, &details)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    assert_null(doc);
    assert_non_null(details);
    if (json_array_size(details) != n) {
        char *s = json_dumps(details, 0);
        fail_msg("%s: expected %zu details, got %s", body, n, s);
    }
    return details;
}

static json_t *invalid(validator v, const char *body, size_t n)
{
    return invalid_opts(v, body, strlen(body), NULL, n);
}

/* Asserts details[i] is {code, path (up to two names), message (NULL: any)}. */
static void detail_is(const json_t *details, size_t i, const char *code, const char *p0,
                      const char *p1, const char *message)
{
    json_t *d = json_array_get(details, i);
    assert_non_null(d);
    assert_int_equal(json_object_size(d), 3);
    assert_string_equal(json_string_value(json_object_get(d, "code")), code);
    json_t *path = json_object_get(d, "path");
    assert_true(json_is_array(path));
    size_t want = p0 == NULL ? 0 : p1 == NULL ? 1 : 2;
    assert_int_equal(json_array_size(path), want);
    if (p0 != NULL)
        assert_string_equal(json_string_value(json_array_get(path, 0)), p0);
    if (p1 != NULL)
        assert_string_equal(json_string_value(json_array_get(path, 1)), p1);
    const char *m = json_string_value(json_object_get(d, "message"));
    assert_non_null(m);
    if (message != NULL)
        assert_string_equal(m, message);
}

static void one(validator v, const char *body, const char *code, const char *p0, const char *p1,
                const char *message)
{
    json_t *d = invalid(v, body, 1);
    detail_is(d, 0, code, p0, p1, message);
    json_decref(d);
}

/* ---- telemetry ---- */

static void telemetry_accepts_valid_bodies(void **state)
{
    (void)state;
    valid(iotsec_schema_telemetry, "{\"device_id\":\"sensor-01\",\"timestamp\":"
                                   "\"2026-11-25T08:59:00Z\",\"temperature\":21.5,"
                                   "\"humidity\":40,\"battery\":99.9}");
    /* The optional readings may be absent; limits are inclusive. */
    valid(iotsec_schema_telemetry,
          "{\"device_id\":\"a\",\"timestamp\":\"2026-11-25T09:00:00.5z\"}");
    valid(iotsec_schema_telemetry,
          "{\"device_id\":\"A_b-9\",\"timestamp\":\"2026-11-25T09:00:00+00:00\","
          "\"temperature\":-50,\"humidity\":100,\"battery\":0}");
    /* Exactly at the skew is allowed (60 s by default). */
    valid(iotsec_schema_telemetry, "{\"device_id\":\"d\",\"timestamp\":\"2026-11-25T09:01:00Z\"}");
    char id64[128];
    snprintf(id64, sizeof(id64), "{\"device_id\":\"%064d\",\"timestamp\":\"2026-01-01T00:00:00Z\"}",
             7);
    valid(iotsec_schema_telemetry, id64);
}

static void telemetry_reports_every_failing_field(void **state)
{
    (void)state;
    json_t *d = invalid(iotsec_schema_telemetry,
                        "{\"device_id\":\"bad id!\",\"timestamp\":\"yesterday\","
                        "\"temperature\":120,\"humidity\":-1,\"battery\":\"full\","
                        "\"temprature\":1}",
                        6);
    detail_is(d, 0, "unrecognized_keys", "temprature", NULL, "unknown field");
    detail_is(d, 1, "invalid_string", "device_id", NULL,
              "field 'device_id': only A-Z, a-z, 0-9, '_' and '-' are allowed");
    detail_is(d, 2, "invalid_date", "timestamp", NULL, NULL);
    detail_is(d, 3, "too_big", "temperature", NULL,
              "field 'temperature': 120 is out of range -50..100");
    detail_is(d, 4, "too_small", "humidity", NULL, "field 'humidity': -1 is out of range 0..100");
    detail_is(d, 5, "invalid_type", "battery", NULL,
              "field 'battery': expected a number, got string");
    /* The HTTP body wraps the details. */
    json_t *body = iotsec_schema_error_body(d);
    assert_string_equal(json_string_value(json_object_get(body, "error")), "Validation failed");
    assert_ptr_equal(json_object_get(body, "details"), d);
    json_decref(body);
    json_decref(d);
    assert_string_equal(iotsec_error_message(), "schema: telemetry: 6 fields failed validation");
}

static void telemetry_requires_fields(void **state)
{
    (void)state;
    json_t *d = invalid(iotsec_schema_telemetry, "{}", 2);
    detail_is(d, 0, "required", "device_id", NULL, "missing required field 'device_id'");
    detail_is(d, 1, "required", "timestamp", NULL, "missing required field 'timestamp'");
    json_decref(d);
    /* null is a wrong type, not absence. */
    one(iotsec_schema_telemetry,
        "{\"device_id\":\"d\",\"timestamp\":\"2026-11-25T09:00:00Z\",\"battery\":null}",
        "invalid_type", "battery", NULL, "field 'battery': expected a number, got null");
    one(iotsec_schema_telemetry, "{\"device_id\":5,\"timestamp\":\"2026-11-25T09:00:00Z\"}",
        "invalid_type", "device_id", NULL, "field 'device_id': expected a string, got integer");
}

static void telemetry_device_id_rules(void **state)
{
    (void)state;
    one(iotsec_schema_telemetry, "{\"device_id\":\"\",\"timestamp\":\"2026-11-25T09:00:00Z\"}",
        "too_small", "device_id", NULL, "field 'device_id': must not be empty");
    char body[160];
    snprintf(body, sizeof(body), "{\"device_id\":\"%065d\",\"timestamp\":\"2026-11-25T09:00:00Z\"}",
             7);
    one(iotsec_schema_telemetry, body, "too_big", "device_id", NULL,
        "field 'device_id': string is 65 bytes, the limit is 64");
    one(iotsec_schema_telemetry,
        "{\"device_id\":\"caf\\u00e9\",\"timestamp\":\"2026-11-25T09:00:00Z\"}", "invalid_string",
        "device_id", NULL, NULL);
    one(iotsec_schema_telemetry, "{\"device_id\":\"a/b\",\"timestamp\":\"2026-11-25T09:00:00Z\"}",
        "invalid_string", "device_id", NULL, NULL);
}

static void telemetry_timestamp_rules(void **state)
{
    (void)state;
    one(iotsec_schema_telemetry, "{\"device_id\":\"d\",\"timestamp\":\"2026-11-25 09:00:00Z\"}",
        "invalid_date", "timestamp", NULL, NULL);
    one(iotsec_schema_telemetry, "{\"device_id\":\"d\",\"timestamp\":\"2026-02-30T09:00:00Z\"}",
        "invalid_date", "timestamp", NULL, NULL);
    /* A local offset is refused, not converted. */
    one(iotsec_schema_telemetry,
        "{\"device_id\":\"d\",\"timestamp\":\"2026-11-25T10:00:00+01:00\"}", "invalid_date",
        "timestamp", NULL, "field 'timestamp': must be UTC ('Z' or +00:00)");
    /* One nanosecond beyond the skew. */
    one(iotsec_schema_telemetry,
        "{\"device_id\":\"d\",\"timestamp\":\"2026-11-25T09:01:00.000000001Z\"}", "future_date",
        "timestamp", NULL, "field 'timestamp': more than 60 s in the future");
    /* The skew is configurable. */
    const char *body = "{\"device_id\":\"d\",\"timestamp\":\"2026-11-25T09:00:06Z\"}";
    struct iotsec_schema_options opts = {.max_skew_sec = 5};
    json_t *d = invalid_opts(iotsec_schema_telemetry, body, strlen(body), &opts, 1);
    detail_is(d, 0, "future_date", "timestamp", NULL,
              "field 'timestamp': more than 5 s in the future");
    json_decref(d);
    /* The past is fine (devices buffer readings while offline). */
    valid(iotsec_schema_telemetry, "{\"device_id\":\"d\",\"timestamp\":\"1999-12-31T23:59:59Z\"}");
}

static void telemetry_strict_json(void **state)
{
    (void)state;
    one(iotsec_schema_telemetry,
        "{\"device_id\":\"a\",\"device_id\":\"b\",\"timestamp\":\"2026-11-25T09:00:00Z\"}",
        "invalid_json", NULL, NULL, "line 1 column 28: duplicate object key 'device_id'");
    one(iotsec_schema_telemetry, "{\"device_id\":\"a\",\"timestamp\":\"2026-11-25T09:00:00Z\"} {}",
        "invalid_json", NULL, NULL, NULL);
    one(iotsec_schema_telemetry,
        "{\"device_id\":\"a\",\"timestamp\":\"2026-11-25T09:00:00Z\",\"temperature\":NaN}",
        "invalid_json", NULL, NULL, NULL);
    one(iotsec_schema_telemetry, "[1]", "invalid_type", NULL, NULL,
        "expected an object, got array");
    one(iotsec_schema_telemetry, "", "invalid_json", NULL, NULL, NULL);
    /* A NUL byte inside the body. */
    json_t *d = invalid_opts(iotsec_schema_telemetry, "{\"a\0\":1}", 8, NULL, 1);
    detail_is(d, 0, "invalid_json", NULL, NULL, NULL);
    json_decref(d);
}

static void telemetry_body_is_bounded(void **state)
{
    (void)state;
    const char *body = "{\"device_id\":\"d\",\"timestamp\":\"2026-11-25T09:00:00Z\"}";
    struct iotsec_schema_options opts = {.max_body_bytes = strlen(body) - 1};
    json_t *d = invalid_opts(iotsec_schema_telemetry, body, strlen(body), &opts, 1);
    detail_is(d, 0, "too_big_body", NULL, NULL, "body is 52 bytes, the limit is 51");
    json_decref(d);
    opts.max_body_bytes = strlen(body);
    json_t *doc = NULL, *details = NULL;
    assert_true(iotsec_ok(
        iotsec_schema_telemetry(iotsec_slice_from_str(body), &opts, NOW, &doc, &details)));
    json_decref(doc);
    /* The default bound. */
    size_t n = IOTSEC_SCHEMA_DEFAULT_MAX_BODY_BYTES + 1;
    char *big = test_malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    d = invalid_opts(iotsec_schema_telemetry, big, n, NULL, 1);
    detail_is(d, 0, "too_big_body", NULL, NULL, NULL);
    json_decref(d);
    test_free(big);
}

static void schema_rejects_bad_arguments(void **state)
{
    (void)state;
    json_t *doc = NULL;
    assert_false(
        iotsec_ok(iotsec_schema_telemetry(iotsec_slice_from_str("{}"), NULL, NOW, &doc, NULL)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    struct iotsec_schema_options opts = {.max_skew_sec = -1};
    json_t *details = NULL;
    assert_false(
        iotsec_ok(iotsec_schema_command(iotsec_slice_from_str("{}"), &opts, NOW, &doc, &details)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    assert_null(details);
    assert_null(doc);
}

/* ---- command ---- */

static void command_accepts_valid_bodies(void **state)
{
    (void)state;
    valid(iotsec_schema_command, "{\"action\":\"restart\",\"target\":\"sensor-01\"}");
    valid(iotsec_schema_command,
          "{\"action\":\"configure\",\"target\":\"t\",\"payload\":{\"interval\":30,\"x\":[1]}}");
    valid(iotsec_schema_command, "{\"action\":\"update\",\"target\":\"any text / is fine\"}");
    valid(iotsec_schema_command,
          "{\"action\":\"reset\",\"target\":\"d\",\"payload\":{\"confirm\":true}}");
    /* The document comes back to the caller on success. */
    json_t *doc = NULL, *details = NULL;
    assert_true(iotsec_ok(
        iotsec_schema_command(iotsec_slice_from_str("{\"action\":\"restart\",\"target\":\"x\"}"),
                              NULL, NOW, &doc, &details)));
    assert_string_equal(json_string_value(json_object_get(doc, "target")), "x");
    json_decref(doc);
    /* doc_out may be NULL when only the verdict matters. */
    assert_true(iotsec_ok(
        iotsec_schema_command(iotsec_slice_from_str("{\"action\":\"restart\",\"target\":\"x\"}"),
                              NULL, NOW, NULL, &details)));
}

static void command_reset_requires_confirmation(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"action\":\"reset\",\"target\":\"d\"}",
        "{\"action\":\"reset\",\"target\":\"d\",\"payload\":{}}",
        "{\"action\":\"reset\",\"target\":\"d\",\"payload\":{\"confirm\":false}}",
        "{\"action\":\"reset\",\"target\":\"d\",\"payload\":{\"confirm\":\"true\"}}",
        "{\"action\":\"reset\",\"target\":\"d\",\"payload\":{\"confirm\":1}}",
        "{\"action\":\"reset\",\"target\":\"d\",\"payload\":{\"confirm\":null}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        one(iotsec_schema_command, bodies[i], "custom", "payload", "confirm",
            "Reset action requires confirmation");
    /* Other actions need no confirmation. */
    valid(iotsec_schema_command, "{\"action\":\"restart\",\"target\":\"d\",\"payload\":{}}");
}

static void command_reports_every_failing_field(void **state)
{
    (void)state;
    json_t *d = invalid(iotsec_schema_command,
                        "{\"action\":\"explode\",\"target\":\"\",\"payload\":[],\"extra\":1}", 4);
    detail_is(d, 0, "unrecognized_keys", "extra", NULL, "unknown field");
    detail_is(d, 1, "invalid_enum_value", "action", NULL,
              "field 'action': must be one of restart, update, configure, reset");
    detail_is(d, 2, "too_small", "target", NULL, "field 'target': must not be empty");
    detail_is(d, 3, "invalid_type", "payload", NULL,
              "field 'payload': expected an object, got array");
    json_decref(d);

    d = invalid(iotsec_schema_command, "{\"payload\":null}", 3);
    detail_is(d, 0, "required", "action", NULL, "missing required field 'action'");
    detail_is(d, 1, "required", "target", NULL, "missing required field 'target'");
    detail_is(d, 2, "invalid_type", "payload", NULL, NULL);
    json_decref(d);

    /* A reset with a malformed payload reports both problems. */
    d = invalid(iotsec_schema_command, "{\"action\":\"reset\",\"target\":\"d\",\"payload\":true}",
                2);
    detail_is(d, 0, "invalid_type", "payload", NULL, NULL);
    detail_is(d, 1, "custom", "payload", "confirm", "Reset action requires confirmation");
    json_decref(d);

    char body[160];
    snprintf(body, sizeof(body), "{\"action\":\"restart\",\"target\":\"%065d\"}", 1);
    one(iotsec_schema_command, body, "too_big", "target", NULL,
        "field 'target': string is 65 bytes, the limit is 64");
    one(iotsec_schema_command, "{\"action\":\"RESET\",\"target\":\"d\"}", "invalid_enum_value",
        "action", NULL, NULL);
    one(iotsec_schema_command, "{\"action\":\"reset\",\"action\":\"restart\",\"target\":\"d\"}",
        "invalid_json", NULL, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(telemetry_accepts_valid_bodies),
        cmocka_unit_test(telemetry_reports_every_failing_field),
        cmocka_unit_test(telemetry_requires_fields),
        cmocka_unit_test(telemetry_device_id_rules),
        cmocka_unit_test(telemetry_timestamp_rules),
        cmocka_unit_test(telemetry_strict_json),
        cmocka_unit_test(telemetry_body_is_bounded),
        cmocka_unit_test(schema_rejects_bad_arguments),
        cmocka_unit_test(command_accepts_valid_bodies),
        cmocka_unit_test(command_reset_requires_confirmation),
        cmocka_unit_test(command_reports_every_failing_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
