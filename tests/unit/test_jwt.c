/* Unit tests for device JWTs: the RFC 7515 A.1 and A.3 examples and the RFC 7519 ones,
 * the JWKS document, HS256 and ES256 round trips,
 * strict base64url, and an attack suite (alg none, alg confusion, stripped or altered
 * signatures, altered payloads, time checks, iss/aud, duplicate claims, malformed shapes,
 * oversized tokens, revoked jti). Each refusal is checked by its message, so a test
 * cannot pass because the token was refused for some other, accidental reason. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotsec/json.h"
#include "iotsec/jwt.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#define NOW ((int64_t)1795000000) /* 2026-11-18T11:06:40Z */

static const char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";

static struct iotsec_jwt_key *hs_key(void)
{
    struct iotsec_jwt_key *k = NULL;
    assert_true(
        iotsec_ok(iotsec_jwt_key_hs256(iotsec_slice_make(SECRET, strlen(SECRET)), NULL, &k)));
    return k;
}

/* b64url(text) appended to b. */
static void append_b64(struct iotsec_buf *b, const char *text)
{
    assert_true(iotsec_ok(iotsec_base64url_encode(iotsec_slice_from_str(text), b)));
}

/* A token with exactly this header and payload text, HMAC-signed with secret: lets the
 * tests put anything at all in a correctly signed token. Returns a malloc'd string. */
static char *craft_key(const char *header, const char *payload, struct iotsec_slice secret)
{
    struct iotsec_buf b = {0};
    append_b64(&b, header);
    assert_true(iotsec_ok(iotsec_buf_append_u8(&b, '.')));
    append_b64(&b, payload);
    uint8_t mac[IOTSEC_HMAC_SHA256_LEN];
    assert_true(iotsec_ok(iotsec_hmac_sha256(secret, iotsec_buf_slice(&b), mac)));
    assert_true(iotsec_ok(iotsec_buf_append_u8(&b, '.')));
    assert_true(iotsec_ok(iotsec_base64url_encode(iotsec_slice_make(mac, sizeof(mac)), &b)));
    assert_true(iotsec_ok(iotsec_buf_terminate(&b)));
    char *s = strdup((const char *)b.ptr);
    iotsec_buf_free(&b);
    return s;
}

static char *craft(const char *header, const char *payload, const char *secret)
{
    return craft_key(header, payload, iotsec_slice_from_str(secret));
}

/* A token with this header and payload and exactly these signature bytes. */
static char *craft_sig(const char *header, const char *payload, const uint8_t *sig, size_t n)
{
    struct iotsec_buf b = {0};
    append_b64(&b, header);
    assert_true(iotsec_ok(iotsec_buf_append_u8(&b, '.')));
    append_b64(&b, payload);
    assert_true(iotsec_ok(iotsec_buf_append_u8(&b, '.')));
    assert_true(iotsec_ok(iotsec_base64url_encode(iotsec_slice_make(sig, n), &b)));
    assert_true(iotsec_ok(iotsec_buf_terminate(&b)));
    char *s = strdup((const char *)b.ptr);
    iotsec_buf_free(&b);
    return s;
}

static const char HS_HDR[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Claims valid at NOW, with extra members spliced in front. */
static char *claims_with(const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf),
             "{%s\"deviceId\":\"dev-1\",\"iss\":\"iot-platform\",\"aud\":\"iot-devices\","
             "\"iat\":%lld,\"exp\":%lld,\"jti\":\"j1\"}",
             extra, (long long)NOW, (long long)NOW + 3600);
    return buf;
}

static void verify_ok(const struct iotsec_jwt_key *k, const struct iotsec_jwt_options *o,
                      const char *token, int64_t now)
{
    json_t *c = NULL;
    if (!iotsec_ok(iotsec_jwt_verify(k, o, iotsec_slice_from_str(token), now, &c)))
        fail_msg("%s: %s", token, iotsec_error_message());
    assert_non_null(c);
    json_decref(c);
}

static void refused(const struct iotsec_jwt_key *k, const struct iotsec_jwt_options *o,
                    const char *token, size_t len, int64_t now, const char *message)
{
    json_t *c = (json_t *)1;
    assert_false(iotsec_ok(iotsec_jwt_verify(k, o, iotsec_slice_make(token, len), now, &c)));
    assert_null(c);
    if (strstr(iotsec_error_message(), message) == NULL)
        fail_msg("expected '%s', got '%s'", message, iotsec_error_message());
}

static void refused_str(const struct iotsec_jwt_key *k, const char *token, const char *message)
{
    refused(k, NULL, token, strlen(token), NOW, message);
}

/* ---- base64url ---- */

static void b64_decodes(const char *in, const char *expect)
{
    struct iotsec_buf b = {0};
    if (!iotsec_ok(iotsec_base64url_decode(iotsec_slice_from_str(in), &b)))
        fail_msg("%s: %s", in, iotsec_error_message());
    assert_int_equal(b.len, strlen(expect));
    assert_memory_equal(b.ptr, expect, b.len);
    iotsec_buf_free(&b);
}

static void b64_refuses(const char *in)
{
    struct iotsec_buf b = {0};
    assert_false(iotsec_ok(iotsec_base64url_decode(iotsec_slice_from_str(in), &b)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    iotsec_buf_free(&b);
}

static void base64url_is_strict(void **state)
{
    (void)state;
    b64_decodes("", "");
    b64_decodes("Zg", "f");
    b64_decodes("Zm8", "fo");
    b64_decodes("Zm9v", "foo");
    b64_decodes("-_-_", "\xfb\xff\xbf");
    b64_refuses("Zg==");  /* padding */
    b64_refuses("Zg=");   /* padding */
    b64_refuses("Zm9v "); /* whitespace */
    b64_refuses("Zm\n9v");
    b64_refuses("+/+/"); /* plain base64 alphabet */
    b64_refuses("Z");    /* impossible length */
    b64_refuses("Zh");   /* non-zero trailing bits: "Zg" is the one encoding of "f" */
    b64_refuses("Zm9");
    struct iotsec_buf b = {0};
    for (int n = 0; n < 40; n++) {
        uint8_t raw[40];
        for (int i = 0; i < n; i++)
            raw[i] = (uint8_t)(i * 37 + n);
        iotsec_buf_reset(&b);
        assert_true(iotsec_ok(iotsec_base64url_encode(iotsec_slice_make(raw, (size_t)n), &b)));
        struct iotsec_buf d = {0};
        assert_true(iotsec_ok(iotsec_base64url_decode(iotsec_buf_slice(&b), &d)));
        assert_int_equal(d.len, n);
        if (n > 0)
            assert_memory_equal(d.ptr, raw, (size_t)n);
        iotsec_buf_free(&d);
    }
    iotsec_buf_free(&b);
}

/* ---- RFC 7515 Appendix A.1 ---- */

static const char RFC_TOKEN[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
    "cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char RFC_KEY[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

static struct iotsec_jwt_key *rfc_key(void)
{
    struct iotsec_buf secret = {0};
    assert_true(iotsec_ok(iotsec_base64url_decode(iotsec_slice_from_str(RFC_KEY), &secret)));
    struct iotsec_jwt_key *k = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_hs256(iotsec_buf_slice(&secret), NULL, &k)));
    iotsec_buf_free(&secret);
    return k;
}

static void rfc7515_a1_verifies(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = rfc_key();
    json_t *h = NULL, *p = NULL;
    if (!iotsec_ok(iotsec_jwt_verify_signature(k, iotsec_slice_from_str(RFC_TOKEN), &h, &p)))
        fail_msg("%s", iotsec_error_message());
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "HS256");
    assert_string_equal(json_string_value(json_object_get(p, "iss")), "joe");
    assert_int_equal(json_integer_value(json_object_get(p, "exp")), 1300819380);
    assert_true(json_is_true(json_object_get(p, "http://example.com/is_root")));
    json_decref(h);
    json_decref(p);
    /* Full verification before its exp, with its issuer: it has no aud, so refused. */
    struct iotsec_jwt_options o = {.issuer = "joe"};
    refused(k, &o, RFC_TOKEN, strlen(RFC_TOKEN), 1300819000, "jwt: token has no audience");
    /* After its exp (2011), it is expired, named by time. */
    refused(k, &o, RFC_TOKEN, strlen(RFC_TOKEN), NOW, "jwt: token expired at 2011-03-22T18:43:00Z");
    /* The last signature character altered: refused. */
    char bad[sizeof(RFC_TOKEN)];
    memcpy(bad, RFC_TOKEN, sizeof(RFC_TOKEN));
    bad[sizeof(RFC_TOKEN) - 3] ^= 1;
    refused(k, &o, bad, strlen(bad), 1300819000, "jwt: signature does not verify");
    iotsec_jwt_key_free(k);
}

static struct iotsec_key *p256_from_jwk(const json_t *jwk);

/* RFC 7519 section 3.1: the example JWT is the RFC 7515 A.1 token (same header, claims,
 * key and signature), so its claims set is checked here member by member; section 6.1
 * (and RFC 7515 A.5): the unsecured JWT, alg none with an empty signature, refused. */
static void rfc7519_examples(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = rfc_key();
    json_t *h = NULL, *p = NULL;
    if (!iotsec_ok(iotsec_jwt_verify_signature(k, iotsec_slice_from_str(RFC_TOKEN), &h, &p)))
        fail_msg("%s", iotsec_error_message());
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
    assert_int_equal(json_object_size(h), 2);
    assert_int_equal(json_object_size(p), 3);
    json_decref(h);
    json_decref(p);
    /* The claims at a fixed time before exp (2011-03-22T18:43:00Z), with an audience
     * check that this token cannot meet: exp, iat and iss pass, aud is what refuses. */
    struct iotsec_jwt_options o = {.issuer = "joe", .leeway_sec = IOTSEC_JWT_NO_LEEWAY};
    refused(k, &o, RFC_TOKEN, strlen(RFC_TOKEN), 1300819379, "jwt: token has no audience");
    refused(k, &o, RFC_TOKEN, strlen(RFC_TOKEN), 1300819380,
            "jwt: token expired at 2011-03-22T18:43:00Z");
    o.issuer = NULL;
    refused(k, &o, RFC_TOKEN, strlen(RFC_TOKEN), 1300819379,
            "jwt: token issuer is not iot-platform");
    /* Section 6.1: unsecured. */
    static const char unsecured[] =
        "eyJhbGciOiJub25lIn0"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290"
        "Ijp0cnVlfQ.";
    assert_false(
        iotsec_ok(iotsec_jwt_verify_signature(k, iotsec_slice_from_str(unsecured), NULL, NULL)));
    assert_string_equal(iotsec_error_message(), "jwt: token has no signature");
    /* With the A.1 signature pasted on, it is refused for what it is. */
    char pasted[512];
    snprintf(pasted, sizeof(pasted), "%s%s", unsecured, strrchr(RFC_TOKEN, '.') + 1);
    assert_false(
        iotsec_ok(iotsec_jwt_verify_signature(k, iotsec_slice_from_str(pasted), NULL, NULL)));
    assert_string_equal(iotsec_error_message(), "jwt: algorithm none is not accepted");
    iotsec_jwt_key_free(k);
}

/* ---- RFC 7515 Appendix A.3 (ES256) ---- */

static const char RFC_A3_TOKEN[] =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
    "cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
static const char RFC_A3_X[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
static const char RFC_A3_Y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
/* The A.3 JWK (d, x, y) as PKCS#8, so that the same key also exercises PEM loading. */
static const char RFC_A3_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIff\n"
    "H1136cspYG6+0iY7X1fCE9+E9LKhRANCAAR/zc4ncPbEXUGDy+5v20t7WAczNXvp\n"
    "7xO6z248e9FURcfxRM0bvZt+hyzf7bnuufSzaV1uqQskrYpGIyiFiOWt\n"
    "-----END PRIVATE KEY-----\n";

static struct iotsec_key *rfc_a3_public(void)
{
    json_t *jwk = json_pack("{s:s,s:s}", "x", RFC_A3_X, "y", RFC_A3_Y);
    struct iotsec_key *k = p256_from_jwk(jwk);
    json_decref(jwk);
    return k;
}

static void rfc7515_a3_verifies(void **state)
{
    (void)state;
    struct iotsec_key *pub = rfc_a3_public();
    struct iotsec_jwt_key *k = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_es256(pub, NULL, &k)));
    json_t *h = NULL, *p = NULL;
    if (!iotsec_ok(iotsec_jwt_verify_signature(k, iotsec_slice_from_str(RFC_A3_TOKEN), &h, &p)))
        fail_msg("%s", iotsec_error_message());
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(p, "iss")), "joe");
    assert_int_equal(json_integer_value(json_object_get(p, "exp")), 1300819380);
    json_decref(h);
    json_decref(p);
    struct iotsec_jwt_options o = {.issuer = "joe", .leeway_sec = IOTSEC_JWT_NO_LEEWAY};
    refused(k, &o, RFC_A3_TOKEN, strlen(RFC_A3_TOKEN), 1300819379, "jwt: token has no audience");
    refused(k, &o, RFC_A3_TOKEN, strlen(RFC_A3_TOKEN), 1300819380,
            "jwt: token expired at 2011-03-22T18:43:00Z");
    /* One bit of s, one bit of the payload: refused. */
    char bad[sizeof(RFC_A3_TOKEN)];
    memcpy(bad, RFC_A3_TOKEN, sizeof(bad));
    bad[sizeof(bad) - 4] ^= 1;
    refused(k, &o, bad, strlen(bad), 1300819000, "jwt: signature does not verify");
    memcpy(bad, RFC_A3_TOKEN, sizeof(bad));
    bad[30] = bad[30] == 'A' ? 'B' : 'A';
    refused(k, &o, bad, strlen(bad), 1300819000, "jwt: signature does not verify");
    /* The A.3 token on the A.1 HMAC key: the key's algorithm decides. */
    struct iotsec_jwt_key *hk = rfc_key();
    refused(hk, &o, RFC_A3_TOKEN, strlen(RFC_A3_TOKEN), 1300819000,
            "jwt: token algorithm is not HS256");
    /* The private key of A.3 signs tokens that the RFC's public key verifies. */
    struct iotsec_key *priv = NULL;
    assert_true(iotsec_ok(iotsec_key_from_pem(iotsec_slice_from_str(RFC_A3_PEM), &priv)));
    struct iotsec_jwt_key *signer = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_es256(priv, NULL, &signer)));
    struct iotsec_jwt_claims cl = {.device_id = "dev-a3"};
    struct iotsec_buf tok = {0};
    assert_true(iotsec_ok(iotsec_jwt_issue(signer, NULL, &cl, NOW, &tok)));
    assert_true(iotsec_ok(iotsec_buf_terminate(&tok)));
    verify_ok(k, NULL, (const char *)tok.ptr, NOW);
    iotsec_buf_free(&tok);
    iotsec_jwt_key_free(signer);
    iotsec_jwt_key_free(hk);
    iotsec_jwt_key_free(k);
    iotsec_key_free(priv);
    iotsec_key_free(pub);
}

/* ---- round trips ---- */

static void hs256_round_trip(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    const char *caps[] = {"telemetry:write", "commands:read"};
    struct iotsec_jwt_claims cl = {
        .device_id = "dev-42", .capabilities = caps, .n_capabilities = 2};
    struct iotsec_buf tok = {0};
    assert_true(iotsec_ok(iotsec_jwt_issue(k, NULL, &cl, NOW, &tok)));
    json_t *c = NULL;
    if (!iotsec_ok(iotsec_jwt_verify(k, NULL, iotsec_buf_slice(&tok), NOW + 60, &c)))
        fail_msg("%s", iotsec_error_message());
    assert_string_equal(json_string_value(json_object_get(c, "deviceId")), "dev-42");
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "dev-42");
    assert_string_equal(json_string_value(json_object_get(c, "iss")), "iot-platform");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "iot-devices");
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 24 * 3600);
    assert_int_equal(json_array_size(json_object_get(c, "capabilities")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "capabilities"), 1)),
                        "commands:read");
    const char *jti = json_string_value(json_object_get(c, "jti"));
    assert_non_null(jti);
    assert_int_equal(strlen(jti), 22); /* 16 random bytes */
    json_decref(c);
    /* Two tokens never share a jti. */
    struct iotsec_buf tok2 = {0};
    assert_true(iotsec_ok(iotsec_jwt_issue(k, NULL, &cl, NOW, &tok2)));
    assert_false(iotsec_slice_equal(iotsec_buf_slice(&tok), iotsec_buf_slice(&tok2)));
    /* Expired just after exp + leeway, accepted just before. */
    assert_true(
        iotsec_ok(iotsec_jwt_verify(k, NULL, iotsec_buf_slice(&tok), NOW + 24 * 3600 + 29, NULL)));
    refused(k, NULL, (const char *)tok.ptr, tok.len, NOW + 24 * 3600 + 30, "jwt: token expired");
    /* Configured issuer, audience and lifetime. */
    struct iotsec_jwt_options o = {.issuer = "me", .audience = "them", .lifetime_sec = 60};
    iotsec_buf_reset(&tok);
    assert_true(iotsec_ok(iotsec_jwt_issue(k, &o, &cl, NOW, &tok)));
    assert_true(iotsec_ok(iotsec_jwt_verify(k, &o, iotsec_buf_slice(&tok), NOW, NULL)));
    refused(k, NULL, (const char *)tok.ptr, tok.len, NOW, "jwt: token issuer is not iot-platform");
    refused(k, &o, (const char *)tok.ptr, tok.len, NOW + 100, "jwt: token expired");
    iotsec_buf_free(&tok);
    iotsec_buf_free(&tok2);
    iotsec_jwt_key_free(k);
}

static void es256_round_trip(void **state)
{
    (void)state;
    struct iotsec_key *priv = NULL, *pub = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &priv)));
    struct iotsec_buf pem = {0};
    assert_true(iotsec_ok(iotsec_key_public_to_pem(priv, &pem)));
    assert_true(iotsec_ok(iotsec_key_from_pem(iotsec_buf_slice(&pem), &pub)));
    struct iotsec_jwt_key *signer = NULL, *verifier = NULL, *other_kid = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_es256(priv, "k1", &signer)));
    assert_true(iotsec_ok(iotsec_jwt_key_es256(pub, "k1", &verifier)));
    assert_true(iotsec_ok(iotsec_jwt_key_es256(pub, "k2", &other_kid)));
    assert_int_equal(iotsec_jwt_key_alg(verifier), IOTSEC_JWT_ES256);
    struct iotsec_jwt_claims cl = {.device_id = "dev-7", .subject = "device:dev-7"};
    struct iotsec_buf tok = {0};
    assert_true(iotsec_ok(iotsec_jwt_issue(signer, NULL, &cl, NOW, &tok)));
    assert_true(iotsec_ok(iotsec_buf_terminate(&tok)));
    /* The signature segment is 64 raw bytes: 86 base64url characters. */
    const char *last = strrchr((const char *)tok.ptr, '.');
    assert_non_null(last);
    assert_int_equal(tok.len - (size_t)(last + 1 - (const char *)tok.ptr), 86);
    json_t *h = NULL;
    assert_true(iotsec_ok(iotsec_jwt_verify_signature(verifier, iotsec_buf_slice(&tok), &h, NULL)));
    assert_string_equal(json_string_value(json_object_get(h, "kid")), "k1");
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    json_decref(h);
    verify_ok(verifier, NULL, (const char *)tok.ptr, NOW);
    refused(other_kid, NULL, (const char *)tok.ptr, tok.len, NOW,
            "jwt: token kid does not match the key");
    /* A verify-only key cannot issue. */
    struct iotsec_buf t2 = {0};
    assert_false(iotsec_ok(iotsec_jwt_issue(verifier, NULL, &cl, NOW, &t2)));
    /* An ES256 token on an HS256 key, and the reverse: the key decides the algorithm. */
    struct iotsec_jwt_key *hk = hs_key();
    refused(hk, NULL, (const char *)tok.ptr, tok.len, NOW,
            "jwt: token algorithm is not HS256, the key's algorithm");
    assert_true(iotsec_ok(iotsec_jwt_issue(hk, NULL, &cl, NOW, &t2)));
    refused(verifier, NULL, (const char *)t2.ptr, t2.len, NOW,
            "jwt: token algorithm is not ES256, the key's algorithm");
    /* A signature of the wrong length (one byte shorter, 63 bytes) is refused. */
    char *cut = strndup((const char *)tok.ptr, tok.len - 2);
    refused(verifier, NULL, cut, strlen(cut), NOW, "jwt: ES256 signature is 63 bytes, expected 64");
    free(cut);
    /* An altered signature. */
    char *alt = strndup((const char *)tok.ptr, tok.len);
    alt[tok.len - 10] = alt[tok.len - 10] == 'A' ? 'B' : 'A';
    refused(verifier, NULL, alt, tok.len, NOW, "jwt: signature does not verify");
    free(alt);
    iotsec_buf_free(&t2);
    iotsec_buf_free(&tok);
    iotsec_buf_free(&pem);
    iotsec_jwt_key_free(hk);
    iotsec_jwt_key_free(signer);
    iotsec_jwt_key_free(verifier);
    iotsec_jwt_key_free(other_kid);
    iotsec_key_free(priv);
    iotsec_key_free(pub);
}

/* ---- attacks ---- */

static void refuses_alg_none(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    const char *hdrs[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\",\"typ\":\"JWT\"}",
                          "{\"alg\":\"NONE\"}"};
    for (size_t i = 0; i < 3; i++) {
        struct iotsec_buf b = {0};
        append_b64(&b, hdrs[i]);
        assert_true(iotsec_ok(iotsec_buf_append_u8(&b, '.')));
        append_b64(&b, claims_with(""));
        assert_true(iotsec_ok(iotsec_buf_append_str(&b, ".")));
        /* Stripped signature ("x.y.") and with a bogus one: both refused. */
        refused(k, NULL, (const char *)b.ptr, b.len, NOW, "jwt: token has no signature");
        assert_true(iotsec_ok(iotsec_buf_append_str(&b, "AAAA")));
        refused(k, NULL, (const char *)b.ptr, b.len, NOW, "jwt: algorithm none is not accepted");
        iotsec_buf_free(&b);
    }
    /* Even signed with the right secret, alg none is none. */
    char *t = craft("{\"alg\":\"none\"}", claims_with(""), SECRET);
    refused_str(k, t, "jwt: algorithm none is not accepted");
    free(t);
    iotsec_jwt_key_free(k);
}

/* The classic confusion: the attacker takes the public key of an asymmetric verifier,
 * uses its bytes as an HMAC secret and sets alg to HS256. */
static void refuses_alg_confusion(void **state)
{
    (void)state;
    struct iotsec_key *pub = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &pub)));
    struct iotsec_buf pem = {0};
    assert_true(iotsec_ok(iotsec_key_public_to_pem(pub, &pem)));
    assert_true(iotsec_ok(iotsec_buf_terminate(&pem)));
    struct iotsec_jwt_key *k = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_es256(pub, NULL, &k)));
    char *t = craft(HS_HDR, claims_with(""), (const char *)pem.ptr);
    refused_str(k, t, "jwt: token algorithm is not ES256, the key's algorithm");
    free(t);
    /* The other public forms an attacker can fetch: the SEC1 point, and the JWKS text. */
    uint8_t point[1 + 2 * IOTSEC_P256_COORD_LEN] = {0x04};
    assert_true(
        iotsec_ok(iotsec_key_ec_p256_public_xy(pub, point + 1, point + 1 + IOTSEC_P256_COORD_LEN)));
    t = craft_key(HS_HDR, claims_with(""), iotsec_slice_make(point, sizeof(point)));
    refused_str(k, t, "jwt: token algorithm is not ES256, the key's algorithm");
    free(t);
    struct iotsec_jwt_key *named = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_es256(pub, "k", &named)));
    const struct iotsec_jwt_key *set[] = {named};
    struct iotsec_buf jwks = {0};
    assert_true(iotsec_ok(iotsec_jwks_write(set, 1, &jwks)));
    t = craft_key(HS_HDR, claims_with(""), iotsec_buf_slice(&jwks));
    refused_str(k, t, "jwt: token algorithm is not ES256, the key's algorithm");
    free(t);
    iotsec_buf_free(&jwks);
    iotsec_jwt_key_free(named);
    iotsec_buf_free(&pem);
    iotsec_jwt_key_free(k);
    iotsec_key_free(pub);
}

/* Signatures that a careless ES256 verifier has accepted: r = s = 0 (CVE-2022-21449),
 * r and s equal to the group order n (reduced mod n, also zero), and a DER signature
 * where the raw 64-byte r||s of RFC 7518 section 3.4 belongs. */
static void refuses_es256_forgeries(void **state)
{
    (void)state;
    struct iotsec_key *ec = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &ec)));
    struct iotsec_jwt_key *k = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_es256(ec, NULL, &k)));
    static const char ES_HDR[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
    uint8_t sig[64] = {0};
    char *t = craft_sig(ES_HDR, claims_with(""), sig, sizeof(sig));
    refused_str(k, t, "jwt: signature does not verify");
    free(t);
    static const uint8_t order[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
                                      0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
    memcpy(sig, order, 32);
    memcpy(sig + 32, order, 32);
    t = craft_sig(ES_HDR, claims_with(""), sig, sizeof(sig));
    refused_str(k, t, "jwt: signature does not verify");
    free(t);
    /* A real signature over the right input, but DER-encoded. */
    struct iotsec_buf input = {0}, der = {0};
    append_b64(&input, ES_HDR);
    assert_true(iotsec_ok(iotsec_buf_append_u8(&input, '.')));
    append_b64(&input, claims_with(""));
    assert_true(iotsec_ok(iotsec_sign(ec, iotsec_buf_slice(&input), &der)));
    t = craft_sig(ES_HDR, claims_with(""), der.ptr, der.len);
    char expect[64];
    snprintf(expect, sizeof(expect), "jwt: ES256 signature is %zu bytes, expected 64", der.len);
    refused_str(k, t, expect);
    free(t);
    iotsec_buf_free(&input);
    iotsec_buf_free(&der);
    iotsec_jwt_key_free(k);
    iotsec_key_free(ec);
}

static void refuses_altered_tokens(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    char *t = craft(HS_HDR, claims_with(""), SECRET);
    verify_ok(k, NULL, t, NOW);
    /* Stripped signature, and no signature segment at all. */
    char *dot = strrchr(t, '.');
    char *stripped = strndup(t, (size_t)(dot - t) + 1);
    refused_str(k, stripped, "jwt: token has no signature");
    stripped[strlen(stripped) - 1] = '\0';
    refused_str(k, stripped, "jwt: token does not have three segments");
    free(stripped);
    /* Altered payload: another device id, signature kept. */
    char *other = craft(HS_HDR, claims_with("\"x\":1,"), SECRET);
    char *o_dot1 = strchr(other, '.'), *o_dot2 = strrchr(other, '.');
    char *t_dot1 = strchr(t, '.');
    char spliced[2048];
    snprintf(spliced, sizeof(spliced), "%.*s%.*s%s", (int)(t_dot1 - t), t, (int)(o_dot2 - o_dot1),
             o_dot1, dot);
    refused_str(k, spliced, "jwt: signature does not verify");
    free(other);
    /* Altered signature: one character, and one extra character. */
    char *alt = strdup(t);
    size_t n = strlen(alt);
    alt[n - 5] = alt[n - 5] == 'A' ? 'B' : 'A';
    refused_str(k, alt, "jwt: signature does not verify");
    free(alt);
    char longer[2048];
    snprintf(longer, sizeof(longer), "%sAAAA", t);
    refused_str(k, longer, "jwt: signature does not verify");
    /* Wrong secret. */
    char *wrong = craft(HS_HDR, claims_with(""), "another-secret-another-secret-another");
    refused_str(k, wrong, "jwt: signature does not verify");
    free(wrong);
    free(t);
    iotsec_jwt_key_free(k);
}

static void refuses_bad_times(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    char *t = craft(HS_HDR, claims_with(""), SECRET);
    refused(k, NULL, t, strlen(t), NOW + 3600 + 30, "jwt: token expired at 2026-11-18T12:06:40Z");
    verify_ok(k, NULL, t, NOW + 3600 + 29);
    /* iat in the future beyond the leeway. */
    refused(k, NULL, t, strlen(t), NOW - 31, "jwt: token issued in the future");
    verify_ok(k, NULL, t, NOW - 30);
    free(t);
    /* nbf. */
    char extra[64];
    snprintf(extra, sizeof(extra), "\"nbf\":%lld,", (long long)NOW + 100);
    t = craft(HS_HDR, claims_with(extra), SECRET);
    refused(k, NULL, t, strlen(t), NOW + 69, "jwt: token not valid before 2026-11-18T11:08:20Z");
    verify_ok(k, NULL, t, NOW + 70);
    /* A configured leeway of 1 s. */
    struct iotsec_jwt_options o = {.leeway_sec = 1};
    refused(k, &o, t, strlen(t), NOW + 98, "jwt: token not valid before");
    verify_ok(k, &o, t, NOW + 99);
    /* No leeway at all. */
    o.leeway_sec = IOTSEC_JWT_NO_LEEWAY;
    refused(k, &o, t, strlen(t), NOW + 99, "jwt: token not valid before");
    verify_ok(k, &o, t, NOW + 100);
    refused(k, &o, t, strlen(t), NOW + 3600, "jwt: token expired");
    verify_ok(k, &o, t, NOW + 3599);
    free(t);
    /* exp missing, or not an integer. */
    t = craft(HS_HDR, "{\"iss\":\"iot-platform\",\"aud\":\"iot-devices\",\"iat\":1795000000}",
              SECRET);
    refused_str(k, t, "jwt: json: missing required field 'exp'");
    free(t);
    t = craft(HS_HDR, "{\"iss\":\"iot-platform\",\"aud\":\"iot-devices\",\"exp\":\"never\"}",
              SECRET);
    refused_str(k, t, "jwt: json: field 'exp'");
    free(t);
    t = craft(HS_HDR, "{\"iss\":\"iot-platform\",\"aud\":\"iot-devices\",\"exp\":1.9e9}", SECRET);
    refused_str(k, t, "jwt: json: field 'exp'");
    free(t);
    iotsec_jwt_key_free(k);
}

static void checks_issuer_and_audience(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    const char *base = "\"iat\":1795000000,\"exp\":1795003600";
    char p[512];
    snprintf(p, sizeof(p), "{\"iss\":\"evil\",\"aud\":\"iot-devices\",%s}", base);
    char *t = craft(HS_HDR, p, SECRET);
    refused_str(k, t, "jwt: token issuer is not iot-platform");
    free(t);
    snprintf(p, sizeof(p), "{\"aud\":\"iot-devices\",%s}", base);
    t = craft(HS_HDR, p, SECRET);
    refused_str(k, t, "jwt: token has no string issuer");
    free(t);
    snprintf(p, sizeof(p), "{\"iss\":\"iot-platform\",\"aud\":\"other\",%s}", base);
    t = craft(HS_HDR, p, SECRET);
    refused_str(k, t, "jwt: token audience is not iot-devices");
    free(t);
    snprintf(p, sizeof(p), "{\"iss\":\"iot-platform\",\"aud\":[\"a\",\"b\"],%s}", base);
    t = craft(HS_HDR, p, SECRET);
    refused_str(k, t, "jwt: token audience does not include iot-devices");
    free(t);
    snprintf(p, sizeof(p), "{\"iss\":\"iot-platform\",\"aud\":[\"a\",\"iot-devices\"],%s}", base);
    t = craft(HS_HDR, p, SECRET);
    verify_ok(k, NULL, t, NOW);
    free(t);
    snprintf(p, sizeof(p), "{\"iss\":\"iot-platform\",%s}", base);
    t = craft(HS_HDR, p, SECRET);
    refused_str(k, t, "jwt: token has no audience");
    free(t);
    snprintf(p, sizeof(p), "{\"iss\":\"iot-platform\",\"aud\":[1],%s}", base);
    t = craft(HS_HDR, p, SECRET);
    refused_str(k, t, "jwt: aud[0] is not a string");
    free(t);
    /* Typed claims. */
    t = craft(HS_HDR, claims_with("\"capabilities\":[\"a\",2],"), SECRET);
    refused_str(k, t, "jwt: capabilities[1] is not a string");
    free(t);
    iotsec_jwt_key_free(k);
}

static void refuses_duplicates_and_bad_json(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    /* A second exp (far future) after the real one: the strict parser refuses both. */
    char *t = craft(HS_HDR, claims_with("\"exp\":9999999999,"), SECRET);
    refused_str(k, t, "duplicate object key 'exp'");
    free(t);
    t = craft(HS_HDR, claims_with("\"aud\":\"x\","), SECRET);
    refused_str(k, t, "duplicate object key 'aud'");
    free(t);
    t = craft("{\"alg\":\"HS256\",\"alg\":\"none\"}", claims_with(""), SECRET);
    refused_str(k, t, "jwt: header: json: line 1 column");
    free(t);
    t = craft(HS_HDR, "[1,2]", SECRET);
    refused_str(k, t, "jwt: claims is not a JSON object");
    free(t);
    t = craft(HS_HDR, claims_with(""), SECRET);
    /* Trailing garbage in the claims JSON. */
    free(t);
    t = craft(HS_HDR, "{\"exp\":1} x", SECRET);
    refused_str(k, t, "jwt: claims: json:");
    free(t);
    /* crit, and a header without alg. */
    t = craft("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", claims_with(""), SECRET);
    refused_str(k, t, "jwt: critical header extensions are not supported");
    free(t);
    t = craft("{\"typ\":\"JWT\"}", claims_with(""), SECRET);
    refused_str(k, t, "jwt: header has no string alg");
    free(t);
    t = craft("{\"alg\":\"HS512\"}", claims_with(""), SECRET);
    refused_str(k, t, "jwt: token algorithm is not HS256");
    free(t);
    iotsec_jwt_key_free(k);
}

static void refuses_malformed_shapes(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    char *t = craft(HS_HDR, claims_with(""), SECRET);
    char buf[4096];
    /* Four segments. */
    snprintf(buf, sizeof(buf), "%s.AAAA", t);
    refused_str(k, buf, "jwt: token has more than three segments");
    snprintf(buf, sizeof(buf), "%s.", t);
    refused_str(k, buf, "jwt: token has more than three segments");
    refused_str(k, "", "jwt: token does not have three segments");
    refused(k, NULL, NULL, 0, NOW, "jwt: token does not have three segments");
    refused_str(k, "..", "jwt: token has no signature");
    /* Padding and whitespace anywhere. */
    char *dot1 = strchr(t, '.');
    snprintf(buf, sizeof(buf), "%.*s=%s", (int)(dot1 - t), t, dot1);
    refused_str(k, buf, "jwt: header: base64url:");
    snprintf(buf, sizeof(buf), "%s=", t);
    refused_str(k, buf, "jwt: signature: base64url:");
    snprintf(buf, sizeof(buf), " %s", t);
    refused_str(k, buf, "jwt: header: base64url:");
    snprintf(buf, sizeof(buf), "%s\n", t);
    refused_str(k, buf, "jwt: signature: base64url:");
    snprintf(buf, sizeof(buf), "%.*s %s", (int)(dot1 - t) + 1, t, dot1 + 1);
    refused_str(k, buf, "jwt: signature does not verify");
    /* An embedded NUL. */
    size_t n = strlen(t);
    memcpy(buf, t, n);
    buf[n - 4] = '\0';
    refused(k, NULL, buf, n, NOW, "jwt: signature: base64url:");
    /* Oversized: refused by size before anything is decoded. */
    size_t big = IOTSEC_JWT_MAX_TOKEN + 1;
    char *huge = malloc(big);
    memset(huge, 'A', big);
    refused(k, NULL, huge, big, NOW, "jwt: token of 8193 bytes exceeds 8192");
    free(huge);
    free(t);
    iotsec_jwt_key_free(k);
}

static int revoked_j1(void *ctx, const char *jti)
{
    int *calls = ctx;
    (*calls)++;
    return strcmp(jti, "j1") == 0;
}

static int revocation_down(void *ctx, const char *jti)
{
    (void)ctx;
    (void)jti;
    return -1;
}

static void refuses_revoked_jti(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = hs_key();
    int calls = 0;
    struct iotsec_jwt_options o = {.is_revoked = revoked_j1, .revoked_ctx = &calls};
    char *t = craft(HS_HDR, claims_with(""), SECRET);
    refused(k, &o, t, strlen(t), NOW, "jwt: token has been revoked");
    assert_int_equal(calls, 1);
    free(t);
    /* Without a jti, a revocation-checking verifier refuses. */
    t = craft(HS_HDR, "{\"iss\":\"iot-platform\",\"aud\":\"iot-devices\",\"exp\":1795003600}",
              SECRET);
    refused(k, &o, t, strlen(t), NOW, "jwt: json: missing required field 'jti'");
    verify_ok(k, NULL, t, NOW);
    free(t);
    /* Issued tokens carry a fresh jti that is not revoked. */
    struct iotsec_jwt_claims cl = {.device_id = "d"};
    struct iotsec_buf tok = {0};
    assert_true(iotsec_ok(iotsec_jwt_issue(k, NULL, &cl, NOW, &tok)));
    assert_true(iotsec_ok(iotsec_jwt_verify(k, &o, iotsec_buf_slice(&tok), NOW, NULL)));
    assert_int_equal(calls, 2);
    /* A failing lookup fails closed. */
    struct iotsec_jwt_options down = {.is_revoked = revocation_down};
    refused(k, &down, (const char *)tok.ptr, tok.len, NOW, "jwt: revocation check failed");
    iotsec_buf_free(&tok);
    iotsec_jwt_key_free(k);
}

static void refuses_weak_keys_and_bad_args(void **state)
{
    (void)state;
    struct iotsec_jwt_key *k = (struct iotsec_jwt_key *)1;
    assert_false(iotsec_ok(iotsec_jwt_key_hs256(iotsec_slice_from_str("short"), NULL, &k)));
    assert_null(k);
    assert_string_equal(iotsec_error_message(), "jwt: HS256 secret of 5 bytes is shorter than 32");
    struct iotsec_key *ed = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_ED25519, &ed)));
    assert_false(iotsec_ok(iotsec_jwt_key_es256(ed, NULL, &k)));
    iotsec_key_free(ed);
    k = hs_key();
    struct iotsec_buf tok = {0};
    struct iotsec_jwt_claims cl = {.device_id = NULL};
    assert_false(iotsec_ok(iotsec_jwt_issue(k, NULL, &cl, NOW, &tok)));
    cl.device_id = "\xff";
    assert_false(iotsec_ok(iotsec_jwt_issue(k, NULL, &cl, NOW, &tok)));
    assert_int_equal(tok.len, 0);
    iotsec_jwt_key_free(k);
}

/* ---- Wycheproof json_web_signature_test.json: the HS256 and ES256 groups ---- */

static struct iotsec_key *p256_from_jwk(const json_t *jwk)
{
    /* SubjectPublicKeyInfo of an uncompressed P-256 point: fixed prefix, 04, x, y. */
    static const uint8_t prefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                     0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                     0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
    struct iotsec_buf der = {0};
    assert_true(iotsec_ok(iotsec_buf_append(&der, prefix, sizeof(prefix))));
    size_t before = der.len;
    assert_true(iotsec_ok(iotsec_base64url_decode(
        iotsec_slice_from_str(json_string_value(json_object_get(jwk, "x"))), &der)));
    assert_int_equal(der.len - before, 32);
    assert_true(iotsec_ok(iotsec_base64url_decode(
        iotsec_slice_from_str(json_string_value(json_object_get(jwk, "y"))), &der)));
    assert_int_equal(der.len - before, 64);
    struct iotsec_key *k = NULL;
    assert_true(iotsec_ok(iotsec_key_from_public_der(iotsec_buf_slice(&der), &k)));
    iotsec_buf_free(&der);
    return k;
}

/* Tokens with a character outside the base64url alphabet that Wycheproof still marks
 * valid (decoders that skip such characters): our decoder is strict by design and
 * refuses them. Only these may differ from the expected result. */
static bool wycheproof_strictness_case(const json_t *t)
{
    const char *comment = json_string_value(json_object_get(t, "comment"));
    return strcmp(comment, "InvalidCharacterInsertedInHeader") == 0 ||
           strcmp(comment, "InvalidCharacterInsertedInPayload") == 0;
}

/* True when another test of the group has the same token and the opposite result: the
 * padding vectors (tcId 367, 370) lost their '=' and now repeat the valid tcId 357 token
 * byte for byte, so no verifier can meet both: the valid one is checked, the invalid
 * twins are skipped. */
static bool wycheproof_contradicted(const json_t *tests, const json_t *t)
{
    size_t i;
    const json_t *o;
    json_array_foreach(tests, i, o)
    {
        if (o != t && json_equal(json_object_get(o, "jws"), json_object_get(t, "jws")) &&
            !json_equal(json_object_get(o, "result"), json_object_get(t, "result")))
            return true;
    }
    return false;
}

static void wycheproof_jws(void **state)
{
    (void)state;
    const char *path = IOTSEC_TESTDATA_DIR "/wycheproof/json_web_signature_test.json";
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        fail_msg("%s: %s", path, err.text);
    size_t gi, ti, run = 0, valid = 0, strict = 0, contradicted = 0;
    json_t *g, *t;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        const json_t *priv = json_object_get(g, "private");
        const char *alg = json_string_value(json_object_get(priv, "alg"));
        if (alg == NULL)
            continue;
        struct iotsec_jwt_key *k = NULL;
        struct iotsec_key *ec = NULL;
        const char *kid = json_string_value(json_object_get(priv, "kid"));
        if (strcmp(alg, "HS256") == 0) {
            struct iotsec_buf secret = {0};
            assert_true(iotsec_ok(iotsec_base64url_decode(
                iotsec_slice_from_str(json_string_value(json_object_get(priv, "k"))), &secret)));
            assert_true(iotsec_ok(iotsec_jwt_key_hs256(iotsec_buf_slice(&secret), kid, &k)));
            iotsec_buf_free(&secret);
        } else if (strcmp(alg, "ES256") == 0) {
            ec = p256_from_jwk(json_object_get(g, "public"));
            assert_true(iotsec_ok(iotsec_jwt_key_es256(ec, kid, &k)));
        } else {
            continue;
        }
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            const json_t *jws = json_object_get(t, "jws");
            if (!json_is_string(jws)) /* JSON serialisation: not a compact token */
                continue;
            bool expect = strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0;
            if (!expect && wycheproof_contradicted(json_object_get(g, "tests"), t)) {
                contradicted++;
                continue;
            }
            iotsec_result r = iotsec_jwt_verify_signature(
                k, iotsec_slice_make(json_string_value(jws), json_string_length(jws)), NULL, NULL);
            run++;
            valid += iotsec_ok(r);
            if (iotsec_ok(r) == expect)
                continue;
            if (expect && wycheproof_strictness_case(t)) {
                strict++;
                continue;
            }
            fail_msg("tcId %lld (%s): expected %s, got %s",
                     (long long)json_integer_value(json_object_get(t, "tcId")),
                     json_string_value(json_object_get(t, "comment")), expect ? "valid" : "invalid",
                     iotsec_ok(r) ? "valid" : iotsec_error_message());
        }
        iotsec_jwt_key_free(k);
        iotsec_key_free(ec);
    }
    json_decref(root);
    /* Guards against a silently empty run (a renamed field would skip everything). */
    assert_true(run > 60);
    assert_true(valid >= 5);
    assert_int_equal(strict, 2);
    assert_int_equal(contradicted, 2);
}

/* ---- JWKS ---- */

/* A P-256 key whose x coordinate begins with a zero byte: JWK needs it left-padded. */
static const char LEADING_ZERO_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSTL9bXnvHpSXTr2J\n"
    "3sKx+ISG/AxCw8WvWSFNLd99UJyhRANCAAQA7+zTePRAnA5fTqt70ldhDxiNb0tw\n"
    "o7DuMqbpVWHxw7ts0Gp4IIIG4IElaPNsP4BCdmHXMcRfLbgVjc7hRny3\n"
    "-----END PRIVATE KEY-----\n";

static char *jwks_of(const struct iotsec_jwt_key *const *keys, size_t n)
{
    struct iotsec_buf b = {0};
    if (!iotsec_ok(iotsec_jwks_write(keys, n, &b)))
        fail_msg("%s", iotsec_error_message());
    assert_true(iotsec_ok(iotsec_buf_terminate(&b)));
    char *s = strdup((const char *)b.ptr);
    iotsec_buf_free(&b);
    return s;
}

static void jwks_of_known_keys(void **state)
{
    (void)state;
    struct iotsec_key *a3 = NULL, *lz = NULL, *a3_pub = rfc_a3_public();
    assert_true(iotsec_ok(iotsec_key_from_pem(iotsec_slice_from_str(RFC_A3_PEM), &a3)));
    assert_true(iotsec_ok(iotsec_key_from_pem(iotsec_slice_from_str(LEADING_ZERO_PEM), &lz)));
    struct iotsec_jwt_key *ka = NULL, *kl = NULL, *kp = NULL;
    assert_true(iotsec_ok(iotsec_jwt_key_es256(a3, "rfc7515-a3", &ka)));
    assert_true(iotsec_ok(iotsec_jwt_key_es256(lz, "2026-01", &kl)));
    assert_true(iotsec_ok(iotsec_jwt_key_es256(a3_pub, "rfc7515-a3", &kp)));
    const struct iotsec_jwt_key *one[] = {ka};
    char *doc = jwks_of(one, 1);
    assert_string_equal(doc, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                             "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                             "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
                             "\"kid\":\"rfc7515-a3\",\"alg\":\"ES256\",\"use\":\"sig\"}]}");
    /* A private key publishes exactly what its public half does: no d, nothing more. */
    const struct iotsec_jwt_key *pub_only[] = {kp};
    char *doc_pub = jwks_of(pub_only, 1);
    assert_string_equal(doc, doc_pub);
    free(doc_pub);
    free(doc);
    /* Two keys, in the order given; the zero byte at the front of x is kept ("AO..."). */
    const struct iotsec_jwt_key *two[] = {kl, ka};
    doc = jwks_of(two, 2);
    assert_non_null(strstr(doc, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                                "\"x\":\"AO_s03j0QJwOX06re9JXYQ8YjW9LcKOw7jKm6VVh8cM\","
                                "\"y\":\"u2zQanggggbggSVo82w_gEJ2YdcxxF8tuBWNzuFGfLc\","
                                "\"kid\":\"2026-01\",\"alg\":\"ES256\",\"use\":\"sig\"},"
                                "{\"kty\":\"EC\""));
    assert_null(strstr(doc, "\"d\""));
    free(doc);
    iotsec_jwt_key_free(ka);
    iotsec_jwt_key_free(kl);
    iotsec_jwt_key_free(kp);
    iotsec_key_free(a3);
    iotsec_key_free(lz);
    iotsec_key_free(a3_pub);
}

/* x and y through OpenSSL alone (EVP_PKEY_fromdata), as a foreign verifier would. */
static EVP_PKEY *pkey_from_jwk(const json_t *jwk)
{
    uint8_t point[1 + 2 * IOTSEC_P256_COORD_LEN] = {0x04};
    struct iotsec_buf x = {0}, y = {0};
    assert_true(iotsec_ok(iotsec_base64url_decode(
        iotsec_slice_from_str(json_string_value(json_object_get(jwk, "x"))), &x)));
    assert_true(iotsec_ok(iotsec_base64url_decode(
        iotsec_slice_from_str(json_string_value(json_object_get(jwk, "y"))), &y)));
    assert_int_equal(x.len, IOTSEC_P256_COORD_LEN);
    assert_int_equal(y.len, IOTSEC_P256_COORD_LEN);
    memcpy(point + 1, x.ptr, IOTSEC_P256_COORD_LEN);
    memcpy(point + 1 + IOTSEC_P256_COORD_LEN, y.ptr, IOTSEC_P256_COORD_LEN);
    iotsec_buf_free(&x);
    iotsec_buf_free(&y);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
                     1);
    assert_int_equal(
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)), 1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pkey = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
    /* The point is on the curve (fromdata alone does not promise that). */
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    assert_int_equal(EVP_PKEY_public_check(check), 1);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static void jwks_round_trips_through_openssl(void **state)
{
    (void)state;
    enum { N = 3 };
    struct iotsec_key *ec[N];
    struct iotsec_jwt_key *k[N];
    const char *kids[N] = {"a", "b", "c"};
    for (int i = 0; i < N; i++) {
        assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &ec[i])));
        assert_true(iotsec_ok(iotsec_jwt_key_es256(ec[i], kids[i], &k[i])));
    }
    const struct iotsec_jwt_key *set[N] = {k[0], k[1], k[2]};
    char *doc = jwks_of(set, N);
    /* Our own strict parser accepts it (no duplicate members, nothing trailing). */
    json_t *root = NULL;
    assert_true(iotsec_ok(iotsec_json_parse(iotsec_slice_from_str(doc), NULL, &root)));
    assert_int_equal(json_object_size(root), 1);
    json_t *keys = json_object_get(root, "keys");
    assert_int_equal(json_array_size(keys), N);
    for (int i = 0; i < N; i++) {
        const json_t *jwk = json_array_get(keys, (size_t)i);
        assert_int_equal(json_object_size(jwk), 7);
        assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
        assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
        assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES256");
        assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
        assert_string_equal(json_string_value(json_object_get(jwk, "kid")), kids[i]);
        assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 43);
        assert_int_equal(strlen(json_string_value(json_object_get(jwk, "y"))), 43);
        /* The rebuilt key is the same public key: byte-equal SubjectPublicKeyInfo PEM. */
        EVP_PKEY *rebuilt = pkey_from_jwk(jwk);
        BIO *bio = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(bio, rebuilt), 1);
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        struct iotsec_buf pem = {0};
        assert_true(iotsec_ok(iotsec_key_public_to_pem(ec[i], &pem)));
        assert_int_equal((size_t)n, pem.len);
        assert_memory_equal(data, pem.ptr, pem.len);
        BIO_free(bio);
        EVP_PKEY_free(rebuilt);
        iotsec_buf_free(&pem);
        /* And a token key i issues verifies with the key rebuilt from its JWK. */
        struct iotsec_key *from_jwk = p256_from_jwk(jwk);
        struct iotsec_jwt_key *v = NULL;
        assert_true(iotsec_ok(iotsec_jwt_key_es256(from_jwk, kids[i], &v)));
        struct iotsec_jwt_claims cl = {.device_id = "dev-jwks"};
        struct iotsec_buf tok = {0};
        assert_true(iotsec_ok(iotsec_jwt_issue(k[i], NULL, &cl, NOW, &tok)));
        assert_true(iotsec_ok(iotsec_jwt_verify(v, NULL, iotsec_buf_slice(&tok), NOW, NULL)));
        iotsec_buf_free(&tok);
        iotsec_jwt_key_free(v);
        iotsec_key_free(from_jwk);
    }
    json_decref(root);
    free(doc);
    for (int i = 0; i < N; i++) {
        iotsec_jwt_key_free(k[i]);
        iotsec_key_free(ec[i]);
    }
}

static void jwks_refused(const struct iotsec_jwt_key *const *keys, size_t n, const char *message)
{
    struct iotsec_buf b = {0};
    assert_false(iotsec_ok(iotsec_jwks_write(keys, n, &b)));
    assert_int_equal(b.len, 0);
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    if (strstr(iotsec_error_message(), message) == NULL)
        fail_msg("expected '%s', got '%s'", message, iotsec_error_message());
    json_t *set = (json_t *)1;
    assert_false(iotsec_ok(iotsec_jwks_build(keys, n, &set)));
    assert_null(set);
    iotsec_buf_free(&b);
}

static void jwks_refuses_secrets_and_unnamed_keys(void **state)
{
    (void)state;
    struct iotsec_key *ec = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &ec)));
    struct iotsec_jwt_key *hs = NULL, *es = NULL, *es2 = NULL, *unnamed = NULL;
    assert_true(
        iotsec_ok(iotsec_jwt_key_hs256(iotsec_slice_make(SECRET, strlen(SECRET)), "hs", &hs)));
    assert_true(iotsec_ok(iotsec_jwt_key_es256(ec, "k1", &es)));
    assert_true(iotsec_ok(iotsec_jwt_key_es256(ec, "k1", &es2)));
    assert_true(iotsec_ok(iotsec_jwt_key_es256(ec, NULL, &unnamed)));
    const struct iotsec_jwt_key *with_hs[] = {es, hs};
    jwks_refused(with_hs, 2, "jwks: key 1 is HS256, whose secret must never be published");
    const struct iotsec_jwt_key *no_kid[] = {unnamed};
    jwks_refused(no_kid, 1, "jwks: key 0 has no kid");
    const struct iotsec_jwt_key *dup[] = {es, es2};
    jwks_refused(dup, 2, "jwks: keys 0 and 1 share the kid 'k1'");
    const struct iotsec_jwt_key *hole[] = {es, NULL};
    jwks_refused(hole, 2, "jwks: key 1 is missing");
    jwks_refused(no_kid, 0, "jwks: a key set needs at least one key");
    const struct iotsec_jwt_key *many[IOTSEC_JWKS_MAX_KEYS + 1];
    for (size_t i = 0; i <= IOTSEC_JWKS_MAX_KEYS; i++)
        many[i] = es;
    jwks_refused(many, IOTSEC_JWKS_MAX_KEYS + 1, "jwks: 17 keys exceed the limit of 16");
    /* Coordinates exist only for P-256 keys. */
    struct iotsec_key *ed = NULL;
    uint8_t x[IOTSEC_P256_COORD_LEN], y[IOTSEC_P256_COORD_LEN];
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_ED25519, &ed)));
    assert_false(iotsec_ok(iotsec_key_ec_p256_public_xy(ed, x, y)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    iotsec_key_free(ed);
    /* The secret bytes appear in no error message. */
    assert_null(strstr(iotsec_error_message(), SECRET));
    iotsec_jwt_key_free(hs);
    iotsec_jwt_key_free(es);
    iotsec_jwt_key_free(es2);
    iotsec_jwt_key_free(unnamed);
    iotsec_key_free(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64url_is_strict),
        cmocka_unit_test(rfc7515_a1_verifies),
        cmocka_unit_test(rfc7519_examples),
        cmocka_unit_test(rfc7515_a3_verifies),
        cmocka_unit_test(hs256_round_trip),
        cmocka_unit_test(es256_round_trip),
        cmocka_unit_test(refuses_alg_none),
        cmocka_unit_test(refuses_alg_confusion),
        cmocka_unit_test(refuses_es256_forgeries),
        cmocka_unit_test(refuses_altered_tokens),
        cmocka_unit_test(refuses_bad_times),
        cmocka_unit_test(checks_issuer_and_audience),
        cmocka_unit_test(refuses_duplicates_and_bad_json),
        cmocka_unit_test(refuses_malformed_shapes),
        cmocka_unit_test(refuses_revoked_jti),
        cmocka_unit_test(refuses_weak_keys_and_bad_args),
        cmocka_unit_test(wycheproof_jws),
        cmocka_unit_test(jwks_of_known_keys),
        cmocka_unit_test(jwks_round_trips_through_openssl),
        cmocka_unit_test(jwks_refuses_secrets_and_unnamed_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
