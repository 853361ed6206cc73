/*
 * Our certificate profiles: which extensions a root, an intermediate, a device and a
 * server certificate carry, with which criticality (docs/pki.md has the table).
 *
 * Extensions are built from OpenSSL's typed structures (BASIC_CONSTRAINTS, bit strings,
 * stacks of OIDs, GENERAL_NAMES), never from OpenSSL's text configuration syntax: a
 * device id or host name pasted into "DNS:%s,..." could inject a second name or option,
 * a structure cannot.
 *
 * The subject key identifier is RFC 7093 section 2 method 1, the leftmost 160 bits of the
 * SHA-256 of the subjectPublicKey bits, rather than RFC 5280's SHA-1: SHA-1 has no other
 * use left in this project, and the identifier only has to be unique per key.
 */
#include "pki_internal.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <string.h>

#define SKI_LEN         20
#define SECONDS_PER_DAY 86400
/* Redraws of a serial whose first byte is zero after clearing the top bit: each round
 * fails with probability 1/128, so 32 rounds never all fail in practice. */
#define SERIAL_ATTEMPTS 32

iotsec_result pki_random_serial(ASN1_INTEGER **out)
{
    uint8_t bytes[IOTSEC_PKI_SERIAL_LEN];
    for (int attempt = 0; attempt < SERIAL_ATTEMPTS; attempt++) {
        IOTSEC_GUARD(iotsec_random(bytes, sizeof(bytes)));
        /* Positive (top bit clear) and exactly 16 octets (first byte not zero, which DER's
         * minimal encoding would drop): 127 random bits, RFC 5280 asks for >= 64. */
        bytes[0] &= 0x7f;
        if (bytes[0] == 0)
            continue;
        BIGNUM *bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
        IOTSEC_ENSURE_ALLOC(bn);
        ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        IOTSEC_ENSURE_ALLOC(serial);
        *out = serial;
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_BAIL(IOTSEC_ERR_CRYPTO, "pki: the random generator keeps returning zero bytes");
}

iotsec_result pki_name_cn(const char *cn, X509_NAME **out)
{
    X509_NAME *name IOTSEC_DEFER(pki_name_cleanup) = X509_NAME_new();
    IOTSEC_ENSURE_ALLOC(name);
    /* MBSTRING_UTF8 under OpenSSL 3's default mask ("utf8only") encodes a UTF8String,
     * what RFC 5280 4.1.2.4 asks of new certificates. */
    IOTSEC_GUARD_OSSL(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                 (const unsigned char *)cn, -1, -1, 0),
                      IOTSEC_ERR_INVALID_ARG, "pki: invalid common name");
    *out = name;
    name = NULL;
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_validity(time_t now, uint32_t days, time_t *not_before, time_t *not_after)
{
    IOTSEC_ENSURE(now > IOTSEC_PKI_BACKDATE_SECONDS, IOTSEC_ERR_INVALID_ARG,
                  "pki: issuance time %lld is not a plausible clock", (long long)now);
    IOTSEC_ENSURE(days >= 1 && days <= IOTSEC_PKI_VALIDITY_DAYS_MAX, IOTSEC_ERR_INVALID_ARG,
                  "pki: validity of %u days is outside 1..%d", days, IOTSEC_PKI_VALIDITY_DAYS_MAX);
    *not_before = now - IOTSEC_PKI_BACKDATE_SECONDS;
    *not_after = now + (time_t)days * SECONDS_PER_DAY;
    return IOTSEC_RESULT_OK;
}

/* ---- extensions ---- */

static iotsec_result add_ext(X509 *x, int nid, void *value, bool critical, const char *what)
{
    IOTSEC_GUARD_OSSL(X509_add1_ext_i2d(x, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT),
                      IOTSEC_ERR_CRYPTO, "pki: adding the %s extension", what);
    return IOTSEC_RESULT_OK;
}

static iotsec_result add_basic_constraints(X509 *x, enum pki_profile profile)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    IOTSEC_ENSURE_ALLOC(bc);
    iotsec_result r = IOTSEC_RESULT_OK;
    if (profile == PKI_PROFILE_ROOT || profile == PKI_PROFILE_INTERMEDIATE) {
        bc->ca = 0xff; /* DER TRUE */
        /* A root may sign one level of intermediates, an intermediate only leaves. */
        bc->pathlen = ASN1_INTEGER_new();
        if (bc->pathlen == NULL ||
            ASN1_INTEGER_set(bc->pathlen, profile == PKI_PROFILE_ROOT ? 1 : 0) != 1) {
            iotsec_error_set(IOTSEC_ERR_NOMEM, "pki: out of memory");
            r = IOTSEC_RESULT_ERR;
        }
    }
    if (iotsec_ok(r))
        r = add_ext(x, NID_basic_constraints, bc, true, "basicConstraints");
    BASIC_CONSTRAINTS_free(bc);
    return r;
}

static iotsec_result add_key_usage(X509 *x, enum pki_profile profile)
{
    /* RFC 5280 4.2.1.3 bit numbers. */
    enum { BIT_DIGITAL_SIGNATURE = 0, BIT_KEY_CERT_SIGN = 5, BIT_CRL_SIGN = 6 };
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    IOTSEC_ENSURE_ALLOC(ku);
    bool ca = profile == PKI_PROFILE_ROOT || profile == PKI_PROFILE_INTERMEDIATE;
    int ok = ca ? ASN1_BIT_STRING_set_bit(ku, BIT_KEY_CERT_SIGN, 1) &&
                      ASN1_BIT_STRING_set_bit(ku, BIT_CRL_SIGN, 1)
                : ASN1_BIT_STRING_set_bit(ku, BIT_DIGITAL_SIGNATURE, 1);
    iotsec_result r = IOTSEC_RESULT_OK;
    if (!ok) {
        iotsec_error_set(IOTSEC_ERR_NOMEM, "pki: out of memory");
        r = IOTSEC_RESULT_ERR;
    }
    if (iotsec_ok(r))
        r = add_ext(x, NID_key_usage, ku, true, "keyUsage");
    ASN1_BIT_STRING_free(ku);
    return r;
}

static iotsec_result add_eku(X509 *x, int purpose_nid)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    IOTSEC_ENSURE_ALLOC(eku);
    iotsec_result r = IOTSEC_RESULT_OK;
    if (sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(purpose_nid)) <= 0) {
        iotsec_error_set(IOTSEC_ERR_NOMEM, "pki: out of memory");
        r = IOTSEC_RESULT_ERR;
    }
    /* Non-critical, as CA/Browser Forum BR 7.1.2.7.6 and most verifiers expect. */
    if (iotsec_ok(r))
        r = add_ext(x, NID_ext_key_usage, eku, false, "extKeyUsage");
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return r;
}

static iotsec_result key_identifier(X509 *x, ASN1_OCTET_STRING **out)
{
    const unsigned char *bits;
    int bits_len;
    IOTSEC_GUARD_OSSL(X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, X509_get_X509_PUBKEY(x)),
                      IOTSEC_ERR_CRYPTO, "pki: reading the subject public key");
    uint8_t digest[IOTSEC_SHA256_LEN];
    IOTSEC_GUARD(iotsec_sha256(iotsec_slice_make(bits, (size_t)bits_len), digest));
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    IOTSEC_ENSURE_ALLOC(id);
    if (ASN1_OCTET_STRING_set(id, digest, SKI_LEN) != 1) {
        ASN1_OCTET_STRING_free(id);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "pki: out of memory");
    }
    *out = id;
    return IOTSEC_RESULT_OK;
}

static iotsec_result add_key_ids(X509 *x, const ASN1_OCTET_STRING *issuer_key_id)
{
    ASN1_OCTET_STRING *ski = NULL;
    IOTSEC_GUARD(key_identifier(x, &ski));
    iotsec_result r = add_ext(x, NID_subject_key_identifier, ski, false, "subjectKeyIdentifier");

    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (iotsec_ok(r) && akid == NULL) {
        iotsec_error_set(IOTSEC_ERR_NOMEM, "pki: out of memory");
        r = IOTSEC_RESULT_ERR;
    }
    /* A root names itself: its AKI is its own SKI (x509-limbo's root-with-aki-ski-mismatch
     * is what a verifier checks). Only the keyIdentifier field: CA/B BR 7.1.2.1.3. */
    if (iotsec_ok(r)) {
        akid->keyid = ASN1_OCTET_STRING_dup(issuer_key_id != NULL ? issuer_key_id : ski);
        if (akid->keyid == NULL) {
            iotsec_error_set(IOTSEC_ERR_NOMEM, "pki: out of memory");
            r = IOTSEC_RESULT_ERR;
        }
    }
    if (iotsec_ok(r))
        r = add_ext(x, NID_authority_key_identifier, akid, false, "authorityKeyIdentifier");
    AUTHORITY_KEYID_free(akid);
    ASN1_OCTET_STRING_free(ski);
    return r;
}

/* ---- the template ---- */

static iotsec_result set_fields(X509 *x, const struct pki_template_params *p)
{
    IOTSEC_GUARD_OSSL(X509_set_version(x, X509_VERSION_3), IOTSEC_ERR_CRYPTO, "pki: version");
    ASN1_INTEGER *serial IOTSEC_DEFER(pki_asn1_int_cleanup) = NULL;
    IOTSEC_GUARD(pki_random_serial(&serial));
    IOTSEC_GUARD_OSSL(X509_set_serialNumber(x, serial), IOTSEC_ERR_CRYPTO, "pki: serial");
    IOTSEC_GUARD_OSSL(X509_set_issuer_name(x, p->issuer), IOTSEC_ERR_CRYPTO, "pki: issuer");
    IOTSEC_GUARD_OSSL(X509_set_subject_name(x, p->subject), IOTSEC_ERR_CRYPTO, "pki: subject");
    IOTSEC_ENSURE(ASN1_TIME_set(X509_getm_notBefore(x), p->not_before) != NULL &&
                      ASN1_TIME_set(X509_getm_notAfter(x), p->not_after) != NULL,
                  IOTSEC_ERR_INVALID_ARG, "pki: validity period cannot be encoded");
    IOTSEC_GUARD_OSSL(X509_set_pubkey(x, p->subject_key), IOTSEC_ERR_CRYPTO, "pki: public key");
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_template_new(const struct pki_template_params *p, X509 **out)
{
    X509 *x IOTSEC_DEFER(pki_x509_cleanup) = X509_new();
    IOTSEC_ENSURE_ALLOC(x);
    IOTSEC_GUARD(set_fields(x, p));
    IOTSEC_GUARD(add_basic_constraints(x, p->profile));
    IOTSEC_GUARD(add_key_usage(x, p->profile));
    if (p->profile == PKI_PROFILE_DEVICE)
        IOTSEC_GUARD(add_eku(x, NID_client_auth));
    if (p->profile == PKI_PROFILE_SERVER) {
        IOTSEC_GUARD(add_eku(x, NID_server_auth));
        IOTSEC_ENSURE(p->san != NULL, IOTSEC_ERR_INVALID_ARG, "pki: a server needs names");
        /* RFC 5280 4.2.1.6: critical exactly when the subject is empty. */
        bool empty_subject = X509_NAME_entry_count(p->subject) == 0;
        IOTSEC_GUARD(add_ext(x, NID_subject_alt_name, p->san, empty_subject, "subjectAltName"));
    }
    IOTSEC_GUARD(add_key_ids(x, p->issuer_key_id));
    *out = x;
    x = NULL;
    return IOTSEC_RESULT_OK;
}
