/*
 * Unit tests for API keys: the generated format, the strict parser's edges, and every
 * outcome of a check (accepted, malformed, unknown, revoked at once, device disabled or
 * revoked, rate limited with its own limit, last-used throttling), that the decision goes
 * through the constant-time comparison, and exact rate-limit totals from several threads.
 *
 * iotsec_ct_equal is defined in this file: the linker then takes it instead of the
 * library's (src/crypto/ct.c holds nothing else), which lets the tests count its calls
 * and make it disagree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotsec/apikey.h"
#include "iotsec/crypto.h"
#include "iotsec/store.h"

#define T0 ((int64_t)1764000000000) /* Unix ms */

static atomic_int ct_calls;
static atomic_bool ct_force_mismatch;

bool iotsec_ct_equal(struct iotsec_slice a, struct iotsec_slice b)
{
    atomic_fetch_add(&ct_calls, 1);
    if (atomic_load(&ct_force_mismatch))
        return false;
    return a.len == b.len && (a.len == 0 || CRYPTO_memcmp(a.ptr, b.ptr, a.len) == 0);
}

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            fail_msg("%s: %s", #expr, iotsec_error_message());                                     \
    } while (0)

#define FAILS_WITH(expr, code)                                                                     \
    do {                                                                                           \
        assert_false(iotsec_ok(expr));                                                             \
        assert_int_equal(iotsec_error_code(), (code));                                             \
    } while (0)

struct fixture {
    char dir[64];
    char path[128];
    struct iotsec_store *s;
    struct iotsec_apikey_auth *auth;
};

static void add_device(struct iotsec_store *s, const char *id,
                       enum iotsec_store_device_status status)
{
    struct iotsec_store_device d = {.status = status, .created_at = T0, .updated_at = T0};
    snprintf(d.id, sizeof(d.id), "%s", id);
    OK(iotsec_store_device_insert(s, &d));
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotsec-apikey-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    OK(iotsec_store_open(f->path, &f->s));
    OK(iotsec_apikey_auth_new(NULL, &f->auth));
    add_device(f->s, "dev-1", IOTSEC_STORE_DEVICE_ACTIVE);
    add_device(f->s, "dev-2", IOTSEC_STORE_DEVICE_ACTIVE);
    atomic_store(&ct_force_mismatch, false);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    iotsec_apikey_auth_free(f->auth);
    iotsec_store_close(f->s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* Authenticates `key` at `now` and returns the reason (OK on success), checking that
 * success and failure agree with it. */
static enum iotsec_apikey_reason check(struct fixture *f, const char *key, int64_t now,
                                       struct iotsec_apikey_identity *id)
{
    struct iotsec_apikey_identity local;
    if (id == NULL)
        id = &local;
    iotsec_result r =
        iotsec_apikey_authenticate(f->auth, f->s, iotsec_slice_from_str(key), now, id);
    assert_int_equal(iotsec_ok(r), id->reason == IOTSEC_APIKEY_OK);
    return id->reason;
}

/* ---- format ---- */

static void apikey_generate_matches_the_contract(void **state)
{
    (void)state;
    struct iotsec_apikey_secret a, b;
    OK(iotsec_apikey_generate(&a));
    OK(iotsec_apikey_generate(&b));
    assert_int_equal(strlen(a.key), 52);
    assert_memory_equal(a.key, "iot_", 4);
    assert_true(is_lower_hex(a.key + 4, 48));
    assert_int_equal(strlen(a.key_id), IOTSEC_APIKEY_ID_LEN);
    assert_memory_equal(a.key_id, "ak_", 3);
    assert_true(is_lower_hex(a.key_id + 3, 16));
    assert_string_not_equal(a.key, b.key);
    assert_string_not_equal(a.key_id, b.key_id);
    /* The stored hash is SHA-256 of the key string, computed independently here. */
    uint8_t want[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(a.key, 52, want, &n, EVP_sha256(), NULL), 1);
    assert_memory_equal(a.hash, want, 32);
    uint8_t parsed[32];
    OK(iotsec_apikey_parse(iotsec_slice_from_str(a.key), parsed));
    assert_memory_equal(parsed, want, 32);
    iotsec_apikey_secret_wipe(&a);
    assert_int_equal(a.key[0], 0);
}

static void parse_expect(const void *text, size_t len, const char *message_part)
{
    uint8_t hash[32];
    FAILS_WITH(iotsec_apikey_parse(iotsec_slice_make(text, len), hash), IOTSEC_ERR_FORMAT);
    if (strstr(iotsec_error_message(), message_part) == NULL)
        fail_msg("message '%s' lacks '%s'", iotsec_error_message(), message_part);
}

static void apikey_parse_is_strict(void **state)
{
    (void)state;
    const char *good = "iot_0123456789abcdef0123456789abcdef0123456789abcdef";
    uint8_t hash[32];
    OK(iotsec_apikey_parse(iotsec_slice_from_str(good), hash));

    char k[64];
    /* Uppercase hex is a different string: refused, not folded. */
    snprintf(k, sizeof(k), "%s", good);
    k[10] = 'A';
    parse_expect(k, 52, "uppercase hex digit at offset 10");
    /* 47 and 49 digits. */
    parse_expect(good, 51, "51 characters, expected 52");
    snprintf(k, sizeof(k), "%s0", good);
    parse_expect(k, 53, "53 characters, expected 52");
    /* Wrong prefixes. */
    const char *prefixes[] = {"IOT_", "iot-", "api_", "iot ", "iotx"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        snprintf(k, sizeof(k), "%s", good);
        memcpy(k, prefixes[i], 4);
        parse_expect(k, 52, "does not start with \"iot_\"");
    }
    /* A NUL inside: the length is right, the byte is not. */
    snprintf(k, sizeof(k), "%s", good);
    k[30] = '\0';
    parse_expect(k, 52, "byte 0x00 at offset 30");
    /* Nothing is trimmed: surrounding whitespace changes the length, inner whitespace
     * is a bad byte. */
    snprintf(k, sizeof(k), " %s", good);
    parse_expect(k, 53, "53 characters");
    snprintf(k, sizeof(k), "%s\n", good);
    parse_expect(k, 53, "53 characters");
    snprintf(k, sizeof(k), "%s", good);
    k[51] = '\n';
    parse_expect(k, 52, "byte 0x0a at offset 51");
    snprintf(k, sizeof(k), "%s", good);
    k[20] = 'g';
    parse_expect(k, 52, "byte 0x67 at offset 20");
    parse_expect("", 0, "0 characters");
    /* The message never repeats the key. */
    snprintf(k, sizeof(k), "%s", good);
    k[51] = 'Z';
    parse_expect(k, 52, "offset 51");
    assert_null(strstr(iotsec_error_message(), "0123456789abcdef"));
}

/* ---- create ---- */

static void apikey_create_checks_device_and_rate(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret k;
    FAILS_WITH(iotsec_apikey_create(f->s, "no-such-device", 0, T0, &k), IOTSEC_ERR_NOT_FOUND);
    FAILS_WITH(iotsec_apikey_create(f->s, "dev-1", IOTSEC_APIKEY_RATE_MAX + 1, T0, &k),
               IOTSEC_ERR_INVALID_ARG);
    add_device(f->s, "gone", IOTSEC_STORE_DEVICE_REVOKED);
    FAILS_WITH(iotsec_apikey_create(f->s, "gone", 0, T0, &k), IOTSEC_ERR_INVALID_ARG);

    OK(iotsec_apikey_create(f->s, "dev-1", 7, T0, &k));
    struct iotsec_store_apikey rec;
    OK(iotsec_store_apikey_get(f->s, k.key_id, &rec));
    assert_string_equal(rec.device_id, "dev-1");
    assert_memory_equal(rec.hash, k.hash, 32);
    assert_int_equal(rec.rate_limit_per_min, 7);
    assert_int_equal(rec.created_at, T0);
    assert_int_equal(rec.last_used_at, 0);
    /* The key itself is nowhere in the store's record. */
    assert_null(memmem(&rec, sizeof(rec), k.key + 4, 16));
}

/* ---- authenticate ---- */

static void apikey_accepts_a_valid_key(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret k;
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &k));
    struct iotsec_apikey_identity id;
    assert_int_equal(check(f, k.key, T0 + 5, &id), IOTSEC_APIKEY_OK);
    assert_string_equal(id.device_id, "dev-1");
    assert_string_equal(id.key_id, k.key_id);
    assert_true(id.touched);
    assert_false(id.touch_failed);
    assert_int_equal(id.retry_after_ms, 0);
}

static void apikey_refusals_have_reasons(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_identity id;
    assert_int_equal(check(f, "iot_123", T0, &id), IOTSEC_APIKEY_MALFORMED);
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    assert_string_equal(id.device_id, "");
    /* Well formed, never issued. */
    assert_int_equal(check(f, "iot_000000000000000000000000000000000000000000000000", T0, &id),
                     IOTSEC_APIKEY_UNKNOWN);
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    assert_string_equal(id.key_id, "");
    /* One character off a real key is just as unknown. */
    struct iotsec_apikey_secret k;
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &k));
    char near[IOTSEC_APIKEY_LEN + 1];
    memcpy(near, k.key, sizeof(near));
    near[51] = near[51] == '0' ? '1' : '0';
    assert_int_equal(check(f, near, T0, &id), IOTSEC_APIKEY_UNKNOWN);
    assert_string_equal(iotsec_apikey_reason_name(IOTSEC_APIKEY_DEVICE_INACTIVE),
                        "device_inactive");
    assert_string_equal(iotsec_apikey_reason_name(IOTSEC_APIKEY_RATE_LIMITED), "rate_limited");
}

static void apikey_revocation_is_immediate(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret k, other;
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &k));
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &other));
    assert_int_equal(check(f, k.key, T0 + 1, NULL), IOTSEC_APIKEY_OK);
    /* Revoked through another handle, as the CLI would from another process. */
    struct iotsec_store *cli;
    OK(iotsec_store_open(f->path, &cli));
    OK(iotsec_store_apikey_revoke(cli, k.key_id, T0 + 2));
    iotsec_store_close(cli);
    struct iotsec_apikey_identity id;
    assert_int_equal(check(f, k.key, T0 + 3, &id), IOTSEC_APIKEY_REVOKED);
    assert_string_equal(id.key_id, k.key_id);
    assert_string_equal(id.device_id, "dev-1");
    /* The device's other key is unaffected. */
    assert_int_equal(check(f, other.key, T0 + 3, NULL), IOTSEC_APIKEY_OK);
}

static void apikey_requires_an_active_device(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret k;
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &k));
    OK(iotsec_store_device_set_status(f->s, "dev-1", IOTSEC_STORE_DEVICE_DISABLED, T0 + 1));
    struct iotsec_apikey_identity id;
    assert_int_equal(check(f, k.key, T0 + 2, &id), IOTSEC_APIKEY_DEVICE_INACTIVE);
    assert_non_null(strstr(iotsec_error_message(), "disabled"));
    OK(iotsec_store_device_set_status(f->s, "dev-1", IOTSEC_STORE_DEVICE_ACTIVE, T0 + 3));
    assert_int_equal(check(f, k.key, T0 + 4, NULL), IOTSEC_APIKEY_OK);
    /* Revoking the device revokes its keys in the same transaction. */
    OK(iotsec_store_device_revoke(f->s, "dev-1", 0, T0 + 5, NULL));
    assert_int_equal(check(f, k.key, T0 + 6, NULL), IOTSEC_APIKEY_REVOKED);
}

static void apikey_rate_limit_is_per_key_with_its_own_limit(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret slow, dflt, other;
    OK(iotsec_apikey_create(f->s, "dev-1", 5, T0, &slow));
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &dflt));
    OK(iotsec_apikey_create(f->s, "dev-2", 5, T0, &other));
    struct iotsec_apikey_identity id;
    for (int i = 0; i < 5; i++)
        assert_int_equal(check(f, slow.key, T0, NULL), IOTSEC_APIKEY_OK);
    assert_int_equal(check(f, slow.key, T0, &id), IOTSEC_APIKEY_RATE_LIMITED);
    assert_int_equal(id.retry_after_ms, 12000); /* 5 per minute: one every 12 s */
    assert_string_equal(id.key_id, slow.key_id);
    /* Another key with the same limit, and the same device's default-limit key, have
     * budgets of their own. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(check(f, other.key, T0, NULL), IOTSEC_APIKEY_OK);
    for (int i = 0; i < IOTSEC_APIKEY_DEFAULT_RATE_PER_MIN; i++)
        assert_int_equal(check(f, dflt.key, T0, NULL), IOTSEC_APIKEY_OK);
    assert_int_equal(check(f, dflt.key, T0, &id), IOTSEC_APIKEY_RATE_LIMITED);
    assert_int_equal(id.retry_after_ms, 1000);
    /* Waiting the Retry-After buys one more. */
    assert_int_equal(check(f, slow.key, T0 + 12000, NULL), IOTSEC_APIKEY_OK);
    assert_int_equal(check(f, slow.key, T0 + 12000, NULL), IOTSEC_APIKEY_RATE_LIMITED);
    /* A refused key spends nothing: unknown and revoked checks come first. */
    OK(iotsec_store_apikey_revoke(f->s, other.key_id, T0 + 1));
    assert_int_equal(check(f, other.key, T0 + 1, NULL), IOTSEC_APIKEY_REVOKED);
}

static void apikey_default_rate_is_configurable_and_classes_are_bounded(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_auth *a;
    struct iotsec_apikey_auth_config c = {.default_rate_per_min = 2, .keys_per_limiter = 64};
    OK(iotsec_apikey_auth_new(&c, &a));
    struct iotsec_apikey_secret k;
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &k));
    struct iotsec_apikey_identity id;
    OK(iotsec_apikey_authenticate(a, f->s, iotsec_slice_from_str(k.key), T0, &id));
    OK(iotsec_apikey_authenticate(a, f->s, iotsec_slice_from_str(k.key), T0, &id));
    FAILS_WITH(iotsec_apikey_authenticate(a, f->s, iotsec_slice_from_str(k.key), T0, &id),
               IOTSEC_ERR_AUTH);
    assert_int_equal(id.reason, IOTSEC_APIKEY_RATE_LIMITED);
    /* One limiter per distinct rate, at most IOTSEC_APIKEY_RATE_CLASSES_MAX of them (the
     * default's is the first): the next distinct rate is a clear error, not growth. */
    for (uint32_t r = 100; r < 100 + IOTSEC_APIKEY_RATE_CLASSES_MAX - 1; r++) {
        OK(iotsec_apikey_create(f->s, "dev-2", r, T0, &k));
        OK(iotsec_apikey_authenticate(a, f->s, iotsec_slice_from_str(k.key), T0, &id));
    }
    OK(iotsec_apikey_create(f->s, "dev-2", 999, T0, &k));
    FAILS_WITH(iotsec_apikey_authenticate(a, f->s, iotsec_slice_from_str(k.key), T0, &id),
               IOTSEC_ERR_BUSY);
    assert_int_equal(id.reason, IOTSEC_APIKEY_ERROR);
    iotsec_apikey_auth_free(a);
    c.default_rate_per_min = IOTSEC_APIKEY_RATE_MAX + 1;
    FAILS_WITH(iotsec_apikey_auth_new(&c, &a), IOTSEC_ERR_CONFIG);
}

static int64_t last_used(struct fixture *f, const char *key_id)
{
    struct iotsec_store_apikey rec;
    OK(iotsec_store_apikey_get(f->s, key_id, &rec));
    return rec.last_used_at;
}

static void apikey_last_used_is_written_once_a_minute(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret k;
    OK(iotsec_apikey_create(f->s, "dev-1", 1000, T0, &k));
    struct iotsec_apikey_identity id;
    assert_int_equal(check(f, k.key, T0 + 100, &id), IOTSEC_APIKEY_OK);
    assert_true(id.touched);
    assert_int_equal(last_used(f, k.key_id), T0 + 100);
    assert_int_equal(check(f, k.key, T0 + 30000, &id), IOTSEC_APIKEY_OK);
    assert_false(id.touched);
    assert_int_equal(check(f, k.key, T0 + 60099, &id), IOTSEC_APIKEY_OK);
    assert_false(id.touched);
    assert_int_equal(last_used(f, k.key_id), T0 + 100);
    assert_int_equal(check(f, k.key, T0 + 60100, &id), IOTSEC_APIKEY_OK);
    assert_true(id.touched);
    assert_int_equal(last_used(f, k.key_id), T0 + 60100);
    /* Refusals do not count as use. */
    OK(iotsec_store_apikey_revoke(f->s, k.key_id, T0 + 200000));
    assert_int_equal(check(f, k.key, T0 + 300000, &id), IOTSEC_APIKEY_REVOKED);
    assert_int_equal(last_used(f, k.key_id), T0 + 60100);
}

static void apikey_decision_uses_the_constant_time_compare(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret k;
    OK(iotsec_apikey_create(f->s, "dev-1", 0, T0, &k));
    atomic_store(&ct_calls, 0);
    assert_int_equal(check(f, k.key, T0, NULL), IOTSEC_APIKEY_OK);
    assert_true(atomic_load(&ct_calls) >= 1);
    /* When the comparison says no, the key is refused although the index found it. */
    atomic_store(&ct_force_mismatch, true);
    assert_int_equal(check(f, k.key, T0, NULL), IOTSEC_APIKEY_UNKNOWN);
    atomic_store(&ct_force_mismatch, false);
    assert_int_equal(check(f, k.key, T0, NULL), IOTSEC_APIKEY_OK);
}

/* ---- threads ---- */

#define THREADS        4
#define PER_THREAD     40
#define THREADED_LIMIT 100

struct worker {
    struct fixture *f;
    const char *key;
    int accepted;
    int limited;
    bool failed;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct iotsec_store *s;
    if (!iotsec_ok(iotsec_store_open(w->f->path, &s))) {
        w->failed = true;
        return NULL;
    }
    for (int i = 0; i < PER_THREAD; i++) {
        struct iotsec_apikey_identity id;
        iotsec_result r =
            iotsec_apikey_authenticate(w->f->auth, s, iotsec_slice_from_str(w->key), T0 + 10, &id);
        if (iotsec_ok(r))
            w->accepted++;
        else if (id.reason == IOTSEC_APIKEY_RATE_LIMITED)
            w->limited++;
        else
            w->failed = true;
    }
    iotsec_store_close(s);
    return NULL;
}

static void apikey_threads_share_one_budget_exactly(void **state)
{
    struct fixture *f = *state;
    struct iotsec_apikey_secret k;
    OK(iotsec_apikey_create(f->s, "dev-1", THREADED_LIMIT, T0, &k));
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.f = f, .key = k.key};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    int accepted = 0, limited = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_false(w[i].failed);
        accepted += w[i].accepted;
        limited += w[i].limited;
    }
    assert_int_equal(accepted, THREADED_LIMIT);
    assert_int_equal(limited, THREADS * PER_THREAD - THREADED_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apikey_generate_matches_the_contract),
        cmocka_unit_test(apikey_parse_is_strict),
        cmocka_unit_test_setup_teardown(apikey_create_checks_device_and_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(apikey_accepts_a_valid_key, setup, teardown),
        cmocka_unit_test_setup_teardown(apikey_refusals_have_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(apikey_revocation_is_immediate, setup, teardown),
        cmocka_unit_test_setup_teardown(apikey_requires_an_active_device, setup, teardown),
        cmocka_unit_test_setup_teardown(apikey_rate_limit_is_per_key_with_its_own_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(apikey_default_rate_is_configurable_and_classes_are_bounded,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(apikey_last_used_is_written_once_a_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(apikey_decision_uses_the_constant_time_compare, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(apikey_threads_share_one_budget_exactly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
