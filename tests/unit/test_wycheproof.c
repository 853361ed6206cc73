/*
 * Wycheproof vectors (C2SP/wycheproof, ../shared/testdata/wycheproof) run through OUR
 * wrappers, not through OpenSSL: what is tested is what the rest of iotsec calls, with
 * its size checks, key policy and strict-DER rule in the path.
 *
 * Each file is testGroups[].tests[] with tcId, result ("valid", "invalid" or
 * "acceptable") and flags; keys come per group. A vector "agrees" when a valid one is
 * accepted and an invalid one rejected with the error our API promises (IOTSEC_ERR_AUTH
 * for AEAD, IOTSEC_ERR_VERIFY for MACs and signatures). Any disagreement is printed with
 * its tcId and flags and fails the test; so does a vector that was neither run nor
 * counted as skipped (totals are checked against numberOfTests).
 *
 * "acceptable" vectors (legacy encodings that some libraries tolerate, e.g. an RSA
 * PKCS#1 DigestInfo without its NULL parameter) are held to the strict outcome: our
 * wrappers must REJECT them. A platform that verifies firmware and device signatures has
 * no legacy signers to stay compatible with, and every extra accepted encoding is
 * malleability we would have to reason about.
 *
 * Vectors whose parameters our API does not offer (AES-GCM with 128/192-bit keys or
 * non-96-bit nonces, HMAC with truncated tags) are skipped, and for each one we assert
 * that the wrapper refuses those parameters rather than quietly doing something else.
 *
 * A missing test-data directory FAILS the test: a silently skipped conformance suite
 * looks exactly like a passing one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "iotsec/crypto.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define WYCHEPROOF_DIR IOTSEC_TESTDATA_DIR "/wycheproof"

enum expect { EXPECT_ACCEPT, EXPECT_REJECT };

struct tally {
    const char *name;
    size_t declared; /* numberOfTests in the file */
    unsigned valid_accepted;
    unsigned invalid_rejected;
    unsigned acceptable_rejected;
    unsigned skipped;
    unsigned disagreements;
};

/* ---- reading the files ---- */

static json_t *load_vectors(const char *file, struct tally *t)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", WYCHEPROOF_DIR, file);
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        fail_msg("wycheproof: cannot read %s: %s (at line %d). The Wycheproof vectors are "
                 "required, in %s (IOTSEC_TESTDATA_DIR/wycheproof, set at configure time)",
                 path, err.text, err.line, WYCHEPROOF_DIR);
    json_t *groups = json_object_get(root, "testGroups");
    if (!json_is_array(groups) || json_array_size(groups) == 0)
        fail_msg("wycheproof: %s has no testGroups array", path);
    t->declared = (size_t)json_integer_value(json_object_get(root, "numberOfTests"));
    return root;
}

static const char *get_string(const json_t *obj, const char *field)
{
    const char *s = json_string_value(json_object_get(obj, field));
    if (s == NULL)
        fail_msg("wycheproof: missing string field \"%s\"", field);
    return s;
}

static size_t get_size(const json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);
    if (!json_is_integer(v))
        fail_msg("wycheproof: missing integer field \"%s\"", field);
    return (size_t)json_integer_value(v);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Replaces b's contents with the bytes of a hex field. */
static struct iotsec_slice get_hex(const json_t *obj, const char *field, struct iotsec_buf *b)
{
    const char *hex = get_string(obj, field);
    size_t n = strlen(hex);
    if (n % 2 != 0)
        fail_msg("wycheproof: odd-length hex in \"%s\"", field);
    iotsec_buf_reset(b);
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0)
            fail_msg("wycheproof: bad hex in \"%s\"", field);
        assert_true(iotsec_ok(iotsec_buf_append_u8(b, (uint8_t)(hi << 4 | lo))));
    }
    return iotsec_buf_slice(b);
}

/* ---- judging outcomes ---- */

static void print_disagreement(struct tally *t, const json_t *test, const char *what)
{
    char flags[256] = "";
    size_t i;
    json_t *flag;
    json_array_foreach(json_object_get(test, "flags"), i, flag)
    {
        size_t used = strlen(flags);
        snprintf(flags + used, sizeof(flags) - used, "%s%s", i > 0 ? "," : "",
                 json_string_value(flag));
    }
    fprintf(stderr, "wycheproof %s: tcId %d (%s; flags %s; \"%s\"): %s\n", t->name,
            (int)json_integer_value(json_object_get(test, "tcId")), get_string(test, "result"),
            flags, json_string_value(json_object_get(test, "comment")), what);
    t->disagreements++;
}

static enum expect expected(const json_t *test)
{
    /* "acceptable" is held to the strict outcome: see the comment at the top. */
    return strcmp(get_string(test, "result"), "valid") == 0 ? EXPECT_ACCEPT : EXPECT_REJECT;
}

/* `accepted` is the wrapper's verdict; a rejection must carry reject_code. */
static void judge(struct tally *t, const json_t *test, iotsec_result r, iotsec_err reject_code,
                  bool extra_ok, const char *extra_what)
{
    const char *result = get_string(test, "result");
    bool accepted = iotsec_ok(r);
    if (!extra_ok) {
        print_disagreement(t, test, extra_what);
        return;
    }
    if (expected(test) == EXPECT_ACCEPT) {
        if (accepted) {
            t->valid_accepted++;
            return;
        }
        char what[700];
        snprintf(what, sizeof(what), "expected accept, got: %s", iotsec_error_message());
        print_disagreement(t, test, what);
        return;
    }
    if (accepted) {
        print_disagreement(t, test, "expected reject, but our wrapper accepted it");
        return;
    }
    if (iotsec_error_code() != reject_code) {
        char what[700];
        snprintf(what, sizeof(what), "rejected with the wrong error (%s): %s",
                 iotsec_strerror(iotsec_error_code()), iotsec_error_message());
        print_disagreement(t, test, what);
        return;
    }
    if (strcmp(result, "acceptable") == 0)
        t->acceptable_rejected++;
    else
        t->invalid_rejected++;
}

static void finish(struct tally *t, const char *skip_reason)
{
    printf("wycheproof %s: %u valid accepted, %u invalid rejected", t->name, t->valid_accepted,
           t->invalid_rejected);
    if (t->acceptable_rejected > 0)
        printf(", %u acceptable rejected (strict choice)", t->acceptable_rejected);
    printf(", %u skipped%s%s%s", t->skipped, skip_reason ? " (" : "",
           skip_reason ? skip_reason : "", skip_reason ? ")" : "");
    if (t->disagreements > 0)
        printf(", %u DISAGREE", t->disagreements);
    printf("\n");
    fflush(stdout);
    size_t seen = (size_t)t->valid_accepted + t->invalid_rejected + t->acceptable_rejected +
                  t->skipped + t->disagreements;
    assert_int_equal(seen, t->declared);
    assert_int_equal(t->disagreements, 0);
}

/* ---- AES-256-GCM ---- */

static void wycheproof_aes_gcm_run(struct tally *t, const json_t *test, struct iotsec_buf *bufs)
{
    struct iotsec_slice key = get_hex(test, "key", &bufs[0]);
    struct iotsec_slice iv = get_hex(test, "iv", &bufs[1]);
    struct iotsec_slice aad = get_hex(test, "aad", &bufs[2]);
    struct iotsec_slice msg = get_hex(test, "msg", &bufs[3]);
    get_hex(test, "ct", &bufs[4]);
    struct iotsec_slice tag = get_hex(test, "tag", &bufs[5]);
    struct iotsec_buf *sealed_vector = &bufs[4]; /* ct || tag, as our API takes it */
    assert_true(iotsec_ok(iotsec_buf_append_slice(sealed_vector, tag)));

    /* Seal must reproduce the vector's ct||tag exactly when valid, and never produce an
     * invalid vector's (forged) ct||tag. */
    struct iotsec_buf *sealed = &bufs[6];
    iotsec_buf_reset(sealed);
    assert_true(iotsec_ok(iotsec_aead_seal(key, iv, aad, msg, sealed)));
    bool seal_matches =
        iotsec_slice_equal(iotsec_buf_slice(sealed), iotsec_buf_slice(sealed_vector));

    struct iotsec_buf *opened = &bufs[7];
    iotsec_buf_reset(opened);
    assert_true(iotsec_ok(iotsec_buf_append_str(opened, "pre")));
    iotsec_result r = iotsec_aead_open(key, iv, aad, iotsec_buf_slice(sealed_vector), opened);
    bool out_ok;
    if (iotsec_ok(r))
        out_ok = opened->len == 3 + msg.len &&
                 iotsec_slice_equal(iotsec_slice_make(opened->ptr + 3, msg.len), msg);
    else
        out_ok = opened->len == 3 && memcmp(opened->ptr, "pre", 3) == 0;

    if (expected(test) == EXPECT_ACCEPT && !seal_matches)
        judge(t, test, r, IOTSEC_ERR_AUTH, false, "seal did not reproduce ct||tag");
    else if (expected(test) == EXPECT_REJECT && seal_matches)
        judge(t, test, r, IOTSEC_ERR_AUTH, false, "seal produced the invalid vector's ct||tag");
    else
        judge(t, test, r, IOTSEC_ERR_AUTH, out_ok,
              "open returned the wrong plaintext, or changed the output on failure");
}

/* Sizes our API does not offer: the wrapper must refuse them, in both directions. */
static void wycheproof_aes_gcm_refuse(struct tally *t, const json_t *test, struct iotsec_buf *bufs)
{
    struct iotsec_slice key = get_hex(test, "key", &bufs[0]);
    struct iotsec_slice iv = get_hex(test, "iv", &bufs[1]);
    struct iotsec_slice aad = get_hex(test, "aad", &bufs[2]);
    struct iotsec_slice msg = get_hex(test, "msg", &bufs[3]);
    get_hex(test, "ct", &bufs[4]);
    struct iotsec_slice tag = get_hex(test, "tag", &bufs[5]);
    assert_true(iotsec_ok(iotsec_buf_append_slice(&bufs[4], tag)));

    struct iotsec_buf *out = &bufs[6];
    iotsec_buf_reset(out);
    iotsec_result seal = iotsec_aead_seal(key, iv, aad, msg, out);
    bool seal_refused = !iotsec_ok(seal) && iotsec_error_code() == IOTSEC_ERR_INVALID_ARG;
    iotsec_result open = iotsec_aead_open(key, iv, aad, iotsec_buf_slice(&bufs[4]), out);
    bool open_refused = !iotsec_ok(open) && iotsec_error_code() == IOTSEC_ERR_INVALID_ARG;
    if (seal_refused && open_refused && out->len == 0)
        t->skipped++;
    else
        print_disagreement(t, test,
                           "parameters outside our API were not refused with "
                           "IOTSEC_ERR_INVALID_ARG");
}

static void wycheproof_aes_gcm(void **state)
{
    (void)state;
    struct tally t = {.name = "aes_gcm"};
    json_t *root = load_vectors("aes_gcm_test.json", &t);
    struct iotsec_buf bufs[8] = {0};
    size_t gi, ti;
    json_t *group, *test;
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        bool fits = get_size(group, "keySize") == 8 * IOTSEC_AEAD_KEY_LEN &&
                    get_size(group, "ivSize") == 8 * IOTSEC_AEAD_NONCE_LEN &&
                    get_size(group, "tagSize") == 8 * IOTSEC_AEAD_TAG_LEN;
        json_array_foreach(json_object_get(group, "tests"), ti, test)
        {
            if (fits)
                wycheproof_aes_gcm_run(&t, test, bufs);
            else
                wycheproof_aes_gcm_refuse(&t, test, bufs);
        }
    }
    for (size_t i = 0; i < 8; i++)
        iotsec_buf_free(&bufs[i]);
    json_decref(root);
    finish(&t, "parameters outside our API: 128/192-bit keys or non-96-bit nonces, each "
               "refused by seal and open with IOTSEC_ERR_INVALID_ARG");
}

/* ---- HMAC-SHA256 ---- */

static void wycheproof_hmac_sha256(void **state)
{
    (void)state;
    struct tally t = {.name = "hmac_sha256"};
    json_t *root = load_vectors("hmac_sha256_test.json", &t);
    struct iotsec_buf key_buf = {0}, msg_buf = {0}, tag_buf = {0};
    size_t gi, ti;
    json_t *group, *test;
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        size_t tag_bits = get_size(group, "tagSize");
        json_array_foreach(json_object_get(group, "tests"), ti, test)
        {
            struct iotsec_slice key = get_hex(test, "key", &key_buf);
            struct iotsec_slice msg = get_hex(test, "msg", &msg_buf);
            struct iotsec_slice tag = get_hex(test, "tag", &tag_buf);
            uint8_t full[IOTSEC_HMAC_SHA256_LEN];
            assert_true(iotsec_ok(iotsec_hmac_sha256(key, msg, full)));
            bool prefix_matches = tag.len <= sizeof(full) && memcmp(full, tag.ptr, tag.len) == 0;
            bool computes_right = (expected(test) == EXPECT_ACCEPT) == prefix_matches;
            iotsec_result r = iotsec_hmac_sha256_verify(key, msg, tag);

            if (tag_bits == 8 * IOTSEC_HMAC_SHA256_LEN) {
                judge(&t, test, r, IOTSEC_ERR_VERIFY, computes_right,
                      "iotsec_hmac_sha256 disagrees with the vector's tag");
                continue;
            }
            /* Truncated tag: outside our API. Verify must refuse it, even when it is the
             * correct prefix; the computed MAC must still agree with the vector. */
            if (iotsec_ok(r) || iotsec_error_code() != IOTSEC_ERR_VERIFY)
                print_disagreement(&t, test, "verify accepted a truncated tag");
            else if (!computes_right)
                print_disagreement(&t, test, "the full MAC's prefix disagrees with the vector");
            else
                t.skipped++;
        }
    }
    iotsec_buf_free(&key_buf);
    iotsec_buf_free(&msg_buf);
    iotsec_buf_free(&tag_buf);
    json_decref(root);
    finish(&t, "truncated 128-bit tags: outside our API, refused by verify with "
               "IOTSEC_ERR_VERIFY; the full MAC's prefix was checked against each");
}

/* ---- signatures ---- */

/* Verifies every test of a group with `key` (NULL: the group's key was refused) and, when
 * given, with `key2`, another encoding of the same key, which must reach the same verdict. */
static void run_signature_group(struct tally *t, const json_t *group, struct iotsec_key *key,
                                struct iotsec_key *key2)
{
    struct iotsec_buf msg_buf = {0}, sig_buf = {0};
    size_t ti;
    json_t *test;
    json_array_foreach(json_object_get(group, "tests"), ti, test)
    {
        struct iotsec_slice msg = get_hex(test, "msg", &msg_buf);
        struct iotsec_slice sig = get_hex(test, "sig", &sig_buf);
        if (key == NULL) {
            print_disagreement(t, test, "the group's public key was refused");
            continue;
        }
        iotsec_result r = iotsec_verify(key, msg, sig);
        bool same = true;
        if (key2 != NULL) {
            /* Keep the first verdict's error for judge(); the second only has to agree. */
            iotsec_err code = iotsec_error_code();
            char message[512];
            snprintf(message, sizeof(message), "%s", iotsec_error_message());
            iotsec_result r2 = iotsec_verify(key2, msg, sig);
            same = iotsec_ok(r) == iotsec_ok(r2) && (iotsec_ok(r) || code == iotsec_error_code());
            iotsec_error_set(code, "%s", message);
        }
        judge(t, test, r, IOTSEC_ERR_VERIFY, same,
              "the raw and the DER form of the same key disagree");
    }
    iotsec_buf_free(&msg_buf);
    iotsec_buf_free(&sig_buf);
}

static struct iotsec_key *group_key_from_der(const json_t *group, const char *field)
{
    struct iotsec_buf der = {0};
    struct iotsec_key *key = NULL;
    if (!iotsec_ok(iotsec_key_from_public_der(get_hex(group, field, &der), &key)))
        fprintf(stderr, "wycheproof: group key refused: %s\n", iotsec_error_message());
    iotsec_buf_free(&der);
    return key;
}

static void wycheproof_signatures(const char *file, const char *name, const char *key_field)
{
    struct tally t = {.name = name};
    json_t *root = load_vectors(file, &t);
    size_t gi;
    json_t *group;
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        struct iotsec_key *key = group_key_from_der(group, key_field);
        run_signature_group(&t, group, key, NULL);
        iotsec_key_free(key);
    }
    json_decref(root);
    finish(&t, NULL);
}

static void wycheproof_ecdsa_p256_sha256_der(void **state)
{
    (void)state;
    wycheproof_signatures("ecdsa_secp256r1_sha256_test.json", "ecdsa_p256_sha256", "publicKeyDer");
}

static void wycheproof_rsa_pkcs1_2048_sha256(void **state)
{
    (void)state;
    wycheproof_signatures("rsa_signature_2048_sha256_test.json", "rsa_pkcs1_2048_sha256",
                          "publicKeyDer");
}

/* Ed25519 keys are loaded both raw (RFC 8032) and as DER; both must give one verdict. */
static void wycheproof_ed25519(void **state)
{
    (void)state;
    struct tally t = {.name = "ed25519"};
    json_t *root = load_vectors("ed25519_test.json", &t);
    struct iotsec_buf raw = {0};
    size_t gi;
    json_t *group;
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        struct iotsec_key *key = NULL;
        struct iotsec_slice pk = get_hex(json_object_get(group, "publicKey"), "pk", &raw);
        if (!iotsec_ok(iotsec_key_from_ed25519_raw(pk, &key)))
            fprintf(stderr, "wycheproof: raw key refused: %s\n", iotsec_error_message());
        struct iotsec_key *der_key = group_key_from_der(group, "publicKeyDer");
        run_signature_group(&t, group, der_key != NULL ? key : NULL, der_key);
        iotsec_key_free(key);
        iotsec_key_free(der_key);
    }
    iotsec_buf_free(&raw);
    json_decref(root);
    finish(&t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wycheproof_aes_gcm),
        cmocka_unit_test(wycheproof_hmac_sha256),
        cmocka_unit_test(wycheproof_ecdsa_p256_sha256_der),
        cmocka_unit_test(wycheproof_ed25519),
        cmocka_unit_test(wycheproof_rsa_pkcs1_2048_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
