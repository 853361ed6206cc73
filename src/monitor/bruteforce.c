/*
 * Brute-force detector: two fixed set-associative tables of failure-time rings (see
 * include/iotsec/bruteforce.h for the rules and the eviction choice).
 *
 * Layout: a table is an array of slots (key, hash, ring bookkeeping) and a parallel
 * array of `threshold` int64 times per slot, both allocated once. A failure touches two
 * buckets of IOTSEC_BRUTEFORCE_WAYS slots in each table it counts in, so the work per
 * failure is bounded by 2 tables x 16 slots x threshold times, independent of how many
 * keys were ever seen.
 *
 * The bucket hash is SipHash-2-4 from OpenSSL (EVP_MAC "SIPHASH") under a key drawn at
 * creation: an attacker who cannot predict bucket choice cannot crowd the slots of one
 * victim key. One MAC context is reused under the detector's mutex.
 */
#include "iotsec/bruteforce.h"

#include "iotsec/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NEVER INT64_MIN

struct slot {
    uint64_t hash;
    int64_t last_trip; /* NEVER when the key has not tripped */
    uint8_t len;       /* 0: empty (keys are never empty) */
    uint8_t head;      /* next ring position to write */
    uint8_t count;     /* times in the ring, <= threshold */
    char key[IOTSEC_BRUTEFORCE_KEY_MAX];
};

struct table {
    struct slot *slots;
    int64_t *times; /* threshold per slot */
    size_t bucket_mask;
    size_t entries;
};

struct iotsec_bruteforce {
    pthread_mutex_t lock;
    uint32_t threshold;
    int64_t window;
    size_t slots_per_table;
    struct table device;
    struct table source;
    EVP_MAC *mac;
    EVP_MAC_CTX *mac_ctx;
    uint64_t evicted_active;
    uint64_t detections;
};

static size_t round_up_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static iotsec_result table_init(struct table *t, size_t slots, uint32_t threshold)
{
    t->bucket_mask = slots / IOTSEC_BRUTEFORCE_WAYS - 1;
    t->slots = calloc(slots, sizeof(struct slot));
    t->times = calloc(slots * threshold, sizeof(int64_t));
    IOTSEC_ENSURE(t->slots != NULL && t->times != NULL, IOTSEC_ERR_NOMEM,
                  "bruteforce: out of memory for %zu slots", slots);
    return IOTSEC_RESULT_OK;
}

static void table_free(struct table *t)
{
    free(t->slots);
    free(t->times);
}

void iotsec_bruteforce_free(struct iotsec_bruteforce *bf)
{
    if (bf == NULL)
        return;
    table_free(&bf->device);
    table_free(&bf->source);
    EVP_MAC_CTX_free(bf->mac_ctx);
    EVP_MAC_free(bf->mac);
    pthread_mutex_destroy(&bf->lock);
    free(bf);
}

static iotsec_result mac_init(struct iotsec_bruteforce *bf)
{
    uint8_t key[16];
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_END};
    bf->mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    IOTSEC_ENSURE(bf->mac != NULL, IOTSEC_ERR_CRYPTO, "bruteforce: OpenSSL has no SIPHASH");
    bf->mac_ctx = EVP_MAC_CTX_new(bf->mac);
    IOTSEC_ENSURE_ALLOC(bf->mac_ctx);
    IOTSEC_GUARD(iotsec_random(key, sizeof(key)));
    int ok = EVP_MAC_init(bf->mac_ctx, key, sizeof(key), params);
    iotsec_wipe(key, sizeof(key));
    IOTSEC_GUARD_OSSL(ok, IOTSEC_ERR_CRYPTO, "bruteforce: SipHash init");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_bruteforce_new(const struct iotsec_bruteforce_config *config,
                                    struct iotsec_bruteforce **out)
{
    IOTSEC_ENSURE(out != NULL, IOTSEC_ERR_INVALID_ARG, "bruteforce: no output");
    *out = NULL;
    struct iotsec_bruteforce_config c =
        config != NULL ? *config : (struct iotsec_bruteforce_config){0};
    if (c.threshold == 0)
        c.threshold = IOTSEC_BRUTEFORCE_DEFAULT_THRESHOLD;
    if (c.window_ms == 0)
        c.window_ms = IOTSEC_BRUTEFORCE_DEFAULT_WINDOW_MS;
    if (c.capacity == 0)
        c.capacity = IOTSEC_BRUTEFORCE_DEFAULT_CAPACITY;
    IOTSEC_ENSURE(c.threshold <= IOTSEC_BRUTEFORCE_THRESHOLD_MAX, IOTSEC_ERR_CONFIG,
                  "bruteforce: threshold %u is out of range 1..%d", c.threshold,
                  IOTSEC_BRUTEFORCE_THRESHOLD_MAX);
    IOTSEC_ENSURE(c.window_ms >= 1 && c.window_ms <= IOTSEC_BRUTEFORCE_WINDOW_MAX,
                  IOTSEC_ERR_CONFIG, "bruteforce: window %lld ms is out of range (1 ms..7 days)",
                  (long long)c.window_ms);
    IOTSEC_ENSURE(c.capacity <= IOTSEC_BRUTEFORCE_CAPACITY_MAX, IOTSEC_ERR_CONFIG,
                  "bruteforce: capacity %zu is out of range", c.capacity);
    size_t slots = round_up_pow2(c.capacity);
    if (slots < 2 * IOTSEC_BRUTEFORCE_WAYS)
        slots = 2 * IOTSEC_BRUTEFORCE_WAYS;

    struct iotsec_bruteforce *bf = calloc(1, sizeof(*bf));
    IOTSEC_ENSURE_ALLOC(bf);
    pthread_mutex_init(&bf->lock, NULL);
    bf->threshold = c.threshold;
    bf->window = c.window_ms;
    bf->slots_per_table = slots;
    if (!iotsec_ok(table_init(&bf->device, slots, c.threshold)) ||
        !iotsec_ok(table_init(&bf->source, slots, c.threshold)) || !iotsec_ok(mac_init(bf))) {
        iotsec_bruteforce_free(bf);
        return IOTSEC_RESULT_ERR;
    }
    *out = bf;
    return IOTSEC_RESULT_OK;
}

static iotsec_result key_hash(struct iotsec_bruteforce *bf, const char *key, size_t len,
                              uint64_t *out)
{
    uint8_t h[8];
    size_t n = 0;
    IOTSEC_GUARD_OSSL(EVP_MAC_init(bf->mac_ctx, NULL, 0, NULL), IOTSEC_ERR_CRYPTO,
                      "bruteforce: SipHash");
    IOTSEC_GUARD_OSSL(EVP_MAC_update(bf->mac_ctx, (const uint8_t *)key, len), IOTSEC_ERR_CRYPTO,
                      "bruteforce: SipHash");
    IOTSEC_GUARD_OSSL(EVP_MAC_final(bf->mac_ctx, h, &n, sizeof(h)), IOTSEC_ERR_CRYPTO,
                      "bruteforce: SipHash");
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(h); i++)
        v = v << 8 | h[i];
    *out = v;
    return IOTSEC_RESULT_OK;
}

static int64_t *ring_of(const struct iotsec_bruteforce *bf, const struct table *t,
                        const struct slot *s)
{
    return &t->times[(size_t)(s - t->slots) * bf->threshold];
}

static int64_t newest_time(const struct iotsec_bruteforce *bf, const struct table *t,
                           const struct slot *s)
{
    const int64_t *ring = ring_of(bf, t, s);
    return ring[(s->head + bf->threshold - 1) % bf->threshold];
}

/* Failures at times > now - window, counted newest first (the ring is in time order). */
static uint32_t failures_in_window(const struct iotsec_bruteforce *bf, const struct table *t,
                                   const struct slot *s, int64_t now)
{
    const int64_t *ring = ring_of(bf, t, s);
    uint32_t n = 0;
    for (uint32_t i = 1; i <= s->count; i++) {
        int64_t ts = ring[(s->head + bf->threshold - i) % bf->threshold];
        if (ts <= now - bf->window)
            break;
        n++;
    }
    return n;
}

static bool is_idle(const struct iotsec_bruteforce *bf, const struct table *t, const struct slot *s,
                    int64_t now)
{
    return newest_time(bf, t, s) <= now - bf->window &&
           (s->last_trip == NEVER || s->last_trip <= now - bf->window);
}

/* The key's slot, or a slot given to it (empty, else idle, else the weakest candidate). */
static struct slot *find_or_place(struct iotsec_bruteforce *bf, struct table *t, uint64_t hash,
                                  const char *key, size_t len, int64_t now)
{
    size_t b0 = (size_t)hash & t->bucket_mask;
    size_t b1 = (size_t)(hash >> 32) & t->bucket_mask;
    if (b1 == b0)
        b1 = b0 ^ 1;
    struct slot *const buckets[2] = {&t->slots[b0 * IOTSEC_BRUTEFORCE_WAYS],
                                     &t->slots[b1 * IOTSEC_BRUTEFORCE_WAYS]};
    struct slot *empty = NULL, *idle = NULL, *weakest = NULL;
    uint32_t weakest_score = UINT32_MAX;
    int64_t weakest_newest = INT64_MAX;
    for (size_t b = 0; b < 2; b++) {
        for (size_t i = 0; i < IOTSEC_BRUTEFORCE_WAYS; i++) {
            struct slot *s = &buckets[b][i];
            if (s->len == 0) {
                if (empty == NULL)
                    empty = s;
                continue;
            }
            if (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0)
                return s;
            if (idle == NULL && is_idle(bf, t, s, now)) {
                idle = s;
                continue;
            }
            uint32_t score = failures_in_window(bf, t, s, now);
            int64_t newest = newest_time(bf, t, s);
            if (score < weakest_score || (score == weakest_score && newest < weakest_newest)) {
                weakest = s;
                weakest_score = score;
                weakest_newest = newest;
            }
        }
    }
    struct slot *s = empty != NULL ? empty : idle != NULL ? idle : weakest;
    if (s == empty)
        t->entries++;
    else if (s == weakest && weakest_score > 0)
        bf->evicted_active++;
    s->hash = hash;
    s->len = (uint8_t)len;
    memcpy(s->key, key, len);
    s->head = 0;
    s->count = 0;
    s->last_trip = NEVER;
    return s;
}

/* Records a failure for one key; *detected when it trips now, *under_attack when it has
 * tripped within the window. */
static iotsec_result count_failure(struct iotsec_bruteforce *bf, struct table *t, const char *key,
                                   size_t len, int64_t now, bool *detected, bool *under_attack,
                                   uint32_t *failures)
{
    uint64_t hash;
    IOTSEC_GUARD(key_hash(bf, key, len, &hash));
    struct slot *s = find_or_place(bf, t, hash, key, len, now);
    int64_t *ring = ring_of(bf, t, s);
    if (s->count > 0) {
        int64_t newest = newest_time(bf, t, s);
        if (now < newest)
            now = newest; /* a clock stepping back must not erase failures */
    }
    ring[s->head] = now;
    s->head = (uint8_t)((s->head + 1) % bf->threshold);
    if (s->count < bf->threshold)
        s->count++;
    *failures = failures_in_window(bf, t, s, now);
    bool armed = s->last_trip == NEVER || now - s->last_trip >= bf->window;
    *detected = *failures >= bf->threshold && armed;
    if (*detected) {
        s->last_trip = now;
        bf->detections++;
    }
    *under_attack = s->last_trip != NEVER && now - s->last_trip < bf->window;
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_key(const char *what, const char *key, size_t *len)
{
    *len = key != NULL ? strnlen(key, IOTSEC_BRUTEFORCE_KEY_MAX + 1) : 0;
    IOTSEC_ENSURE(*len <= IOTSEC_BRUTEFORCE_KEY_MAX, IOTSEC_ERR_INVALID_ARG,
                  "bruteforce: %s is longer than %d bytes", what, IOTSEC_BRUTEFORCE_KEY_MAX);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_bruteforce_record(struct iotsec_bruteforce *bf, const char *device_id,
                                       const char *source, int64_t now_ms,
                                       struct iotsec_bruteforce_verdict *out)
{
    IOTSEC_ENSURE(bf != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "bruteforce: no detector");
    memset(out, 0, sizeof(*out));
    size_t dlen, slen;
    IOTSEC_GUARD(check_key("device id", device_id, &dlen));
    IOTSEC_GUARD(check_key("source address", source, &slen));
    IOTSEC_ENSURE(now_ms >= 0, IOTSEC_ERR_INVALID_ARG, "bruteforce: negative time");

    pthread_mutex_lock(&bf->lock);
    iotsec_result r = IOTSEC_RESULT_OK;
    bool unused;
    if (dlen > 0)
        r = count_failure(bf, &bf->device, device_id, dlen, now_ms, &out->device_detected,
                          &out->device_under_attack, &out->device_failures);
    if (iotsec_ok(r) && slen > 0)
        r = count_failure(bf, &bf->source, source, slen, now_ms, &out->source_detected, &unused,
                          &out->source_failures);
    pthread_mutex_unlock(&bf->lock);
    return r;
}

void iotsec_bruteforce_get_stats(struct iotsec_bruteforce *bf, struct iotsec_bruteforce_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&bf->lock);
    out->slots = bf->slots_per_table;
    out->memory_bytes =
        2 * bf->slots_per_table * (sizeof(struct slot) + bf->threshold * sizeof(int64_t));
    out->device_entries = bf->device.entries;
    out->source_entries = bf->source.entries;
    out->evicted_active = bf->evicted_active;
    out->detections = bf->detections;
    pthread_mutex_unlock(&bf->lock);
}
