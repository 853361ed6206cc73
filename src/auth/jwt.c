/*
 * JWT (JWS compact) issue and verify for device tokens; see include/iotsec/jwt.h for the
 * contract and the attacks each check answers.
 *
 * Verification order matters: size, then shape (three segments, strict base64url), then
 * the header (alg pinned to the key, none and crit refused), then the signature, and only
 * then the claims. Nothing from the payload is looked at before the signature holds, so
 * an attacker cannot reach claim parsing with unsigned input.
 */
#include "iotsec/jwt.h"

#include "iotsec/json.h"
#include "iotsec/time.h"
#include "jwt_internal.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ES256_COMPONENT 32
#define ES256_SIG_LEN   (2 * ES256_COMPONENT)
#define KID_MAX         256
#define CLAIM_STR_MAX   1024
#define MAX_CAPS        64

/* ---- base64url ---- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

iotsec_result iotsec_base64url_encode(struct iotsec_slice in, struct iotsec_buf *out)
{
    size_t i = 0;
    for (; i + 3 <= in.len; i += 3) {
        uint32_t v = ((uint32_t)in.ptr[i] << 16) | ((uint32_t)in.ptr[i + 1] << 8) | in.ptr[i + 2];
        char q[4] = {B64URL[(v >> 18) & 63], B64URL[(v >> 12) & 63], B64URL[(v >> 6) & 63],
                     B64URL[v & 63]};
        IOTSEC_GUARD(iotsec_buf_append(out, q, 4));
    }
    size_t rest = in.len - i;
    if (rest == 1) {
        uint32_t v = (uint32_t)in.ptr[i] << 16;
        char q[2] = {B64URL[(v >> 18) & 63], B64URL[(v >> 12) & 63]};
        IOTSEC_GUARD(iotsec_buf_append(out, q, 2));
    } else if (rest == 2) {
        uint32_t v = ((uint32_t)in.ptr[i] << 16) | ((uint32_t)in.ptr[i + 1] << 8);
        char q[3] = {B64URL[(v >> 18) & 63], B64URL[(v >> 12) & 63], B64URL[(v >> 6) & 63]};
        IOTSEC_GUARD(iotsec_buf_append(out, q, 3));
    }
    return IOTSEC_RESULT_OK;
}

/* One more than the alphabet value of each byte; 0 for bytes outside the alphabet. */
static const uint8_t B64URL_VALUE1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64};

/* Bytes that in.len characters decode to (the length is checked first). */
static size_t b64url_decoded_len(size_t n)
{
    return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

/* Strict: one encoding per byte string. Padding, whitespace and the '+' '/' of plain
 * base64 are refused, and so are non-zero unused bits in the last character, which would
 * otherwise let several token strings carry the same signature (token malleability).
 * Writes exactly b64url_decoded_len(in.len) bytes to dst. */
static iotsec_result b64url_decode_raw(struct iotsec_slice in, uint8_t *dst)
{
    IOTSEC_ENSURE(in.len % 4 != 1, IOTSEC_ERR_FORMAT, "base64url: impossible length %zu", in.len);
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        uint8_t v1 = B64URL_VALUE1[in.ptr[i]];
        IOTSEC_ENSURE(v1 != 0, IOTSEC_ERR_FORMAT,
                      "base64url: character 0x%02x at offset %zu is not in the alphabet", in.ptr[i],
                      i);
        acc = (acc << 6) | (uint32_t)(v1 - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    IOTSEC_ENSURE(acc == 0, IOTSEC_ERR_FORMAT, "base64url: non-zero trailing bits");
    return IOTSEC_RESULT_OK;
}

/* On failure out keeps its length (bytes past it may have been written). */
iotsec_result iotsec_base64url_decode(struct iotsec_slice in, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(in.len % 4 != 1, IOTSEC_ERR_FORMAT, "base64url: impossible length %zu", in.len);
    size_t n = b64url_decoded_len(in.len);
    IOTSEC_GUARD(iotsec_buf_reserve(out, n));
    IOTSEC_GUARD(b64url_decode_raw(in, out->ptr + out->len));
    out->len += n;
    return IOTSEC_RESULT_OK;
}

/* ---- keys ---- */

static const char *alg_name(enum iotsec_jwt_alg alg);
static iotsec_result check_header(const struct iotsec_jwt_key *key, const json_t *header);
static iotsec_result append_segment(const json_t *obj, struct iotsec_buf *out);

/* The header segment the key issues, built once; check_header must accept it, which is
 * what lets verify skip parsing these exact bytes. */
static iotsec_result make_header(struct iotsec_jwt_key *k)
{
    json_t *hdr = json_pack("{s:s,s:s}", "alg", alg_name(k->alg), "typ", "JWT");
    IOTSEC_ENSURE_ALLOC(hdr);
    iotsec_result res = IOTSEC_RESULT_OK;
    if (k->kid != NULL && json_object_set_new(hdr, "kid", json_string(k->kid)) != 0) {
        iotsec_error_set(IOTSEC_ERR_INVALID_ARG, "jwt: kid is not valid UTF-8");
        res = IOTSEC_RESULT_ERR;
    }
    if (iotsec_ok(res))
        res = check_header(k, hdr);
    if (iotsec_ok(res))
        res = append_segment(hdr, &k->header_b64);
    json_decref(hdr);
    return res;
}

/* Takes ownership of *k: on failure it is freed. */
static iotsec_result key_finish(struct iotsec_jwt_key *k, struct iotsec_jwt_key **out)
{
    if (!iotsec_ok(make_header(k))) {
        iotsec_jwt_key_free(k);
        return IOTSEC_RESULT_ERR;
    }
    *out = k;
    return IOTSEC_RESULT_OK;
}

static iotsec_result key_new(enum iotsec_jwt_alg alg, const char *kid, struct iotsec_jwt_key **out)
{
    *out = NULL;
    IOTSEC_ENSURE(kid == NULL || (kid[0] != '\0' && strlen(kid) <= KID_MAX), IOTSEC_ERR_INVALID_ARG,
                  "jwt: kid must be 1..%d bytes", KID_MAX);
    struct iotsec_jwt_key *k = calloc(1, sizeof(*k));
    IOTSEC_ENSURE_ALLOC(k);
    k->alg = alg;
    if (kid != NULL) {
        k->kid = strdup(kid);
        if (k->kid == NULL) {
            free(k);
            IOTSEC_BAIL(IOTSEC_ERR_NOMEM, NULL);
        }
    }
    *out = k;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_jwt_key_hs256(struct iotsec_slice secret, const char *kid,
                                   struct iotsec_jwt_key **out)
{
    *out = NULL;
    IOTSEC_ENSURE(secret.len >= IOTSEC_JWT_HS256_MIN_SECRET, IOTSEC_ERR_INVALID_ARG,
                  "jwt: HS256 secret of %zu bytes is shorter than %d", secret.len,
                  IOTSEC_JWT_HS256_MIN_SECRET);
    struct iotsec_jwt_key *k;
    IOTSEC_GUARD(key_new(IOTSEC_JWT_HS256, kid, &k));
    if (!iotsec_ok(iotsec_hmac_key_new(secret, &k->hmac))) {
        iotsec_jwt_key_free(k);
        return IOTSEC_RESULT_ERR;
    }
    return key_finish(k, out);
}

iotsec_result iotsec_jwt_key_es256(const struct iotsec_key *key, const char *kid,
                                   struct iotsec_jwt_key **out)
{
    *out = NULL;
    IOTSEC_ENSURE(key != NULL && iotsec_key_type(key) == IOTSEC_KEY_EC_P256, IOTSEC_ERR_INVALID_ARG,
                  "jwt: ES256 needs an EC P-256 key");
    struct iotsec_jwt_key *k;
    IOTSEC_GUARD(key_new(IOTSEC_JWT_ES256, kid, &k));
    k->ec = key;
    return key_finish(k, out);
}

enum iotsec_jwt_alg iotsec_jwt_key_alg(const struct iotsec_jwt_key *key)
{
    return key->alg;
}

void iotsec_jwt_key_free(struct iotsec_jwt_key *key)
{
    if (key == NULL)
        return;
    iotsec_hmac_key_free(key->hmac);
    iotsec_buf_free(&key->header_b64);
    free(key->kid);
    free(key);
}

static const char *alg_name(enum iotsec_jwt_alg alg)
{
    return alg == IOTSEC_JWT_ES256 ? "ES256" : "HS256";
}

/* ---- ES256 signature encoding: RFC 7518 r||s <-> the DER that crypto.h speaks ---- */

static iotsec_result es256_der_to_raw(struct iotsec_slice der, uint8_t raw[ES256_SIG_LEN])
{
    const unsigned char *p = der.ptr;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der.len);
    IOTSEC_ENSURE(sig != NULL, IOTSEC_ERR_CRYPTO, "jwt: ES256 signature is not DER");
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, ES256_COMPONENT) == ES256_COMPONENT &&
             BN_bn2binpad(s, raw + ES256_COMPONENT, ES256_COMPONENT) == ES256_COMPONENT;
    ECDSA_SIG_free(sig);
    IOTSEC_ENSURE(ok, IOTSEC_ERR_CRYPTO, "jwt: ES256 signature component too long");
    return IOTSEC_RESULT_OK;
}

static iotsec_result es256_raw_to_der(struct iotsec_slice raw, struct iotsec_buf *der)
{
    IOTSEC_ENSURE(raw.len == ES256_SIG_LEN, IOTSEC_ERR_VERIFY,
                  "jwt: ES256 signature is %zu bytes, expected %d", raw.len, ES256_SIG_LEN);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw.ptr, ES256_COMPONENT, NULL);
    BIGNUM *s = BN_bin2bn(raw.ptr + ES256_COMPONENT, ES256_COMPONENT, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, NULL);
    }
    unsigned char *enc = NULL;
    int n = i2d_ECDSA_SIG(sig, &enc);
    ECDSA_SIG_free(sig);
    IOTSEC_ENSURE(n > 0, IOTSEC_ERR_CRYPTO, "jwt: ES256 signature encoding failed");
    iotsec_result res = iotsec_buf_append(der, enc, (size_t)n);
    OPENSSL_free(enc);
    return res;
}

/* ---- signing and checking ---- */

static iotsec_result sign_input(const struct iotsec_jwt_key *key, struct iotsec_slice input,
                                struct iotsec_buf *out)
{
    if (key->alg == IOTSEC_JWT_HS256) {
        uint8_t mac[IOTSEC_HMAC_SHA256_LEN];
        IOTSEC_GUARD(iotsec_hmac_key_mac(key->hmac, input, mac));
        return iotsec_base64url_encode(iotsec_slice_make(mac, sizeof(mac)), out);
    }
    IOTSEC_ENSURE(iotsec_key_has_private(key->ec), IOTSEC_ERR_INVALID_ARG,
                  "jwt: ES256 key has no private part and cannot issue");
    struct iotsec_buf der = {0};
    uint8_t raw[ES256_SIG_LEN];
    iotsec_result res = iotsec_sign(key->ec, input, &der);
    if (iotsec_ok(res))
        res = es256_der_to_raw(iotsec_buf_slice(&der), raw);
    iotsec_buf_free(&der);
    IOTSEC_GUARD(res);
    return iotsec_base64url_encode(iotsec_slice_make(raw, sizeof(raw)), out);
}

static iotsec_result check_signature(const struct iotsec_jwt_key *key, struct iotsec_slice input,
                                     struct iotsec_slice sig)
{
    if (key->alg == IOTSEC_JWT_HS256) {
        /* Fixed length and constant-time compare inside; a truncated tag is refused. */
        if (!iotsec_ok(iotsec_hmac_key_verify(key->hmac, input, sig)))
            IOTSEC_BAIL(IOTSEC_ERR_VERIFY, "jwt: signature does not verify");
        return IOTSEC_RESULT_OK;
    }
    struct iotsec_buf der = {0};
    iotsec_result res = es256_raw_to_der(sig, &der);
    if (iotsec_ok(res) && !iotsec_ok(iotsec_verify(key->ec, input, iotsec_buf_slice(&der)))) {
        iotsec_error_set(IOTSEC_ERR_VERIFY, "jwt: signature does not verify");
        res = IOTSEC_RESULT_ERR;
    }
    iotsec_buf_free(&der);
    return res;
}

/* Decoding scratch: every segment of a token of IOTSEC_JWT_MAX_TOKEN characters fits, so
 * a verification decodes into the stack and allocates nothing for it. */
#define SCRATCH_MAX (IOTSEC_JWT_MAX_TOKEN / 4 * 3 + 3)

/* Decodes one segment into scratch (advancing *used); the decoded bytes go to *raw. */
static iotsec_result decode_segment(struct iotsec_slice seg, const char *what, uint8_t *scratch,
                                    size_t *used, struct iotsec_slice *raw)
{
    if (!iotsec_ok(b64url_decode_raw(seg, scratch + *used))) {
        iotsec_error_prefix("jwt: %s: ", what);
        return IOTSEC_RESULT_ERR;
    }
    size_t n = b64url_decoded_len(seg.len);
    *raw = iotsec_slice_make(scratch + *used, n);
    *used += n;
    return IOTSEC_RESULT_OK;
}

/* Decodes one segment and parses it as a JSON object. */
static iotsec_result decode_json_segment(struct iotsec_slice seg, const char *what,
                                         uint8_t *scratch, size_t *used, json_t **out)
{
    *out = NULL;
    struct iotsec_slice raw;
    IOTSEC_GUARD(decode_segment(seg, what, scratch, used, &raw));
    struct iotsec_json_limits limits = {.max_bytes = IOTSEC_JWT_MAX_TOKEN, .max_depth = 8};
    if (!iotsec_ok(iotsec_json_parse(raw, &limits, out))) {
        iotsec_error_prefix("jwt: %s: ", what);
        return IOTSEC_RESULT_ERR;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "jwt: %s is not a JSON object", what);
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_header(const struct iotsec_jwt_key *key, const json_t *header)
{
    const json_t *alg = json_object_get(header, "alg");
    IOTSEC_ENSURE(json_is_string(alg), IOTSEC_ERR_FORMAT, "jwt: header has no string alg");
    const char *a = json_string_value(alg);
    /* "None" or "NONE" would fail the exact match below anyway; the case-insensitive
     * test only makes the message name them for what they are. */
    IOTSEC_ENSURE(strcasecmp(a, "none") != 0, IOTSEC_ERR_VERIFY,
                  "jwt: algorithm none is not accepted");
    IOTSEC_ENSURE(strcmp(a, alg_name(key->alg)) == 0, IOTSEC_ERR_VERIFY,
                  "jwt: token algorithm is not %s, the key's algorithm", alg_name(key->alg));
    /* We implement no JWS extension, so any critical one is unknown (RFC 7515 4.1.11). */
    IOTSEC_ENSURE(json_object_get(header, "crit") == NULL, IOTSEC_ERR_VERIFY,
                  "jwt: critical header extensions are not supported");
    const json_t *typ = json_object_get(header, "typ");
    IOTSEC_ENSURE(typ == NULL ||
                      (json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0),
                  IOTSEC_ERR_FORMAT, "jwt: header typ is not JWT");
    const json_t *kid = json_object_get(header, "kid");
    IOTSEC_ENSURE(kid == NULL || json_is_string(kid), IOTSEC_ERR_FORMAT,
                  "jwt: header kid is not a string");
    if (kid != NULL && key->kid != NULL)
        IOTSEC_ENSURE(strcmp(json_string_value(kid), key->kid) == 0, IOTSEC_ERR_VERIFY,
                      "jwt: token kid does not match the key");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_jwt_verify_signature(const struct iotsec_jwt_key *key,
                                          struct iotsec_slice token, json_t **header,
                                          json_t **payload)
{
    if (header != NULL)
        *header = NULL;
    if (payload != NULL)
        *payload = NULL;
    IOTSEC_ENSURE(key != NULL, IOTSEC_ERR_INVALID_ARG, "jwt: no key");
    IOTSEC_ENSURE(token.len <= IOTSEC_JWT_MAX_TOKEN, IOTSEC_ERR_TOO_LARGE,
                  "jwt: token of %zu bytes exceeds %zu", token.len, IOTSEC_JWT_MAX_TOKEN);
    /* Tested apart so that memchr never sees a NULL pointer (a zero-length slice may
     * have one). */
    IOTSEC_ENSURE(token.len > 0, IOTSEC_ERR_FORMAT, "jwt: token does not have three segments");
    const uint8_t *d1 = memchr(token.ptr, '.', token.len);
    IOTSEC_ENSURE(d1 != NULL, IOTSEC_ERR_FORMAT, "jwt: token does not have three segments");
    size_t off1 = (size_t)(d1 - token.ptr);
    const uint8_t *d2 = memchr(d1 + 1, '.', token.len - off1 - 1);
    IOTSEC_ENSURE(d2 != NULL, IOTSEC_ERR_FORMAT, "jwt: token does not have three segments");
    size_t off2 = (size_t)(d2 - token.ptr);
    IOTSEC_ENSURE(memchr(d2 + 1, '.', token.len - off2 - 1) == NULL, IOTSEC_ERR_FORMAT,
                  "jwt: token has more than three segments");
    struct iotsec_slice h = iotsec_slice_make(token.ptr, off1);
    struct iotsec_slice p = iotsec_slice_make(d1 + 1, off2 - off1 - 1);
    struct iotsec_slice s = iotsec_slice_make(d2 + 1, token.len - off2 - 1);
    struct iotsec_slice input = iotsec_slice_make(token.ptr, off2);
    IOTSEC_ENSURE(s.len > 0, IOTSEC_ERR_VERIFY, "jwt: token has no signature");

    /* The length check above bounds every decode: the segments together decode to at
     * most SCRATCH_MAX bytes. */
    uint8_t scratch[SCRATCH_MAX];
    size_t used = 0;
    json_t *hdr = NULL;
    iotsec_result res = IOTSEC_RESULT_OK;
    if (header == NULL && iotsec_slice_equal(h, iotsec_buf_slice(&key->header_b64))) {
        /* Our own header, byte for byte: check_header accepted these bytes when the key
         * was made, and the verdict depends on nothing else. */
    } else {
        IOTSEC_GUARD(decode_json_segment(h, "header", scratch, &used, &hdr));
        res = check_header(key, hdr);
    }
    struct iotsec_slice sig;
    if (iotsec_ok(res))
        res = decode_segment(s, "signature", scratch, &used, &sig);
    if (iotsec_ok(res))
        res = check_signature(key, input, sig);
    json_t *pl = NULL;
    if (iotsec_ok(res) && payload != NULL) {
        res = decode_json_segment(p, "claims", scratch, &used, &pl);
    } else if (iotsec_ok(res)) {
        /* Not parsed, but still held to strict base64url: one encoding per token. */
        struct iotsec_slice raw;
        res = decode_segment(p, "claims", scratch, &used, &raw);
    }
    if (!iotsec_ok(res)) {
        json_decref(hdr);
        return res;
    }
    if (header != NULL)
        *header = hdr;
    else
        json_decref(hdr);
    if (payload != NULL)
        *payload = pl;
    return IOTSEC_RESULT_OK;
}

/* ---- claims ---- */

static void options_resolve(const struct iotsec_jwt_options *in, struct iotsec_jwt_options *out)
{
    *out = in != NULL ? *in : (struct iotsec_jwt_options){0};
    if (out->issuer == NULL)
        out->issuer = IOTSEC_JWT_DEFAULT_ISSUER;
    if (out->audience == NULL)
        out->audience = IOTSEC_JWT_DEFAULT_AUDIENCE;
    if (out->lifetime_sec == 0)
        out->lifetime_sec = IOTSEC_JWT_DEFAULT_LIFETIME;
    if (out->leeway_sec == 0)
        out->leeway_sec = IOTSEC_JWT_DEFAULT_LEEWAY;
    else if (out->leeway_sec == IOTSEC_JWT_NO_LEEWAY)
        out->leeway_sec = 0;
}

/* For messages: an RFC 3339 time, or the raw number when it is outside the calendar. */
static const char *fmt_time(int64_t t, char buf[IOTSEC_TIME_STR_MAX])
{
    if (!iotsec_ok(iotsec_time_format((struct iotsec_time){.sec = t}, IOTSEC_TIME_SECONDS, buf)))
        snprintf(buf, IOTSEC_TIME_STR_MAX, "%lld", (long long)t);
    return buf;
}

static iotsec_result check_audience(const json_t *claims, const char *ours)
{
    const json_t *aud = json_object_get(claims, "aud");
    IOTSEC_ENSURE(aud != NULL, IOTSEC_ERR_AUTH, "jwt: token has no audience");
    if (json_is_string(aud)) {
        IOTSEC_ENSURE(strcmp(json_string_value(aud), ours) == 0, IOTSEC_ERR_AUTH,
                      "jwt: token audience is not %s", ours);
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_ENSURE(json_is_array(aud), IOTSEC_ERR_AUTH, "jwt: aud is not a string or array");
    size_t i;
    const json_t *v;
    bool found = false;
    json_array_foreach(aud, i, v)
    {
        IOTSEC_ENSURE(json_is_string(v), IOTSEC_ERR_AUTH, "jwt: aud[%zu] is not a string", i);
        if (strcmp(json_string_value(v), ours) == 0)
            found = true;
    }
    IOTSEC_ENSURE(found, IOTSEC_ERR_AUTH, "jwt: token audience does not include %s", ours);
    return IOTSEC_RESULT_OK;
}

/* A getter's error becomes IOTSEC_ERR_AUTH with a "jwt: " prefix. The message is copied
 * first: it lives in the slot that iotsec_error_set overwrites. */
static iotsec_result reclassify_auth(void)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", iotsec_error_message());
    iotsec_error_set(IOTSEC_ERR_AUTH, "jwt: %s", msg);
    return IOTSEC_RESULT_ERR;
}

/* Claim checks after the signature held. Every type error is IOTSEC_ERR_AUTH: a signed
 * token with a malformed claim is still not a credential we accept. */
static iotsec_result check_claims(const struct iotsec_jwt_options *o, const json_t *c, int64_t now)
{
    char tb[IOTSEC_TIME_STR_MAX];
    int64_t exp = 0, nbf = INT64_MIN, iat = INT64_MIN;
    const int64_t lim = INT64_MAX / 4; /* keeps now +- leeway arithmetic from overflowing */
    if (!iotsec_ok(iotsec_json_get_int(c, "exp", IOTSEC_JSON_REQUIRED, -lim, lim, &exp)) ||
        !iotsec_ok(iotsec_json_get_int(c, "nbf", IOTSEC_JSON_OPTIONAL, -lim, lim, &nbf)) ||
        !iotsec_ok(iotsec_json_get_int(c, "iat", IOTSEC_JSON_OPTIONAL, -lim, lim, &iat))) {
        return reclassify_auth();
    }
    IOTSEC_ENSURE(now < exp + o->leeway_sec, IOTSEC_ERR_AUTH, "jwt: token expired at %s",
                  fmt_time(exp, tb));
    IOTSEC_ENSURE(nbf == INT64_MIN || now + o->leeway_sec >= nbf, IOTSEC_ERR_AUTH,
                  "jwt: token not valid before %s", fmt_time(nbf, tb));
    IOTSEC_ENSURE(iat == INT64_MIN || iat <= now + o->leeway_sec, IOTSEC_ERR_AUTH,
                  "jwt: token issued in the future at %s", fmt_time(iat, tb));

    const char *iss = NULL;
    const json_t *jiss = json_object_get(c, "iss");
    IOTSEC_ENSURE(json_is_string(jiss), IOTSEC_ERR_AUTH, "jwt: token has no string issuer");
    iss = json_string_value(jiss);
    IOTSEC_ENSURE(strcmp(iss, o->issuer) == 0, IOTSEC_ERR_AUTH, "jwt: token issuer is not %s",
                  o->issuer);
    IOTSEC_GUARD(check_audience(c, o->audience));

    const char *s = NULL;
    json_t *caps = NULL;
    const char *jti = NULL;
    if (!iotsec_ok(
            iotsec_json_get_string(c, "deviceId", IOTSEC_JSON_OPTIONAL, CLAIM_STR_MAX, &s)) ||
        !iotsec_ok(iotsec_json_get_string(c, "sub", IOTSEC_JSON_OPTIONAL, CLAIM_STR_MAX, &s)) ||
        !iotsec_ok(iotsec_json_get_string(
            c, "jti", o->is_revoked ? IOTSEC_JSON_REQUIRED : IOTSEC_JSON_OPTIONAL, CLAIM_STR_MAX,
            &jti)) ||
        !iotsec_ok(
            iotsec_json_get_array(c, "capabilities", IOTSEC_JSON_OPTIONAL, MAX_CAPS, &caps))) {
        return reclassify_auth();
    }
    if (caps != NULL) {
        size_t i;
        const json_t *v;
        json_array_foreach(caps, i, v)
        {
            IOTSEC_ENSURE(json_is_string(v), IOTSEC_ERR_AUTH,
                          "jwt: capabilities[%zu] is not a string", i);
        }
    }
    if (o->is_revoked != NULL) {
        int r = o->is_revoked(o->revoked_ctx, jti);
        IOTSEC_ENSURE(r >= 0, IOTSEC_ERR_AUTH, "jwt: revocation check failed");
        IOTSEC_ENSURE(r == 0, IOTSEC_ERR_AUTH, "jwt: token has been revoked");
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_jwt_verify(const struct iotsec_jwt_key *key,
                                const struct iotsec_jwt_options *opts, struct iotsec_slice token,
                                int64_t now, json_t **claims)
{
    if (claims != NULL)
        *claims = NULL;
    struct iotsec_jwt_options o;
    options_resolve(opts, &o);
    IOTSEC_ENSURE(o.leeway_sec >= 0 && o.leeway_sec <= 3600, IOTSEC_ERR_INVALID_ARG,
                  "jwt: leeway must be 0..3600 s");
    IOTSEC_ENSURE(now > -(INT64_MAX / 4) && now < INT64_MAX / 4, IOTSEC_ERR_INVALID_ARG,
                  "jwt: time out of range");
    json_t *c = NULL;
    IOTSEC_GUARD(iotsec_jwt_verify_signature(key, token, NULL, &c));
    if (!iotsec_ok(check_claims(&o, c, now))) {
        json_decref(c);
        return IOTSEC_RESULT_ERR;
    }
    if (claims != NULL)
        *claims = c;
    else
        json_decref(c);
    return IOTSEC_RESULT_OK;
}

/* ---- issue ---- */

static iotsec_result append_segment(const json_t *obj, struct iotsec_buf *out)
{
    struct iotsec_buf js = {0};
    iotsec_result res = iotsec_json_dump(obj, 0, &js);
    if (iotsec_ok(res))
        res = iotsec_base64url_encode(iotsec_buf_slice(&js), out);
    iotsec_buf_free(&js);
    return res;
}

static iotsec_result build(const struct iotsec_jwt_key *key, const struct iotsec_jwt_options *o,
                           const struct iotsec_jwt_claims *cl, int64_t now, json_t *c,
                           struct iotsec_buf *tok)
{
    uint8_t rnd[16];
    struct iotsec_buf jti = {0};
    IOTSEC_GUARD(iotsec_random(rnd, sizeof(rnd)));
    IOTSEC_GUARD(iotsec_base64url_encode(iotsec_slice_make(rnd, sizeof(rnd)), &jti));
    IOTSEC_GUARD(iotsec_buf_terminate(&jti));
    json_t *caps = json_array();
    int bad = caps == NULL;
    for (size_t i = 0; !bad && i < cl->n_capabilities; i++)
        bad = cl->capabilities[i] == NULL ||
              json_array_append_new(caps, json_string(cl->capabilities[i])) != 0;
    bad = bad || json_object_set_new(c, "deviceId", json_string(cl->device_id)) != 0 ||
          json_object_set(c, "capabilities", caps) != 0 ||
          json_object_set_new(c, "iat", json_integer(now)) != 0 ||
          json_object_set_new(c, "exp", json_integer(now + o->lifetime_sec)) != 0 ||
          json_object_set_new(c, "iss", json_string(o->issuer)) != 0 ||
          json_object_set_new(c, "aud", json_string(o->audience)) != 0 ||
          json_object_set_new(
              c, "sub", json_string(cl->subject != NULL ? cl->subject : cl->device_id)) != 0 ||
          json_object_set_new(c, "jti", json_string((const char *)jti.ptr)) != 0;
    json_decref(caps); /* c holds its own reference */
    iotsec_buf_free(&jti);
    IOTSEC_ENSURE(!bad, IOTSEC_ERR_INVALID_ARG,
                  "jwt: claims could not be encoded (a string is not valid UTF-8?)");
    /* The header is the key's, made once (make_header), so verify recognises it. */
    IOTSEC_GUARD(iotsec_buf_append_slice(tok, iotsec_buf_slice(&key->header_b64)));
    IOTSEC_GUARD(iotsec_buf_append_u8(tok, '.'));
    IOTSEC_GUARD(append_segment(c, tok));
    struct iotsec_slice input = iotsec_buf_slice(tok);
    struct iotsec_buf sig = {0};
    iotsec_result res = sign_input(key, input, &sig);
    if (iotsec_ok(res))
        res = iotsec_buf_append_u8(tok, '.');
    if (iotsec_ok(res))
        res = iotsec_buf_append_slice(tok, iotsec_buf_slice(&sig));
    iotsec_buf_free(&sig);
    return res;
}

iotsec_result iotsec_jwt_issue(const struct iotsec_jwt_key *key,
                               const struct iotsec_jwt_options *opts,
                               const struct iotsec_jwt_claims *claims, int64_t now,
                               struct iotsec_buf *out)
{
    IOTSEC_ENSURE(key != NULL && claims != NULL && claims->device_id != NULL &&
                      (claims->n_capabilities == 0 || claims->capabilities != NULL),
                  IOTSEC_ERR_INVALID_ARG, "jwt: issue needs a key and a device id");
    IOTSEC_ENSURE(claims->n_capabilities <= MAX_CAPS, IOTSEC_ERR_INVALID_ARG,
                  "jwt: more than %d capabilities", MAX_CAPS);
    struct iotsec_jwt_options o;
    options_resolve(opts, &o);
    IOTSEC_ENSURE(o.lifetime_sec > 0 && o.lifetime_sec <= (int64_t)366 * 24 * 3600,
                  IOTSEC_ERR_INVALID_ARG, "jwt: lifetime must be 1 s..366 days");
    IOTSEC_ENSURE(now >= 0 && now < IOTSEC_TIME_MAX_SEC, IOTSEC_ERR_INVALID_ARG,
                  "jwt: time out of range");
    json_t *c = json_object();
    IOTSEC_ENSURE_ALLOC(c);
    struct iotsec_buf tok = {0};
    iotsec_buf_set_max(&tok, IOTSEC_JWT_MAX_TOKEN);
    iotsec_result res = build(key, &o, claims, now, c, &tok);
    json_decref(c);
    if (iotsec_ok(res))
        res = iotsec_buf_append_slice(out, iotsec_buf_slice(&tok));
    iotsec_buf_free(&tok);
    return res;
}
