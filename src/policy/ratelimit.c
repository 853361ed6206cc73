/*
 * GCRA rate limiter over a fixed set-associative table (see include/iotsec/ratelimit.h for
 * the contract and the eviction choice).
 *
 * Arithmetic is exact integers in "scaled" time, one unit = 1/rate ms: now is now_ms * rate,
 * the emission interval (the spacing of requests at the sustained rate) is period_ms, and
 * the burst tolerance is burst * period_ms. No division happens on the decision path except
 * the one that turns a refusal's wait back into ms (rounded up, so a client that waits
 * exactly Retry-After is allowed). The bounds in the header keep every sum within int64.
 */
#include "iotsec/ratelimit.h"

#include "iotsec/crypto.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Locks are striped over buckets: enough stripes that threads rarely share one, few
 * enough that a small table does not carry a large lock array. */
#define MAX_STRIPES 64

struct slot {
    uint64_t hash;
    int64_t tat; /* theoretical arrival time, scaled units */
    uint8_t len; /* 0 = empty (keys are never empty) */
    char key[IOTSEC_RATELIMIT_KEY_MAX];
};

/* One cache line per stripe, so that threads on different stripes do not contend. */
struct stripe {
    pthread_mutex_t lock;
    size_t entries;
    uint64_t reused_idle;
    uint64_t evicted_active;
} __attribute__((aligned(64)));

struct iotsec_ratelimit {
    int64_t rate;
    int64_t interval;  /* period_ms, in scaled units per request */
    int64_t tolerance; /* burst * period_ms */
    size_t bucket_mask;
    size_t stripe_mask;
    struct iotsec_siphash *hasher; /* keyed: bucket choice cannot be aimed at */
    struct slot *slots;            /* (bucket_mask + 1) * IOTSEC_RATELIMIT_WAYS */
    struct stripe *stripes;
};

/* ---- table ---- */

static size_t round_up_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

iotsec_result iotsec_ratelimit_new(const struct iotsec_ratelimit_config *config,
                                   struct iotsec_ratelimit **out)
{
    IOTSEC_ENSURE(config != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "ratelimit: no config");
    *out = NULL;
    IOTSEC_ENSURE(config->rate >= 1 && config->rate <= IOTSEC_RATELIMIT_RATE_MAX, IOTSEC_ERR_CONFIG,
                  "ratelimit: rate %u is out of range 1..%u", config->rate,
                  IOTSEC_RATELIMIT_RATE_MAX);
    IOTSEC_ENSURE(config->period_ms >= 1 && config->period_ms <= IOTSEC_RATELIMIT_PERIOD_MAX,
                  IOTSEC_ERR_CONFIG, "ratelimit: period %lld ms is out of range",
                  (long long)config->period_ms);
    IOTSEC_ENSURE(config->burst >= 1 && config->burst <= IOTSEC_RATELIMIT_BURST_MAX,
                  IOTSEC_ERR_CONFIG, "ratelimit: burst %u is out of range 1..%u", config->burst,
                  IOTSEC_RATELIMIT_BURST_MAX);
    IOTSEC_ENSURE(config->capacity >= 1 && config->capacity <= IOTSEC_RATELIMIT_CAPACITY_MAX,
                  IOTSEC_ERR_CONFIG, "ratelimit: capacity %zu is out of range", config->capacity);

    size_t buckets =
        round_up_pow2((config->capacity + IOTSEC_RATELIMIT_WAYS - 1) / IOTSEC_RATELIMIT_WAYS);
    size_t stripes = buckets < MAX_STRIPES ? buckets : MAX_STRIPES;

    struct iotsec_ratelimit *rl = calloc(1, sizeof(*rl));
    IOTSEC_ENSURE_ALLOC(rl);
    rl->rate = config->rate;
    rl->interval = config->period_ms;
    rl->tolerance = (int64_t)config->burst * config->period_ms;
    rl->bucket_mask = buckets - 1;
    rl->stripe_mask = stripes - 1;
    rl->slots = calloc(buckets * IOTSEC_RATELIMIT_WAYS, sizeof(struct slot));
    rl->stripes = aligned_alloc(64, stripes * sizeof(struct stripe));
    if (rl->slots == NULL || rl->stripes == NULL) {
        free(rl->slots);
        free(rl->stripes);
        free(rl);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "ratelimit: out of memory for %zu slots",
                    buckets * IOTSEC_RATELIMIT_WAYS);
    }
    memset(rl->stripes, 0, stripes * sizeof(struct stripe));
    for (size_t i = 0; i < stripes; i++)
        pthread_mutex_init(&rl->stripes[i].lock, NULL);
    if (!iotsec_ok(iotsec_siphash_new(&rl->hasher))) {
        iotsec_ratelimit_free(rl);
        return IOTSEC_RESULT_ERR;
    }
    *out = rl;
    return IOTSEC_RESULT_OK;
}

void iotsec_ratelimit_free(struct iotsec_ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i <= rl->stripe_mask; i++)
        pthread_mutex_destroy(&rl->stripes[i].lock);
    iotsec_siphash_free(rl->hasher);
    free(rl->stripes);
    free(rl->slots);
    free(rl);
}

/* Finds key in its two candidate buckets, or gives it a slot. A slot is free if it is
 * empty or idle (TAT in the past: forgetting that key changes no decision); the new key
 * goes to the bucket with more free slots, which keeps the load even, taking an empty
 * slot before an idle one. Only if no candidate slot is free is an active key displaced:
 * the one closest to idle. Two choices of bucket instead of one is what lets the table
 * fill to most of its capacity before any bucket overflows; with one choice, random
 * clustering makes some buckets overflow (and so displace still-limited keys) while the
 * table is only half full. Called with both buckets' stripes locked. */
static struct slot *find_or_place(struct stripe *st, struct slot *const buckets[2], uint64_t hash,
                                  const uint8_t *key, size_t len, int64_t now)
{
    struct slot *empty[2] = {NULL, NULL}, *idle[2] = {NULL, NULL}, *oldest = NULL;
    size_t free_slots[2] = {0, 0};
    for (size_t b = 0; b < 2; b++) {
        for (size_t i = 0; i < IOTSEC_RATELIMIT_WAYS; i++) {
            struct slot *s = &buckets[b][i];
            if (s->len == 0) {
                if (empty[b] == NULL)
                    empty[b] = s;
                free_slots[b]++;
                continue;
            }
            if (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0)
                return s;
            if (s->tat <= now) {
                if (idle[b] == NULL)
                    idle[b] = s;
                free_slots[b]++;
            }
            if (oldest == NULL || s->tat < oldest->tat)
                oldest = s;
        }
    }
    size_t b = free_slots[0] >= free_slots[1] ? 0 : 1;
    struct slot *s;
    if (empty[b] != NULL) {
        s = empty[b];
        st->entries++;
    } else if (idle[b] != NULL) {
        s = idle[b];
        st->reused_idle++;
    } else {
        s = oldest;
        st->evicted_active++;
    }
    s->hash = hash;
    s->len = (uint8_t)len;
    memcpy(s->key, key, len);
    s->tat = now; /* the state of a key never seen */
    return s;
}

static void unlock_pair(struct stripe *lo, struct stripe *hi)
{
    if (hi != NULL)
        pthread_mutex_unlock(&hi->lock);
    pthread_mutex_unlock(&lo->lock);
}

iotsec_result iotsec_ratelimit_take(struct iotsec_ratelimit *rl, struct iotsec_slice key,
                                    int64_t now_ms, bool *allowed, int64_t *retry_after_ms)
{
    IOTSEC_ENSURE(rl != NULL && allowed != NULL, IOTSEC_ERR_INVALID_ARG, "ratelimit: no limiter");
    *allowed = false;
    if (retry_after_ms != NULL)
        *retry_after_ms = 0;
    IOTSEC_ENSURE(key.len >= 1 && key.len <= IOTSEC_RATELIMIT_KEY_MAX, IOTSEC_ERR_INVALID_ARG,
                  "ratelimit: key length %zu is out of range 1..%d", key.len,
                  IOTSEC_RATELIMIT_KEY_MAX);
    IOTSEC_ENSURE(now_ms >= 0 && now_ms <= IOTSEC_RATELIMIT_NOW_MAX, IOTSEC_ERR_INVALID_ARG,
                  "ratelimit: time %lld ms is out of range", (long long)now_ms);

    uint64_t hash;
    IOTSEC_GUARD(iotsec_siphash64(rl->hasher, key, &hash));
    /* Two buckets from independent halves of the hash; distinct whenever there are two. */
    size_t b0 = (size_t)hash & rl->bucket_mask;
    size_t b1 = (size_t)(hash >> 32) & rl->bucket_mask;
    if (b1 == b0)
        b1 = b0 ^ (rl->bucket_mask & 1);
    struct slot *const buckets[2] = {&rl->slots[b0 * IOTSEC_RATELIMIT_WAYS],
                                     &rl->slots[b1 * IOTSEC_RATELIMIT_WAYS]};
    /* Stripes are locked in index order, so two threads never wait on each other in a
     * cycle; counters go to the lower stripe, which is always held. */
    size_t s0 = b0 & rl->stripe_mask, s1 = b1 & rl->stripe_mask;
    struct stripe *lo = &rl->stripes[s0 < s1 ? s0 : s1];
    struct stripe *hi = s0 == s1 ? NULL : &rl->stripes[s0 < s1 ? s1 : s0];
    int64_t now = now_ms * rl->rate;

    pthread_mutex_lock(&lo->lock);
    if (hi != NULL)
        pthread_mutex_lock(&hi->lock);
    struct slot *s = find_or_place(lo, buckets, hash, key.ptr, key.len, now);
    int64_t tat = s->tat > now ? s->tat : now;
    int64_t next = tat + rl->interval;
    if (next - now <= rl->tolerance) {
        s->tat = next;
        unlock_pair(lo, hi);
        *allowed = true;
        return IOTSEC_RESULT_OK;
    }
    unlock_pair(lo, hi);
    /* Allowed once now reaches next - tolerance; round up so waiting that long suffices. */
    int64_t wait = next - rl->tolerance - now;
    if (retry_after_ms != NULL)
        *retry_after_ms = (wait + rl->rate - 1) / rl->rate;
    return IOTSEC_RESULT_OK;
}

void iotsec_ratelimit_get_stats(struct iotsec_ratelimit *rl, struct iotsec_ratelimit_stats *out)
{
    memset(out, 0, sizeof(*out));
    size_t slots = (rl->bucket_mask + 1) * IOTSEC_RATELIMIT_WAYS;
    out->slots = slots;
    out->memory_bytes = slots * sizeof(struct slot) + (rl->stripe_mask + 1) * sizeof(struct stripe);
    for (size_t i = 0; i <= rl->stripe_mask; i++) {
        struct stripe *st = &rl->stripes[i];
        pthread_mutex_lock(&st->lock);
        out->entries += st->entries;
        out->reused_idle += st->reused_idle;
        out->evicted_active += st->evicted_active;
        pthread_mutex_unlock(&st->lock);
    }
}
