/*
 * Unit tests for the registry: the join of pki's verdict and the store's records, and the
 * lifecycle transactions (enrol, renew, disable, enable, revoke, CRL). A private in-memory
 * store and an in-memory CA; every refusal must name its step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iotsec/registry.h"

#define NOW ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define DAY 86400

struct fixture {
    struct iotsec_store *store;
    struct iotsec_key *ca_key;
    struct iotsec_pki_signer signer;
    struct iotsec_buf ca_pem;
    struct iotsec_pki_ca *ca;
    uint64_t crl_number;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_true(iotsec_ok(iotsec_store_open("sqlite::memory:", &f->store)));
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &f->ca_key)));
    iotsec_pki_signer_from_key(f->ca_key, &f->signer);
    iotsec_buf_init(&f->ca_pem);
    struct iotsec_pki_ca_params p = {.common_name = "test CA", .validity_days = 3650, .now = NOW};
    assert_true(iotsec_ok(iotsec_pki_ca_create_root(&f->signer, &p, &f->ca_pem)));
    assert_true(iotsec_ok(iotsec_pki_ca_open(iotsec_buf_slice(&f->ca_pem), &f->signer, &f->ca)));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    iotsec_pki_ca_free(f->ca);
    iotsec_buf_free(&f->ca_pem);
    iotsec_key_free(f->ca_key);
    iotsec_store_close(f->store);
    free(f);
    return 0;
}

/* A verifier trusting the CA, with a CRL built from the store now. */
static struct iotsec_pki_verifier *verifier(struct fixture *f, time_t now)
{
    struct iotsec_pki_verifier *v = NULL;
    assert_true(iotsec_ok(iotsec_pki_verifier_new(&v)));
    assert_true(iotsec_ok(iotsec_pki_verifier_add_trusted(v, iotsec_buf_slice(&f->ca_pem))));
    struct iotsec_buf crl;
    iotsec_buf_init(&crl);
    struct iotsec_pki_crl_params cp = {
        .crl_number = ++f->crl_number, .this_update = now, .next_update_seconds = 7 * DAY};
    assert_true(iotsec_ok(iotsec_registry_build_crl(f->store, f->ca, &cp, &crl)));
    assert_true(iotsec_ok(iotsec_pki_verifier_add_crl(v, iotsec_buf_slice(&crl))));
    iotsec_buf_free(&crl);
    return v;
}

static void enrol(struct fixture *f, const char *id, bool renew, struct iotsec_buf *cert)
{
    struct iotsec_key *key = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &key)));
    struct iotsec_registry_enrolment e = {.device_id = id,
                                          .model = "m1",
                                          .validity_days = 30,
                                          .now = NOW,
                                          .public_key = key,
                                          .renew = renew};
    iotsec_result r = iotsec_registry_enrol(f->store, f->ca, &e, cert, NULL);
    if (!iotsec_ok(r))
        fail_msg("enrol %s: %s", id, iotsec_error_message());
    iotsec_key_free(key);
}

static enum iotsec_registry_refusal check(struct fixture *f, const struct iotsec_buf *cert,
                                          time_t at)
{
    struct iotsec_pki_verifier *v = verifier(f, NOW + 60);
    struct iotsec_pki_peer peer;
    enum iotsec_registry_refusal why = IOTSEC_REGISTRY_ACCEPTED;
    iotsec_result r =
        iotsec_registry_verify_client(v, f->store, iotsec_buf_slice(cert), at, &peer, &why);
    assert_int_equal(iotsec_ok(r), why == IOTSEC_REGISTRY_ACCEPTED);
    if (iotsec_ok(r))
        assert_string_equal(peer.device_id, "dev-1");
    iotsec_pki_verifier_free(v);
    return why;
}

static void test_lifecycle_refusals(void **state)
{
    struct fixture *f = *state;
    struct iotsec_buf cert, renewed;
    iotsec_buf_init(&cert);
    iotsec_buf_init(&renewed);
    enrol(f, "dev-1", false, &cert);
    assert_int_equal(check(f, &cert, NOW + 120), IOTSEC_REGISTRY_ACCEPTED);
    assert_int_equal(check(f, &cert, NOW + 40 * DAY), IOTSEC_REGISTRY_BAD_CERTIFICATE);

    assert_true(iotsec_ok(iotsec_registry_set_enabled(f->store, "dev-1", false, NOW + 1)));
    assert_int_equal(check(f, &cert, NOW + 120), IOTSEC_REGISTRY_DISABLED);
    assert_true(iotsec_ok(iotsec_registry_set_enabled(f->store, "dev-1", false, NOW + 1)));
    assert_true(iotsec_ok(iotsec_registry_set_enabled(f->store, "dev-1", true, NOW + 2)));
    assert_int_equal(check(f, &cert, NOW + 120), IOTSEC_REGISTRY_ACCEPTED);

    /* Renewal: the old certificate is refused by the CRL and by the registry alone. */
    enrol(f, "dev-1", true, &renewed);
    assert_int_equal(check(f, &renewed, NOW + 120), IOTSEC_REGISTRY_ACCEPTED);
    assert_int_equal(check(f, &cert, NOW + 120), IOTSEC_REGISTRY_BAD_CERTIFICATE);
    struct iotsec_pki_peer old;
    assert_true(iotsec_ok(iotsec_pki_cert_describe(iotsec_buf_slice(&cert), &old)));
    enum iotsec_registry_refusal why;
    assert_false(iotsec_ok(iotsec_registry_check_peer(f->store, &old, &why)));
    assert_int_equal(why, IOTSEC_REGISTRY_NOT_CURRENT);
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);

    /* Revocation is final, and the CRL lists both certificates. */
    size_t n = 0;
    assert_true(iotsec_ok(
        iotsec_registry_revoke(f->store, "dev-1", IOTSEC_PKI_REASON_KEY_COMPROMISE, NOW + 3, &n)));
    assert_int_equal(n, 1);
    assert_int_equal(check(f, &renewed, NOW + 120), IOTSEC_REGISTRY_BAD_CERTIFICATE);
    struct iotsec_pki_peer current;
    assert_true(iotsec_ok(iotsec_pki_cert_describe(iotsec_buf_slice(&renewed), &current)));
    assert_false(iotsec_ok(iotsec_registry_check_peer(f->store, &current, &why)));
    assert_int_equal(why, IOTSEC_REGISTRY_REVOKED);
    assert_false(iotsec_ok(iotsec_registry_revoke(f->store, "dev-1", 0, NOW + 4, NULL)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_EXISTS);
    assert_false(iotsec_ok(iotsec_registry_set_enabled(f->store, "dev-1", true, NOW + 5)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_PERMISSION);
    struct iotsec_store_cert_list revoked = {0};
    assert_true(iotsec_ok(iotsec_store_cert_list_revoked(f->store, 0, NULL, &revoked)));
    assert_int_equal(revoked.count, 2);
    iotsec_store_cert_list_free(&revoked);

    iotsec_buf_free(&cert);
    iotsec_buf_free(&renewed);
}

static void test_unknown_device(void **state)
{
    struct fixture *f = *state;
    struct iotsec_pki_peer peer = {0};
    snprintf(peer.device_id, sizeof(peer.device_id), "ghost");
    memset(peer.fingerprint, 'a', IOTSEC_PKI_FINGERPRINT_HEX_LEN);
    enum iotsec_registry_refusal why;
    assert_false(iotsec_ok(iotsec_registry_check_peer(f->store, &peer, &why)));
    assert_int_equal(why, IOTSEC_REGISTRY_UNKNOWN_DEVICE);
    assert_string_equal(iotsec_registry_refusal_name(why), "unknown_device");
    /* A certificate issued elsewhere, for an id the registry does know. */
    struct iotsec_buf cert;
    iotsec_buf_init(&cert);
    enrol(f, "dev-1", false, &cert);
    snprintf(peer.device_id, sizeof(peer.device_id), "dev-1");
    assert_false(iotsec_ok(iotsec_registry_check_peer(f->store, &peer, &why)));
    assert_int_equal(why, IOTSEC_REGISTRY_NOT_CURRENT);
    iotsec_buf_free(&cert);
}

static iotsec_result fail_writing(void *ctx, struct iotsec_slice cert_pem,
                                  const struct iotsec_pki_issued *info)
{
    (void)cert_pem;
    (void)info;
    (*(int *)ctx)++;
    IOTSEC_BAIL(IOTSEC_ERR_IO, "disk full");
}

static void test_enrol_is_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    struct iotsec_key *key = NULL;
    assert_true(iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &key)));
    int calls = 0;
    struct iotsec_registry_enrolment e = {.device_id = "dev-2",
                                          .validity_days = 30,
                                          .now = NOW,
                                          .public_key = key,
                                          .on_issued = fail_writing,
                                          .on_issued_ctx = &calls};
    assert_false(iotsec_ok(iotsec_registry_enrol(f->store, f->ca, &e, NULL, NULL)));
    assert_string_equal(iotsec_error_message(), "disk full");
    assert_int_equal(calls, 1);
    struct iotsec_store_device d = {0};
    assert_false(iotsec_ok(iotsec_store_device_get(f->store, "dev-2", &d)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);

    /* Bad requests are refused before anything is signed. */
    e.on_issued = NULL;
    e.device_id = "dev 2";
    assert_false(iotsec_ok(iotsec_registry_enrol(f->store, f->ca, &e, NULL, NULL)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    e.device_id = "dev-2";
    e.renew = true;
    assert_false(iotsec_ok(iotsec_registry_enrol(f->store, f->ca, &e, NULL, NULL)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);
    e.renew = false;
    e.csr_pem = iotsec_slice_from_str("not a CSR");
    assert_false(iotsec_ok(iotsec_registry_enrol(f->store, f->ca, &e, NULL, NULL)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    e.csr_pem = (struct iotsec_slice){0};
    assert_true(iotsec_ok(iotsec_registry_enrol(f->store, f->ca, &e, NULL, NULL)));
    assert_false(iotsec_ok(iotsec_registry_enrol(f->store, f->ca, &e, NULL, NULL)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_EXISTS);
    /* The public key is recorded for challenge-response. */
    assert_true(iotsec_ok(iotsec_store_device_get(f->store, "dev-2", &d)));
    assert_non_null(d.public_key_pem);
    assert_non_null(strstr(d.public_key_pem, "BEGIN PUBLIC KEY"));
    iotsec_store_device_clear(&d);
    iotsec_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrol_is_all_or_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
