/* Unit tests for device JWTs: the RFC 7515 A.1 example, HS256 and ES256 round trips,
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

#include "iotsec/jwt.h"

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
static char *craft(const char *header, const char *payload, const char *secret)
{
    struct iotsec_buf b = {0};
    append_b64(&b, header);
    assert_true(iotsec_ok(iotsec_buf_append_u8(&b, '.')));
    append_b64(&b, payload);
    uint8_t mac[IOTSEC_HMAC_SHA256_LEN];
    assert_true(
        iotsec_ok(iotsec_hmac_sha256(iotsec_slice_from_str(secret), iotsec_buf_slice(&b), mac)));
    assert_true(iotsec_ok(iotsec_buf_append_u8(&b, '.')));
    assert_true(iotsec_ok(iotsec_base64url_encode(iotsec_slice_make(mac, sizeof(mac)), &b)));
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
    iotsec_buf_free(&pem);
    iotsec_jwt_key_free(k);
    iotsec_key_free(pub);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64url_is_strict),
        cmocka_unit_test(rfc7515_a1_verifies),
        cmocka_unit_test(hs256_round_trip),
        cmocka_unit_test(es256_round_trip),
        cmocka_unit_test(refuses_alg_none),
        cmocka_unit_test(refuses_alg_confusion),
        cmocka_unit_test(refuses_altered_tokens),
        cmocka_unit_test(refuses_bad_times),
        cmocka_unit_test(checks_issuer_and_audience),
        cmocka_unit_test(refuses_duplicates_and_bad_json),
        cmocka_unit_test(refuses_malformed_shapes),
        cmocka_unit_test(refuses_revoked_jti),
        cmocka_unit_test(refuses_weak_keys_and_bad_args),
        cmocka_unit_test(wycheproof_jws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
