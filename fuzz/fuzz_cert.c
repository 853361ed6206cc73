/*
 * Fuzzes everything in the PKI that reads bytes a peer or an operator controls: the chain
 * parser (PEM and DER), the CSR and CRL parsers, device-id extraction, the policy checks
 * on each parsed certificate in every role, and the whole client and server verification
 * against a fixed CA.
 *
 * The CA key below is a throwaway made for this target (never used anywhere else), so
 * the seed corpus can hold certificates, chains and CRLs that really chain to the
 * fuzzer's root: mutations of them reach the policy code, which only runs on chains
 * OpenSSL accepted. The root certificate itself is rebuilt from the key at start-up; its
 * name, SKI and validity are the same every time.
 *
 * Invariants beyond "no crash": a parsed chain has 1 to IOTSEC_PKI_CHAIN_CERTS_MAX
 * certificates; an accepted client has a valid device id and a 64-digit fingerprint.
 */
#include "iotsec/pki.h"
#include "pki/pki_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW ((time_t)1798761600) /* 2027-01-01T00:00:00Z */

static const char FUZZ_CA_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+xxXpALq8jswwAs6\n"
    "/1xuk7vyxCRCt11ypqKFRO5EetKhRANCAASGIBorgn3iUkzrcIu02qCfdOpAWjZR\n"
    "/QMlY3uZRYDW5/jg4r0/mDQI8IM8RAmuacq8XvgQjhUbeq9PmM8WGydx\n"
    "-----END PRIVATE KEY-----\n";

static struct iotsec_pki_verifier *verifier;

static void init(void)
{
    struct iotsec_key *key = NULL;
    struct iotsec_pki_signer signer;
    struct iotsec_buf root = {0};
    struct iotsec_pki_ca_params params = {
        .common_name = "iotsec fuzz root", .validity_days = 3650, .now = FUZZ_NOW - 86400};
    if (!iotsec_ok(iotsec_key_from_pem(iotsec_slice_from_str(FUZZ_CA_KEY), &key)))
        abort();
    iotsec_pki_signer_from_key(key, &signer);
    if (!iotsec_ok(iotsec_pki_ca_create_root(&signer, &params, &root)) ||
        !iotsec_ok(iotsec_pki_verifier_new(&verifier)) ||
        !iotsec_ok(iotsec_pki_verifier_add_trusted(verifier, iotsec_buf_slice(&root))))
        abort();
    iotsec_buf_free(&root);
    iotsec_key_free(key);
}

static void check_parsed(pki_x509_stack *certs)
{
    int n = sk_X509_num(certs);
    if (n < 1 || n > IOTSEC_PKI_CHAIN_CERTS_MAX)
        abort();
    for (int i = 0; i < n; i++) {
        X509 *c = sk_X509_value(certs, i);
        X509 *issuer = i + 1 < n ? sk_X509_value(certs, i + 1) : NULL;
        char id[IOTSEC_PKI_DEVICE_ID_MAX + 1];
        if (iotsec_ok(pki_device_id_from_cert(c, id)) && !iotsec_pki_device_id_valid(id))
            abort();
        char fp[IOTSEC_PKI_FINGERPRINT_HEX_LEN + 1];
        (void)pki_fingerprint(c, fp);
        (void)pki_policy_check_cert(c, issuer, PKI_ROLE_LEAF);
        (void)pki_policy_check_cert(c, issuer, PKI_ROLE_INTERMEDIATE);
        (void)pki_policy_check_cert(c, NULL, PKI_ROLE_ANCHOR);
        (void)pki_policy_check_leaf(c, PKI_PURPOSE_CLIENT);
        (void)pki_policy_check_leaf(c, PKI_PURPOSE_SERVER);
    }
    (void)pki_policy_check_chain(certs, PKI_PURPOSE_CLIENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (verifier == NULL)
        init();
    struct iotsec_slice in = iotsec_slice_make(data, size);

    STACK_OF(X509) *certs = NULL;
    if (iotsec_ok(pki_certs_parse(in, IOTSEC_PKI_CHAIN_CERTS_MAX, &certs))) {
        check_parsed(certs);
        sk_X509_pop_free(certs, X509_free);
    }

    struct iotsec_pki_peer peer;
    if (iotsec_ok(iotsec_pki_verify_client(verifier, in, FUZZ_NOW, &peer))) {
        if (!iotsec_pki_device_id_valid(peer.device_id) ||
            strlen(peer.fingerprint) != IOTSEC_PKI_FINGERPRINT_HEX_LEN)
            abort();
    }
    (void)iotsec_pki_verify_server(verifier, in, FUZZ_NOW, "broker.iotsec.test", &peer);
    (void)iotsec_pki_verify_server(verifier, in, FUZZ_NOW, "192.0.2.10", &peer);
    (void)iotsec_pki_cert_describe(in, &peer);

    struct iotsec_key *key = NULL;
    if (iotsec_ok(iotsec_pki_csr_public_key(in, &key)))
        iotsec_key_free(key);

    X509_CRL *crl = NULL;
    if (iotsec_ok(pki_crl_parse(in, &crl))) {
        (void)pki_crl_check_profile(crl);
        X509_CRL_free(crl);
    }
    iotsec_error_clear();
    return 0;
}
