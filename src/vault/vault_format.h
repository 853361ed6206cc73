/*
 * Internal to the vault: the byte layout of a vault file (docs/vault-format.md) and the
 * in-memory vault. format.c encodes and parses; vault.c does keys, crypto and files.
 */
#ifndef IOTSEC_VAULT_FORMAT_H
#define IOTSEC_VAULT_FORMAT_H

#include "iotsec/vault.h"

#define VAULT_MAGIC             "IOTSVLT\x1a"
#define VAULT_MAGIC_LEN         8
#define VAULT_DEK_LEN           IOTSEC_AEAD_KEY_LEN
#define VAULT_WRAPPED_DEK_LEN   (VAULT_DEK_LEN + IOTSEC_AEAD_TAG_LEN)
#define VAULT_SCRYPT_PARAMS_LEN (1 + 4 + 4 + 1 + IOTSEC_VAULT_SALT_LEN)

/* The parts of a file, as views into its bytes. */
struct vault_layout {
    struct iotsec_vault_header header;
    struct iotsec_slice wrap_aad;    /* magic .. end of key-source params */
    struct iotsec_slice dek_nonce;   /* 12 bytes */
    struct iotsec_slice wrapped_dek; /* 48 bytes: AES-GCM(KEK) of the DEK, with tag */
    struct iotsec_slice key_block;   /* magic .. end of wrapped DEK */
    struct iotsec_slice body_nonce;  /* 12 bytes */
    struct iotsec_slice body_aad;    /* magic .. end of the body length field */
    struct iotsec_slice body_sealed; /* ciphertext || tag */
};

struct vault_entry {
    char *name;
    struct iotsec_buf value; /* secret */
};

struct iotsec_vault {
    char *path;                  /* NULL for a decoded-only vault */
    int lock_fd;                 /* -1 unless open for writing */
    struct iotsec_buf key_block; /* kept verbatim: saving needs no KEK */
    uint8_t dek[VAULT_DEK_LEN];
    struct vault_entry *entries; /* sorted by name, unique */
    size_t count;
    size_t cap;
};

/* Parses the framing of a whole file. */
IOTSEC_MUST_CHECK iotsec_result vault_parse(struct iotsec_slice file, struct vault_layout *out);

/* Appends the key-source params for a header (scrypt parameters and salt, or a label). */
IOTSEC_MUST_CHECK iotsec_result vault_encode_key_params(const struct iotsec_vault_header *h,
                                                        struct iotsec_buf *out);
/* Appends magic, version, source, flags and params: the wrap AAD. */
IOTSEC_MUST_CHECK iotsec_result vault_encode_prefix(const struct iotsec_vault_header *h,
                                                    struct iotsec_buf *out);

/* Serialises the entries (the plaintext of the body) into a secret buffer. */
IOTSEC_MUST_CHECK iotsec_result vault_encode_entries(const struct iotsec_vault *v,
                                                     struct iotsec_buf *plain);
/* Parses decrypted entries into v (which must be empty). */
IOTSEC_MUST_CHECK iotsec_result vault_decode_entries(struct iotsec_slice plain,
                                                     struct iotsec_vault *v);

struct iotsec_vault *vault_alloc(void);

#endif
