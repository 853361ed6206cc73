/*
 * The PKI: our own certificate authority for devices and servers, its CRL, and the
 * certificate checks that the mTLS listeners (iotsecd and the broker plugin) make.
 *
 * Profiles (docs/pki.md has them field by field):
 *   root CA       self-signed, EC P-256, CA:TRUE pathlen:1 (critical), keyCertSign+cRLSign
 *                 (critical), SKI, AKI = SKI
 *   intermediate  signed by the root, CA:TRUE pathlen:0, same key usage, SKI, AKI
 *   device        CN = device id, CA:FALSE (critical), digitalSignature (critical),
 *                 EKU clientAuth only, SKI, AKI, 16-byte random positive serial
 *   server        the same with EKU serverAuth and the names in the SAN (DNS and IP)
 * Every certificate and CRL is signed with ECDSA P-256 / SHA-256.
 *
 * Signing goes through struct iotsec_pki_signer, a callback over the DER "to be signed"
 * bytes, so the CA key can live in memory (iotsec_pki_signer_from_key) or in a PKCS#11
 * token (a callback around iotsec_hsm_sign) without this module knowing which. Every
 * signature the callback returns is verified against the signer's public key before a
 * certificate or CRL leaves this module, so a wrong token key or a faulty signature is an
 * error here and not a broken certificate in the field.
 *
 * Verification (iotsec_pki_verify_client / _server) is OpenSSL's X509_verify_cert in
 * strict mode, then our own stricter policy on the chain it built (key strength, signature
 * algorithms, extension rules, name rules; docs/pki.md lists them), then the leaf's
 * purpose and name. The client check returns the device id (the single CN of the subject)
 * and the SHA-256 fingerprint; whether that device is known, active and was issued exactly
 * this certificate is the caller's registry check.
 *
 * Errors: a certificate, CSR or CRL that cannot be parsed is IOTSEC_ERR_FORMAT; a
 * certificate that parses but is refused (chain, time, revocation, policy, name) is
 * IOTSEC_ERR_AUTH, and the message says why ("pki: certificate has expired (depth 0)").
 * Bad arguments (device id, DNS name, validity) are IOTSEC_ERR_INVALID_ARG.
 *
 * Ownership: opaque objects are freed with their _free function (NULL is a no-op); PEM
 * and text outputs are appended to caller-owned buffers. The library keeps no global
 * state; a verifier, once set up, may be shared by threads that only call the verify
 * functions.
 */
#ifndef IOTSEC_PKI_H
#define IOTSEC_PKI_H

#include "iotsec/buf.h"
#include "iotsec/crypto.h"
#include "iotsec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A device id is 1 to 64 characters of [A-Za-z0-9_-] (the telemetry contract's rule). */
#define IOTSEC_PKI_DEVICE_ID_MAX 64
/* Lowercase hex of the SHA-256 of a certificate's DER. */
#define IOTSEC_PKI_FINGERPRINT_HEX_LEN 64
/* Serials we issue are 16 bytes (32 hex digits); RFC 5280 4.1.2.2 allows up to 20. */
#define IOTSEC_PKI_SERIAL_LEN     16
#define IOTSEC_PKI_SERIAL_HEX_MAX 40
/* not_before is set this far before "now" so a device whose clock is a little behind
 * can use a certificate the moment it is issued. */
#define IOTSEC_PKI_BACKDATE_SECONDS 300
/* Bounds on what a peer can make us parse: one certificate's DER, the number of
 * certificates in a presented chain, the chain's input (room for PEM's base64), one CRL. */
#define IOTSEC_PKI_CERT_DER_MAX      (16 * 1024)
#define IOTSEC_PKI_CHAIN_CERTS_MAX   16
#define IOTSEC_PKI_CHAIN_MAX         (IOTSEC_PKI_CHAIN_CERTS_MAX * IOTSEC_PKI_CERT_DER_MAX * 2)
#define IOTSEC_PKI_CRL_MAX           ((size_t)16 << 20)
#define IOTSEC_PKI_VALIDITY_DAYS_MAX 36500
/* Names a server certificate may carry. */
#define IOTSEC_PKI_SERVER_NAMES_MAX 32

/* ---- signer ---- */

struct iotsec_pki_signer;

/* Signs `tbs` with ECDSA P-256 over SHA-256 and appends the DER signature to sig. */
typedef iotsec_result (*iotsec_pki_sign_fn)(const struct iotsec_pki_signer *signer,
                                            struct iotsec_slice tbs, struct iotsec_buf *sig);

/* A CA's signing key. public_key must be an EC P-256 key whose public half is that of the
 * key `sign` uses (it may be that very key, private half included); it names the CA
 * (SKI/AKI) and checks every signature. ctx is the callback's own (e.g. a token session
 * and a key label). All are borrowed: they must outlive whatever holds the signer. */
struct iotsec_pki_signer {
    const struct iotsec_key *public_key;
    iotsec_pki_sign_fn sign;
    void *ctx;
};

/* A signer over an in-memory EC P-256 private key (iotsec_sign). For a key in a token,
 * fill the struct by hand: public_key from iotsec_hsm_pubkey_pem + iotsec_key_from_pem,
 * sign a wrapper around iotsec_hsm_sign(hsm, label, tbs, sig). */
void iotsec_pki_signer_from_key(const struct iotsec_key *key, struct iotsec_pki_signer *out);

/* ---- certificate authority ---- */

struct iotsec_pki_ca_params {
    const char *common_name; /* 1 to 64 printable ASCII characters */
    uint32_t validity_days;  /* 1 .. IOTSEC_PKI_VALIDITY_DAYS_MAX */
    time_t now;              /* issuance time; not_before = now - IOTSEC_PKI_BACKDATE_SECONDS */
};

/* Appends a self-signed root CA certificate (PEM) for the signer's key to cert_pem. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_ca_create_root(const struct iotsec_pki_signer *signer,
                                                          const struct iotsec_pki_ca_params *params,
                                                          struct iotsec_buf *cert_pem);

struct iotsec_pki_ca; /* opaque: a CA certificate and the signer of its key */

/* Opens a CA for issuing: cert_pem is its certificate (exactly one, PEM or DER), signer
 * its key. The certificate must be a CA we could have made (CA:TRUE, keyCertSign and
 * cRLSign, an SKI, an EC P-256 key equal to the signer's public key) and pass the same
 * policy our verifiers apply. The signer is borrowed. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_ca_open(struct iotsec_slice cert_pem,
                                                   const struct iotsec_pki_signer *signer,
                                                   struct iotsec_pki_ca **out);
void iotsec_pki_ca_free(struct iotsec_pki_ca *ca);

/* Appends the CA's own certificate (PEM) to out: what verifiers trust or chain through. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_ca_cert_pem(const struct iotsec_pki_ca *ca,
                                                       struct iotsec_buf *out);

/* Appends an intermediate CA certificate (PEM, CA:TRUE pathlen:0) for public_key (EC
 * P-256), signed by `parent`, to cert_pem. The intermediate cannot outlive its parent. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_ca_create_intermediate(
    const struct iotsec_pki_ca *parent, const struct iotsec_key *public_key,
    const struct iotsec_pki_ca_params *params, struct iotsec_buf *cert_pem);

/* ---- issuing ---- */

/* What the registry records about an issued certificate. Every issue function takes a
 * pointer to one, which may be NULL when the caller does not need it. */
struct iotsec_pki_issued {
    char fingerprint[IOTSEC_PKI_FINGERPRINT_HEX_LEN + 1]; /* SHA-256 of the DER, lowercase hex */
    char serial[IOTSEC_PKI_SERIAL_HEX_MAX + 1];           /* lowercase hex, 32 digits */
    time_t not_before;
    time_t not_after;
};

struct iotsec_pki_device_params {
    const char *device_id; /* [A-Za-z0-9_-]{1,64}: anything else is refused, never altered */
    uint32_t validity_days;
    time_t now;
};

/* Issues a device client certificate for the key in a PKCS#10 CSR (one PEM block
 * "CERTIFICATE REQUEST"). The CSR must carry a valid self-signature and an EC P-256,
 * Ed25519 or RSA >= 2048 key. Only its key is used: the subject comes from params (a CN
 * in the CSR, if any, must equal the device id) and requested extensions are ignored.
 * Appends the certificate PEM to cert_pem. Like every issue function, it refuses to make
 * a certificate that our verifiers would refuse (e.g. an RSA key of 2052 bits). */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_issue_device_csr(
    const struct iotsec_pki_ca *ca, const struct iotsec_pki_device_params *params,
    struct iotsec_slice csr_pem, struct iotsec_buf *cert_pem, struct iotsec_pki_issued *info);

/* The same for a public key the operator holds (e.g. generated for the device). */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_issue_device_key(
    const struct iotsec_pki_ca *ca, const struct iotsec_pki_device_params *params,
    const struct iotsec_key *public_key, struct iotsec_buf *cert_pem,
    struct iotsec_pki_issued *info);

/* The subject CN of a server certificate is its first DNS name (or, without one, its
 * first IP address in canonical text), so that the CN repeats a SAN entry as CA/B BR
 * 7.1.4.3 asks and our own verifier checks. Clients match the SAN only. */
struct iotsec_pki_server_params {
    const char *const *dns_names; /* lowercase LDH host names, no wildcards */
    size_t dns_count;
    const char *const *ip_addresses; /* IPv4 or IPv6 literals */
    size_t ip_count;
    uint32_t validity_days;
    time_t now;
};

/* Issues a TLS server certificate (EKU serverAuth, names in the SAN) for public_key. At
 * least one DNS name or IP address is required. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_issue_server(
    const struct iotsec_pki_ca *ca, const struct iotsec_pki_server_params *params,
    const struct iotsec_key *public_key, struct iotsec_buf *cert_pem,
    struct iotsec_pki_issued *info);

/* Checks a CSR the way issuing does (format, self-signature, key policy) and returns its
 * public key, so an enrolment request can be refused before anything is recorded. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_csr_public_key(struct iotsec_slice csr_pem,
                                                          struct iotsec_key **out);

/* ---- revocation ---- */

/* RFC 5280 5.3.1 reason codes that we issue. certificateHold and removeFromCRL are not
 * offered: a revoked device is re-enrolled, never un-revoked. */
enum iotsec_pki_crl_reason {
    IOTSEC_PKI_REASON_UNSPECIFIED = 0, /* written without a reasonCode (RFC 5280 5.3.1) */
    IOTSEC_PKI_REASON_KEY_COMPROMISE = 1,
    IOTSEC_PKI_REASON_CA_COMPROMISE = 2,
    IOTSEC_PKI_REASON_AFFILIATION_CHANGED = 3,
    IOTSEC_PKI_REASON_SUPERSEDED = 4,
    IOTSEC_PKI_REASON_CESSATION_OF_OPERATION = 5,
    IOTSEC_PKI_REASON_PRIVILEGE_WITHDRAWN = 9,
};

struct iotsec_pki_revoked {
    const char *serial; /* hex, 1 to 40 digits, not zero (as in struct iotsec_pki_issued) */
    time_t revoked_at;
    enum iotsec_pki_crl_reason reason;
};

struct iotsec_pki_crl_params {
    uint64_t crl_number; /* must grow with every CRL the CA issues (RFC 5280 5.2.3) */
    time_t this_update;
    uint32_t next_update_seconds; /* nextUpdate = this_update + this; 1 s .. 366 days */
};

/* Appends a v2 CRL (PEM) signed by the CA, listing `count` entries, to crl_pem. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_crl_build(const struct iotsec_pki_ca *ca,
                                                     const struct iotsec_pki_crl_params *params,
                                                     const struct iotsec_pki_revoked *entries,
                                                     size_t count, struct iotsec_buf *crl_pem);

/* Reads the CRL number of a CRL we could have issued (v2, nextUpdate, CRL number), so
 * that the next CRL can be given a larger one. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_crl_number(struct iotsec_slice crl, uint64_t *number);

/* ---- verification ---- */

struct iotsec_pki_verifier; /* opaque: trust anchors, known intermediates, CRLs */

IOTSEC_MUST_CHECK iotsec_result iotsec_pki_verifier_new(struct iotsec_pki_verifier **out);
void iotsec_pki_verifier_free(struct iotsec_pki_verifier *v);

/* Adds trust anchors: one or more PEM certificates, or one DER certificate. Each must be
 * a CA certificate (CA:TRUE); the policy checks apply to anchors as to any CA. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_verifier_add_trusted(struct iotsec_pki_verifier *v,
                                                                struct iotsec_slice certs);
/* Adds untrusted intermediates the server knows (so devices may send only their leaf). */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_verifier_add_intermediates(struct iotsec_pki_verifier *v,
                                                                      struct iotsec_slice certs);
/* Adds a CRL (PEM or DER). Once any CRL is added, every certificate of every chain must
 * be covered by a current CRL of its issuer (OpenSSL's CRL_CHECK_ALL): fail closed. A CRL
 * that is not v2 or lacks a non-critical CRL number is refused here. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_verifier_add_crl(struct iotsec_pki_verifier *v,
                                                            struct iotsec_slice crl);
/* The most intermediates a chain may have between the leaf and the anchor (default 4). */
void iotsec_pki_verifier_set_max_depth(struct iotsec_pki_verifier *v, unsigned depth);

/* What verification learnt about the peer. */
struct iotsec_pki_peer {
    char device_id[IOTSEC_PKI_DEVICE_ID_MAX + 1];         /* client checks only */
    char fingerprint[IOTSEC_PKI_FINGERPRINT_HEX_LEN + 1]; /* of the leaf */
    char serial[IOTSEC_PKI_SERIAL_HEX_MAX + 1];           /* of the leaf, lowercase hex */
    time_t not_after;
    /* verify_client/verify_server: the times, inclusive, at which every time-dependent
     * step of this verification is certain to give the same answer for the same chain
     * and verifier: after the latest notBefore and before the earliest notAfter of the
     * built chain, and within every CRL's thisUpdate .. nextUpdate, each narrowed by a
     * second. A caller that caches the result (iotsecd) may reuse it only within. */
    time_t valid_from, valid_until;
};

/* Verifies a device's certificate chain at time `at`. chain is the peer's leaf followed by
 * any intermediates it sent: PEM blocks, or DER certificates back to back. Steps, in
 * order: parse (bounded), chain building and RFC 5280 checks in OpenSSL's strict mode
 * (validity at `at`, CRLs when configured), our policy on every certificate of the built
 * chain, EKU clientAuth and CA:FALSE on the leaf, then exactly one CN of the form of a
 * device id, returned in out->device_id with the fingerprint. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_verify_client(struct iotsec_pki_verifier *v,
                                                         struct iotsec_slice chain, time_t at,
                                                         struct iotsec_pki_peer *out);

/* Verifies a server's chain for `expected_name`: a DNS name or an IP literal, matched
 * against the leaf's SAN only (never the CN). EKU serverAuth on the leaf. out->device_id
 * is left empty. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_verify_server(struct iotsec_pki_verifier *v,
                                                         struct iotsec_slice chain, time_t at,
                                                         const char *expected_name,
                                                         struct iotsec_pki_peer *out);

/* ---- small helpers ---- */

/* True when id is 1 to 64 characters of [A-Za-z0-9_-]. */
bool iotsec_pki_device_id_valid(const char *id);

/* Parses one certificate (a PEM block or DER) and fills fingerprint, serial and
 * not_after; device_id is filled when the subject has exactly one CN that is a valid
 * device id, and left empty otherwise. For `iotsec cert show` and the registry. */
IOTSEC_MUST_CHECK iotsec_result iotsec_pki_cert_describe(struct iotsec_slice cert,
                                                         struct iotsec_pki_peer *out);

#endif
