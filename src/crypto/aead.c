/*
 * AES-256-GCM: the only AEAD, with fixed sizes (32-byte key, 12-byte nonce, 16-byte tag).
 *
 * Sizes are checked before OpenSSL sees anything: GCM accepts other nonce and tag
 * lengths, and a short tag or a hashed long nonce is a weaker construction that callers
 * should not be able to select by accident. The EVP_CIPHER is fetched once per process
 * (pthread_once) because an implicit fetch is a provider lookup under a lock on every
 * message; a fresh EVP_CIPHER_CTX per call keeps the functions reentrant, and its cost
 * is measured by bench/aead.sh against `openssl speed`.
 *
 * Output goes straight into the caller's buffer. Open decrypts in place and, when the
 * tag does not verify, wipes the unauthenticated plaintext and rolls the buffer back,
 * so a caller never sees (or keeps in memory) bytes that were not authenticated.
 */
#include "iotsec/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm_cipher;

static void fetch_gcm(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static iotsec_result gcm_algorithm(const EVP_CIPHER **cipher)
{
    pthread_once(&gcm_once, fetch_gcm);
    IOTSEC_ENSURE(gcm_cipher != NULL, IOTSEC_ERR_CRYPTO,
                  "aead: AES-256-GCM is not available from the OpenSSL providers");
    *cipher = gcm_cipher;
    return IOTSEC_RESULT_OK;
}

static void cipher_ctx_cleanup(EVP_CIPHER_CTX **ctx)
{
    EVP_CIPHER_CTX_free(*ctx);
}

/* EVP lengths are int; every buffer is bounded by IOTSEC_BUF_MAX (1 GiB) well below. */
static iotsec_result check_args(const char *op, struct iotsec_slice key, struct iotsec_slice nonce,
                                struct iotsec_slice aad, size_t data_len)
{
    IOTSEC_ENSURE(key.len == IOTSEC_AEAD_KEY_LEN, IOTSEC_ERR_INVALID_ARG,
                  "aead: %s: key must be %d bytes, got %zu", op, IOTSEC_AEAD_KEY_LEN, key.len);
    IOTSEC_ENSURE(nonce.len == IOTSEC_AEAD_NONCE_LEN, IOTSEC_ERR_INVALID_ARG,
                  "aead: %s: nonce must be %d bytes, got %zu", op, IOTSEC_AEAD_NONCE_LEN,
                  nonce.len);
    IOTSEC_ENSURE(aad.len <= IOTSEC_BUF_MAX, IOTSEC_ERR_TOO_LARGE,
                  "aead: %s: associated data of %zu bytes exceeds the limit of %zu", op, aad.len,
                  IOTSEC_BUF_MAX);
    IOTSEC_ENSURE(data_len <= IOTSEC_BUF_MAX, IOTSEC_ERR_TOO_LARGE,
                  "aead: %s: message of %zu bytes exceeds the limit of %zu", op, data_len,
                  IOTSEC_BUF_MAX);
    return IOTSEC_RESULT_OK;
}

/* Drops (and wipes) what a failed operation appended after `mark`. */
static void roll_back(struct iotsec_buf *out, size_t mark)
{
    iotsec_wipe(out->ptr + mark, out->len - mark);
    out->len = mark;
}

/* The part seal and open share: key and nonce, associated data, then the bulk transform
 * of `in` into dst (same length; GCM is a stream mode). enc is 1 to seal, 0 to open. */
static iotsec_result gcm_transform(EVP_CIPHER_CTX *ctx, int enc, struct iotsec_slice key,
                                   struct iotsec_slice nonce, struct iotsec_slice aad,
                                   struct iotsec_slice in, uint8_t *dst)
{
    const char *what = enc ? "seal" : "open";
    const EVP_CIPHER *cipher;
    IOTSEC_GUARD(gcm_algorithm(&cipher));
    int n;
    IOTSEC_GUARD_OSSL(EVP_CipherInit_ex2(ctx, cipher, key.ptr, nonce.ptr, enc, NULL),
                      IOTSEC_ERR_CRYPTO, "aead: %s: init", what);
    if (aad.len > 0)
        IOTSEC_GUARD_OSSL(EVP_CipherUpdate(ctx, NULL, &n, aad.ptr, (int)aad.len), IOTSEC_ERR_CRYPTO,
                          "aead: %s: associated data", what);
    if (in.len > 0)
        IOTSEC_GUARD_OSSL(EVP_CipherUpdate(ctx, dst, &n, in.ptr, (int)in.len), IOTSEC_ERR_CRYPTO,
                          "aead: %s: %s", what, enc ? "encrypt" : "decrypt");
    return IOTSEC_RESULT_OK;
}

static iotsec_result gcm_seal(struct iotsec_slice key, struct iotsec_slice nonce,
                              struct iotsec_slice aad, struct iotsec_slice plain, uint8_t *dst)
{
    EVP_CIPHER_CTX *ctx IOTSEC_DEFER(cipher_ctx_cleanup) = EVP_CIPHER_CTX_new();
    IOTSEC_ENSURE_ALLOC(ctx);
    IOTSEC_GUARD(gcm_transform(ctx, 1, key, nonce, aad, plain, dst));
    int n;
    IOTSEC_GUARD_OSSL(EVP_EncryptFinal_ex(ctx, dst + plain.len, &n), IOTSEC_ERR_CRYPTO,
                      "aead: seal: final");

    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, dst + plain.len,
                                          IOTSEC_AEAD_TAG_LEN),
        OSSL_PARAM_construct_end(),
    };
    IOTSEC_GUARD_OSSL(EVP_CIPHER_CTX_get_params(ctx, params), IOTSEC_ERR_CRYPTO,
                      "aead: seal: get tag");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_aead_seal(struct iotsec_slice key, struct iotsec_slice nonce,
                               struct iotsec_slice aad, struct iotsec_slice plain,
                               struct iotsec_buf *out)
{
    IOTSEC_GUARD(check_args("seal", key, nonce, aad, plain.len));
    size_t mark = out->len;
    uint8_t *dst;
    IOTSEC_GUARD(iotsec_buf_grow(out, plain.len + IOTSEC_AEAD_TAG_LEN, &dst));
    if (!iotsec_ok(gcm_seal(key, nonce, aad, plain, dst))) {
        roll_back(out, mark);
        return IOTSEC_RESULT_ERR;
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result gcm_open(struct iotsec_slice key, struct iotsec_slice nonce,
                              struct iotsec_slice aad, struct iotsec_slice ciphertext,
                              const uint8_t *tag, uint8_t *dst)
{
    EVP_CIPHER_CTX *ctx IOTSEC_DEFER(cipher_ctx_cleanup) = EVP_CIPHER_CTX_new();
    IOTSEC_ENSURE_ALLOC(ctx);
    IOTSEC_GUARD(gcm_transform(ctx, 0, key, nonce, aad, ciphertext, dst));
    int n;

    /* OSSL_PARAM wants a mutable pointer; the tag is the caller's const input. */
    uint8_t expected[IOTSEC_AEAD_TAG_LEN];
    memcpy(expected, tag, sizeof(expected));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, expected, sizeof(expected)),
        OSSL_PARAM_construct_end(),
    };
    IOTSEC_GUARD_OSSL(EVP_CIPHER_CTX_set_params(ctx, params), IOTSEC_ERR_CRYPTO,
                      "aead: open: set tag");
    IOTSEC_GUARD_OSSL(EVP_DecryptFinal_ex(ctx, dst + ciphertext.len, &n), IOTSEC_ERR_AUTH,
                      "aead: open: authentication failed (wrong key, or the data was modified)");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_aead_open(struct iotsec_slice key, struct iotsec_slice nonce,
                               struct iotsec_slice aad, struct iotsec_slice sealed,
                               struct iotsec_buf *out)
{
    IOTSEC_GUARD(check_args("open", key, nonce, aad, sealed.len));
    IOTSEC_ENSURE(sealed.len >= IOTSEC_AEAD_TAG_LEN, IOTSEC_ERR_AUTH,
                  "aead: open: input of %zu bytes is shorter than the %d-byte tag", sealed.len,
                  IOTSEC_AEAD_TAG_LEN);
    struct iotsec_slice ciphertext =
        iotsec_slice_make(sealed.ptr, sealed.len - IOTSEC_AEAD_TAG_LEN);
    const uint8_t *tag = sealed.ptr + ciphertext.len;

    size_t mark = out->len;
    uint8_t *dst;
    IOTSEC_GUARD(iotsec_buf_grow(out, ciphertext.len, &dst));
    if (!iotsec_ok(gcm_open(key, nonce, aad, ciphertext, tag, dst))) {
        roll_back(out, mark);
        return IOTSEC_RESULT_ERR;
    }
    return IOTSEC_RESULT_OK;
}
