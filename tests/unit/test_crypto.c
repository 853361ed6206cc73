/*
 * Unit tests for the crypto module: published vectors (NIST, RFC 4231, RFC 7914, the GCM
 * spec), round trips, tampering, size and policy errors, and key files. Fixture keys of
 * kinds our API refuses to create (RSA, P-384, X25519) are made with OpenSSL directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "iotsec/crypto.h"
#include "iotsec/file.h"

#include <dirent.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void assert_hex_equal(const uint8_t *got, size_t len, const char *hex)
{
    uint8_t want[256];
    size_t n = unhex(hex, want, sizeof(want));
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
}

static void assert_fails(iotsec_result r, iotsec_err code)
{
    assert_false(iotsec_ok(r));
    assert_int_equal(iotsec_error_code(), code);
}

#define OK(expr) assert_true(iotsec_ok(expr))

static struct iotsec_slice str(const char *s)
{
    return iotsec_slice_from_str(s);
}

/* PEM of a key made by OpenSSL, private (PKCS#8) or public (SPKI). */
static void ossl_pem(EVP_PKEY *pkey, bool private_key, struct iotsec_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    int rc = private_key ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PUBKEY(bio, pkey);
    assert_int_equal(rc, 1);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    OK(iotsec_buf_append(out, data, (size_t)len));
    BIO_free(bio);
}

static void assert_pem_rejected(EVP_PKEY *pkey, bool private_key, const char *why)
{
    struct iotsec_buf pem = {0};
    ossl_pem(pkey, private_key, &pem);
    struct iotsec_key *key = NULL;
    assert_fails(iotsec_key_from_pem(iotsec_buf_slice(&pem), &key), IOTSEC_ERR_FORMAT);
    assert_null(key);
    assert_non_null(strstr(iotsec_error_message(), why));
    iotsec_buf_free(&pem);
}

/* ---- random, constant time ---- */

static void random_fills_and_differs(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    OK(iotsec_random(a, sizeof(a)));
    OK(iotsec_random(b, sizeof(b)));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    OK(iotsec_random(NULL, 0));
}

static void ct_equal_compares_length_and_contents(void **state)
{
    (void)state;
    assert_true(iotsec_ct_equal(str("secret"), str("secret")));
    assert_false(iotsec_ct_equal(str("secret"), str("secreT")));
    assert_false(iotsec_ct_equal(str("secret"), str("secret!")));
    assert_false(iotsec_ct_equal(str(""), str("x")));
    assert_true(iotsec_ct_equal(iotsec_slice_make(NULL, 0), str("")));
}

/* ---- SHA-256 ---- */

#define SHA256_ABC     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_MILLION "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define SHA256_EMPTY   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void sha256_abc_streaming_equals_one_shot(void **state)
{
    (void)state;
    uint8_t one[IOTSEC_SHA256_LEN], streamed[IOTSEC_SHA256_LEN];
    OK(iotsec_sha256(str("abc"), one));
    assert_hex_equal(one, sizeof(one), SHA256_ABC);

    struct iotsec_sha256 *h;
    OK(iotsec_sha256_new(&h));
    OK(iotsec_sha256_update(h, str("a")));
    OK(iotsec_sha256_update(h, str("")));
    OK(iotsec_sha256_update(h, str("bc")));
    OK(iotsec_sha256_final(h, streamed));
    iotsec_sha256_free(h);
    assert_memory_equal(one, streamed, sizeof(one));

    OK(iotsec_sha256(iotsec_slice_make(NULL, 0), one));
    assert_hex_equal(one, sizeof(one), SHA256_EMPTY);
}

static void sha256_million_a_streaming_equals_one_shot(void **state)
{
    (void)state;
    size_t total = 1000000;
    uint8_t *data = malloc(total);
    assert_non_null(data);
    memset(data, 'a', total);

    uint8_t one[IOTSEC_SHA256_LEN], streamed[IOTSEC_SHA256_LEN];
    OK(iotsec_sha256(iotsec_slice_make(data, total), one));
    assert_hex_equal(one, sizeof(one), SHA256_MILLION);

    /* Uneven chunks so that updates straddle the 64-byte block boundary. */
    struct iotsec_sha256 *h;
    OK(iotsec_sha256_new(&h));
    size_t off = 0, chunk = 1;
    while (off < total) {
        size_t n = chunk < total - off ? chunk : total - off;
        OK(iotsec_sha256_update(h, iotsec_slice_make(data + off, n)));
        off += n;
        chunk = chunk * 3 % 1021 + 1;
    }
    OK(iotsec_sha256_final(h, streamed));
    iotsec_sha256_free(h);
    assert_memory_equal(one, streamed, sizeof(one));
    free(data);
}

static void sha256_refuses_use_after_final(void **state)
{
    (void)state;
    uint8_t out[IOTSEC_SHA256_LEN];
    struct iotsec_sha256 *h;
    OK(iotsec_sha256_new(&h));
    OK(iotsec_sha256_final(h, out));
    assert_fails(iotsec_sha256_update(h, str("x")), IOTSEC_ERR_INVALID_ARG);
    assert_fails(iotsec_sha256_final(h, out), IOTSEC_ERR_INVALID_ARG);
    iotsec_sha256_free(h);
    iotsec_sha256_free(NULL);
}

/* ---- HMAC-SHA256 (RFC 4231) ---- */

static void hmac_matches_rfc4231(void **state)
{
    (void)state;
    uint8_t key[131], tag[IOTSEC_HMAC_SHA256_LEN];

    memset(key, 0x0b, 20); /* test case 1 */
    OK(iotsec_hmac_sha256(iotsec_slice_make(key, 20), str("Hi There"), tag));
    assert_hex_equal(tag, sizeof(tag),
                     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    OK(iotsec_hmac_sha256(str("Jefe"), str("what do ya want for nothing?"), tag)); /* case 2 */
    assert_hex_equal(tag, sizeof(tag),
                     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    OK(iotsec_hmac_sha256_verify(str("Jefe"), str("what do ya want for nothing?"),
                                 iotsec_slice_make(tag, sizeof(tag))));

    memset(key, 0xaa, 131); /* test case 6: key longer than the block */
    OK(iotsec_hmac_sha256(iotsec_slice_make(key, 131),
                          str("Test Using Larger Than Block-Size Key - Hash Key First"), tag));
    assert_hex_equal(tag, sizeof(tag),
                     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void hmac_verify_rejects_wrong_and_truncated_tags(void **state)
{
    (void)state;
    uint8_t key[20], tag[IOTSEC_HMAC_SHA256_LEN];
    memset(key, 0x0c, sizeof(key)); /* RFC 4231 test case 5: a 128-bit truncated tag */
    struct iotsec_slice k = iotsec_slice_make(key, sizeof(key));
    struct iotsec_slice msg = str("Test With Truncation");
    OK(iotsec_hmac_sha256(k, msg, tag));
    assert_hex_equal(tag, 16, "a3b6167473100ee06e0c796c2955552b");

    assert_fails(iotsec_hmac_sha256_verify(k, msg, iotsec_slice_make(tag, 16)), IOTSEC_ERR_VERIFY);
    assert_non_null(strstr(iotsec_error_message(), "must be 32 bytes, got 16"));
    assert_fails(iotsec_hmac_sha256_verify(k, msg, iotsec_slice_make(NULL, 0)), IOTSEC_ERR_VERIFY);

    OK(iotsec_hmac_sha256_verify(k, msg, iotsec_slice_make(tag, sizeof(tag))));
    tag[31] ^= 0x01;
    assert_fails(iotsec_hmac_sha256_verify(k, msg, iotsec_slice_make(tag, sizeof(tag))),
                 IOTSEC_ERR_VERIFY);
    assert_string_equal(iotsec_error_message(), "hmac: tag does not match");
}

static void hmac_accepts_an_empty_key(void **state)
{
    (void)state;
    /* HMAC(K="", "") is a published value (e.g. the Wikipedia HMAC examples). */
    uint8_t tag[IOTSEC_HMAC_SHA256_LEN];
    OK(iotsec_hmac_sha256(iotsec_slice_make(NULL, 0), iotsec_slice_make(NULL, 0), tag));
    assert_hex_equal(tag, sizeof(tag),
                     "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* A prepared key gives the RFC 4231 tags too, stays reusable (each MAC starts from a
 * copy of the keyed state, not from what the previous MAC left), and its verify has the
 * one-shot verify's rules. */
static void hmac_prepared_key_matches_rfc4231(void **state)
{
    (void)state;
    uint8_t key[131], tag[IOTSEC_HMAC_SHA256_LEN];
    struct iotsec_hmac_key *jefe = NULL, *big = NULL;
    OK(iotsec_hmac_key_new(str("Jefe"), &jefe));
    for (int i = 0; i < 3; i++) {
        OK(iotsec_hmac_key_mac(jefe, str("what do ya want for nothing?"), tag)); /* case 2 */
        assert_hex_equal(tag, sizeof(tag),
                         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
    OK(iotsec_hmac_key_verify(jefe, str("what do ya want for nothing?"),
                              iotsec_slice_make(tag, sizeof(tag))));
    assert_fails(iotsec_hmac_key_verify(jefe, str("what do ya want for nothing?"),
                                        iotsec_slice_make(tag, 16)),
                 IOTSEC_ERR_VERIFY);
    assert_non_null(strstr(iotsec_error_message(), "must be 32 bytes, got 16"));
    tag[0] ^= 0x80;
    assert_fails(iotsec_hmac_key_verify(jefe, str("what do ya want for nothing?"),
                                        iotsec_slice_make(tag, sizeof(tag))),
                 IOTSEC_ERR_VERIFY);
    assert_string_equal(iotsec_error_message(), "hmac: tag does not match");
    memset(key, 0xaa, 131); /* case 6: key longer than the block */
    OK(iotsec_hmac_key_new(iotsec_slice_make(key, 131), &big));
    OK(iotsec_hmac_key_mac(big, str("Test Using Larger Than Block-Size Key - Hash Key First"),
                           tag));
    assert_hex_equal(tag, sizeof(tag),
                     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    iotsec_hmac_key_free(jefe);
    iotsec_hmac_key_free(big);
    iotsec_hmac_key_free(NULL);
}

/* ---- AES-256-GCM ---- */

static const uint8_t test_key[IOTSEC_AEAD_KEY_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const uint8_t test_nonce[IOTSEC_AEAD_NONCE_LEN] = {0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce,
                                                          0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88};
#define KEY   iotsec_slice_make(test_key, sizeof(test_key))
#define NONCE iotsec_slice_make(test_nonce, sizeof(test_nonce))

static void aead_matches_gcm_spec_vectors(void **state)
{
    (void)state;
    /* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14. */
    uint8_t zero[32] = {0};
    struct iotsec_slice key = iotsec_slice_make(zero, 32), nonce = iotsec_slice_make(zero, 12);
    struct iotsec_buf out = {0};
    OK(iotsec_aead_seal(key, nonce, iotsec_slice_make(NULL, 0), iotsec_slice_make(NULL, 0), &out));
    assert_hex_equal(out.ptr, out.len, "530f8afbc74536b9a963b4f1c4cb738b");
    iotsec_buf_reset(&out);
    OK(iotsec_aead_seal(key, nonce, iotsec_slice_make(NULL, 0), iotsec_slice_make(zero, 16), &out));
    assert_hex_equal(out.ptr, out.len,
                     "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    iotsec_buf_free(&out);
}

static void aead_round_trip_appends(void **state)
{
    (void)state;
    struct iotsec_buf sealed = {0}, plain;
    iotsec_buf_init_secret(&plain);
    OK(iotsec_buf_append_str(&sealed, "hdr"));
    OK(iotsec_aead_seal(KEY, NONCE, str("device-42"), str("temperature=21.5"), &sealed));
    assert_int_equal(sealed.len, 3 + 16 + IOTSEC_AEAD_TAG_LEN);
    assert_memory_equal(sealed.ptr, "hdr", 3);

    OK(iotsec_buf_append_str(&plain, ">"));
    struct iotsec_slice body = iotsec_slice_make(sealed.ptr + 3, sealed.len - 3);
    OK(iotsec_aead_open(KEY, NONCE, str("device-42"), body, &plain));
    assert_int_equal(plain.len, 1 + 16);
    assert_memory_equal(plain.ptr, ">temperature=21.5", 17);

    /* Empty message: the output is the tag alone, and opens to nothing. */
    iotsec_buf_reset(&sealed);
    iotsec_buf_reset(&plain);
    OK(iotsec_aead_seal(KEY, NONCE, str(""), str(""), &sealed));
    assert_int_equal(sealed.len, IOTSEC_AEAD_TAG_LEN);
    OK(iotsec_aead_open(KEY, NONCE, str(""), iotsec_buf_slice(&sealed), &plain));
    assert_int_equal(plain.len, 0);
    iotsec_buf_free(&sealed);
    iotsec_buf_free(&plain);
}

/* Opens a tampered copy and checks the failure leaves `out` exactly as it was. */
static void assert_open_refused(struct iotsec_slice key, struct iotsec_slice nonce,
                                struct iotsec_slice aad, struct iotsec_slice sealed)
{
    struct iotsec_buf out;
    iotsec_buf_init_secret(&out);
    OK(iotsec_buf_append_str(&out, "keep"));
    assert_fails(iotsec_aead_open(key, nonce, aad, sealed, &out), IOTSEC_ERR_AUTH);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.ptr, "keep", 4);
    /* The unauthenticated plaintext written past len was wiped. */
    for (size_t i = 0; i + IOTSEC_AEAD_TAG_LEN < sealed.len; i++)
        assert_int_equal(out.ptr[4 + i], 0);
    iotsec_buf_free(&out);
}

static void aead_tampering_is_detected_and_output_untouched(void **state)
{
    (void)state;
    const char *msg = "firmware key material";
    struct iotsec_buf sealed = {0};
    OK(iotsec_aead_seal(KEY, NONCE, str("aad"), str(msg), &sealed));
    struct iotsec_slice good = iotsec_buf_slice(&sealed);
    size_t ct_len = strlen(msg);

    sealed.ptr[5] ^= 0x10; /* ciphertext */
    assert_open_refused(KEY, NONCE, str("aad"), good);
    sealed.ptr[5] ^= 0x10;

    sealed.ptr[ct_len + 3] ^= 0x01; /* tag */
    assert_open_refused(KEY, NONCE, str("aad"), good);
    sealed.ptr[ct_len + 3] ^= 0x01;

    assert_open_refused(KEY, NONCE, str("aae"), good); /* associated data */
    assert_open_refused(KEY, NONCE, str(""), good);

    uint8_t other_nonce[12];
    memcpy(other_nonce, test_nonce, 12);
    other_nonce[11] ^= 0x80;
    assert_open_refused(KEY, iotsec_slice_make(other_nonce, 12), str("aad"), good);

    uint8_t other_key[32];
    memcpy(other_key, test_key, 32);
    other_key[0] ^= 0x01;
    assert_open_refused(iotsec_slice_make(other_key, 32), NONCE, str("aad"), good);

    /* Truncated: dropping the last byte, or everything but part of the tag. */
    assert_open_refused(KEY, NONCE, str("aad"), iotsec_slice_make(good.ptr, good.len - 1));
    assert_open_refused(KEY, NONCE, str("aad"), iotsec_slice_make(good.ptr, 15));
    assert_string_equal(iotsec_error_message(),
                        "aead: open: input of 15 bytes is shorter than the 16-byte tag");

    struct iotsec_buf plain = {0};
    OK(iotsec_aead_open(KEY, NONCE, str("aad"), good, &plain));
    assert_memory_equal(plain.ptr, msg, ct_len);
    iotsec_buf_free(&plain);
    iotsec_buf_free(&sealed);
}

static void aead_rejects_wrong_key_and_nonce_sizes(void **state)
{
    (void)state;
    struct iotsec_buf out = {0};
    OK(iotsec_buf_append_str(&out, "x"));
    uint8_t sealed[32] = {0};

    assert_fails(iotsec_aead_seal(iotsec_slice_make(test_key, 16), NONCE, str(""), str("m"), &out),
                 IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(), "aead: seal: key must be 32 bytes, got 16");
    assert_fails(iotsec_aead_open(iotsec_slice_make(test_key, 24), NONCE, str(""),
                                  iotsec_slice_make(sealed, sizeof(sealed)), &out),
                 IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(), "aead: open: key must be 32 bytes, got 24");

    assert_fails(iotsec_aead_seal(KEY, iotsec_slice_make(test_nonce, 8), str(""), str("m"), &out),
                 IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(), "aead: seal: nonce must be 12 bytes, got 8");
    assert_fails(iotsec_aead_open(KEY, iotsec_slice_make(sealed, 16), str(""),
                                  iotsec_slice_make(sealed, sizeof(sealed)), &out),
                 IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(), "aead: open: nonce must be 12 bytes, got 16");

    assert_int_equal(out.len, 1);
    iotsec_buf_free(&out);
}

static void aead_seal_leaves_output_alone_beyond_its_limit(void **state)
{
    (void)state;
    struct iotsec_buf out = {0};
    iotsec_buf_set_max(&out, 20);
    OK(iotsec_buf_append_str(&out, "abc"));
    assert_fails(iotsec_aead_seal(KEY, NONCE, str(""), str("too long for the limit"), &out),
                 IOTSEC_ERR_TOO_LARGE);
    assert_int_equal(out.len, 3);
    iotsec_buf_free(&out);
}

/* ---- scrypt (RFC 7914 section 12) ---- */

static void scrypt_matches_rfc7914(void **state)
{
    (void)state;
    uint8_t out[64];
    struct iotsec_scrypt_params p1 = {.log2_n = 4, .r = 1, .p = 1};
    OK(iotsec_scrypt(iotsec_slice_make(NULL, 0), iotsec_slice_make(NULL, 0), p1, out, 64));
    assert_hex_equal(out, 64,
                     "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
                     "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");

    struct iotsec_scrypt_params p2 = {.log2_n = 10, .r = 8, .p = 16};
    OK(iotsec_scrypt(str("password"), str("NaCl"), p2, out, 64));
    assert_hex_equal(out, 64,
                     "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
                     "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

static void scrypt_rejects_params_out_of_bounds(void **state)
{
    (void)state;
    const struct {
        struct iotsec_scrypt_params p;
        const char *why;
    } bad[] = {
        {{.log2_n = 0, .r = 8, .p = 1}, "log2(N) must be 1..22, got 0"},
        {{.log2_n = 23, .r = 8, .p = 1}, "log2(N) must be 1..22, got 23"},
        {{.log2_n = 15, .r = 0, .p = 1}, "r must be 1..32, got 0"},
        {{.log2_n = 15, .r = 33, .p = 1}, "r must be 1..32, got 33"},
        {{.log2_n = 15, .r = 8, .p = 0}, "p must be 1..16, got 0"},
        {{.log2_n = 15, .r = 8, .p = 17}, "p must be 1..16, got 17"},
        {{.log2_n = 22, .r = 8, .p = 1}, "needs 4096 MiB, more than the limit of 1024 MiB"},
        {{.log2_n = 21, .r = 32, .p = 16}, "needs 8192 MiB"},
        {{.log2_n = 16, .r = 1, .p = 1}, "RFC 7914 needs N < 2^(16*r)"},
    };
    uint8_t out[32];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_fails(iotsec_scrypt_params_check(bad[i].p), IOTSEC_ERR_INVALID_ARG);
        assert_non_null(strstr(iotsec_error_message(), bad[i].why));
        assert_fails(iotsec_scrypt(str("pw"), str("salt"), bad[i].p, out, sizeof(out)),
                     IOTSEC_ERR_INVALID_ARG);
    }
    OK(iotsec_scrypt_params_check(IOTSEC_SCRYPT_DEFAULT));
    OK(iotsec_scrypt_params_check((struct iotsec_scrypt_params){.log2_n = 20, .r = 8, .p = 16}));
    OK(iotsec_scrypt_params_check((struct iotsec_scrypt_params){.log2_n = 15, .r = 1, .p = 1}));

    assert_fails(iotsec_scrypt(str("pw"), str("salt"), IOTSEC_SCRYPT_DEFAULT, out, 8),
                 IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(), "scrypt: output must be 16..1024 bytes, got 8");
}

/* ---- keys ---- */

static void sign_verify_round_trip(enum iotsec_key_type type)
{
    struct iotsec_key *key;
    OK(iotsec_key_generate(type, &key));
    assert_int_equal(iotsec_key_type(key), type);
    assert_true(iotsec_key_has_private(key));

    struct iotsec_buf sig = {0};
    OK(iotsec_buf_append_str(&sig, "S"));
    OK(iotsec_sign(key, str("challenge"), &sig));
    struct iotsec_slice s = iotsec_slice_make(sig.ptr + 1, sig.len - 1);
    if (type == IOTSEC_KEY_ED25519)
        assert_int_equal(s.len, 64);
    else
        assert_int_equal(s.ptr[0], 0x30); /* DER SEQUENCE */
    OK(iotsec_verify(key, str("challenge"), s));

    assert_fails(iotsec_verify(key, str("challengE"), s), IOTSEC_ERR_VERIFY);
    sig.ptr[sig.len - 1] ^= 0x01;
    assert_fails(iotsec_verify(key, str("challenge"), s), IOTSEC_ERR_VERIFY);
    assert_fails(iotsec_verify(key, str("challenge"), iotsec_slice_make(NULL, 0)),
                 IOTSEC_ERR_VERIFY);

    iotsec_buf_reset(&sig);
    OK(iotsec_sign(key, iotsec_slice_make(NULL, 0), &sig));
    OK(iotsec_verify(key, iotsec_slice_make(NULL, 0), iotsec_buf_slice(&sig)));

    iotsec_buf_free(&sig);
    iotsec_key_free(key);
}

static void ec_p256_sign_verify(void **state)
{
    (void)state;
    sign_verify_round_trip(IOTSEC_KEY_EC_P256);
}

static void ed25519_sign_verify(void **state)
{
    (void)state;
    sign_verify_round_trip(IOTSEC_KEY_ED25519);
}

static void signature_of_one_key_type_fails_with_another(void **state)
{
    (void)state;
    struct iotsec_key *ec, *ed;
    OK(iotsec_key_generate(IOTSEC_KEY_EC_P256, &ec));
    OK(iotsec_key_generate(IOTSEC_KEY_ED25519, &ed));
    struct iotsec_buf sig = {0};
    OK(iotsec_sign(ed, str("m"), &sig));
    assert_fails(iotsec_verify(ec, str("m"), iotsec_buf_slice(&sig)), IOTSEC_ERR_VERIFY);
    iotsec_buf_reset(&sig);
    OK(iotsec_sign(ec, str("m"), &sig));
    assert_fails(iotsec_verify(ed, str("m"), iotsec_buf_slice(&sig)), IOTSEC_ERR_VERIFY);
    iotsec_buf_free(&sig);
    iotsec_key_free(ec);
    iotsec_key_free(ed);
}

static void ecdsa_rejects_ber_encoded_signature(void **state)
{
    (void)state;
    struct iotsec_key *key;
    OK(iotsec_key_generate(IOTSEC_KEY_EC_P256, &key));
    struct iotsec_buf sig = {0};
    OK(iotsec_sign(key, str("m"), &sig));
    assert_true(sig.len < 128);

    /* The same SEQUENCE with a long-form length (30 81 LL): valid BER, not DER. */
    uint8_t ber[80];
    ber[0] = 0x30;
    ber[1] = 0x81;
    memcpy(ber + 2, sig.ptr + 1, sig.len - 1);
    struct iotsec_slice b = iotsec_slice_make(ber, sig.len + 1);
    assert_fails(iotsec_verify(key, str("m"), b), IOTSEC_ERR_VERIFY);
    assert_non_null(strstr(iotsec_error_message(), "not strict DER"));

    /* Trailing bytes after a valid signature. */
    memcpy(ber, sig.ptr, sig.len);
    ber[sig.len] = 0x00;
    assert_fails(iotsec_verify(key, str("m"), iotsec_slice_make(ber, sig.len + 1)),
                 IOTSEC_ERR_VERIFY);
    OK(iotsec_verify(key, str("m"), iotsec_buf_slice(&sig)));
    iotsec_buf_free(&sig);
    iotsec_key_free(key);
}

static void key_pem_round_trip(enum iotsec_key_type type)
{
    struct iotsec_key *key, *priv, *pub;
    OK(iotsec_key_generate(type, &key));
    struct iotsec_buf priv_pem, pub_pem = {0}, sig = {0};
    iotsec_buf_init_secret(&priv_pem);
    OK(iotsec_key_private_to_pem(key, &priv_pem));
    OK(iotsec_key_public_to_pem(key, &pub_pem));
    assert_non_null(memmem(priv_pem.ptr, priv_pem.len, "-----BEGIN PRIVATE KEY-----", 27));
    assert_non_null(memmem(pub_pem.ptr, pub_pem.len, "-----BEGIN PUBLIC KEY-----", 26));

    OK(iotsec_key_from_pem(iotsec_buf_slice(&priv_pem), &priv));
    OK(iotsec_key_from_pem(iotsec_buf_slice(&pub_pem), &pub));
    assert_int_equal(iotsec_key_type(priv), type);
    assert_int_equal(iotsec_key_type(pub), type);
    assert_true(iotsec_key_has_private(priv));
    assert_false(iotsec_key_has_private(pub));

    /* The loaded private key signs; the original and the loaded public key verify. */
    OK(iotsec_sign(priv, str("release 1.2.3"), &sig));
    OK(iotsec_verify(key, str("release 1.2.3"), iotsec_buf_slice(&sig)));
    OK(iotsec_verify(pub, str("release 1.2.3"), iotsec_buf_slice(&sig)));

    /* Re-encoding the loaded key gives the same PEM. */
    struct iotsec_buf again = {0};
    OK(iotsec_key_public_to_pem(priv, &again));
    assert_true(iotsec_slice_equal(iotsec_buf_slice(&again), iotsec_buf_slice(&pub_pem)));

    /* A public key can neither sign nor be written as a private key. */
    assert_fails(iotsec_sign(pub, str("m"), &sig), IOTSEC_ERR_INVALID_ARG);
    assert_fails(iotsec_key_private_to_pem(pub, &again), IOTSEC_ERR_INVALID_ARG);

    iotsec_buf_free(&again);
    iotsec_buf_free(&sig);
    iotsec_buf_free(&priv_pem);
    iotsec_buf_free(&pub_pem);
    iotsec_key_free(key);
    iotsec_key_free(priv);
    iotsec_key_free(pub);
}

static void ec_key_pem_round_trip(void **state)
{
    (void)state;
    key_pem_round_trip(IOTSEC_KEY_EC_P256);
}

static void ed25519_key_pem_round_trip(void **state)
{
    (void)state;
    key_pem_round_trip(IOTSEC_KEY_ED25519);
}

static void forbidden_key_kinds_are_rejected(void **state)
{
    (void)state;
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(rsa1024);
    assert_non_null(p384);
    assert_non_null(x25519);
    for (int priv = 0; priv <= 1; priv++) {
        assert_pem_rejected(rsa1024, priv, "RSA key of 1024 bits is too small (at least 2048)");
        assert_pem_rejected(p384, priv, "EC curve secp384r1 is not accepted (only P-256)");
        assert_pem_rejected(x25519, priv, "X25519 keys are not accepted");
    }
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(x25519);
}

static void ec_key_with_explicit_curve_parameters_is_rejected(void **state)
{
    (void)state;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(pkey);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING,
                                                    OSSL_PKEY_EC_ENCODING_EXPLICIT),
                     1);
    assert_pem_rejected(pkey, false, "explicit curve parameters");
    assert_pem_rejected(pkey, true, "explicit curve parameters");
    EVP_PKEY_free(pkey);
}

static void pem_outside_the_strict_format_is_rejected(void **state)
{
    (void)state;
    struct iotsec_key *key, *out = NULL;
    OK(iotsec_key_generate(IOTSEC_KEY_EC_P256, &key));
    struct iotsec_buf pem = {0};
    OK(iotsec_key_public_to_pem(key, &pem));

    /* Whitespace after the block is fine; a second block or any text is not. */
    OK(iotsec_buf_append_str(&pem, "\n \n"));
    OK(iotsec_key_from_pem(iotsec_buf_slice(&pem), &out));
    iotsec_key_free(out);
    out = NULL;
    OK(iotsec_key_public_to_pem(key, &pem)); /* a second block after the first */
    assert_fails(iotsec_key_from_pem(iotsec_buf_slice(&pem), &out), IOTSEC_ERR_FORMAT);
    assert_string_equal(iotsec_error_message(),
                        "key: unexpected data after the PEM block (one key per file)");
    assert_null(out);

    assert_fails(iotsec_key_from_pem(str("not a key"), &out), IOTSEC_ERR_FORMAT);
    assert_fails(iotsec_key_from_pem(iotsec_slice_make(NULL, 0), &out), IOTSEC_ERR_FORMAT);

    /* SEC1 "EC PRIVATE KEY" (traditional format) is not PKCS#8. */
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    assert_fails(iotsec_key_from_pem(iotsec_slice_make(data, (size_t)n), &out), IOTSEC_ERR_FORMAT);
    assert_non_null(strstr(iotsec_error_message(), "PEM type 'EC PRIVATE KEY' is not accepted"));
    BIO_free(bio);
    EVP_PKEY_free(pkey);

    iotsec_buf_free(&pem);
    iotsec_key_free(key);
}

static void public_der_and_raw_ed25519_are_strict(void **state)
{
    (void)state;
    struct iotsec_key *key = NULL;
    uint8_t raw[33] = {0};
    assert_fails(iotsec_key_from_ed25519_raw(iotsec_slice_make(raw, 31), &key), IOTSEC_ERR_FORMAT);
    assert_string_equal(iotsec_error_message(), "key: Ed25519 public key must be 32 bytes, got 31");
    assert_fails(iotsec_key_from_ed25519_raw(iotsec_slice_make(raw, 33), &key), IOTSEC_ERR_FORMAT);

    /* RFC 8032 test 1 public key; its DER SubjectPublicKeyInfo is a 12-byte prefix + key. */
    uint8_t der[64];
    size_t der_len = unhex("302a300506032b6570032100"
                           "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                           der, sizeof(der));
    OK(iotsec_key_from_ed25519_raw(iotsec_slice_make(der + 12, 32), &key));
    assert_int_equal(iotsec_key_type(key), IOTSEC_KEY_ED25519);
    assert_false(iotsec_key_has_private(key));
    iotsec_key_free(key);
    OK(iotsec_key_from_public_der(iotsec_slice_make(der, der_len), &key));
    assert_int_equal(iotsec_key_type(key), IOTSEC_KEY_ED25519);

    /* RFC 8032 test 1: the empty message's signature verifies through either form. */
    uint8_t sig[64];
    unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
          "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
          sig, sizeof(sig));
    OK(iotsec_verify(key, iotsec_slice_make(NULL, 0), iotsec_slice_make(sig, 64)));
    iotsec_key_free(key);
    key = NULL;

    der[der_len] = 0x00;
    assert_fails(iotsec_key_from_public_der(iotsec_slice_make(der, der_len + 1), &key),
                 IOTSEC_ERR_FORMAT);
    assert_string_equal(iotsec_error_message(), "key: 1 unexpected bytes after the public key");
    assert_fails(iotsec_key_from_public_der(iotsec_slice_make(der, der_len - 1), &key),
                 IOTSEC_ERR_FORMAT);
    assert_null(key);
}

static void rsa_keys_verify_but_refuse_to_sign(void **state)
{
    (void)state;
    struct iotsec_key *gen = NULL;
    assert_fails(iotsec_key_generate(IOTSEC_KEY_RSA, &gen), IOTSEC_ERR_INVALID_ARG);

    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(pkey);
    struct iotsec_buf priv_pem = {0}, pub_pem = {0}, sig = {0};
    ossl_pem(pkey, true, &priv_pem);
    ossl_pem(pkey, false, &pub_pem);

    struct iotsec_key *priv, *pub;
    OK(iotsec_key_from_pem(iotsec_buf_slice(&priv_pem), &priv));
    OK(iotsec_key_from_pem(iotsec_buf_slice(&pub_pem), &pub));
    assert_int_equal(iotsec_key_type(priv), IOTSEC_KEY_RSA);
    assert_true(iotsec_key_has_private(priv));
    assert_fails(iotsec_sign(priv, str("m"), &sig), IOTSEC_ERR_INVALID_ARG);
    assert_string_equal(iotsec_error_message(),
                        "sign: RSA keys are accepted for verification only");
    assert_int_equal(sig.len, 0);

    /* A PKCS#1 v1.5 SHA-256 signature made by OpenSSL verifies through our wrapper. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t raw[256];
    size_t raw_len = sizeof(raw);
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, pkey, NULL), 1);
    assert_int_equal(EVP_DigestSign(ctx, raw, &raw_len, (const uint8_t *)"m", 1), 1);
    EVP_MD_CTX_free(ctx);
    OK(iotsec_verify(pub, str("m"), iotsec_slice_make(raw, raw_len)));
    assert_fails(iotsec_verify(pub, str("n"), iotsec_slice_make(raw, raw_len)), IOTSEC_ERR_VERIFY);
    raw[100] ^= 0x04;
    assert_fails(iotsec_verify(pub, str("m"), iotsec_slice_make(raw, raw_len)), IOTSEC_ERR_VERIFY);

    iotsec_buf_free(&priv_pem);
    iotsec_buf_free(&pub_pem);
    iotsec_buf_free(&sig);
    iotsec_key_free(priv);
    iotsec_key_free(pub);
    EVP_PKEY_free(pkey);
}

/* ---- key files ---- */

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void save_private_pem_is_atomic_and_0600(void **state)
{
    (void)state;
    char dir[] = "/tmp/iotsec-test-crypto-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/device.key", dir);

    /* An existing, world-readable file under the name is replaced, not rewritten. */
    OK(iotsec_file_write_atomic(path, str("old contents\n"), 0644));
    struct stat before;
    assert_int_equal(stat(path, &before), 0);

    struct iotsec_key *key, *loaded;
    OK(iotsec_key_generate(IOTSEC_KEY_ED25519, &key));
    OK(iotsec_key_save_private_pem(key, path));

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_true(st.st_ino != before.st_ino); /* a new file renamed over the old one */
    assert_int_equal(count_entries(dir), 1); /* no temporary left behind */

    OK(iotsec_key_load_pem_file(path, &loaded));
    assert_true(iotsec_key_has_private(loaded));
    struct iotsec_buf sig = {0};
    OK(iotsec_sign(loaded, str("m"), &sig));
    OK(iotsec_verify(key, str("m"), iotsec_buf_slice(&sig)));

    /* Public-only keys cannot be saved as private; a non-key file names its path. */
    struct iotsec_buf pub_pem = {0};
    struct iotsec_key *pub, *none = NULL;
    OK(iotsec_key_public_to_pem(key, &pub_pem));
    OK(iotsec_key_from_pem(iotsec_buf_slice(&pub_pem), &pub));
    assert_fails(iotsec_key_save_private_pem(pub, path), IOTSEC_ERR_INVALID_ARG);
    OK(iotsec_file_write_atomic(path, str("garbage\n"), 0600));
    assert_fails(iotsec_key_load_pem_file(path, &none), IOTSEC_ERR_FORMAT);
    assert_true(strncmp(iotsec_error_message(), path, strlen(path)) == 0);
    assert_null(none);

    iotsec_buf_free(&sig);
    iotsec_buf_free(&pub_pem);
    iotsec_key_free(key);
    iotsec_key_free(loaded);
    iotsec_key_free(pub);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_fills_and_differs),
        cmocka_unit_test(ct_equal_compares_length_and_contents),
        cmocka_unit_test(sha256_abc_streaming_equals_one_shot),
        cmocka_unit_test(sha256_million_a_streaming_equals_one_shot),
        cmocka_unit_test(sha256_refuses_use_after_final),
        cmocka_unit_test(hmac_matches_rfc4231),
        cmocka_unit_test(hmac_verify_rejects_wrong_and_truncated_tags),
        cmocka_unit_test(hmac_accepts_an_empty_key),
        cmocka_unit_test(hmac_prepared_key_matches_rfc4231),
        cmocka_unit_test(aead_matches_gcm_spec_vectors),
        cmocka_unit_test(aead_round_trip_appends),
        cmocka_unit_test(aead_tampering_is_detected_and_output_untouched),
        cmocka_unit_test(aead_rejects_wrong_key_and_nonce_sizes),
        cmocka_unit_test(aead_seal_leaves_output_alone_beyond_its_limit),
        cmocka_unit_test(scrypt_matches_rfc7914),
        cmocka_unit_test(scrypt_rejects_params_out_of_bounds),
        cmocka_unit_test(ec_p256_sign_verify),
        cmocka_unit_test(ed25519_sign_verify),
        cmocka_unit_test(signature_of_one_key_type_fails_with_another),
        cmocka_unit_test(ecdsa_rejects_ber_encoded_signature),
        cmocka_unit_test(ec_key_pem_round_trip),
        cmocka_unit_test(ed25519_key_pem_round_trip),
        cmocka_unit_test(forbidden_key_kinds_are_rejected),
        cmocka_unit_test(ec_key_with_explicit_curve_parameters_is_rejected),
        cmocka_unit_test(pem_outside_the_strict_format_is_rejected),
        cmocka_unit_test(public_der_and_raw_ed25519_are_strict),
        cmocka_unit_test(rsa_keys_verify_but_refuse_to_sign),
        cmocka_unit_test(save_private_pem_is_atomic_and_0600),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
