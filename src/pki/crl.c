/*
 * Certificate revocation lists: building ours and checking the shape of any we load.
 *
 * A CRL is rebuilt whole from the registry's list of revoked serials each time (there are
 * no delta CRLs): v2, signed by the CA that issued the certificates, with the CA's key id
 * (AKI, RFC 5280 5.2.1), a CRL number that the caller increases every time (5.2.3), and
 * a nextUpdate by which a fresh one must exist. Verifiers treat a CRL past its nextUpdate
 * as no CRL at all and refuse every certificate (fail closed), so the server that owns the
 * registry must re-issue well before then.
 *
 * The reason code is left out for "unspecified", as RFC 5280 5.3.1 asks. Entries are
 * sorted by serial and a serial may appear once.
 */
#include "pki_internal.h"

#include <openssl/err.h>

#define CRL_NEXT_UPDATE_MAX (366u * 86400u)
/* A CRL of a million entries is ~40 MB: far beyond a fleet's needs and our parse limit. */
#define CRL_ENTRIES_MAX 250000

static void revoked_cleanup(X509_REVOKED **r)
{
    X509_REVOKED_free(*r);
}

static void time_cleanup(ASN1_TIME **t)
{
    ASN1_TIME_free(*t);
}

static bool reason_known(enum iotsec_pki_crl_reason reason)
{
    switch (reason) {
    case IOTSEC_PKI_REASON_UNSPECIFIED:
    case IOTSEC_PKI_REASON_KEY_COMPROMISE:
    case IOTSEC_PKI_REASON_CA_COMPROMISE:
    case IOTSEC_PKI_REASON_AFFILIATION_CHANGED:
    case IOTSEC_PKI_REASON_SUPERSEDED:
    case IOTSEC_PKI_REASON_CESSATION_OF_OPERATION:
    case IOTSEC_PKI_REASON_PRIVILEGE_WITHDRAWN:
        return true;
    }
    return false;
}

static iotsec_result add_reason(X509_REVOKED *rev, enum iotsec_pki_crl_reason reason)
{
    if (reason == IOTSEC_PKI_REASON_UNSPECIFIED)
        return IOTSEC_RESULT_OK;
    ASN1_ENUMERATED *code = ASN1_ENUMERATED_new();
    IOTSEC_ENSURE_ALLOC(code);
    int ok = ASN1_ENUMERATED_set(code, (long)reason) == 1 &&
             X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, code, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_ENUMERATED_free(code);
    if (!ok) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "pki: CRL reason code");
        return IOTSEC_RESULT_ERR;
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result add_entry(X509_CRL *crl, const struct iotsec_pki_revoked *e, time_t now)
{
    IOTSEC_ENSURE(reason_known(e->reason), IOTSEC_ERR_INVALID_ARG,
                  "pki: CRL: unsupported reason code %d", (int)e->reason);
    IOTSEC_ENSURE(e->revoked_at > 0 && e->revoked_at <= now, IOTSEC_ERR_INVALID_ARG,
                  "pki: CRL: revocation time of serial %.40s is not before thisUpdate",
                  e->serial != NULL ? e->serial : "(none)");
    ASN1_INTEGER *serial IOTSEC_DEFER(pki_asn1_int_cleanup) = NULL;
    IOTSEC_GUARD(pki_serial_from_hex(e->serial, &serial));
    ASN1_TIME *when IOTSEC_DEFER(time_cleanup) = ASN1_TIME_set(NULL, e->revoked_at);
    IOTSEC_ENSURE(when != NULL, IOTSEC_ERR_INVALID_ARG, "pki: CRL: revocation time out of range");
    X509_REVOKED *rev IOTSEC_DEFER(revoked_cleanup) = X509_REVOKED_new();
    IOTSEC_ENSURE_ALLOC(rev);
    IOTSEC_GUARD_OSSL(X509_REVOKED_set_serialNumber(rev, serial), IOTSEC_ERR_CRYPTO,
                      "pki: CRL serial");
    IOTSEC_GUARD_OSSL(X509_REVOKED_set_revocationDate(rev, when), IOTSEC_ERR_CRYPTO,
                      "pki: CRL revocation date");
    IOTSEC_GUARD(add_reason(rev, e->reason));
    IOTSEC_GUARD_OSSL(X509_CRL_add0_revoked(crl, rev), IOTSEC_ERR_NOMEM, "pki: CRL entry");
    rev = NULL;
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_unique_serials(X509_CRL *crl)
{
    STACK_OF(X509_REVOKED) *list = X509_CRL_get_REVOKED(crl);
    for (int i = 1; i < sk_X509_REVOKED_num(list); i++) {
        const ASN1_INTEGER *a = X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(list, i - 1));
        const ASN1_INTEGER *b = X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(list, i));
        IOTSEC_ENSURE(ASN1_INTEGER_cmp(a, b) != 0, IOTSEC_ERR_INVALID_ARG,
                      "pki: CRL: a serial number is listed twice");
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result set_times(X509_CRL *crl, const struct iotsec_pki_crl_params *params)
{
    IOTSEC_ENSURE(params->this_update > 0, IOTSEC_ERR_INVALID_ARG,
                  "pki: CRL: thisUpdate is not a plausible time");
    IOTSEC_ENSURE(params->next_update_seconds >= 1 &&
                      params->next_update_seconds <= CRL_NEXT_UPDATE_MAX,
                  IOTSEC_ERR_INVALID_ARG, "pki: CRL: nextUpdate must be 1 s to 366 days ahead");
    ASN1_TIME *this_update IOTSEC_DEFER(time_cleanup) = ASN1_TIME_set(NULL, params->this_update);
    ASN1_TIME *next_update IOTSEC_DEFER(time_cleanup) =
        ASN1_TIME_set(NULL, params->this_update + (time_t)params->next_update_seconds);
    IOTSEC_ENSURE(this_update != NULL && next_update != NULL, IOTSEC_ERR_INVALID_ARG,
                  "pki: CRL: times out of range");
    IOTSEC_GUARD_OSSL(X509_CRL_set1_lastUpdate(crl, this_update), IOTSEC_ERR_CRYPTO,
                      "pki: CRL thisUpdate");
    IOTSEC_GUARD_OSSL(X509_CRL_set1_nextUpdate(crl, next_update), IOTSEC_ERR_CRYPTO,
                      "pki: CRL nextUpdate");
    return IOTSEC_RESULT_OK;
}

static iotsec_result add_crl_extensions(X509_CRL *crl, const struct iotsec_pki_ca *ca,
                                        uint64_t number)
{
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    IOTSEC_ENSURE_ALLOC(akid);
    akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(ca->cert));
    int ok = akid->keyid != NULL && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid,
                                                          0, X509V3_ADD_DEFAULT) == 1;
    AUTHORITY_KEYID_free(akid);
    IOTSEC_ENSURE(ok, IOTSEC_ERR_CRYPTO, "pki: CRL authority key identifier");

    ASN1_INTEGER *n IOTSEC_DEFER(pki_asn1_int_cleanup) = ASN1_INTEGER_new();
    IOTSEC_ENSURE_ALLOC(n);
    IOTSEC_GUARD_OSSL(ASN1_INTEGER_set_uint64(n, number), IOTSEC_ERR_CRYPTO, "pki: CRL number");
    IOTSEC_GUARD_OSSL(X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, X509V3_ADD_DEFAULT),
                      IOTSEC_ERR_CRYPTO, "pki: CRL number extension");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_crl_build(const struct iotsec_pki_ca *ca,
                                   const struct iotsec_pki_crl_params *params,
                                   const struct iotsec_pki_revoked *entries, size_t count,
                                   struct iotsec_buf *crl_pem)
{
    IOTSEC_ENSURE(ca != NULL && params != NULL, IOTSEC_ERR_INVALID_ARG, "pki: CRL: missing CA");
    IOTSEC_ENSURE(count == 0 || entries != NULL, IOTSEC_ERR_INVALID_ARG,
                  "pki: CRL: missing entries");
    IOTSEC_ENSURE(count <= CRL_ENTRIES_MAX, IOTSEC_ERR_TOO_LARGE,
                  "pki: CRL: %zu entries exceed the limit of %d", count, CRL_ENTRIES_MAX);
    X509_CRL *crl IOTSEC_DEFER(pki_crl_cleanup) = X509_CRL_new();
    IOTSEC_ENSURE_ALLOC(crl);
    IOTSEC_GUARD_OSSL(X509_CRL_set_version(crl, X509_CRL_VERSION_2), IOTSEC_ERR_CRYPTO,
                      "pki: CRL version");
    IOTSEC_GUARD_OSSL(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)),
                      IOTSEC_ERR_CRYPTO, "pki: CRL issuer");
    IOTSEC_GUARD(set_times(crl, params));
    for (size_t i = 0; i < count; i++)
        IOTSEC_GUARD(add_entry(crl, &entries[i], params->this_update));
    IOTSEC_GUARD_OSSL(X509_CRL_sort(crl), IOTSEC_ERR_CRYPTO, "pki: sorting the CRL");
    IOTSEC_GUARD(check_unique_serials(crl));
    IOTSEC_GUARD(add_crl_extensions(crl, ca, params->crl_number));

    X509_CRL *signed_crl IOTSEC_DEFER(pki_crl_cleanup) = NULL;
    IOTSEC_GUARD(pki_sign_crl(&ca->signer, crl, &signed_crl));
    IOTSEC_GUARD(pki_crl_check_profile(signed_crl));
    return pki_crl_to_pem(signed_crl, crl_pem);
}

iotsec_result pki_crl_check_profile(X509_CRL *crl)
{
    IOTSEC_ENSURE(X509_CRL_get_version(crl) == X509_CRL_VERSION_2, IOTSEC_ERR_FORMAT,
                  "pki: CRL: only v2 CRLs are accepted");
    IOTSEC_ENSURE(X509_CRL_get0_nextUpdate(crl) != NULL, IOTSEC_ERR_FORMAT,
                  "pki: CRL: no nextUpdate (a CRL must say when it goes stale)");
    int at = X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1);
    IOTSEC_ENSURE(at >= 0, IOTSEC_ERR_FORMAT,
                  "pki: CRL: no CRL number (RFC 5280 5.2.3 makes it mandatory)");
    IOTSEC_ENSURE(X509_CRL_get_ext_by_NID(crl, NID_crl_number, at) < 0, IOTSEC_ERR_FORMAT,
                  "pki: CRL: two CRL number extensions");
    IOTSEC_ENSURE(!X509_EXTENSION_get_critical(X509_CRL_get_ext(crl, at)), IOTSEC_ERR_FORMAT,
                  "pki: CRL: the CRL number is marked critical (RFC 5280 5.2.3)");
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    bool ok = number != NULL && ASN1_STRING_type(number) == V_ASN1_INTEGER;
    ASN1_INTEGER_free(number);
    ERR_clear_error();
    IOTSEC_ENSURE(ok, IOTSEC_ERR_FORMAT, "pki: CRL: malformed or negative CRL number");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_crl_number(struct iotsec_slice crl_in, uint64_t *number)
{
    X509_CRL *crl IOTSEC_DEFER(pki_crl_cleanup) = NULL;
    IOTSEC_GUARD(pki_crl_parse(crl_in, &crl));
    IOTSEC_GUARD(pki_crl_check_profile(crl));
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    uint64_t value = 0;
    bool ok = n != NULL && ASN1_INTEGER_get_uint64(&value, n) == 1;
    ASN1_INTEGER_free(n);
    ERR_clear_error();
    IOTSEC_ENSURE(ok, IOTSEC_ERR_FORMAT, "pki: CRL: the CRL number does not fit in 64 bits");
    *number = value;
    return IOTSEC_RESULT_OK;
}
