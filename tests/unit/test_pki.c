/*
 * Unit tests for the PKI: the CA and its profiles, issuing from a CSR and from a key, the
 * CRL, and every refusal the device and server checks must make. Certificates that our
 * CA would never issue (bad CNs, a CA as leaf, a self-signed leaf) are built here with
 * the module's internal template and signer, or with OpenSSL directly, so that the
 * verifier is shown refusing them rather than the issuer refusing to make them.
 *
 * The openssl command-line tool is run on our output as an independent reader: it must
 * verify our chain and list our CRL's entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "iotsec/file.h"
#include "iotsec/pki.h"
#include "pki/pki_internal.h"

#define DAY     86400
#define NOW     ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define DEVICE  "sensor-0042"
#define PEM_MAX (1 << 20)

struct fixture {
    char dir[64];
    struct iotsec_key *root_key;
    struct iotsec_pki_signer root_signer;
    struct iotsec_buf root_pem;
    struct iotsec_pki_ca *root;
    struct iotsec_pki_verifier *verifier;
};

/* ---- helpers ---- */

static struct iotsec_key *ec_key(void)
{
    struct iotsec_key *key = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &key)));
    return key;
}

static struct iotsec_pki_ca_params ca_params(const char *cn, time_t now, uint32_t days)
{
    return (struct iotsec_pki_ca_params){.common_name = cn, .validity_days = days, .now = now};
}

static void make_root(struct fixture *f, time_t now)
{
    f->root_key = ec_key();
    iotsec_pki_signer_from_key(f->root_key, &f->root_signer);
    struct iotsec_pki_ca_params p = ca_params("iotsec test root", now, 3650);
    assert_true(iotsec_ok(iotsec_pki_ca_create_root(&f->root_signer, &p, &f->root_pem)));
    assert_true(
        iotsec_ok(iotsec_pki_ca_open(iotsec_buf_slice(&f->root_pem), &f->root_signer, &f->root)));
    assert_true(iotsec_ok(iotsec_pki_verifier_new(&f->verifier)));
    assert_true(
        iotsec_ok(iotsec_pki_verifier_add_trusted(f->verifier, iotsec_buf_slice(&f->root_pem))));
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotsec-pki-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    /* The CA starts 1000 days before NOW so that certificates can be issued in the past. */
    make_root(f, NOW - 1000 * DAY);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    iotsec_pki_verifier_free(f->verifier);
    iotsec_pki_ca_free(f->root);
    iotsec_buf_free(&f->root_pem);
    iotsec_key_free(f->root_key);
    free(f);
    return 0;
}

static X509 *parse_pem(const struct iotsec_buf *pem)
{
    X509 *cert = NULL;
    assert_true(iotsec_ok(pki_cert_parse(iotsec_buf_slice(pem), &cert)));
    return cert;
}

static struct iotsec_pki_issued issue_device_at(struct fixture *f, const char *id, time_t now,
                                                uint32_t days, struct iotsec_buf *pem)
{
    struct iotsec_key *key = ec_key();
    struct iotsec_pki_device_params p = {.device_id = id, .validity_days = days, .now = now};
    struct iotsec_pki_issued info;
    assert_true(iotsec_ok(iotsec_pki_issue_device_key(f->root, &p, key, pem, &info)));
    iotsec_key_free(key);
    return info;
}

static iotsec_result verify_client(struct fixture *f, const struct iotsec_buf *chain, time_t at,
                                   struct iotsec_pki_peer *peer)
{
    return iotsec_pki_verify_client(f->verifier, iotsec_buf_slice(chain), at, peer);
}

static void assert_refused(iotsec_result r, const char *message_part)
{
    assert_false(iotsec_ok(r));
    if (strstr(iotsec_error_message(), message_part) == NULL)
        fail_msg("expected an error containing '%s', got '%s'", message_part,
                 iotsec_error_message());
}

static EVP_PKEY *evp_key(const char *type, const char *arg)
{
    EVP_PKEY *pkey = arg != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, type, arg)
                                 : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(pkey);
    return pkey;
}

static EVP_PKEY *rsa_key(size_t bits)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    assert_non_null(pkey);
    return pkey;
}

/* A PKCS#10 request for pkey with the given CN (NULL: empty subject); with ca_ext it also
 * asks for basicConstraints CA:TRUE, which the issuer must ignore. */
static void make_csr(EVP_PKEY *pkey, const char *cn, bool ca_ext, struct iotsec_buf *out)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
    if (cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
                                                    MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                                    -1, 0),
                         1);
    assert_int_equal(X509_REQ_set_pubkey(req, pkey), 1);
    if (ca_ext) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "CA:TRUE");
        assert_non_null(bc);
        sk_X509_EXTENSION_push(exts, bc);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    const EVP_MD *md = EVP_PKEY_is_a(pkey, "ED25519") ? NULL : EVP_sha256();
    assert_true(X509_REQ_sign(req, pkey, md) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    assert_true(iotsec_ok(iotsec_buf_append(out, data, (size_t)len)));
    BIO_free(bio);
    X509_REQ_free(req);
}

static struct iotsec_key *key_from_evp(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);
    assert_true(len > 0);
    struct iotsec_key *key = NULL;
    assert_true(iotsec_ok(iotsec_key_from_public_der(iotsec_slice_make(der, (size_t)len), &key)));
    OPENSSL_free(der);
    return key;
}

static void write_file(const char *dir, const char *name, const struct iotsec_buf *data, char *path,
                       size_t path_len)
{
    snprintf(path, path_len, "%s/%s", dir, name);
    assert_true(iotsec_ok(iotsec_file_write_atomic(path, iotsec_buf_slice(data), 0600)));
}

/* Runs a shell command, returns its exit status and (appended to out) its output. */
static int run(const char *cmd, struct iotsec_buf *out)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        assert_true(iotsec_ok(iotsec_buf_append(out, chunk, n)));
    assert_true(iotsec_ok(iotsec_buf_terminate(out)));
    return pclose(p);
}

/* A device-profile certificate with an arbitrary subject, signed by the root: what a
 * broken or malicious issuer could produce, which the verifier must judge by itself. */
static void craft_device_cert(struct fixture *f, X509_NAME *subject, struct iotsec_buf *pem)
{
    struct iotsec_key *key = ec_key();
    EVP_PKEY *pkey = NULL;
    assert_true(iotsec_ok(pki_key_to_pkey(key, &pkey)));
    X509 *root = parse_pem(&f->root_pem);
    struct pki_template_params p = {
        .profile = PKI_PROFILE_DEVICE,
        .subject = subject,
        .issuer = X509_get_subject_name(root),
        .subject_key = pkey,
        .issuer_key_id = X509_get0_subject_key_id(root),
        .not_before = NOW - DAY,
        .not_after = NOW + DAY,
    };
    X509 *tmpl = NULL, *cert = NULL;
    assert_true(iotsec_ok(pki_template_new(&p, &tmpl)));
    assert_true(iotsec_ok(pki_sign_cert(&f->root_signer, tmpl, &cert)));
    assert_true(iotsec_ok(pki_cert_to_pem(cert, pem)));
    X509_free(cert);
    X509_free(tmpl);
    X509_free(root);
    EVP_PKEY_free(pkey);
    iotsec_key_free(key);
}

static X509_NAME *name_with(const char *const *cns, size_t n)
{
    X509_NAME *name = X509_NAME_new();
    for (size_t i = 0; i < n; i++)
        /* A plain UTF8String, not MBSTRING_UTF8, so OpenSSL's 64-character bound on CNs
         * does not stop us from building the over-long one. */
        assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                                    (const unsigned char *)cns[i], -1, -1, 0),
                         1);
    return name;
}

/* ---- the CA ---- */

static bool ext_critical(X509 *c, int nid)
{
    int at = X509_get_ext_by_NID(c, nid, -1);
    assert_true(at >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(c, at)) == 1;
}

static void pki_root_has_the_ca_profile(void **state)
{
    struct fixture *f = *state;
    X509 *root = parse_pem(&f->root_pem);
    assert_int_equal(X509_get_version(root), X509_VERSION_3);
    assert_int_equal(X509_self_signed(root, 1), 1);
    assert_int_equal(X509_get_signature_nid(root), NID_ecdsa_with_SHA256);
    assert_true(X509_get_extension_flags(root) & EXFLAG_CA);
    assert_int_equal(X509_get_pathlen(root), 1);
    assert_true(ext_critical(root, NID_basic_constraints));
    assert_int_equal(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_true(ext_critical(root, NID_key_usage));
    assert_false(ext_critical(root, NID_subject_key_identifier));
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(root);
    assert_non_null(ski);
    assert_int_equal(ASN1_STRING_length(ski), 20);
    assert_int_equal(ASN1_OCTET_STRING_cmp(ski, X509_get0_authority_key_id(root)), 0);
    assert_int_equal(X509_get_ext_by_NID(root, NID_ext_key_usage, -1), -1);
    char cn[64];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(root), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "iotsec test root");
    /* Backdated by 5 minutes; 3650 days long. */
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(root), NOW - 1000 * DAY - 300), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(root), NOW + 2650 * DAY), 0);
    X509_free(root);
}

static void pki_ca_open_checks_the_certificate_and_key(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *other = ec_key();
    struct iotsec_pki_signer signer;
    iotsec_pki_signer_from_key(other, &signer);
    struct iotsec_pki_ca *ca = NULL;
    assert_refused(iotsec_pki_ca_open(iotsec_buf_slice(&f->root_pem), &signer, &ca),
                   "another key than the signer's");
    assert_null(ca);

    struct iotsec_buf leaf = {0};
    issue_device_at(f, DEVICE, NOW, 30, &leaf);
    assert_refused(iotsec_pki_ca_open(iotsec_buf_slice(&leaf), &f->root_signer, &ca), "not a CA");
    iotsec_buf_free(&leaf);

    struct iotsec_key *ed = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_ED25519, &ed)));
    iotsec_pki_signer_from_key(ed, &signer);
    struct iotsec_pki_ca_params p = ca_params("ed root", NOW, 10);
    struct iotsec_buf pem = {0};
    assert_refused(iotsec_pki_ca_create_root(&signer, &p, &pem), "must be EC P-256");
    p = ca_params("", NOW, 10);
    iotsec_pki_signer_from_key(other, &signer);
    assert_refused(iotsec_pki_ca_create_root(&signer, &p, &pem), "common name");
    p = ca_params("root", NOW, 0);
    assert_refused(iotsec_pki_ca_create_root(&signer, &p, &pem), "validity");
    iotsec_buf_free(&pem);
    iotsec_key_free(ed);
    iotsec_key_free(other);
}

/* A signer whose callback signs with a different key: what a token label pointing at the
 * wrong object looks like. Nothing may be issued. */
static iotsec_result wrong_key_sign(const struct iotsec_pki_signer *signer, struct iotsec_slice tbs,
                                    struct iotsec_buf *sig)
{
    return iotsec_sign(signer->ctx, tbs, sig);
}

static void pki_refuses_a_signature_from_another_key(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *other = ec_key();
    struct iotsec_pki_signer bad = {
        .public_key = f->root_key, .sign = wrong_key_sign, .ctx = other};
    struct iotsec_pki_ca *ca = NULL;
    assert_true(iotsec_ok(iotsec_pki_ca_open(iotsec_buf_slice(&f->root_pem), &bad, &ca)));
    struct iotsec_key *device = ec_key();
    struct iotsec_pki_device_params p = {.device_id = DEVICE, .validity_days = 30, .now = NOW};
    struct iotsec_buf pem = {0};
    assert_refused(iotsec_pki_issue_device_key(ca, &p, device, &pem, NULL), "does not verify");
    assert_int_equal(pem.len, 0);
    iotsec_buf_free(&pem);
    iotsec_pki_ca_free(ca);
    iotsec_key_free(device);
    iotsec_key_free(other);
}

static void pki_intermediate_issues_devices_that_chain_to_the_root(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *ikey = ec_key();
    struct iotsec_pki_ca_params p = ca_params("iotsec devices", NOW - DAY, 1000);
    struct iotsec_buf ipem = {0};
    assert_true(iotsec_ok(iotsec_pki_ca_create_intermediate(f->root, ikey, &p, &ipem)));
    X509 *inter = parse_pem(&ipem);
    assert_int_equal(X509_get_pathlen(inter), 0);
    assert_true(ext_critical(inter, NID_basic_constraints));
    assert_int_equal(X509_get_key_usage(inter), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    X509 *root = parse_pem(&f->root_pem);
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(inter), X509_get0_subject_key_id(root)),
        0);
    X509_free(root);
    X509_free(inter);

    struct iotsec_pki_signer isigner;
    iotsec_pki_signer_from_key(ikey, &isigner);
    struct iotsec_pki_ca *ica = NULL;
    assert_true(iotsec_ok(iotsec_pki_ca_open(iotsec_buf_slice(&ipem), &isigner, &ica)));
    /* pathlen:0 means the intermediate cannot make another CA. */
    struct iotsec_key *k2 = ec_key();
    struct iotsec_buf nope = {0};
    assert_refused(iotsec_pki_ca_create_intermediate(ica, k2, &p, &nope), "path length is 0");

    struct iotsec_key *dkey = ec_key();
    struct iotsec_pki_device_params dp = {.device_id = DEVICE, .validity_days = 30, .now = NOW};
    struct iotsec_buf chain = {0};
    struct iotsec_pki_issued info;
    assert_true(iotsec_ok(iotsec_pki_issue_device_key(ica, &dp, dkey, &chain, &info)));

    /* The device sends only its leaf: refused until the server knows the intermediate. */
    struct iotsec_pki_peer peer;
    assert_refused(verify_client(f, &chain, NOW, &peer), "unable to get local issuer");
    /* Leaf + intermediate, as a device would present them. */
    struct iotsec_buf both = {0};
    assert_true(iotsec_ok(iotsec_buf_append_slice(&both, iotsec_buf_slice(&chain))));
    assert_true(iotsec_ok(iotsec_buf_append_slice(&both, iotsec_buf_slice(&ipem))));
    assert_true(iotsec_ok(verify_client(f, &both, NOW, &peer)));
    assert_string_equal(peer.device_id, DEVICE);
    assert_string_equal(peer.fingerprint, info.fingerprint);
    /* Or the server is told about the intermediate once. */
    assert_true(
        iotsec_ok(iotsec_pki_verifier_add_intermediates(f->verifier, iotsec_buf_slice(&ipem))));
    assert_true(iotsec_ok(verify_client(f, &chain, NOW, &peer)));
    /* A depth limit of 0 intermediates refuses it. */
    iotsec_pki_verifier_set_max_depth(f->verifier, 0);
    assert_refused(verify_client(f, &chain, NOW, &peer), "intermediate CAs");

    /* With CRLs configured, every CA on the path needs its current CRL: the
     * intermediate's alone leaves the intermediate itself unchecked, and is refused. */
    iotsec_pki_verifier_set_max_depth(f->verifier, 4);
    struct iotsec_pki_crl_params cp = {
        .crl_number = 1, .this_update = NOW - 60, .next_update_seconds = DAY};
    struct iotsec_buf icrl = {0}, rcrl = {0};
    assert_true(iotsec_ok(iotsec_pki_crl_build(ica, &cp, NULL, 0, &icrl)));
    assert_true(iotsec_ok(iotsec_pki_verifier_add_crl(f->verifier, iotsec_buf_slice(&icrl))));
    assert_refused(verify_client(f, &chain, NOW, &peer), "unable to get certificate CRL");
    assert_true(iotsec_ok(iotsec_pki_crl_build(f->root, &cp, NULL, 0, &rcrl)));
    assert_true(iotsec_ok(iotsec_pki_verifier_add_crl(f->verifier, iotsec_buf_slice(&rcrl))));
    assert_true(iotsec_ok(verify_client(f, &chain, NOW, &peer)));
    iotsec_buf_free(&icrl);
    iotsec_buf_free(&rcrl);

    /* Issued certificates may not outlive the intermediate. */
    dp.validity_days = 5000;
    struct iotsec_buf longer = {0};
    assert_refused(iotsec_pki_issue_device_key(ica, &dp, dkey, &longer, &info), "outlive");

    iotsec_buf_free(&longer);
    iotsec_buf_free(&both);
    iotsec_buf_free(&chain);
    iotsec_buf_free(&nope);
    iotsec_buf_free(&ipem);
    iotsec_pki_ca_free(ica);
    iotsec_key_free(dkey);
    iotsec_key_free(k2);
    iotsec_key_free(ikey);
}

/* ---- issuing ---- */

static void assert_device_profile(X509 *cert, const char *id)
{
    assert_int_equal(X509_get_version(cert), X509_VERSION_3);
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    char cn[80];
    assert_int_equal(
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)),
        (int)strlen(id));
    assert_string_equal(cn, id);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)), 1);
    uint32_t flags = X509_get_extension_flags(cert);
    assert_true(flags & EXFLAG_BCONS);
    assert_false(flags & EXFLAG_CA);
    assert_true(ext_critical(cert, NID_basic_constraints));
    assert_int_equal(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
    assert_true(ext_critical(cert, NID_key_usage));
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_CLIENT);
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    assert_non_null(X509_get0_subject_key_id(cert));
    assert_non_null(X509_get0_authority_key_id(cert));
    /* 16-byte positive serial. */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
    assert_int_equal(ASN1_STRING_length(serial), 16);
    assert_true(ASN1_STRING_get0_data(serial)[0] < 0x80);
    assert_true(ASN1_STRING_get0_data(serial)[0] > 0);
}

static void assert_issued_matches(X509 *cert, const struct iotsec_pki_issued *info)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    uint8_t digest[32];
    assert_true(iotsec_ok(iotsec_sha256(iotsec_slice_make(der, (size_t)len), digest)));
    char hex[65];
    pki_hex(digest, sizeof(digest), hex);
    assert_string_equal(info->fingerprint, hex);
    OPENSSL_free(der);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    pki_hex(ASN1_STRING_get0_data(serial), (size_t)ASN1_STRING_length(serial), hex);
    assert_string_equal(info->serial, hex);
    assert_int_equal(strlen(info->serial), 32);
}

static void pki_issues_device_certificate_from_csr(void **state)
{
    struct fixture *f = *state;
    const char *curves[][2] = {{"EC", "P-256"}, {"ED25519", NULL}};
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *pkey = i < 2 ? evp_key(curves[i][0], curves[i][1]) : rsa_key(2048);
        struct iotsec_buf csr = {0}, pem = {0};
        /* The CSR asks for CA:TRUE; the issued certificate must still be CA:FALSE. */
        make_csr(pkey, DEVICE, true, &csr);
        struct iotsec_pki_device_params p = {.device_id = DEVICE, .validity_days = 365, .now = NOW};
        struct iotsec_pki_issued info;
        assert_true(iotsec_ok(
            iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&csr), &pem, &info)));
        X509 *cert = parse_pem(&pem);
        assert_device_profile(cert, DEVICE);
        assert_issued_matches(cert, &info);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), pkey), 1);
        assert_int_equal(info.not_before, NOW - IOTSEC_PKI_BACKDATE_SECONDS);
        assert_int_equal(info.not_after, NOW + 365 * DAY);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert), NOW - 300), 0);

        struct iotsec_pki_peer peer;
        assert_true(iotsec_ok(verify_client(f, &pem, NOW, &peer)));
        assert_string_equal(peer.device_id, DEVICE);
        assert_string_equal(peer.fingerprint, info.fingerprint);
        assert_string_equal(peer.serial, info.serial);
        assert_int_equal(peer.not_after, info.not_after);
        X509_free(cert);
        EVP_PKEY_free(pkey);
        iotsec_buf_free(&csr);
        iotsec_buf_free(&pem);
    }
}

static void pki_csr_without_cn_is_accepted_and_mismatching_cn_refused(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY *pkey = evp_key("EC", "P-256");
    struct iotsec_pki_device_params p = {.device_id = DEVICE, .validity_days = 30, .now = NOW};
    struct iotsec_buf csr = {0}, pem = {0};
    make_csr(pkey, NULL, false, &csr);
    assert_true(
        iotsec_ok(iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&csr), &pem, NULL)));
    iotsec_buf_reset(&csr);
    iotsec_buf_reset(&pem);
    make_csr(pkey, "sensor-0043", false, &csr);
    assert_refused(iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&csr), &pem, NULL),
                   "differs from the device id");
    assert_int_equal(pem.len, 0);
    EVP_PKEY_free(pkey);
    iotsec_buf_free(&csr);
    iotsec_buf_free(&pem);
}

static void pki_refuses_bad_csrs(void **state)
{
    struct fixture *f = *state;
    struct iotsec_pki_device_params p = {.device_id = DEVICE, .validity_days = 30, .now = NOW};
    struct iotsec_buf csr = {0}, pem = {0};

    /* Weak and unsupported keys. */
    EVP_PKEY *weak = rsa_key(1024);
    make_csr(weak, DEVICE, false, &csr);
    assert_refused(iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&csr), &pem, NULL),
                   "RSA key of 1024 bits");
    EVP_PKEY_free(weak);
    iotsec_buf_reset(&csr);
    EVP_PKEY *p384 = evp_key("EC", "P-384");
    make_csr(p384, DEVICE, false, &csr);
    assert_refused(iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&csr), &pem, NULL),
                   "secp384r1");
    EVP_PKEY_free(p384);

    /* A broken self-signature: flip one byte of the signature in the DER. */
    iotsec_buf_reset(&csr);
    EVP_PKEY *pkey = evp_key("EC", "P-256");
    make_csr(pkey, DEVICE, false, &csr);
    X509_REQ *req = NULL;
    assert_true(iotsec_ok(pki_csr_parse(iotsec_buf_slice(&csr), &req)));
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    der[len - 5] ^= 0x01;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio(bio, "CERTIFICATE REQUEST", "", der, len) > 0);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    struct iotsec_slice broken = iotsec_slice_make(data, (size_t)n);
    assert_refused(iotsec_pki_issue_device_csr(f->root, &p, broken, &pem, NULL),
                   "self-signature does not verify");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_VERIFY);
    BIO_free(bio);
    OPENSSL_free(der);
    X509_REQ_free(req);

    /* Framing: text before the block, a second block, another PEM type, garbage. */
    struct iotsec_buf framed = {0};
    assert_true(iotsec_ok(iotsec_buf_append_str(&framed, "hello\n")));
    assert_true(iotsec_ok(iotsec_buf_append_slice(&framed, iotsec_buf_slice(&csr))));
    assert_refused(iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&framed), &pem, NULL),
                   "outside the PEM blocks");
    iotsec_buf_reset(&framed);
    assert_true(iotsec_ok(iotsec_buf_append_slice(&framed, iotsec_buf_slice(&csr))));
    assert_true(iotsec_ok(iotsec_buf_append_slice(&framed, iotsec_buf_slice(&csr))));
    assert_refused(iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&framed), &pem, NULL),
                   "found more");
    assert_refused(
        iotsec_pki_issue_device_csr(f->root, &p, iotsec_buf_slice(&f->root_pem), &pem, NULL),
        "'CERTIFICATE' where 'CERTIFICATE REQUEST'");
    assert_refused(
        iotsec_pki_issue_device_csr(f->root, &p, iotsec_slice_from_str("junk"), &pem, NULL),
        "outside the PEM blocks");
    assert_refused(
        iotsec_pki_issue_device_csr(f->root, &p, iotsec_slice_from_str(" \n"), &pem, NULL),
        "found nothing");
    assert_int_equal(pem.len, 0);

    struct iotsec_key *key = NULL;
    assert_true(iotsec_ok(iotsec_pki_csr_public_key(iotsec_buf_slice(&csr), &key)));
    assert_int_equal(iotsec_key_type(key), IOTSEC_KEY_EC_P256);
    iotsec_key_free(key);
    EVP_PKEY_free(pkey);
    iotsec_buf_free(&framed);
    iotsec_buf_free(&csr);
    iotsec_buf_free(&pem);
}

static void pki_issues_device_certificate_from_key(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf pem = {0};
    struct iotsec_pki_issued info = issue_device_at(f, "dev_A-9", NOW, 90, &pem);
    X509 *cert = parse_pem(&pem);
    assert_device_profile(cert, "dev_A-9");
    assert_issued_matches(cert, &info);
    X509_free(cert);
    /* Two issues never share a serial. */
    struct iotsec_buf pem2 = {0};
    struct iotsec_pki_issued info2 = issue_device_at(f, "dev_A-9", NOW, 90, &pem2);
    assert_string_not_equal(info.serial, info2.serial);
    iotsec_buf_free(&pem);
    iotsec_buf_free(&pem2);

    /* Any key of the key policy: here an RSA-3072 public key. */
    EVP_PKEY *rsa = rsa_key(3072);
    struct iotsec_key *rsa_pub = key_from_evp(rsa);
    struct iotsec_pki_device_params rp = {.device_id = "rsa-dev", .validity_days = 30, .now = NOW};
    iotsec_buf_reset(&pem);
    assert_true(iotsec_ok(iotsec_pki_issue_device_key(f->root, &rp, rsa_pub, &pem, NULL)));
    struct iotsec_pki_peer peer;
    assert_true(iotsec_ok(verify_client(f, &pem, NOW, &peer)));
    assert_string_equal(peer.device_id, "rsa-dev");
    iotsec_key_free(rsa_pub);
    EVP_PKEY_free(rsa);
    iotsec_buf_free(&pem);

    /* crypto.h accepts RSA-2052, the certificate policy does not (BR 6.1.5: a multiple
     * of 8 bits): nothing is issued that our verifiers would refuse. */
    EVP_PKEY *odd = rsa_key(2052);
    struct iotsec_key *odd_pub = key_from_evp(odd);
    assert_refused(iotsec_pki_issue_device_key(f->root, &rp, odd_pub, &pem, NULL),
                   "our verifiers would refuse it");
    assert_int_equal(pem.len, 0);
    iotsec_key_free(odd_pub);
    EVP_PKEY_free(odd);

    /* The CA's own key is never certified as a device. */
    struct iotsec_pki_device_params p = {.device_id = DEVICE, .validity_days = 30, .now = NOW};
    assert_refused(iotsec_pki_issue_device_key(f->root, &p, f->root_key, &pem, NULL),
                   "CA's own key");
}

static void pki_refuses_bad_device_ids_at_issue(void **state)
{
    struct fixture *f = *state;
    char long_id[IOTSEC_PKI_DEVICE_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *bad[] = {"",      "dev 1", " dev1",  "dev1 ",        "d\xc3\xa9v",
                         "dev/1", "dev.1", "dev\n1", "dev,CN=admin", long_id};
    struct iotsec_key *key = ec_key();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct iotsec_pki_device_params p = {.device_id = bad[i], .validity_days = 30, .now = NOW};
        struct iotsec_buf pem = {0};
        assert_false(iotsec_ok(iotsec_pki_issue_device_key(f->root, &p, key, &pem, NULL)));
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
        assert_int_equal(pem.len, 0);
        assert_false(iotsec_pki_device_id_valid(bad[i]));
    }
    struct iotsec_pki_device_params p = {.device_id = NULL, .validity_days = 30, .now = NOW};
    struct iotsec_buf pem = {0};
    assert_false(iotsec_ok(iotsec_pki_issue_device_key(f->root, &p, key, &pem, NULL)));
    long_id[IOTSEC_PKI_DEVICE_ID_MAX] = '\0'; /* exactly 64 is fine */
    assert_true(iotsec_pki_device_id_valid(long_id));
    assert_true(iotsec_pki_device_id_valid("A-z_09"));
    iotsec_key_free(key);
}

/* ---- client verification: every refusal ---- */

static void pki_client_refuses_expired_and_not_yet_valid(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf pem = {0};
    /* Issued 400 days ago for 30 days. */
    struct iotsec_pki_issued info = issue_device_at(f, DEVICE, NOW - 400 * DAY, 30, &pem);
    struct iotsec_pki_peer peer;
    assert_refused(verify_client(f, &pem, NOW, &peer), "certificate has expired");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    assert_string_equal(peer.device_id, "");
    /* Valid through its last second, inclusive (RFC 5280 4.1.2.5). */
    assert_true(iotsec_ok(verify_client(f, &pem, info.not_after, &peer)));
    assert_refused(verify_client(f, &pem, info.not_after + 1, &peer), "expired");
    /* Before not_before (5 minutes before issuance). */
    assert_true(iotsec_ok(verify_client(f, &pem, info.not_before, &peer)));
    assert_refused(verify_client(f, &pem, info.not_before - 1, &peer), "not yet valid");
    iotsec_buf_free(&pem);
}

static void pki_client_refuses_wrong_ca_and_self_signed_leaf(void **state)
{
    struct fixture *f = *state;
    /* Another root, unknown to the verifier, with the same name. */
    struct fixture other = {0};
    make_root(&other, NOW - 1000 * DAY);
    struct iotsec_buf pem = {0};
    issue_device_at(&other, DEVICE, NOW, 30, &pem);
    struct iotsec_pki_peer peer;
    assert_refused(verify_client(f, &pem, NOW, &peer), "pki: ");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    /* With its root in the chain too: still not one of our anchors. */
    assert_true(iotsec_ok(iotsec_buf_append_slice(&pem, iotsec_buf_slice(&other.root_pem))));
    assert_refused(verify_client(f, &pem, NOW, &peer), "pki: ");

    /* A self-signed device certificate (clientAuth, CN = a valid id). */
    EVP_PKEY *pkey = evp_key("EC", "P-256");
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 12345);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)DEVICE,
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){NOW - DAY});
    X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &(time_t){NOW + DAY});
    X509_set_pubkey(x, pkey);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "clientAuth");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    struct iotsec_buf self = {0};
    assert_true(iotsec_ok(pki_cert_to_pem(x, &self)));
    assert_refused(verify_client(f, &self, NOW, &peer), "self-signed certificate");
    /* Nor can it be added as an anchor: it is not a CA. */
    assert_refused(iotsec_pki_verifier_add_trusted(f->verifier, iotsec_buf_slice(&self)),
                   "not a CA");
    X509_free(x);
    EVP_PKEY_free(pkey);
    iotsec_buf_free(&self);
    iotsec_buf_free(&pem);
    iotsec_pki_verifier_free(other.verifier);
    iotsec_pki_ca_free(other.root);
    iotsec_buf_free(&other.root_pem);
    iotsec_key_free(other.root_key);
}

static void pki_client_refuses_revoked_certificate(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf revoked_pem = {0}, good_pem = {0}, crl = {0};
    struct iotsec_pki_issued revoked = issue_device_at(f, "revoked-1", NOW - DAY, 30, &revoked_pem);
    issue_device_at(f, "good-1", NOW - DAY, 30, &good_pem);
    struct iotsec_pki_revoked entries[] = {
        {.serial = revoked.serial,
         .revoked_at = NOW - 3600,
         .reason = IOTSEC_PKI_REASON_KEY_COMPROMISE},
    };
    struct iotsec_pki_crl_params cp = {
        .crl_number = 7, .this_update = NOW - 60, .next_update_seconds = 7 * DAY};
    assert_true(iotsec_ok(iotsec_pki_crl_build(f->root, &cp, entries, 1, &crl)));
    struct iotsec_pki_peer peer;
    assert_true(iotsec_ok(verify_client(f, &revoked_pem, NOW, &peer))); /* no CRL yet */
    assert_true(iotsec_ok(iotsec_pki_verifier_add_crl(f->verifier, iotsec_buf_slice(&crl))));
    assert_refused(verify_client(f, &revoked_pem, NOW, &peer), "certificate revoked");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    assert_true(iotsec_ok(verify_client(f, &good_pem, NOW, &peer)));
    assert_string_equal(peer.device_id, "good-1");
    /* Fail closed: once the CRL is past its nextUpdate, nothing passes. */
    assert_refused(verify_client(f, &good_pem, NOW + 8 * DAY, &peer), "CRL has expired");
    iotsec_buf_free(&revoked_pem);
    iotsec_buf_free(&good_pem);
    iotsec_buf_free(&crl);
}

static void pki_client_refuses_server_certificate(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *key = ec_key();
    const char *dns[] = {"sensor-0042.example.net"};
    struct iotsec_pki_server_params sp = {
        .dns_names = dns, .dns_count = 1, .validity_days = 30, .now = NOW};
    struct iotsec_buf pem = {0};
    assert_true(iotsec_ok(iotsec_pki_issue_server(f->root, &sp, key, &pem, NULL)));
    struct iotsec_pki_peer peer;
    assert_refused(verify_client(f, &pem, NOW, &peer), "unsuitable certificate purpose");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    iotsec_buf_free(&pem);
    iotsec_key_free(key);
}

static void pki_client_refuses_ca_certificate_as_leaf(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *ikey = ec_key();
    /* A CA whose CN looks like a device id. */
    struct iotsec_pki_ca_params p = ca_params("sensor-0042", NOW - DAY, 100);
    struct iotsec_buf ipem = {0};
    assert_true(iotsec_ok(iotsec_pki_ca_create_intermediate(f->root, ikey, &p, &ipem)));
    struct iotsec_pki_peer peer;
    assert_refused(verify_client(f, &ipem, NOW, &peer), "pki: ");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    /* And by the policy alone, whatever OpenSSL's purpose check says. */
    X509 *cert = parse_pem(&ipem);
    assert_refused(pki_policy_check_leaf(cert, PKI_PURPOSE_CLIENT), "CA:TRUE");
    X509_free(cert);
    iotsec_buf_free(&ipem);
    iotsec_key_free(ikey);
}

static void pki_client_refuses_bad_common_names(void **state)
{
    struct fixture *f = *state;
    char long_cn[66];
    memset(long_cn, 'a', 65);
    long_cn[65] = '\0';
    struct {
        const char *cns[2];
        size_t n;
        const char *why;
    } cases[] = {
        {{"dev 1"}, 1, "not a device id"},           {{long_cn}, 1, "not a device id"},
        {{"d\xc3\xa9vice"}, 1, "not a device id"},   {{"dev-1", "dev-2"}, 2, "more than one CN"},
        {{"dev-1", "dev-1"}, 2, "more than one CN"}, {{NULL}, 0, "Subject name empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509_NAME *name = name_with(cases[i].cns, cases[i].n);
        struct iotsec_buf pem = {0};
        craft_device_cert(f, name, &pem);
        struct iotsec_pki_peer peer;
        assert_refused(verify_client(f, &pem, NOW, &peer), cases[i].why);
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
        assert_string_equal(peer.device_id, "");
        X509_NAME_free(name);
        iotsec_buf_free(&pem);
    }
    /* A subject without any CN. */
    X509_NAME *name = X509_NAME_new();
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                                (const unsigned char *)"dev-1", -1, -1, 0),
                     1);
    struct iotsec_buf no_cn = {0};
    craft_device_cert(f, name, &no_cn);
    struct iotsec_pki_peer no_cn_peer;
    assert_refused(verify_client(f, &no_cn, NOW, &no_cn_peer), "no CN");
    X509_NAME_free(name);
    iotsec_buf_free(&no_cn);

    /* An empty CN value. */
    name = X509_NAME_new();
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                                (const unsigned char *)"", 0, -1, 0),
                     1);
    struct iotsec_buf pem = {0};
    craft_device_cert(f, name, &pem);
    struct iotsec_pki_peer peer;
    assert_refused(verify_client(f, &pem, NOW, &peer), "not a device id");
    X509_NAME_free(name);
    iotsec_buf_free(&pem);

    /* The control: the same construction with a good CN passes. */
    const char *good[] = {"dev-1"};
    name = name_with(good, 1);
    struct iotsec_buf ok = {0};
    craft_device_cert(f, name, &ok);
    assert_true(iotsec_ok(verify_client(f, &ok, NOW, &peer)));
    assert_string_equal(peer.device_id, "dev-1");
    X509_NAME_free(name);
    iotsec_buf_free(&ok);
}

static void pki_reissued_device_old_certificate_has_old_fingerprint(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf old_pem = {0}, new_pem = {0};
    struct iotsec_pki_issued old_info = issue_device_at(f, DEVICE, NOW - 10 * DAY, 365, &old_pem);
    struct iotsec_pki_issued new_info = issue_device_at(f, DEVICE, NOW - DAY, 365, &new_pem);
    /* Both chain to the CA and carry the same id: the chain check alone cannot tell them
     * apart. The fingerprint can, and that is what the registry compares. */
    struct iotsec_pki_peer old_peer, new_peer;
    assert_true(iotsec_ok(verify_client(f, &old_pem, NOW, &old_peer)));
    assert_true(iotsec_ok(verify_client(f, &new_pem, NOW, &new_peer)));
    assert_string_equal(old_peer.device_id, new_peer.device_id);
    assert_string_equal(old_peer.fingerprint, old_info.fingerprint);
    assert_string_equal(new_peer.fingerprint, new_info.fingerprint);
    assert_string_not_equal(old_peer.fingerprint, new_info.fingerprint);
    iotsec_buf_free(&old_pem);
    iotsec_buf_free(&new_pem);
}

static void pki_verify_parses_strictly_and_within_bounds(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf pem = {0}, in = {0};
    issue_device_at(f, DEVICE, NOW, 30, &pem);
    struct iotsec_pki_peer peer;

    /* DER is accepted as well as PEM. */
    X509 *cert = parse_pem(&pem);
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    assert_true(iotsec_ok(iotsec_buf_append(&in, der, (size_t)len)));
    assert_true(iotsec_ok(verify_client(f, &in, NOW, &peer)));
    /* DER with a trailing byte is not. */
    assert_true(iotsec_ok(iotsec_buf_append_u8(&in, 0)));
    assert_false(iotsec_ok(verify_client(f, &in, NOW, &peer)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);

    iotsec_buf_reset(&in);
    assert_true(iotsec_ok(iotsec_buf_append_str(&in, "Subject: CN=admin\n")));
    assert_true(iotsec_ok(iotsec_buf_append_slice(&in, iotsec_buf_slice(&pem))));
    assert_refused(verify_client(f, &in, NOW, &peer), "outside the PEM blocks");
    iotsec_buf_reset(&in);
    assert_true(iotsec_ok(iotsec_buf_append_slice(&in, iotsec_buf_slice(&pem))));
    assert_true(iotsec_ok(iotsec_buf_append_str(&in, "trailing\n")));
    assert_refused(verify_client(f, &in, NOW, &peer), "outside the PEM blocks");
    iotsec_buf_reset(&in);
    for (int i = 0; i < IOTSEC_PKI_CHAIN_CERTS_MAX + 1; i++)
        assert_true(iotsec_ok(iotsec_buf_append_slice(&in, iotsec_buf_slice(&pem))));
    assert_refused(verify_client(f, &in, NOW, &peer), "more than 16 certificates");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TOO_LARGE);
    iotsec_buf_reset(&in);
    assert_refused(verify_client(f, &in, NOW, &peer), "no certificate");

    OPENSSL_free(der);
    X509_free(cert);
    iotsec_buf_free(&pem);
    iotsec_buf_free(&in);
}

/* ---- server verification ---- */

static void pki_server_is_matched_by_san_dns_and_ip(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *key = ec_key();
    const char *dns[] = {"broker.iotsec.test", "api.iotsec.test"};
    const char *ips[] = {"192.0.2.10", "2001:db8::1"};
    struct iotsec_pki_server_params sp = {.dns_names = dns,
                                          .dns_count = 2,
                                          .ip_addresses = ips,
                                          .ip_count = 2,
                                          .validity_days = 90,
                                          .now = NOW};
    struct iotsec_buf pem = {0};
    struct iotsec_pki_issued info;
    assert_true(iotsec_ok(iotsec_pki_issue_server(f->root, &sp, key, &pem, &info)));
    X509 *cert = parse_pem(&pem);
    assert_int_equal(X509_get_extended_key_usage(cert), XKU_SSL_SERVER);
    assert_false(X509_get_extension_flags(cert) & EXFLAG_CA);
    assert_false(ext_critical(cert, NID_subject_alt_name));
    char cn[80];
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "broker.iotsec.test");
    X509_free(cert);

    struct iotsec_pki_peer peer;
    const char *good[] = {"broker.iotsec.test", "api.iotsec.test", "API.iotsec.test",
                          "192.0.2.10",         "2001:db8::1",     "2001:DB8:0::1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!iotsec_ok(
                iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW, good[i], &peer)))
            fail_msg("%s: %s", good[i], iotsec_error_message());
        assert_string_equal(peer.fingerprint, info.fingerprint);
        assert_string_equal(peer.device_id, "");
    }
    const char *bad[] = {"iotsec.test", "x.broker.iotsec.test", "192.0.2.11", "2001:db8::2",
                         "broker.iotsec.tes"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused(
            iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW, bad[i], &peer),
            "mismatch");
    assert_refused(
        iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW, "*.iotsec.test", &peer),
        "neither a host name");
    assert_refused(iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW, "a b", &peer),
                   "neither a host name");

    /* A device certificate is no server. */
    struct iotsec_buf device = {0};
    issue_device_at(f, "broker", NOW, 30, &device);
    assert_refused(
        iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&device), NOW, "broker", &peer),
        "pki: ");
    iotsec_buf_free(&device);
    iotsec_buf_free(&pem);
    iotsec_key_free(key);
}

static void pki_server_name_only_in_cn_is_refused(void **state)
{
    struct fixture *f = *state;
    /* CN says one host, the SAN another: the CN is never read as a name. */
    struct iotsec_key *key = ec_key();
    EVP_PKEY *pkey = NULL;
    assert_true(iotsec_ok(pki_key_to_pkey(key, &pkey)));
    X509 *root = parse_pem(&f->root_pem);
    const char *cns[] = {"cn-only.iotsec.test"};
    X509_NAME *subject = name_with(cns, 1);
    GENERAL_NAMES *san = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    ASN1_STRING_set(ia5, "san.iotsec.test", -1);
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    sk_GENERAL_NAME_push(san, gn);
    struct pki_template_params p = {
        .profile = PKI_PROFILE_SERVER,
        .subject = subject,
        .issuer = X509_get_subject_name(root),
        .subject_key = pkey,
        .issuer_key_id = X509_get0_subject_key_id(root),
        .not_before = NOW - DAY,
        .not_after = NOW + DAY,
        .san = san,
    };
    X509 *tmpl = NULL, *cert = NULL;
    assert_true(iotsec_ok(pki_template_new(&p, &tmpl)));
    assert_true(iotsec_ok(pki_sign_cert(&f->root_signer, tmpl, &cert)));
    struct iotsec_buf pem = {0};
    assert_true(iotsec_ok(pki_cert_to_pem(cert, &pem)));
    struct iotsec_pki_peer peer;
    assert_refused(iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW,
                                            "cn-only.iotsec.test", &peer),
                   "hostname mismatch");
    /* And even for its SAN name the CN that names another host makes it refused. */
    assert_refused(iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW,
                                            "san.iotsec.test", &peer),
                   "CN is not one of its SAN names");
    GENERAL_NAMES_free(san);
    X509_NAME_free(subject);
    X509_free(cert);
    X509_free(tmpl);
    X509_free(root);
    EVP_PKEY_free(pkey);
    iotsec_buf_free(&pem);
    iotsec_key_free(key);
}

static void pki_server_issue_checks_names(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *key = ec_key();
    struct iotsec_buf pem = {0};
    const char *bad_dns[][1] = {
        {"*.iotsec.test"}, {"Broker.iotsec.test"}, {"a_b.test"}, {"-a.test"}, {"a..test"}, {""},
        {"1.2.3.4"}};
    for (size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
        struct iotsec_pki_server_params sp = {
            .dns_names = bad_dns[i], .dns_count = 1, .validity_days = 30, .now = NOW};
        assert_refused(iotsec_pki_issue_server(f->root, &sp, key, &pem, NULL), "DNS name 1");
    }
    const char *bad_ip[] = {"192.0.2.256", "01.2.3.4", "1.2.3", "::g"};
    for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++) {
        struct iotsec_pki_server_params sp = {
            .ip_addresses = &bad_ip[i], .ip_count = 1, .validity_days = 30, .now = NOW};
        assert_refused(iotsec_pki_issue_server(f->root, &sp, key, &pem, NULL), "IP address 1");
    }
    struct iotsec_pki_server_params none = {.validity_days = 30, .now = NOW};
    assert_refused(iotsec_pki_issue_server(f->root, &none, key, &pem, NULL), "1 to 32");
    assert_int_equal(pem.len, 0);

    /* An IP-only server: the CN is the canonical text of its address. */
    const char *ip[] = {"2001:DB8:0:0:0:0:0:1"};
    struct iotsec_pki_server_params sp = {
        .ip_addresses = ip, .ip_count = 1, .validity_days = 30, .now = NOW};
    assert_true(iotsec_ok(iotsec_pki_issue_server(f->root, &sp, key, &pem, NULL)));
    X509 *cert = parse_pem(&pem);
    char cn[80];
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "2001:db8::1");
    X509_free(cert);
    struct iotsec_pki_peer peer;
    assert_true(iotsec_ok(
        iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW, "2001:db8::1", &peer)));

    /* A host name longer than a CN may be: empty subject, critical SAN. */
    char longname[120];
    snprintf(longname, sizeof(longname), "%s.%s.iotsec.test",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    const char *ln[] = {longname};
    struct iotsec_pki_server_params lp = {
        .dns_names = ln, .dns_count = 1, .validity_days = 30, .now = NOW};
    iotsec_buf_reset(&pem);
    assert_true(iotsec_ok(iotsec_pki_issue_server(f->root, &lp, key, &pem, NULL)));
    cert = parse_pem(&pem);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)), 0);
    assert_true(ext_critical(cert, NID_subject_alt_name));
    X509_free(cert);
    assert_true(iotsec_ok(
        iotsec_pki_verify_server(f->verifier, iotsec_buf_slice(&pem), NOW, longname, &peer)));
    iotsec_buf_free(&pem);
    iotsec_key_free(key);
}

/* ---- CRL ---- */

static void pki_crl_has_the_v2_profile(void **state)
{
    struct fixture *f = *state;
    struct iotsec_pki_revoked entries[] = {
        {.serial = "7f00000000000000000000000000abcd",
         .revoked_at = NOW - 100,
         .reason = IOTSEC_PKI_REASON_SUPERSEDED},
        {.serial = "01", .revoked_at = NOW - 200, .reason = IOTSEC_PKI_REASON_UNSPECIFIED},
    };
    struct iotsec_pki_crl_params cp = {
        .crl_number = 42, .this_update = NOW, .next_update_seconds = DAY};
    struct iotsec_buf pem = {0};
    assert_true(iotsec_ok(iotsec_pki_crl_build(f->root, &cp, entries, 2, &pem)));
    X509_CRL *crl = NULL;
    assert_true(iotsec_ok(pki_crl_parse(iotsec_buf_slice(&pem), &crl)));
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_CRL_get_signature_nid(crl), NID_ecdsa_with_SHA256);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), NOW), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), NOW + DAY), 0);
    int crit = -1;
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
    assert_int_equal(ASN1_INTEGER_get(number), 42);
    assert_int_equal(crit, 0);
    ASN1_INTEGER_free(number);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    X509 *root = parse_pem(&f->root_pem);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(root)), 0);
    AUTHORITY_KEYID_free(akid);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(root)), 1);
    STACK_OF(X509_REVOKED) *list = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(list), 2);
    /* Sorted by serial: "01" first, without a reason code (unspecified). */
    X509_REVOKED *first = sk_X509_REVOKED_value(list, 0);
    assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(first)), 1);
    assert_int_equal(X509_REVOKED_get_ext_count(first), 0);
    X509_REVOKED *second = sk_X509_REVOKED_value(list, 1);
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(second, NID_crl_reason, NULL, NULL);
    assert_int_equal(ASN1_ENUMERATED_get(reason), IOTSEC_PKI_REASON_SUPERSEDED);
    ASN1_ENUMERATED_free(reason);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(second), NOW - 100), 0);
    X509_free(root);
    X509_CRL_free(crl);

    /* An empty CRL has no revokedCertificates at all. */
    iotsec_buf_reset(&pem);
    assert_true(iotsec_ok(iotsec_pki_crl_build(f->root, &cp, NULL, 0, &pem)));
    assert_true(iotsec_ok(pki_crl_parse(iotsec_buf_slice(&pem), &crl)));
    assert_null(X509_CRL_get_REVOKED(crl));
    X509_CRL_free(crl);
    iotsec_buf_free(&pem);
}

static void pki_crl_refuses_bad_entries(void **state)
{
    struct fixture *f = *state;
    struct iotsec_pki_crl_params cp = {
        .crl_number = 1, .this_update = NOW, .next_update_seconds = DAY};
    struct iotsec_buf pem = {0};
    struct iotsec_pki_revoked e = {.serial = "0", .revoked_at = NOW - 1};
    assert_refused(iotsec_pki_crl_build(f->root, &cp, &e, 1, &pem), "zero");
    e.serial = "xyz";
    assert_refused(iotsec_pki_crl_build(f->root, &cp, &e, 1, &pem), "not hex");
    e.serial = "0123456789abcdef0123456789abcdef012345678";
    assert_refused(iotsec_pki_crl_build(f->root, &cp, &e, 1, &pem), "hex digits");
    e.serial = "ff00000000000000000000000000000000000000"; /* 21 octets once positive */
    assert_refused(iotsec_pki_crl_build(f->root, &cp, &e, 1, &pem), "longer than 20 octets");
    e.serial = "0a";
    e.revoked_at = NOW + 10;
    assert_refused(iotsec_pki_crl_build(f->root, &cp, &e, 1, &pem), "not before thisUpdate");
    e.revoked_at = NOW - 1;
    e.reason = (enum iotsec_pki_crl_reason)6; /* certificateHold */
    assert_refused(iotsec_pki_crl_build(f->root, &cp, &e, 1, &pem), "reason code");
    struct iotsec_pki_revoked dup[] = {{.serial = "0a", .revoked_at = NOW - 1},
                                       {.serial = "0A", .revoked_at = NOW - 2}};
    assert_refused(iotsec_pki_crl_build(f->root, &cp, dup, 2, &pem), "listed twice");
    cp.next_update_seconds = 0;
    assert_refused(iotsec_pki_crl_build(f->root, &cp, NULL, 0, &pem), "nextUpdate");
    assert_int_equal(pem.len, 0);
}

static void pki_verifier_refuses_crl_without_number(void **state)
{
    struct fixture *f = *state;
    /* Signed by our CA, but without the CRL number extension. */
    X509 *root = parse_pem(&f->root_pem);
    X509_CRL *tmpl = X509_CRL_new();
    X509_CRL_set_version(tmpl, X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(tmpl, X509_get_subject_name(root));
    ASN1_TIME *t = ASN1_TIME_set(NULL, NOW);
    X509_CRL_set1_lastUpdate(tmpl, t);
    ASN1_TIME_set(t, NOW + DAY);
    X509_CRL_set1_nextUpdate(tmpl, t);
    ASN1_TIME_free(t);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(root));
    X509_CRL_add1_ext_i2d(tmpl, NID_authority_key_identifier, akid, 0, 0);
    AUTHORITY_KEYID_free(akid);
    X509_CRL *crl = NULL;
    assert_true(iotsec_ok(pki_sign_crl(&f->root_signer, tmpl, &crl)));
    struct iotsec_buf pem = {0};
    assert_true(iotsec_ok(pki_crl_to_pem(crl, &pem)));
    assert_refused(iotsec_pki_verifier_add_crl(f->verifier, iotsec_buf_slice(&pem)),
                   "no CRL number");
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    assert_refused(iotsec_pki_verifier_add_crl(f->verifier, iotsec_buf_slice(&f->root_pem)),
                   "'CERTIFICATE' where 'X509 CRL'");
    iotsec_buf_free(&pem);
    X509_CRL_free(crl);
    X509_CRL_free(tmpl);
    X509_free(root);
}

/* ---- OpenSSL's command line as an independent reader ---- */

static void pki_openssl_cli_verifies_chain_and_reads_crl(void **state)
{
    struct fixture *f = *state;
    /* The CLI checks against the real clock, so this CA lives around now. */
    struct fixture live = {0};
    time_t now = time(NULL);
    make_root(&live, now - DAY);
    struct iotsec_key *ikey = ec_key();
    struct iotsec_pki_ca_params ip = ca_params("iotsec devices", now - DAY, 365);
    struct iotsec_buf ipem = {0}, leaf = {0}, crl = {0}, out = {0};
    assert_true(iotsec_ok(iotsec_pki_ca_create_intermediate(live.root, ikey, &ip, &ipem)));
    struct iotsec_pki_signer isigner;
    iotsec_pki_signer_from_key(ikey, &isigner);
    struct iotsec_pki_ca *ica = NULL;
    assert_true(iotsec_ok(iotsec_pki_ca_open(iotsec_buf_slice(&ipem), &isigner, &ica)));
    struct iotsec_key *dkey = ec_key();
    struct iotsec_pki_device_params dp = {.device_id = DEVICE, .validity_days = 30, .now = now};
    struct iotsec_pki_issued info;
    assert_true(iotsec_ok(iotsec_pki_issue_device_key(ica, &dp, dkey, &leaf, &info)));

    char ca_path[128], inter_path[128], leaf_path[128], crl_path[128], cmd[1024];
    write_file(f->dir, "ca.pem", &live.root_pem, ca_path, sizeof(ca_path));
    write_file(f->dir, "inter.pem", &ipem, inter_path, sizeof(inter_path));
    write_file(f->dir, "leaf.pem", &leaf, leaf_path, sizeof(leaf_path));
    snprintf(cmd, sizeof(cmd),
             "openssl verify -x509_strict -purpose sslclient -CAfile '%s' -untrusted '%s' '%s' "
             "2>&1",
             ca_path, inter_path, leaf_path);
    int status = run(cmd, &out);
    if (status != 0)
        fail_msg("openssl verify failed: %s", (const char *)out.ptr);
    assert_non_null(strstr((const char *)out.ptr, ": OK"));

    struct iotsec_pki_revoked e = {
        .serial = info.serial, .revoked_at = now - 60, .reason = IOTSEC_PKI_REASON_KEY_COMPROMISE};
    struct iotsec_pki_crl_params cp = {
        .crl_number = 3, .this_update = now - 30, .next_update_seconds = DAY};
    assert_true(iotsec_ok(iotsec_pki_crl_build(ica, &cp, &e, 1, &crl)));
    write_file(f->dir, "crl.pem", &crl, crl_path, sizeof(crl_path));
    snprintf(cmd, sizeof(cmd), "openssl crl -in '%s' -noout -text 2>&1", crl_path);
    iotsec_buf_reset(&out);
    assert_int_equal(run(cmd, &out), 0);
    const char *text = (const char *)out.ptr;
    char want[80];
    snprintf(want, sizeof(want), "Serial Number: %s", info.serial);
    if (strcasestr(text, want) == NULL)
        fail_msg("serial %s not listed by openssl crl:\n%s", info.serial, text);
    assert_non_null(strstr(text, "Key Compromise"));
    assert_non_null(strstr(text, "X509v3 CRL Number"));
    assert_non_null(strstr(text, "Version 2"));
    /* And openssl verify, given the CRL, refuses the revoked leaf. */
    snprintf(cmd, sizeof(cmd),
             "openssl verify -crl_check -CRLfile '%s' -CAfile '%s' -untrusted '%s' '%s' 2>&1",
             crl_path, ca_path, inter_path, leaf_path);
    iotsec_buf_reset(&out);
    assert_int_not_equal(run(cmd, &out), 0);
    assert_non_null(strstr((const char *)out.ptr, "certificate revoked"));

    iotsec_buf_free(&out);
    iotsec_buf_free(&crl);
    iotsec_buf_free(&leaf);
    iotsec_buf_free(&ipem);
    iotsec_pki_ca_free(ica);
    iotsec_key_free(dkey);
    iotsec_key_free(ikey);
    iotsec_pki_verifier_free(live.verifier);
    iotsec_pki_ca_free(live.root);
    iotsec_buf_free(&live.root_pem);
    iotsec_key_free(live.root_key);
}

static void pki_cert_describe_reports_id_fingerprint_serial(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf pem = {0};
    struct iotsec_pki_issued info = issue_device_at(f, DEVICE, NOW, 30, &pem);
    struct iotsec_pki_peer d;
    assert_true(iotsec_ok(iotsec_pki_cert_describe(iotsec_buf_slice(&pem), &d)));
    assert_string_equal(d.device_id, DEVICE);
    assert_string_equal(d.fingerprint, info.fingerprint);
    assert_string_equal(d.serial, info.serial);
    assert_int_equal(d.not_after, info.not_after);
    assert_true(iotsec_ok(iotsec_pki_cert_describe(iotsec_buf_slice(&f->root_pem), &d)));
    assert_string_equal(d.device_id, ""); /* "iotsec test root" is not a device id */
    assert_false(iotsec_ok(iotsec_pki_cert_describe(iotsec_slice_from_str("nope"), &d)));
    iotsec_buf_free(&pem);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(pki_root_has_the_ca_profile),
        T(pki_ca_open_checks_the_certificate_and_key),
        T(pki_refuses_a_signature_from_another_key),
        T(pki_intermediate_issues_devices_that_chain_to_the_root),
        T(pki_issues_device_certificate_from_csr),
        T(pki_csr_without_cn_is_accepted_and_mismatching_cn_refused),
        T(pki_refuses_bad_csrs),
        T(pki_issues_device_certificate_from_key),
        T(pki_refuses_bad_device_ids_at_issue),
        T(pki_client_refuses_expired_and_not_yet_valid),
        T(pki_client_refuses_wrong_ca_and_self_signed_leaf),
        T(pki_client_refuses_revoked_certificate),
        T(pki_client_refuses_server_certificate),
        T(pki_client_refuses_ca_certificate_as_leaf),
        T(pki_client_refuses_bad_common_names),
        T(pki_reissued_device_old_certificate_has_old_fingerprint),
        T(pki_verify_parses_strictly_and_within_bounds),
        T(pki_server_is_matched_by_san_dns_and_ip),
        T(pki_server_name_only_in_cn_is_refused),
        T(pki_server_issue_checks_names),
        T(pki_crl_has_the_v2_profile),
        T(pki_crl_refuses_bad_entries),
        T(pki_verifier_refuses_crl_without_number),
        T(pki_openssl_cli_verifies_chain_and_reads_crl),
        T(pki_cert_describe_reports_id_fingerprint_serial),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
