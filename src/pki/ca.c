/*
 * The certificate authority: the root, an optional intermediate, and the CA object that
 * issue.c and crl.c sign with.
 *
 * A CA is its certificate plus a signer (include/iotsec/pki.h), never a bare private key,
 * so the same code issues with a key in memory or in a token. Opening a CA checks that
 * the certificate really is a CA for the signer's key: issuing under a certificate whose
 * key differs from the signing key would produce certificates nobody can verify, and we
 * would only learn it from the devices.
 *
 * Every issued certificate must end before its CA does. RFC 5280 does not require it, but
 * a certificate outliving its issuer fails verification on that day anyway; refusing at
 * issue time tells the operator to renew the CA instead.
 */
#include "pki_internal.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CA_NAME_MAX 64

static iotsec_result sign_with_key(const struct iotsec_pki_signer *signer, struct iotsec_slice tbs,
                                   struct iotsec_buf *sig)
{
    return iotsec_sign(signer->public_key, tbs, sig);
}

void iotsec_pki_signer_from_key(const struct iotsec_key *key, struct iotsec_pki_signer *out)
{
    *out = (struct iotsec_pki_signer){.public_key = key, .sign = sign_with_key, .ctx = NULL};
}

static iotsec_result check_ca_params(const struct iotsec_pki_ca_params *params)
{
    IOTSEC_ENSURE(params != NULL && params->common_name != NULL, IOTSEC_ERR_INVALID_ARG,
                  "pki: a CA needs a common name");
    size_t n = strlen(params->common_name);
    IOTSEC_ENSURE(n >= 1 && n <= CA_NAME_MAX, IOTSEC_ERR_INVALID_ARG,
                  "pki: CA common name must be 1 to %d characters", CA_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)params->common_name[i];
        IOTSEC_ENSURE(c >= 0x20 && c < 0x7f, IOTSEC_ERR_INVALID_ARG,
                      "pki: CA common name must be printable ASCII");
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_ec_key(const struct iotsec_key *key, const char *what)
{
    IOTSEC_ENSURE(key != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing %s key", what);
    IOTSEC_ENSURE(iotsec_key_type(key) == IOTSEC_KEY_EC_P256, IOTSEC_ERR_INVALID_ARG,
                  "pki: the %s key must be EC P-256", what);
    return IOTSEC_RESULT_OK;
}

static void fill_issued(struct iotsec_pki_issued *info, const struct pki_template_params *p)
{
    info->not_before = p->not_before;
    info->not_after = p->not_after;
}

/* Never issue what our own verifiers would refuse: the new certificate goes through the
 * policy of its role. This catches keys that crypto.h accepts but the certificate policy
 * does not (an RSA modulus that is not a multiple of 8 bits, or above 8192). */
static iotsec_result check_issued(X509 *cert, X509 *issuer, enum pki_profile profile)
{
    iotsec_result r;
    char id[IOTSEC_PKI_DEVICE_ID_MAX + 1];
    switch (profile) {
    case PKI_PROFILE_ROOT:
        r = pki_policy_check_cert(cert, NULL, PKI_ROLE_ANCHOR);
        break;
    case PKI_PROFILE_INTERMEDIATE:
        r = pki_policy_check_cert(cert, issuer, PKI_ROLE_INTERMEDIATE);
        break;
    case PKI_PROFILE_DEVICE:
        r = pki_policy_check_cert(cert, issuer, PKI_ROLE_LEAF);
        if (iotsec_ok(r))
            r = pki_policy_check_leaf(cert, PKI_PURPOSE_CLIENT);
        if (iotsec_ok(r))
            r = pki_device_id_from_cert(cert, id);
        break;
    case PKI_PROFILE_SERVER:
        r = pki_policy_check_cert(cert, issuer, PKI_ROLE_LEAF);
        if (iotsec_ok(r))
            r = pki_policy_check_leaf(cert, PKI_PURPOSE_SERVER);
        break;
    default:
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "pki: unknown certificate profile");
    }
    if (!iotsec_ok(r)) {
        char why[256]; /* the message is rewritten from a copy, never from itself */
        snprintf(why, sizeof(why), "%s", iotsec_error_message());
        iotsec_error_set(IOTSEC_ERR_INVALID_ARG,
                         "pki: not issued, our verifiers would refuse it: %s", why);
    }
    return r;
}

iotsec_result pki_ca_issue(const struct iotsec_pki_ca *ca, const struct pki_template_params *p,
                           struct iotsec_buf *cert_pem, struct iotsec_pki_issued *info)
{
    IOTSEC_ENSURE(p->not_after <= ca->not_after, IOTSEC_ERR_INVALID_ARG,
                  "pki: the certificate would outlive its CA; renew the CA or shorten the "
                  "validity");
    X509 *tmpl IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_template_new(p, &tmpl));
    X509 *cert IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_sign_cert(&ca->signer, tmpl, &cert));
    IOTSEC_GUARD(check_issued(cert, ca->cert, p->profile));
    struct iotsec_pki_issued local;
    if (info == NULL)
        info = &local;
    IOTSEC_GUARD(pki_fingerprint(cert, info->fingerprint));
    IOTSEC_GUARD(pki_serial_hex(X509_get0_serialNumber(cert), info->serial));
    fill_issued(info, p);
    return pki_cert_to_pem(cert, cert_pem);
}

iotsec_result iotsec_pki_ca_create_root(const struct iotsec_pki_signer *signer,
                                        const struct iotsec_pki_ca_params *params,
                                        struct iotsec_buf *cert_pem)
{
    IOTSEC_GUARD(check_ca_params(params));
    IOTSEC_ENSURE(signer != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing signer");
    IOTSEC_GUARD(check_ec_key(signer->public_key, "CA"));
    EVP_PKEY *pkey IOTSEC_DEFER(pki_pkey_cleanup) = NULL;
    IOTSEC_GUARD(pki_key_to_pkey(signer->public_key, &pkey));
    X509_NAME *name IOTSEC_DEFER(pki_name_cleanup) = NULL;
    IOTSEC_GUARD(pki_name_cn(params->common_name, &name));

    struct pki_template_params p = {
        .profile = PKI_PROFILE_ROOT, .subject = name, .issuer = name, .subject_key = pkey};
    IOTSEC_GUARD(pki_validity(params->now, params->validity_days, &p.not_before, &p.not_after));
    X509 *tmpl IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_template_new(&p, &tmpl));
    X509 *cert IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_sign_cert(signer, tmpl, &cert));
    IOTSEC_GUARD(check_issued(cert, NULL, PKI_PROFILE_ROOT));
    return pki_cert_to_pem(cert, cert_pem);
}

iotsec_result iotsec_pki_ca_create_intermediate(const struct iotsec_pki_ca *parent,
                                                const struct iotsec_key *public_key,
                                                const struct iotsec_pki_ca_params *params,
                                                struct iotsec_buf *cert_pem)
{
    IOTSEC_ENSURE(parent != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing parent CA");
    IOTSEC_GUARD(check_ca_params(params));
    IOTSEC_GUARD(check_ec_key(public_key, "intermediate CA"));
    /* Only a root (pathlen:1) may sign an intermediate; ours has pathlen:0. */
    IOTSEC_ENSURE(X509_get_pathlen(parent->cert) != 0, IOTSEC_ERR_INVALID_ARG,
                  "pki: this CA may not sign another CA (its path length is 0)");
    EVP_PKEY *pkey IOTSEC_DEFER(pki_pkey_cleanup) = NULL;
    IOTSEC_GUARD(pki_key_to_pkey(public_key, &pkey));
    X509_NAME *name IOTSEC_DEFER(pki_name_cleanup) = NULL;
    IOTSEC_GUARD(pki_name_cn(params->common_name, &name));
    IOTSEC_ENSURE(X509_NAME_cmp(name, X509_get_subject_name(parent->cert)) != 0,
                  IOTSEC_ERR_INVALID_ARG,
                  "pki: the intermediate needs a name different from its parent's");

    struct pki_template_params p = {
        .profile = PKI_PROFILE_INTERMEDIATE,
        .subject = name,
        .issuer = X509_get_subject_name(parent->cert),
        .subject_key = pkey,
        .issuer_key_id = X509_get0_subject_key_id(parent->cert),
    };
    IOTSEC_GUARD(pki_validity(params->now, params->validity_days, &p.not_before, &p.not_after));
    return pki_ca_issue(parent, &p, cert_pem, NULL);
}

static iotsec_result check_ca_cert(X509 *cert, const struct iotsec_pki_signer *signer)
{
    IOTSEC_ENSURE(X509_check_ca(cert) == 1 && (X509_get_extension_flags(cert) & EXFLAG_BCONS),
                  IOTSEC_ERR_INVALID_ARG, "pki: the certificate is not a CA (no CA:TRUE)");
    uint32_t ku = X509_get_key_usage(cert);
    IOTSEC_ENSURE((ku & KU_KEY_CERT_SIGN) && (ku & KU_CRL_SIGN), IOTSEC_ERR_INVALID_ARG,
                  "pki: the CA certificate lacks keyCertSign or cRLSign");
    IOTSEC_ENSURE(X509_get0_subject_key_id(cert) != NULL, IOTSEC_ERR_INVALID_ARG,
                  "pki: the CA certificate has no subject key identifier");
    EVP_PKEY *signer_key IOTSEC_DEFER(pki_pkey_cleanup) = NULL;
    IOTSEC_GUARD(pki_key_to_pkey(signer->public_key, &signer_key));
    EVP_PKEY *cert_key = X509_get0_pubkey(cert);
    IOTSEC_ENSURE(cert_key != NULL && EVP_PKEY_eq(cert_key, signer_key) == 1,
                  IOTSEC_ERR_INVALID_ARG,
                  "pki: the CA certificate is for another key than the signer's");
    ERR_clear_error();
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_ca_open(struct iotsec_slice cert_pem,
                                 const struct iotsec_pki_signer *signer, struct iotsec_pki_ca **out)
{
    IOTSEC_ENSURE(signer != NULL && signer->sign != NULL, IOTSEC_ERR_INVALID_ARG,
                  "pki: missing signer");
    IOTSEC_GUARD(check_ec_key(signer->public_key, "CA"));
    X509 *cert IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_cert_parse(cert_pem, &cert));
    IOTSEC_GUARD(check_ca_cert(cert, signer));
    /* A CA our own verifiers would refuse would issue certificates nobody accepts. */
    bool root = X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
    if (!iotsec_ok(
            pki_policy_check_cert(cert, NULL, root ? PKI_ROLE_ANCHOR : PKI_ROLE_INTERMEDIATE))) {
        iotsec_error_prefix("pki: CA certificate: ");
        return IOTSEC_RESULT_ERR;
    }
    time_t not_after;
    IOTSEC_GUARD(pki_time_to_time_t(X509_get0_notAfter(cert), &not_after));

    struct iotsec_pki_ca *ca = calloc(1, sizeof(*ca));
    IOTSEC_ENSURE_ALLOC(ca);
    *ca = (struct iotsec_pki_ca){.cert = cert, .signer = *signer, .not_after = not_after};
    cert = NULL;
    *out = ca;
    return IOTSEC_RESULT_OK;
}

void iotsec_pki_ca_free(struct iotsec_pki_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    free(ca);
}

iotsec_result iotsec_pki_ca_cert_pem(const struct iotsec_pki_ca *ca, struct iotsec_buf *out)
{
    return pki_cert_to_pem(ca->cert, out);
}
