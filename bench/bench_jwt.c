/*
 * bench_jwt: device-token verifications per second on one core, iotsec_jwt_verify for
 * HS256 and ES256, each beside a reference measured in the same run over the same bytes:
 * - HS256: a bare HMAC-SHA256 of the signing input through EVP_MAC and CRYPTO_memcmp
 *   against the tag, already decoded. The key is prepared once (an EVP_MAC_CTX keyed
 *   with the secret) and each token works on an EVP_MAC_CTX_dup of it: the fastest way
 *   OpenSSL 3 offers to MAC many short messages under one key, and what our verifier
 *   does too (iotsec_hmac_key), so the reference is the ceiling, not a straw man;
 * - ES256: a bare EVP_DigestVerify (ECDSA P-256, SHA-256) of the signing input against
 *   the signature, already DER-encoded.
 * The ratio is what the whole verification costs over the signature check alone: the
 * size and shape checks, strict base64url of all three segments, both JSON parses with
 * duplicate-key refusal, the header rules and every claim check.
 *
 * The token is a real device token from iotsec_jwt_issue (two capabilities, default
 * claims). Each figure is the best of ROUNDS runs, each bounded by MAX_OPS operations and
 * MAX_SECONDS of wall time, divided by this process's CPU time; the runs of ours and of
 * the reference alternate, so load from elsewhere falls on both.
 */
#include "iotsec/crypto.h"
#include "iotsec/jwt.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW         ((int64_t)1795000000)
#define ROUNDS      3
#define MAX_OPS     2000000L
#define MAX_SECONDS 0.6

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef int (*op_fn)(void *ctx);

/* Operations per CPU second of one bounded run; 0 when an operation failed. */
static double run_once(op_fn op, void *ctx)
{
    double wall0 = clock_seconds(CLOCK_MONOTONIC);
    double cpu0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    long ops = 0;
    while (ops < MAX_OPS) {
        if (op(ctx) != 0)
            return 0;
        ops++;
        if (ops % 64 == 0 && clock_seconds(CLOCK_MONOTONIC) - wall0 >= MAX_SECONDS)
            break;
    }
    return (double)ops / (clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0);
}

/* The best of ROUNDS for each of two operations, their runs interleaved so that a
 * machine busy with something else slows both alike. */
static int measure_pair(op_fn a, void *a_ctx, double *a_best, op_fn b, void *b_ctx, double *b_best)
{
    *a_best = *b_best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double ra = run_once(a, a_ctx), rb = run_once(b, b_ctx);
        if (ra == 0 || rb == 0)
            return 1;
        *a_best = ra > *a_best ? ra : *a_best;
        *b_best = rb > *b_best ? rb : *b_best;
    }
    return 0;
}

/* ---- ours ---- */

struct ours {
    const struct iotsec_jwt_key *key;
    struct iotsec_slice token;
};

static int ours_verify(void *p)
{
    const struct ours *o = p;
    if (iotsec_ok(iotsec_jwt_verify(o->key, NULL, o->token, NOW, NULL)))
        return 0;
    fprintf(stderr, "bench_jwt: verify: %s\n", iotsec_error_message());
    return 1;
}

/* ---- references ---- */

struct hmac_ref {
    EVP_MAC *mac;
    EVP_MAC_CTX *keyed; /* the prepared key: only ever copied */
    struct iotsec_slice key, input;
    uint8_t tag[32];
};

static int hmac_ref_prepare(struct hmac_ref *h)
{
    static char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    h->keyed = EVP_MAC_CTX_new(h->mac);
    return h->keyed != NULL && EVP_MAC_init(h->keyed, h->key.ptr, h->key.len, params) == 1 ? 0 : 1;
}

static int hmac_ref_verify(void *p)
{
    struct hmac_ref *h = p;
    uint8_t out[32];
    size_t n = 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(h->keyed);
    int ok = ctx != NULL && EVP_MAC_update(ctx, h->input.ptr, h->input.len) == 1 &&
             EVP_MAC_final(ctx, out, &n, sizeof(out)) == 1 && n == sizeof(out) &&
             CRYPTO_memcmp(out, h->tag, sizeof(out)) == 0;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : 1;
}

struct ecdsa_ref {
    EVP_PKEY *pkey;
    struct iotsec_slice input;
    uint8_t der[80];
    size_t der_len;
};

static int ecdsa_ref_verify(void *p)
{
    struct ecdsa_ref *e = p;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL &&
             EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, e->pkey, NULL) == 1 &&
             EVP_DigestVerify(ctx, e->der, e->der_len, e->input.ptr, e->input.len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : 1;
}

/* ---- setup ---- */

/* The signing input (everything before the last '.') and the decoded signature. */
static int split(struct iotsec_slice token, struct iotsec_slice *input, struct iotsec_buf *sig)
{
    const uint8_t *dot = NULL;
    for (size_t i = 0; i < token.len; i++)
        if (token.ptr[i] == '.')
            dot = token.ptr + i;
    if (dot == NULL)
        return 1;
    *input = iotsec_slice_make(token.ptr, (size_t)(dot - token.ptr));
    struct iotsec_slice s = iotsec_slice_make(dot + 1, token.len - input->len - 1);
    return iotsec_ok(iotsec_base64url_decode(s, sig)) ? 0 : 1;
}

static int issue(const struct iotsec_jwt_key *k, struct iotsec_buf *tok)
{
    static const char *const caps[] = {"telemetry:write", "commands:read"};
    struct iotsec_jwt_claims cl = {
        .device_id = "sensor-0042", .capabilities = caps, .n_capabilities = 2};
    if (iotsec_ok(iotsec_jwt_issue(k, NULL, &cl, NOW, tok)))
        return 0;
    fprintf(stderr, "bench_jwt: issue: %s\n", iotsec_error_message());
    return 1;
}

static void report(const char *name, double ours, const char *ref_name, double ref)
{
    printf("%s: iotsec_jwt_verify %.0f/s, %s %.0f/s, ratio %.2f\n", name, ours, ref_name, ref,
           ref > 0 ? ours / ref : 0.0);
}

static int bench_hs256(void)
{
    static const char secret[] = "bench-secret-bench-secret-bench-secret-0123456789";
    struct iotsec_slice sk = iotsec_slice_make(secret, sizeof(secret) - 1);
    struct iotsec_jwt_key *k = NULL;
    struct iotsec_buf tok = {0}, sig = {0};
    struct hmac_ref ref = {.key = sk, .mac = EVP_MAC_fetch(NULL, "HMAC", NULL)};
    int rc = 1;
    if (ref.mac == NULL || hmac_ref_prepare(&ref) != 0 ||
        !iotsec_ok(iotsec_jwt_key_hs256(sk, NULL, &k)) || issue(k, &tok) != 0 ||
        split(iotsec_buf_slice(&tok), &ref.input, &sig) != 0 || sig.len != sizeof(ref.tag))
        goto out;
    memcpy(ref.tag, sig.ptr, sizeof(ref.tag));
    struct ours o = {.key = k, .token = iotsec_buf_slice(&tok)};
    double r_ref, r_ours;
    if (measure_pair(hmac_ref_verify, &ref, &r_ref, ours_verify, &o, &r_ours) != 0)
        goto out;
    fprintf(stderr, "bench_jwt: HS256 token of %zu bytes\n", tok.len);
    report("HS256", r_ours, "bare HMAC-SHA256 (prepared key) + CRYPTO_memcmp", r_ref);
    rc = 0;
out:
    EVP_MAC_CTX_free(ref.keyed);
    EVP_MAC_free(ref.mac);
    iotsec_buf_free(&tok);
    iotsec_buf_free(&sig);
    iotsec_jwt_key_free(k);
    return rc;
}

/* The public key as OpenSSL's own object, through its PEM (the iotsec_key is opaque). */
static EVP_PKEY *public_pkey(const struct iotsec_key *key)
{
    struct iotsec_buf pem = {0};
    EVP_PKEY *pkey = NULL;
    if (iotsec_ok(iotsec_key_public_to_pem(key, &pem))) {
        BIO *bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
        pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    iotsec_buf_free(&pem);
    return pkey;
}

/* r||s (RFC 7518 section 3.4) to DER, once, outside the timed loop. */
static int raw_to_der(const struct iotsec_buf *raw, struct ecdsa_ref *e)
{
    if (raw->len != 64)
        return 1;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw->ptr, 32, NULL), *sv = BN_bin2bn(raw->ptr + 32, 32, NULL);
    if (s == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(s, r, sv) != 1) {
        ECDSA_SIG_free(s);
        BN_free(r);
        BN_free(sv);
        return 1;
    }
    unsigned char *der = NULL;
    int n = i2d_ECDSA_SIG(s, &der);
    ECDSA_SIG_free(s);
    int ok = n > 0 && (size_t)n <= sizeof(e->der);
    if (ok) {
        memcpy(e->der, der, (size_t)n);
        e->der_len = (size_t)n;
    }
    OPENSSL_free(der);
    return ok ? 0 : 1;
}

static int bench_es256(void)
{
    struct iotsec_key *ec = NULL;
    struct iotsec_jwt_key *k = NULL;
    struct iotsec_buf tok = {0}, sig = {0};
    struct ecdsa_ref ref = {0};
    int rc = 1;
    if (!iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &ec)) ||
        !iotsec_ok(iotsec_jwt_key_es256(ec, "bench", &k)) || issue(k, &tok) != 0 ||
        split(iotsec_buf_slice(&tok), &ref.input, &sig) != 0 || raw_to_der(&sig, &ref) != 0 ||
        (ref.pkey = public_pkey(ec)) == NULL)
        goto out;
    struct ours o = {.key = k, .token = iotsec_buf_slice(&tok)};
    double r_ref, r_ours;
    if (measure_pair(ecdsa_ref_verify, &ref, &r_ref, ours_verify, &o, &r_ours) != 0)
        goto out;
    fprintf(stderr, "bench_jwt: ES256 token of %zu bytes\n", tok.len);
    report("ES256", r_ours, "bare EVP_DigestVerify ECDSA P-256", r_ref);
    rc = 0;
out:
    EVP_PKEY_free(ref.pkey);
    iotsec_buf_free(&tok);
    iotsec_buf_free(&sig);
    iotsec_jwt_key_free(k);
    iotsec_key_free(ec);
    return rc;
}

int main(void)
{
    if (bench_hs256() != 0 || bench_es256() != 0) {
        fprintf(stderr, "bench_jwt: failed\n");
        return 1;
    }
    return 0;
}
