/*
 * Unit tests for the PKCS#11 client (include/iotsec/hsm.h) against a real SoftHSM2 token.
 *
 * Every test gets a token of its own: setup writes a softhsm2.conf whose token directory
 * is a fresh temporary directory, points SOFTHSM2_CONF at it, and initialises the token
 * through PKCS#11 itself (C_InitToken, C_InitPIN), independently of the code under test.
 * Teardown removes the directory. What the client promises about the token (keys are
 * sensitive and never extractable, both halves of a pair share a random CKA_ID) is read
 * back through a PKCS#11 session of the test's own, not through the client.
 *
 * The module is $IOTSEC_PKCS11_MODULE, else SoftHSM2's usual Debian path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "iotsec/crypto.h"
#include "iotsec/hsm.h"

#include <dlfcn.h>
#include <ftw.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_LABEL    "iotsec-test"
#define USER_PIN       "user-pin-1234"
#define SO_PIN         "so-pin-5678"

/* ---- helpers ---- */

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            fail_msg("%s failed: %s", #expr, iotsec_error_message());                              \
    } while (0)

static void assert_fails(iotsec_result r, iotsec_err code, const char *message)
{
    assert_false(iotsec_ok(r));
    assert_int_equal(iotsec_error_code(), code);
    if (message != NULL)
        assert_string_equal(iotsec_error_message(), message);
}

static struct iotsec_slice str(const char *s)
{
    return iotsec_slice_from_str(s);
}

static const char *module_path(void)
{
    const char *m = getenv("IOTSEC_PKCS11_MODULE");
    return m != NULL && m[0] != '\0' ? m : DEFAULT_MODULE;
}

/* ---- the test's own PKCS#11 session, independent of the code under test ---- */

struct p11 {
    void *lib;
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE session;
};

#define P11_OK(expr) assert_int_equal((expr), CKR_OK)

static void p11_load(struct p11 *p)
{
    *p = (struct p11){.session = CK_INVALID_HANDLE};
    p->lib = dlopen(module_path(), RTLD_NOW | RTLD_LOCAL);
    if (p->lib == NULL)
        fail_msg("cannot load %s: %s", module_path(), dlerror());
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(p->lib, "C_GetFunctionList");
    assert_non_null(get);
    P11_OK(get(&p->f));
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    P11_OK(p->f->C_Initialize(&args));
}

static void p11_unload(struct p11 *p)
{
    if (p->session != CK_INVALID_HANDLE)
        P11_OK(p->f->C_CloseSession(p->session));
    P11_OK(p->f->C_Finalize(NULL));
    dlclose(p->lib);
    *p = (struct p11){.session = CK_INVALID_HANDLE};
}

static void pad_label(CK_UTF8CHAR out[32], const char *label)
{
    memset(out, ' ', 32);
    memcpy(out, label, strlen(label));
}

/* The first slot whose token is (want_initialized ? initialised with label : fresh). */
static CK_SLOT_ID p11_slot(struct p11 *p, bool want_initialized, const char *label)
{
    CK_SLOT_ID slots[16];
    CK_ULONG count = 16;
    P11_OK(p->f->C_GetSlotList(CK_TRUE, slots, &count));
    CK_UTF8CHAR padded[32];
    pad_label(padded, label == NULL ? "" : label);
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        P11_OK(p->f->C_GetTokenInfo(slots[i], &info));
        bool initialized = (info.flags & CKF_TOKEN_INITIALIZED) != 0;
        if (!want_initialized && !initialized)
            return slots[i];
        if (want_initialized && initialized && memcmp(info.label, padded, 32) == 0)
            return slots[i];
    }
    fail_msg("no %s token in the module", want_initialized ? label : "free");
    return 0;
}

/* What `softhsm2-util --init-token --free` does: label and SO PIN, then the user PIN. */
static void p11_init_token(const char *label, const char *so_pin, const char *user_pin)
{
    struct p11 p;
    p11_load(&p);
    CK_SLOT_ID slot = p11_slot(&p, false, NULL);
    CK_UTF8CHAR padded[32];
    pad_label(padded, label);
    P11_OK(p.f->C_InitToken(slot, (CK_UTF8CHAR_PTR)(uintptr_t)so_pin, strlen(so_pin), padded));
    P11_OK(p.f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p.session));
    P11_OK(p.f->C_Login(p.session, CKU_SO, (CK_UTF8CHAR_PTR)(uintptr_t)so_pin, strlen(so_pin)));
    P11_OK(p.f->C_InitPIN(p.session, (CK_UTF8CHAR_PTR)(uintptr_t)user_pin, strlen(user_pin)));
    P11_OK(p.f->C_Logout(p.session));
    p11_unload(&p);
}

/* A session on the token labelled token, logged in as who with pin; returns C_Login's answer. */
static CK_RV p11_session(struct p11 *p, const char *token, CK_USER_TYPE who, const char *pin)
{
    p11_load(p);
    CK_SLOT_ID slot = p11_slot(p, true, token);
    P11_OK(p->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->session));
    return p->f->C_Login(p->session, who, (CK_UTF8CHAR_PTR)(uintptr_t)pin, strlen(pin));
}

static void p11_login(struct p11 *p)
{
    P11_OK(p11_session(p, TOKEN_LABEL, CKU_USER, USER_PIN));
}

/* All objects of klass labelled label; returns how many (at most cap in found). */
static CK_ULONG p11_find(struct p11 *p, CK_OBJECT_CLASS klass, const char *label,
                         CK_OBJECT_HANDLE *found, CK_ULONG cap)
{
    CK_ATTRIBUTE query[] = {
        {CKA_CLASS, &klass, sizeof(klass)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_ULONG count = 0;
    P11_OK(p->f->C_FindObjectsInit(p->session, query, 2));
    P11_OK(p->f->C_FindObjects(p->session, found, cap, &count));
    P11_OK(p->f->C_FindObjectsFinal(p->session));
    return count;
}

static CK_OBJECT_HANDLE p11_find_one(struct p11 *p, CK_OBJECT_CLASS klass, const char *label)
{
    CK_OBJECT_HANDLE found[4];
    assert_int_equal(p11_find(p, klass, label, found, 4), 1);
    return found[0];
}

static CK_BBOOL p11_bool(struct p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = 0xff;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    P11_OK(p->f->C_GetAttributeValue(p->session, h, &a, 1));
    return v;
}

static CK_ULONG p11_bytes(struct p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, uint8_t *out,
                          CK_ULONG cap)
{
    CK_ATTRIBUTE a = {type, out, cap};
    P11_OK(p->f->C_GetAttributeValue(p->session, h, &a, 1));
    return a.ulValueLen;
}

/* ---- fixture: one fresh token per test ---- */

struct fixture {
    char dir[64];
    struct iotsec_hsm *hsm;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotsec-hsm-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char tokens[128], conf[128];
    snprintf(tokens, sizeof(tokens), "%s/tokens", f->dir);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", f->dir);
    assert_int_equal(mkdir(tokens, 0700), 0);
    FILE *c = fopen(conf, "w");
    assert_non_null(c);
    fprintf(c, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    assert_int_equal(fclose(c), 0);
    assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);

    p11_init_token(TOKEN_LABEL, SO_PIN, USER_PIN);
    OK(iotsec_hsm_open(module_path(), TOKEN_LABEL, str(USER_PIN), &f->hsm));
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    iotsec_hsm_close(f->hsm);
    assert_int_equal(nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    unsetenv("SOFTHSM2_CONF");
    free(f);
    return 0;
}

/* The client and the test's own session cannot both hold the module initialised (a second
 * C_Initialize in one process is CKR_CRYPTOKI_ALREADY_INITIALIZED), so tests that inspect
 * the token close the client first. */
static void close_client(struct fixture *f)
{
    iotsec_hsm_close(f->hsm);
    f->hsm = NULL;
}

static const char MESSAGE[] = "firmware 1.4.2 for model sensor-x";

/* ---- ECDSA ---- */

static void hsm_ec_key_signs_and_verifies(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    struct iotsec_buf sig = {0};
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &sig));

    /* DER SEQUENCE { INTEGER r, INTEGER s }: what OpenSSL reads, nothing after it. */
    const unsigned char *p = sig.ptr;
    ECDSA_SIG *parsed = d2i_ECDSA_SIG(NULL, &p, (long)sig.len);
    assert_non_null(parsed);
    assert_ptr_equal(p, sig.ptr + sig.len);
    ECDSA_SIG_free(parsed);
    assert_int_equal(sig.ptr[0], 0x30);
    assert_in_range(sig.len, 8, 72);

    OK(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_buf_slice(&sig)));

    /* ECDSA is randomised: a second signature differs and verifies too. */
    struct iotsec_buf again = {0};
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &again));
    assert_false(iotsec_slice_equal(iotsec_buf_slice(&sig), iotsec_buf_slice(&again)));
    OK(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_buf_slice(&again)));
    iotsec_buf_free(&sig);
    iotsec_buf_free(&again);
}

static void hsm_sign_appends_to_the_buffer(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    struct iotsec_buf out = {0};
    OK(iotsec_buf_append_str(&out, "prefix"));
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &out));
    assert_memory_equal(out.ptr, "prefix", 6);
    OK(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE),
                         iotsec_slice_make(out.ptr + 6, out.len - 6)));
    iotsec_buf_free(&out);
}

static void hsm_keys_survive_closing_the_session(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    struct iotsec_buf sig = {0};
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &sig));
    close_client(f);
    OK(iotsec_hsm_open(module_path(), TOKEN_LABEL, str(USER_PIN), &f->hsm));
    OK(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_buf_slice(&sig)));
    iotsec_buf_free(&sig);
}

static void hsm_verify_rejects_a_tampered_message(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    struct iotsec_buf sig = {0};
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &sig));

    char tampered[sizeof(MESSAGE)];
    memcpy(tampered, MESSAGE, sizeof(MESSAGE));
    tampered[9] ^= 0x01; /* "1.4.2" becomes "0.4.2" */
    assert_fails(iotsec_hsm_verify(f->hsm, "release", str(tampered), iotsec_buf_slice(&sig)),
                 IOTSEC_ERR_VERIFY, "hsm: signature verification failed");
    assert_fails(iotsec_hsm_verify(f->hsm, "release", str(""), iotsec_buf_slice(&sig)),
                 IOTSEC_ERR_VERIFY, "hsm: signature verification failed");
    iotsec_buf_free(&sig);
}

static void hsm_verify_rejects_a_tampered_signature(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    struct iotsec_buf sig = {0};
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &sig));
    sig.ptr[sig.len - 1] ^= 0x01; /* last byte of s: still valid DER */
    assert_fails(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_buf_slice(&sig)),
                 IOTSEC_ERR_VERIFY, "hsm: signature verification failed");
    iotsec_buf_free(&sig);
}

static void hsm_verify_rejects_another_keys_signature(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "key-a"));
    OK(iotsec_hsm_keygen_ec(f->hsm, "key-b"));
    struct iotsec_buf sig = {0};
    OK(iotsec_hsm_sign(f->hsm, "key-a", str(MESSAGE), &sig));
    assert_fails(iotsec_hsm_verify(f->hsm, "key-b", str(MESSAGE), iotsec_buf_slice(&sig)),
                 IOTSEC_ERR_VERIFY, "hsm: signature verification failed");
    iotsec_buf_free(&sig);
}

/* The same r and s in encodings a lax BER parser would accept: each must be refused, so
 * that one signature has exactly one byte string (no malleability). */
static void hsm_verify_accepts_strict_der_only(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    struct iotsec_buf sig = {0};
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &sig));
    assert_true(sig.len < 128 && sig.ptr[1] == sig.len - 2);

    /* Trailing garbage after the SEQUENCE. */
    uint8_t bad[80];
    memcpy(bad, sig.ptr, sig.len);
    bad[sig.len] = 0x00;
    assert_fails(
        iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_slice_make(bad, sig.len + 1)),
        IOTSEC_ERR_VERIFY, NULL);

    /* The SEQUENCE length in long form (0x81 nn) where short form is required. */
    bad[0] = 0x30;
    bad[1] = 0x81;
    bad[2] = sig.ptr[1];
    memcpy(bad + 3, sig.ptr + 2, sig.len - 2);
    assert_fails(
        iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_slice_make(bad, sig.len + 1)),
        IOTSEC_ERR_VERIFY, NULL);

    /* r with a superfluous leading zero byte. */
    size_t rlen = sig.ptr[3];
    bad[0] = 0x30;
    bad[1] = (uint8_t)(sig.ptr[1] + 1);
    bad[2] = 0x02;
    bad[3] = (uint8_t)(rlen + 1);
    bad[4] = 0x00;
    memcpy(bad + 5, sig.ptr + 4, sig.len - 4);
    assert_fails(
        iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_slice_make(bad, sig.len + 1)),
        IOTSEC_ERR_VERIFY, NULL);

    /* Raw r||s as PKCS#11 returns it, and the empty string, are not DER. */
    uint8_t raw[64] = {1};
    assert_fails(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_slice_make(raw, 64)),
                 IOTSEC_ERR_VERIFY, NULL);
    assert_fails(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_slice_make(raw, 0)),
                 IOTSEC_ERR_VERIFY, NULL);

    /* And the untouched signature still verifies. */
    OK(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), iotsec_buf_slice(&sig)));
    iotsec_buf_free(&sig);
}

/* ---- what the token holds ---- */

static void hsm_private_key_is_sensitive_and_never_extractable(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    OK(iotsec_hsm_keygen_ec(f->hsm, "other"));
    close_client(f);

    struct p11 p;
    p11_login(&p);
    CK_OBJECT_HANDLE priv = p11_find_one(&p, CKO_PRIVATE_KEY, "release");
    CK_OBJECT_HANDLE pub = p11_find_one(&p, CKO_PUBLIC_KEY, "release");

    assert_int_equal(p11_bool(&p, priv, CKA_SENSITIVE), CK_TRUE);
    assert_int_equal(p11_bool(&p, priv, CKA_EXTRACTABLE), CK_FALSE);
    assert_int_equal(p11_bool(&p, priv, CKA_ALWAYS_SENSITIVE), CK_TRUE);
    assert_int_equal(p11_bool(&p, priv, CKA_NEVER_EXTRACTABLE), CK_TRUE);
    assert_int_equal(p11_bool(&p, priv, CKA_TOKEN), CK_TRUE);
    assert_int_equal(p11_bool(&p, priv, CKA_PRIVATE), CK_TRUE);
    assert_int_equal(p11_bool(&p, priv, CKA_SIGN), CK_TRUE);
    assert_int_equal(p11_bool(&p, pub, CKA_VERIFY), CK_TRUE);
    assert_int_equal(p11_bool(&p, pub, CKA_TOKEN), CK_TRUE);

    /* The token refuses to reveal the private value. */
    uint8_t value[128];
    CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof(value)};
    assert_int_equal(p.f->C_GetAttributeValue(p.session, priv, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
    assert_true(a.ulValueLen == CK_UNAVAILABLE_INFORMATION);

    /* P-256 domain, and one random CKA_ID shared by the two halves, unlike the other key's. */
    static const uint8_t p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    uint8_t params[32];
    CK_ULONG n = p11_bytes(&p, pub, CKA_EC_PARAMS, params, sizeof(params));
    assert_int_equal(n, sizeof(p256_oid));
    assert_memory_equal(params, p256_oid, sizeof(p256_oid));
    uint8_t id_priv[64], id_pub[64], id_other[64];
    CK_ULONG id_len = p11_bytes(&p, priv, CKA_ID, id_priv, sizeof(id_priv));
    assert_true(id_len >= 8);
    assert_int_equal(p11_bytes(&p, pub, CKA_ID, id_pub, sizeof(id_pub)), id_len);
    assert_memory_equal(id_priv, id_pub, id_len);
    CK_OBJECT_HANDLE other = p11_find_one(&p, CKO_PRIVATE_KEY, "other");
    assert_int_equal(p11_bytes(&p, other, CKA_ID, id_other, sizeof(id_other)), id_len);
    assert_memory_not_equal(id_priv, id_other, id_len);
    p11_unload(&p);
}

static void hsm_aes_key_is_sensitive_and_never_extractable(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_aes(f->hsm, "vault-kek"));
    close_client(f);

    struct p11 p;
    p11_login(&p);
    CK_OBJECT_HANDLE key = p11_find_one(&p, CKO_SECRET_KEY, "vault-kek");
    CK_KEY_TYPE type = 0;
    CK_ULONG len = 0;
    CK_ATTRIBUTE attrs[] = {{CKA_KEY_TYPE, &type, sizeof(type)},
                            {CKA_VALUE_LEN, &len, sizeof(len)}};
    P11_OK(p.f->C_GetAttributeValue(p.session, key, attrs, 2));
    assert_int_equal(type, CKK_AES);
    assert_int_equal(len, 32);
    assert_int_equal(p11_bool(&p, key, CKA_SENSITIVE), CK_TRUE);
    assert_int_equal(p11_bool(&p, key, CKA_EXTRACTABLE), CK_FALSE);
    assert_int_equal(p11_bool(&p, key, CKA_NEVER_EXTRACTABLE), CK_TRUE);
    assert_int_equal(p11_bool(&p, key, CKA_TOKEN), CK_TRUE);
    assert_int_equal(p11_bool(&p, key, CKA_ENCRYPT), CK_TRUE);
    assert_int_equal(p11_bool(&p, key, CKA_DECRYPT), CK_TRUE);
    uint8_t value[64];
    CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof(value)};
    assert_int_equal(p.f->C_GetAttributeValue(p.session, key, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
    p11_unload(&p);
}

/* ---- public key export ---- */

static void hsm_pubkey_pem_verifies_a_token_signature_in_openssl(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    struct iotsec_buf pem = {0}, sig = {0};
    OK(iotsec_hsm_pubkey_pem(f->hsm, "release", &pem));
    OK(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &sig));
    static const char begin[] = "-----BEGIN PUBLIC KEY-----\n";
    assert_true(pem.len > sizeof(begin) && memcmp(pem.ptr, begin, sizeof(begin) - 1) == 0);

    BIO *bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    assert_non_null(bio);
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pkey);
    assert_true(EVP_PKEY_is_a(pkey, "EC"));
    char group[32];
    assert_int_equal(EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), NULL),
                     1);
    assert_string_equal(group, "prime256v1");

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL), 1);
    assert_int_equal(
        EVP_DigestVerify(md, sig.ptr, sig.len, (const uint8_t *)MESSAGE, strlen(MESSAGE)), 1);
    /* A different message does not verify: the check above is not vacuous. */
    EVP_MD_CTX_reset(md);
    assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL), 1);
    assert_int_equal(EVP_DigestVerify(md, sig.ptr, sig.len, (const uint8_t *)"x", 1), 0);
    EVP_MD_CTX_free(md);

    /* The PEM holds exactly the token's public point (CKA_EC_POINT, inside its OCTET STRING). */
    uint8_t encoded[128];
    size_t encoded_len = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                     encoded, sizeof(encoded), &encoded_len),
                     1);
    EVP_PKEY_free(pkey);
    close_client(f);
    struct p11 p;
    p11_login(&p);
    uint8_t point[128];
    CK_ULONG n = p11_bytes(&p, p11_find_one(&p, CKO_PUBLIC_KEY, "release"), CKA_EC_POINT, point,
                           sizeof(point));
    p11_unload(&p);
    assert_int_equal(n, 67);
    assert_int_equal(point[0], 0x04); /* OCTET STRING */
    assert_int_equal(point[1], 65);
    assert_int_equal(encoded_len, 65);
    assert_memory_equal(point + 2, encoded, 65);

    iotsec_buf_free(&pem);
    iotsec_buf_free(&sig);
}

/* ---- AES-GCM in the token ---- */

static const uint8_t NONCE[IOTSEC_AEAD_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const char AAD[] = "iotsec vault header";
static const char DATA_KEY[] = "0123456789abcdef0123456789abcdef";

/* Two handles in one process share the module: the second open must not fail on
 * C_Initialize, and closing the first must not finalize the module under the second. */
static void hsm_two_handles_share_the_module(void **state)
{
    struct fixture *f = *state;
    struct iotsec_hsm *second = NULL;
    OK(iotsec_hsm_open(module_path(), TOKEN_LABEL, str(USER_PIN), &second));
    OK(iotsec_hsm_keygen_ec(second, "shared"));
    close_client(f);
    struct iotsec_buf sig = {0};
    OK(iotsec_hsm_sign(second, "shared", str("after the first handle closed"), &sig));
    OK(iotsec_hsm_verify(second, "shared", str("after the first handle closed"),
                         iotsec_buf_slice(&sig)));
    iotsec_buf_free(&sig);
    iotsec_hsm_close(second);
}

/* A zero-length plaintext with no buffer behind it (a zeroed slice) still seals. */
static void hsm_seals_an_empty_plaintext(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_aes(f->hsm, "kek"));
    struct iotsec_buf sealed = {0}, opened = {0};
    OK(iotsec_hsm_aead_seal(f->hsm, "kek", iotsec_slice_make(NONCE, sizeof(NONCE)), str(AAD),
                            iotsec_slice_make(NULL, 0), &sealed));
    assert_int_equal(sealed.len, IOTSEC_AEAD_TAG_LEN);
    OK(iotsec_hsm_aead_open(f->hsm, "kek", iotsec_slice_make(NONCE, sizeof(NONCE)), str(AAD),
                            iotsec_buf_slice(&sealed), &opened));
    assert_int_equal(opened.len, 0);
    iotsec_buf_free(&sealed);
    iotsec_buf_free(&opened);
}

static void hsm_aes_gcm_round_trips(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_aes(f->hsm, "vault-kek"));
    struct iotsec_slice nonce = iotsec_slice_make(NONCE, sizeof(NONCE));
    struct iotsec_buf sealed = {0}, opened = {0};
    OK(iotsec_buf_append_str(&sealed, "hdr"));
    OK(iotsec_hsm_aead_seal(f->hsm, "vault-kek", nonce, str(AAD), str(DATA_KEY), &sealed));
    assert_memory_equal(sealed.ptr, "hdr", 3);
    assert_int_equal(sealed.len, 3 + strlen(DATA_KEY) + IOTSEC_AEAD_TAG_LEN);
    assert_memory_not_equal(sealed.ptr + 3, DATA_KEY, strlen(DATA_KEY));

    struct iotsec_slice ct = iotsec_slice_make(sealed.ptr + 3, sealed.len - 3);
    OK(iotsec_buf_append_str(&opened, "out:"));
    OK(iotsec_hsm_aead_open(f->hsm, "vault-kek", nonce, str(AAD), ct, &opened));
    assert_int_equal(opened.len, 4 + strlen(DATA_KEY));
    assert_memory_equal(opened.ptr, "out:", 4);
    assert_memory_equal(opened.ptr + 4, DATA_KEY, strlen(DATA_KEY));

    /* Another nonce gives another ciphertext. */
    uint8_t nonce2[IOTSEC_AEAD_NONCE_LEN] = {12};
    struct iotsec_buf sealed2 = {0};
    OK(iotsec_hsm_aead_seal(f->hsm, "vault-kek", iotsec_slice_make(nonce2, sizeof(nonce2)),
                            str(AAD), str(DATA_KEY), &sealed2));
    assert_int_equal(sealed2.len, ct.len);
    assert_memory_not_equal(sealed2.ptr, ct.ptr, ct.len);

    iotsec_buf_free(&sealed);
    iotsec_buf_free(&sealed2);
    iotsec_buf_free(&opened);
}

static void assert_open_fails_untouched(struct fixture *f, struct iotsec_slice nonce,
                                        struct iotsec_slice aad, struct iotsec_slice sealed)
{
    struct iotsec_buf out = {0};
    OK(iotsec_buf_append_str(&out, "keep"));
    assert_fails(iotsec_hsm_aead_open(f->hsm, "vault-kek", nonce, aad, sealed, &out),
                 IOTSEC_ERR_AUTH, NULL);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.ptr, "keep", 4);
    iotsec_buf_free(&out);
}

static void hsm_aes_gcm_detects_tampering(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_aes(f->hsm, "vault-kek"));
    struct iotsec_slice nonce = iotsec_slice_make(NONCE, sizeof(NONCE));
    struct iotsec_buf sealed = {0};
    OK(iotsec_hsm_aead_seal(f->hsm, "vault-kek", nonce, str(AAD), str(DATA_KEY), &sealed));
    struct iotsec_slice s = iotsec_buf_slice(&sealed);

    sealed.ptr[sealed.len - 1] ^= 0x80; /* the tag */
    assert_open_fails_untouched(f, nonce, str(AAD), s);
    assert_string_equal(iotsec_error_message(),
                        "hsm: AES-GCM tag mismatch (wrong key or altered data)");
    sealed.ptr[sealed.len - 1] ^= 0x80;

    sealed.ptr[0] ^= 0x01; /* the ciphertext */
    assert_open_fails_untouched(f, nonce, str(AAD), s);
    sealed.ptr[0] ^= 0x01;

    assert_open_fails_untouched(f, nonce, str("another header"), s);
    uint8_t other_nonce[IOTSEC_AEAD_NONCE_LEN] = {0};
    assert_open_fails_untouched(f, iotsec_slice_make(other_nonce, sizeof(other_nonce)), str(AAD),
                                s);
    assert_open_fails_untouched(f, nonce, str(AAD), iotsec_slice_make(s.ptr, s.len - 1));
    assert_open_fails_untouched(f, nonce, str(AAD), iotsec_slice_make(s.ptr, 5));

    /* A second key of the same kind cannot open it either. */
    OK(iotsec_hsm_keygen_aes(f->hsm, "other-kek"));
    struct iotsec_buf out = {0};
    assert_fails(iotsec_hsm_aead_open(f->hsm, "other-kek", nonce, str(AAD), s, &out),
                 IOTSEC_ERR_AUTH, NULL);
    assert_int_equal(out.len, 0);

    /* Restored, it opens again. */
    OK(iotsec_hsm_aead_open(f->hsm, "vault-kek", nonce, str(AAD), s, &out));
    assert_int_equal(out.len, strlen(DATA_KEY));
    iotsec_buf_free(&out);
    iotsec_buf_free(&sealed);
}

static void hsm_aes_gcm_requires_a_12_byte_nonce(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_aes(f->hsm, "vault-kek"));
    struct iotsec_buf out = {0};
    assert_fails(iotsec_hsm_aead_seal(f->hsm, "vault-kek", iotsec_slice_make(NONCE, 11), str(AAD),
                                      str(DATA_KEY), &out),
                 IOTSEC_ERR_INVALID_ARG, "hsm: the nonce must be 12 bytes");
    assert_fails(iotsec_hsm_aead_open(f->hsm, "vault-kek", iotsec_slice_make(NONCE, 0), str(AAD),
                                      str("0123456789abcdef0123"), &out),
                 IOTSEC_ERR_INVALID_ARG, "hsm: the nonce must be 12 bytes");
    assert_int_equal(out.len, 0);
    iotsec_buf_free(&out);
}

/* ---- errors the operator sees ---- */

static void hsm_wrong_pin_names_ckr_pin_incorrect(void **state)
{
    struct fixture *f = *state;
    close_client(f);
    struct iotsec_hsm *hsm = NULL;
    assert_fails(iotsec_hsm_open(module_path(), TOKEN_LABEL, str("not-the-pin"), &hsm),
                 IOTSEC_ERR_PKCS11, "hsm: C_Login: CKR_PIN_INCORRECT");
    assert_null(hsm);
    /* The failed attempt left nothing initialised behind: the right PIN works at once. */
    OK(iotsec_hsm_open(module_path(), TOKEN_LABEL, str(USER_PIN), &f->hsm));
}

static void hsm_unknown_token_label_is_not_found(void **state)
{
    struct fixture *f = *state;
    close_client(f);
    struct iotsec_hsm *hsm = NULL;
    assert_fails(iotsec_hsm_open(module_path(), "no-such-token", str(USER_PIN), &hsm),
                 IOTSEC_ERR_NOT_FOUND, "hsm: no token labelled 'no-such-token'");
    /* Labels are compared whole: a prefix of the real label is another label. */
    assert_fails(iotsec_hsm_open(module_path(), "iotsec", str(USER_PIN), &hsm),
                 IOTSEC_ERR_NOT_FOUND, "hsm: no token labelled 'iotsec'");
    assert_fails(
        iotsec_hsm_open(module_path(), "iotsec-test-and-a-label-of-33-chars", str(USER_PIN), &hsm),
        IOTSEC_ERR_INVALID_ARG, NULL);
    assert_null(hsm);
}

static void hsm_unknown_key_label_is_not_found(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release-2"));
    OK(iotsec_hsm_keygen_aes(f->hsm, "vault-kek"));
    const char *want = "hsm: no key labelled 'release'";
    struct iotsec_buf out = {0};
    struct iotsec_slice nonce = iotsec_slice_make(NONCE, sizeof(NONCE));
    assert_fails(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &out), IOTSEC_ERR_NOT_FOUND,
                 want);
    assert_fails(iotsec_hsm_verify(f->hsm, "release", str(MESSAGE), str("0")), IOTSEC_ERR_NOT_FOUND,
                 want);
    assert_fails(iotsec_hsm_pubkey_pem(f->hsm, "release", &out), IOTSEC_ERR_NOT_FOUND, want);
    assert_fails(iotsec_hsm_aead_seal(f->hsm, "release", nonce, str(AAD), str(DATA_KEY), &out),
                 IOTSEC_ERR_NOT_FOUND, want);
    /* Keys are found by label and kind: an AES key does not sign, an EC key does not seal. */
    assert_fails(iotsec_hsm_sign(f->hsm, "vault-kek", str(MESSAGE), &out), IOTSEC_ERR_NOT_FOUND,
                 "hsm: no key labelled 'vault-kek'");
    assert_fails(iotsec_hsm_aead_seal(f->hsm, "release-2", nonce, str(AAD), str(DATA_KEY), &out),
                 IOTSEC_ERR_NOT_FOUND, "hsm: no key labelled 'release-2'");
    assert_int_equal(out.len, 0);
    iotsec_buf_free(&out);
}

static void hsm_refuses_a_duplicate_label(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "release"));
    OK(iotsec_hsm_keygen_aes(f->hsm, "vault-kek"));
    assert_fails(iotsec_hsm_keygen_ec(f->hsm, "release"), IOTSEC_ERR_EXISTS,
                 "hsm: a key labelled 'release' already exists");
    assert_fails(iotsec_hsm_keygen_aes(f->hsm, "release"), IOTSEC_ERR_EXISTS,
                 "hsm: a key labelled 'release' already exists");
    assert_fails(iotsec_hsm_keygen_ec(f->hsm, "vault-kek"), IOTSEC_ERR_EXISTS,
                 "hsm: a key labelled 'vault-kek' already exists");
    close_client(f);

    /* Nothing was created by the refused attempts. */
    struct p11 p;
    p11_login(&p);
    CK_OBJECT_HANDLE found[4];
    assert_int_equal(p11_find(&p, CKO_PRIVATE_KEY, "release", found, 4), 1);
    assert_int_equal(p11_find(&p, CKO_PUBLIC_KEY, "release", found, 4), 1);
    assert_int_equal(p11_find(&p, CKO_SECRET_KEY, "release", found, 4), 0);
    assert_int_equal(p11_find(&p, CKO_SECRET_KEY, "vault-kek", found, 4), 1);
    assert_int_equal(p11_find(&p, CKO_PRIVATE_KEY, "vault-kek", found, 4), 0);
    p11_unload(&p);
}

static void hsm_key_labels_are_bounded(void **state)
{
    struct fixture *f = *state;
    char long_label[130];
    memset(long_label, 'k', 129);
    long_label[129] = '\0';
    assert_fails(iotsec_hsm_keygen_ec(f->hsm, ""), IOTSEC_ERR_INVALID_ARG, NULL);
    assert_fails(iotsec_hsm_keygen_aes(f->hsm, long_label), IOTSEC_ERR_INVALID_ARG, NULL);
    long_label[128] = '\0';
    OK(iotsec_hsm_keygen_ec(f->hsm, long_label));
}

static void hsm_missing_module_is_a_clear_error(void **state)
{
    (void)state;
    struct iotsec_hsm *hsm = NULL;
    assert_fails(
        iotsec_hsm_open("/nonexistent/libpkcs11-module.so", TOKEN_LABEL, str(USER_PIN), &hsm),
        IOTSEC_ERR_NOT_FOUND, NULL);
    static const char want[] = "hsm: cannot load module /nonexistent/libpkcs11-module.so: ";
    assert_true(strncmp(iotsec_error_message(), want, strlen(want)) == 0);
    assert_null(hsm);
}

static void hsm_library_without_pkcs11_is_a_clear_error(void **state)
{
    (void)state;
    struct iotsec_hsm *hsm = NULL;
    assert_fails(iotsec_hsm_open("libz.so.1", TOKEN_LABEL, str(USER_PIN), &hsm), IOTSEC_ERR_PKCS11,
                 "hsm: libz.so.1 is not a PKCS#11 module (no C_GetFunctionList)");
    assert_null(hsm);
    iotsec_hsm_close(NULL);
}

/* ---- token initialisation ---- */

static void hsm_init_token_makes_a_usable_token(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_hsm_keygen_ec(f->hsm, "first-only"));
    close_client(f);

    /* SoftHSM2 always offers one more free slot: the second token goes there. */
    OK(iotsec_hsm_init_token(module_path(), "second", str("second-so-pin"), str("second-pin")));
    struct iotsec_hsm *second = NULL;
    OK(iotsec_hsm_open(module_path(), "second", str("second-pin"), &second));
    OK(iotsec_hsm_keygen_ec(second, "release"));
    struct iotsec_buf sig = {0};
    assert_fails(iotsec_hsm_sign(second, "first-only", str(MESSAGE), &sig), IOTSEC_ERR_NOT_FOUND,
                 "hsm: no key labelled 'first-only'");
    iotsec_hsm_close(second);

    /* The SO PIN is the one given, and the user PIN is not the SO PIN. */
    struct p11 p;
    assert_int_equal(p11_session(&p, "second", CKU_SO, "second-so-pin"), CKR_OK);
    p11_unload(&p);
    assert_int_equal(p11_session(&p, "second", CKU_USER, "second-so-pin"), CKR_PIN_INCORRECT);
    p11_unload(&p);

    /* The first token is untouched. */
    OK(iotsec_hsm_open(module_path(), TOKEN_LABEL, str(USER_PIN), &f->hsm));
    OK(iotsec_hsm_sign(f->hsm, "first-only", str(MESSAGE), &sig));
    assert_fails(iotsec_hsm_sign(f->hsm, "release", str(MESSAGE), &sig), IOTSEC_ERR_NOT_FOUND,
                 "hsm: no key labelled 'release'");
    iotsec_buf_free(&sig);
}

static void hsm_init_token_refuses_a_label_in_use(void **state)
{
    struct fixture *f = *state;
    close_client(f);
    assert_fails(iotsec_hsm_init_token(module_path(), TOKEN_LABEL, str(SO_PIN), str(USER_PIN)),
                 IOTSEC_ERR_EXISTS, "hsm: a token labelled 'iotsec-test' already exists");
    assert_fails(iotsec_hsm_init_token(module_path(), "", str(SO_PIN), str(USER_PIN)),
                 IOTSEC_ERR_INVALID_ARG, NULL);
    assert_fails(iotsec_hsm_init_token(module_path(), "a-token-label-of-33-characters-xx",
                                       str(SO_PIN), str(USER_PIN)),
                 IOTSEC_ERR_INVALID_ARG, NULL);
    /* The existing token still opens with its PIN: nothing was re-initialised. */
    OK(iotsec_hsm_open(module_path(), TOKEN_LABEL, str(USER_PIN), &f->hsm));
}

/* ---- CKR_ names ---- */

#define CKR(name)                                                                                  \
    {                                                                                              \
        name, #name                                                                                \
    }
static const struct {
    CK_RV rv;
    const char *name;
} every_ckr[] = {
    CKR(CKR_OK),
    CKR(CKR_CANCEL),
    CKR(CKR_HOST_MEMORY),
    CKR(CKR_SLOT_ID_INVALID),
    CKR(CKR_GENERAL_ERROR),
    CKR(CKR_FUNCTION_FAILED),
    CKR(CKR_ARGUMENTS_BAD),
    CKR(CKR_NO_EVENT),
    CKR(CKR_NEED_TO_CREATE_THREADS),
    CKR(CKR_CANT_LOCK),
    CKR(CKR_ATTRIBUTE_READ_ONLY),
    CKR(CKR_ATTRIBUTE_SENSITIVE),
    CKR(CKR_ATTRIBUTE_TYPE_INVALID),
    CKR(CKR_ATTRIBUTE_VALUE_INVALID),
    CKR(CKR_ACTION_PROHIBITED),
    CKR(CKR_DATA_INVALID),
    CKR(CKR_DATA_LEN_RANGE),
    CKR(CKR_DEVICE_ERROR),
    CKR(CKR_DEVICE_MEMORY),
    CKR(CKR_DEVICE_REMOVED),
    CKR(CKR_ENCRYPTED_DATA_INVALID),
    CKR(CKR_ENCRYPTED_DATA_LEN_RANGE),
    CKR(CKR_FUNCTION_CANCELED),
    CKR(CKR_FUNCTION_NOT_PARALLEL),
    CKR(CKR_FUNCTION_NOT_SUPPORTED),
    CKR(CKR_KEY_HANDLE_INVALID),
    CKR(CKR_KEY_SIZE_RANGE),
    CKR(CKR_KEY_TYPE_INCONSISTENT),
    CKR(CKR_KEY_NOT_NEEDED),
    CKR(CKR_KEY_CHANGED),
    CKR(CKR_KEY_NEEDED),
    CKR(CKR_KEY_INDIGESTIBLE),
    CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CKR(CKR_KEY_NOT_WRAPPABLE),
    CKR(CKR_KEY_UNEXTRACTABLE),
    CKR(CKR_MECHANISM_INVALID),
    CKR(CKR_MECHANISM_PARAM_INVALID),
    CKR(CKR_OBJECT_HANDLE_INVALID),
    CKR(CKR_OPERATION_ACTIVE),
    CKR(CKR_OPERATION_NOT_INITIALIZED),
    CKR(CKR_PIN_INCORRECT),
    CKR(CKR_PIN_INVALID),
    CKR(CKR_PIN_LEN_RANGE),
    CKR(CKR_PIN_EXPIRED),
    CKR(CKR_PIN_LOCKED),
    CKR(CKR_SESSION_CLOSED),
    CKR(CKR_SESSION_COUNT),
    CKR(CKR_SESSION_HANDLE_INVALID),
    CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    CKR(CKR_SESSION_READ_ONLY),
    CKR(CKR_SESSION_EXISTS),
    CKR(CKR_SESSION_READ_ONLY_EXISTS),
    CKR(CKR_SESSION_READ_WRITE_SO_EXISTS),
    CKR(CKR_SIGNATURE_INVALID),
    CKR(CKR_SIGNATURE_LEN_RANGE),
    CKR(CKR_TEMPLATE_INCOMPLETE),
    CKR(CKR_TEMPLATE_INCONSISTENT),
    CKR(CKR_TOKEN_NOT_PRESENT),
    CKR(CKR_TOKEN_NOT_RECOGNIZED),
    CKR(CKR_TOKEN_WRITE_PROTECTED),
    CKR(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    CKR(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    CKR(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    CKR(CKR_USER_ALREADY_LOGGED_IN),
    CKR(CKR_USER_NOT_LOGGED_IN),
    CKR(CKR_USER_PIN_NOT_INITIALIZED),
    CKR(CKR_USER_TYPE_INVALID),
    CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    CKR(CKR_USER_TOO_MANY_TYPES),
    CKR(CKR_WRAPPED_KEY_INVALID),
    CKR(CKR_WRAPPED_KEY_LEN_RANGE),
    CKR(CKR_WRAPPING_KEY_HANDLE_INVALID),
    CKR(CKR_WRAPPING_KEY_SIZE_RANGE),
    CKR(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    CKR(CKR_RANDOM_SEED_NOT_SUPPORTED),
    CKR(CKR_RANDOM_NO_RNG),
    CKR(CKR_DOMAIN_PARAMS_INVALID),
    CKR(CKR_CURVE_NOT_SUPPORTED),
    CKR(CKR_BUFFER_TOO_SMALL),
    CKR(CKR_SAVED_STATE_INVALID),
    CKR(CKR_INFORMATION_SENSITIVE),
    CKR(CKR_STATE_UNSAVEABLE),
    CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
    CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    CKR(CKR_MUTEX_BAD),
    CKR(CKR_MUTEX_NOT_LOCKED),
    CKR(CKR_NEW_PIN_MODE),
    CKR(CKR_NEXT_OTP),
    CKR(CKR_EXCEEDED_MAX_ITERATIONS),
    CKR(CKR_FIPS_SELF_TEST_FAILED),
    CKR(CKR_LIBRARY_LOAD_FAILED),
    CKR(CKR_PIN_TOO_WEAK),
    CKR(CKR_PUBLIC_KEY_INVALID),
    CKR(CKR_FUNCTION_REJECTED),
};

/* Every CKR_ code that p11-kit's pkcs11.h defines has its name (CKR_VENDOR_DEFINED is the
 * start of the vendor range, not a code). */
static void hsm_ckr_names_cover_the_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(every_ckr) / sizeof(every_ckr[0]); i++)
        assert_string_equal(iotsec_hsm_ckr_name(every_ckr[i].rv), every_ckr[i].name);
    assert_string_equal(iotsec_hsm_ckr_name(0xA0), "CKR_PIN_INCORRECT");
    assert_string_equal(iotsec_hsm_ckr_name(0x12345), "CKR_0x00012345");
    assert_string_equal(iotsec_hsm_ckr_name(CKR_VENDOR_DEFINED | 7), "CKR_0x80000007");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(hsm_ec_key_signs_and_verifies),
        T(hsm_sign_appends_to_the_buffer),
        T(hsm_keys_survive_closing_the_session),
        T(hsm_verify_rejects_a_tampered_message),
        T(hsm_verify_rejects_a_tampered_signature),
        T(hsm_verify_rejects_another_keys_signature),
        T(hsm_verify_accepts_strict_der_only),
        T(hsm_private_key_is_sensitive_and_never_extractable),
        T(hsm_aes_key_is_sensitive_and_never_extractable),
        T(hsm_pubkey_pem_verifies_a_token_signature_in_openssl),
        T(hsm_aes_gcm_round_trips),
        T(hsm_two_handles_share_the_module),
        T(hsm_seals_an_empty_plaintext),
        T(hsm_aes_gcm_detects_tampering),
        T(hsm_aes_gcm_requires_a_12_byte_nonce),
        T(hsm_wrong_pin_names_ckr_pin_incorrect),
        T(hsm_unknown_token_label_is_not_found),
        T(hsm_unknown_key_label_is_not_found),
        T(hsm_refuses_a_duplicate_label),
        T(hsm_key_labels_are_bounded),
        T(hsm_init_token_makes_a_usable_token),
        T(hsm_init_token_refuses_a_label_in_use),
        cmocka_unit_test(hsm_missing_module_is_a_clear_error),
        cmocka_unit_test(hsm_library_without_pkcs11_is_a_clear_error),
        cmocka_unit_test(hsm_ckr_names_cover_the_header),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
