/*
 * Verifying a peer's certificate chain: what iotsecd and the broker plugin call for every
 * mTLS connection (docs/pki.md, "verification").
 *
 * Order of the steps, and why:
 *   1. Parse the presented chain within fixed bounds, before any path building, so that a
 *      peer cannot make us do unbounded work (x509-limbo's pathological cases).
 *   2. OpenSSL's X509_verify_cert in X509_STRICT mode with our trust anchors, the
 *      validation time, the purpose (EKU), the SAN name for servers, a depth limit,
 *      security level 2 (RSA >= 2048, no SHA-1) and, when CRLs are configured, CRL checks
 *      on every certificate of the chain. OpenSSL does the path building and RFC 5280
 *      section 6 processing, which we do not re-implement.
 *   3. Our policy (policy.c) on the chain OpenSSL built: rules OpenSSL 3.0 does not
 *      enforce, found by running x509-limbo. Running after OpenSSL means the policy only
 *      sees a chain that is already cryptographically sound and anchored.
 *   4. The leaf's purpose for our profile; for a device, the device id from the one CN.
 *
 * Trust anchors are whatever the operator configured, self-signed or not
 * (X509_V_FLAG_PARTIAL_CHAIN): trusting only the device intermediate must work. Anchors
 * still pass the policy like any CA: an anchor that we would not have issued is a
 * misconfiguration to report, not to accept silently.
 */
#include "pki_internal.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_DEPTH 4
/* OpenSSL security level 2: 112-bit keys (RSA >= 2048, EC >= 224), no SHA-1 signatures. */
#define AUTH_LEVEL 2

struct iotsec_pki_verifier {
    X509_STORE *store;
    pki_x509_stack *intermediates;
    size_t anchors;
    bool has_crls;
    unsigned max_depth;
};

static void store_ctx_cleanup(X509_STORE_CTX **ctx)
{
    X509_STORE_CTX_free(*ctx);
}

/* A stack that borrows its certificates (freed with sk_X509_free, not pop_free). */
static void borrowed_stack_cleanup(pki_x509_stack **s)
{
    sk_X509_free(*s);
}

iotsec_result iotsec_pki_verifier_new(struct iotsec_pki_verifier **out)
{
    struct iotsec_pki_verifier *v = calloc(1, sizeof(*v));
    IOTSEC_ENSURE_ALLOC(v);
    v->store = X509_STORE_new();
    v->intermediates = sk_X509_new_null();
    v->max_depth = DEFAULT_MAX_DEPTH;
    if (v->store == NULL || v->intermediates == NULL) {
        iotsec_pki_verifier_free(v);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "pki: out of memory");
    }
    *out = v;
    return IOTSEC_RESULT_OK;
}

void iotsec_pki_verifier_free(struct iotsec_pki_verifier *v)
{
    if (v == NULL)
        return;
    X509_STORE_free(v->store);
    sk_X509_pop_free(v->intermediates, X509_free);
    free(v);
}

void iotsec_pki_verifier_set_max_depth(struct iotsec_pki_verifier *v, unsigned depth)
{
    v->max_depth = depth > IOTSEC_PKI_CHAIN_CERTS_MAX ? IOTSEC_PKI_CHAIN_CERTS_MAX : depth;
}

iotsec_result iotsec_pki_verifier_add_trusted(struct iotsec_pki_verifier *v,
                                              struct iotsec_slice certs)
{
    pki_x509_stack *list IOTSEC_DEFER(pki_x509_stack_cleanup) = NULL;
    IOTSEC_GUARD(pki_certs_parse(certs, IOTSEC_PKI_CHAIN_CERTS_MAX, &list));
    for (int i = 0; i < sk_X509_num(list); i++) {
        X509 *cert = sk_X509_value(list, i);
        IOTSEC_ENSURE(X509_check_ca(cert) == 1, IOTSEC_ERR_INVALID_ARG,
                      "pki: trust anchor %d is not a CA certificate", i + 1);
        IOTSEC_GUARD_OSSL(X509_STORE_add_cert(v->store, cert), IOTSEC_ERR_CRYPTO,
                          "pki: adding a trust anchor");
        v->anchors++;
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_verifier_add_intermediates(struct iotsec_pki_verifier *v,
                                                    struct iotsec_slice certs)
{
    pki_x509_stack *list IOTSEC_DEFER(pki_x509_stack_cleanup) = NULL;
    IOTSEC_GUARD(pki_certs_parse(certs, IOTSEC_PKI_CHAIN_CERTS_MAX, &list));
    IOTSEC_ENSURE(sk_X509_num(v->intermediates) + sk_X509_num(list) <= IOTSEC_PKI_CHAIN_CERTS_MAX,
                  IOTSEC_ERR_TOO_LARGE, "pki: more than %d known intermediates",
                  IOTSEC_PKI_CHAIN_CERTS_MAX);
    while (sk_X509_num(list) > 0) {
        X509 *cert = sk_X509_shift(list);
        if (sk_X509_push(v->intermediates, cert) <= 0) {
            X509_free(cert);
            IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "pki: out of memory");
        }
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_pki_verifier_add_crl(struct iotsec_pki_verifier *v, struct iotsec_slice crl)
{
    X509_CRL *parsed IOTSEC_DEFER(pki_crl_cleanup) = NULL;
    IOTSEC_GUARD(pki_crl_parse(crl, &parsed));
    IOTSEC_GUARD(pki_crl_check_profile(parsed));
    IOTSEC_GUARD_OSSL(X509_STORE_add_crl(v->store, parsed), IOTSEC_ERR_CRYPTO, "pki: adding a CRL");
    v->has_crls = true;
    return IOTSEC_RESULT_OK;
}

/* ---- the chain ---- */

static iotsec_result set_params(X509_STORE_CTX *ctx, const struct iotsec_pki_verifier *v, time_t at,
                                enum pki_purpose purpose, const char *expected_name)
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    unsigned long flags = X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN;
    if (v->has_crls)
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    IOTSEC_GUARD_OSSL(X509_VERIFY_PARAM_set_flags(param, flags), IOTSEC_ERR_CRYPTO,
                      "pki: verify flags");
    X509_VERIFY_PARAM_set_time(param, at);
    /* OpenSSL counts every intermediate; RFC 5280 6.1.4 (l) does not count self-issued
     * ones (key rollover). OpenSSL gets the hard bound, check_depth() the configured one. */
    X509_VERIFY_PARAM_set_depth(param, IOTSEC_PKI_CHAIN_CERTS_MAX);
    X509_VERIFY_PARAM_set_auth_level(param, AUTH_LEVEL);
    IOTSEC_GUARD_OSSL(X509_VERIFY_PARAM_set_purpose(param, purpose == PKI_PURPOSE_CLIENT
                                                               ? X509_PURPOSE_SSL_CLIENT
                                                               : X509_PURPOSE_SSL_SERVER),
                      IOTSEC_ERR_CRYPTO, "pki: verify purpose");
    if (expected_name == NULL)
        return IOTSEC_RESULT_OK;

    uint8_t ip[16];
    size_t ip_len = pki_ip_parse(expected_name, ip);
    if (ip_len > 0) {
        IOTSEC_GUARD_OSSL(X509_VERIFY_PARAM_set1_ip(param, ip, ip_len), IOTSEC_ERR_CRYPTO,
                          "pki: expected IP address");
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_ENSURE(pki_dns_name_valid(expected_name, strlen(expected_name), false),
                  IOTSEC_ERR_INVALID_ARG,
                  "pki: the expected server name is neither a host name nor an IP address");
    /* SAN only: the CN is never a name (RFC 6125 6.4.4 allows it as a fallback; we do not
     * want two places a name can come from). No partial wildcards ("ba*.example.com"). */
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                               X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    IOTSEC_GUARD_OSSL(X509_VERIFY_PARAM_set1_host(param, expected_name, 0), IOTSEC_ERR_CRYPTO,
                      "pki: expected host name");
    return IOTSEC_RESULT_OK;
}

/* The presented intermediates, then the ones the server knows. */
static iotsec_result untrusted_list(pki_x509_stack *presented, pki_x509_stack *known,
                                    pki_x509_stack **out)
{
    STACK_OF(X509) *list = sk_X509_new_null();
    IOTSEC_ENSURE_ALLOC(list);
    for (int i = 1; i < sk_X509_num(presented); i++)
        if (sk_X509_push(list, sk_X509_value(presented, i)) <= 0)
            goto nomem;
    for (int i = 0; i < sk_X509_num(known); i++)
        if (sk_X509_push(list, sk_X509_value(known, i)) <= 0)
            goto nomem;
    *out = list;
    return IOTSEC_RESULT_OK;
nomem:
    sk_X509_free(list);
    IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "pki: out of memory");
}

/* RFC 5280 4.1.2.5: the validity period runs from notBefore through notAfter,
 * inclusive. OpenSSL 3.0 counts a certificate as expired at the notAfter second itself,
 * so exactly that error, at exactly that second, is overruled; every other error stands. */
static int inclusive_not_after(int ok, X509_STORE_CTX *ctx)
{
    if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_CERT_HAS_EXPIRED)
        return ok;
    X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
    time_t at = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));
    if (cert != NULL && ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert), at) == 0) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    return ok;
}

static iotsec_result run_openssl(X509_STORE_CTX *ctx)
{
    X509_STORE_CTX_set_verify_cb(ctx, inclusive_not_after);
    int ok = X509_verify_cert(ctx);
    if (ok == 1) {
        ERR_clear_error();
        return IOTSEC_RESULT_OK;
    }
    int err = X509_STORE_CTX_get_error(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    ERR_clear_error();
    IOTSEC_BAIL(IOTSEC_ERR_AUTH, "pki: %s (depth %d)", X509_verify_cert_error_string(err), depth);
}

/* Narrows [*from, *until] to the times at which t is before (or after) `at` as it is
 * now. A time that cannot be read leaves an empty window: nothing is ever reused. */
static void narrow_after(const ASN1_TIME *t, time_t *from)
{
    time_t v;
    if (t == NULL || !iotsec_ok(pki_time_to_time_t(t, &v))) {
        iotsec_error_clear();
        *from = INT64_MAX;
        return;
    }
    if (v + 1 > *from)
        *from = v + 1;
}

static void narrow_before(const ASN1_TIME *t, time_t *until)
{
    time_t v;
    if (t == NULL || !iotsec_ok(pki_time_to_time_t(t, &v))) {
        iotsec_error_clear();
        *until = INT64_MIN;
        return;
    }
    if (v - 1 < *until)
        *until = v - 1;
}

/* The times around `at` at which the time checks of X509_verify_cert (each certificate's
 * validity, each CRL's thisUpdate and nextUpdate; CRL_CHECK_ALL may consult any CRL of
 * the store) answer as they did at `at`. Every CRL of the store is counted, not only the
 * ones this chain used: a narrower window only means more full verifications. */
static void validity_window(X509_STORE *store, pki_x509_stack *built, time_t at,
                            struct iotsec_pki_peer *out)
{
    time_t from = INT64_MIN, until = INT64_MAX;
    for (int i = 0; i < sk_X509_num(built); i++) {
        X509 *c = sk_X509_value(built, i);
        narrow_after(X509_get0_notBefore(c), &from);
        narrow_before(X509_get0_notAfter(c), &until);
    }
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    if (!X509_STORE_lock(store)) {
        from = INT64_MAX;
    } else {
        for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
            X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
            if (crl == NULL)
                continue;
            narrow_after(X509_CRL_get0_lastUpdate(crl), &from);
            narrow_before(X509_CRL_get0_nextUpdate(crl), &until);
        }
        X509_STORE_unlock(store);
    }
    /* at itself passed; the window must hold it or it is empty. */
    if (from > at || until < at)
        from = INT64_MAX, until = INT64_MIN;
    out->valid_from = from;
    out->valid_until = until;
}

/* Intermediates between the leaf and the anchor, self-issued ones not counted. */
static iotsec_result check_depth(pki_x509_stack *chain, unsigned max_depth)
{
    unsigned depth = 0;
    for (int i = 1; i + 1 < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        if (X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) != 0)
            depth++;
    }
    IOTSEC_ENSURE(depth <= max_depth, IOTSEC_ERR_AUTH,
                  "pki: the chain has %u intermediate CAs, more than the %u allowed", depth,
                  max_depth);
    return IOTSEC_RESULT_OK;
}

iotsec_result pki_verify_chain(struct iotsec_pki_verifier *v, struct iotsec_slice chain, time_t at,
                               enum pki_purpose purpose, const char *expected_name, X509 **leaf_out,
                               struct iotsec_pki_peer *window)
{
    IOTSEC_ENSURE(v != NULL, IOTSEC_ERR_INVALID_ARG, "pki: missing verifier");
    IOTSEC_ENSURE(v->anchors > 0, IOTSEC_ERR_CONFIG, "pki: no trust anchor configured");
    pki_x509_stack *presented IOTSEC_DEFER(pki_x509_stack_cleanup) = NULL;
    IOTSEC_GUARD(pki_certs_parse(chain, IOTSEC_PKI_CHAIN_CERTS_MAX, &presented));
    X509 *leaf = sk_X509_value(presented, 0);
    pki_x509_stack *untrusted IOTSEC_DEFER(borrowed_stack_cleanup) = NULL;
    IOTSEC_GUARD(untrusted_list(presented, v->intermediates, &untrusted));

    X509_STORE_CTX *ctx IOTSEC_DEFER(store_ctx_cleanup) = X509_STORE_CTX_new();
    IOTSEC_ENSURE_ALLOC(ctx);
    IOTSEC_GUARD_OSSL(X509_STORE_CTX_init(ctx, v->store, leaf, untrusted), IOTSEC_ERR_CRYPTO,
                      "pki: verify context");
    IOTSEC_GUARD(set_params(ctx, v, at, purpose, expected_name));
    IOTSEC_GUARD(run_openssl(ctx));

    pki_x509_stack *built IOTSEC_DEFER(pki_x509_stack_cleanup) = X509_STORE_CTX_get1_chain(ctx);
    IOTSEC_ENSURE_ALLOC(built);
    IOTSEC_GUARD(check_depth(built, v->max_depth));
    IOTSEC_GUARD(pki_policy_check_chain(built, purpose));
    IOTSEC_GUARD(pki_policy_check_leaf(leaf, purpose));
    if (window != NULL)
        validity_window(v->store, built, at, window);
    IOTSEC_GUARD_OSSL(X509_up_ref(leaf), IOTSEC_ERR_CRYPTO, "pki: reference");
    *leaf_out = leaf;
    return IOTSEC_RESULT_OK;
}

static iotsec_result describe(X509 *cert, struct iotsec_pki_peer *out)
{
    IOTSEC_GUARD(pki_fingerprint(cert, out->fingerprint));
    IOTSEC_GUARD(pki_serial_hex(X509_get0_serialNumber(cert), out->serial));
    return pki_time_to_time_t(X509_get0_notAfter(cert), &out->not_after);
}

iotsec_result iotsec_pki_verify_client(struct iotsec_pki_verifier *v, struct iotsec_slice chain,
                                       time_t at, struct iotsec_pki_peer *out)
{
    *out = (struct iotsec_pki_peer){0};
    X509 *leaf IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_verify_chain(v, chain, at, PKI_PURPOSE_CLIENT, NULL, &leaf, out));
    IOTSEC_GUARD(pki_device_id_from_cert(leaf, out->device_id));
    return describe(leaf, out);
}

iotsec_result iotsec_pki_verify_server(struct iotsec_pki_verifier *v, struct iotsec_slice chain,
                                       time_t at, const char *expected_name,
                                       struct iotsec_pki_peer *out)
{
    *out = (struct iotsec_pki_peer){0};
    IOTSEC_ENSURE(expected_name != NULL, IOTSEC_ERR_INVALID_ARG,
                  "pki: a server is verified for a name");
    X509 *leaf IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_verify_chain(v, chain, at, PKI_PURPOSE_SERVER, expected_name, &leaf, out));
    return describe(leaf, out);
}

iotsec_result iotsec_pki_cert_describe(struct iotsec_slice cert, struct iotsec_pki_peer *out)
{
    *out = (struct iotsec_pki_peer){0};
    X509 *parsed IOTSEC_DEFER(pki_x509_cleanup) = NULL;
    IOTSEC_GUARD(pki_cert_parse(cert, &parsed));
    IOTSEC_GUARD(describe(parsed, out));
    if (!iotsec_ok(pki_device_id_from_cert(parsed, out->device_id))) {
        out->device_id[0] = '\0';
        iotsec_error_clear();
    }
    return IOTSEC_RESULT_OK;
}
