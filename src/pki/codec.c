/*
 * Reading and writing certificates, chains, CRLs and CSRs; fingerprints and serials.
 *
 * Everything a peer or an operator hands us passes through here first, so the parsers
 * are strict in the way STYLE.md section 7 asks: a bound on the input before OpenSSL sees
 * it, PEM blocks with the one expected label and no headers, nothing but whitespace
 * between and around blocks (text before a block would let a file say one thing to a
 * person and another to us), each DER body consumed exactly, and a bounded number of
 * certificates per chain (x509-limbo's pathological chains send 100).
 *
 * Input is DER when its first byte is 0x30 (the SEQUENCE every certificate and CRL
 * starts with), PEM otherwise; a PEM file starts with "-----BEGIN" or blank space, never
 * with that byte (ASCII '0').
 */
#include "pki_internal.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <ctype.h>
#include <string.h>

#define PEM_LABEL_CERT "CERTIFICATE"
#define PEM_LABEL_CRL  "X509 CRL"
#define PEM_LABEL_CSR  "CERTIFICATE REQUEST"
/* RFC 5280 4.1.2.2: at most 20 octets of INTEGER content. */
#define SERIAL_OCTETS_MAX 20
/* A CSR carries one key and a name; 16 KiB of PEM is far beyond any real one. */
#define CSR_PEM_MAX (16 * 1024)

static const uint8_t empty_input[1];

/* ---- cleanups ---- */

void pki_x509_cleanup(X509 **x)
{
    X509_free(*x);
}

void pki_x509_stack_cleanup(pki_x509_stack **s)
{
    sk_X509_pop_free(*s, X509_free);
}

void pki_crl_cleanup(X509_CRL **c)
{
    X509_CRL_free(*c);
}

void pki_req_cleanup(X509_REQ **r)
{
    X509_REQ_free(*r);
}

void pki_pkey_cleanup(EVP_PKEY **k)
{
    EVP_PKEY_free(*k);
}

void pki_name_cleanup(X509_NAME **n)
{
    X509_NAME_free(*n);
}

void pki_bio_cleanup(BIO **b)
{
    BIO_free(*b);
}

void pki_buf_cleanup(struct iotsec_buf *b)
{
    iotsec_buf_free(b);
}

void pki_key_cleanup(struct iotsec_key **k)
{
    iotsec_key_free(*k);
}

void pki_asn1_int_cleanup(ASN1_INTEGER **i)
{
    ASN1_INTEGER_free(*i);
}

void pki_ossl_free_cleanup(unsigned char **p)
{
    OPENSSL_free(*p);
}

/* ---- PEM framing ---- */

struct pem_block {
    char *label;
    char *headers;
    unsigned char *der;
    long der_len;
};

static void pem_block_cleanup(struct pem_block *b)
{
    OPENSSL_free(b->label);
    OPENSSL_free(b->headers);
    OPENSSL_free(b->der);
    *b = (struct pem_block){0};
}

static bool skip_space(struct iotsec_slice *in)
{
    while (in->len > 0 && isspace(in->ptr[0])) {
        in->ptr++;
        in->len--;
    }
    return in->len > 0;
}

/* DER of a certificate or CRL is a SEQUENCE; anything else is read as PEM, whose parser
 * then says precisely what is wrong with it. */
static bool looks_like_der(struct iotsec_slice in)
{
    return in.len > 0 && in.ptr[0] == 0x30;
}

/* Reads the next PEM block of `bio` into *b. Returns false at the end of the input;
 * fails when anything but whitespace precedes a block or the block is not `label`. */
static iotsec_result pem_next(BIO *bio, const char *what, const char *label, struct pem_block *b,
                              bool *found)
{
    char *rest;
    long rest_len = BIO_get_mem_data(bio, &rest);
    struct iotsec_slice left = iotsec_slice_make(rest, rest_len > 0 ? (size_t)rest_len : 0);
    *found = skip_space(&left);
    if (!*found)
        return IOTSEC_RESULT_OK;
    static const char begin[] = "-----BEGIN ";
    IOTSEC_ENSURE(left.len >= sizeof(begin) - 1 && memcmp(left.ptr, begin, sizeof(begin) - 1) == 0,
                  IOTSEC_ERR_FORMAT, "pki: %s: unexpected text outside the PEM blocks", what);
    if (PEM_read_bio(bio, &b->label, &b->headers, &b->der, &b->der_len) != 1) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "pki: %s: malformed PEM block", what);
        return IOTSEC_RESULT_ERR;
    }
    IOTSEC_ENSURE(strcmp(b->label, label) == 0, IOTSEC_ERR_FORMAT,
                  "pki: %s: PEM type '%s' where '%s' was expected", what, b->label, label);
    IOTSEC_ENSURE(b->headers[0] == '\0', IOTSEC_ERR_FORMAT, "pki: %s: PEM headers are not accepted",
                  what);
    IOTSEC_ENSURE(b->der_len > 0, IOTSEC_ERR_FORMAT, "pki: %s: empty PEM block", what);
    return IOTSEC_RESULT_OK;
}

static iotsec_result d2i_cert_exact(const uint8_t *der, size_t len, X509 **out, size_t *used)
{
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    if (cert == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "pki: not a valid DER certificate");
        return IOTSEC_RESULT_ERR;
    }
    *used = (size_t)(p - der);
    if (*used > IOTSEC_PKI_CERT_DER_MAX) {
        X509_free(cert);
        IOTSEC_BAIL(IOTSEC_ERR_TOO_LARGE, "pki: certificate of %zu bytes exceeds the limit of %d",
                    *used, IOTSEC_PKI_CERT_DER_MAX);
    }
    *out = cert;
    return IOTSEC_RESULT_OK;
}

static iotsec_result push_cert(pki_x509_stack *certs, size_t max_certs, X509 **cert)
{
    IOTSEC_ENSURE((size_t)sk_X509_num(certs) < max_certs, IOTSEC_ERR_TOO_LARGE,
                  "pki: more than %zu certificates in a chain", max_certs);
    IOTSEC_ENSURE(sk_X509_push(certs, *cert) > 0, IOTSEC_ERR_NOMEM, "pki: out of memory");
    *cert = NULL;
    return IOTSEC_RESULT_OK;
}

static iotsec_result parse_pem_certs(struct iotsec_slice in, size_t max_certs,
                                     pki_x509_stack *certs)
{
    BIO *bio IOTSEC_DEFER(pki_bio_cleanup) = BIO_new_mem_buf(in.ptr, (int)in.len);
    IOTSEC_ENSURE_ALLOC(bio);
    for (;;) {
        struct pem_block block IOTSEC_DEFER(pem_block_cleanup) = {0};
        bool found;
        IOTSEC_GUARD(pem_next(bio, "certificate", PEM_LABEL_CERT, &block, &found));
        if (!found)
            return IOTSEC_RESULT_OK;
        X509 *cert IOTSEC_DEFER(pki_x509_cleanup) = NULL;
        size_t used;
        IOTSEC_GUARD(d2i_cert_exact(block.der, (size_t)block.der_len, &cert, &used));
        IOTSEC_ENSURE(used == (size_t)block.der_len, IOTSEC_ERR_FORMAT,
                      "pki: %zu unexpected bytes after a certificate in its PEM block",
                      (size_t)block.der_len - used);
        IOTSEC_GUARD(push_cert(certs, max_certs, &cert));
    }
}

static iotsec_result parse_der_certs(struct iotsec_slice in, size_t max_certs,
                                     pki_x509_stack *certs)
{
    while (in.len > 0) {
        X509 *cert IOTSEC_DEFER(pki_x509_cleanup) = NULL;
        size_t used;
        IOTSEC_GUARD(d2i_cert_exact(in.ptr, in.len, &cert, &used));
        IOTSEC_GUARD(push_cert(certs, max_certs, &cert));
        in.ptr += used;
        in.len -= used;
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_certs_parse(struct iotsec_slice in, size_t max_certs, pki_x509_stack **out)
{
    IOTSEC_ENSURE(in.len <= IOTSEC_PKI_CHAIN_MAX, IOTSEC_ERR_TOO_LARGE,
                  "pki: certificate input of %zu bytes exceeds the limit of %d", in.len,
                  IOTSEC_PKI_CHAIN_MAX);
    if (in.len == 0)
        in.ptr = empty_input;
    pki_x509_stack *certs IOTSEC_DEFER(pki_x509_stack_cleanup) = sk_X509_new_null();
    IOTSEC_ENSURE_ALLOC(certs);
    if (looks_like_der(in))
        IOTSEC_GUARD(parse_der_certs(in, max_certs, certs));
    else
        IOTSEC_GUARD(parse_pem_certs(in, max_certs, certs));
    IOTSEC_ENSURE(sk_X509_num(certs) > 0, IOTSEC_ERR_FORMAT, "pki: no certificate in the input");
    *out = certs;
    certs = NULL;
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_cert_parse(struct iotsec_slice in, X509 **out)
{
    pki_x509_stack *certs IOTSEC_DEFER(pki_x509_stack_cleanup) = NULL;
    IOTSEC_GUARD(pki_certs_parse(in, 2, &certs));
    IOTSEC_ENSURE(sk_X509_num(certs) == 1, IOTSEC_ERR_FORMAT,
                  "pki: expected one certificate, found more");
    *out = sk_X509_shift(certs);
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_crl_parse(struct iotsec_slice in, X509_CRL **out)
{
    IOTSEC_ENSURE(in.len <= IOTSEC_PKI_CRL_MAX, IOTSEC_ERR_TOO_LARGE,
                  "pki: CRL of %zu bytes exceeds the limit of %zu", in.len, IOTSEC_PKI_CRL_MAX);
    if (in.len == 0)
        in.ptr = empty_input;
    struct pem_block block IOTSEC_DEFER(pem_block_cleanup) = {0};
    struct iotsec_slice der = in;
    BIO *bio IOTSEC_DEFER(pki_bio_cleanup) = NULL;
    if (!looks_like_der(in)) {
        bio = BIO_new_mem_buf(in.ptr, (int)in.len);
        IOTSEC_ENSURE_ALLOC(bio);
        bool found;
        IOTSEC_GUARD(pem_next(bio, "CRL", PEM_LABEL_CRL, &block, &found));
        IOTSEC_ENSURE(found, IOTSEC_ERR_FORMAT, "pki: CRL: no PEM block");
        struct pem_block extra IOTSEC_DEFER(pem_block_cleanup) = {0};
        IOTSEC_GUARD(pem_next(bio, "CRL", PEM_LABEL_CRL, &extra, &found));
        IOTSEC_ENSURE(!found, IOTSEC_ERR_FORMAT, "pki: CRL: expected one CRL, found more");
        der = iotsec_slice_make(block.der, (size_t)block.der_len);
    }
    const unsigned char *p = der.ptr;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)der.len);
    if (crl == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "pki: not a valid DER CRL");
        return IOTSEC_RESULT_ERR;
    }
    if (p != der.ptr + der.len) {
        X509_CRL_free(crl);
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "pki: unexpected bytes after the CRL");
    }
    *out = crl;
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_csr_parse(struct iotsec_slice pem, X509_REQ **out)
{
    IOTSEC_ENSURE(pem.len <= CSR_PEM_MAX, IOTSEC_ERR_TOO_LARGE,
                  "pki: CSR of %zu bytes exceeds the limit of %d", pem.len, CSR_PEM_MAX);
    BIO *bio IOTSEC_DEFER(pki_bio_cleanup) = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    IOTSEC_ENSURE_ALLOC(bio);
    struct pem_block block IOTSEC_DEFER(pem_block_cleanup) = {0};
    bool found;
    IOTSEC_GUARD(pem_next(bio, "CSR", PEM_LABEL_CSR, &block, &found));
    IOTSEC_ENSURE(found, IOTSEC_ERR_FORMAT,
                  "pki: CSR: expected a PEM '" PEM_LABEL_CSR "' block, found nothing");
    struct pem_block extra IOTSEC_DEFER(pem_block_cleanup) = {0};
    IOTSEC_GUARD(pem_next(bio, "CSR", PEM_LABEL_CSR, &extra, &found));
    IOTSEC_ENSURE(!found, IOTSEC_ERR_FORMAT, "pki: CSR: expected one request, found more");

    const unsigned char *p = block.der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, block.der_len);
    if (req == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "pki: CSR: not a valid PKCS#10 request");
        return IOTSEC_RESULT_ERR;
    }
    if (p != block.der + block.der_len) {
        X509_REQ_free(req);
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "pki: CSR: unexpected bytes after the request");
    }
    *out = req;
    return IOTSEC_RESULT_OK;
}

/* ---- output ---- */

static iotsec_result drain_bio(BIO *bio, struct iotsec_buf *out)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    IOTSEC_ENSURE(len > 0, IOTSEC_ERR_CRYPTO, "pki: PEM encoder produced no output");
    return iotsec_buf_append(out, data, (size_t)len);
}

iotsec_result pki_cert_to_pem(X509 *cert, struct iotsec_buf *out)
{
    BIO *bio IOTSEC_DEFER(pki_bio_cleanup) = BIO_new(BIO_s_mem());
    IOTSEC_ENSURE_ALLOC(bio);
    IOTSEC_GUARD_OSSL(PEM_write_bio_X509(bio, cert), IOTSEC_ERR_CRYPTO,
                      "pki: encoding a certificate as PEM");
    return drain_bio(bio, out);
}

iotsec_result pki_crl_to_pem(X509_CRL *crl, struct iotsec_buf *out)
{
    BIO *bio IOTSEC_DEFER(pki_bio_cleanup) = BIO_new(BIO_s_mem());
    IOTSEC_ENSURE_ALLOC(bio);
    IOTSEC_GUARD_OSSL(PEM_write_bio_X509_CRL(bio, crl), IOTSEC_ERR_CRYPTO,
                      "pki: encoding a CRL as PEM");
    return drain_bio(bio, out);
}

void pki_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

iotsec_result pki_fingerprint(X509 *cert, char out[IOTSEC_PKI_FINGERPRINT_HEX_LEN + 1])
{
    unsigned char *der IOTSEC_DEFER(pki_ossl_free_cleanup) = NULL;
    int len = i2d_X509(cert, &der);
    IOTSEC_ENSURE(len > 0, IOTSEC_ERR_CRYPTO, "pki: encoding a certificate as DER");
    uint8_t digest[IOTSEC_SHA256_LEN];
    IOTSEC_GUARD(iotsec_sha256(iotsec_slice_make(der, (size_t)len), digest));
    pki_hex(digest, sizeof(digest), out);
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_serial_hex(const ASN1_INTEGER *serial, char out[IOTSEC_PKI_SERIAL_HEX_MAX + 1])
{
    IOTSEC_ENSURE(serial != NULL && ASN1_STRING_type(serial) == V_ASN1_INTEGER, IOTSEC_ERR_AUTH,
                  "pki: negative serial number (RFC 5280 4.1.2.2)");
    const uint8_t *mag = ASN1_STRING_get0_data(serial);
    size_t len = (size_t)ASN1_STRING_length(serial);
    while (len > 0 && mag[0] == 0) {
        mag++;
        len--;
    }
    IOTSEC_ENSURE(len > 0, IOTSEC_ERR_AUTH, "pki: serial number zero (RFC 5280 4.1.2.2)");
    /* The DER content has a leading 0x00 when the top bit is set, to stay positive. */
    size_t octets = len + ((mag[0] & 0x80) != 0);
    IOTSEC_ENSURE(octets <= SERIAL_OCTETS_MAX, IOTSEC_ERR_AUTH,
                  "pki: serial number of %zu octets is longer than 20 (RFC 5280 4.1.2.2)", octets);
    pki_hex(mag, len, out);
    return IOTSEC_RESULT_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

iotsec_result pki_serial_from_hex(const char *hex, ASN1_INTEGER **out)
{
    IOTSEC_ENSURE(hex != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing serial number");
    size_t n = strlen(hex);
    IOTSEC_ENSURE(n >= 1 && n <= IOTSEC_PKI_SERIAL_HEX_MAX, IOTSEC_ERR_INVALID_ARG,
                  "pki: serial number must be 1 to %d hex digits", IOTSEC_PKI_SERIAL_HEX_MAX);
    uint8_t bytes[IOTSEC_PKI_SERIAL_HEX_MAX / 2 + 1] = {0};
    size_t nbytes = (n + 1) / 2;
    for (size_t i = 0; i < n; i++) {
        int v = hex_value(hex[i]);
        IOTSEC_ENSURE(v >= 0, IOTSEC_ERR_INVALID_ARG, "pki: serial number '%s' is not hex", hex);
        size_t nibble = (nbytes * 2 - n) + i; /* right-aligned */
        bytes[nibble / 2] |= (uint8_t)(nibble % 2 == 0 ? v << 4 : v);
    }
    BIGNUM *bn = BN_bin2bn(bytes, (int)nbytes, NULL);
    IOTSEC_ENSURE_ALLOC(bn);
    bool zero = BN_is_zero(bn);
    ASN1_INTEGER *serial = zero ? NULL : BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    IOTSEC_ENSURE(!zero, IOTSEC_ERR_INVALID_ARG, "pki: serial number zero is not valid");
    IOTSEC_ENSURE_ALLOC(serial);
    char check[IOTSEC_PKI_SERIAL_HEX_MAX + 1];
    if (!iotsec_ok(pki_serial_hex(serial, check))) {
        ASN1_INTEGER_free(serial);
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "pki: serial number '%s' is longer than 20 octets",
                    hex);
    }
    *out = serial;
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    IOTSEC_ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, IOTSEC_ERR_FORMAT,
                  "pki: invalid certificate time");
    time_t v = timegm(&tm);
    IOTSEC_ENSURE(v != (time_t)-1, IOTSEC_ERR_FORMAT, "pki: certificate time out of range");
    *out = v;
    return IOTSEC_RESULT_OK;
}

/* ---- keys ---- */

iotsec_result pki_key_to_pkey(const struct iotsec_key *key, EVP_PKEY **out)
{
    IOTSEC_ENSURE(key != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing key");
    struct iotsec_buf pem IOTSEC_DEFER(pki_buf_cleanup) = {0};
    IOTSEC_GUARD(iotsec_key_public_to_pem(key, &pem));
    BIO *bio IOTSEC_DEFER(pki_bio_cleanup) = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    IOTSEC_ENSURE_ALLOC(bio);
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, NULL, NULL, NULL, NULL);
    if (pkey == NULL) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "pki: reading back a public key");
        return IOTSEC_RESULT_ERR;
    }
    *out = pkey;
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_pkey_to_key(EVP_PKEY *pkey, struct iotsec_key **out)
{
    unsigned char *der IOTSEC_DEFER(pki_ossl_free_cleanup) = NULL;
    int len = i2d_PUBKEY(pkey, &der);
    if (len <= 0) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT, "pki: public key cannot be encoded");
        return IOTSEC_RESULT_ERR;
    }
    return iotsec_key_from_public_der(iotsec_slice_make(der, (size_t)len), out);
}
