/* Unit tests for operator accounts: argon2id hashing and its strict stored-hash parser,
 * the RFC 4226 / RFC 6238 vectors through our HOTP/TOTP wrapper, the TOTP window, the
 * strict code parser and replay refusal, every login path (with the reason the event log
 * gets), the role table, the last-admin guard and the one-time bootstrap. Argon2 runs
 * with IOTSEC_PASSWORD_PARAMS_TEST so that the suite stays fast under ASan. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "iotsec/operator.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            fail_msg("%s: %s", #expr, iotsec_error_message());                                     \
    } while (0)

#define FAILS(expr, code)                                                                          \
    do {                                                                                           \
        assert_false(iotsec_ok(expr));                                                             \
        assert_int_equal(iotsec_error_code(), (code));                                             \
    } while (0)

static const struct iotsec_password_params TEST_PARAMS = IOTSEC_PASSWORD_PARAMS_TEST;
static const char PW[] = "correct horse battery";
#define NOW_MS ((int64_t)1795000000000) /* 2026-11-18T11:06:40Z */

static struct iotsec_slice str(const char *s)
{
    return iotsec_slice_from_str(s);
}

/* ---- passwords ---- */

static void password_hash_verifies(void **state)
{
    (void)state;
    char h1[IOTSEC_STORE_PASSWORD_HASH_MAX + 1], h2[IOTSEC_STORE_PASSWORD_HASH_MAX + 1];
    OK(iotsec_password_hash(&TEST_PARAMS, str(PW), h1));
    OK(iotsec_password_hash(&TEST_PARAMS, str(PW), h2));
    assert_int_equal(strncmp(h1, "$argon2id$v=19$m=64,t=1,p=1$", 28), 0);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    OK(iotsec_password_verify(h1, str(PW)));
    OK(iotsec_password_verify(h2, str(PW)));
    FAILS(iotsec_password_verify(h1, str("correct horse battery!")), IOTSEC_ERR_AUTH);
    FAILS(iotsec_password_verify(h1, str("Correct horse battery")), IOTSEC_ERR_AUTH);
    struct iotsec_password_params p;
    OK(iotsec_password_parse(h1, &p));
    assert_int_equal(p.t_cost, 1);
    assert_int_equal(p.m_kib, 64);
    assert_int_equal(p.p, 1);
}

static void password_length_bounds(void **state)
{
    (void)state;
    char h[IOTSEC_STORE_PASSWORD_HASH_MAX + 1];
    char big[IOTSEC_PASSWORD_MAX + 2];
    memset(big, 'x', sizeof(big));
    FAILS(iotsec_password_hash(&TEST_PARAMS, str("elevenchars"), h), IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(), "password: must be at least 12 bytes");
    OK(iotsec_password_hash(&TEST_PARAMS, str("twelve chars"), h));
    FAILS(iotsec_password_hash(&TEST_PARAMS, iotsec_slice_make(big, IOTSEC_PASSWORD_MAX + 1), h),
          IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(), "password: must be at most 1024 bytes");
    OK(iotsec_password_hash(&TEST_PARAMS, iotsec_slice_make(big, IOTSEC_PASSWORD_MAX), h));
    OK(iotsec_password_verify(h, iotsec_slice_make(big, IOTSEC_PASSWORD_MAX)));
    /* Verification cuts an over-long password to the bound to hash it, but never accepts
     * it, although its first 1024 bytes are the right password. */
    FAILS(iotsec_password_verify(h, iotsec_slice_make(big, IOTSEC_PASSWORD_MAX + 1)),
          IOTSEC_ERR_AUTH);
    FAILS(iotsec_password_verify(h, iotsec_slice_make(NULL, 0)), IOTSEC_ERR_AUTH);
}

static void password_needs_rehash(void **state)
{
    (void)state;
    char h[IOTSEC_STORE_PASSWORD_HASH_MAX + 1];
    OK(iotsec_password_hash(&TEST_PARAMS, str(PW), h));
    struct iotsec_password_params def = IOTSEC_PASSWORD_PARAMS_DEFAULT;
    struct iotsec_password_params more_t = {2, 64, 1}, more_m = {1, 128, 1}, less_m = {1, 32, 1};
    assert_false(iotsec_password_needs_rehash(h, &TEST_PARAMS));
    assert_true(iotsec_password_needs_rehash(h, &def));
    assert_true(iotsec_password_needs_rehash(h, &more_t));
    assert_true(iotsec_password_needs_rehash(h, &more_m));
    assert_false(iotsec_password_needs_rehash(h, &less_m));
    assert_true(iotsec_password_needs_rehash("$argon2i$v=19$m=64,t=1,p=1$xxxx", &TEST_PARAMS));
}

/* A well-formed stored hash (salt "somesaltsomesalt", an arbitrary 32-byte hash); the
 * parser's cases are edits of it. */
#define SALT "c29tZXNhbHRzb21lc2FsdA"
#define HASH "X+qv0lKqwuVOz3OkmtIKR6l1P6LD0Ph3t+yWY3jHvXs"

static void parse_refuses(const char *encoded)
{
    if (iotsec_ok(iotsec_password_parse(encoded, NULL)))
        fail_msg("parsed: %s", encoded);
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    /* verify refuses it the same way, before any hashing */
    FAILS(iotsec_password_verify(encoded, str(PW)), IOTSEC_ERR_FORMAT);
}

static void password_parser_is_strict(void **state)
{
    (void)state;
    OK(iotsec_password_parse("$argon2id$v=19$m=64,t=1,p=1$" SALT "$" HASH, NULL));
    parse_refuses("");
    parse_refuses("$argon2i$v=19$m=64,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2d$v=19$m=64,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=16$m=64,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$m=64,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=064,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=64,t=01,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=+64,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$t=1,m=64,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=64,t=0,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=64,t=1,p=0$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=15,t=1,p=2$" SALT "$" HASH); /* m < 8 p */
    /* Costs an attacker who can write the store would like us to pay: refused unread. */
    parse_refuses("$argon2id$v=19$m=4294967295,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=1048577,t=1,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=64,t=65,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=64,t=99999999999999999999,p=1$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=128,t=1,p=17$" SALT "$" HASH);
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" HASH);              /* no salt */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" HASH);       /* 4-byte salt */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" SALT "$c2hvcnQ");   /* 5-byte hash */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" SALT "==$" HASH);   /* padding */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" SALT "$" HASH "="); /* padding */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" SALT "$" HASH "$"); /* trailing */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" SALT "$" HASH " "); /* trailing */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" SALT
                  "$-qv0lKqwuVOz3OkmtIKR6l1P6LD0Ph3t+yWY3jHvXs");
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdB$" HASH); /* tail bits */
    parse_refuses("$argon2id$v=19$m=64,t=1,p=1$" SALT "$" HASH "AA"); /* impossible length */
    parse_refuses(NULL);
}

static void password_generate_format(void **state)
{
    (void)state;
    struct iotsec_buf a, b;
    iotsec_buf_init_secret(&a);
    iotsec_buf_init_secret(&b);
    OK(iotsec_password_generate(&a));
    OK(iotsec_password_generate(&b));
    assert_int_equal(a.len, 39);
    for (size_t i = 0; i < a.len; i++) {
        uint8_t c = a.ptr[i];
        if (i % 5 == 4)
            assert_int_equal(c, '-');
        else
            assert_true((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'));
    }
    assert_false(iotsec_slice_equal(iotsec_buf_slice(&a), iotsec_buf_slice(&b)));
    OK(iotsec_password_check_length(iotsec_buf_slice(&a)));
    iotsec_buf_free(&a);
    iotsec_buf_free(&b);
}

/* ---- HOTP / TOTP ---- */

static json_t *load_otp_vectors(void)
{
    const char *path = IOTSEC_TESTDATA_DIR "/otp/rfc4226_rfc6238.json";
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        fail_msg("cannot read %s: %s (line %d)", path, err.text, err.line);
    return root;
}

static enum iotsec_otp_hash otp_hash(const char *name)
{
    if (strcmp(name, "SHA1") == 0)
        return IOTSEC_OTP_SHA1;
    if (strcmp(name, "SHA256") == 0)
        return IOTSEC_OTP_SHA256;
    if (strcmp(name, "SHA512") == 0)
        return IOTSEC_OTP_SHA512;
    fail_msg("unknown algorithm %s", name);
    return IOTSEC_OTP_SHA1;
}

static void otp_rfc_vectors(void **state)
{
    (void)state;
    json_t *root = load_otp_vectors();
    json_t *hotp = json_object_get(root, "hotp"), *totp = json_object_get(root, "totp");
    size_t i, hotp_pass = 0, totp_pass = 0;
    json_t *v;
    json_array_foreach(hotp, i, v)
    {
        const char *secret = json_string_value(json_object_get(v, "secretAscii"));
        const char *want = json_string_value(json_object_get(v, "otp"));
        assert_string_equal(json_string_value(json_object_get(v, "algorithm")), "SHA1");
        char got[IOTSEC_OTP_MAX_DIGITS + 1];
        OK(iotsec_hotp_generate(str(secret),
                                (uint64_t)json_integer_value(json_object_get(v, "counter")),
                                (unsigned)json_integer_value(json_object_get(v, "digits")), got));
        if (strcmp(got, want) != 0)
            fail_msg("hotp vector %zu: got %s, want %s", i, got, want);
        hotp_pass++;
    }
    json_array_foreach(totp, i, v)
    {
        const char *secret = json_string_value(json_object_get(v, "secretAscii"));
        const char *want = json_string_value(json_object_get(v, "otp"));
        char got[IOTSEC_OTP_MAX_DIGITS + 1];
        OK(iotsec_totp_generate(str(secret), json_integer_value(json_object_get(v, "unixTime")),
                                (unsigned)json_integer_value(json_object_get(v, "step")),
                                (unsigned)json_integer_value(json_object_get(v, "digits")),
                                otp_hash(json_string_value(json_object_get(v, "algorithm"))), got));
        if (strcmp(got, want) != 0)
            fail_msg("totp vector %zu: got %s, want %s", i, got, want);
        totp_pass++;
    }
    printf("otp vectors: %zu/%zu RFC 4226 HOTP passed, %zu/%zu RFC 6238 TOTP passed\n", hotp_pass,
           json_array_size(hotp), totp_pass, json_array_size(totp));
    assert_int_equal(hotp_pass, 10);
    assert_int_equal(totp_pass, 18);
    json_decref(root);
}

static const char RFC_SECRET[] = "12345678901234567890";

/* The 6-digit SHA-1 code of a step. */
static void code_at(struct iotsec_slice secret, uint64_t step, char out[IOTSEC_OTP_MAX_DIGITS + 1])
{
    OK(iotsec_hotp_generate(secret, step, 6, out));
}

static void totp_window_edges(void **state)
{
    (void)state;
    struct iotsec_slice secret = str(RFC_SECRET);
    /* RFC 4226's counter 1 code, 287082, is the 6-digit TOTP for t in [30, 60). */
    char code[IOTSEC_OTP_MAX_DIGITS + 1];
    OK(iotsec_totp_generate(secret, 59, 30, 6, IOTSEC_OTP_SHA1, code));
    assert_string_equal(code, "287082");
    uint64_t step = 99;
    /* Accepted from step 0 (t = 0, its +1 neighbour) to step 2 (t = 89, its -1). */
    OK(iotsec_totp_verify(secret, "287082", 0, &step));
    assert_int_equal(step, 1);
    OK(iotsec_totp_verify(secret, "287082", 45, &step));
    assert_int_equal(step, 1);
    OK(iotsec_totp_verify(secret, "287082", 89, &step));
    assert_int_equal(step, 1);
    FAILS(iotsec_totp_verify(secret, "287082", 90, &step), IOTSEC_ERR_AUTH);
    /* Step 0's code is refused once step 2 begins, accepted up to t = 59. */
    OK(iotsec_totp_verify(secret, "755224", 59, &step));
    assert_int_equal(step, 0);
    FAILS(iotsec_totp_verify(secret, "755224", 60, &step), IOTSEC_ERR_AUTH);
    /* Step 3's code is refused in step 1 and accepted from the first second of step 2. */
    code_at(secret, 3, code);
    FAILS(iotsec_totp_verify(secret, code, 59, &step), IOTSEC_ERR_AUTH);
    OK(iotsec_totp_verify(secret, code, 60, &step));
    assert_int_equal(step, 3);
    /* A neighbouring digit string is wrong. */
    FAILS(iotsec_totp_verify(secret, "287083", 45, &step), IOTSEC_ERR_AUTH);
    FAILS(iotsec_totp_verify(secret, "287082", -1, &step), IOTSEC_ERR_INVALID_ARG);
}

static void parse_code_refuses(const char *in, size_t len)
{
    char out[IOTSEC_TOTP_DIGITS + 1];
    FAILS(iotsec_totp_parse_code(iotsec_slice_make(in, len), out), IOTSEC_ERR_FORMAT);
}

static void totp_code_parser_is_strict(void **state)
{
    (void)state;
    char out[IOTSEC_TOTP_DIGITS + 1];
    OK(iotsec_totp_parse_code(str("012345"), out));
    assert_string_equal(out, "012345");
    parse_code_refuses("", 0);
    parse_code_refuses("12345", 5);
    parse_code_refuses("1234567", 7);
    parse_code_refuses(" 12345", 6);
    parse_code_refuses("12345 ", 6);
    parse_code_refuses("123456\n", 7);
    parse_code_refuses("12345a", 6);
    parse_code_refuses("+12345", 6);
    parse_code_refuses("-12345", 6);
    parse_code_refuses("123\0"
                       "56",
                       6);
    parse_code_refuses("\xef\xbc\x91\xef\xbc\x92", 6); /* fullwidth digits in UTF-8 */
    parse_code_refuses("12:456", 6);
    parse_code_refuses(NULL, 6);
}

static void base32_and_uri(void **state)
{
    (void)state;
    /* RFC 4648 section 10 (without padding). */
    static const char *const vec[][2] = {{"f", "MY"},           {"fo", "MZXQ"},
                                         {"foo", "MZXW6"},      {"foob", "MZXW6YQ"},
                                         {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"}};
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct iotsec_buf b = {0};
        OK(iotsec_base32_encode(str(vec[i][0]), &b));
        assert_int_equal(b.len, strlen(vec[i][1]));
        assert_memory_equal(b.ptr, vec[i][1], b.len);
        iotsec_buf_free(&b);
    }
    struct iotsec_buf uri;
    iotsec_buf_init_secret(&uri);
    OK(iotsec_totp_uri(str(RFC_SECRET), "ops@example.com", &uri));
    OK(iotsec_buf_terminate(&uri));
    assert_string_equal((const char *)uri.ptr,
                        "otpauth://totp/iotsec:ops%40example.com?secret="
                        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=iotsec&algorithm=SHA1&digits=6&"
                        "period=30");
    iotsec_buf_free(&uri);
}

/* ---- login ---- */

struct fixture {
    struct iotsec_store *store;
    struct iotsec_operator_auth *auth;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct iotsec_operator_config cfg = {.params = TEST_PARAMS};
    if (f == NULL || !iotsec_ok(iotsec_store_open("sqlite::memory:", &f->store)) ||
        !iotsec_ok(iotsec_operator_auth_new(&cfg, &f->auth)))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    iotsec_operator_auth_free(f->auth);
    iotsec_store_close(f->store);
    free(f);
    return 0;
}

/* Logs in and checks the outcome: OK with reason OK, or AUTH with the one message. */
static struct iotsec_login_outcome login(struct fixture *f, const char *name, const char *pw,
                                         const char *code, int64_t now_ms,
                                         enum iotsec_login_reason want)
{
    struct iotsec_login_outcome out;
    iotsec_result r =
        iotsec_operator_login(f->auth, f->store, name, str(pw),
                              code != NULL ? str(code) : iotsec_slice_make(NULL, 0), now_ms, &out);
    if (out.reason != want)
        fail_msg("login %s: reason %s, wanted %s", name, iotsec_login_reason_name(out.reason),
                 iotsec_login_reason_name(want));
    if (want == IOTSEC_LOGIN_OK) {
        OK(r);
    } else {
        assert_false(iotsec_ok(r));
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
        assert_string_equal(iotsec_error_message(), "operator: login failed");
    }
    return out;
}

static void login_password_paths(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "alice", IOTSEC_STORE_ROLE_OPERATOR, str(PW),
                              false, NOW_MS));
    FAILS(iotsec_operator_create(f->store, &TEST_PARAMS, "alice", IOTSEC_STORE_ROLE_VIEWER, str(PW),
                                 false, NOW_MS),
          IOTSEC_ERR_EXISTS);
    struct iotsec_login_outcome o = login(f, "alice", PW, NULL, NOW_MS, IOTSEC_LOGIN_OK);
    assert_int_equal(o.role, IOTSEC_STORE_ROLE_OPERATOR);
    assert_false(o.must_change_password);
    assert_false(o.rehashed);
    login(f, "alice", "wrong password!", NULL, NOW_MS, IOTSEC_LOGIN_BAD_PASSWORD);
    login(f, "alice", "short", NULL, NOW_MS, IOTSEC_LOGIN_BAD_PASSWORD);
    login(f, "bob", PW, NULL, NOW_MS, IOTSEC_LOGIN_UNKNOWN_USER);
    login(f, "not a valid name!", PW, NULL, NOW_MS, IOTSEC_LOGIN_UNKNOWN_USER);
    login(f, "", PW, NULL, NOW_MS, IOTSEC_LOGIN_UNKNOWN_USER);
    /* No TOTP enrolled: a code given anyway is not looked at. */
    login(f, "alice", PW, "000000", NOW_MS, IOTSEC_LOGIN_OK);

    OK(iotsec_operator_set_disabled(f->store, "alice", true, NOW_MS));
    login(f, "alice", PW, NULL, NOW_MS, IOTSEC_LOGIN_DISABLED);
    login(f, "alice", "wrong password!", NULL, NOW_MS, IOTSEC_LOGIN_DISABLED);
    OK(iotsec_operator_set_disabled(f->store, "alice", false, NOW_MS));
    login(f, "alice", PW, NULL, NOW_MS, IOTSEC_LOGIN_OK);

    OK(iotsec_operator_set_password(f->store, &TEST_PARAMS, "alice", str("a temporary one"), true,
                                    NOW_MS));
    login(f, "alice", PW, NULL, NOW_MS, IOTSEC_LOGIN_BAD_PASSWORD);
    o = login(f, "alice", "a temporary one", NULL, NOW_MS, IOTSEC_LOGIN_OK);
    assert_true(o.must_change_password);
    FAILS(iotsec_operator_set_password(f->store, &TEST_PARAMS, "alice", str("too short"), false,
                                       NOW_MS),
          IOTSEC_ERR_INVALID_ARG);
    FAILS(iotsec_operator_set_password(f->store, &TEST_PARAMS, "nobody", str(PW), false, NOW_MS),
          IOTSEC_ERR_NOT_FOUND);
}

static void login_totp_paths(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "carol", IOTSEC_STORE_ROLE_ADMIN, str(PW),
                              false, NOW_MS));
    uint8_t secret[IOTSEC_TOTP_SECRET_LEN];
    OK(iotsec_operator_totp_enrol(f->store, "carol", NOW_MS, secret));
    struct iotsec_slice key = iotsec_slice_make(secret, sizeof(secret));
    uint64_t step = (uint64_t)(NOW_MS / 1000) / IOTSEC_TOTP_STEP;
    char now_code[9], prev_code[9], next_code[9], old_code[9];
    code_at(key, step, now_code);
    code_at(key, step - 1, prev_code);
    code_at(key, step + 1, next_code);
    code_at(key, step - 2, old_code);

    login(f, "carol", PW, NULL, NOW_MS, IOTSEC_LOGIN_TOTP_MISSING);
    login(f, "carol", PW, "", NOW_MS, IOTSEC_LOGIN_TOTP_MISSING);
    login(f, "carol", PW, "12345", NOW_MS, IOTSEC_LOGIN_TOTP_MALFORMED);
    login(f, "carol", PW, " 123456", NOW_MS, IOTSEC_LOGIN_TOTP_MALFORMED);
    login(f, "carol", PW, old_code, NOW_MS, IOTSEC_LOGIN_TOTP_WRONG);
    /* A wrong password with the right code fails as a password failure and does not use
     * the code up. */
    login(f, "carol", "wrong password!", prev_code, NOW_MS, IOTSEC_LOGIN_BAD_PASSWORD);
    login(f, "carol", PW, prev_code, NOW_MS, IOTSEC_LOGIN_OK);
    login(f, "carol", PW, prev_code, NOW_MS, IOTSEC_LOGIN_TOTP_REPLAYED);
    login(f, "carol", PW, now_code, NOW_MS, IOTSEC_LOGIN_OK);
    login(f, "carol", PW, now_code, NOW_MS + 1000, IOTSEC_LOGIN_TOTP_REPLAYED);
    /* Once a later step was accepted, an earlier step's code is refused too. */
    login(f, "carol", PW, next_code, NOW_MS, IOTSEC_LOGIN_OK);
    login(f, "carol", PW, now_code, NOW_MS, IOTSEC_LOGIN_TOTP_REPLAYED);
    /* Another context (another process) has its own record: the limit documented. */
    struct iotsec_operator_config cfg = {.params = TEST_PARAMS};
    struct iotsec_operator_auth *other = NULL;
    OK(iotsec_operator_auth_new(&cfg, &other));
    struct iotsec_login_outcome o;
    OK(iotsec_operator_login(other, f->store, "carol", str(PW), str(now_code), NOW_MS, &o));
    iotsec_operator_auth_free(other);

    OK(iotsec_operator_totp_remove(f->store, "carol", NOW_MS));
    login(f, "carol", PW, NULL, NOW_MS, IOTSEC_LOGIN_OK);
    iotsec_wipe(secret, sizeof(secret));
}

static void login_admin_totp_policy(void **state)
{
    struct fixture *f = *state;
    struct iotsec_operator_config cfg = {.params = TEST_PARAMS, .require_totp_for_admin = true};
    struct iotsec_operator_auth *strict = NULL;
    OK(iotsec_operator_auth_new(&cfg, &strict));
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "root", IOTSEC_STORE_ROLE_ADMIN, str(PW),
                              false, NOW_MS));
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "ops", IOTSEC_STORE_ROLE_OPERATOR, str(PW),
                              false, NOW_MS));
    struct iotsec_login_outcome o;
    assert_false(
        iotsec_ok(iotsec_operator_login(strict, f->store, "root", str(PW), str(""), NOW_MS, &o)));
    assert_int_equal(o.reason, IOTSEC_LOGIN_TOTP_NOT_ENROLLED);
    OK(iotsec_operator_login(strict, f->store, "ops", str(PW), str(""), NOW_MS, &o));
    uint8_t secret[IOTSEC_TOTP_SECRET_LEN];
    char code[9];
    OK(iotsec_operator_totp_enrol(f->store, "root", NOW_MS, secret));
    code_at(iotsec_slice_make(secret, sizeof(secret)), (uint64_t)(NOW_MS / 1000) / 30, code);
    OK(iotsec_operator_login(strict, f->store, "root", str(PW), str(code), NOW_MS, &o));
    assert_int_equal(o.role, IOTSEC_STORE_ROLE_ADMIN);
    /* The default policy lets an admin without TOTP in. */
    login(f, "ops", PW, NULL, NOW_MS, IOTSEC_LOGIN_OK);
    iotsec_operator_auth_free(strict);
}

static void login_rehashes_weaker_hash(void **state)
{
    struct fixture *f = *state;
    struct iotsec_operator_config cfg = {.params = {1, 128, 1}};
    struct iotsec_operator_auth *stronger = NULL;
    OK(iotsec_operator_auth_new(&cfg, &stronger));
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "dave", IOTSEC_STORE_ROLE_VIEWER, str(PW),
                              true, NOW_MS));
    struct iotsec_login_outcome o;
    OK(iotsec_operator_login(stronger, f->store, "dave", str(PW), str(""), NOW_MS, &o));
    assert_true(o.rehashed);
    assert_true(o.must_change_password);
    struct iotsec_store_user u = {0};
    OK(iotsec_store_user_get(f->store, "dave", &u));
    assert_int_equal(strncmp(u.password_hash, "$argon2id$v=19$m=128,t=1,p=1$", 29), 0);
    assert_true(u.must_change_password); /* the upgrade keeps the flag */
    iotsec_store_user_clear(&u);
    OK(iotsec_operator_login(stronger, f->store, "dave", str(PW), str(""), NOW_MS, &o));
    assert_false(o.rehashed);
    /* A failed login never rewrites the hash. */
    assert_false(iotsec_ok(iotsec_operator_login(f->auth, f->store, "dave", str("wrong password!"),
                                                 str(""), NOW_MS, &o)));
    assert_false(o.rehashed);
    iotsec_operator_auth_free(stronger);
}

static void login_corrupt_hash_is_an_error(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store_user u = {0};
    snprintf(u.name, sizeof(u.name), "eve");
    snprintf(u.password_hash, sizeof(u.password_hash),
             "$argon2id$v=19$m=4294967295,t=1,p=1$" SALT "$" HASH);
    u.role = IOTSEC_STORE_ROLE_VIEWER;
    OK(iotsec_store_user_insert(f->store, &u));
    struct iotsec_login_outcome o;
    FAILS(iotsec_operator_login(f->auth, f->store, "eve", str(PW), str(""), NOW_MS, &o),
          IOTSEC_ERR_FORMAT);
    assert_int_equal(o.reason, IOTSEC_LOGIN_ERROR);
}

static void replay_record_fails_closed_when_full(void **state)
{
    struct fixture *f = *state;
    uint8_t secret[IOTSEC_TOTP_SECRET_LEN];
    char name[32], code[9];
    uint64_t step = (uint64_t)(NOW_MS / 1000) / 30;
    for (int i = 0; i <= IOTSEC_OPERATOR_REPLAY_SLOTS; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        OK(iotsec_operator_create(f->store, &TEST_PARAMS, name, IOTSEC_STORE_ROLE_VIEWER, str(PW),
                                  false, NOW_MS));
        OK(iotsec_operator_totp_enrol(f->store, name, NOW_MS, secret));
        code_at(iotsec_slice_make(secret, sizeof(secret)), step, code);
        login(f, name, PW, code, NOW_MS,
              i < IOTSEC_OPERATOR_REPLAY_SLOTS ? IOTSEC_LOGIN_OK : IOTSEC_LOGIN_BUSY);
    }
    /* Two steps later every entry is stale and the last user gets in. */
    code_at(iotsec_slice_make(secret, sizeof(secret)), step + 2, code);
    login(f, name, PW, code, NOW_MS + 60000, IOTSEC_LOGIN_OK);
}

/* ---- roles ---- */

static void role_table(void **state)
{
    (void)state;
    /* viewer, operator, admin */
    static const struct {
        enum iotsec_permission perm;
        const char *name;
        bool v, o, a;
    } want[] = {
        {IOTSEC_PERM_DEVICES_READ, "devices.read", 1, 1, 1},
        {IOTSEC_PERM_DEVICES_WRITE, "devices.write", 0, 1, 1},
        {IOTSEC_PERM_TELEMETRY_READ, "telemetry.read", 1, 1, 1},
        {IOTSEC_PERM_EVENTS_READ, "events.read", 1, 1, 1},
        {IOTSEC_PERM_BLOCKS_READ, "blocks.read", 1, 1, 1},
        {IOTSEC_PERM_BLOCKS_WRITE, "blocks.write", 0, 1, 1},
        {IOTSEC_PERM_COMMANDS_SEND, "commands.send", 0, 1, 1},
        {IOTSEC_PERM_FIRMWARE_READ, "firmware.read", 1, 1, 1},
        {IOTSEC_PERM_FIRMWARE_PUBLISH, "firmware.publish", 0, 0, 1},
        {IOTSEC_PERM_APIKEYS_MANAGE, "apikeys.manage", 0, 0, 1},
        {IOTSEC_PERM_USERS_MANAGE, "users.manage", 0, 0, 1},
    };
    assert_int_equal(sizeof(want) / sizeof(want[0]), IOTSEC_PERM__COUNT);
    for (size_t i = 0; i < IOTSEC_PERM__COUNT; i++) {
        assert_string_equal(iotsec_permission_name(want[i].perm), want[i].name);
        enum iotsec_permission p;
        OK(iotsec_permission_parse(want[i].name, &p));
        assert_int_equal(p, want[i].perm);
        assert_int_equal(iotsec_role_allows(IOTSEC_STORE_ROLE_VIEWER, p), want[i].v);
        assert_int_equal(iotsec_role_allows(IOTSEC_STORE_ROLE_OPERATOR, p), want[i].o);
        assert_int_equal(iotsec_role_allows(IOTSEC_STORE_ROLE_ADMIN, p), want[i].a);
        assert_false(iotsec_role_allows((enum iotsec_store_role)0, p));
        assert_false(iotsec_role_allows((enum iotsec_store_role)4, p));
        assert_false(iotsec_role_allows((enum iotsec_store_role) - 1, p));
    }
    assert_false(iotsec_role_allows(IOTSEC_STORE_ROLE_ADMIN, IOTSEC_PERM__COUNT));
    assert_false(iotsec_role_allows(IOTSEC_STORE_ROLE_ADMIN, (enum iotsec_permission) - 1));
    assert_null(iotsec_permission_name(IOTSEC_PERM__COUNT));
    enum iotsec_permission p;
    FAILS(iotsec_permission_parse("devices.*", &p), IOTSEC_ERR_INVALID_ARG);
    FAILS(iotsec_permission_parse("Devices.read", &p), IOTSEC_ERR_INVALID_ARG);
}

static void last_admin_is_kept(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "root", IOTSEC_STORE_ROLE_ADMIN, str(PW),
                              false, NOW_MS));
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "view", IOTSEC_STORE_ROLE_VIEWER, str(PW),
                              false, NOW_MS));
    FAILS(iotsec_operator_set_role(f->store, "root", IOTSEC_STORE_ROLE_OPERATOR, NOW_MS),
          IOTSEC_ERR_PERMISSION);
    FAILS(iotsec_operator_set_disabled(f->store, "root", true, NOW_MS), IOTSEC_ERR_PERMISSION);
    FAILS(iotsec_operator_delete(f->store, "root"), IOTSEC_ERR_PERMISSION);
    OK(iotsec_operator_delete(f->store, "view"));
    FAILS(iotsec_operator_delete(f->store, "view"), IOTSEC_ERR_NOT_FOUND);
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "root2", IOTSEC_STORE_ROLE_OPERATOR, str(PW),
                              false, NOW_MS));
    OK(iotsec_operator_set_role(f->store, "root2", IOTSEC_STORE_ROLE_ADMIN, NOW_MS));
    OK(iotsec_operator_set_disabled(f->store, "root", true, NOW_MS));
    /* root is disabled: root2 is now the last enabled admin. */
    FAILS(iotsec_operator_set_role(f->store, "root2", IOTSEC_STORE_ROLE_VIEWER, NOW_MS),
          IOTSEC_ERR_PERMISSION);
    OK(iotsec_operator_delete(f->store, "root"));
    struct iotsec_store_user u = {0};
    OK(iotsec_store_user_get(f->store, "root2", &u));
    assert_int_equal(u.role, IOTSEC_STORE_ROLE_ADMIN);
    assert_false(u.disabled);
    iotsec_store_user_clear(&u);
}

static void bootstrap_only_once(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf pw;
    iotsec_buf_init_secret(&pw);
    bool created = false;
    OK(iotsec_operator_bootstrap(f->store, &TEST_PARAMS, "admin", NOW_MS, &pw, &created));
    assert_true(created);
    assert_int_equal(pw.len, 39);
    OK(iotsec_buf_terminate(&pw));
    struct iotsec_login_outcome o =
        login(f, "admin", (const char *)pw.ptr, NULL, NOW_MS, IOTSEC_LOGIN_OK);
    assert_int_equal(o.role, IOTSEC_STORE_ROLE_ADMIN);
    assert_true(o.must_change_password);
    iotsec_buf_free(&pw);

    iotsec_buf_init_secret(&pw);
    OK(iotsec_operator_bootstrap(f->store, &TEST_PARAMS, "admin2", NOW_MS, &pw, &created));
    assert_false(created);
    assert_int_equal(pw.len, 0);
    struct iotsec_store_user u = {0};
    FAILS(iotsec_store_user_get(f->store, "admin2", &u), IOTSEC_ERR_NOT_FOUND);
    iotsec_buf_free(&pw);
}

static void bootstrap_skips_when_any_user_exists(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_operator_create(f->store, &TEST_PARAMS, "viewer", IOTSEC_STORE_ROLE_VIEWER, str(PW),
                              false, NOW_MS));
    struct iotsec_buf pw;
    iotsec_buf_init_secret(&pw);
    bool created = true;
    OK(iotsec_operator_bootstrap(f->store, &TEST_PARAMS, "admin", NOW_MS, &pw, &created));
    assert_false(created);
    assert_int_equal(pw.len, 0);
    iotsec_buf_free(&pw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(password_hash_verifies),
        cmocka_unit_test(password_length_bounds),
        cmocka_unit_test(password_needs_rehash),
        cmocka_unit_test(password_parser_is_strict),
        cmocka_unit_test(password_generate_format),
        cmocka_unit_test(otp_rfc_vectors),
        cmocka_unit_test(totp_window_edges),
        cmocka_unit_test(totp_code_parser_is_strict),
        cmocka_unit_test(base32_and_uri),
        cmocka_unit_test(role_table),
        cmocka_unit_test_setup_teardown(login_password_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(login_totp_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(login_admin_totp_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(login_rehashes_weaker_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(login_corrupt_hash_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_record_fails_closed_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(last_admin_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(bootstrap_only_once, setup, teardown),
        cmocka_unit_test_setup_teardown(bootstrap_skips_when_any_user_exists, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
