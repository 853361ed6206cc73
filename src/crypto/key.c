/*
 * Asymmetric keys and signatures: EC P-256 (ECDSA with SHA-256), Ed25519, and RSA for
 * verification only (PKCS#1 v1.5 with SHA-256).
 *
 * One file holds everything that touches the EVP_PKEY inside struct iotsec_key, so the
 * struct stays private to this file rather than to a module-internal header.
 *
 * Every way into a struct iotsec_key (generation, PEM, DER, raw Ed25519) ends in
 * key_wrap(), which enforces the one key policy: EC only on the named curve P-256, Ed25519,
 * RSA of at least 2048 bits, nothing else (no DSA, no X25519, no RSA-PSS-only keys, no
 * explicit curve parameters, which have been a source of CVEs). Formats are strict in
 * the way STYLE.md section 7 asks: PEM labels "PRIVATE KEY" (unencrypted PKCS#8) and
 * "PUBLIC KEY" (SubjectPublicKeyInfo) only, the DER must be consumed exactly, and nothing
 * but whitespace may follow the PEM block (a second key or certificate would leave it
 * unclear which one was meant).
 *
 * ECDSA verification takes strict DER only: the signature is parsed and re-encoded, and
 * must come back byte for byte, so BER variants (long-form lengths, padded integers) cannot
 * produce a second valid encoding of one signature. OpenSSL 3 performs the same check
 * internally; doing it here keeps the guarantee independent of the OpenSSL version.
 */
#include "iotsec/crypto.h"
#include "iotsec/file.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* A PEM of an RSA-16384 private key is under 13 KB; anything far larger is not a key. */
#define KEY_FILE_MAX     (64 * 1024)
#define RSA_MIN_BITS     2048
#define ED25519_RAW_LEN  32
#define ED25519_SIG_LEN  64
#define PEM_LABEL_PRIV   "PRIVATE KEY"
#define PEM_LABEL_PUBLIC "PUBLIC KEY"

struct iotsec_key {
    EVP_PKEY *pkey;
    enum iotsec_key_type type;
    bool has_private;
};

/* Non-NULL pointer for empty messages: some OpenSSL paths treat NULL as "no input". */
static const uint8_t empty_msg[1];

static void pkey_cleanup(EVP_PKEY **pkey)
{
    EVP_PKEY_free(*pkey);
}

static void pkey_ctx_cleanup(EVP_PKEY_CTX **ctx)
{
    EVP_PKEY_CTX_free(*ctx);
}

static void md_ctx_cleanup(EVP_MD_CTX **ctx)
{
    EVP_MD_CTX_free(*ctx);
}

static void bio_cleanup(BIO **bio)
{
    BIO_free(*bio);
}

static void p8_cleanup(PKCS8_PRIV_KEY_INFO **p8)
{
    PKCS8_PRIV_KEY_INFO_free(*p8); /* clears the private key octets */
}

static void ecdsa_sig_cleanup(ECDSA_SIG **sig)
{
    ECDSA_SIG_free(*sig);
}

static void buf_cleanup(struct iotsec_buf *b)
{
    iotsec_buf_free(b);
}

/* ---- policy ---- */

static iotsec_result check_ec_p256(const EVP_PKEY *pkey)
{
    char encoding[32] = "", group[64] = "";
    bool named = EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                                sizeof(encoding), NULL) == 1 &&
                 strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
    bool has_group = EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), NULL) == 1;
    ERR_clear_error(); /* a missing parameter is reported below, in our words */
    IOTSEC_ENSURE(named, IOTSEC_ERR_FORMAT,
                  "key: EC key with explicit curve parameters is not accepted (only the named "
                  "curve P-256)");
    IOTSEC_ENSURE(has_group, IOTSEC_ERR_FORMAT, "key: EC key without a named curve");
    IOTSEC_ENSURE(strcmp(group, "prime256v1") == 0, IOTSEC_ERR_FORMAT,
                  "key: EC curve %s is not accepted (only P-256)", group);
    return IOTSEC_RESULT_OK;
}

static iotsec_result classify(EVP_PKEY *pkey, enum iotsec_key_type *type)
{
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *type = IOTSEC_KEY_ED25519;
        return IOTSEC_RESULT_OK;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        IOTSEC_GUARD(check_ec_p256(pkey));
        *type = IOTSEC_KEY_EC_P256;
        return IOTSEC_RESULT_OK;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        IOTSEC_ENSURE(bits >= RSA_MIN_BITS, IOTSEC_ERR_FORMAT,
                      "key: RSA key of %d bits is too small (at least %d)", bits, RSA_MIN_BITS);
        *type = IOTSEC_KEY_RSA;
        return IOTSEC_RESULT_OK;
    }
    const char *name = EVP_PKEY_get0_type_name(pkey);
    IOTSEC_BAIL(IOTSEC_ERR_FORMAT,
                "key: %s keys are not accepted (only EC P-256, Ed25519 and RSA >= %d bits)",
                name != NULL ? name : "unknown", RSA_MIN_BITS);
}

/* A private EC key carries its public point too; a file where they disagree is corrupt. */
static iotsec_result check_pair(EVP_PKEY *pkey, enum iotsec_key_type type)
{
    if (type != IOTSEC_KEY_EC_P256)
        return IOTSEC_RESULT_OK;
    EVP_PKEY_CTX *ctx IOTSEC_DEFER(pkey_ctx_cleanup) = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    IOTSEC_ENSURE_ALLOC(ctx);
    IOTSEC_GUARD_OSSL(EVP_PKEY_pairwise_check(ctx), IOTSEC_ERR_FORMAT,
                      "key: EC private key does not match its public key");
    return IOTSEC_RESULT_OK;
}

/* Takes ownership of *pkey (sets it to NULL) once it passes the policy. */
static iotsec_result key_wrap(EVP_PKEY **pkey, bool has_private, struct iotsec_key **out)
{
    enum iotsec_key_type type;
    IOTSEC_GUARD(classify(*pkey, &type));
    if (has_private)
        IOTSEC_GUARD(check_pair(*pkey, type));
    struct iotsec_key *key = calloc(1, sizeof(*key));
    IOTSEC_ENSURE_ALLOC(key);
    *key = (struct iotsec_key){.pkey = *pkey, .type = type, .has_private = has_private};
    *pkey = NULL;
    *out = key;
    return IOTSEC_RESULT_OK;
}

/* ---- the key object ---- */

iotsec_result iotsec_key_generate(enum iotsec_key_type type, struct iotsec_key **out)
{
    EVP_PKEY *pkey IOTSEC_DEFER(pkey_cleanup) = NULL;
    switch (type) {
    case IOTSEC_KEY_EC_P256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case IOTSEC_KEY_ED25519:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    default:
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG,
                    "key: can only generate EC P-256 or Ed25519 keys (RSA is for verification "
                    "only), got type %d",
                    (int)type);
    }
    if (pkey == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "key: generation failed");
        return IOTSEC_RESULT_ERR;
    }
    return key_wrap(&pkey, true, out);
}

enum iotsec_key_type iotsec_key_type(const struct iotsec_key *key)
{
    return key->type;
}

bool iotsec_key_has_private(const struct iotsec_key *key)
{
    return key->has_private;
}

void iotsec_key_free(struct iotsec_key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey); /* OpenSSL clears private key material on free */
    free(key);
}

/* ---- decoding ---- */

static iotsec_result decode_spki(const uint8_t *der, size_t len, struct iotsec_key **out)
{
    IOTSEC_ENSURE(len <= KEY_FILE_MAX, IOTSEC_ERR_TOO_LARGE,
                  "key: public key DER of %zu bytes exceeds the limit of %d", len, KEY_FILE_MAX);
    const unsigned char *p = der;
    EVP_PKEY *pkey IOTSEC_DEFER(pkey_cleanup) = d2i_PUBKEY_ex(NULL, &p, (long)len, NULL, NULL);
    if (pkey == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT,
                              "key: not a valid DER SubjectPublicKeyInfo of a supported key");
        return IOTSEC_RESULT_ERR;
    }
    IOTSEC_ENSURE(p == der + len, IOTSEC_ERR_FORMAT,
                  "key: %zu unexpected bytes after the public key", (size_t)(der + len - p));
    return key_wrap(&pkey, false, out);
}

static iotsec_result decode_pkcs8(const uint8_t *der, size_t len, struct iotsec_key **out)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 IOTSEC_DEFER(p8_cleanup) = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    if (p8 == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "key: not a valid PKCS#8 private key");
        return IOTSEC_RESULT_ERR;
    }
    IOTSEC_ENSURE(p == der + len, IOTSEC_ERR_FORMAT,
                  "key: %zu unexpected bytes after the private key", (size_t)(der + len - p));
    EVP_PKEY *pkey IOTSEC_DEFER(pkey_cleanup) = EVP_PKCS82PKEY_ex(p8, NULL, NULL);
    if (pkey == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "key: unsupported or malformed PKCS#8 key");
        return IOTSEC_RESULT_ERR;
    }
    return key_wrap(&pkey, true, out);
}

/* What PEM_read_bio hands back; the body may be a private key, so it is cleared. */
struct pem_block {
    char *label;
    char *headers;
    unsigned char *der;
    long der_len;
};

static void pem_block_cleanup(struct pem_block *b)
{
    OPENSSL_free(b->label);
    OPENSSL_free(b->headers);
    if (b->der != NULL)
        OPENSSL_clear_free(b->der, (size_t)b->der_len);
}

static bool only_whitespace(const char *p, long n)
{
    for (long i = 0; i < n; i++)
        if (!isspace((unsigned char)p[i]))
            return false;
    return true;
}

iotsec_result iotsec_key_from_pem(struct iotsec_slice pem, struct iotsec_key **out)
{
    IOTSEC_ENSURE(pem.len <= KEY_FILE_MAX, IOTSEC_ERR_TOO_LARGE,
                  "key: PEM of %zu bytes exceeds the limit of %d", pem.len, KEY_FILE_MAX);
    BIO *bio IOTSEC_DEFER(bio_cleanup) =
        BIO_new_mem_buf(pem.len > 0 ? pem.ptr : empty_msg, (int)pem.len);
    IOTSEC_ENSURE_ALLOC(bio);

    struct pem_block block IOTSEC_DEFER(pem_block_cleanup) = {0};
    if (PEM_read_bio(bio, &block.label, &block.headers, &block.der, &block.der_len) != 1) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "key: no PEM block found");
        return IOTSEC_RESULT_ERR;
    }
    char *rest;
    long rest_len = BIO_get_mem_data(bio, &rest);
    IOTSEC_ENSURE(only_whitespace(rest, rest_len), IOTSEC_ERR_FORMAT,
                  "key: unexpected data after the PEM block (one key per file)");
    IOTSEC_ENSURE(block.headers[0] == '\0', IOTSEC_ERR_FORMAT,
                  "key: PEM headers (legacy encryption) are not accepted");
    IOTSEC_ENSURE(block.der_len >= 0 && block.der_len <= KEY_FILE_MAX, IOTSEC_ERR_FORMAT,
                  "key: PEM body of %ld bytes is out of bounds", block.der_len);

    if (strcmp(block.label, PEM_LABEL_PRIV) == 0)
        return decode_pkcs8(block.der, (size_t)block.der_len, out);
    if (strcmp(block.label, PEM_LABEL_PUBLIC) == 0)
        return decode_spki(block.der, (size_t)block.der_len, out);
    IOTSEC_BAIL(IOTSEC_ERR_FORMAT,
                "key: PEM type '%s' is not accepted; expected '" PEM_LABEL_PRIV
                "' (unencrypted PKCS#8; convert with `openssl pkey -in FILE -out NEW`) or "
                "'" PEM_LABEL_PUBLIC "'",
                block.label);
}

iotsec_result iotsec_key_from_public_der(struct iotsec_slice der, struct iotsec_key **out)
{
    return decode_spki(der.len > 0 ? der.ptr : empty_msg, der.len, out);
}

iotsec_result iotsec_key_from_ed25519_raw(struct iotsec_slice raw, struct iotsec_key **out)
{
    IOTSEC_ENSURE(raw.len == ED25519_RAW_LEN, IOTSEC_ERR_FORMAT,
                  "key: Ed25519 public key must be %d bytes, got %zu", ED25519_RAW_LEN, raw.len);
    EVP_PKEY *pkey IOTSEC_DEFER(pkey_cleanup) =
        EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, raw.ptr, raw.len);
    if (pkey == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "key: invalid Ed25519 public key");
        return IOTSEC_RESULT_ERR;
    }
    return key_wrap(&pkey, false, out);
}

/* ---- encoding ---- */

/* Moves what was written to the memory BIO into out. */
static iotsec_result drain_bio(BIO *bio, struct iotsec_buf *out)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    IOTSEC_ENSURE(len > 0, IOTSEC_ERR_CRYPTO, "key: PEM encoder produced no output");
    return iotsec_buf_append(out, data, (size_t)len);
}

iotsec_result iotsec_key_private_to_pem(const struct iotsec_key *key, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(key->has_private, IOTSEC_ERR_INVALID_ARG,
                  "key: cannot write a private key PEM: this key has only its public part");
    /* Secure-heap memory BIO: cleared when freed, not swapped where mlock() is allowed. */
    BIO *bio IOTSEC_DEFER(bio_cleanup) = BIO_new(BIO_s_secmem());
    IOTSEC_ENSURE_ALLOC(bio);
    IOTSEC_GUARD_OSSL(
        PEM_write_bio_PrivateKey_ex(bio, key->pkey, NULL, NULL, 0, NULL, NULL, NULL, NULL),
        IOTSEC_ERR_CRYPTO, "key: encoding the private key as PKCS#8 PEM");
    return drain_bio(bio, out);
}

iotsec_result iotsec_key_public_to_pem(const struct iotsec_key *key, struct iotsec_buf *out)
{
    BIO *bio IOTSEC_DEFER(bio_cleanup) = BIO_new(BIO_s_mem());
    IOTSEC_ENSURE_ALLOC(bio);
    IOTSEC_GUARD_OSSL(PEM_write_bio_PUBKEY_ex(bio, key->pkey, NULL, NULL), IOTSEC_ERR_CRYPTO,
                      "key: encoding the public key as PEM");
    return drain_bio(bio, out);
}

/* ---- files ---- */

iotsec_result iotsec_key_save_private_pem(const struct iotsec_key *key, const char *path)
{
    struct iotsec_buf pem IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init_secret(&pem);
    IOTSEC_GUARD(iotsec_key_private_to_pem(key, &pem));
    IOTSEC_GUARD(iotsec_file_write_atomic(path, iotsec_buf_slice(&pem), 0600));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_key_load_pem_file(const char *path, struct iotsec_key **out)
{
    struct iotsec_buf pem IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init_secret(&pem);
    IOTSEC_GUARD(iotsec_file_read(path, KEY_FILE_MAX, &pem));
    if (!iotsec_ok(iotsec_key_from_pem(iotsec_buf_slice(&pem), out))) {
        iotsec_error_prefix("%s: ", path);
        return IOTSEC_RESULT_ERR;
    }
    return IOTSEC_RESULT_OK;
}

/* ---- signatures ---- */

iotsec_result iotsec_sign(const struct iotsec_key *key, struct iotsec_slice msg,
                          struct iotsec_buf *sig)
{
    IOTSEC_ENSURE(key->type != IOTSEC_KEY_RSA, IOTSEC_ERR_INVALID_ARG,
                  "sign: RSA keys are accepted for verification only");
    IOTSEC_ENSURE(key->has_private, IOTSEC_ERR_INVALID_ARG,
                  "sign: the key has no private part (a public key cannot sign)");
    /* ECDSA hashes with SHA-256; Ed25519 is "pure" and takes no digest (RFC 8032). */
    const char *digest = key->type == IOTSEC_KEY_EC_P256 ? "SHA256" : NULL;
    const uint8_t *msg_ptr = msg.len > 0 ? msg.ptr : empty_msg;

    EVP_MD_CTX *ctx IOTSEC_DEFER(md_ctx_cleanup) = EVP_MD_CTX_new();
    IOTSEC_ENSURE_ALLOC(ctx);
    IOTSEC_GUARD_OSSL(EVP_DigestSignInit_ex(ctx, NULL, digest, NULL, NULL, key->pkey, NULL),
                      IOTSEC_ERR_CRYPTO, "sign: init");
    size_t max_len = 0;
    IOTSEC_GUARD_OSSL(EVP_DigestSign(ctx, NULL, &max_len, msg_ptr, msg.len), IOTSEC_ERR_CRYPTO,
                      "sign: signature size");

    size_t mark = sig->len;
    uint8_t *dst;
    IOTSEC_GUARD(iotsec_buf_grow(sig, max_len, &dst));
    size_t len = max_len;
    if (EVP_DigestSign(ctx, dst, &len, msg_ptr, msg.len) != 1) {
        sig->len = mark;
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "sign: signing failed");
        return IOTSEC_RESULT_ERR;
    }
    /* DER ECDSA signatures are shorter than the maximum when r or s has leading zeros. */
    sig->len = mark + len;
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_strict_der(struct iotsec_slice sig)
{
    IOTSEC_ENSURE(sig.len > 0 && sig.len <= 256, IOTSEC_ERR_VERIFY,
                  "verify: ECDSA signature of %zu bytes is not a P-256 DER signature", sig.len);
    const unsigned char *p = sig.ptr;
    ECDSA_SIG *parsed IOTSEC_DEFER(ecdsa_sig_cleanup) = d2i_ECDSA_SIG(NULL, &p, (long)sig.len);
    ERR_clear_error();
    IOTSEC_ENSURE(parsed != NULL, IOTSEC_ERR_VERIFY,
                  "verify: ECDSA signature is not a DER SEQUENCE of two INTEGERs");
    IOTSEC_ENSURE(p == sig.ptr + sig.len, IOTSEC_ERR_VERIFY,
                  "verify: %zu unexpected bytes after the ECDSA signature",
                  (size_t)(sig.ptr + sig.len - p));
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(parsed, &der);
    bool same = der_len > 0 && (size_t)der_len == sig.len && memcmp(der, sig.ptr, sig.len) == 0;
    OPENSSL_free(der);
    IOTSEC_ENSURE(same, IOTSEC_ERR_VERIFY,
                  "verify: ECDSA signature is not strict DER (a BER variant is not accepted)");
    return IOTSEC_RESULT_OK;
}

static const char *type_name(enum iotsec_key_type type)
{
    switch (type) {
    case IOTSEC_KEY_EC_P256:
        return "ECDSA P-256";
    case IOTSEC_KEY_ED25519:
        return "Ed25519";
    case IOTSEC_KEY_RSA:
        return "RSA";
    }
    return "unknown";
}

iotsec_result iotsec_verify(const struct iotsec_key *key, struct iotsec_slice msg,
                            struct iotsec_slice sig)
{
    const char *digest = "SHA256";
    if (key->type == IOTSEC_KEY_EC_P256)
        IOTSEC_GUARD(check_strict_der(sig));
    if (key->type == IOTSEC_KEY_ED25519) {
        IOTSEC_ENSURE(sig.len == ED25519_SIG_LEN, IOTSEC_ERR_VERIFY,
                      "verify: Ed25519 signature must be %d bytes, got %zu", ED25519_SIG_LEN,
                      sig.len);
        digest = NULL;
    }
    const uint8_t *msg_ptr = msg.len > 0 ? msg.ptr : empty_msg;

    EVP_MD_CTX *ctx IOTSEC_DEFER(md_ctx_cleanup) = EVP_MD_CTX_new();
    IOTSEC_ENSURE_ALLOC(ctx);
    EVP_PKEY_CTX *pctx = NULL; /* owned by ctx */
    IOTSEC_GUARD_OSSL(EVP_DigestVerifyInit_ex(ctx, &pctx, digest, NULL, NULL, key->pkey, NULL),
                      IOTSEC_ERR_CRYPTO, "verify: init");
    if (key->type == IOTSEC_KEY_RSA)
        IOTSEC_GUARD_OSSL(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), IOTSEC_ERR_CRYPTO,
                          "verify: RSA PKCS#1 v1.5 padding");
    IOTSEC_GUARD_OSSL(
        EVP_DigestVerify(ctx, sig.len > 0 ? sig.ptr : empty_msg, sig.len, msg_ptr, msg.len),
        IOTSEC_ERR_VERIFY, "verify: %s signature does not verify", type_name(key->type));
    return IOTSEC_RESULT_OK;
}

/* ---- public coordinates (JWK) ---- */

static void bn_cleanup(BIGNUM **bn)
{
    BN_free(*bn);
}

iotsec_result iotsec_key_ec_p256_public_xy(const struct iotsec_key *key,
                                           uint8_t x[IOTSEC_P256_COORD_LEN],
                                           uint8_t y[IOTSEC_P256_COORD_LEN])
{
    IOTSEC_ENSURE(key->type == IOTSEC_KEY_EC_P256, IOTSEC_ERR_INVALID_ARG,
                  "key: public coordinates need an EC P-256 key, not %s", type_name(key->type));
    BIGNUM *bx IOTSEC_DEFER(bn_cleanup) = NULL;
    BIGNUM *by IOTSEC_DEFER(bn_cleanup) = NULL;
    IOTSEC_GUARD_OSSL(EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx),
                      IOTSEC_ERR_CRYPTO, "key: reading the public x coordinate");
    IOTSEC_GUARD_OSSL(EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by),
                      IOTSEC_ERR_CRYPTO, "key: reading the public y coordinate");
    /* binpad, not bn2bin: BN drops leading zero bytes, the fixed-width encodings keep them. */
    IOTSEC_ENSURE(BN_bn2binpad(bx, x, IOTSEC_P256_COORD_LEN) == IOTSEC_P256_COORD_LEN &&
                      BN_bn2binpad(by, y, IOTSEC_P256_COORD_LEN) == IOTSEC_P256_COORD_LEN,
                  IOTSEC_ERR_CRYPTO, "key: P-256 coordinate longer than 32 bytes");
    return IOTSEC_RESULT_OK;
}
