/*
 * Unit tests for the brute-force detector: the threshold and window edges (exactly
 * `threshold` failures less than `window` apart trip, spanning the full window does not),
 * one detection per key per window, device and source keys counted apart, a clock that
 * steps back, configuration bounds, memory that stays at capacity under a million
 * distinct addresses (while a key close to the threshold survives the flood), and
 * several threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotsec/bruteforce.h"

#define T0 1700000000000LL
#define W  300000 /* the default window, 5 minutes */

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            fail_msg("%s failed: %s", #expr, iotsec_error_message());                              \
    } while (0)

static struct iotsec_bruteforce *make(uint32_t threshold, int64_t window, size_t capacity)
{
    struct iotsec_bruteforce_config c = {
        .threshold = threshold, .window_ms = window, .capacity = capacity};
    struct iotsec_bruteforce *bf = NULL;
    OK(iotsec_bruteforce_new(&c, &bf));
    return bf;
}

static struct iotsec_bruteforce_verdict fail_at(struct iotsec_bruteforce *bf, const char *dev,
                                                const char *src, int64_t t)
{
    struct iotsec_bruteforce_verdict v;
    OK(iotsec_bruteforce_record(bf, dev, src, t, &v));
    return v;
}

static void fifth_failure_within_window_trips_both_keys(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(0, 0, 0); /* defaults: 5 in 5 minutes */
    for (int i = 0; i < 4; i++) {
        struct iotsec_bruteforce_verdict v = fail_at(bf, "dev-1", "10.0.0.1", T0 + i * 1000);
        assert_false(v.device_detected);
        assert_false(v.source_detected);
        assert_int_equal(v.device_failures, (uint32_t)i + 1);
        assert_int_equal(v.source_failures, (uint32_t)i + 1);
    }
    struct iotsec_bruteforce_verdict v = fail_at(bf, "dev-1", "10.0.0.1", T0 + W - 1);
    assert_true(v.device_detected);
    assert_true(v.source_detected);
    assert_true(v.device_under_attack);
    assert_int_equal(v.source_failures, 5);
    struct iotsec_bruteforce_stats st;
    iotsec_bruteforce_get_stats(bf, &st);
    assert_int_equal(st.detections, 2);
    assert_int_equal(st.device_entries, 1);
    assert_int_equal(st.source_entries, 1);
    iotsec_bruteforce_free(bf);
}

static void failures_spanning_the_full_window_do_not_trip(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(5, W, 64);
    for (int i = 0; i < 4; i++)
        fail_at(bf, NULL, "10.0.0.1", T0 + i);
    /* The first failure is exactly one window old: it has left the window. */
    struct iotsec_bruteforce_verdict v = fail_at(bf, NULL, "10.0.0.1", T0 + W);
    assert_false(v.source_detected);
    assert_int_equal(v.source_failures, 4);
    /* One more at the same moment: with the last four (T0 + 1 .. T0 + W) that is five. */
    v = fail_at(bf, NULL, "10.0.0.1", T0 + W);
    assert_true(v.source_detected);
    assert_int_equal(v.source_failures, 5);
    iotsec_bruteforce_free(bf);
}

static void a_key_trips_once_per_window_then_rearms(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(5, W, 64);
    int detections = 0;
    /* One failure a second for 10 minutes: trips at the 5th, then once the window has
     * passed since that detection, and never in between. */
    for (int i = 0; i < 600; i++) {
        struct iotsec_bruteforce_verdict v = fail_at(bf, NULL, "10.0.0.1", T0 + i * 1000);
        if (v.source_detected) {
            detections++;
            if (detections == 1)
                assert_int_equal(i, 4);
            if (detections == 2)
                assert_int_equal(i, 4 + W / 1000);
        }
    }
    assert_int_equal(detections, 2);
    iotsec_bruteforce_free(bf);
}

static void device_and_source_are_counted_apart(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(5, W, 64);
    /* Five addresses, one attempt each, against one device: the device trips. */
    char ip[32];
    struct iotsec_bruteforce_verdict v;
    for (int i = 0; i < 5; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
        v = fail_at(bf, "dev-1", ip, T0 + i);
        assert_false(v.source_detected);
        assert_int_equal(v.source_failures, 1);
    }
    assert_true(v.device_detected);
    /* A sixth address failing against the same device: not a new detection, but the
     * device is under attack. */
    v = fail_at(bf, "dev-1", "10.0.0.99", T0 + 10);
    assert_false(v.device_detected);
    assert_true(v.device_under_attack);
    /* One address across five devices: the source trips, no device does. */
    char dev[32];
    for (int i = 0; i < 5; i++) {
        snprintf(dev, sizeof(dev), "other-%d", i);
        v = fail_at(bf, dev, "192.0.2.1", T0 + 20 + i);
        assert_false(v.device_detected);
    }
    assert_true(v.source_detected);
    /* A failure without device or source counts nowhere. */
    v = fail_at(bf, NULL, "", T0);
    assert_false(v.device_detected || v.source_detected);
    assert_int_equal(v.device_failures + v.source_failures, 0);
    iotsec_bruteforce_free(bf);
}

static void configured_threshold_and_window_apply(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(3, 1000, 16);
    fail_at(bf, NULL, "a", 0);
    fail_at(bf, NULL, "a", 500);
    assert_true(fail_at(bf, NULL, "a", 999).source_detected);
    fail_at(bf, NULL, "b", 0);
    fail_at(bf, NULL, "b", 500);
    assert_false(fail_at(bf, NULL, "b", 1000).source_detected);
    iotsec_bruteforce_free(bf);
    /* Threshold 1: every first failure is an attack. */
    bf = make(1, 1000, 16);
    assert_true(fail_at(bf, "d", NULL, 5).device_detected);
    iotsec_bruteforce_free(bf);
}

static void clock_stepping_back_keeps_failures(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(5, W, 64);
    fail_at(bf, NULL, "10.0.0.1", T0 + 100000);
    fail_at(bf, NULL, "10.0.0.1", T0 + 100001);
    fail_at(bf, NULL, "10.0.0.1", T0 + 100002);
    fail_at(bf, NULL, "10.0.0.1", T0 + 100003);
    /* The clock jumps an hour back: the failure still counts, at the latest time. */
    struct iotsec_bruteforce_verdict v = fail_at(bf, NULL, "10.0.0.1", T0 - 3600000);
    assert_true(v.source_detected);
    iotsec_bruteforce_free(bf);
}

static void bad_config_and_arguments_are_refused(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = NULL;
    struct iotsec_bruteforce_config c = {.threshold = IOTSEC_BRUTEFORCE_THRESHOLD_MAX + 1};
    assert_false(iotsec_ok(iotsec_bruteforce_new(&c, &bf)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    c = (struct iotsec_bruteforce_config){.window_ms = -1};
    assert_false(iotsec_ok(iotsec_bruteforce_new(&c, &bf)));
    c = (struct iotsec_bruteforce_config){.capacity = IOTSEC_BRUTEFORCE_CAPACITY_MAX + 1};
    assert_false(iotsec_ok(iotsec_bruteforce_new(&c, &bf)));
    assert_null(bf);
    bf = make(5, W, 16);
    struct iotsec_bruteforce_verdict v;
    char long_key[IOTSEC_BRUTEFORCE_KEY_MAX + 2];
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_false(iotsec_ok(iotsec_bruteforce_record(bf, long_key, NULL, T0, &v)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    assert_false(iotsec_ok(iotsec_bruteforce_record(bf, "d", NULL, -1, &v)));
    iotsec_bruteforce_free(bf);
}

/* The memory bound: a million distinct addresses, all inside one window, leave the table
 * at its fixed size, and an address with four failures (one short of an attack) is not
 * pushed out by the flood of one-failure addresses: its fifth failure still trips. */
static void million_distinct_sources_stay_within_capacity(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(5, W, 65536);
    struct iotsec_bruteforce_stats before, after;
    iotsec_bruteforce_get_stats(bf, &before);
    assert_int_equal(before.slots, 65536);
    for (int i = 0; i < 4; i++)
        fail_at(bf, NULL, "203.0.113.9", T0 + i);
    char ip[32];
    for (uint32_t i = 0; i < 1000000; i++) {
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct iotsec_bruteforce_verdict v = fail_at(bf, NULL, ip, T0 + 10 + i / 10000);
        if (v.source_detected)
            fail_msg("a one-attempt address %s tripped", ip);
    }
    iotsec_bruteforce_get_stats(bf, &after);
    assert_int_equal(after.source_entries, after.slots);
    assert_int_equal(after.memory_bytes, before.memory_bytes);
    assert_int_equal(after.device_entries, 0);
    /* Most of the million had to push out another one-failure address. */
    assert_true(after.evicted_active > 900000);
    struct iotsec_bruteforce_verdict v = fail_at(bf, NULL, "203.0.113.9", T0 + 200);
    assert_true(v.source_detected);
    assert_int_equal(v.source_failures, 5);
    iotsec_bruteforce_free(bf);
}

struct worker {
    struct iotsec_bruteforce *bf;
    int id;
    int detections_shared;
    int detections_own;
};

#define THREADS    4
#define PER_THREAD 20000

static void *work(void *arg)
{
    struct worker *w = arg;
    char ip[32];
    for (int i = 0; i < PER_THREAD; i++) {
        struct iotsec_bruteforce_verdict v;
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", w->id, (i >> 8) & 255, i & 255);
        /* Every thread hammers one shared device; each address fails once. */
        if (!iotsec_ok(iotsec_bruteforce_record(w->bf, "shared", ip, T0 + 1, &v)))
            return NULL;
        w->detections_shared += v.device_detected;
        w->detections_own += v.source_detected;
    }
    return w;
}

static void concurrent_threads_count_exactly(void **state)
{
    (void)state;
    struct iotsec_bruteforce *bf = make(5, W, 1 << 17);
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.bf = bf, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    int shared = 0, own = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_ptr_equal(ret, &w[i]);
        shared += w[i].detections_shared;
        own += w[i].detections_own;
    }
    /* One detection for the shared device in the one window; none for any address. */
    assert_int_equal(shared, 1);
    assert_int_equal(own, 0);
    struct iotsec_bruteforce_stats st;
    iotsec_bruteforce_get_stats(bf, &st);
    assert_int_equal(st.detections, 1);
    assert_int_equal(st.device_entries, 1);
    assert_true(st.source_entries <= st.slots);
    iotsec_bruteforce_free(bf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifth_failure_within_window_trips_both_keys),
        cmocka_unit_test(failures_spanning_the_full_window_do_not_trip),
        cmocka_unit_test(a_key_trips_once_per_window_then_rearms),
        cmocka_unit_test(device_and_source_are_counted_apart),
        cmocka_unit_test(configured_threshold_and_window_apply),
        cmocka_unit_test(clock_stepping_back_keeps_failures),
        cmocka_unit_test(bad_config_and_arguments_are_refused),
        cmocka_unit_test(million_distinct_sources_stay_within_capacity),
        cmocka_unit_test(concurrent_threads_count_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
