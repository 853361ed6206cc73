/*
 * The vault: named secrets encrypted at rest in one file (format: docs/vault-format.md).
 *
 * Two keys protect a vault. A random 256-bit data key (DEK) encrypts the entries with
 * AES-256-GCM. The DEK is stored wrapped by a key-encryption key (KEK) that comes either
 * from a passphrase (scrypt; the salt and cost parameters are in the file, so the same
 * passphrase opens it after a restart) or from an AES key that never leaves a PKCS#11
 * token. Every header byte is authenticated by both layers: altering the KDF parameters,
 * the key source or a length is detected before any secret is used.
 *
 * A `struct iotsec_vault` is the decrypted content in memory (values in wiped buffers).
 * Changes are in memory until iotsec_vault_save(), which writes a new file atomically
 * (temporary file, fsync, rename, fsync of the directory): a crash leaves the old or the
 * new vault, never a broken one. A vault opened for writing holds an exclusive lock
 * (flock on "<path>.lock") until it is closed, so two writers cannot lose each other's
 * updates; readers take no lock and always see a complete file.
 */
#ifndef IOTSEC_VAULT_H
#define IOTSEC_VAULT_H

#include "iotsec/buf.h"
#include "iotsec/crypto.h"
#include "iotsec/error.h"
#include "iotsec/hsm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOTSEC_VAULT_VERSION       1
#define IOTSEC_VAULT_NAME_MAX      128
#define IOTSEC_VAULT_VALUE_MAX     ((size_t)1 << 20) /* 1 MiB per secret */
#define IOTSEC_VAULT_ENTRIES_MAX   65536
#define IOTSEC_VAULT_BODY_MAX      ((size_t)64 << 20) /* 64 MiB of entries */
#define IOTSEC_VAULT_FILE_MAX      (IOTSEC_VAULT_BODY_MAX + 4096)
#define IOTSEC_VAULT_HSM_LABEL_MAX 64
#define IOTSEC_VAULT_SALT_LEN      16

enum iotsec_vault_key_source {
    IOTSEC_VAULT_KEY_PASSPHRASE = 1,
    IOTSEC_VAULT_KEY_HSM = 2,
};

/* How to obtain the KEK. For a passphrase: `passphrase`, and for create/rekey the scrypt
 * cost (all-zero means IOTSEC_SCRYPT_DEFAULT). For a token: an open `hsm` session and the
 * label of an AES-256 key in it (for open, the label stored in the file is used and
 * `hsm_key_label` may be NULL). */
struct iotsec_vault_key {
    enum iotsec_vault_key_source source;
    struct iotsec_slice passphrase;
    struct iotsec_scrypt_params scrypt;
    struct iotsec_hsm *hsm;
    const char *hsm_key_label;
};

/* What the header of a vault file says, readable without any key. */
struct iotsec_vault_header {
    uint16_t version;
    enum iotsec_vault_key_source source;
    struct iotsec_scrypt_params scrypt;                 /* PASSPHRASE */
    uint8_t salt[IOTSEC_VAULT_SALT_LEN];                /* PASSPHRASE */
    char hsm_key_label[IOTSEC_VAULT_HSM_LABEL_MAX + 1]; /* HSM */
    size_t body_len;                                    /* ciphertext bytes of the entries */
};

enum iotsec_vault_mode {
    IOTSEC_VAULT_READ,
    IOTSEC_VAULT_WRITE, /* takes the writer lock; needed for save and rekey */
};

struct iotsec_vault; /* opaque */

/* Creates a new, empty vault file (mode 0600). Fails with IOTSEC_ERR_EXISTS when path
 * exists: a vault is never overwritten by init. The returned vault is open for writing. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_create(const char *path,
                                                    const struct iotsec_vault_key *key,
                                                    struct iotsec_vault **out);

/* Reads, authenticates and decrypts a vault. A wrong passphrase or key and any altered
 * header byte are IOTSEC_ERR_AUTH; truncation IOTSEC_ERR_TRUNCATED; another version
 * IOTSEC_ERR_VERSION; the message names the file. The file is never modified. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_open(const char *path,
                                                  const struct iotsec_vault_key *key,
                                                  enum iotsec_vault_mode mode,
                                                  struct iotsec_vault **out);

/* Wipes every secret and releases the lock. NULL is a no-op. */
void iotsec_vault_close(struct iotsec_vault *vault);

/* A name is 1..128 characters of [A-Za-z0-9._:/@-]. Anything else is IOTSEC_ERR_INVALID_ARG. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_check_name(const char *name);

/* Appends the value of `name` to value (use a secret buffer). IOTSEC_ERR_NOT_FOUND if absent. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_get(const struct iotsec_vault *vault, const char *name,
                                                 struct iotsec_buf *value);
/* Adds or replaces, in memory. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_put(struct iotsec_vault *vault, const char *name,
                                                 struct iotsec_slice value);
/* Removes, in memory. IOTSEC_ERR_NOT_FOUND if absent. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_remove(struct iotsec_vault *vault, const char *name);

/* Entry names in byte order. */
size_t iotsec_vault_count(const struct iotsec_vault *vault);
const char *iotsec_vault_name_at(const struct iotsec_vault *vault, size_t index);

/* Writes the vault atomically under the same DEK, with a fresh body nonce. Needs WRITE. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_save(struct iotsec_vault *vault);

/* Re-encrypts everything under a new DEK wrapped by a new KEK (a new passphrase and salt,
 * or a token key) and saves. The old passphrase no longer opens the file. Needs WRITE. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_rekey(struct iotsec_vault *vault,
                                                   const struct iotsec_vault_key *new_key);

/* ---- the format, exposed for inspection and fuzzing ---- */

/* Parses the whole file's framing (header, lengths, nothing trailing) without a key. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_parse_header(struct iotsec_slice file,
                                                          struct iotsec_vault_header *out);

/* Decodes decrypted entries into a vault object with no file behind it (for fuzzing the
 * body parser). Entries must be in strictly increasing name order, each name valid. */
IOTSEC_MUST_CHECK iotsec_result iotsec_vault_decode_entries(struct iotsec_slice plain,
                                                            struct iotsec_vault **out);

#endif
