/*
 * Signing a certificate or CRL with a key OpenSSL does not hold.
 *
 * X509_sign() needs an EVP_PKEY with its private half, which a PKCS#11 key is not, and
 * OpenSSL 3.0 has no public setter for the signature fields of an X509 or X509_CRL. So the
 * "to be signed" structure is assembled here from the template's parts, each encoded by
 * OpenSSL (names, times, key, extensions, entries), inside a few DER headers written by
 * hand; the signer signs those bytes; and the outer SEQUENCE { tbs, algorithm, signature }
 * is parsed back with d2i, which also proves the assembly is well-formed DER OpenSSL
 * reads the way we meant.
 *
 * The result is then verified with the signer's public key. That catches a callback that
 * signs with another key (a token label pointing at the wrong object) and, for in-memory
 * keys, a fault during ECDSA signing, before a bad certificate leaves the CA.
 *
 * The algorithm is fixed: ecdsa-with-SHA256, whose AlgorithmIdentifier has no
 * parameters (RFC 5758 3.2).
 */
#include "pki_internal.h"

#include <openssl/err.h>
#include <string.h>

#define DER_SEQUENCE   0x30
#define DER_INTEGER    0x02
#define DER_BIT_STRING 0x03
#define DER_CTX_0      0xa0 /* [0] EXPLICIT, constructed */
#define DER_CTX_3      0xa3 /* [3] EXPLICIT, constructed */

/* AlgorithmIdentifier { ecdsa-with-SHA256 (1.2.840.10045.4.3.2) } */
static const uint8_t ALG_ECDSA_SHA256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

/* ---- a minimal DER writer ---- */

static iotsec_result der_header(struct iotsec_buf *out, uint8_t tag, size_t len)
{
    IOTSEC_GUARD(iotsec_buf_append_u8(out, tag));
    if (len < 0x80)
        return iotsec_buf_append_u8(out, (uint8_t)len);
    uint8_t bytes[sizeof(size_t)];
    size_t n = 0;
    for (size_t v = len; v > 0; v >>= 8)
        bytes[sizeof(bytes) - 1 - n++] = (uint8_t)v;
    IOTSEC_GUARD(iotsec_buf_append_u8(out, (uint8_t)(0x80 | n)));
    return iotsec_buf_append(out, bytes + sizeof(bytes) - n, n);
}

static iotsec_result der_wrap(struct iotsec_buf *out, uint8_t tag, struct iotsec_slice content)
{
    IOTSEC_GUARD(der_header(out, tag, content.len));
    return iotsec_buf_append_slice(out, content);
}

/* Appends the DER of an OpenSSL object (any ASN.1 item). */
static iotsec_result der_item(struct iotsec_buf *out, const void *obj, const ASN1_ITEM *item)
{
    unsigned char *der IOTSEC_DEFER(pki_ossl_free_cleanup) = NULL;
    int len = ASN1_item_i2d((const ASN1_VALUE *)obj, &der, item);
    if (len <= 0) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "pki: encoding a to-be-signed structure");
        return IOTSEC_RESULT_ERR;
    }
    return iotsec_buf_append(out, der, (size_t)len);
}

static iotsec_result der_version(struct iotsec_buf *out, uint8_t version)
{
    const uint8_t v[] = {DER_INTEGER, 0x01, version};
    return iotsec_buf_append(out, v, sizeof(v));
}

/* ---- signing the assembled bytes ---- */

/* Signs tbs and appends Certificate/CertificateList ::= SEQUENCE { tbs, alg, sig }. */
static iotsec_result sign_and_wrap(const struct iotsec_pki_signer *signer, struct iotsec_slice tbs,
                                   struct iotsec_buf *out)
{
    IOTSEC_ENSURE(signer != NULL && signer->sign != NULL && signer->public_key != NULL,
                  IOTSEC_ERR_INVALID_ARG, "pki: incomplete signer");
    IOTSEC_ENSURE(iotsec_key_type(signer->public_key) == IOTSEC_KEY_EC_P256, IOTSEC_ERR_INVALID_ARG,
                  "pki: the CA key must be EC P-256");
    struct iotsec_buf sig IOTSEC_DEFER(pki_buf_cleanup) = {0};
    iotsec_result r = signer->sign(signer, tbs, &sig);
    if (!iotsec_ok(r)) {
        iotsec_error_prefix("pki: signing: ");
        return r;
    }
    IOTSEC_ENSURE(sig.len > 0 && sig.len < 256, IOTSEC_ERR_CRYPTO,
                  "pki: signer returned a %zu-byte signature", sig.len);

    struct iotsec_buf body IOTSEC_DEFER(pki_buf_cleanup) = {0};
    IOTSEC_GUARD(iotsec_buf_append_slice(&body, tbs));
    IOTSEC_GUARD(iotsec_buf_append(&body, ALG_ECDSA_SHA256, sizeof(ALG_ECDSA_SHA256)));
    IOTSEC_GUARD(der_header(&body, DER_BIT_STRING, sig.len + 1));
    IOTSEC_GUARD(iotsec_buf_append_u8(&body, 0)); /* no unused bits */
    IOTSEC_GUARD(iotsec_buf_append_slice(&body, iotsec_buf_slice(&sig)));
    return der_wrap(out, DER_SEQUENCE, iotsec_buf_slice(&body));
}

/* ---- certificates ---- */

static iotsec_result cert_tbs(X509 *tmpl, struct iotsec_buf *out)
{
    struct iotsec_buf body IOTSEC_DEFER(pki_buf_cleanup) = {0};
    struct iotsec_buf inner IOTSEC_DEFER(pki_buf_cleanup) = {0};

    IOTSEC_ENSURE(X509_get_version(tmpl) == X509_VERSION_3, IOTSEC_ERR_INVALID_ARG,
                  "pki: only v3 certificates are issued");
    IOTSEC_GUARD(der_version(&inner, X509_VERSION_3));
    IOTSEC_GUARD(der_wrap(&body, DER_CTX_0, iotsec_buf_slice(&inner)));
    IOTSEC_GUARD(der_item(&body, X509_get0_serialNumber(tmpl), ASN1_ITEM_rptr(ASN1_INTEGER)));
    IOTSEC_GUARD(iotsec_buf_append(&body, ALG_ECDSA_SHA256, sizeof(ALG_ECDSA_SHA256)));
    IOTSEC_GUARD(der_item(&body, X509_get_issuer_name(tmpl), ASN1_ITEM_rptr(X509_NAME)));

    iotsec_buf_reset(&inner);
    IOTSEC_GUARD(der_item(&inner, X509_get0_notBefore(tmpl), ASN1_ITEM_rptr(ASN1_TIME)));
    IOTSEC_GUARD(der_item(&inner, X509_get0_notAfter(tmpl), ASN1_ITEM_rptr(ASN1_TIME)));
    IOTSEC_GUARD(der_wrap(&body, DER_SEQUENCE, iotsec_buf_slice(&inner)));

    IOTSEC_GUARD(der_item(&body, X509_get_subject_name(tmpl), ASN1_ITEM_rptr(X509_NAME)));
    IOTSEC_GUARD(der_item(&body, X509_get_X509_PUBKEY(tmpl), ASN1_ITEM_rptr(X509_PUBKEY)));

    const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(tmpl);
    IOTSEC_ENSURE(sk_X509_EXTENSION_num(exts) > 0, IOTSEC_ERR_INVALID_ARG,
                  "pki: a v3 certificate without extensions");
    iotsec_buf_reset(&inner);
    IOTSEC_GUARD(der_item(&inner, exts, ASN1_ITEM_rptr(X509_EXTENSIONS)));
    IOTSEC_GUARD(der_wrap(&body, DER_CTX_3, iotsec_buf_slice(&inner)));

    return der_wrap(out, DER_SEQUENCE, iotsec_buf_slice(&body));
}

iotsec_result pki_sign_cert(const struct iotsec_pki_signer *signer, X509 *tmpl, X509 **out)
{
    struct iotsec_buf tbs IOTSEC_DEFER(pki_buf_cleanup) = {0};
    struct iotsec_buf der IOTSEC_DEFER(pki_buf_cleanup) = {0};
    IOTSEC_GUARD(cert_tbs(tmpl, &tbs));
    IOTSEC_GUARD(sign_and_wrap(signer, iotsec_buf_slice(&tbs), &der));

    const unsigned char *p = der.ptr;
    X509 *cert IOTSEC_DEFER(pki_x509_cleanup) = d2i_X509(NULL, &p, (long)der.len);
    if (cert == NULL || p != der.ptr + der.len) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "pki: the assembled certificate does not parse");
        return IOTSEC_RESULT_ERR;
    }
    EVP_PKEY *issuer_key IOTSEC_DEFER(pki_pkey_cleanup) = NULL;
    IOTSEC_GUARD(pki_key_to_pkey(signer->public_key, &issuer_key));
    if (X509_verify(cert, issuer_key) != 1) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO,
                              "pki: the signer's signature does not verify with its public key");
        return IOTSEC_RESULT_ERR;
    }
    *out = cert;
    cert = NULL;
    return IOTSEC_RESULT_OK;
}

/* ---- CRLs ---- */

static iotsec_result crl_tbs(X509_CRL *tmpl, struct iotsec_buf *out)
{
    struct iotsec_buf body IOTSEC_DEFER(pki_buf_cleanup) = {0};
    struct iotsec_buf inner IOTSEC_DEFER(pki_buf_cleanup) = {0};

    IOTSEC_ENSURE(X509_CRL_get_version(tmpl) == X509_CRL_VERSION_2, IOTSEC_ERR_INVALID_ARG,
                  "pki: only v2 CRLs are issued");
    IOTSEC_GUARD(der_version(&body, X509_CRL_VERSION_2));
    IOTSEC_GUARD(iotsec_buf_append(&body, ALG_ECDSA_SHA256, sizeof(ALG_ECDSA_SHA256)));
    IOTSEC_GUARD(der_item(&body, X509_CRL_get_issuer(tmpl), ASN1_ITEM_rptr(X509_NAME)));
    IOTSEC_GUARD(der_item(&body, X509_CRL_get0_lastUpdate(tmpl), ASN1_ITEM_rptr(ASN1_TIME)));
    IOTSEC_ENSURE(X509_CRL_get0_nextUpdate(tmpl) != NULL, IOTSEC_ERR_INVALID_ARG,
                  "pki: a CRL without nextUpdate");
    IOTSEC_GUARD(der_item(&body, X509_CRL_get0_nextUpdate(tmpl), ASN1_ITEM_rptr(ASN1_TIME)));

    /* RFC 5280 5.1.2.6: with no entries the list is absent, not empty. */
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(tmpl);
    if (sk_X509_REVOKED_num(revoked) > 0) {
        for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++)
            IOTSEC_GUARD(
                der_item(&inner, sk_X509_REVOKED_value(revoked, i), ASN1_ITEM_rptr(X509_REVOKED)));
        IOTSEC_GUARD(der_wrap(&body, DER_SEQUENCE, iotsec_buf_slice(&inner)));
    }

    iotsec_buf_reset(&inner);
    IOTSEC_GUARD(der_item(&inner, X509_CRL_get0_extensions(tmpl), ASN1_ITEM_rptr(X509_EXTENSIONS)));
    IOTSEC_GUARD(der_wrap(&body, DER_CTX_0, iotsec_buf_slice(&inner)));

    return der_wrap(out, DER_SEQUENCE, iotsec_buf_slice(&body));
}

iotsec_result pki_sign_crl(const struct iotsec_pki_signer *signer, X509_CRL *tmpl, X509_CRL **out)
{
    struct iotsec_buf tbs IOTSEC_DEFER(pki_buf_cleanup) = {0};
    struct iotsec_buf der IOTSEC_DEFER(pki_buf_cleanup) = {0};
    IOTSEC_GUARD(crl_tbs(tmpl, &tbs));
    IOTSEC_GUARD(sign_and_wrap(signer, iotsec_buf_slice(&tbs), &der));

    const unsigned char *p = der.ptr;
    X509_CRL *crl IOTSEC_DEFER(pki_crl_cleanup) = d2i_X509_CRL(NULL, &p, (long)der.len);
    if (crl == NULL || p != der.ptr + der.len) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "pki: the assembled CRL does not parse");
        return IOTSEC_RESULT_ERR;
    }
    EVP_PKEY *issuer_key IOTSEC_DEFER(pki_pkey_cleanup) = NULL;
    IOTSEC_GUARD(pki_key_to_pkey(signer->public_key, &issuer_key));
    if (X509_CRL_verify(crl, issuer_key) != 1) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO,
                              "pki: the signer's CRL signature does not verify with its key");
        return IOTSEC_RESULT_ERR;
    }
    *out = crl;
    crl = NULL;
    return IOTSEC_RESULT_OK;
}
