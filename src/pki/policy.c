/*
 * Our certificate policy: the rules we apply on top of OpenSSL's RFC 5280 path validation.
 *
 * OpenSSL 3.0, even in X509_STRICT mode, accepts 36 of x509-limbo's 144 invalid chains
 * (45 without strict mode). Each rule below closes one class of them, or states a limit
 * this platform wants anyway; docs/pki.md lists every rule with the RFC 5280 or CA/Browser
 * Forum Baseline Requirements (BR) text it comes from and the valid limbo cases it refuses.
 * Some rules repeat a check OpenSSL's strict mode also makes (version, key identifiers,
 * basic constraints): the policy should not silently weaken if a flag or OpenSSL version
 * changes, and the duplicates are cheap.
 *
 * The rules run on the chain OpenSSL built (leaf first, anchor last), so each certificate
 * is checked in the role it actually plays, with its actual issuer. They only look at
 * decoded structures and never at signatures, which OpenSSL has verified by then.
 *
 * Bounds: at most EXTENSIONS_MAX extensions per certificate (the duplicate check is
 * quadratic), NAMES_MAX names in a SAN and NAMES_MAX subtrees in name constraints, so
 * that name-constraint checking stays small (limbo's nc-dos cases carry thousands).
 */
#include "pki_internal.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define EXTENSIONS_MAX  32
#define NAMES_MAX       128
#define RSA_MIN_BITS    2048
#define RSA_MAX_BITS    8192
#define SIG_MIN_SECBITS 112
#define EMAIL_LOCAL_MAX 64

static void general_names_cleanup(GENERAL_NAMES **names)
{
    GENERAL_NAMES_free(*names);
}

static void name_constraints_cleanup(NAME_CONSTRAINTS **nc)
{
    NAME_CONSTRAINTS_free(*nc);
}

static void akid_cleanup(AUTHORITY_KEYID **akid)
{
    AUTHORITY_KEYID_free(*akid);
}

static void eku_cleanup(EXTENDED_KEY_USAGE **eku)
{
    sk_ASN1_OBJECT_pop_free(*eku, ASN1_OBJECT_free);
}

static void aia_cleanup(AUTHORITY_INFO_ACCESS **aia)
{
    AUTHORITY_INFO_ACCESS_free(*aia);
}

static bool has_ext(X509 *c, int nid)
{
    return X509_get_ext_by_NID(c, nid, -1) >= 0;
}

static bool ext_critical(X509 *c, int nid)
{
    int at = X509_get_ext_by_NID(c, nid, -1);
    return at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(c, at));
}

static bool self_issued(X509 *c)
{
    return X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0;
}

/* ---- basic fields ---- */

static iotsec_result check_version_and_serial(X509 *c)
{
    /* BR 7.1.1 and RFC 5280 4.1.2.1: extensions, hence every rule below, need v3. */
    IOTSEC_ENSURE(X509_get_version(c) == X509_VERSION_3, IOTSEC_ERR_AUTH,
                  "pki: policy: only v3 certificates are accepted");
    char hex[IOTSEC_PKI_SERIAL_HEX_MAX + 1];
    IOTSEC_GUARD(pki_serial_hex(X509_get0_serialNumber(c), hex));
    IOTSEC_ENSURE(X509_NAME_entry_count(X509_get_issuer_name(c)) > 0, IOTSEC_ERR_AUTH,
                  "pki: policy: empty issuer name (RFC 5280 4.1.2.4)");
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_signature_algorithm(X509 *c)
{
    const X509_ALGOR *outer = NULL;
    X509_get0_signature(NULL, &outer, c);
    IOTSEC_ENSURE(X509_ALGOR_cmp(outer, X509_get0_tbs_sigalg(c)) == 0, IOTSEC_ERR_AUTH,
                  "pki: policy: signature algorithm differs inside and outside the "
                  "signed part (RFC 5280 4.1.1.2)");
    int md = NID_undef, pk = NID_undef, secbits = 0;
    uint32_t flags = 0;
    bool known = X509_get_signature_info(c, &md, &pk, &secbits, &flags) == 1 &&
                 (flags & X509_SIG_INFO_VALID);
    IOTSEC_ENSURE(known, IOTSEC_ERR_AUTH, "pki: policy: unknown signature algorithm");
    /* MD5 and SHA-1 have practical collisions: a CA signature over them can be
     * transplanted onto a forged certificate. */
    IOTSEC_ENSURE(md != NID_md5 && md != NID_sha1 && md != NID_md5_sha1 && md != NID_md4 &&
                      secbits >= SIG_MIN_SECBITS,
                  IOTSEC_ERR_AUTH, "pki: policy: signature algorithm %s is too weak",
                  OBJ_nid2sn(X509_get_signature_nid(c)));
    IOTSEC_ENSURE(pk == NID_X9_62_id_ecPublicKey || pk == NID_rsaEncryption ||
                      pk == NID_rsassaPss || pk == NID_ED25519,
                  IOTSEC_ERR_AUTH, "pki: policy: signature algorithm %s is not accepted",
                  OBJ_nid2sn(X509_get_signature_nid(c)));
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_ec_key(EVP_PKEY *key)
{
    char encoding[32] = "", group[64] = "";
    bool named = EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                                sizeof(encoding), NULL) == 1 &&
                 strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
    bool has_group = EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), NULL) == 1;
    ERR_clear_error();
    /* BR 7.1.3.1.2: named curves only; explicit parameters have been a source of CVEs. */
    IOTSEC_ENSURE(named && has_group, IOTSEC_ERR_AUTH,
                  "pki: policy: EC key with explicit curve parameters");
    IOTSEC_ENSURE(strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0 ||
                      strcmp(group, "secp521r1") == 0,
                  IOTSEC_ERR_AUTH,
                  "pki: policy: EC curve %s is not accepted (P-256, P-384, "
                  "P-521)",
                  group);
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_public_key(X509 *c)
{
    EVP_PKEY *key = X509_get0_pubkey(c);
    if (key == NULL) {
        ERR_clear_error();
        IOTSEC_BAIL(IOTSEC_ERR_AUTH, "pki: policy: unreadable public key");
    }
    if (EVP_PKEY_is_a(key, "EC"))
        return check_ec_key(key);
    if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
        int bits = EVP_PKEY_get_bits(key);
        /* BR 6.1.5: at least 2048 bits and a multiple of 8. The upper bound keeps the cost
         * of one signature check small. */
        IOTSEC_ENSURE(bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS && bits % 8 == 0,
                      IOTSEC_ERR_AUTH,
                      "pki: policy: RSA key of %d bits (2048 to 8192, a multiple of 8)", bits);
        return IOTSEC_RESULT_OK;
    }
    if (EVP_PKEY_is_a(key, "ED25519"))
        return IOTSEC_RESULT_OK;
    const char *name = EVP_PKEY_get0_type_name(key);
    IOTSEC_BAIL(IOTSEC_ERR_AUTH, "pki: policy: %s keys are not accepted (EC, RSA, Ed25519)",
                name != NULL ? name : "unknown");
}

/* ---- extensions in general ---- */

/* Extensions that RFC 5280 allows to be critical and that OpenSSL processes. */
static bool may_be_critical(int nid)
{
    switch (nid) {
    case NID_basic_constraints:
    case NID_key_usage:
    case NID_ext_key_usage:
    case NID_subject_alt_name:
    case NID_name_constraints:
    case NID_policy_constraints:
    case NID_inhibit_any_policy:
    case NID_policy_mappings:
    case NID_certificate_policies:
        return true;
    default:
        return false;
    }
}

/* A known extension must decode completely with OpenSSL's own ASN.1 template. */
static iotsec_result check_ext_decodes(X509_EXTENSION *ext, int nid)
{
    const X509V3_EXT_METHOD *method = X509V3_EXT_get(ext);
    if (method == NULL || method->it == NULL)
        return IOTSEC_RESULT_OK;
    const ASN1_OCTET_STRING *value = X509_EXTENSION_get_data(ext);
    const unsigned char *p = ASN1_STRING_get0_data(value);
    long len = ASN1_STRING_length(value);
    const ASN1_ITEM *item = ASN1_ITEM_ptr(method->it);
    ASN1_VALUE *decoded = ASN1_item_d2i(NULL, &p, len, item);
    bool ok = decoded != NULL && p == ASN1_STRING_get0_data(value) + len;
    ASN1_item_free(decoded, item);
    ERR_clear_error();
    IOTSEC_ENSURE(ok, IOTSEC_ERR_AUTH, "pki: policy: malformed %s extension", OBJ_nid2sn(nid));
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_extensions(X509 *c)
{
    const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(c);
    int n = sk_X509_EXTENSION_num(exts);
    /* RFC 5280 4.1: Extensions ::= SEQUENCE SIZE (1..MAX); an empty list is malformed. */
    IOTSEC_ENSURE(exts == NULL || n > 0, IOTSEC_ERR_AUTH,
                  "pki: policy: empty extensions list (RFC 5280 4.1)");
    IOTSEC_ENSURE(n <= EXTENSIONS_MAX, IOTSEC_ERR_AUTH, "pki: policy: more than %d extensions",
                  EXTENSIONS_MAX);
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        const ASN1_OBJECT *oid = X509_EXTENSION_get_object(ext);
        int nid = OBJ_obj2nid(oid);
        /* RFC 5280 4.2: "A certificate MUST NOT include more than one instance of a
         * particular extension." Two could be read differently by two verifiers. */
        for (int j = 0; j < i; j++)
            IOTSEC_ENSURE(
                OBJ_cmp(oid, X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j))) != 0,
                IOTSEC_ERR_AUTH, "pki: policy: duplicate extension (RFC 5280 4.2)");
        IOTSEC_ENSURE(!X509_EXTENSION_get_critical(ext) || may_be_critical(nid), IOTSEC_ERR_AUTH,
                      "pki: policy: extension %s must not be critical",
                      nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
        IOTSEC_GUARD(check_ext_decodes(ext, nid));
    }
    /* RFC 5280 4.2.1.10 and 4.2.1.11: name and policy constraints MUST be critical. */
    IOTSEC_ENSURE(!has_ext(c, NID_name_constraints) || ext_critical(c, NID_name_constraints),
                  IOTSEC_ERR_AUTH,
                  "pki: policy: name constraints not marked critical "
                  "(RFC 5280 4.2.1.10)");
    IOTSEC_ENSURE(!has_ext(c, NID_policy_constraints) || ext_critical(c, NID_policy_constraints),
                  IOTSEC_ERR_AUTH,
                  "pki: policy: policy constraints not marked critical "
                  "(RFC 5280 4.2.1.11)");
    IOTSEC_ENSURE(!has_ext(c, NID_inhibit_any_policy) || ext_critical(c, NID_inhibit_any_policy),
                  IOTSEC_ERR_AUTH,
                  "pki: policy: inhibitAnyPolicy not marked critical "
                  "(RFC 5280 4.2.1.14)");
    return IOTSEC_RESULT_OK;
}

/* ---- key identifiers ---- */

static iotsec_result check_key_ids(X509 *c, X509 *issuer, enum pki_role role)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(c);
    /* RFC 5280 4.2.1.2: every CA certificate MUST carry an SKI. */
    IOTSEC_ENSURE(role == PKI_ROLE_LEAF || ski != NULL, IOTSEC_ERR_AUTH,
                  "pki: policy: CA certificate without a subject key identifier "
                  "(RFC 5280 4.2.1.2)");
    IOTSEC_ENSURE(ski == NULL || ASN1_STRING_length(ski) > 0, IOTSEC_ERR_AUTH,
                  "pki: policy: empty subject key identifier");

    bool self = issuer == NULL && self_issued(c);
    AUTHORITY_KEYID *akid IOTSEC_DEFER(akid_cleanup) =
        X509_get_ext_d2i(c, NID_authority_key_identifier, NULL, NULL);
    ERR_clear_error();
    /* RFC 5280 4.2.1.1: MUST be present except in a self-signed certificate. That holds
     * for a trust anchor too: one that is not self-issued (a cross-signed root or an
     * intermediate configured as anchor) is a non-conforming certificate without it. */
    if (akid == NULL) {
        IOTSEC_ENSURE(self, IOTSEC_ERR_AUTH,
                      "pki: policy: no authority key identifier (RFC 5280 4.2.1.1)");
        return IOTSEC_RESULT_OK;
    }
    /* BR 7.1.2.1.3 (for roots; we apply it to all): the keyIdentifier alone. Issuer and
     * serial would tie the certificate to one issuer certificate, not to its key. */
    IOTSEC_ENSURE(akid->keyid != NULL && ASN1_STRING_length(akid->keyid) > 0, IOTSEC_ERR_AUTH,
                  "pki: policy: authority key identifier without a keyIdentifier");
    IOTSEC_ENSURE(akid->issuer == NULL && akid->serial == NULL, IOTSEC_ERR_AUTH,
                  "pki: policy: authority key identifier with issuer and serial fields");
    const ASN1_OCTET_STRING *expected =
        issuer != NULL ? X509_get0_subject_key_id(issuer) : (self ? ski : NULL);
    IOTSEC_ENSURE(expected == NULL || ASN1_OCTET_STRING_cmp(akid->keyid, expected) == 0,
                  IOTSEC_ERR_AUTH,
                  "pki: policy: authority key identifier does not match the issuer's subject "
                  "key identifier");
    return IOTSEC_RESULT_OK;
}

/* ---- names ---- */

static bool printable_ascii(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return false;
    return n > 0;
}

/* local@domain: one '@', a printable local part, an LDH domain. With allow_domain, a bare
 * domain or ".domain" (the forms a name constraint may take) is accepted too. */
static bool email_valid(const unsigned char *p, size_t n, bool allow_domain)
{
    if (!printable_ascii(p, n))
        return false;
    const unsigned char *at = memchr(p, '@', n);
    if (at == NULL) {
        if (!allow_domain)
            return false;
        if (n > 1 && p[0] == '.') {
            p++;
            n--;
        }
        return pki_dns_name_valid((const char *)p, n, false);
    }
    size_t local = (size_t)(at - p);
    size_t domain = n - local - 1;
    if (local < 1 || local > EMAIL_LOCAL_MAX || memchr(at + 1, '@', domain) != NULL)
        return false;
    return pki_dns_name_valid((const char *)at + 1, domain, false);
}

static iotsec_result check_general_name(const GENERAL_NAME *gn)
{
    int type;
    const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &type);
    const unsigned char *p = s != NULL ? ASN1_STRING_get0_data(s) : NULL;
    size_t n = s != NULL ? (size_t)ASN1_STRING_length(s) : 0;
    switch (type) {
    case GEN_DNS:
        /* RFC 5280 4.2.1.6: preferred name syntax; a wildcard only as the whole leftmost
         * label (the CA/B BR definition of a Wildcard Domain Name). */
        IOTSEC_ENSURE(pki_dns_name_valid((const char *)p, n, true), IOTSEC_ERR_AUTH,
                      "pki: policy: malformed dNSName in the subject alternative name");
        return IOTSEC_RESULT_OK;
    case GEN_IPADD:
        IOTSEC_ENSURE(n == 4 || n == 16, IOTSEC_ERR_AUTH,
                      "pki: policy: malformed iPAddress in the subject alternative name");
        return IOTSEC_RESULT_OK;
    case GEN_EMAIL:
        IOTSEC_ENSURE(email_valid(p, n, false), IOTSEC_ERR_AUTH,
                      "pki: policy: malformed rfc822Name in the subject alternative name");
        return IOTSEC_RESULT_OK;
    case GEN_URI:
        IOTSEC_ENSURE(printable_ascii(p, n), IOTSEC_ERR_AUTH,
                      "pki: policy: malformed URI in the subject alternative name");
        return IOTSEC_RESULT_OK;
    default:
        return IOTSEC_RESULT_OK; /* directoryName, otherName, registeredID: opaque to us */
    }
}

static iotsec_result check_san(X509 *c)
{
    if (!has_ext(c, NID_subject_alt_name))
        return IOTSEC_RESULT_OK;
    GENERAL_NAMES *names IOTSEC_DEFER(general_names_cleanup) =
        X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    IOTSEC_ENSURE(names != NULL, IOTSEC_ERR_AUTH,
                  "pki: policy: malformed subject alternative name");
    int n = sk_GENERAL_NAME_num(names);
    IOTSEC_ENSURE(n >= 1 && n <= NAMES_MAX, IOTSEC_ERR_AUTH,
                  "pki: policy: subject alternative name with %d names (1 to %d)", n, NAMES_MAX);
    for (int i = 0; i < n; i++)
        IOTSEC_GUARD(check_general_name(sk_GENERAL_NAME_value(names, i)));
    /* RFC 5280 4.2.1.6: critical when the subject is empty; the CA/B BR: non-critical
     * otherwise, so that a verifier which reads the subject is not told to ignore it. */
    bool empty_subject = X509_NAME_entry_count(X509_get_subject_name(c)) == 0;
    IOTSEC_ENSURE(ext_critical(c, NID_subject_alt_name) == empty_subject, IOTSEC_ERR_AUTH,
                  empty_subject ? "pki: policy: empty subject with a non-critical subject "
                                  "alternative name (RFC 5280 4.2.1.6)"
                                : "pki: policy: critical subject alternative name with a "
                                  "non-empty subject");
    return IOTSEC_RESULT_OK;
}

/* An iPAddress constraint is address then mask (RFC 5280 4.2.1.10): the mask must be
 * contiguous ones then zeros, and the address may not have bits outside the mask. */
static bool ip_constraint_valid(const unsigned char *p, size_t n)
{
    if (n != 8 && n != 32)
        return false;
    size_t half = n / 2;
    bool zeros = false;
    for (size_t i = 0; i < half; i++) {
        unsigned char mask = p[half + i];
        if ((p[i] & (unsigned char)~mask) != 0)
            return false;
        for (int bit = 7; bit >= 0; bit--) {
            bool one = (mask >> bit) & 1;
            if (one && zeros)
                return false;
            zeros = zeros || !one;
        }
    }
    return true;
}

static iotsec_result check_subtree(const GENERAL_SUBTREE *st)
{
    /* RFC 5280 4.2.1.10: minimum MUST be zero, maximum MUST be absent. */
    IOTSEC_ENSURE(st->maximum == NULL &&
                      (st->minimum == NULL || ASN1_INTEGER_get(st->minimum) == 0),
                  IOTSEC_ERR_AUTH, "pki: policy: name constraint with minimum or maximum");
    int type;
    const ASN1_STRING *s = GENERAL_NAME_get0_value(st->base, &type);
    const unsigned char *p = s != NULL ? ASN1_STRING_get0_data(s) : NULL;
    size_t n = s != NULL ? (size_t)ASN1_STRING_length(s) : 0;
    bool ok;
    switch (type) {
    case GEN_DNS:
        /* "host.example.com" covers the host and its subdomains: no leading period, no
         * wildcard (RFC 5280 4.2.1.10). */
        ok = pki_dns_name_valid((const char *)p, n, false);
        break;
    case GEN_IPADD:
        ok = ip_constraint_valid(p, n);
        break;
    case GEN_EMAIL:
        ok = email_valid(p, n, true);
        break;
    case GEN_URI:
        ok = n > 1 && p[0] == '.' ? pki_dns_name_valid((const char *)p + 1, n - 1, false)
                                  : pki_dns_name_valid((const char *)p, n, false);
        break;
    case GEN_DIRNAME:
    case GEN_OTHERNAME:
        ok = true; /* OpenSSL matches these, or refuses the chain as unsupported */
        break;
    default:
        ok = false;
    }
    IOTSEC_ENSURE(ok, IOTSEC_ERR_AUTH, "pki: policy: malformed name constraint");
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_subtrees(pki_subtree_stack *list, int *total)
{
    if (list == NULL)
        return IOTSEC_RESULT_OK;
    int n = sk_GENERAL_SUBTREE_num(list);
    /* GeneralSubtrees ::= SEQUENCE SIZE (1..MAX): present means non-empty. */
    IOTSEC_ENSURE(n > 0, IOTSEC_ERR_AUTH, "pki: policy: empty list of name constraints");
    *total += n;
    IOTSEC_ENSURE(*total <= NAMES_MAX, IOTSEC_ERR_AUTH,
                  "pki: policy: more than %d name constraints", NAMES_MAX);
    for (int i = 0; i < n; i++)
        IOTSEC_GUARD(check_subtree(sk_GENERAL_SUBTREE_value(list, i)));
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_name_constraints(X509 *c, enum pki_role role)
{
    if (!has_ext(c, NID_name_constraints))
        return IOTSEC_RESULT_OK;
    /* RFC 5280 4.2.1.10: "MUST be used only in a CA certificate". */
    IOTSEC_ENSURE(role != PKI_ROLE_LEAF, IOTSEC_ERR_AUTH,
                  "pki: policy: name constraints in an end-entity certificate");
    NAME_CONSTRAINTS *nc IOTSEC_DEFER(name_constraints_cleanup) =
        X509_get_ext_d2i(c, NID_name_constraints, NULL, NULL);
    ERR_clear_error();
    IOTSEC_ENSURE(nc != NULL, IOTSEC_ERR_AUTH, "pki: policy: malformed name constraints");
    /* RFC 5280 4.2.1.10: "either the permittedSubtrees field or the excludedSubtrees
     * field MUST be present". */
    IOTSEC_ENSURE(nc->permittedSubtrees != NULL || nc->excludedSubtrees != NULL, IOTSEC_ERR_AUTH,
                  "pki: policy: name constraints without any subtree");
    int total = 0;
    IOTSEC_GUARD(check_subtrees(nc->permittedSubtrees, &total));
    IOTSEC_GUARD(check_subtrees(nc->excludedSubtrees, &total));
    return IOTSEC_RESULT_OK;
}

/* ---- other extensions ---- */

static iotsec_result check_aia(X509 *c)
{
    if (!has_ext(c, NID_info_access))
        return IOTSEC_RESULT_OK;
    AUTHORITY_INFO_ACCESS *aia IOTSEC_DEFER(aia_cleanup) =
        X509_get_ext_d2i(c, NID_info_access, NULL, NULL);
    ERR_clear_error();
    /* RFC 5280 4.2.2.1: SEQUENCE SIZE (1..MAX); the CA/B BR repeat it. */
    IOTSEC_ENSURE(aia != NULL && sk_ACCESS_DESCRIPTION_num(aia) > 0, IOTSEC_ERR_AUTH,
                  "pki: policy: malformed or empty authority information access");
    return IOTSEC_RESULT_OK;
}

/* A self-signed anchor has no EKU (BR 7.1.2.1.2); an intermediate's is checked against
 * the purpose in check_intermediate_purpose(). */
static iotsec_result check_ca_eku(X509 *c, enum pki_role role)
{
    if (!has_ext(c, NID_ext_key_usage))
        return IOTSEC_RESULT_OK;
    IOTSEC_ENSURE(!(role == PKI_ROLE_ANCHOR && self_issued(c)), IOTSEC_ERR_AUTH,
                  "pki: policy: a root certificate with an extended key usage (BR 7.1.2.1.2)");
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_ca(X509 *c, enum pki_role role)
{
    uint32_t flags = X509_get_extension_flags(c);
    /* RFC 5280 4.2.1.9: a CA MUST carry basicConstraints, critical, with cA TRUE. */
    IOTSEC_ENSURE((flags & EXFLAG_BCONS) && (flags & EXFLAG_CA), IOTSEC_ERR_AUTH,
                  "pki: policy: issuer certificate without basicConstraints CA:TRUE");
    IOTSEC_ENSURE(ext_critical(c, NID_basic_constraints), IOTSEC_ERR_AUTH,
                  "pki: policy: basicConstraints of a CA not marked critical (RFC 5280 4.2.1.9)");
    /* RFC 5280 4.2.1.3: a key that signs certificates has keyUsage with keyCertSign. */
    IOTSEC_ENSURE((flags & EXFLAG_KUSAGE) && (X509_get_key_usage(c) & KU_KEY_CERT_SIGN),
                  IOTSEC_ERR_AUTH, "pki: policy: CA certificate without keyUsage keyCertSign");
    IOTSEC_ENSURE(X509_NAME_entry_count(X509_get_subject_name(c)) > 0, IOTSEC_ERR_AUTH,
                  "pki: policy: CA certificate with an empty subject (RFC 5280 4.1.2.6)");
    return check_ca_eku(c, role);
}

iotsec_result pki_policy_check_cert(X509 *cert, X509 *issuer, enum pki_role role)
{
    IOTSEC_GUARD(check_version_and_serial(cert));
    IOTSEC_GUARD(check_signature_algorithm(cert));
    IOTSEC_GUARD(check_public_key(cert));
    IOTSEC_GUARD(check_extensions(cert));
    IOTSEC_GUARD(check_key_ids(cert, issuer, role));
    IOTSEC_GUARD(check_san(cert));
    IOTSEC_GUARD(check_name_constraints(cert, role));
    IOTSEC_GUARD(check_aia(cert));
    if (role != PKI_ROLE_LEAF)
        IOTSEC_GUARD(check_ca(cert, role));
    return IOTSEC_RESULT_OK;
}

/* ---- the leaf ---- */

static iotsec_result check_leaf_eku(X509 *leaf, enum pki_purpose purpose)
{
    const char *want = purpose == PKI_PURPOSE_CLIENT ? "clientAuth" : "serverAuth";
    /* BR 7.1.2.7.6: present and non-critical. RFC 5280 would treat a missing EKU as "any
     * purpose"; a device certificate valid for everything is not one we want. */
    IOTSEC_ENSURE(has_ext(leaf, NID_ext_key_usage), IOTSEC_ERR_AUTH,
                  "pki: policy: end-entity certificate without an extended key usage");
    IOTSEC_ENSURE(!ext_critical(leaf, NID_ext_key_usage), IOTSEC_ERR_AUTH,
                  "pki: policy: critical extended key usage in an end-entity certificate "
                  "(BR 7.1.2.7.6)");
    EXTENDED_KEY_USAGE *eku IOTSEC_DEFER(eku_cleanup) =
        X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
    ERR_clear_error();
    IOTSEC_ENSURE(eku != NULL && sk_ASN1_OBJECT_num(eku) > 0, IOTSEC_ERR_AUTH,
                  "pki: policy: empty extended key usage (RFC 5280 4.2.1.12)");
    int want_nid = purpose == PKI_PURPOSE_CLIENT ? NID_client_auth : NID_server_auth;
    bool found = false;
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
        int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
        /* BR 7.1.2.7.10: anyExtendedKeyUsage MUST NOT be present in a leaf. */
        IOTSEC_ENSURE(nid != NID_anyExtendedKeyUsage, IOTSEC_ERR_AUTH,
                      "pki: policy: anyExtendedKeyUsage in an end-entity certificate");
        found = found || nid == want_nid;
    }
    IOTSEC_ENSURE(found, IOTSEC_ERR_AUTH, "pki: policy: the extended key usage does not include %s",
                  want);
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_leaf_constraints(X509 *leaf)
{
    uint32_t flags = X509_get_extension_flags(leaf);
    /* BR 7.1.2.7.8: cA MUST be FALSE. A CA certificate in leaf position could be used to
     * issue more certificates; we refuse even the RFC 5280-valid "CA as leaf" case. */
    IOTSEC_ENSURE(!(flags & EXFLAG_CA), IOTSEC_ERR_AUTH,
                  "pki: policy: end-entity certificate with basicConstraints CA:TRUE");
    if (!(flags & EXFLAG_KUSAGE))
        return IOTSEC_RESULT_OK;
    uint32_t ku = X509_get_key_usage(leaf);
    IOTSEC_ENSURE(!(ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)), IOTSEC_ERR_AUTH,
                  "pki: policy: end-entity certificate with keyCertSign or cRLSign");
    /* TLS 1.3 authenticates by signature (CertificateVerify): without digitalSignature
     * the key may not be used for it (RFC 5280 4.2.1.3, RFC 8446 4.4.2.2). */
    IOTSEC_ENSURE(ku & KU_DIGITAL_SIGNATURE, IOTSEC_ERR_AUTH,
                  "pki: policy: end-entity key usage without digitalSignature");
    return IOTSEC_RESULT_OK;
}

/* BR 7.1.4.3: a CN in a server certificate repeats one SAN entry exactly: the dNSName
 * byte for byte, or the IP address in its canonical text (dotted quad, RFC 5952). A CN
 * that says something else would be trusted by a verifier that still reads CNs. */
static bool cn_in_san(const ASN1_STRING *cn, GENERAL_NAMES *names)
{
    const unsigned char *p = ASN1_STRING_get0_data(cn);
    size_t n = (size_t)ASN1_STRING_length(cn);
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        int type;
        const ASN1_STRING *v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i), &type);
        if (type == GEN_DNS && (size_t)ASN1_STRING_length(v) == n &&
            memcmp(ASN1_STRING_get0_data(v), p, n) == 0)
            return true;
        if (type != GEN_IPADD)
            continue;
        char text[INET6_ADDRSTRLEN];
        int len = ASN1_STRING_length(v);
        int family = len == 4 ? AF_INET : AF_INET6;
        if ((len == 4 || len == 16) &&
            inet_ntop(family, ASN1_STRING_get0_data(v), text, sizeof(text)) != NULL &&
            strlen(text) == n && memcmp(text, p, n) == 0)
            return true;
    }
    return false;
}

static iotsec_result check_server_names(X509 *leaf)
{
    GENERAL_NAMES *names IOTSEC_DEFER(general_names_cleanup) =
        X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    /* CA/B BR: a server is named in its SAN, never only in its CN (limbo's no-san). */
    IOTSEC_ENSURE(names != NULL, IOTSEC_ERR_AUTH,
                  "pki: policy: server certificate without a subject alternative name");
    const X509_NAME *subject = X509_get_subject_name(leaf);
    for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
        const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        IOTSEC_ENSURE(cn_in_san(cn, names), IOTSEC_ERR_AUTH,
                      "pki: policy: the server certificate's CN is not one of its SAN names "
                      "(BR 7.1.4.3)");
    }
    return IOTSEC_RESULT_OK;
}

/* No wildcard names in a leaf: our servers have fixed names, and without the Public
 * Suffix List we could not tell "*.example.com" from "*.co.uk". */
static iotsec_result check_no_wildcards(X509 *leaf)
{
    GENERAL_NAMES *names IOTSEC_DEFER(general_names_cleanup) =
        X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    ERR_clear_error();
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        int type;
        const ASN1_STRING *v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i), &type);
        IOTSEC_ENSURE(type != GEN_DNS || memchr(ASN1_STRING_get0_data(v), '*',
                                                (size_t)ASN1_STRING_length(v)) == NULL,
                      IOTSEC_ERR_AUTH, "pki: policy: wildcard name in an end-entity certificate");
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_policy_check_leaf(X509 *leaf, enum pki_purpose purpose)
{
    IOTSEC_GUARD(check_leaf_constraints(leaf));
    IOTSEC_GUARD(check_leaf_eku(leaf, purpose));
    IOTSEC_GUARD(check_no_wildcards(leaf));
    if (purpose == PKI_PURPOSE_SERVER)
        IOTSEC_GUARD(check_server_names(leaf));
    return IOTSEC_RESULT_OK;
}

/* ---- the chain ---- */

/* An intermediate's EKU, when present, must include the purpose (OpenSSL also accepts
 * anyExtendedKeyUsage there; we do not). */
static iotsec_result check_intermediate_purpose(X509 *c, enum pki_purpose purpose)
{
    if (!has_ext(c, NID_ext_key_usage))
        return IOTSEC_RESULT_OK;
    uint32_t xku = X509_get_extended_key_usage(c);
    uint32_t want = purpose == PKI_PURPOSE_CLIENT ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
    IOTSEC_ENSURE(xku & want, IOTSEC_ERR_AUTH,
                  "pki: policy: a CA's extended key usage does not include the purpose");
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_policy_check_chain(pki_x509_stack *chain, enum pki_purpose purpose)
{
    int n = sk_X509_num(chain);
    IOTSEC_ENSURE(n >= 1, IOTSEC_ERR_AUTH, "pki: policy: empty chain");
    for (int i = 0; i < n; i++) {
        X509 *c = sk_X509_value(chain, i);
        X509 *issuer = i + 1 < n ? sk_X509_value(chain, i + 1) : NULL;
        enum pki_role role = i == 0       ? PKI_ROLE_LEAF
                             : i == n - 1 ? PKI_ROLE_ANCHOR
                                          : PKI_ROLE_INTERMEDIATE;
        iotsec_result r = pki_policy_check_cert(c, issuer, role);
        if (iotsec_ok(r) && role != PKI_ROLE_LEAF)
            r = check_intermediate_purpose(c, purpose);
        if (!iotsec_ok(r)) {
            char message[256];
            snprintf(message, sizeof(message), "%s", iotsec_error_message());
            IOTSEC_BAIL(iotsec_error_code(), "%s (depth %d)", message, i);
        }
    }
    return IOTSEC_RESULT_OK;
}
