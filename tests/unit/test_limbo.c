/*
 * Runs every case of x509-limbo (C2SP/x509-limbo, 193 cases in ../shared/testdata) through
 * our verifier, and fails if a single FAILURE case is accepted.
 *
 * How a case maps onto our API:
 *   - trusted_certs -> iotsec_pki_verifier_add_trusted, crls -> _add_crl, max_chain_depth
 *     -> _set_max_depth; peer_certificate followed by untrusted_intermediates is the chain
 *     the peer presents; validation_time (null = now) is the time of the check. A setup
 *     step that refuses its input (a CRL without a CRL number, an anchor that is not a
 *     CA) refuses the case: a server configured that way does not start.
 *   - SERVER cases go through iotsec_pki_verify_server with expected_peer_name (DNS or IP);
 *     the one SERVER case without a name runs the chain and policy part (pki_verify_chain)
 *     with the serverAuth purpose and no name.
 *   - CLIENT cases go through the chain and policy part of iotsec_pki_verify_client
 *     (pki_verify_chain with the clientAuth purpose): chain, time, CRLs, our policy, and
 *     the device rules on the leaf (EKU clientAuth, CA:FALSE, key usage), but not the
 *     device-id step, since limbo's client leaves are e-mail certificates without an
 *     iotsec CN. Their RFC822 expected names are not matched: a device is identified by
 *     its CN, never by an e-mail address.
 *
 * SUCCESS cases that our stricter policy refuses must be listed in `documented_refusals`
 * below and in docs/pki.md (the test checks both): being stricter than RFC 5280 is a
 * choice we write down, not an accident. A listed case that starts being accepted also
 * fails the test, so the list cannot go stale.
 *
 * IOTSEC_LIMBO_VERBOSE=1 prints every case with the reason for its outcome.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iotsec/file.h"
#include "iotsec/pki.h"
#include "pki/pki_internal.h"

#define LIMBO_PATH     IOTSEC_TESTDATA_DIR "/x509-limbo/limbo.json"
#define DOCS_PATH      IOTSEC_SOURCE_DIR "/docs/pki.md"
#define LIMBO_CASES    193
#define LIMBO_FAILURES 144

/* SUCCESS cases we refuse on purpose; docs/pki.md gives the rule and the reason for each. */
static const char *const documented_refusals[] = {
    /* a CA must carry keyUsage with keyCertSign */
    "crl::issuer-no-keyusage-extension",
    /* a trust anchor that is not self-issued must carry an AKI */
    "cve::cve-2024-0567",
    /* a leaf must not be a CA */
    "pathlen::validation-ignores-pathlen-in-leaf",
    "rfc5280::ca-as-leaf",
    /* a leaf must carry an EKU with the purpose */
    "rfc5280::eku::ee-without-eku",
    /* OpenSSL 3.0's path building does not try a second issuer after a failure */
    "rfc5280::nc::nc-forbids-alternate-chain-ica",
    "rfc5280::nc::nc-forbids-same-chain-ica",
    /* a server certificate's CN must repeat one of its SAN names (BR 7.1.4.3) */
    "rfc5280::nc::permitted-dn-match",
    "rfc5280::nc::permitted-dns-match-more",
    "rfc5280::nc::permitted-ipv4-match",
    "rfc5280::nc::permitted-ipv6-match",
    "webpki::san::exact-localhost-ip-san",
    /* no wildcard names in a leaf */
    "webpki::nc::nc-permits-dns-san-pattern",
    "webpki::san::leftmost-wildcard-san",
    /* name constraints must be critical (RFC 5280 4.2.1.10) */
    "webpki::nc::permitted-dns-match-noncritical",
    NULL,
};

static bool documented(const char *id)
{
    for (size_t i = 0; documented_refusals[i] != NULL; i++)
        if (strcmp(documented_refusals[i], id) == 0)
            return true;
    return false;
}

/* "2024-03-01T00:00:00.999Z" or "+00:00": the fraction is dropped (time_t is whole
 * seconds), which keeps notBefore/notAfter comparisons exact at the second. */
static time_t parse_time(const char *s)
{
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    if (*rest == '.')
        while (*++rest >= '0' && *rest <= '9') {
        }
    assert_true(strcmp(rest, "Z") == 0 || strcmp(rest, "+00:00") == 0);
    return timegm(&tm);
}

static iotsec_result add_array(json_t *arr, struct iotsec_buf *out)
{
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
    {
        IOTSEC_GUARD(iotsec_buf_append_str(out, json_string_value(item)));
        IOTSEC_GUARD(iotsec_buf_append_str(out, "\n"));
    }
    return IOTSEC_RESULT_OK;
}

/* Runs one case; returns whether it was accepted. */
static bool run_case(json_t *tc)
{
    struct iotsec_pki_verifier *v = NULL;
    struct iotsec_buf anchors = {0}, chain = {0};
    assert_true(iotsec_ok(iotsec_pki_verifier_new(&v)));
    assert_true(iotsec_ok(add_array(json_object_get(tc, "trusted_certs"), &anchors)));
    assert_true(iotsec_ok(
        iotsec_buf_append_str(&chain, json_string_value(json_object_get(tc, "peer_certificate")))));
    assert_true(iotsec_ok(iotsec_buf_append_str(&chain, "\n")));
    assert_true(iotsec_ok(add_array(json_object_get(tc, "untrusted_intermediates"), &chain)));

    iotsec_result r = iotsec_pki_verifier_add_trusted(v, iotsec_buf_slice(&anchors));
    size_t i;
    json_t *crl;
    json_array_foreach(json_object_get(tc, "crls"), i, crl)
    {
        if (iotsec_ok(r))
            r = iotsec_pki_verifier_add_crl(v, iotsec_slice_from_str(json_string_value(crl)));
    }
    json_t *depth = json_object_get(tc, "max_chain_depth");
    if (json_is_integer(depth))
        iotsec_pki_verifier_set_max_depth(v, (unsigned)json_integer_value(depth));
    json_t *when = json_object_get(tc, "validation_time");
    time_t at = json_is_string(when) ? parse_time(json_string_value(when)) : time(NULL);

    bool client = strcmp(json_string_value(json_object_get(tc, "validation_kind")), "CLIENT") == 0;
    json_t *name = json_object_get(tc, "expected_peer_name");
    if (iotsec_ok(r) && !client && json_is_object(name)) {
        struct iotsec_pki_peer peer;
        r = iotsec_pki_verify_server(v, iotsec_buf_slice(&chain), at,
                                     json_string_value(json_object_get(name, "value")), &peer);
    } else if (iotsec_ok(r)) {
        X509 *leaf = NULL;
        r = pki_verify_chain(v, iotsec_buf_slice(&chain), at,
                             client ? PKI_PURPOSE_CLIENT : PKI_PURPOSE_SERVER, NULL, &leaf, NULL);
        X509_free(leaf);
    }
    if (getenv("IOTSEC_LIMBO_VERBOSE") != NULL)
        print_message(
            "%-8s %-8s %s: %s\n", json_string_value(json_object_get(tc, "expected_result")),
            iotsec_ok(r) ? "accepted" : "refused", json_string_value(json_object_get(tc, "id")),
            iotsec_ok(r) ? "" : iotsec_error_message());
    iotsec_buf_free(&anchors);
    iotsec_buf_free(&chain);
    iotsec_pki_verifier_free(v);
    return iotsec_ok(r);
}

static void limbo_refuses_every_failure_case(void **state)
{
    (void)state;
    json_error_t err;
    json_t *root = json_load_file(LIMBO_PATH, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        fail_msg("cannot read %s: %s (line %d)", LIMBO_PATH, err.text, err.line);
    json_t *cases = json_object_get(root, "testcases");
    assert_int_equal(json_array_size(cases), LIMBO_CASES);

    size_t failures = 0, refused_failures = 0, successes = 0, accepted = 0, refused = 0;
    size_t problems = 0;
    size_t i;
    json_t *tc;
    json_array_foreach(cases, i, tc)
    {
        const char *id = json_string_value(json_object_get(tc, "id"));
        bool want_success =
            strcmp(json_string_value(json_object_get(tc, "expected_result")), "SUCCESS") == 0;
        bool ok = run_case(tc);
        if (!want_success) {
            failures++;
            if (!ok) {
                refused_failures++;
                continue;
            }
            print_error("FAILURE case accepted: %s\n", id);
            problems++;
            continue;
        }
        successes++;
        if (ok)
            accepted++;
        else
            refused++;
        if (!ok && !documented(id)) {
            print_error("SUCCESS case refused without a documented rule: %s: %s\n", id,
                        iotsec_error_message());
            problems++;
        }
        if (ok && documented(id)) {
            print_error("SUCCESS case listed as refused is accepted (update the list and "
                        "docs/pki.md): %s\n",
                        id);
            problems++;
        }
    }
    print_message("limbo: %zu cases; FAILURE: %zu expected, %zu refused; SUCCESS: %zu expected, "
                  "%zu accepted, %zu refused (documented)\n",
                  failures + successes, failures, refused_failures, successes, accepted, refused);
    assert_int_equal(failures, LIMBO_FAILURES);
    assert_int_equal(problems, 0);
    json_decref(root);
}

static void limbo_refusals_are_documented(void **state)
{
    (void)state;
    struct iotsec_buf docs = {0};
    assert_true(iotsec_ok(iotsec_file_read(DOCS_PATH, 1 << 20, &docs)));
    assert_true(iotsec_ok(iotsec_buf_terminate(&docs)));
    for (size_t i = 0; documented_refusals[i] != NULL; i++) {
        char quoted[256];
        snprintf(quoted, sizeof(quoted), "`%s`", documented_refusals[i]);
        if (strstr((const char *)docs.ptr, quoted) == NULL)
            fail_msg("docs/pki.md does not mention %s", quoted);
    }
    iotsec_buf_free(&docs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limbo_refuses_every_failure_case),
        cmocka_unit_test(limbo_refusals_are_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
