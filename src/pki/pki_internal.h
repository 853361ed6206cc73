/*
 * What the files of src/pki share, and the internal entry points that the unit tests, the
 * x509-limbo runner and the fuzz target reach below the public API (include/iotsec/pki.h).
 *
 * The module is split by job: codec.c (parsing and printing certificates, CRLs, CSRs),
 * sign.c (DER assembly of a to-be-signed structure and the external signature),
 * profile.c (the extensions of our certificate profiles), ca.c, issue.c, crl.c,
 * verify.c (OpenSSL's chain building and our driver), policy.c (the stricter rules) and
 * name.c (device ids, DNS names, IP literals, subject CNs).
 */
#ifndef IOTSEC_PKI_INTERNAL_H
#define IOTSEC_PKI_INTERNAL_H

#include "iotsec/pki.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* OpenSSL's stack types under plain names: clang-format reads the STACK_OF() macro as a
 * multiplication and would write "STACK_OF(X509) * certs". */
typedef STACK_OF(X509) pki_x509_stack;
typedef STACK_OF(GENERAL_SUBTREE) pki_subtree_stack;

/* ---- scope-bound cleanup for the OpenSSL objects the module handles ---- */
void pki_x509_cleanup(X509 **x);
void pki_x509_stack_cleanup(pki_x509_stack **s);
void pki_crl_cleanup(X509_CRL **c);
void pki_req_cleanup(X509_REQ **r);
void pki_pkey_cleanup(EVP_PKEY **k);
void pki_name_cleanup(X509_NAME **n);
void pki_bio_cleanup(BIO **b);
void pki_buf_cleanup(struct iotsec_buf *b);
void pki_key_cleanup(struct iotsec_key **k);
void pki_asn1_int_cleanup(ASN1_INTEGER **i);
void pki_ossl_free_cleanup(unsigned char **p);

/* ---- codec.c ---- */

/* Parses a chain: PEM "CERTIFICATE" blocks (only whitespace around them) or DER
 * certificates back to back. At most max_certs, each at most IOTSEC_PKI_CERT_DER_MAX
 * bytes of DER, each consumed exactly. */
IOTSEC_MUST_CHECK iotsec_result pki_certs_parse(struct iotsec_slice in, size_t max_certs,
                                                pki_x509_stack **out);
/* Exactly one certificate, PEM or DER. */
IOTSEC_MUST_CHECK iotsec_result pki_cert_parse(struct iotsec_slice in, X509 **out);
/* One CRL, PEM ("X509 CRL") or DER, at most IOTSEC_PKI_CRL_MAX bytes. */
IOTSEC_MUST_CHECK iotsec_result pki_crl_parse(struct iotsec_slice in, X509_CRL **out);
/* One PKCS#10 request, PEM ("CERTIFICATE REQUEST"). */
IOTSEC_MUST_CHECK iotsec_result pki_csr_parse(struct iotsec_slice pem, X509_REQ **out);

IOTSEC_MUST_CHECK iotsec_result pki_cert_to_pem(X509 *cert, struct iotsec_buf *out);
IOTSEC_MUST_CHECK iotsec_result pki_crl_to_pem(X509_CRL *crl, struct iotsec_buf *out);

/* Lowercase hex of SHA-256(DER). */
IOTSEC_MUST_CHECK iotsec_result pki_fingerprint(X509 *cert,
                                                char out[IOTSEC_PKI_FINGERPRINT_HEX_LEN + 1]);
/* Lowercase hex of a positive serial of at most 20 octets; anything else is refused. */
IOTSEC_MUST_CHECK iotsec_result pki_serial_hex(const ASN1_INTEGER *serial,
                                               char out[IOTSEC_PKI_SERIAL_HEX_MAX + 1]);
/* The reverse, for CRL entries: 1..40 hex digits, not zero. */
IOTSEC_MUST_CHECK iotsec_result pki_serial_from_hex(const char *hex, ASN1_INTEGER **out);
void pki_hex(const uint8_t *p, size_t n, char *out);
/* A certificate time as time_t (refuses what cannot be represented). */
IOTSEC_MUST_CHECK iotsec_result pki_time_to_time_t(const ASN1_TIME *t, time_t *out);

/* The EVP_PKEY of an iotsec_key's public half (through its SubjectPublicKeyInfo). */
IOTSEC_MUST_CHECK iotsec_result pki_key_to_pkey(const struct iotsec_key *key, EVP_PKEY **out);
/* The reverse, through the key policy of crypto.h (EC P-256, Ed25519, RSA >= 2048). */
IOTSEC_MUST_CHECK iotsec_result pki_pkey_to_key(EVP_PKEY *pkey, struct iotsec_key **out);

/* ---- sign.c ---- */

/* Builds the TBSCertificate from `tmpl` (version, serial, issuer, validity, subject, key,
 * extensions; the template's own signature fields are ignored), has the signer sign it
 * with ECDSA P-256 / SHA-256, and returns the certificate, checked against the signer's
 * public key. */
IOTSEC_MUST_CHECK iotsec_result pki_sign_cert(const struct iotsec_pki_signer *signer, X509 *tmpl,
                                              X509 **out);
/* The same for a CRL template (version, issuer, times, sorted entries, extensions). */
IOTSEC_MUST_CHECK iotsec_result pki_sign_crl(const struct iotsec_pki_signer *signer, X509_CRL *tmpl,
                                             X509_CRL **out);

/* ---- profile.c ---- */

enum pki_profile {
    PKI_PROFILE_ROOT,
    PKI_PROFILE_INTERMEDIATE,
    PKI_PROFILE_DEVICE,
    PKI_PROFILE_SERVER,
};

/* A certificate template: v3, the serial, subject, issuer, validity and key set. */
struct pki_template_params {
    enum pki_profile profile;
    const X509_NAME *subject;
    const X509_NAME *issuer;
    EVP_PKEY *subject_key;
    const ASN1_OCTET_STRING *issuer_key_id; /* AKI; NULL for a root (its own SKI is used) */
    time_t not_before;
    time_t not_after;
    GENERAL_NAMES *san; /* server only */
};
IOTSEC_MUST_CHECK iotsec_result pki_template_new(const struct pki_template_params *p, X509 **out);
/* 16 random bytes with the top bit clear and a non-zero first byte: a positive INTEGER
 * whose DER is exactly 16 octets. */
IOTSEC_MUST_CHECK iotsec_result pki_random_serial(ASN1_INTEGER **out);
/* An X509_NAME holding one CN (UTF8String). */
IOTSEC_MUST_CHECK iotsec_result pki_name_cn(const char *cn, X509_NAME **out);
/* Validity: `now` must be after 1970 and days in range; not_before is backdated. */
IOTSEC_MUST_CHECK iotsec_result pki_validity(time_t now, uint32_t days, time_t *not_before,
                                             time_t *not_after);

/* ---- ca.c ---- */

struct iotsec_pki_ca {
    X509 *cert;
    struct iotsec_pki_signer signer;
    time_t not_after;
};

/* Issues a certificate from a template built by the caller's profile, checking that it
 * does not outlive the CA, and fills info. */
IOTSEC_MUST_CHECK iotsec_result pki_ca_issue(const struct iotsec_pki_ca *ca,
                                             const struct pki_template_params *p,
                                             struct iotsec_buf *cert_pem,
                                             struct iotsec_pki_issued *info);

/* ---- crl.c ---- */

/* Our profile for any CRL we accept: v2, issuer, thisUpdate and nextUpdate, a
 * non-critical CRL number, no unknown critical extension. */
IOTSEC_MUST_CHECK iotsec_result pki_crl_check_profile(X509_CRL *crl);

/* ---- name.c ---- */

/* The subject's CN when there is exactly one and it is a valid device id. */
IOTSEC_MUST_CHECK iotsec_result pki_device_id_from_cert(X509 *cert,
                                                        char out[IOTSEC_PKI_DEVICE_ID_MAX + 1]);
/* A host name we put in or match against a SAN: LDH labels, lowercase, <= 253. With
 * allow_wildcard, a leading "*." label is allowed (matching a certificate's SAN). */
bool pki_dns_name_valid(const char *name, size_t len, bool allow_wildcard);
/* An IPv4 or IPv6 literal into 4 or 16 bytes; returns the length, 0 when not one. */
size_t pki_ip_parse(const char *text, uint8_t out[16]);

/* ---- policy.c ---- */

enum pki_role {
    PKI_ROLE_LEAF,
    PKI_ROLE_INTERMEDIATE,
    PKI_ROLE_ANCHOR,
};

enum pki_purpose {
    PKI_PURPOSE_CLIENT,
    PKI_PURPOSE_SERVER,
};

/* The rules that apply to one certificate in a given position (docs/pki.md, "policy").
 * `issuer` is the next certificate up the chain (NULL for the anchor). */
IOTSEC_MUST_CHECK iotsec_result pki_policy_check_cert(X509 *cert, X509 *issuer, enum pki_role role);
/* The rules on the leaf for its purpose (EKU, CA:FALSE, key usage, SAN shape). */
IOTSEC_MUST_CHECK iotsec_result pki_policy_check_leaf(X509 *leaf, enum pki_purpose purpose);
/* Rules across the chain built by OpenSSL: chain[0] is the leaf, the last the anchor. */
IOTSEC_MUST_CHECK iotsec_result pki_policy_check_chain(pki_x509_stack *chain,
                                                       enum pki_purpose purpose);

/* ---- verify.c ---- */

/* The chain and policy part shared by both verify functions: parses `chain`, builds and
 * checks the path at `at` for `purpose` and, when expected_name is not NULL, the name
 * (DNS or IP, SAN only). On success *leaf is the verified leaf (owned by the caller).
 * The limbo runner calls this directly for CLIENT cases, which have no device id. */
/* window (may be NULL) receives valid_from and valid_until as in struct iotsec_pki_peer. */
IOTSEC_MUST_CHECK iotsec_result pki_verify_chain(struct iotsec_pki_verifier *v,
                                                 struct iotsec_slice chain, time_t at,
                                                 enum pki_purpose purpose,
                                                 const char *expected_name, X509 **leaf,
                                                 struct iotsec_pki_peer *window);

#endif
