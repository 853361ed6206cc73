/*
 * scrypt (RFC 7914): passphrase -> key, for the vault and operator secrets.
 *
 * The parameters usually come from a file header, so they are untrusted: bounds are
 * checked before anything is allocated, and the memory cost (128 * r * N bytes for V,
 * plus 128 * r * p for B) is computed in 64-bit arithmetic and capped at 1 GiB, so a
 * crafted header cannot make us allocate without limit or spin for hours. OpenSSL is
 * given a matching maxmem so that its own cap never disagrees with ours. The derived
 * key is wiped if derivation fails half-way.
 */
#include "iotsec/crypto.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#define SCRYPT_LOG2_N_MAX 22
#define SCRYPT_R_MAX      32
#define SCRYPT_P_MAX      16
#define SCRYPT_MEM_MAX    ((uint64_t)1 << 30)
#define SCRYPT_OUT_MIN    16
#define SCRYPT_OUT_MAX    1024

static void kdf_cleanup(EVP_KDF **kdf)
{
    EVP_KDF_free(*kdf);
}

static void kdf_ctx_cleanup(EVP_KDF_CTX **ctx)
{
    EVP_KDF_CTX_free(*ctx);
}

iotsec_result iotsec_scrypt_params_check(struct iotsec_scrypt_params params)
{
    IOTSEC_ENSURE(params.log2_n >= 1 && params.log2_n <= SCRYPT_LOG2_N_MAX, IOTSEC_ERR_INVALID_ARG,
                  "scrypt: log2(N) must be 1..%d, got %u", SCRYPT_LOG2_N_MAX, params.log2_n);
    IOTSEC_ENSURE(params.r >= 1 && params.r <= SCRYPT_R_MAX, IOTSEC_ERR_INVALID_ARG,
                  "scrypt: r must be 1..%d, got %u", SCRYPT_R_MAX, params.r);
    IOTSEC_ENSURE(params.p >= 1 && params.p <= SCRYPT_P_MAX, IOTSEC_ERR_INVALID_ARG,
                  "scrypt: p must be 1..%d, got %u", SCRYPT_P_MAX, params.p);
    /* RFC 7914 section 2: N < 2^(128 * r / 8); OpenSSL refuses larger N at derive time. */
    IOTSEC_ENSURE(params.log2_n < 16 * params.r, IOTSEC_ERR_INVALID_ARG,
                  "scrypt: N=2^%u is too large for r=%u (RFC 7914 needs N < 2^(16*r))",
                  params.log2_n, params.r);
    uint64_t mem = (uint64_t)128 * params.r << params.log2_n;
    IOTSEC_ENSURE(mem <= SCRYPT_MEM_MAX, IOTSEC_ERR_INVALID_ARG,
                  "scrypt: N=2^%u, r=%u needs %llu MiB, more than the limit of %llu MiB",
                  params.log2_n, params.r, (unsigned long long)(mem >> 20),
                  (unsigned long long)(SCRYPT_MEM_MAX >> 20));
    return IOTSEC_RESULT_OK;
}

static iotsec_result derive(struct iotsec_slice passphrase, struct iotsec_slice salt,
                            struct iotsec_scrypt_params params, uint8_t *out, size_t out_len)
{
    /* OpenSSL takes an octet-string parameter with a NULL pointer as "not given". */
    static uint8_t empty[1];

    EVP_KDF *kdf IOTSEC_DEFER(kdf_cleanup) = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    IOTSEC_ENSURE(kdf != NULL, IOTSEC_ERR_CRYPTO,
                  "scrypt: not available from the OpenSSL providers");
    EVP_KDF_CTX *ctx IOTSEC_DEFER(kdf_ctx_cleanup) = EVP_KDF_CTX_new(kdf);
    IOTSEC_ENSURE_ALLOC(ctx);

    uint64_t n = (uint64_t)1 << params.log2_n;
    uint32_t r = params.r;
    uint32_t p = params.p;
    /* V (128*r*(N+2)) and B (128*r*p) at our largest parameters: the check above is the
     * real limit; this only keeps OpenSSL's own default cap from disagreeing with it. */
    uint64_t maxmem = SCRYPT_MEM_MAX + ((uint64_t)128 * SCRYPT_R_MAX * (SCRYPT_P_MAX + 2));
    /* The params API takes non-const pointers; OpenSSL only reads these. */
    void *pass_ptr = passphrase.len > 0 ? (void *)(uintptr_t)passphrase.ptr : empty;
    void *salt_ptr = salt.len > 0 ? (void *)(uintptr_t)salt.ptr : empty;
    const OSSL_PARAM kdf_params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, pass_ptr, passphrase.len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt_ptr, salt.len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    IOTSEC_GUARD_OSSL(EVP_KDF_derive(ctx, out, out_len, kdf_params), IOTSEC_ERR_CRYPTO,
                      "scrypt: derivation (N=2^%u, r=%u, p=%u)", params.log2_n, r, p);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_scrypt(struct iotsec_slice passphrase, struct iotsec_slice salt,
                            struct iotsec_scrypt_params params, uint8_t *out, size_t out_len)
{
    IOTSEC_GUARD(iotsec_scrypt_params_check(params));
    IOTSEC_ENSURE(out_len >= SCRYPT_OUT_MIN && out_len <= SCRYPT_OUT_MAX, IOTSEC_ERR_INVALID_ARG,
                  "scrypt: output must be %d..%d bytes, got %zu", SCRYPT_OUT_MIN, SCRYPT_OUT_MAX,
                  out_len);
    if (!iotsec_ok(derive(passphrase, salt, params, out, out_len))) {
        iotsec_wipe(out, out_len);
        return IOTSEC_RESULT_ERR;
    }
    return IOTSEC_RESULT_OK;
}
