/*
 * API keys: generation, the strict format, and the per-request check (include/iotsec/apikey.h).
 *
 * Nothing about a key's validity is cached here: revocation, the device's status and the
 * hash are read from the store on every check, so no cache can outlive a revocation.
 * The only state an authenticator keeps is rate-limit state, in one GCRA limiter per
 * distinct per-minute rate (ratelimit.h fixes the rate per limiter), each keyed by key
 * id. Limiters are made on first use of a rate and never removed; a reader finds them
 * without a lock because an entry is complete before the count that covers it is
 * published (release/acquire).
 */
#include "iotsec/apikey.h"

#include "iotsec/crypto.h"
#include "iotsec/ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_ID_PREFIX       "ak_"
#define KEY_ID_RANDOM_LEN   8
#define DEFAULT_LIMITER_CAP 4096
/* Key ids are random; a collision is astronomically unlikely, but is retried, not fatal. */
#define CREATE_ATTEMPTS 3

static const char hex_digits[] = "0123456789abcdef";

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

iotsec_result iotsec_apikey_generate(struct iotsec_apikey_secret *out)
{
    IOTSEC_ENSURE(out != NULL, IOTSEC_ERR_INVALID_ARG, "apikey: no output");
    uint8_t raw[IOTSEC_APIKEY_RANDOM_LEN], id[KEY_ID_RANDOM_LEN];
    *out = (struct iotsec_apikey_secret){0};
    iotsec_result r = iotsec_random(raw, sizeof(raw));
    if (iotsec_ok(r))
        r = iotsec_random(id, sizeof(id));
    if (iotsec_ok(r)) {
        memcpy(out->key, IOTSEC_APIKEY_PREFIX, IOTSEC_APIKEY_PREFIX_LEN);
        hex_encode(raw, sizeof(raw), out->key + IOTSEC_APIKEY_PREFIX_LEN);
        memcpy(out->key_id, KEY_ID_PREFIX, strlen(KEY_ID_PREFIX));
        hex_encode(id, sizeof(id), out->key_id + strlen(KEY_ID_PREFIX));
        r = iotsec_sha256(iotsec_slice_make(out->key, IOTSEC_APIKEY_LEN), out->hash);
    }
    iotsec_wipe(raw, sizeof(raw));
    if (!iotsec_ok(r))
        iotsec_apikey_secret_wipe(out);
    return r;
}

void iotsec_apikey_secret_wipe(struct iotsec_apikey_secret *k)
{
    if (k != NULL)
        iotsec_wipe(k, sizeof(*k));
}

/* Messages name the position and the byte's value class, never the key's contents:
 * the input may be a real key with one typo in it. */
iotsec_result iotsec_apikey_parse(struct iotsec_slice text, uint8_t hash[IOTSEC_APIKEY_HASH_LEN])
{
    IOTSEC_ENSURE(text.ptr != NULL || text.len == 0, IOTSEC_ERR_INVALID_ARG, "apikey: no input");
    IOTSEC_ENSURE(text.len == IOTSEC_APIKEY_LEN, IOTSEC_ERR_FORMAT,
                  "apikey: %zu characters, expected %d (\"iot_\" and 48 lowercase hex digits)",
                  text.len, IOTSEC_APIKEY_LEN);
    IOTSEC_ENSURE(memcmp(text.ptr, IOTSEC_APIKEY_PREFIX, IOTSEC_APIKEY_PREFIX_LEN) == 0,
                  IOTSEC_ERR_FORMAT, "apikey: does not start with \"iot_\"");
    for (size_t i = IOTSEC_APIKEY_PREFIX_LEN; i < text.len; i++) {
        uint8_t c = text.ptr[i];
        bool digit = c >= '0' && c <= '9', lower = c >= 'a' && c <= 'f';
        if (digit || lower)
            continue;
        IOTSEC_ENSURE(!(c >= 'A' && c <= 'F'), IOTSEC_ERR_FORMAT,
                      "apikey: uppercase hex digit at offset %zu (keys are lowercase)", i);
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "apikey: byte 0x%02x at offset %zu is not a hex digit", c,
                    i);
    }
    return iotsec_sha256(text, hash);
}

static void device_cleanup(struct iotsec_store_device *d)
{
    iotsec_store_device_clear(d);
}

iotsec_result iotsec_apikey_create(struct iotsec_store *s, const char *device_id,
                                   uint32_t rate_per_min, int64_t now,
                                   struct iotsec_apikey_secret *out)
{
    IOTSEC_ENSURE(s != NULL && device_id != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG,
                  "apikey: missing argument");
    IOTSEC_ENSURE(rate_per_min <= IOTSEC_APIKEY_RATE_MAX, IOTSEC_ERR_INVALID_ARG,
                  "apikey: rate limit %u per minute is out of range 1..%u (0: the default)",
                  rate_per_min, IOTSEC_APIKEY_RATE_MAX);
    struct iotsec_store_device dev IOTSEC_DEFER(device_cleanup) = {0};
    IOTSEC_GUARD(iotsec_store_device_get(s, device_id, &dev));
    /* A revoked device never comes back (its certificates and keys are revoked with it);
     * a disabled one may be enabled again, so it may be given keys meanwhile. */
    IOTSEC_ENSURE(dev.status != IOTSEC_STORE_DEVICE_REVOKED, IOTSEC_ERR_INVALID_ARG,
                  "apikey: device %s is revoked", device_id);

    for (int attempt = 0;; attempt++) {
        IOTSEC_GUARD(iotsec_apikey_generate(out));
        struct iotsec_store_apikey rec = {.created_at = now, .rate_limit_per_min = rate_per_min};
        memcpy(rec.key_id, out->key_id, sizeof(out->key_id));
        snprintf(rec.device_id, sizeof(rec.device_id), "%s", device_id);
        memcpy(rec.hash, out->hash, sizeof(rec.hash));
        iotsec_result r = iotsec_store_apikey_insert(s, &rec);
        if (iotsec_ok(r))
            return r;
        iotsec_apikey_secret_wipe(out);
        if (iotsec_error_code() != IOTSEC_ERR_EXISTS || attempt + 1 >= CREATE_ATTEMPTS)
            return r;
    }
}

/* ---- the authenticator ---- */

struct rate_class {
    uint32_t rate;
    struct iotsec_ratelimit *rl;
};

struct iotsec_apikey_auth {
    uint32_t default_rate;
    size_t keys_per_limiter;
    pthread_mutex_t lock; /* serialises making a limiter */
    atomic_size_t count;
    struct rate_class classes[IOTSEC_APIKEY_RATE_CLASSES_MAX];
};

iotsec_result iotsec_apikey_auth_new(const struct iotsec_apikey_auth_config *config,
                                     struct iotsec_apikey_auth **out)
{
    IOTSEC_ENSURE(out != NULL, IOTSEC_ERR_INVALID_ARG, "apikey: no output");
    *out = NULL;
    uint32_t rate = config != NULL ? config->default_rate_per_min : 0;
    size_t cap = config != NULL ? config->keys_per_limiter : 0;
    if (rate == 0)
        rate = IOTSEC_APIKEY_DEFAULT_RATE_PER_MIN;
    if (cap == 0)
        cap = DEFAULT_LIMITER_CAP;
    IOTSEC_ENSURE(rate <= IOTSEC_APIKEY_RATE_MAX, IOTSEC_ERR_CONFIG,
                  "apikey: default rate %u per minute is above %u", rate, IOTSEC_APIKEY_RATE_MAX);
    IOTSEC_ENSURE(cap <= IOTSEC_RATELIMIT_CAPACITY_MAX, IOTSEC_ERR_CONFIG,
                  "apikey: %zu keys per limiter is too many", cap);
    struct iotsec_apikey_auth *a = calloc(1, sizeof(*a));
    IOTSEC_ENSURE_ALLOC(a);
    a->default_rate = rate;
    a->keys_per_limiter = cap;
    pthread_mutex_init(&a->lock, NULL);
    atomic_init(&a->count, 0);
    *out = a;
    return IOTSEC_RESULT_OK;
}

void iotsec_apikey_auth_free(struct iotsec_apikey_auth *auth)
{
    if (auth == NULL)
        return;
    size_t n = atomic_load(&auth->count);
    for (size_t i = 0; i < n; i++)
        iotsec_ratelimit_free(auth->classes[i].rl);
    pthread_mutex_destroy(&auth->lock);
    free(auth);
}

static struct iotsec_ratelimit *find_class(struct iotsec_apikey_auth *a, size_t n, uint32_t rate)
{
    for (size_t i = 0; i < n; i++) {
        if (a->classes[i].rate == rate)
            return a->classes[i].rl;
    }
    return NULL;
}

/* The limiter for `rate` per minute with a burst of one minute's worth: a fresh key may
 * spend its whole minute at once, as the contract's "60 per minute" reads. */
static iotsec_result limiter_for(struct iotsec_apikey_auth *a, uint32_t rate,
                                 struct iotsec_ratelimit **out)
{
    size_t n = atomic_load_explicit(&a->count, memory_order_acquire);
    *out = find_class(a, n, rate);
    if (*out != NULL)
        return IOTSEC_RESULT_OK;
    pthread_mutex_lock(&a->lock);
    n = atomic_load_explicit(&a->count, memory_order_relaxed);
    *out = find_class(a, n, rate);
    iotsec_result r = IOTSEC_RESULT_OK;
    if (*out == NULL && n >= IOTSEC_APIKEY_RATE_CLASSES_MAX) {
        iotsec_error_set(IOTSEC_ERR_BUSY,
                         "apikey: more than %d distinct per-key rate limits are in use",
                         IOTSEC_APIKEY_RATE_CLASSES_MAX);
        r = IOTSEC_RESULT_ERR;
    } else if (*out == NULL) {
        struct iotsec_ratelimit_config c = {
            .rate = rate, .period_ms = 60000, .burst = rate, .capacity = a->keys_per_limiter};
        r = iotsec_ratelimit_new(&c, out);
        if (iotsec_ok(r)) {
            a->classes[n] = (struct rate_class){.rate = rate, .rl = *out};
            atomic_store_explicit(&a->count, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&a->lock);
    return r;
}

static iotsec_result refuse(struct iotsec_apikey_identity *out, enum iotsec_apikey_reason reason,
                            iotsec_err code, const char *msg)
{
    out->reason = reason;
    iotsec_error_set(code, "apikey: %s", msg);
    return IOTSEC_RESULT_ERR;
}

/* The store failed: keep its message, mark the decision as an error (not a refusal of
 * the key), and refuse. */
static iotsec_result store_failed(struct iotsec_apikey_identity *out)
{
    out->reason = IOTSEC_APIKEY_ERROR;
    iotsec_error_prefix("apikey: ");
    return IOTSEC_RESULT_ERR;
}

iotsec_result iotsec_apikey_authenticate(struct iotsec_apikey_auth *auth, struct iotsec_store *s,
                                         struct iotsec_slice key, int64_t now,
                                         struct iotsec_apikey_identity *out)
{
    IOTSEC_ENSURE(out != NULL, IOTSEC_ERR_INVALID_ARG, "apikey: no output");
    *out = (struct iotsec_apikey_identity){.reason = IOTSEC_APIKEY_ERROR};
    IOTSEC_ENSURE(auth != NULL && s != NULL, IOTSEC_ERR_INVALID_ARG, "apikey: missing argument");

    uint8_t hash[IOTSEC_APIKEY_HASH_LEN];
    if (!iotsec_ok(iotsec_apikey_parse(key, hash))) {
        out->reason = IOTSEC_APIKEY_MALFORMED;
        return IOTSEC_RESULT_ERR; /* parse's message says what is wrong */
    }

    struct iotsec_store_apikey rec;
    if (!iotsec_ok(iotsec_store_apikey_find_by_hash(s, hash, &rec))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            return refuse(out, IOTSEC_APIKEY_UNKNOWN, IOTSEC_ERR_AUTH, "unknown key");
        return store_failed(out);
    }
    /* The index found a row by equality already; the decision is this comparison, in
     * constant time, so that it would stay sound behind any lookup structure. */
    if (!iotsec_ct_equal(iotsec_slice_make(rec.hash, sizeof(rec.hash)),
                         iotsec_slice_make(hash, sizeof(hash))))
        return refuse(out, IOTSEC_APIKEY_UNKNOWN, IOTSEC_ERR_AUTH, "unknown key");
    memcpy(out->key_id, rec.key_id, sizeof(out->key_id));
    memcpy(out->device_id, rec.device_id, sizeof(out->device_id));

    if (rec.revoked_at != 0)
        return refuse(out, IOTSEC_APIKEY_REVOKED, IOTSEC_ERR_AUTH, "key is revoked");

    struct iotsec_store_device dev IOTSEC_DEFER(device_cleanup) = {0};
    if (!iotsec_ok(iotsec_store_device_get(s, rec.device_id, &dev))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            return refuse(out, IOTSEC_APIKEY_DEVICE_INACTIVE, IOTSEC_ERR_AUTH,
                          "the key's device no longer exists");
        return store_failed(out);
    }
    if (dev.status != IOTSEC_STORE_DEVICE_ACTIVE)
        return refuse(out, IOTSEC_APIKEY_DEVICE_INACTIVE, IOTSEC_ERR_AUTH,
                      dev.status == IOTSEC_STORE_DEVICE_REVOKED ? "the key's device is revoked"
                                                                : "the key's device is disabled");

    uint32_t rate = rec.rate_limit_per_min != 0 ? rec.rate_limit_per_min : auth->default_rate;
    /* A stored limit above what create accepts comes from elsewhere; cap it rather than
     * let it exceed the limiter's exact-arithmetic range. */
    if (rate > IOTSEC_APIKEY_RATE_MAX)
        rate = IOTSEC_APIKEY_RATE_MAX;
    struct iotsec_ratelimit *rl;
    bool allowed = false;
    if (!iotsec_ok(limiter_for(auth, rate, &rl)) ||
        !iotsec_ok(iotsec_ratelimit_take(rl, iotsec_slice_from_str(rec.key_id), now, &allowed,
                                         &out->retry_after_ms))) {
        out->reason = IOTSEC_APIKEY_ERROR;
        return IOTSEC_RESULT_ERR;
    }
    if (!allowed)
        return refuse(out, IOTSEC_APIKEY_RATE_LIMITED, IOTSEC_ERR_AUTH, "rate limit exceeded");

    /* The stored time decides, so that several processes throttle together and nothing
     * is remembered here. A clock behind the stored time writes nothing. */
    if (rec.last_used_at == 0 || now - rec.last_used_at >= IOTSEC_APIKEY_TOUCH_INTERVAL_MS) {
        out->touched = iotsec_ok(iotsec_store_apikey_touch(s, rec.key_id, now));
        out->touch_failed = !out->touched;
    }
    out->reason = IOTSEC_APIKEY_OK;
    iotsec_error_clear();
    return IOTSEC_RESULT_OK;
}

const char *iotsec_apikey_reason_name(enum iotsec_apikey_reason reason)
{
    switch (reason) {
    case IOTSEC_APIKEY_OK:
        return "ok";
    case IOTSEC_APIKEY_MALFORMED:
        return "malformed";
    case IOTSEC_APIKEY_UNKNOWN:
        return "unknown";
    case IOTSEC_APIKEY_REVOKED:
        return "revoked";
    case IOTSEC_APIKEY_DEVICE_INACTIVE:
        return "device_inactive";
    case IOTSEC_APIKEY_RATE_LIMITED:
        return "rate_limited";
    case IOTSEC_APIKEY_ERROR:
        break;
    }
    return "error";
}
