/* Unit tests for strict JSON: what the parser refuses and how it says so, the depth and
 * size bounds, serialisation, and the typed getters' presence, type and range rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "iotsec/json.h"

static json_t *parses(const char *text)
{
    json_t *v = NULL;
    iotsec_result r = iotsec_json_parse(iotsec_slice_from_str(text), NULL, &v);
    if (!iotsec_ok(r))
        fail_msg("%s: %s", text, iotsec_error_message());
    assert_non_null(v);
    return v;
}

static void fails_bytes(const void *text, size_t len, const struct iotsec_json_limits *limits,
                        iotsec_err code, const char *message)
{
    json_t *v = (json_t *)1;
    assert_false(iotsec_ok(iotsec_json_parse(iotsec_slice_make(text, len), limits, &v)));
    assert_null(v);
    assert_int_equal(iotsec_error_code(), code);
    assert_string_equal(iotsec_error_message(), message);
}

static void fails_with(const char *text, const char *message)
{
    fails_bytes(text, strlen(text), NULL, IOTSEC_ERR_JSON, message);
}

/* A string of n '[' then n ']'. */
static char *nested(size_t n)
{
    char *s = test_malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    return s;
}

static void json_parses_any_value(void **state)
{
    (void)state;
    json_t *v = parses("{\"a\":[1,2.5,\"x\",true,null]}");
    assert_true(json_is_object(v));
    json_decref(v);
    v = parses(" 42 ");
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
}

static void json_rejects_duplicate_keys(void **state)
{
    (void)state;
    fails_with("{\"a\":1,\"a\":2}", "json: line 1 column 10: duplicate object key 'a'");
    fails_with("{\"x\":{\"k\":1,\n\"k\":2}}", "json: line 2 column 3: duplicate object key 'k'");
}

static void json_names_long_duplicate_keys(void **state)
{
    (void)state;
    /* jansson leaves tokens over 20 bytes out of its message; we still name the key. */
    fails_with("{\"a_rather_long_key_name_here\":1,\"a_rather_long_key_name_here\":2}",
               "json: line 1 column 62: duplicate object key 'a_rather_long_key_name_here'");
    /* An escaped quote inside the key does not confuse the search for it. */
    fails_with("{\"q\\\"\":1,\"q\\\"\":2}", "json: line 1 column 14: duplicate object key 'q\\\"'");
}

static void json_rejects_trailing_bytes(void **state)
{
    (void)state;
    fails_with("{} x", "json: line 1 column 4: unexpected data after the value");
    fails_with("[1]\n[2]", "json: line 2 column 1: unexpected data after the value");
}

static void json_rejects_oversized_documents(void **state)
{
    (void)state;
    struct iotsec_json_limits limits = {.max_bytes = 8};
    fails_bytes("[1,2,3,4]", 9, &limits, IOTSEC_ERR_TOO_LARGE,
                "json: document is 9 bytes, the limit is 8");
    json_t *v = NULL;
    assert_true(iotsec_ok(iotsec_json_parse(iotsec_slice_make("[1,2,34]", 8), &limits, &v)));
    json_decref(v);

    char *big = test_malloc(IOTSEC_JSON_DEFAULT_MAX_BYTES + 1);
    memset(big, ' ', IOTSEC_JSON_DEFAULT_MAX_BYTES + 1);
    big[0] = '1';
    fails_bytes(big, IOTSEC_JSON_DEFAULT_MAX_BYTES + 1, NULL, IOTSEC_ERR_TOO_LARGE,
                "json: document is 65537 bytes, the limit is 65536");
    test_free(big);
}

static void json_rejects_nesting_deeper_than_the_limit(void **state)
{
    (void)state;
    char *ok = nested(16), *deep = nested(17);
    json_t *v = parses(ok);
    json_decref(v);
    fails_with(deep, "json: line 1 column 17: nesting deeper than 16");
    test_free(ok);
    test_free(deep);

    struct iotsec_json_limits limits = {.max_depth = 2};
    fails_bytes("{\"a\":{\"b\":[]}}", 14, &limits, IOTSEC_ERR_JSON,
                "json: line 1 column 11: nesting deeper than 2");
}

static void json_depth_limit_stops_huge_nesting_early(void **state)
{
    (void)state;
    /* 60 000 levels is far past jansson's own limit; the pre-scan refuses it first. */
    char *deep = nested(30000);
    struct iotsec_json_limits limits = {.max_depth = 100000};
    fails_bytes(deep, strlen(deep), &limits, IOTSEC_ERR_JSON,
                "json: line 1 column 2049: nesting deeper than 2048");
    test_free(deep);
}

static void json_depth_ignores_brackets_inside_strings(void **state)
{
    (void)state;
    struct iotsec_json_limits limits = {.max_depth = 1};
    json_t *v = NULL;
    const char *text = "[\"[[[[{{{{\\\"[[[[\"]";
    assert_true(iotsec_ok(iotsec_json_parse(iotsec_slice_from_str(text), &limits, &v)));
    assert_string_equal(json_string_value(json_array_get(v, 0)), "[[[[{{{{\"[[[[");
    json_decref(v);
}

static void json_rejects_nul_bytes(void **state)
{
    (void)state;
    fails_bytes("[1]\0", 4, NULL, IOTSEC_ERR_JSON, "json: line 1 column 4: NUL byte");
    fails_bytes("\"a\0b\"", 5, NULL, IOTSEC_ERR_JSON, "json: line 1 column 3: NUL byte");
    fails_with("\"a\\u0000b\"", "json: line 1 column 10: \\u0000 is not allowed in strings");
    fails_with("{\"a\\u0000\":1}",
               "json: line 1 column 10: NUL byte in object key not supported near '\"a\\u0000\"'");
}

static void json_rejects_invalid_utf8(void **state)
{
    (void)state;
    fails_with("\"\xff\"", "json: line 1 column 1: unable to decode byte 0xff near '\"'");
    /* An overlong '/' and a UTF-8-encoded surrogate are not UTF-8 either. */
    fails_with("\"\xc0\xaf\"", "json: line 1 column 1: unable to decode byte 0xc0 near '\"'");
    fails_with("\"\xed\xa0\x80\"", "json: line 1 column 1: unable to decode byte 0xed near '\"'");
}

static void json_rejects_unpaired_surrogates(void **state)
{
    (void)state;
    fails_with("\"\\ud800\"",
               "json: line 1 column 8: invalid Unicode '\\uD800' near '\"\\ud800\"'");
    fails_with("\"\\udc00x\"",
               "json: line 1 column 9: invalid Unicode '\\uDC00' near '\"\\udc00x\"'");
}

static void json_decodes_surrogate_pairs(void **state)
{
    (void)state;
    json_t *v = parses("\"\\ud83d\\ude00 \\u00e9\"");
    assert_string_equal(json_string_value(v), "\xf0\x9f\x98\x80 \xc3\xa9");
    json_decref(v);
}

static void json_rejects_numbers_that_do_not_fit(void **state)
{
    (void)state;
    fails_with("[9223372036854775808]",
               "json: line 1 column 20: too big integer near '9223372036854775808'");
    fails_with("[1e400]", "json: line 1 column 6: real number overflow near '1e400'");
    json_t *v = parses("[9223372036854775807,-9223372036854775808]");
    assert_true(json_integer_value(json_array_get(v, 0)) == INT64_MAX);
    assert_true(json_integer_value(json_array_get(v, 1)) == INT64_MIN);
    json_decref(v);
}

static void json_rejects_empty_and_non_json_input(void **state)
{
    (void)state;
    fails_with("", "json: line 1 column 0: unexpected token near end of file");
    fails_bytes(NULL, 0, NULL, IOTSEC_ERR_JSON,
                "json: line 1 column 0: unexpected token near end of file");
    fails_with("NaN", "json: line 1 column 3: invalid token near 'NaN'");
    fails_with("[1,]", "json: line 1 column 4: unexpected token near ']'");
    fails_with("{'a':1}", "json: line 1 column 2: string or '}' expected near '''");
}

static void json_dump_is_compact_in_document_order(void **state)
{
    (void)state;
    json_t *v = parses("{ \"b\" : 1 , \"a\" : [ true , null , \"\\u00e9\\n\" ] }");
    struct iotsec_buf b = {0};
    assert_true(iotsec_ok(iotsec_json_dump(v, 0, &b)));
    assert_int_equal(b.len, strlen("{\"b\":1,\"a\":[true,null,\"\xc3\xa9\\n\"]}"));
    assert_memory_equal(b.ptr, "{\"b\":1,\"a\":[true,null,\"\xc3\xa9\\n\"]}", b.len);
    iotsec_buf_reset(&b);
    assert_true(iotsec_ok(iotsec_json_dump(v, IOTSEC_JSON_SORT_KEYS, &b)));
    assert_memory_equal(b.ptr, "{\"a\":[true,null,\"\xc3\xa9\\n\"],\"b\":1}", b.len);
    iotsec_buf_free(&b);
    json_decref(v);
}

static void json_dump_respects_the_buffer_limit(void **state)
{
    (void)state;
    json_t *v = parses("[\"0123456789\",\"0123456789\"]");
    struct iotsec_buf b;
    iotsec_buf_init(&b);
    iotsec_buf_set_max(&b, 12);
    assert_true(iotsec_ok(iotsec_buf_append(&b, "ab", 2)));
    assert_false(iotsec_ok(iotsec_json_dump(v, 0, &b)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TOO_LARGE);
    assert_int_equal(b.len, 2); /* nothing half-written is left behind */
    iotsec_buf_free(&b);
    json_decref(v);
}

static void json_get_string_checks_presence_type_and_length(void **state)
{
    (void)state;
    json_t *v = parses("{\"device_id\":\"dev-1\",\"n\":5,\"z\":null}");
    const char *s = "default";
    assert_true(iotsec_ok(iotsec_json_get_string(v, "device_id", IOTSEC_JSON_REQUIRED, 64, &s)));
    assert_string_equal(s, "dev-1");

    s = "default";
    assert_true(iotsec_ok(iotsec_json_get_string(v, "absent", IOTSEC_JSON_OPTIONAL, 64, &s)));
    assert_string_equal(s, "default");

    assert_false(iotsec_ok(iotsec_json_get_string(v, "absent", IOTSEC_JSON_REQUIRED, 64, &s)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_JSON);
    assert_string_equal(iotsec_error_message(), "json: missing required field 'absent'");

    assert_false(iotsec_ok(iotsec_json_get_string(v, "n", IOTSEC_JSON_OPTIONAL, 64, &s)));
    assert_string_equal(iotsec_error_message(), "json: field 'n': expected a string, got integer");

    assert_false(iotsec_ok(iotsec_json_get_string(v, "z", IOTSEC_JSON_OPTIONAL, 64, &s)));
    assert_string_equal(iotsec_error_message(), "json: field 'z': expected a string, got null");

    assert_false(iotsec_ok(iotsec_json_get_string(v, "device_id", IOTSEC_JSON_REQUIRED, 4, &s)));
    assert_string_equal(iotsec_error_message(),
                        "json: field 'device_id': string is 5 bytes, the limit is 4");
    assert_string_equal(s, "default");
    json_decref(v);
}

static void json_get_int_checks_range_and_refuses_reals(void **state)
{
    (void)state;
    json_t *v = parses("{\"battery\":87,\"humidity\":101,\"temp\":21.5,\"five\":5.0}");
    int64_t x = -1;
    assert_true(iotsec_ok(iotsec_json_get_int(v, "battery", IOTSEC_JSON_REQUIRED, 0, 100, &x)));
    assert_int_equal(x, 87);
    assert_false(iotsec_ok(iotsec_json_get_int(v, "humidity", IOTSEC_JSON_REQUIRED, 0, 100, &x)));
    assert_string_equal(iotsec_error_message(),
                        "json: field 'humidity': 101 is out of range 0..100");
    assert_false(iotsec_ok(iotsec_json_get_int(v, "five", IOTSEC_JSON_REQUIRED, 0, 100, &x)));
    assert_string_equal(iotsec_error_message(),
                        "json: field 'five': expected an integer, got real");
    assert_int_equal(x, 87);
    json_decref(v);
}

static void json_get_number_accepts_integers_and_reals_in_range(void **state)
{
    (void)state;
    json_t *v = parses("{\"temperature\":21.5,\"humidity\":40,\"hot\":120,\"s\":\"1\"}");
    double x = 0;
    assert_true(
        iotsec_ok(iotsec_json_get_number(v, "temperature", IOTSEC_JSON_REQUIRED, -50, 100, &x)));
    assert_true(x == 21.5);
    assert_true(iotsec_ok(iotsec_json_get_number(v, "humidity", IOTSEC_JSON_OPTIONAL, 0, 100, &x)));
    assert_true(x == 40.0);
    assert_false(iotsec_ok(iotsec_json_get_number(v, "hot", IOTSEC_JSON_OPTIONAL, -50, 100, &x)));
    assert_string_equal(iotsec_error_message(), "json: field 'hot': 120 is out of range -50..100");
    assert_false(iotsec_ok(iotsec_json_get_number(v, "s", IOTSEC_JSON_OPTIONAL, -50, 100, &x)));
    assert_string_equal(iotsec_error_message(), "json: field 's': expected a number, got string");
    json_decref(v);
}

static void json_get_bool_accepts_only_true_and_false(void **state)
{
    (void)state;
    json_t *v = parses("{\"confirm\":true,\"one\":1,\"str\":\"true\"}");
    bool b = false;
    assert_true(iotsec_ok(iotsec_json_get_bool(v, "confirm", IOTSEC_JSON_REQUIRED, &b)));
    assert_true(b);
    assert_false(iotsec_ok(iotsec_json_get_bool(v, "one", IOTSEC_JSON_REQUIRED, &b)));
    assert_string_equal(iotsec_error_message(),
                        "json: field 'one': expected a boolean, got integer");
    assert_false(iotsec_ok(iotsec_json_get_bool(v, "str", IOTSEC_JSON_REQUIRED, &b)));
    assert_string_equal(iotsec_error_message(),
                        "json: field 'str': expected a boolean, got string");
    json_decref(v);
}

static void json_get_object_and_array_check_type_and_size(void **state)
{
    (void)state;
    json_t *v = parses("{\"payload\":{\"confirm\":true},\"caps\":[\"a\",\"b\",\"c\"]}");
    json_t *o = NULL, *a = NULL;
    assert_true(iotsec_ok(iotsec_json_get_object(v, "payload", IOTSEC_JSON_OPTIONAL, &o)));
    bool confirm = false;
    assert_true(iotsec_ok(iotsec_json_get_bool(o, "confirm", IOTSEC_JSON_REQUIRED, &confirm)));
    assert_true(confirm);
    assert_false(iotsec_ok(iotsec_json_get_object(v, "caps", IOTSEC_JSON_OPTIONAL, &o)));
    assert_string_equal(iotsec_error_message(),
                        "json: field 'caps': expected an object, got array");
    assert_true(iotsec_ok(iotsec_json_get_array(v, "caps", IOTSEC_JSON_REQUIRED, 3, &a)));
    assert_int_equal(json_array_size(a), 3);
    assert_false(iotsec_ok(iotsec_json_get_array(v, "caps", IOTSEC_JSON_REQUIRED, 2, &a)));
    assert_string_equal(iotsec_error_message(),
                        "json: field 'caps': array has 3 items, the limit is 2");
    json_decref(v);
}

static void json_getters_refuse_a_non_object(void **state)
{
    (void)state;
    json_t *v = parses("[1]");
    int64_t x;
    assert_false(iotsec_ok(iotsec_json_get_int(v, "a", IOTSEC_JSON_OPTIONAL, 0, 1, &x)));
    assert_string_equal(iotsec_error_message(), "json: expected an object, got array");
    assert_false(iotsec_ok(iotsec_json_get_int(NULL, "a", IOTSEC_JSON_OPTIONAL, 0, 1, &x)));
    assert_string_equal(iotsec_error_message(), "json: expected an object, got null");
    json_decref(v);
}

static void json_rejects_unknown_fields(void **state)
{
    (void)state;
    static const char *const allowed[] = {"device_id", "timestamp", "temperature", NULL};
    json_t *v = parses("{\"device_id\":\"d\",\"temperature\":1}");
    assert_true(iotsec_ok(iotsec_json_reject_unknown(v, allowed)));
    json_decref(v);

    v = parses("{\"device_id\":\"d\",\"temprature\":1,\"zzz\":2}");
    assert_false(iotsec_ok(iotsec_json_reject_unknown(v, allowed)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_JSON);
    assert_string_equal(iotsec_error_message(), "json: unknown field 'temprature'");
    json_decref(v);
}

static void json_unknown_field_message_is_safe_to_print(void **state)
{
    (void)state;
    static const char *const allowed[] = {NULL};
    /* A control character in the key cannot start a new line in a log or on a terminal. */
    json_t *v = parses("{\"a\\nlevel=error\":1}");
    assert_false(iotsec_ok(iotsec_json_reject_unknown(v, allowed)));
    assert_string_equal(iotsec_error_message(), "json: unknown field 'a?level=error'");
    json_decref(v);

    /* Long keys are cut at a character boundary (the 'é' would straddle byte 64). */
    char text[200];
    snprintf(text, sizeof(text), "{\"%s\xc3\xa9tail\":1}",
             "123456789012345678901234567890123456789012345678901234567890123");
    v = parses(text);
    assert_false(iotsec_ok(iotsec_json_reject_unknown(v, allowed)));
    assert_string_equal(
        iotsec_error_message(),
        "json: unknown field '123456789012345678901234567890123456789012345678901234567890123...'");
    json_decref(v);
}

static void json_error_messages_stay_valid_utf8(void **state)
{
    (void)state;
    /* jansson's "near" text ends inside the character 0xde 0xa3; found by fuzz_json. */
    fails_with("\"\\/\\\xde\xa3\"", "json: line 1 column 5: invalid escape near '\"\\/\\?'");
}

static void json_append_string_escapes_anything_into_valid_json(void **state)
{
    (void)state;
    struct iotsec_buf b = {0};
    const char in[] = "a\"b\\c\n\r\t\x01\x7f/\xc3\xa9\xff\xe2\x82";
    assert_true(iotsec_ok(iotsec_json_append_string(&b, iotsec_slice_make(in, sizeof(in) - 1))));
    const char want[] = "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f/\xc3\xa9\\ufffd\\ufffd\\ufffd\"";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.ptr, want, b.len);
    json_t *v = NULL;
    assert_true(iotsec_ok(iotsec_json_parse(iotsec_buf_slice(&b), NULL, &v)));
    assert_string_equal(json_string_value(v),
                        "a\"b\\c\n\r\t\x01\x7f/\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(v);

    iotsec_buf_reset(&b);
    assert_true(iotsec_ok(iotsec_json_append_string(&b, iotsec_slice_make(NULL, 0))));
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.ptr, "\"\"", 2);
    iotsec_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_parses_any_value),
        cmocka_unit_test(json_rejects_duplicate_keys),
        cmocka_unit_test(json_names_long_duplicate_keys),
        cmocka_unit_test(json_rejects_trailing_bytes),
        cmocka_unit_test(json_rejects_oversized_documents),
        cmocka_unit_test(json_rejects_nesting_deeper_than_the_limit),
        cmocka_unit_test(json_depth_limit_stops_huge_nesting_early),
        cmocka_unit_test(json_depth_ignores_brackets_inside_strings),
        cmocka_unit_test(json_rejects_nul_bytes),
        cmocka_unit_test(json_rejects_invalid_utf8),
        cmocka_unit_test(json_rejects_unpaired_surrogates),
        cmocka_unit_test(json_decodes_surrogate_pairs),
        cmocka_unit_test(json_rejects_numbers_that_do_not_fit),
        cmocka_unit_test(json_rejects_empty_and_non_json_input),
        cmocka_unit_test(json_dump_is_compact_in_document_order),
        cmocka_unit_test(json_dump_respects_the_buffer_limit),
        cmocka_unit_test(json_get_string_checks_presence_type_and_length),
        cmocka_unit_test(json_get_int_checks_range_and_refuses_reals),
        cmocka_unit_test(json_get_number_accepts_integers_and_reals_in_range),
        cmocka_unit_test(json_get_bool_accepts_only_true_and_false),
        cmocka_unit_test(json_get_object_and_array_check_type_and_size),
        cmocka_unit_test(json_getters_refuse_a_non_object),
        cmocka_unit_test(json_rejects_unknown_fields),
        cmocka_unit_test(json_unknown_field_message_is_safe_to_print),
        cmocka_unit_test(json_error_messages_stay_valid_utf8),
        cmocka_unit_test(json_append_string_escapes_anything_into_valid_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
