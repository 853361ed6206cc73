/*
 * Challenge-response: a bounded, thread-safe store of outstanding challenges and the
 * verification of a device's signed response (include/iotsec/challenge.h).
 *
 * Layout: a fixed array of entries, a free list threaded through it, and a chained hash
 * table keyed by device id, all allocated once at creation. Device ids are hashed with
 * SHA-256 under a random seed, so nobody can aim many ids at one chain. Keying by device
 * rather than by challenge lets issue count a device's outstanding challenges and verify
 * find the one named, both in one short chain walk, and makes a challenge presented
 * under another device's id simply not found.
 *
 * Expiry is lazy: an expired entry met during a walk is reclaimed; when the free list is
 * empty, one sweep over the table reclaims the rest, but only if the earliest expiry
 * recorded says some entry can have expired, so a store kept full by live challenges
 * refuses in O(1) rather than sweeping on every attempt.
 *
 * Signatures are checked outside the lock, after the entry has been removed: the slow
 * part (public-key operations) never holds up other devices, and the removal is what
 * makes the challenge single use.
 */
#include "iotsec/challenge.h"

#include "iotsec/crypto.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NIL           UINT32_MAX
#define DEVICE_ID_MAX 64
#define SEED_LEN      16
#define TTL_MAX_MS    ((int64_t)3600 * 1000)

struct entry {
    uint32_t next; /* the next entry in its chain, or in the free list */
    uint8_t challenge[IOTSEC_CHALLENGE_BYTES];
    int64_t expires_at;
    char device_id[DEVICE_ID_MAX + 1];
};

struct iotsec_challenge_store {
    pthread_mutex_t lock;
    size_t capacity;
    size_t per_device;
    int64_t ttl;
    size_t bucket_mask;
    uint32_t *buckets;
    struct entry *entries;
    uint32_t free_head;
    int64_t earliest_expiry; /* a lower bound on every held entry's expiry */
    uint8_t seed[SEED_LEN];
    struct iotsec_challenge_stats stats;
};

static size_t round_up_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

iotsec_result iotsec_challenge_store_new(const struct iotsec_challenge_config *config,
                                         struct iotsec_challenge_store **out)
{
    IOTSEC_ENSURE(out != NULL, IOTSEC_ERR_INVALID_ARG, "challenge: no output");
    *out = NULL;
    struct iotsec_challenge_config c =
        config != NULL ? *config : (struct iotsec_challenge_config){0};
    if (c.capacity == 0)
        c.capacity = IOTSEC_CHALLENGE_DEFAULT_CAPACITY;
    if (c.per_device == 0)
        c.per_device = IOTSEC_CHALLENGE_DEFAULT_PER_DEVICE;
    if (c.ttl_ms == 0)
        c.ttl_ms = IOTSEC_CHALLENGE_TTL_MS;
    IOTSEC_ENSURE(c.capacity <= IOTSEC_CHALLENGE_CAPACITY_MAX, IOTSEC_ERR_CONFIG,
                  "challenge: capacity %zu is above %zu", c.capacity,
                  IOTSEC_CHALLENGE_CAPACITY_MAX);
    IOTSEC_ENSURE(c.per_device <= c.capacity, IOTSEC_ERR_CONFIG,
                  "challenge: per-device cap %zu is above the capacity %zu", c.per_device,
                  c.capacity);
    IOTSEC_ENSURE(c.ttl_ms > 0 && c.ttl_ms <= TTL_MAX_MS, IOTSEC_ERR_CONFIG,
                  "challenge: lifetime %lld ms is out of range 1..%lld", (long long)c.ttl_ms,
                  (long long)TTL_MAX_MS);

    struct iotsec_challenge_store *cs = calloc(1, sizeof(*cs));
    IOTSEC_ENSURE_ALLOC(cs);
    size_t nbuckets = round_up_pow2(c.capacity);
    cs->buckets = malloc(nbuckets * sizeof(*cs->buckets));
    cs->entries = calloc(c.capacity, sizeof(*cs->entries));
    if (cs->buckets == NULL || cs->entries == NULL ||
        !iotsec_ok(iotsec_random(cs->seed, SEED_LEN))) {
        if (cs->buckets == NULL || cs->entries == NULL)
            iotsec_error_set(IOTSEC_ERR_NOMEM, "challenge: cannot allocate %zu entries",
                             c.capacity);
        free(cs->buckets);
        free(cs->entries);
        free(cs);
        return IOTSEC_RESULT_ERR;
    }
    for (size_t i = 0; i < nbuckets; i++)
        cs->buckets[i] = NIL;
    for (size_t i = 0; i < c.capacity; i++)
        cs->entries[i].next = i + 1 < c.capacity ? (uint32_t)(i + 1) : NIL;
    cs->free_head = 0;
    cs->capacity = c.capacity;
    cs->per_device = c.per_device;
    cs->ttl = c.ttl_ms;
    cs->bucket_mask = nbuckets - 1;
    cs->earliest_expiry = INT64_MAX;
    cs->stats.capacity = c.capacity;
    pthread_mutex_init(&cs->lock, NULL);
    *out = cs;
    return IOTSEC_RESULT_OK;
}

void iotsec_challenge_store_free(struct iotsec_challenge_store *cs)
{
    if (cs == NULL)
        return;
    pthread_mutex_destroy(&cs->lock);
    iotsec_wipe(cs->entries, cs->capacity * sizeof(*cs->entries));
    free(cs->entries);
    free(cs->buckets);
    iotsec_wipe(cs->seed, sizeof(cs->seed));
    free(cs);
}

static iotsec_result check_device_id(const char *id, size_t *len)
{
    IOTSEC_ENSURE(id != NULL, IOTSEC_ERR_INVALID_ARG, "challenge: no device id");
    size_t n = strnlen(id, DEVICE_ID_MAX + 1);
    IOTSEC_ENSURE(n >= 1 && n <= DEVICE_ID_MAX, IOTSEC_ERR_INVALID_ARG,
                  "challenge: device id must be 1..%d characters", DEVICE_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        IOTSEC_ENSURE(ok, IOTSEC_ERR_INVALID_ARG,
                      "challenge: device id has a character outside [A-Za-z0-9_-]");
    }
    *len = n;
    return IOTSEC_RESULT_OK;
}

static iotsec_result bucket_of(const struct iotsec_challenge_store *cs, const char *id, size_t len,
                               size_t *bucket)
{
    uint8_t in[SEED_LEN + DEVICE_ID_MAX], digest[IOTSEC_SHA256_LEN];
    memcpy(in, cs->seed, SEED_LEN);
    memcpy(in + SEED_LEN, id, len);
    IOTSEC_GUARD(iotsec_sha256(iotsec_slice_make(in, SEED_LEN + len), digest));
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = (h << 8) | digest[i];
    *bucket = (size_t)h & cs->bucket_mask;
    return IOTSEC_RESULT_OK;
}

/* Unlinks the entry at *link and puts it on the free list. The challenge bytes are
 * wiped: a freed slot must not still match a presented challenge. */
static void release(struct iotsec_challenge_store *cs, uint32_t *link)
{
    uint32_t i = *link;
    struct entry *e = &cs->entries[i];
    *link = e->next;
    iotsec_wipe(e, sizeof(*e));
    e->next = cs->free_head;
    cs->free_head = i;
    cs->stats.outstanding--;
}

static void sweep_expired(struct iotsec_challenge_store *cs, int64_t now)
{
    int64_t earliest = INT64_MAX;
    for (size_t b = 0; b <= cs->bucket_mask; b++) {
        uint32_t *link = &cs->buckets[b];
        while (*link != NIL) {
            struct entry *e = &cs->entries[*link];
            if (now >= e->expires_at) {
                release(cs, link);
                cs->stats.expired++;
                continue;
            }
            if (e->expires_at < earliest)
                earliest = e->expires_at;
            link = &e->next;
        }
    }
    cs->earliest_expiry = earliest;
}

static const char hex_digits[] = "0123456789abcdef";

iotsec_result iotsec_challenge_issue(struct iotsec_challenge_store *cs, const char *device_id,
                                     int64_t now, struct iotsec_challenge *out)
{
    IOTSEC_ENSURE(cs != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "challenge: missing argument");
    *out = (struct iotsec_challenge){0};
    size_t id_len, bucket;
    IOTSEC_GUARD(check_device_id(device_id, &id_len));
    IOTSEC_ENSURE(now >= 0 && now <= IOTSEC_TIME_MAX_SEC * 1000 - cs->ttl, IOTSEC_ERR_INVALID_ARG,
                  "challenge: time %lld ms is out of range", (long long)now);
    uint8_t challenge[IOTSEC_CHALLENGE_BYTES];
    IOTSEC_GUARD(iotsec_random(challenge, sizeof(challenge)));
    IOTSEC_GUARD(bucket_of(cs, device_id, id_len, &bucket));
    int64_t expires_at = now + cs->ttl;

    pthread_mutex_lock(&cs->lock);
    size_t mine = 0;
    uint32_t *link = &cs->buckets[bucket];
    while (*link != NIL) {
        struct entry *e = &cs->entries[*link];
        if (now >= e->expires_at) {
            release(cs, link);
            cs->stats.expired++;
            continue;
        }
        if (strcmp(e->device_id, device_id) == 0)
            mine++;
        link = &e->next;
    }
    if (mine >= cs->per_device) {
        cs->stats.refused_device++;
        pthread_mutex_unlock(&cs->lock);
        IOTSEC_BAIL(IOTSEC_ERR_BUSY,
                    "challenge: device %s already has %zu challenges outstanding (the limit)",
                    device_id, mine);
    }
    if (cs->free_head == NIL && now >= cs->earliest_expiry)
        sweep_expired(cs, now);
    if (cs->free_head == NIL) {
        cs->stats.refused_full++;
        pthread_mutex_unlock(&cs->lock);
        IOTSEC_BAIL(IOTSEC_ERR_BUSY, "challenge: too many challenges outstanding (%zu); try later",
                    cs->capacity);
    }
    uint32_t i = cs->free_head;
    struct entry *e = &cs->entries[i];
    cs->free_head = e->next;
    memcpy(e->challenge, challenge, sizeof(challenge));
    e->expires_at = expires_at;
    memcpy(e->device_id, device_id, id_len + 1);
    e->next = cs->buckets[bucket];
    cs->buckets[bucket] = i;
    if (expires_at < cs->earliest_expiry)
        cs->earliest_expiry = expires_at;
    cs->stats.outstanding++;
    cs->stats.issued++;
    pthread_mutex_unlock(&cs->lock);

    for (size_t k = 0; k < sizeof(challenge); k++) {
        out->hex[2 * k] = hex_digits[challenge[k] >> 4];
        out->hex[2 * k + 1] = hex_digits[challenge[k] & 0x0f];
    }
    out->expires_at_ms = expires_at;
    struct iotsec_time t = {.sec = expires_at / 1000,
                            .nsec = (uint32_t)(expires_at % 1000) * 1000000};
    return iotsec_time_format(t, IOTSEC_TIME_MILLIS, out->expires_at);
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly the spelling issue() produces: 64 lowercase hex digits. */
static iotsec_result parse_challenge(struct iotsec_slice hex, uint8_t out[IOTSEC_CHALLENGE_BYTES])
{
    IOTSEC_ENSURE(hex.len == IOTSEC_CHALLENGE_HEX_LEN, IOTSEC_ERR_FORMAT,
                  "challenge: %zu characters, expected %d lowercase hex digits", hex.len,
                  IOTSEC_CHALLENGE_HEX_LEN);
    for (size_t i = 0; i < IOTSEC_CHALLENGE_BYTES; i++) {
        int hi = hex_value(hex.ptr[2 * i]), lo = hex_value(hex.ptr[2 * i + 1]);
        IOTSEC_ENSURE(hi >= 0 && lo >= 0, IOTSEC_ERR_FORMAT,
                      "challenge: character at offset %zu is not a lowercase hex digit",
                      hi < 0 ? 2 * i : 2 * i + 1);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return IOTSEC_RESULT_OK;
}

/* Finds device_id's entry holding `challenge`, removes it, and says whether it was still
 * valid. Expired entries of the chain are reclaimed on the way. */
static iotsec_result take_entry(struct iotsec_challenge_store *cs, size_t bucket,
                                const char *device_id, const uint8_t *challenge, int64_t now)
{
    pthread_mutex_lock(&cs->lock);
    bool found = false, expired = false;
    uint32_t *link = &cs->buckets[bucket];
    while (*link != NIL) {
        struct entry *e = &cs->entries[*link];
        bool mine = strcmp(e->device_id, device_id) == 0 &&
                    iotsec_ct_equal(iotsec_slice_make(e->challenge, IOTSEC_CHALLENGE_BYTES),
                                    iotsec_slice_make(challenge, IOTSEC_CHALLENGE_BYTES));
        if (mine) {
            found = true;
            expired = now >= e->expires_at;
            release(cs, link);
            continue;
        }
        if (now >= e->expires_at) {
            release(cs, link);
            cs->stats.expired++;
            continue;
        }
        link = &e->next;
    }
    if (expired)
        cs->stats.expired++;
    pthread_mutex_unlock(&cs->lock);
    IOTSEC_ENSURE(found, IOTSEC_ERR_AUTH, "challenge: unknown or already used for device %s",
                  device_id);
    IOTSEC_ENSURE(!expired, IOTSEC_ERR_AUTH, "challenge: expired");
    return IOTSEC_RESULT_OK;
}

static void buf_cleanup(struct iotsec_buf *b)
{
    iotsec_buf_free(b);
}

static void key_cleanup(struct iotsec_key **k)
{
    iotsec_key_free(*k);
}

static iotsec_result check_response(struct iotsec_slice challenge_hex, struct iotsec_slice response,
                                    struct iotsec_slice pem)
{
    IOTSEC_ENSURE(response.len > 0, IOTSEC_ERR_FORMAT, "challenge: empty response");
    IOTSEC_ENSURE(response.len <= IOTSEC_CHALLENGE_RESPONSE_MAX, IOTSEC_ERR_FORMAT,
                  "challenge: response of %zu characters is longer than %d", response.len,
                  IOTSEC_CHALLENGE_RESPONSE_MAX);
    struct iotsec_buf sig IOTSEC_DEFER(buf_cleanup) = {0};
    iotsec_buf_set_max(&sig, IOTSEC_CHALLENGE_SIG_MAX);
    if (!iotsec_ok(iotsec_base64_decode(response, &sig))) {
        iotsec_error_prefix("challenge: response: ");
        return IOTSEC_RESULT_ERR;
    }
    struct iotsec_key *key IOTSEC_DEFER(key_cleanup) = NULL;
    if (!iotsec_ok(iotsec_key_from_pem(pem, &key))) {
        iotsec_error_prefix("challenge: the device's registered ");
        return IOTSEC_RESULT_ERR;
    }
    if (!iotsec_ok(iotsec_verify(key, challenge_hex, iotsec_buf_slice(&sig))))
        IOTSEC_BAIL(IOTSEC_ERR_VERIFY,
                    "challenge: the signature does not verify with the device's key");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_challenge_verify(struct iotsec_challenge_store *cs, const char *device_id,
                                      struct iotsec_slice challenge_hex,
                                      struct iotsec_slice response_b64,
                                      struct iotsec_slice public_key_pem, int64_t now)
{
    IOTSEC_ENSURE(cs != NULL, IOTSEC_ERR_INVALID_ARG, "challenge: no store");
    size_t id_len, bucket;
    uint8_t challenge[IOTSEC_CHALLENGE_BYTES];
    IOTSEC_GUARD(check_device_id(device_id, &id_len));
    IOTSEC_GUARD(parse_challenge(challenge_hex, challenge));
    IOTSEC_GUARD(bucket_of(cs, device_id, id_len, &bucket));
    IOTSEC_GUARD(take_entry(cs, bucket, device_id, challenge, now));

    /* From here on the challenge is spent, whatever the outcome. */
    bool ok = iotsec_ok(check_response(challenge_hex, response_b64, public_key_pem));
    pthread_mutex_lock(&cs->lock);
    if (ok)
        cs->stats.verified++;
    else
        cs->stats.failed++;
    pthread_mutex_unlock(&cs->lock);
    return ok ? IOTSEC_RESULT_OK : IOTSEC_RESULT_ERR;
}

void iotsec_challenge_get_stats(struct iotsec_challenge_store *cs,
                                struct iotsec_challenge_stats *out)
{
    pthread_mutex_lock(&cs->lock);
    *out = cs->stats;
    pthread_mutex_unlock(&cs->lock);
}

/* ---- strict base64 (RFC 4648 section 4) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

iotsec_result iotsec_base64_decode(struct iotsec_slice in, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(out != NULL && (in.ptr != NULL || in.len == 0), IOTSEC_ERR_INVALID_ARG,
                  "base64: missing argument");
    IOTSEC_ENSURE(in.len % 4 == 0, IOTSEC_ERR_FORMAT,
                  "base64: length %zu is not a multiple of 4 (padding is required)", in.len);
    size_t pad = 0;
    if (in.len >= 1 && in.ptr[in.len - 1] == '=')
        pad = in.len >= 2 && in.ptr[in.len - 2] == '=' ? 2 : 1;
    size_t data_len = in.len - pad;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < data_len; i++) {
        int v = b64_value(in.ptr[i]);
        IOTSEC_ENSURE(v >= 0, IOTSEC_ERR_FORMAT,
                      "base64: character 0x%02x at offset %zu is not in the alphabet", in.ptr[i],
                      i);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            IOTSEC_GUARD(iotsec_buf_append_u8(out, (uint8_t)(acc >> bits)));
            acc &= (1u << bits) - 1;
        }
    }
    /* With the length a multiple of 4, pad is 0, 1 or 2 and the leftover bits are 0, 2
     * or 4: anything else was refused above as a character outside the alphabet ('='
     * in the middle). */
    IOTSEC_ENSURE(acc == 0, IOTSEC_ERR_FORMAT, "base64: non-zero unused bits at the end");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_base64_encode(struct iotsec_slice in, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(out != NULL && (in.ptr != NULL || in.len == 0), IOTSEC_ERR_INVALID_ARG,
                  "base64: missing argument");
    for (size_t i = 0; i < in.len; i += 3) {
        size_t n = in.len - i < 3 ? in.len - i : 3;
        uint32_t v = (uint32_t)in.ptr[i] << 16;
        if (n > 1)
            v |= (uint32_t)in.ptr[i + 1] << 8;
        if (n > 2)
            v |= in.ptr[i + 2];
        char q[4] = {b64_alphabet[(v >> 18) & 63], b64_alphabet[(v >> 12) & 63],
                     n > 1 ? b64_alphabet[(v >> 6) & 63] : '=', n > 2 ? b64_alphabet[v & 63] : '='};
        IOTSEC_GUARD(iotsec_buf_append(out, q, sizeof(q)));
    }
    return IOTSEC_RESULT_OK;
}
