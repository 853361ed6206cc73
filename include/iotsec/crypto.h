/*
 * Cryptographic primitives for iotsec: thin, checked wrappers over OpenSSL 3's EVP API.
 *
 * No primitive is implemented here; every operation is OpenSSL's. What the wrappers add:
 * fixed algorithm choices (no negotiation, no "none"), lengths checked before OpenSSL is
 * called, OpenSSL's error queue turned into an iotsec error message, and secrets wiped.
 *
 * Ownership: keys are `struct iotsec_key` (an opaque EVP_PKEY holder) created by the
 * functions below and released with iotsec_key_free(). Output buffers are caller-owned
 * iotsec_buf; output is appended. Functions that produce secrets expect a secret buffer
 * (iotsec_buf_init_secret) and wipe their own temporaries.
 */
#ifndef IOTSEC_CRYPTO_H
#define IOTSEC_CRYPTO_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random ---- */
/* Fills dst from OpenSSL's CSPRNG (RAND_priv_bytes). */
IOTSEC_MUST_CHECK iotsec_result iotsec_random(void *dst, size_t n);

/* ---- constant time ---- */
/* True when a and b have equal length and contents. The time depends only on the length,
 * never on where the bytes differ (CRYPTO_memcmp). Lengths are not secret. */
bool iotsec_ct_equal(struct iotsec_slice a, struct iotsec_slice b);

/* ---- SHA-256 (streaming) ---- */
#define IOTSEC_SHA256_LEN 32
struct iotsec_sha256; /* opaque */
IOTSEC_MUST_CHECK iotsec_result iotsec_sha256_new(struct iotsec_sha256 **out);
IOTSEC_MUST_CHECK iotsec_result iotsec_sha256_update(struct iotsec_sha256 *h,
                                                     struct iotsec_slice data);
IOTSEC_MUST_CHECK iotsec_result iotsec_sha256_final(struct iotsec_sha256 *h,
                                                    uint8_t out[IOTSEC_SHA256_LEN]);
void iotsec_sha256_free(struct iotsec_sha256 *h);
/* One shot. */
IOTSEC_MUST_CHECK iotsec_result iotsec_sha256(struct iotsec_slice data,
                                              uint8_t out[IOTSEC_SHA256_LEN]);

/* ---- keyed hash for hash tables (SipHash-2-4, OpenSSL) ---- */
/* A 64-bit SipHash-2-4 under a random key made here: bucket choice that nobody outside
 * can predict or aim at. iotsec_siphash64 may be called from many threads at once. */
struct iotsec_siphash; /* opaque */
IOTSEC_MUST_CHECK iotsec_result iotsec_siphash_new(struct iotsec_siphash **out);
void iotsec_siphash_free(struct iotsec_siphash *h);
IOTSEC_MUST_CHECK iotsec_result iotsec_siphash64(const struct iotsec_siphash *h,
                                                 struct iotsec_slice data, uint64_t *out);

/* ---- HMAC-SHA256 ---- */
#define IOTSEC_HMAC_SHA256_LEN 32
IOTSEC_MUST_CHECK iotsec_result iotsec_hmac_sha256(struct iotsec_slice key,
                                                   struct iotsec_slice data,
                                                   uint8_t out[IOTSEC_HMAC_SHA256_LEN]);
/* Recomputes and compares in constant time. A tag of another length is rejected
 * (IOTSEC_ERR_VERIFY): truncated tags are not accepted. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hmac_sha256_verify(struct iotsec_slice key,
                                                          struct iotsec_slice data,
                                                          struct iotsec_slice tag);

/* A prepared HMAC-SHA256 key, for many MACs under one key (JWT HS256): the key schedule
 * (the hashed inner and outer pads, and the digest fetch) is done once, and each MAC
 * starts from a copy of it, about twice as fast for short messages. Safe to use from
 * several threads at once (each call works on its own copy). The prepared state is
 * secret-equivalent and is cleared on free. */
struct iotsec_hmac_key; /* opaque */
IOTSEC_MUST_CHECK iotsec_result iotsec_hmac_key_new(struct iotsec_slice key,
                                                    struct iotsec_hmac_key **out);
void iotsec_hmac_key_free(struct iotsec_hmac_key *key);
IOTSEC_MUST_CHECK iotsec_result iotsec_hmac_key_mac(const struct iotsec_hmac_key *key,
                                                    struct iotsec_slice data,
                                                    uint8_t out[IOTSEC_HMAC_SHA256_LEN]);
/* As iotsec_hmac_sha256_verify: full-length tag only, constant-time compare. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hmac_key_verify(const struct iotsec_hmac_key *key,
                                                       struct iotsec_slice data,
                                                       struct iotsec_slice tag);

/* ---- AES-256-GCM ---- */
#define IOTSEC_AEAD_KEY_LEN   32
#define IOTSEC_AEAD_NONCE_LEN 12
#define IOTSEC_AEAD_TAG_LEN   16
/* Appends ciphertext (plain.len bytes) and then the 16-byte tag to out. */
IOTSEC_MUST_CHECK iotsec_result iotsec_aead_seal(struct iotsec_slice key, struct iotsec_slice nonce,
                                                 struct iotsec_slice aad, struct iotsec_slice plain,
                                                 struct iotsec_buf *out);
/* Input is ciphertext followed by the 16-byte tag. Appends the plaintext to out only when
 * the tag verifies; on failure (IOTSEC_ERR_AUTH) out is left as it was. Key must be 32
 * bytes and nonce 12 (IOTSEC_ERR_INVALID_ARG otherwise). */
IOTSEC_MUST_CHECK iotsec_result iotsec_aead_open(struct iotsec_slice key, struct iotsec_slice nonce,
                                                 struct iotsec_slice aad,
                                                 struct iotsec_slice sealed,
                                                 struct iotsec_buf *out);

/* ---- scrypt ---- */
struct iotsec_scrypt_params {
    uint8_t log2_n; /* N = 2^log2_n */
    uint32_t r;
    uint32_t p;
};
/* The default for passphrases: N=2^15, r=8, p=1 (32 MiB, about 0.1 s). */
#define IOTSEC_SCRYPT_DEFAULT ((struct iotsec_scrypt_params){.log2_n = 15, .r = 8, .p = 1})
/* Rejects parameters outside sane bounds (1 <= log2_n <= 22, 1 <= r <= 32, 1 <= p <= 16,
 * memory 128*r*N <= 1 GiB) with IOTSEC_ERR_INVALID_ARG, so a crafted file cannot make us
 * allocate without limit. */
IOTSEC_MUST_CHECK iotsec_result iotsec_scrypt_params_check(struct iotsec_scrypt_params params);
IOTSEC_MUST_CHECK iotsec_result iotsec_scrypt(struct iotsec_slice passphrase,
                                              struct iotsec_slice salt,
                                              struct iotsec_scrypt_params params, uint8_t *out,
                                              size_t out_len);

/* ---- asymmetric keys and signatures ---- */
enum iotsec_key_type {
    IOTSEC_KEY_EC_P256,
    IOTSEC_KEY_ED25519,
    IOTSEC_KEY_RSA, /* verification only */
};
struct iotsec_key; /* opaque */

IOTSEC_MUST_CHECK iotsec_result iotsec_key_generate(enum iotsec_key_type type,
                                                    struct iotsec_key **out);
enum iotsec_key_type iotsec_key_type(const struct iotsec_key *key);
bool iotsec_key_has_private(const struct iotsec_key *key);
void iotsec_key_free(struct iotsec_key *key);

/* PEM: private keys as unencrypted PKCS#8, public keys as SubjectPublicKeyInfo. Loading
 * accepts only EC P-256, Ed25519 and RSA (>= 2048 bits) keys; anything else is
 * IOTSEC_ERR_FORMAT with the reason. */
IOTSEC_MUST_CHECK iotsec_result iotsec_key_from_pem(struct iotsec_slice pem,
                                                    struct iotsec_key **out);
IOTSEC_MUST_CHECK iotsec_result iotsec_key_private_to_pem(const struct iotsec_key *key,
                                                          struct iotsec_buf *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_key_public_to_pem(const struct iotsec_key *key,
                                                         struct iotsec_buf *out);
/* The affine coordinates of an EC P-256 public key, each as exactly 32 big-endian bytes
 * (left-padded with zeros: a coordinate below 2^248 still fills 32 bytes), as JWK (RFC 7518
 * section 6.2.1) and the uncompressed SEC1 point need them. Other key types are
 * IOTSEC_ERR_INVALID_ARG. */
#define IOTSEC_P256_COORD_LEN 32
IOTSEC_MUST_CHECK iotsec_result iotsec_key_ec_p256_public_xy(const struct iotsec_key *key,
                                                             uint8_t x[IOTSEC_P256_COORD_LEN],
                                                             uint8_t y[IOTSEC_P256_COORD_LEN]);
/* DER SubjectPublicKeyInfo. */
IOTSEC_MUST_CHECK iotsec_result iotsec_key_from_public_der(struct iotsec_slice der,
                                                           struct iotsec_key **out);
/* Raw 32-byte Ed25519 public key (RFC 8032). */
IOTSEC_MUST_CHECK iotsec_result iotsec_key_from_ed25519_raw(struct iotsec_slice raw,
                                                            struct iotsec_key **out);
/* Saves private key PEM to path atomically with mode 0600. */
IOTSEC_MUST_CHECK iotsec_result iotsec_key_save_private_pem(const struct iotsec_key *key,
                                                            const char *path);
IOTSEC_MUST_CHECK iotsec_result iotsec_key_load_pem_file(const char *path, struct iotsec_key **out);

/* Signing: EC P-256 -> ECDSA with SHA-256, DER-encoded signature; Ed25519 -> pure
 * Ed25519 (64 bytes). RSA keys cannot sign here (IOTSEC_ERR_INVALID_ARG). */
IOTSEC_MUST_CHECK iotsec_result iotsec_sign(const struct iotsec_key *key, struct iotsec_slice msg,
                                            struct iotsec_buf *sig);
/* Verification: EC P-256 -> ECDSA SHA-256 over a DER signature (strict DER: BER variants
 * are rejected); Ed25519 -> pure Ed25519; RSA -> PKCS#1 v1.5 with SHA-256. Failure is
 * IOTSEC_ERR_VERIFY. */
IOTSEC_MUST_CHECK iotsec_result iotsec_verify(const struct iotsec_key *key, struct iotsec_slice msg,
                                              struct iotsec_slice sig);

#endif
