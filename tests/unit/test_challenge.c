/*
 * Unit tests for challenge-response: issued challenges match the wire contract; responses
 * signed here with OpenSSL directly (not through iotsec's own signing code) verify for
 * ECDSA P-256, RSA PKCS#1 v1.5 and Ed25519 keys; every attempt consumes the challenge
 * (replay, a bad signature, malformed base64); the expiry edge; another device's
 * challenge; the capacity bound and the per-device cap; strict base64; and threads
 * racing for one challenge, exactly one of which wins.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotsec/challenge.h"
#include "iotsec/crypto.h"

#define T0  ((int64_t)1764000000000) /* 2025-11-24T16:00:00Z */
#define TTL IOTSEC_CHALLENGE_TTL_MS

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

/* A device key made with OpenSSL, its public PEM, and a signer. */
struct device_key {
    EVP_PKEY *pkey;
    char pem[4096];
};

static void make_key(struct device_key *k, const char *type)
{
    if (strcmp(type, "EC") == 0)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (strcmp(type, "RSA") == 0)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(type, "RSA1024") == 0)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    else
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k->pkey);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, k->pkey), 1);
    int n = BIO_read(b, k->pem, sizeof(k->pem) - 1);
    assert_true(n > 0);
    k->pem[n] = '\0';
    BIO_free(b);
}

/* Signs msg (SHA-256, or pure Ed25519) and writes the base64 with OpenSSL's encoder. */
static void sign_b64(const struct device_key *k, const char *msg, char *out, size_t out_size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ed = EVP_PKEY_is_a(k->pkey, "ED25519");
    assert_int_equal(
        EVP_DigestSignInit_ex(ctx, NULL, ed ? NULL : "SHA256", NULL, NULL, k->pkey, NULL), 1);
    uint8_t sig[1024];
    size_t len = sizeof(sig);
    assert_int_equal(EVP_DigestSign(ctx, sig, &len, (const uint8_t *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    assert_true(out_size >= 4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, sig, (int)len);
}

static struct iotsec_challenge_store *make_store(size_t capacity, size_t per_device)
{
    struct iotsec_challenge_config c = {.capacity = capacity, .per_device = per_device};
    struct iotsec_challenge_store *cs = NULL;
    OK(iotsec_challenge_store_new(&c, &cs));
    return cs;
}

static iotsec_result verify(struct iotsec_challenge_store *cs, const char *device,
                            const char *challenge, const char *response, const struct device_key *k,
                            int64_t now)
{
    return iotsec_challenge_verify(cs, device, iotsec_slice_from_str(challenge),
                                   iotsec_slice_from_str(response), iotsec_slice_from_str(k->pem),
                                   now);
}

static struct device_key ec_key, rsa_key, ed_key, other_ec_key;

static int group_setup(void **state)
{
    (void)state;
    make_key(&ec_key, "EC");
    make_key(&rsa_key, "RSA");
    make_key(&ed_key, "ED25519");
    make_key(&other_ec_key, "EC");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(ec_key.pkey);
    EVP_PKEY_free(rsa_key.pkey);
    EVP_PKEY_free(ed_key.pkey);
    EVP_PKEY_free(other_ec_key.pkey);
    return 0;
}

/* ---- the contract ---- */

static void challenge_issue_matches_the_contract(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(0, 0);
    struct iotsec_challenge a, b;
    OK(iotsec_challenge_issue(cs, "dev-1", T0 + 123, &a));
    OK(iotsec_challenge_issue(cs, "dev-1", T0 + 123, &b));
    assert_int_equal(strlen(a.hex), 64);
    for (size_t i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", a.hex[i]));
    assert_string_not_equal(a.hex, b.hex);
    assert_int_equal(a.expires_at_ms, T0 + 123 + 5 * 60 * 1000);
    assert_string_equal(a.expires_at, "2025-11-24T16:05:00.123Z");
    struct iotsec_time t;
    OK(iotsec_time_parse(iotsec_slice_from_str(a.expires_at), &t));
    assert_int_equal(t.sec * 1000 + t.nsec / 1000000, a.expires_at_ms);
    struct iotsec_challenge_stats st;
    iotsec_challenge_get_stats(cs, &st);
    assert_int_equal(st.capacity, IOTSEC_CHALLENGE_DEFAULT_CAPACITY);
    assert_int_equal(st.outstanding, 2);
    assert_int_equal(st.issued, 2);
    /* Device ids are checked like the registry's. */
    FAILS_WITH(iotsec_challenge_issue(cs, "", T0, &a), IOTSEC_ERR_INVALID_ARG);
    FAILS_WITH(iotsec_challenge_issue(cs, "dev 1", T0, &a), IOTSEC_ERR_INVALID_ARG);
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    FAILS_WITH(iotsec_challenge_issue(cs, long_id, T0, &a), IOTSEC_ERR_INVALID_ARG);
    FAILS_WITH(iotsec_challenge_issue(cs, "dev-1", -1, &a), IOTSEC_ERR_INVALID_ARG);
    iotsec_challenge_store_free(cs);
}

static void roundtrip(const struct device_key *k)
{
    struct iotsec_challenge_store *cs = make_store(0, 0);
    struct iotsec_challenge c;
    char resp[1024];
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(k, c.hex, resp, sizeof(resp));
    OK(verify(cs, "dev-1", c.hex, resp, k, T0 + 1000));
    /* Single use: the same response again is refused. */
    FAILS_WITH(verify(cs, "dev-1", c.hex, resp, k, T0 + 1001), IOTSEC_ERR_AUTH);
    assert_non_null(strstr(iotsec_error_message(), "unknown or already used"));
    /* A signature over anything but the challenge string (here the string with the
     * newline `echo` would add) does not verify. */
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    char with_newline[80];
    snprintf(with_newline, sizeof(with_newline), "%s\n", c.hex);
    sign_b64(k, with_newline, resp, sizeof(resp));
    FAILS_WITH(verify(cs, "dev-1", c.hex, resp, k, T0 + 1000), IOTSEC_ERR_VERIFY);
    struct iotsec_challenge_stats st;
    iotsec_challenge_get_stats(cs, &st);
    assert_int_equal(st.verified, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.outstanding, 0);
    iotsec_challenge_store_free(cs);
}

static void challenge_verifies_ecdsa_p256(void **state)
{
    (void)state;
    roundtrip(&ec_key);
}

static void challenge_verifies_rsa_pkcs1(void **state)
{
    (void)state;
    roundtrip(&rsa_key);
}

static void challenge_verifies_ed25519(void **state)
{
    (void)state;
    roundtrip(&ed_key);
}

static void challenge_refuses_unusable_registered_keys(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(0, 0);
    struct device_key small;
    make_key(&small, "RSA1024");
    struct iotsec_challenge c;
    char resp[1024];
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&small, c.hex, resp, sizeof(resp));
    FAILS_WITH(verify(cs, "dev-1", c.hex, resp, &small, T0), IOTSEC_ERR_FORMAT);
    assert_non_null(strstr(iotsec_error_message(), "too small"));
    EVP_PKEY_free(small.pkey);
    /* No key registered at all. */
    struct device_key none = {.pem = ""};
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&ec_key, c.hex, resp, sizeof(resp));
    FAILS_WITH(verify(cs, "dev-1", c.hex, resp, &none, T0), IOTSEC_ERR_FORMAT);
    iotsec_challenge_store_free(cs);
}

/* ---- single use ---- */

static void challenge_is_consumed_by_any_attempt(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(0, 0);
    struct iotsec_challenge c;
    char good[1024], bad[1024];

    /* A signature by another key: refused, and the right one afterwards is too late. */
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&other_ec_key, c.hex, bad, sizeof(bad));
    sign_b64(&ec_key, c.hex, good, sizeof(good));
    FAILS_WITH(verify(cs, "dev-1", c.hex, bad, &ec_key, T0), IOTSEC_ERR_VERIFY);
    FAILS_WITH(verify(cs, "dev-1", c.hex, good, &ec_key, T0), IOTSEC_ERR_AUTH);

    /* Malformed base64 consumes it too. */
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&ec_key, c.hex, good, sizeof(good));
    FAILS_WITH(verify(cs, "dev-1", c.hex, "not base64!", &ec_key, T0), IOTSEC_ERR_FORMAT);
    FAILS_WITH(verify(cs, "dev-1", c.hex, good, &ec_key, T0), IOTSEC_ERR_AUTH);

    /* An empty response as well. */
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&ec_key, c.hex, good, sizeof(good));
    FAILS_WITH(verify(cs, "dev-1", c.hex, "", &ec_key, T0), IOTSEC_ERR_FORMAT);
    FAILS_WITH(verify(cs, "dev-1", c.hex, good, &ec_key, T0), IOTSEC_ERR_AUTH);

    /* A malformed challenge names no challenge, so it consumes nothing. */
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&ec_key, c.hex, good, sizeof(good));
    char upper[IOTSEC_CHALLENGE_HEX_LEN + 1];
    for (size_t i = 0; i <= IOTSEC_CHALLENGE_HEX_LEN; i++)
        upper[i] = (char)(c.hex[i] >= 'a' && c.hex[i] <= 'f' ? c.hex[i] - 32 : c.hex[i]);
    if (strcmp(upper, c.hex) != 0)
        FAILS_WITH(verify(cs, "dev-1", upper, good, &ec_key, T0), IOTSEC_ERR_FORMAT);
    char shorter[IOTSEC_CHALLENGE_HEX_LEN + 1];
    memcpy(shorter, c.hex, 63);
    shorter[63] = '\0';
    FAILS_WITH(verify(cs, "dev-1", shorter, good, &ec_key, T0), IOTSEC_ERR_FORMAT);
    char longer[IOTSEC_CHALLENGE_HEX_LEN + 2];
    snprintf(longer, sizeof(longer), "%s0", c.hex);
    FAILS_WITH(verify(cs, "dev-1", longer, good, &ec_key, T0), IOTSEC_ERR_FORMAT);
    OK(verify(cs, "dev-1", c.hex, good, &ec_key, T0));
    /* A well-formed challenge never issued. */
    FAILS_WITH(verify(cs, "dev-1",
                      "00000000000000000000000000000000"
                      "00000000000000000000000000000000",
                      good, &ec_key, T0),
               IOTSEC_ERR_AUTH);
    iotsec_challenge_store_free(cs);
}

static void challenge_expires_at_the_edge(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(0, 0);
    struct iotsec_challenge c;
    char resp[1024];
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&ed_key, c.hex, resp, sizeof(resp));
    OK(verify(cs, "dev-1", c.hex, resp, &ed_key, T0 + TTL - 1));
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    sign_b64(&ed_key, c.hex, resp, sizeof(resp));
    FAILS_WITH(verify(cs, "dev-1", c.hex, resp, &ed_key, T0 + TTL), IOTSEC_ERR_AUTH);
    assert_non_null(strstr(iotsec_error_message(), "expired"));
    /* It was consumed by that late attempt, too. */
    FAILS_WITH(verify(cs, "dev-1", c.hex, resp, &ed_key, T0), IOTSEC_ERR_AUTH);
    assert_non_null(strstr(iotsec_error_message(), "unknown or already used"));
    struct iotsec_challenge_stats st;
    iotsec_challenge_get_stats(cs, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.outstanding, 0);
    iotsec_challenge_store_free(cs);
}

static void challenge_belongs_to_its_device(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(0, 0);
    struct iotsec_challenge c;
    char by_b[1024], by_a[1024];
    OK(iotsec_challenge_issue(cs, "dev-a", T0, &c));
    /* Device b signs a's challenge with its own key and presents it as its own. */
    sign_b64(&other_ec_key, c.hex, by_b, sizeof(by_b));
    FAILS_WITH(verify(cs, "dev-b", c.hex, by_b, &other_ec_key, T0), IOTSEC_ERR_AUTH);
    /* a's challenge is still a's. */
    sign_b64(&ec_key, c.hex, by_a, sizeof(by_a));
    OK(verify(cs, "dev-a", c.hex, by_a, &ec_key, T0));
    iotsec_challenge_store_free(cs);

    /* With one slot there is one hash bucket, so both devices share it: the device id
     * itself, not the bucket, must keep them apart. */
    cs = make_store(1, 1);
    OK(iotsec_challenge_issue(cs, "dev-a", T0, &c));
    sign_b64(&other_ec_key, c.hex, by_b, sizeof(by_b));
    FAILS_WITH(verify(cs, "dev-b", c.hex, by_b, &other_ec_key, T0), IOTSEC_ERR_AUTH);
    sign_b64(&ec_key, c.hex, by_a, sizeof(by_a));
    OK(verify(cs, "dev-a", c.hex, by_a, &ec_key, T0));
    iotsec_challenge_store_free(cs);
}

/* ---- bounds ---- */

static void challenge_store_is_bounded(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(8, 2);
    struct iotsec_challenge c, kept;
    char id[16];
    for (int d = 0; d < 4; d++) {
        snprintf(id, sizeof(id), "dev-%d", d);
        OK(iotsec_challenge_issue(cs, id, T0, &c));
        OK(iotsec_challenge_issue(cs, id, T0, &kept));
    }
    FAILS_WITH(iotsec_challenge_issue(cs, "dev-9", T0 + 1, &c), IOTSEC_ERR_BUSY);
    assert_non_null(strstr(iotsec_error_message(), "too many challenges outstanding"));
    struct iotsec_challenge_stats st;
    iotsec_challenge_get_stats(cs, &st);
    assert_int_equal(st.outstanding, 8);
    assert_int_equal(st.refused_full, 1);
    /* Using one frees its slot. */
    char resp[1024];
    sign_b64(&ed_key, kept.hex, resp, sizeof(resp));
    OK(verify(cs, "dev-3", kept.hex, resp, &ed_key, T0 + 2));
    OK(iotsec_challenge_issue(cs, "dev-9", T0 + 3, &c));
    FAILS_WITH(iotsec_challenge_issue(cs, "dev-10", T0 + 3, &c), IOTSEC_ERR_BUSY);
    /* Once they expire, the full store reclaims them. */
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "new-%d", i);
        OK(iotsec_challenge_issue(cs, id, T0 + 3 + TTL, &c));
    }
    iotsec_challenge_get_stats(cs, &st);
    assert_int_equal(st.outstanding, 8);
    assert_int_equal(st.expired, 8);
    iotsec_challenge_store_free(cs);
}

static void challenge_per_device_cap(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(100, 3);
    struct iotsec_challenge c[3], extra;
    for (int i = 0; i < 3; i++)
        OK(iotsec_challenge_issue(cs, "greedy", T0, &c[i]));
    FAILS_WITH(iotsec_challenge_issue(cs, "greedy", T0, &extra), IOTSEC_ERR_BUSY);
    assert_non_null(strstr(iotsec_error_message(), "greedy already has 3"));
    /* Other devices are not affected. */
    OK(iotsec_challenge_issue(cs, "modest", T0, &extra));
    /* A consumed challenge (even by a failed attempt) frees a place. */
    FAILS_WITH(verify(cs, "greedy", c[0].hex, "AAAA", &ec_key, T0), IOTSEC_ERR_VERIFY);
    OK(iotsec_challenge_issue(cs, "greedy", T0, &extra));
    FAILS_WITH(iotsec_challenge_issue(cs, "greedy", T0, &extra), IOTSEC_ERR_BUSY);
    /* So does expiry. */
    OK(iotsec_challenge_issue(cs, "greedy", T0 + TTL, &extra));
    struct iotsec_challenge_stats st;
    iotsec_challenge_get_stats(cs, &st);
    assert_int_equal(st.refused_device, 2);
    iotsec_challenge_store_free(cs);
}

static void challenge_config_is_checked(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs;
    struct iotsec_challenge_config c = {.capacity = 4, .per_device = 5};
    FAILS_WITH(iotsec_challenge_store_new(&c, &cs), IOTSEC_ERR_CONFIG);
    c = (struct iotsec_challenge_config){.capacity = IOTSEC_CHALLENGE_CAPACITY_MAX + 1};
    FAILS_WITH(iotsec_challenge_store_new(&c, &cs), IOTSEC_ERR_CONFIG);
    c = (struct iotsec_challenge_config){.ttl_ms = -1};
    FAILS_WITH(iotsec_challenge_store_new(&c, &cs), IOTSEC_ERR_CONFIG);
    c = (struct iotsec_challenge_config){.capacity = 1, .per_device = 1, .ttl_ms = 10};
    OK(iotsec_challenge_store_new(&c, &cs));
    struct iotsec_challenge ch;
    OK(iotsec_challenge_issue(cs, "d", T0, &ch));
    assert_int_equal(ch.expires_at_ms, T0 + 10);
    iotsec_challenge_store_free(cs);
}

/* ---- base64 ---- */

static void decode_expect(const char *in, const char *want)
{
    struct iotsec_buf out = {0};
    iotsec_result r = iotsec_base64_decode(iotsec_slice_from_str(in), &out);
    if (want == NULL) {
        if (iotsec_ok(r))
            fail_msg("'%s' was accepted", in);
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    } else {
        if (!iotsec_ok(r))
            fail_msg("'%s': %s", in, iotsec_error_message());
        assert_int_equal(out.len, strlen(want));
        assert_memory_equal(out.ptr, want, out.len);
    }
    iotsec_buf_free(&out);
}

static void base64_is_strict(void **state)
{
    (void)state;
    decode_expect("", "");
    decode_expect("YQ==", "a");
    decode_expect("YWI=", "ab");
    decode_expect("YWJj", "abc");
    decode_expect("+/+/", "\xfb\xff\xbf");
    decode_expect("YQ", NULL);       /* padding required */
    decode_expect("YQ=", NULL);      /* short */
    decode_expect("YR==", NULL);     /* non-zero unused bits */
    decode_expect("YWJ=", NULL);     /* non-zero unused bits */
    decode_expect("YQ==\n", NULL);   /* nothing trailing */
    decode_expect(" YQ==", NULL);    /* nothing leading */
    decode_expect("Y Q==", NULL);    /* no whitespace */
    decode_expect("YQ==YQ==", NULL); /* padding only at the end */
    decode_expect("Y===", NULL);
    decode_expect("====", NULL);
    decode_expect("YQ=a", NULL);
    decode_expect("-_-_", NULL); /* base64url's alphabet is not this one */
    /* A NUL inside. */
    struct iotsec_buf out = {0};
    FAILS_WITH(iotsec_base64_decode(iotsec_slice_make("YW\0j", 4), &out), IOTSEC_ERR_FORMAT);
    iotsec_buf_free(&out);
}

static void base64_encode_agrees_with_openssl(void **state)
{
    (void)state;
    uint8_t data[100];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(data); n++) {
        char want[200];
        int w = EVP_EncodeBlock((unsigned char *)want, data, (int)n);
        struct iotsec_buf enc = {0}, dec = {0};
        OK(iotsec_base64_encode(iotsec_slice_make(data, n), &enc));
        assert_int_equal(enc.len, (size_t)w);
        assert_memory_equal(enc.ptr, want, enc.len);
        OK(iotsec_base64_decode(iotsec_buf_slice(&enc), &dec));
        assert_int_equal(dec.len, n);
        if (n > 0)
            assert_memory_equal(dec.ptr, data, n);
        iotsec_buf_free(&enc);
        iotsec_buf_free(&dec);
    }
}

static void challenge_response_size_is_bounded(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(0, 0);
    struct iotsec_challenge c;
    OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
    size_t n = IOTSEC_CHALLENGE_RESPONSE_MAX + 4;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    FAILS_WITH(verify(cs, "dev-1", c.hex, big, &ec_key, T0), IOTSEC_ERR_FORMAT);
    assert_non_null(strstr(iotsec_error_message(), "longer than"));
    free(big);
    iotsec_challenge_store_free(cs);
}

/* ---- threads ---- */

#define RACERS 8

struct racer {
    struct iotsec_challenge_store *cs;
    const char *device;
    const char *hex;
    const char *resp;
    pthread_barrier_t *start;
    bool won;
    iotsec_err code;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    iotsec_result res = iotsec_challenge_verify(r->cs, r->device, iotsec_slice_from_str(r->hex),
                                                iotsec_slice_from_str(r->resp),
                                                iotsec_slice_from_str(ed_key.pem), T0 + 5);
    r->won = iotsec_ok(res);
    r->code = r->won ? IOTSEC_ERR_OK : iotsec_error_code();
    return NULL;
}

static void challenge_racing_verifiers_one_wins(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(0, 0);
    for (int round = 0; round < 20; round++) {
        struct iotsec_challenge c;
        char resp[1024];
        OK(iotsec_challenge_issue(cs, "dev-1", T0, &c));
        sign_b64(&ed_key, c.hex, resp, sizeof(resp));
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        pthread_t t[RACERS];
        struct racer r[RACERS];
        for (int i = 0; i < RACERS; i++) {
            r[i] = (struct racer){
                .cs = cs, .device = "dev-1", .hex = c.hex, .resp = resp, .start = &start};
            assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        int wins = 0;
        for (int i = 0; i < RACERS; i++) {
            assert_int_equal(pthread_join(t[i], NULL), 0);
            if (r[i].won)
                wins++;
            else
                assert_int_equal(r[i].code, IOTSEC_ERR_AUTH);
        }
        pthread_barrier_destroy(&start);
        assert_int_equal(wins, 1);
    }
    iotsec_challenge_store_free(cs);
}

#define DEVICE_THREADS 6
#define ROUNDS         50

struct device_worker {
    struct iotsec_challenge_store *cs;
    char device[16];
    int verified;
    int busy;
    bool failed;
};

/* Each thread is a device issuing and answering its own challenges, with a cap the
 * threads together exceed, so that refusals and reuse of slots interleave. */
static void *device_run(void *arg)
{
    struct device_worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        struct iotsec_challenge c[2];
        int held = 0;
        for (int j = 0; j < 2; j++) {
            if (iotsec_ok(iotsec_challenge_issue(w->cs, w->device, T0 + i, &c[held])))
                held++;
            else if (iotsec_error_code() == IOTSEC_ERR_BUSY)
                w->busy++;
            else
                w->failed = true;
        }
        for (int j = 0; j < held; j++) {
            char resp[256];
            sign_b64(&ed_key, c[j].hex, resp, sizeof(resp));
            if (iotsec_ok(iotsec_challenge_verify(w->cs, w->device, iotsec_slice_from_str(c[j].hex),
                                                  iotsec_slice_from_str(resp),
                                                  iotsec_slice_from_str(ed_key.pem), T0 + i)))
                w->verified++;
            else
                w->failed = true;
        }
    }
    return NULL;
}

static void challenge_threads_keep_the_books_straight(void **state)
{
    (void)state;
    struct iotsec_challenge_store *cs = make_store(8, 2);
    pthread_t t[DEVICE_THREADS];
    struct device_worker w[DEVICE_THREADS];
    for (int i = 0; i < DEVICE_THREADS; i++) {
        w[i] = (struct device_worker){.cs = cs};
        snprintf(w[i].device, sizeof(w[i].device), "dev-%d", i);
        assert_int_equal(pthread_create(&t[i], NULL, device_run, &w[i]), 0);
    }
    int verified = 0, busy = 0;
    for (int i = 0; i < DEVICE_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_false(w[i].failed);
        verified += w[i].verified;
        busy += w[i].busy;
    }
    assert_int_equal(verified + busy, DEVICE_THREADS * ROUNDS * 2);
    assert_true(verified > 0);
    struct iotsec_challenge_stats st;
    iotsec_challenge_get_stats(cs, &st);
    assert_int_equal(st.outstanding, 0);
    assert_int_equal(st.issued, (uint64_t)verified);
    assert_int_equal(st.verified, (uint64_t)verified);
    assert_int_equal(st.refused_full + st.refused_device, (uint64_t)busy);
    iotsec_challenge_store_free(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(challenge_issue_matches_the_contract),
        cmocka_unit_test(challenge_verifies_ecdsa_p256),
        cmocka_unit_test(challenge_verifies_rsa_pkcs1),
        cmocka_unit_test(challenge_verifies_ed25519),
        cmocka_unit_test(challenge_refuses_unusable_registered_keys),
        cmocka_unit_test(challenge_is_consumed_by_any_attempt),
        cmocka_unit_test(challenge_expires_at_the_edge),
        cmocka_unit_test(challenge_belongs_to_its_device),
        cmocka_unit_test(challenge_store_is_bounded),
        cmocka_unit_test(challenge_per_device_cap),
        cmocka_unit_test(challenge_config_is_checked),
        cmocka_unit_test(base64_is_strict),
        cmocka_unit_test(base64_encode_agrees_with_openssl),
        cmocka_unit_test(challenge_response_size_is_bounded),
        cmocka_unit_test(challenge_racing_verifiers_one_wins),
        cmocka_unit_test(challenge_threads_keep_the_books_straight),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
