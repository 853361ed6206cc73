/* Unit tests for the core error model and byte slices/buffers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "iotsec/buf.h"
#include "iotsec/error.h"

static iotsec_result parse_header(struct iotsec_slice in, uint16_t *version)
{
    uint8_t magic[4];
    IOTSEC_GUARD(iotsec_slice_read(&in, magic, sizeof(magic)));
    IOTSEC_ENSURE(memcmp(magic, "TEST", 4) == 0, IOTSEC_ERR_FORMAT, "test: bad magic");
    IOTSEC_GUARD(iotsec_slice_read_u16(&in, version));
    IOTSEC_GUARD(iotsec_slice_expect_end(&in));
    return IOTSEC_RESULT_OK;
}

static void slice_parser_accepts_exact_input(void **state)
{
    (void)state;
    const uint8_t in[] = {'T', 'E', 'S', 'T', 0x01, 0x02};
    uint16_t version = 0;
    assert_true(iotsec_ok(parse_header(iotsec_slice_make(in, sizeof(in)), &version)));
    assert_int_equal(version, 0x0102);
}

static void slice_parser_rejects_truncated_input(void **state)
{
    (void)state;
    const uint8_t in[] = {'T', 'E', 'S', 'T', 0x01};
    uint16_t version;
    assert_false(iotsec_ok(parse_header(iotsec_slice_make(in, sizeof(in)), &version)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TRUNCATED);
    assert_string_equal(iotsec_error_message(), "input is truncated: 2 bytes needed, 1 present");
}

static void slice_parser_rejects_trailing_bytes(void **state)
{
    (void)state;
    const uint8_t in[] = {'T', 'E', 'S', 'T', 0x01, 0x02, 0xff};
    uint16_t version;
    assert_false(iotsec_ok(parse_header(iotsec_slice_make(in, sizeof(in)), &version)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    assert_string_equal(iotsec_error_message(), "1 unexpected trailing bytes");
}

static void slice_parser_names_bad_magic(void **state)
{
    (void)state;
    const uint8_t in[] = {'N', 'O', 'P', 'E', 0x01, 0x02};
    uint16_t version;
    assert_false(iotsec_ok(parse_header(iotsec_slice_make(in, sizeof(in)), &version)));
    assert_string_equal(iotsec_error_message(), "test: bad magic");
}

static void buf_round_trips_big_endian_integers(void **state)
{
    (void)state;
    struct iotsec_buf b = {0};
    assert_true(iotsec_ok(iotsec_buf_append_u8(&b, 0xab)));
    assert_true(iotsec_ok(iotsec_buf_append_u16(&b, 0x1234)));
    assert_true(iotsec_ok(iotsec_buf_append_u32(&b, 0xdeadbeef)));
    assert_true(iotsec_ok(iotsec_buf_append_u64(&b, 0x0102030405060708ULL)));
    assert_int_equal(b.len, 15);
    assert_int_equal(b.ptr[1], 0x12);
    struct iotsec_slice s = iotsec_buf_slice(&b);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    assert_true(iotsec_ok(iotsec_slice_read_u8(&s, &u8)));
    assert_true(iotsec_ok(iotsec_slice_read_u16(&s, &u16)));
    assert_true(iotsec_ok(iotsec_slice_read_u32(&s, &u32)));
    assert_true(iotsec_ok(iotsec_slice_read_u64(&s, &u64)));
    assert_int_equal(u8, 0xab);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 0x0102030405060708ULL);
    assert_true(iotsec_ok(iotsec_slice_expect_end(&s)));
    iotsec_buf_free(&b);
}

static void buf_grows_across_many_appends(void **state)
{
    (void)state;
    struct iotsec_buf b;
    iotsec_buf_init_secret(&b);
    for (int i = 0; i < 10000; i++)
        assert_true(iotsec_ok(iotsec_buf_append_u8(&b, (uint8_t)i)));
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.ptr[i], (uint8_t)i);
    assert_true(iotsec_ok(iotsec_buf_terminate(&b)));
    assert_int_equal(b.ptr[b.len], 0);
    iotsec_buf_free(&b);
    assert_null(b.ptr);
    assert_true(b.secret);
}

static void buf_refuses_to_grow_past_its_limit(void **state)
{
    (void)state;
    struct iotsec_buf b;
    iotsec_buf_init(&b);
    iotsec_buf_set_max(&b, 8);
    assert_true(iotsec_ok(iotsec_buf_append(&b, "12345678", 8)));
    assert_false(iotsec_ok(iotsec_buf_append_u8(&b, 0)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TOO_LARGE);
    assert_int_equal(b.len, 8);
    iotsec_buf_free(&b);
}

static void error_prefix_adds_context(void **state)
{
    (void)state;
    iotsec_error_set(IOTSEC_ERR_IO, "read failed");
    iotsec_error_prefix("vault %s: ", "/tmp/x");
    assert_string_equal(iotsec_error_message(), "vault /tmp/x: read failed");
    iotsec_error_set(IOTSEC_ERR_NOT_FOUND, NULL);
    assert_string_equal(iotsec_error_message(), "not found");
    assert_string_equal(iotsec_strerror((iotsec_err)999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slice_parser_accepts_exact_input),
        cmocka_unit_test(slice_parser_rejects_truncated_input),
        cmocka_unit_test(slice_parser_rejects_trailing_bytes),
        cmocka_unit_test(slice_parser_names_bad_magic),
        cmocka_unit_test(buf_round_trips_big_endian_integers),
        cmocka_unit_test(buf_grows_across_many_appends),
        cmocka_unit_test(buf_refuses_to_grow_past_its_limit),
        cmocka_unit_test(error_prefix_adds_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
