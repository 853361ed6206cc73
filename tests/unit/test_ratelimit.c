/* Unit tests for the GCRA rate limiter: the contract's 60 per minute with its Retry-After,
 * recovery over time, independent keys, rounding of waits, a clock stepping back, memory
 * staying fixed under a million distinct keys, and exact totals under concurrent threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "iotsec/ratelimit.h"

/* An arbitrary origin well away from zero, as Unix ms would be. */
#define T0 ((int64_t)1764000000000)

static struct iotsec_ratelimit *make(uint32_t rate, int64_t period_ms, uint32_t burst,
                                     size_t capacity)
{
    struct iotsec_ratelimit_config c = {
        .rate = rate, .period_ms = period_ms, .burst = burst, .capacity = capacity};
    struct iotsec_ratelimit *rl = NULL;
    if (!iotsec_ok(iotsec_ratelimit_new(&c, &rl)))
        fail_msg("ratelimit_new: %s", iotsec_error_message());
    return rl;
}

/* Returns whether allowed; *retry gets the wait. */
static bool take(struct iotsec_ratelimit *rl, const char *key, int64_t now, int64_t *retry)
{
    bool allowed = true;
    int64_t r = -1;
    if (!iotsec_ok(iotsec_ratelimit_take(rl, iotsec_slice_from_str(key), now, &allowed, &r)))
        fail_msg("take: %s", iotsec_error_message());
    if (allowed)
        assert_int_equal(r, 0);
    else
        assert_true(r >= 1);
    if (retry != NULL)
        *retry = r;
    return allowed;
}

static void ratelimit_sixty_per_minute(void **state)
{
    (void)state;
    struct iotsec_ratelimit *rl = make(60, 60000, 60, 64);
    int64_t retry;
    for (int i = 0; i < 60; i++)
        assert_true(take(rl, "dev-1", T0, NULL));
    assert_false(take(rl, "dev-1", T0, &retry));
    assert_int_equal(retry, 1000);
    /* A refusal spends nothing: asking again gives the same answer. */
    assert_false(take(rl, "dev-1", T0 + 1, &retry));
    assert_int_equal(retry, 999);
    assert_false(take(rl, "dev-1", T0 + 999, &retry));
    assert_int_equal(retry, 1);
    /* Waiting exactly Retry-After is enough, and buys one request. */
    assert_true(take(rl, "dev-1", T0 + 1000, NULL));
    assert_false(take(rl, "dev-1", T0 + 1000, &retry));
    assert_int_equal(retry, 1000);
    iotsec_ratelimit_free(rl);
}

static void ratelimit_recovers_over_time(void **state)
{
    (void)state;
    struct iotsec_ratelimit *rl = make(60, 60000, 60, 64);
    for (int i = 0; i < 60; i++)
        assert_true(take(rl, "dev", T0, NULL));
    assert_false(take(rl, "dev", T0, NULL));
    /* Half a minute later, half the budget is back. */
    for (int i = 0; i < 30; i++)
        assert_true(take(rl, "dev", T0 + 30000, NULL));
    assert_false(take(rl, "dev", T0 + 30000, NULL));
    /* A full idle period restores the whole burst, and no more. */
    for (int i = 0; i < 60; i++)
        assert_true(take(rl, "dev", T0 + 150000, NULL));
    assert_false(take(rl, "dev", T0 + 150000, NULL));
    /* A steady 1 per second is sustained indefinitely. */
    for (int64_t t = 1; t <= 600; t++)
        assert_true(take(rl, "dev", T0 + 150000 + t * 1000, NULL));
    iotsec_ratelimit_free(rl);
}

static void ratelimit_keys_are_independent(void **state)
{
    (void)state;
    struct iotsec_ratelimit *rl = make(60, 60000, 60, 64);
    for (int i = 0; i < 60; i++)
        assert_true(take(rl, "dev-a", T0, NULL));
    assert_false(take(rl, "dev-a", T0, NULL));
    for (int i = 0; i < 60; i++)
        assert_true(take(rl, "dev-b", T0, NULL));
    assert_false(take(rl, "dev-b", T0, NULL));
    /* Keys that share a prefix, or differ only in length, are distinct. */
    assert_true(take(rl, "dev-aa", T0, NULL));
    assert_true(take(rl, "dev-", T0, NULL));
    iotsec_ratelimit_free(rl);
}

static void ratelimit_rounds_waits_up(void **state)
{
    (void)state;
    /* 3 per second: one request every 333.33 ms. */
    struct iotsec_ratelimit *rl = make(3, 1000, 1, 8);
    int64_t retry;
    assert_true(take(rl, "k", T0, NULL));
    assert_false(take(rl, "k", T0, &retry));
    assert_int_equal(retry, 334);
    assert_false(take(rl, "k", T0 + 333, &retry));
    assert_int_equal(retry, 1);
    assert_true(take(rl, "k", T0 + 334, NULL));
    /* Exact arithmetic: three requests per second for an hour never drift. */
    struct iotsec_ratelimit *steady = make(3, 1000, 3, 8);
    for (int64_t s = 0; s < 3600; s++)
        for (int i = 0; i < 3; i++)
            assert_true(take(steady, "k", T0 + s * 1000, NULL));
    iotsec_ratelimit_free(steady);
    iotsec_ratelimit_free(rl);
}

static void ratelimit_clock_back_is_stricter(void **state)
{
    (void)state;
    struct iotsec_ratelimit *rl = make(60, 60000, 60, 8);
    int64_t retry;
    for (int i = 0; i < 60; i++)
        assert_true(take(rl, "k", T0, NULL));
    assert_false(take(rl, "k", T0 - 5000, &retry));
    assert_int_equal(retry, 6000);
    iotsec_ratelimit_free(rl);
}

static void ratelimit_rejects_bad_input(void **state)
{
    (void)state;
    struct iotsec_ratelimit_config bad[] = {
        {.rate = 0, .period_ms = 1000, .burst = 1, .capacity = 1},
        {.rate = 1, .period_ms = 0, .burst = 1, .capacity = 1},
        {.rate = 1, .period_ms = 1000, .burst = 0, .capacity = 1},
        {.rate = 1, .period_ms = 1000, .burst = 1, .capacity = 0},
        {.rate = IOTSEC_RATELIMIT_RATE_MAX + 1, .period_ms = 1000, .burst = 1, .capacity = 1},
        {.rate = 1, .period_ms = IOTSEC_RATELIMIT_PERIOD_MAX + 1, .burst = 1, .capacity = 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct iotsec_ratelimit *rl = (struct iotsec_ratelimit *)1;
        assert_false(iotsec_ok(iotsec_ratelimit_new(&bad[i], &rl)));
        assert_null(rl);
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    }

    struct iotsec_ratelimit *rl = make(60, 60000, 60, 8);
    char long_key[IOTSEC_RATELIMIT_KEY_MAX + 1];
    memset(long_key, 'k', sizeof(long_key));
    bool allowed = true;
    assert_false(iotsec_ok(iotsec_ratelimit_take(rl, iotsec_slice_make(long_key, sizeof(long_key)),
                                                 T0, &allowed, NULL)));
    assert_false(allowed);
    assert_string_equal(iotsec_error_message(), "ratelimit: key length 129 is out of range 1..128");
    allowed = true;
    assert_false(
        iotsec_ok(iotsec_ratelimit_take(rl, iotsec_slice_make("", 0), T0, &allowed, NULL)));
    assert_false(allowed);
    allowed = true;
    assert_false(
        iotsec_ok(iotsec_ratelimit_take(rl, iotsec_slice_from_str("k"), -1, &allowed, NULL)));
    assert_false(allowed);
    /* The longest key is fine, and stored whole (a one-byte-shorter prefix is another key). */
    assert_true(iotsec_ok(iotsec_ratelimit_take(
        rl, iotsec_slice_make(long_key, IOTSEC_RATELIMIT_KEY_MAX), T0, &allowed, NULL)));
    assert_true(allowed);
    iotsec_ratelimit_free(rl);
}

static void ratelimit_memory_is_bounded(void **state)
{
    (void)state;
    struct iotsec_ratelimit *rl = make(60, 60000, 2, 1000);
    struct iotsec_ratelimit_stats before, after;
    iotsec_ratelimit_get_stats(rl, &before);
    assert_int_equal(before.slots, 1024);
    assert_int_equal(before.entries, 0);

    /* A million distinct keys, one per 100 ms: each is idle again 1 s after its request,
     * so about ten are active at a time and slots are reused without ever displacing a
     * key that is still limited. */
    char key[32];
    for (int64_t i = 0; i < 1000000; i++) {
        snprintf(key, sizeof(key), "device-%lld", (long long)i);
        assert_true(take(rl, key, T0 + i * 100, NULL));
    }
    iotsec_ratelimit_get_stats(rl, &after);
    assert_int_equal(after.slots, before.slots);
    assert_int_equal(after.memory_bytes, before.memory_bytes);
    assert_true(after.entries <= after.slots);
    assert_int_equal(after.reused_idle + after.entries, 1000000);
    assert_int_equal(after.evicted_active, 0);

    /* Keys all active at once but fewer than the slots (half full) all fit: two
     * candidate buckets per key keep any one bucket from overflowing, so nothing active
     * is displaced and each key keeps its own budget. */
    for (int round = 0; round < 2; round++) {
        for (int64_t i = 0; i < 512; i++) {
            snprintf(key, sizeof(key), "fleet-%lld", (long long)i);
            assert_true(take(rl, key, T0 + 150000000, NULL));
        }
    }
    for (int64_t i = 0; i < 512; i++) {
        snprintf(key, sizeof(key), "fleet-%lld", (long long)i);
        assert_false(take(rl, key, T0 + 150000000, NULL));
    }
    iotsec_ratelimit_get_stats(rl, &after);
    assert_int_equal(after.evicted_active, 0);

    /* A million keys at one instant: the table must evict active keys, and stays fixed. */
    for (int64_t i = 0; i < 1000000; i++) {
        snprintf(key, sizeof(key), "burst-%lld", (long long)i);
        assert_true(take(rl, key, T0 + 200000000, NULL));
    }
    iotsec_ratelimit_get_stats(rl, &after);
    assert_int_equal(after.memory_bytes, before.memory_bytes);
    assert_true(after.entries <= after.slots);
    assert_true(after.evicted_active > 0);

    /* A key still in the table keeps its state through all that churn. */
    assert_true(take(rl, "tracked", T0 + 300000000, NULL));
    assert_true(take(rl, "tracked", T0 + 300000000, NULL));
    assert_false(take(rl, "tracked", T0 + 300000000, NULL));
    iotsec_ratelimit_free(rl);
}

#define THREADS      8
#define PER_THREAD   5000
#define SHARED_KEYS  4
#define SHARED_BURST 100

struct worker {
    struct iotsec_ratelimit *rl;
    int id;
    long allowed_shared;
    long allowed_own;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char own[32];
    snprintf(own, sizeof(own), "own-%d", w->id);
    for (int i = 0; i < PER_THREAD; i++) {
        char shared[16];
        snprintf(shared, sizeof(shared), "shared-%d", i % SHARED_KEYS);
        bool allowed = false;
        if (!iotsec_ok(
                iotsec_ratelimit_take(w->rl, iotsec_slice_from_str(shared), T0, &allowed, NULL)))
            return NULL;
        w->allowed_shared += allowed;
        if (!iotsec_ok(
                iotsec_ratelimit_take(w->rl, iotsec_slice_from_str(own), T0, &allowed, NULL)))
            return NULL;
        w->allowed_own += allowed;
    }
    return NULL;
}

static void ratelimit_concurrent_totals_are_exact(void **state)
{
    (void)state;
    struct iotsec_ratelimit *rl = make(60, 60000, SHARED_BURST, 4096);
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.rl = rl, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    long shared = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        shared += w[i].allowed_shared;
        /* Each thread's own key is limited on its own. */
        assert_int_equal(w[i].allowed_own, SHARED_BURST);
    }
    /* Contended keys: exactly the burst of each, however the threads interleave. */
    assert_int_equal(shared, SHARED_KEYS * SHARED_BURST);
    iotsec_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ratelimit_sixty_per_minute),
        cmocka_unit_test(ratelimit_recovers_over_time),
        cmocka_unit_test(ratelimit_keys_are_independent),
        cmocka_unit_test(ratelimit_rounds_waits_up),
        cmocka_unit_test(ratelimit_clock_back_is_stricter),
        cmocka_unit_test(ratelimit_rejects_bad_input),
        cmocka_unit_test(ratelimit_memory_is_bounded),
        cmocka_unit_test(ratelimit_concurrent_totals_are_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
