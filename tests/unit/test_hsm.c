/*
 * Unit tests for the PKCS#11 client against a real SoftHSM2 token created here, in a
 * temporary directory. Besides the API, the test talks PKCS#11 to the token itself to
 * prove that the private and secret keys we generate cannot be read out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotsec/crypto.h"
#include "iotsec/hsm.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN  "unit-token"
#define PIN    "4711-pin"

static char dir[64];

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iotsec-hsm-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char conf[128];
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    iotsec_result r = iotsec_hsm_init_token(MODULE, TOKEN, iotsec_slice_from_str("so-pin-1"),
                                            iotsec_slice_from_str(PIN));
    return iotsec_ok(r) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct iotsec_hsm *open_token(void)
{
    struct iotsec_hsm *hsm = NULL;
    assert_true(iotsec_ok(iotsec_hsm_open(MODULE, TOKEN, iotsec_slice_from_str(PIN), &hsm)));
    return hsm;
}

static void hsm_signature_verifies_in_token_and_with_openssl(void **state)
{
    (void)state;
    struct iotsec_hsm *hsm = open_token();
    assert_true(iotsec_ok(iotsec_hsm_keygen_ec(hsm, "sig-key")));
    struct iotsec_slice msg = iotsec_slice_from_str("firmware bytes");
    struct iotsec_buf sig = {0}, pem = {0};
    assert_true(iotsec_ok(iotsec_hsm_sign(hsm, "sig-key", msg, &sig)));
    assert_true(iotsec_ok(iotsec_hsm_verify(hsm, "sig-key", msg, iotsec_buf_slice(&sig))));

    /* The exported public key verifies the token's signature outside the token. */
    assert_true(iotsec_ok(iotsec_hsm_pubkey_pem(hsm, "sig-key", &pem)));
    struct iotsec_key *pub = NULL;
    assert_true(iotsec_ok(iotsec_key_from_pem(iotsec_buf_slice(&pem), &pub)));
    assert_true(iotsec_ok(iotsec_verify(pub, msg, iotsec_buf_slice(&sig))));

    struct iotsec_slice other = iotsec_slice_from_str("firmware bytez");
    assert_false(iotsec_ok(iotsec_hsm_verify(hsm, "sig-key", other, iotsec_buf_slice(&sig))));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_VERIFY);
    assert_false(iotsec_ok(iotsec_verify(pub, other, iotsec_buf_slice(&sig))));

    iotsec_key_free(pub);
    iotsec_buf_free(&sig);
    iotsec_buf_free(&pem);
    iotsec_hsm_close(hsm);
}

/* Reads CKA_SENSITIVE, CKA_EXTRACTABLE and tries CKA_VALUE of the key `label` of `klass`
 * through our own PKCS#11 session. */
static void assert_key_cannot_leave(CK_OBJECT_CLASS klass, const char *label)
{
    void *lib = dlopen(MODULE, RTLD_NOW);
    assert_non_null(lib);
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR p11;
    assert_int_equal(get(&p11), CKR_OK);
    assert_int_equal(p11->C_Initialize(NULL), CKR_OK);
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    for (CK_ULONG i = 0; i < n && s == CK_INVALID_HANDLE; i++) {
        CK_TOKEN_INFO info;
        if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            memcmp(info.label, TOKEN, strlen(TOKEN)) == 0)
            assert_int_equal(p11->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s),
                             CKR_OK);
    }
    assert_int_not_equal(s, CK_INVALID_HANDLE);
    assert_int_equal(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)PIN, strlen(PIN)),
                     CKR_OK);
    CK_ATTRIBUTE q[] = {{CKA_CLASS, &klass, sizeof(klass)},
                        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)}};
    CK_OBJECT_HANDLE key;
    CK_ULONG found = 0;
    assert_int_equal(p11->C_FindObjectsInit(s, q, 2), CKR_OK);
    assert_int_equal(p11->C_FindObjects(s, &key, 1, &found), CKR_OK);
    p11->C_FindObjectsFinal(s);
    assert_int_equal(found, 1);

    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
    CK_ATTRIBUTE flags[] = {{CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
                            {CKA_EXTRACTABLE, &extractable, sizeof(extractable)}};
    assert_int_equal(p11->C_GetAttributeValue(s, key, flags, 2), CKR_OK);
    assert_true(sensitive == CK_TRUE);
    assert_true(extractable == CK_FALSE);
    uint8_t value[256];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
    assert_int_equal(p11->C_GetAttributeValue(s, key, &v, 1), CKR_ATTRIBUTE_SENSITIVE);

    p11->C_Logout(s);
    p11->C_CloseSession(s);
    p11->C_Finalize(NULL);
    dlclose(lib);
}

static void hsm_private_keys_are_sensitive_and_not_extractable(void **state)
{
    (void)state;
    struct iotsec_hsm *hsm = open_token();
    assert_true(iotsec_ok(iotsec_hsm_keygen_ec(hsm, "locked-ec")));
    assert_true(iotsec_ok(iotsec_hsm_keygen_aes(hsm, "locked-aes")));
    iotsec_hsm_close(hsm);
    assert_key_cannot_leave(CKO_PRIVATE_KEY, "locked-ec");
    assert_key_cannot_leave(CKO_SECRET_KEY, "locked-aes");
}

static void hsm_aead_round_trips_and_detects_tampering(void **state)
{
    (void)state;
    struct iotsec_hsm *hsm = open_token();
    assert_true(iotsec_ok(iotsec_hsm_keygen_aes(hsm, "wrap-key")));
    uint8_t nonce[12] = {1, 2, 3};
    struct iotsec_slice n = iotsec_slice_make(nonce, sizeof(nonce));
    struct iotsec_slice aad = iotsec_slice_from_str("header");
    struct iotsec_slice plain = iotsec_slice_from_str("the data key, 32 bytes long.....");
    struct iotsec_buf sealed = {0}, opened = {0};
    assert_true(iotsec_ok(iotsec_hsm_aead_seal(hsm, "wrap-key", n, aad, plain, &sealed)));
    assert_int_equal(sealed.len, plain.len + 16);
    assert_true(iotsec_ok(
        iotsec_hsm_aead_open(hsm, "wrap-key", n, aad, iotsec_buf_slice(&sealed), &opened)));
    assert_true(iotsec_slice_equal(iotsec_buf_slice(&opened), plain));

    iotsec_buf_reset(&opened);
    sealed.ptr[sealed.len - 1] ^= 1;
    assert_false(iotsec_ok(
        iotsec_hsm_aead_open(hsm, "wrap-key", n, aad, iotsec_buf_slice(&sealed), &opened)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    assert_int_equal(opened.len, 0);
    sealed.ptr[sealed.len - 1] ^= 1;
    assert_false(iotsec_ok(iotsec_hsm_aead_open(hsm, "wrap-key", n, iotsec_slice_from_str("other"),
                                                iotsec_buf_slice(&sealed), &opened)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    assert_int_equal(opened.len, 0);

    iotsec_buf_free(&sealed);
    iotsec_buf_free(&opened);
    iotsec_hsm_close(hsm);
}

static void hsm_errors_name_function_and_ckr_code(void **state)
{
    (void)state;
    struct iotsec_hsm *hsm = NULL;
    assert_false(iotsec_ok(iotsec_hsm_open(MODULE, TOKEN, iotsec_slice_from_str("wrong"), &hsm)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_PKCS11);
    assert_string_equal(iotsec_error_message(), "hsm: C_Login: CKR_PIN_INCORRECT");
    assert_null(hsm);

    assert_false(iotsec_ok(iotsec_hsm_open(MODULE, "absent", iotsec_slice_from_str(PIN), &hsm)));
    assert_string_equal(iotsec_error_message(), "hsm: no token labelled 'absent'");
    assert_false(
        iotsec_ok(iotsec_hsm_open("/nonexistent.so", TOKEN, iotsec_slice_from_str(PIN), &hsm)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);

    hsm = open_token();
    struct iotsec_buf sig = {0};
    assert_false(iotsec_ok(iotsec_hsm_sign(hsm, "missing", iotsec_slice_from_str("m"), &sig)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);
    assert_true(iotsec_ok(iotsec_hsm_keygen_ec(hsm, "twice")));
    assert_false(iotsec_ok(iotsec_hsm_keygen_ec(hsm, "twice")));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_EXISTS);
    assert_false(iotsec_ok(iotsec_hsm_keygen_aes(hsm, "twice")));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_EXISTS);
    iotsec_hsm_close(hsm);

    assert_string_equal(iotsec_hsm_ckr_name(0xA0), "CKR_PIN_INCORRECT");
    assert_string_equal(iotsec_hsm_ckr_name(0x0), "CKR_OK");
    assert_string_equal(iotsec_hsm_ckr_name(0x8abcdef0UL), "CKR_0x8ABCDEF0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hsm_signature_verifies_in_token_and_with_openssl),
        cmocka_unit_test(hsm_private_keys_are_sensitive_and_not_extractable),
        cmocka_unit_test(hsm_aead_round_trips_and_detects_tampering),
        cmocka_unit_test(hsm_errors_name_function_and_ckr_code),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
