/*
 * Keys that never leave a token: a PKCS#11 client.
 *
 * The PKCS#11 module (a .so such as SoftHSM2's libsofthsm2.so or a vendor's HSM library)
 * is loaded at run time with dlopen(); nothing links against a particular token. A
 * `struct iotsec_hsm` is one logged-in user session on the token whose label was given.
 *
 * Keys are found by their CKA_LABEL. Private and secret keys are generated inside the
 * token with CKA_SENSITIVE=TRUE and CKA_EXTRACTABLE=FALSE, so their bytes are never
 * visible to this process. Generating a key under a label that already exists fails with
 * IOTSEC_ERR_EXISTS rather than creating a second object with the same label.
 *
 * Every PKCS#11 failure is IOTSEC_ERR_PKCS11 and its message names the function and the
 * CKR_ code ("hsm: C_Login: CKR_PIN_INCORRECT").
 *
 * Thread safety: one struct iotsec_hsm per thread.
 */
#ifndef IOTSEC_HSM_H
#define IOTSEC_HSM_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <stdint.h>

struct iotsec_hsm; /* opaque */

/* Loads the module, finds the token by label, opens a read-write session and logs in
 * as the user with pin. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_open(const char *module_path, const char *token_label,
                                                struct iotsec_slice pin, struct iotsec_hsm **out);
/* Initialises a token in the first slot whose token is not yet initialised (SoftHSM2
 * always offers one): sets its label and SO PIN, then the user PIN. PINs are passed as
 * slices, so callers can read them from private files instead of argv. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_init_token(const char *module_path,
                                                      const char *token_label,
                                                      struct iotsec_slice so_pin,
                                                      struct iotsec_slice user_pin);

/* Logs out, closes the session, finalizes and unloads the module. NULL is a no-op. */
void iotsec_hsm_close(struct iotsec_hsm *hsm);

/* An EC P-256 key pair; the private key is sensitive, not extractable, sign-only. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_keygen_ec(struct iotsec_hsm *hsm, const char *label);
/* An AES-256 secret key for wrapping (encrypt/decrypt with AES-GCM), not extractable. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_keygen_aes(struct iotsec_hsm *hsm, const char *label);

/* ECDSA P-256 over SHA-256(msg) with the private key `label`. The signature is appended
 * to sig DER-encoded (as OpenSSL and `openssl dgst -verify` expect), converted from the
 * raw r||s that PKCS#11 returns. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_sign(struct iotsec_hsm *hsm, const char *label,
                                                struct iotsec_slice msg, struct iotsec_buf *sig);
/* Verifies a DER ECDSA signature over msg with the public key `label`; a bad signature
 * is IOTSEC_ERR_VERIFY. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_verify(struct iotsec_hsm *hsm, const char *label,
                                                  struct iotsec_slice msg, struct iotsec_slice sig);
/* The public key `label` as a SubjectPublicKeyInfo PEM, appended to pem. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_pubkey_pem(struct iotsec_hsm *hsm, const char *label,
                                                      struct iotsec_buf *pem);

/* AES-256-GCM inside the token with the secret key `label` (used to wrap and unwrap the
 * vault's data key). seal appends ciphertext||tag(16); open appends the plaintext only
 * when the tag verifies (IOTSEC_ERR_AUTH otherwise). nonce is 12 bytes. */
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_aead_seal(struct iotsec_hsm *hsm, const char *label,
                                                     struct iotsec_slice nonce,
                                                     struct iotsec_slice aad,
                                                     struct iotsec_slice plain,
                                                     struct iotsec_buf *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_hsm_aead_open(struct iotsec_hsm *hsm, const char *label,
                                                     struct iotsec_slice nonce,
                                                     struct iotsec_slice aad,
                                                     struct iotsec_slice sealed,
                                                     struct iotsec_buf *out);

/* "CKR_PIN_INCORRECT" for 0xA0; "CKR_0x%08lX" for codes it does not know. */
const char *iotsec_hsm_ckr_name(unsigned long rv);

#endif
