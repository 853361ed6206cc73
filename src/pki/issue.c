/*
 * Issuing device and server certificates.
 *
 * From a CSR only the public key is taken, after its self-signature verifies (proof that
 * the requester holds the private key) and the key passes crypto.h's key policy (EC P-256,
 * Ed25519, RSA >= 2048). The subject is ours: the CN is the device id the caller gives,
 * and requested extensions are never copied, so a CSR cannot ask for CA:TRUE, another EKU
 * or extra names. A CN in the CSR must agree with the device id, so that a device
 * enrolling under the wrong id is told so instead of silently renamed.
 *
 * The CSR's own signature algorithm must not be MD5 or SHA-1: proof of possession over a
 * collidable hash proves less, and no current device needs it.
 */
#include "pki_internal.h"

#include <openssl/err.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define SERVER_CN_MAX 64

static iotsec_result check_csr_signature_algorithm(X509_REQ *req)
{
    int md_nid = NID_undef, pk_nid = NID_undef;
    int sig_nid = X509_REQ_get_signature_nid(req);
    IOTSEC_ENSURE(OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) == 1, IOTSEC_ERR_FORMAT,
                  "pki: CSR: unknown signature algorithm");
    IOTSEC_ENSURE(md_nid != NID_md5 && md_nid != NID_sha1 && md_nid != NID_md5_sha1,
                  IOTSEC_ERR_FORMAT, "pki: CSR: signed with %s, which is too weak",
                  OBJ_nid2sn(md_nid));
    return IOTSEC_RESULT_OK;
}

/* Parses and checks a CSR; returns it and its key. */
static iotsec_result load_csr(struct iotsec_slice csr_pem, X509_REQ **req_out,
                              struct iotsec_key **key_out)
{
    X509_REQ *req IOTSEC_DEFER(pki_req_cleanup) = NULL;
    IOTSEC_GUARD(pki_csr_parse(csr_pem, &req));
    IOTSEC_ENSURE(X509_REQ_get_version(req) == X509_REQ_VERSION_1, IOTSEC_ERR_FORMAT,
                  "pki: CSR: unsupported version");
    IOTSEC_GUARD(check_csr_signature_algorithm(req));
    EVP_PKEY *pkey = X509_REQ_get0_pubkey(req);
    if (pkey == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "pki: CSR: unreadable public key");
        return IOTSEC_RESULT_ERR;
    }
    if (X509_REQ_verify_ex(req, pkey, NULL, NULL) != 1) {
        iotsec_error_set_ossl(IOTSEC_ERR_VERIFY, "pki: CSR: the self-signature does not verify");
        return IOTSEC_RESULT_ERR;
    }
    iotsec_result r = pki_pkey_to_key(pkey, key_out);
    if (!iotsec_ok(r)) {
        iotsec_error_prefix("pki: CSR: ");
        return r;
    }
    *req_out = req;
    req = NULL;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_csr_public_key(struct iotsec_slice csr_pem, struct iotsec_key **out)
{
    X509_REQ *req IOTSEC_DEFER(pki_req_cleanup) = NULL;
    return load_csr(csr_pem, &req, out);
}

/* Every CN in the request must be the device id, byte for byte. */
static iotsec_result check_csr_subject(X509_REQ *req, const char *device_id)
{
    const X509_NAME *subject = X509_REQ_get_subject_name(req);
    size_t id_len = strlen(device_id);
    for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
        const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        bool same = (size_t)ASN1_STRING_length(cn) == id_len &&
                    memcmp(ASN1_STRING_get0_data(cn), device_id, id_len) == 0;
        IOTSEC_ENSURE(same, IOTSEC_ERR_INVALID_ARG,
                      "pki: CSR: its CN differs from the device id it is issued for");
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_not_ca_key(const struct iotsec_pki_ca *ca, EVP_PKEY *pkey)
{
    bool same = EVP_PKEY_eq(X509_get0_pubkey(ca->cert), pkey) == 1;
    ERR_clear_error(); /* keys of different types compare as an error, not as unequal */
    IOTSEC_ENSURE(!same, IOTSEC_ERR_INVALID_ARG,
                  "pki: refusing to issue a leaf certificate for the CA's own key");
    return IOTSEC_RESULT_OK;
}

static iotsec_result issue_leaf(const struct iotsec_pki_ca *ca, enum pki_profile profile,
                                const char *cn, time_t now, uint32_t days,
                                const struct iotsec_key *public_key, GENERAL_NAMES *san,
                                struct iotsec_buf *cert_pem, struct iotsec_pki_issued *info)
{
    IOTSEC_ENSURE(ca != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing CA");
    EVP_PKEY *pkey IOTSEC_DEFER(pki_pkey_cleanup) = NULL;
    IOTSEC_GUARD(pki_key_to_pkey(public_key, &pkey));
    IOTSEC_GUARD(check_not_ca_key(ca, pkey));
    X509_NAME *name IOTSEC_DEFER(pki_name_cleanup) = NULL;
    if (cn != NULL) {
        IOTSEC_GUARD(pki_name_cn(cn, &name));
    } else {
        name = X509_NAME_new();
        IOTSEC_ENSURE_ALLOC(name);
    }
    struct pki_template_params p = {
        .profile = profile,
        .subject = name,
        .issuer = X509_get_subject_name(ca->cert),
        .subject_key = pkey,
        .issuer_key_id = X509_get0_subject_key_id(ca->cert),
        .san = san,
    };
    IOTSEC_GUARD(pki_validity(now, days, &p.not_before, &p.not_after));
    return pki_ca_issue(ca, &p, cert_pem, info);
}

static iotsec_result check_device_params(const struct iotsec_pki_device_params *params)
{
    IOTSEC_ENSURE(params != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing device parameters");
    IOTSEC_ENSURE(iotsec_pki_device_id_valid(params->device_id), IOTSEC_ERR_INVALID_ARG,
                  "pki: a device id is 1 to %d characters of [A-Za-z0-9_-]",
                  IOTSEC_PKI_DEVICE_ID_MAX);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_issue_device_key(const struct iotsec_pki_ca *ca,
                                          const struct iotsec_pki_device_params *params,
                                          const struct iotsec_key *public_key,
                                          struct iotsec_buf *cert_pem,
                                          struct iotsec_pki_issued *info)
{
    IOTSEC_GUARD(check_device_params(params));
    return issue_leaf(ca, PKI_PROFILE_DEVICE, params->device_id, params->now, params->validity_days,
                      public_key, NULL, cert_pem, info);
}

iotsec_result iotsec_pki_issue_device_csr(const struct iotsec_pki_ca *ca,
                                          const struct iotsec_pki_device_params *params,
                                          struct iotsec_slice csr_pem, struct iotsec_buf *cert_pem,
                                          struct iotsec_pki_issued *info)
{
    IOTSEC_GUARD(check_device_params(params));
    X509_REQ *req IOTSEC_DEFER(pki_req_cleanup) = NULL;
    struct iotsec_key *key IOTSEC_DEFER(pki_key_cleanup) = NULL;
    IOTSEC_GUARD(load_csr(csr_pem, &req, &key));
    IOTSEC_GUARD(check_csr_subject(req, params->device_id));
    return issue_leaf(ca, PKI_PROFILE_DEVICE, params->device_id, params->now, params->validity_days,
                      key, NULL, cert_pem, info);
}

/* ---- server certificates ---- */

static void general_names_cleanup(GENERAL_NAMES **names)
{
    GENERAL_NAMES_free(*names);
}

static iotsec_result push_name(GENERAL_NAMES *names, int type, const uint8_t *p, size_t n)
{
    ASN1_STRING *value = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
    IOTSEC_ENSURE_ALLOC(value);
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (gn == NULL || ASN1_STRING_set(value, p, (int)n) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_STRING_free(value);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "pki: out of memory");
    }
    GENERAL_NAME_set0_value(gn, type, value);
    if (sk_GENERAL_NAME_push(names, gn) <= 0) {
        GENERAL_NAME_free(gn);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "pki: out of memory");
    }
    return IOTSEC_RESULT_OK;
}

static bool lowercase(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            return false;
    return true;
}

static iotsec_result server_names(const struct iotsec_pki_server_params *params,
                                  GENERAL_NAMES **out, char cn[INET6_ADDRSTRLEN + 256])
{
    size_t total = params->dns_count + params->ip_count;
    IOTSEC_ENSURE(total >= 1 && total <= IOTSEC_PKI_SERVER_NAMES_MAX, IOTSEC_ERR_INVALID_ARG,
                  "pki: a server certificate needs 1 to %d DNS names or IP addresses",
                  IOTSEC_PKI_SERVER_NAMES_MAX);
    IOTSEC_ENSURE((params->dns_count == 0 || params->dns_names != NULL) &&
                      (params->ip_count == 0 || params->ip_addresses != NULL),
                  IOTSEC_ERR_INVALID_ARG, "pki: missing server names");
    GENERAL_NAMES *names IOTSEC_DEFER(general_names_cleanup) = GENERAL_NAMES_new();
    IOTSEC_ENSURE_ALLOC(names);
    cn[0] = '\0';
    for (size_t i = 0; i < params->dns_count; i++) {
        const char *dns = params->dns_names[i];
        IOTSEC_ENSURE(dns != NULL && pki_dns_name_valid(dns, strlen(dns), false) && lowercase(dns),
                      IOTSEC_ERR_INVALID_ARG,
                      "pki: DNS name %zu is not a lowercase host name (no wildcards)", i + 1);
        IOTSEC_GUARD(push_name(names, GEN_DNS, (const uint8_t *)dns, strlen(dns)));
        if (i == 0)
            snprintf(cn, INET6_ADDRSTRLEN + 256, "%s", dns);
    }
    for (size_t i = 0; i < params->ip_count; i++) {
        uint8_t ip[16];
        size_t n = pki_ip_parse(params->ip_addresses[i], ip);
        IOTSEC_ENSURE(n > 0, IOTSEC_ERR_INVALID_ARG,
                      "pki: IP address %zu is not an IPv4 or IPv6 literal", i + 1);
        IOTSEC_GUARD(push_name(names, GEN_IPADD, ip, n));
        /* The canonical text (RFC 5952 for IPv6), which is what a CN must repeat. */
        if (cn[0] == '\0')
            IOTSEC_ENSURE(inet_ntop(n == 4 ? AF_INET : AF_INET6, ip, cn, INET6_ADDRSTRLEN) != NULL,
                          IOTSEC_ERR_INVALID_ARG, "pki: IP address %zu cannot be printed", i + 1);
    }
    *out = names;
    names = NULL;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_issue_server(const struct iotsec_pki_ca *ca,
                                      const struct iotsec_pki_server_params *params,
                                      const struct iotsec_key *public_key,
                                      struct iotsec_buf *cert_pem, struct iotsec_pki_issued *info)
{
    IOTSEC_ENSURE(params != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing server parameters");
    GENERAL_NAMES *names IOTSEC_DEFER(general_names_cleanup) = NULL;
    char cn[INET6_ADDRSTRLEN + 256];
    IOTSEC_GUARD(server_names(params, &names, cn));
    /* X.520 bounds a CN to 64 characters; a longer host name goes in the SAN alone, under
     * an empty subject (RFC 5280 4.2.1.6 then makes the SAN critical). */
    return issue_leaf(ca, PKI_PROFILE_SERVER, strlen(cn) <= SERVER_CN_MAX ? cn : NULL, params->now,
                      params->validity_days, public_key, names, cert_pem, info);
}
