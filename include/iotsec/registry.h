/*
 * The device registry: where the PKI's answers meet the store's records.
 *
 * pki decides whether a certificate chain is sound; only the registry knows whether the
 * device it names is one we enrolled, is still active, and holds exactly that certificate
 * today. This module joins the two, so the one client check both servers call
 * (iotsec_registry_verify_client) and the operator's lifecycle actions (enrol, renew,
 * disable, enable, revoke, publish the CRL) live in one place and are tested here.
 * docs/device-lifecycle.md describes the lifecycle and the files of a data directory.
 *
 * Lifecycle: enrol -> active <-> disabled; active or disabled -> revoked (final). A
 * revoked device is never re-activated: enrol the hardware again under a new id. Renewing
 * gives an active device a new certificate and revokes the old one (reason superseded),
 * so an old certificate is refused both by the registry and by the next CRL.
 *
 * Times: pki takes Unix seconds, the store Unix milliseconds; this module takes seconds
 * and converts.
 */
#ifndef IOTSEC_REGISTRY_H
#define IOTSEC_REGISTRY_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/pki.h"
#include "iotsec/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct iotsec_hsm;

/* ---- the files of a data directory ---- */
#define IOTSEC_REGISTRY_CA_CERT      "ca.crt"         /* the root: what peers trust */
#define IOTSEC_REGISTRY_ISSUING_CERT "ca-issuing.crt" /* the intermediate, when there is one */
#define IOTSEC_REGISTRY_CRL          "ca.crl"         /* CRL of the CA that issues devices */
#define IOTSEC_REGISTRY_ROOT_CRL     "ca-root.crl"    /* the root's CRL, with an intermediate */
#define IOTSEC_REGISTRY_CA_CONFIG    "ca.json"        /* where the CA keys are (no secret) */
#define IOTSEC_REGISTRY_SERVER_CERT  "server.crt"     /* the servers' TLS chain */
#define IOTSEC_REGISTRY_SERVER_KEY   "server.key"     /* its key, mode 0600 */
#define IOTSEC_REGISTRY_STORE        "store.db"
#define IOTSEC_REGISTRY_VAULT        "vault"

/* A verifier for the data directory `dir`: ca.crt trusted, ca-issuing.crt (if present) as
 * a known intermediate, ca.crl and ca-root.crl (if present) as CRLs. A missing ca.crt or
 * ca.crl is IOTSEC_ERR_NOT_FOUND naming the file (run `iotsec ca init`). */
IOTSEC_MUST_CHECK iotsec_result iotsec_registry_load_verifier(const char *dir,
                                                              struct iotsec_pki_verifier **out);

/* ---- client verification ---- */

/* Why a client was refused: the detail of the auth_failure event. */
enum iotsec_registry_refusal {
    IOTSEC_REGISTRY_ACCEPTED = 0,
    IOTSEC_REGISTRY_BAD_CERTIFICATE, /* pki refused the chain (message says why) */
    IOTSEC_REGISTRY_UNKNOWN_DEVICE,  /* sound certificate, but no such device */
    IOTSEC_REGISTRY_DISABLED,
    IOTSEC_REGISTRY_REVOKED,       /* the device, or this certificate, is revoked */
    IOTSEC_REGISTRY_NOT_CURRENT,   /* a certificate the device no longer holds */
    IOTSEC_REGISTRY_LOOKUP_FAILED, /* the store could not answer: refused, fail closed */
};

/* "accepted", "bad_certificate", "unknown_device", "disabled", "revoked", "not_current",
 * "lookup_failed". */
const char *iotsec_registry_refusal_name(enum iotsec_registry_refusal why);

/* The registry step alone, for a peer pki has already verified: the device exists, is
 * active, its current certificate has exactly this fingerprint, and the store does not
 * hold that certificate as revoked. IOTSEC_ERR_AUTH with *why set on refusal. */
IOTSEC_MUST_CHECK iotsec_result iotsec_registry_check_peer(struct iotsec_store *s,
                                                           const struct iotsec_pki_peer *peer,
                                                           enum iotsec_registry_refusal *why);

/* The whole client check: iotsec_pki_verify_client (chain, validity at `at`, EKU
 * clientAuth, CA:FALSE leaf, CRL, device id from the CN), then the registry step. out
 * receives the device id and fingerprint; *why (may be NULL) the reason on refusal. */
IOTSEC_MUST_CHECK iotsec_result iotsec_registry_verify_client(struct iotsec_pki_verifier *v,
                                                              struct iotsec_store *s,
                                                              struct iotsec_slice chain, time_t at,
                                                              struct iotsec_pki_peer *out,
                                                              enum iotsec_registry_refusal *why);

/* ---- lifecycle ---- */

/* Called inside the enrolment's transaction once the certificate exists: writing the
 * certificate (and key) files here means that if the writing fails, nothing is recorded,
 * and if recording fails, the caller removes what it wrote. */
typedef iotsec_result (*iotsec_registry_issued_fn)(void *ctx, struct iotsec_slice cert_pem,
                                                   const struct iotsec_pki_issued *info);

struct iotsec_registry_enrolment {
    const char *device_id; /* [A-Za-z0-9_-]{1,64} */
    const char *model;     /* may be NULL or "" */
    uint32_t validity_days;
    time_t now;
    /* The device's key: a CSR (PEM), or else a public key the operator made for it. */
    struct iotsec_slice csr_pem;
    const struct iotsec_key *public_key;
    /* false: the id must be new. true: the device must exist and be active; its current
     * certificate is revoked as superseded. */
    bool renew;
    iotsec_registry_issued_fn on_issued; /* may be NULL */
    void *on_issued_ctx;
};

/* Issues the device certificate and records, in one transaction, the device (new or
 * renewed), the certificate, the device's current fingerprint and serial, and its public
 * key (for challenge-response). Appends the certificate PEM to cert_pem (may be NULL). */
IOTSEC_MUST_CHECK iotsec_result iotsec_registry_enrol(struct iotsec_store *s,
                                                      const struct iotsec_pki_ca *ca,
                                                      const struct iotsec_registry_enrolment *e,
                                                      struct iotsec_buf *cert_pem,
                                                      struct iotsec_pki_issued *info);

/* active -> disabled, or disabled -> active. A revoked device cannot be enabled
 * (IOTSEC_ERR_PERMISSION); setting the state it already has is not an error. */
IOTSEC_MUST_CHECK iotsec_result iotsec_registry_set_enabled(struct iotsec_store *s,
                                                            const char *device_id, bool enabled,
                                                            time_t now);

/* Revokes the device, all its certificates and API keys (reason: RFC 5280 code). Revoking
 * a revoked device is IOTSEC_ERR_EXISTS. certs_revoked may be NULL. */
IOTSEC_MUST_CHECK iotsec_result iotsec_registry_revoke(struct iotsec_store *s,
                                                       const char *device_id,
                                                       enum iotsec_pki_crl_reason reason,
                                                       time_t now, size_t *certs_revoked);

/* A CRL of `ca` listing every revoked certificate in the store that has not expired at
 * params->this_update. */
IOTSEC_MUST_CHECK iotsec_result
iotsec_registry_build_crl(struct iotsec_store *s, const struct iotsec_pki_ca *ca,
                          const struct iotsec_pki_crl_params *params, struct iotsec_buf *crl_pem);

/* ---- a CA key inside a PKCS#11 token ---- */

/* A pki signer whose key is the EC key `label` in an open token. The holder owns the
 * public key it reads from the token; the hsm is borrowed and must outlive it. */
struct iotsec_registry_token_signer {
    struct iotsec_pki_signer signer;
    struct iotsec_hsm *hsm;
    char label[128];
    struct iotsec_key *public_key;
};
IOTSEC_MUST_CHECK iotsec_result iotsec_registry_token_signer_init(
    struct iotsec_registry_token_signer *ts, struct iotsec_hsm *hsm, const char *label);
void iotsec_registry_token_signer_clear(struct iotsec_registry_token_signer *ts);

#endif
