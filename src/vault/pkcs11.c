/*
 * A PKCS#11 client for keys that never leave a token (include/iotsec/hsm.h).
 *
 * The module is dlopen()ed at run time, so iotsec works with any token (SoftHSM2 in the
 * tests, a YubiHSM or Nitrokey or a cloud HSM in production) without linking against a
 * vendor library. One struct iotsec_hsm holds one logged-in R/W user session.
 *
 * Keys are made inside the token with CKA_SENSITIVE and not CKA_EXTRACTABLE, so their
 * value can never be read out, not even wrapped. What crosses the module boundary is
 * only data to sign or encrypt and the results:
 *   - ECDSA: the token signs a SHA-256 digest that we compute (CKM_ECDSA, supported by
 *     every token, unlike CKM_ECDSA_SHA256), and returns raw r||s, which we convert to
 *     the DER that OpenSSL and `openssl dgst -verify` expect;
 *   - AES-GCM (CKM_AES_GCM) with a caller-chosen 96-bit nonce, for wrapping the vault's
 *     data key.
 * Every failure names the PKCS#11 function and the CKR_ code.
 */
#include "iotsec/hsm.h"

#include "iotsec/crypto.h"

#include <dlfcn.h>
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P256_COORD_LEN  32
#define TOKEN_LABEL_LEN 32 /* CK_TOKEN_INFO.label: space padded, not terminated */
#define LABEL_MAX       128

struct iotsec_hsm {
    void *module;
    CK_FUNCTION_LIST_PTR p11;
    CK_SESSION_HANDLE session;
    bool initialized;
};

/* DER of the OID 1.2.840.10045.3.1.7 (prime256v1), the CKA_EC_PARAMS of a P-256 key. */
static const uint8_t P256_OID_DER[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

#define CKR_NAME(name)                                                                             \
    {                                                                                              \
        name, #name                                                                                \
    }
static const struct {
    CK_RV rv;
    const char *name;
} ckr_names[] = {
    CKR_NAME(CKR_ACTION_PROHIBITED),
    CKR_NAME(CKR_ARGUMENTS_BAD),
    CKR_NAME(CKR_ATTRIBUTE_READ_ONLY),
    CKR_NAME(CKR_ATTRIBUTE_SENSITIVE),
    CKR_NAME(CKR_ATTRIBUTE_TYPE_INVALID),
    CKR_NAME(CKR_ATTRIBUTE_VALUE_INVALID),
    CKR_NAME(CKR_BUFFER_TOO_SMALL),
    CKR_NAME(CKR_CANCEL),
    CKR_NAME(CKR_CANT_LOCK),
    CKR_NAME(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    CKR_NAME(CKR_CRYPTOKI_NOT_INITIALIZED),
    CKR_NAME(CKR_CURVE_NOT_SUPPORTED),
    CKR_NAME(CKR_DATA_INVALID),
    CKR_NAME(CKR_DATA_LEN_RANGE),
    CKR_NAME(CKR_DEVICE_ERROR),
    CKR_NAME(CKR_DEVICE_MEMORY),
    CKR_NAME(CKR_DEVICE_REMOVED),
    CKR_NAME(CKR_DOMAIN_PARAMS_INVALID),
    CKR_NAME(CKR_ENCRYPTED_DATA_INVALID),
    CKR_NAME(CKR_ENCRYPTED_DATA_LEN_RANGE),
    CKR_NAME(CKR_EXCEEDED_MAX_ITERATIONS),
    CKR_NAME(CKR_FIPS_SELF_TEST_FAILED),
    CKR_NAME(CKR_FUNCTION_CANCELED),
    CKR_NAME(CKR_FUNCTION_FAILED),
    CKR_NAME(CKR_FUNCTION_NOT_PARALLEL),
    CKR_NAME(CKR_FUNCTION_NOT_SUPPORTED),
    CKR_NAME(CKR_FUNCTION_REJECTED),
    CKR_NAME(CKR_GENERAL_ERROR),
    CKR_NAME(CKR_HOST_MEMORY),
    CKR_NAME(CKR_INFORMATION_SENSITIVE),
    CKR_NAME(CKR_KEY_CHANGED),
    CKR_NAME(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CKR_NAME(CKR_KEY_HANDLE_INVALID),
    CKR_NAME(CKR_KEY_INDIGESTIBLE),
    CKR_NAME(CKR_KEY_NEEDED),
    CKR_NAME(CKR_KEY_NOT_NEEDED),
    CKR_NAME(CKR_KEY_NOT_WRAPPABLE),
    CKR_NAME(CKR_KEY_SIZE_RANGE),
    CKR_NAME(CKR_KEY_TYPE_INCONSISTENT),
    CKR_NAME(CKR_KEY_UNEXTRACTABLE),
    CKR_NAME(CKR_LIBRARY_LOAD_FAILED),
    CKR_NAME(CKR_MECHANISM_INVALID),
    CKR_NAME(CKR_MECHANISM_PARAM_INVALID),
    CKR_NAME(CKR_MUTEX_BAD),
    CKR_NAME(CKR_MUTEX_NOT_LOCKED),
    CKR_NAME(CKR_NEED_TO_CREATE_THREADS),
    CKR_NAME(CKR_NEW_PIN_MODE),
    CKR_NAME(CKR_NEXT_OTP),
    CKR_NAME(CKR_NO_EVENT),
    CKR_NAME(CKR_OBJECT_HANDLE_INVALID),
    CKR_NAME(CKR_OK),
    CKR_NAME(CKR_OPERATION_ACTIVE),
    CKR_NAME(CKR_OPERATION_NOT_INITIALIZED),
    CKR_NAME(CKR_PIN_EXPIRED),
    CKR_NAME(CKR_PIN_INCORRECT),
    CKR_NAME(CKR_PIN_INVALID),
    CKR_NAME(CKR_PIN_LEN_RANGE),
    CKR_NAME(CKR_PIN_LOCKED),
    CKR_NAME(CKR_PIN_TOO_WEAK),
    CKR_NAME(CKR_PUBLIC_KEY_INVALID),
    CKR_NAME(CKR_RANDOM_NO_RNG),
    CKR_NAME(CKR_RANDOM_SEED_NOT_SUPPORTED),
    CKR_NAME(CKR_SAVED_STATE_INVALID),
    CKR_NAME(CKR_SESSION_CLOSED),
    CKR_NAME(CKR_SESSION_COUNT),
    CKR_NAME(CKR_SESSION_EXISTS),
    CKR_NAME(CKR_SESSION_HANDLE_INVALID),
    CKR_NAME(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    CKR_NAME(CKR_SESSION_READ_ONLY),
    CKR_NAME(CKR_SESSION_READ_ONLY_EXISTS),
    CKR_NAME(CKR_SESSION_READ_WRITE_SO_EXISTS),
    CKR_NAME(CKR_SIGNATURE_INVALID),
    CKR_NAME(CKR_SIGNATURE_LEN_RANGE),
    CKR_NAME(CKR_SLOT_ID_INVALID),
    CKR_NAME(CKR_STATE_UNSAVEABLE),
    CKR_NAME(CKR_TEMPLATE_INCOMPLETE),
    CKR_NAME(CKR_TEMPLATE_INCONSISTENT),
    CKR_NAME(CKR_TOKEN_NOT_PRESENT),
    CKR_NAME(CKR_TOKEN_NOT_RECOGNIZED),
    CKR_NAME(CKR_TOKEN_WRITE_PROTECTED),
    CKR_NAME(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    CKR_NAME(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    CKR_NAME(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    CKR_NAME(CKR_USER_ALREADY_LOGGED_IN),
    CKR_NAME(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    CKR_NAME(CKR_USER_NOT_LOGGED_IN),
    CKR_NAME(CKR_USER_PIN_NOT_INITIALIZED),
    CKR_NAME(CKR_USER_TOO_MANY_TYPES),
    CKR_NAME(CKR_USER_TYPE_INVALID),
    CKR_NAME(CKR_WRAPPED_KEY_INVALID),
    CKR_NAME(CKR_WRAPPED_KEY_LEN_RANGE),
    CKR_NAME(CKR_WRAPPING_KEY_HANDLE_INVALID),
    CKR_NAME(CKR_WRAPPING_KEY_SIZE_RANGE),
    CKR_NAME(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
};

const char *iotsec_hsm_ckr_name(unsigned long rv)
{
    static _Thread_local char unknown[32];
    for (size_t i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++) {
        if (ckr_names[i].rv == rv)
            return ckr_names[i].name;
    }
    snprintf(unknown, sizeof(unknown), "CKR_0x%08lX", rv);
    return unknown;
}

/* Every PKCS#11 call goes through this: a failure becomes "hsm: C_Xxx: CKR_YYY". */
#define P11_CALL(hsm, fn, ...)                                                                     \
    do {                                                                                           \
        CK_RV rv_ = (hsm)->p11->fn(__VA_ARGS__);                                                   \
        IOTSEC_ENSURE(rv_ == CKR_OK, IOTSEC_ERR_PKCS11, "hsm: " #fn ": %s",                        \
                      iotsec_hsm_ckr_name(rv_));                                                   \
    } while (0)

static bool token_label_equals(const unsigned char field[TOKEN_LABEL_LEN], const char *label)
{
    size_t n = strlen(label);
    if (n > TOKEN_LABEL_LEN || memcmp(field, label, n) != 0)
        return false;
    for (size_t i = n; i < TOKEN_LABEL_LEN; i++) {
        if (field[i] != ' ')
            return false;
    }
    return true;
}

static bool token_has_label(const CK_TOKEN_INFO *info, const char *label)
{
    return token_label_equals(info->label, label);
}

static bool token_is_uninitialised(const CK_TOKEN_INFO *info, const char *unused)
{
    (void)unused;
    return (info->flags & CKF_TOKEN_INITIALIZED) == 0;
}

/* The first slot whose token satisfies match(info, arg); *found says whether there is one. */
static iotsec_result find_token(struct iotsec_hsm *hsm,
                                bool (*match)(const CK_TOKEN_INFO *, const char *), const char *arg,
                                CK_SLOT_ID *slot, bool *found)
{
    CK_ULONG count = 0;
    *found = false;
    P11_CALL(hsm, C_GetSlotList, CK_TRUE, NULL, &count);
    if (count == 0)
        return IOTSEC_RESULT_OK;
    CK_SLOT_ID *slots = calloc(count, sizeof(*slots));
    IOTSEC_ENSURE_ALLOC(slots);
    CK_RV rv = hsm->p11->C_GetSlotList(CK_TRUE, slots, &count);
    for (CK_ULONG i = 0; rv == CKR_OK && i < count && !*found; i++) {
        CK_TOKEN_INFO info;
        if (hsm->p11->C_GetTokenInfo(slots[i], &info) == CKR_OK && match(&info, arg)) {
            *slot = slots[i];
            *found = true;
        }
    }
    free(slots);
    IOTSEC_ENSURE(rv == CKR_OK, IOTSEC_ERR_PKCS11, "hsm: C_GetSlotList: %s",
                  iotsec_hsm_ckr_name(rv));
    return IOTSEC_RESULT_OK;
}

static iotsec_result find_slot(struct iotsec_hsm *hsm, const char *token_label, CK_SLOT_ID *slot)
{
    bool found;
    IOTSEC_GUARD(find_token(hsm, token_has_label, token_label, slot, &found));
    IOTSEC_ENSURE(found, IOTSEC_ERR_NOT_FOUND, "hsm: no token labelled '%s'", token_label);
    return IOTSEC_RESULT_OK;
}

/* C_Initialize and C_Finalize act on the whole module in the process, not on a session:
 * a second C_Initialize fails with CKR_CRYPTOKI_ALREADY_INITIALIZED, and C_Finalize under
 * a live handle would end its session. So the module is initialised by the first handle
 * that needs it and finalised by the last one to close (dlopen returns the same library,
 * hence the same function list, for every handle). */
#define MODULES_MAX 8
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    CK_FUNCTION_LIST_PTR p11;
    unsigned users;
} modules[MODULES_MAX];

static iotsec_result module_acquire(struct iotsec_hsm *hsm)
{
    pthread_mutex_lock(&modules_lock);
    size_t slot = MODULES_MAX;
    for (size_t i = 0; i < MODULES_MAX; i++) {
        if (modules[i].users > 0 && modules[i].p11 == hsm->p11) {
            slot = i;
            break;
        }
        if (modules[i].users == 0 && slot == MODULES_MAX)
            slot = i;
    }
    CK_RV rv = CKR_OK;
    if (slot == MODULES_MAX) {
        rv = CKR_HOST_MEMORY;
    } else if (modules[slot].users == 0) {
        CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
        rv = hsm->p11->C_Initialize(&args);
    }
    if (rv == CKR_OK) {
        modules[slot].p11 = hsm->p11;
        modules[slot].users++;
        hsm->initialized = true;
    }
    pthread_mutex_unlock(&modules_lock);
    IOTSEC_ENSURE(slot != MODULES_MAX, IOTSEC_ERR_PKCS11,
                  "hsm: more than %d PKCS#11 modules in use at once", MODULES_MAX);
    IOTSEC_ENSURE(rv == CKR_OK, IOTSEC_ERR_PKCS11, "hsm: C_Initialize: %s",
                  iotsec_hsm_ckr_name(rv));
    return IOTSEC_RESULT_OK;
}

static void module_release(struct iotsec_hsm *hsm)
{
    pthread_mutex_lock(&modules_lock);
    for (size_t i = 0; i < MODULES_MAX; i++) {
        if (modules[i].users > 0 && modules[i].p11 == hsm->p11) {
            if (--modules[i].users == 0)
                hsm->p11->C_Finalize(NULL);
            break;
        }
    }
    pthread_mutex_unlock(&modules_lock);
}

static iotsec_result load_module(struct iotsec_hsm *hsm, const char *module_path)
{
    hsm->module = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    IOTSEC_ENSURE(hsm->module != NULL, IOTSEC_ERR_NOT_FOUND, "hsm: cannot load module %s: %s",
                  module_path, dlerror());
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(hsm->module, "C_GetFunctionList");
    IOTSEC_ENSURE(get_list != NULL, IOTSEC_ERR_PKCS11,
                  "hsm: %s is not a PKCS#11 module (no C_GetFunctionList)", module_path);
    CK_RV rv = get_list(&hsm->p11);
    IOTSEC_ENSURE(rv == CKR_OK && hsm->p11 != NULL, IOTSEC_ERR_PKCS11, "hsm: C_GetFunctionList: %s",
                  iotsec_hsm_ckr_name(rv));
    return module_acquire(hsm);
}

static iotsec_result init_token(struct iotsec_hsm *hsm, const char *token_label,
                                struct iotsec_slice so_pin, struct iotsec_slice user_pin)
{
    CK_SLOT_ID slot;
    bool found;
    IOTSEC_GUARD(find_token(hsm, token_has_label, token_label, &slot, &found));
    IOTSEC_ENSURE(!found, IOTSEC_ERR_EXISTS, "hsm: a token labelled '%s' already exists",
                  token_label);
    IOTSEC_GUARD(find_token(hsm, token_is_uninitialised, NULL, &slot, &found));
    IOTSEC_ENSURE(found, IOTSEC_ERR_NOT_FOUND, "hsm: no slot with an uninitialised token");
    CK_UTF8CHAR label[TOKEN_LABEL_LEN];
    memset(label, ' ', sizeof(label));
    memcpy(label, token_label, strlen(token_label));
    P11_CALL(hsm, C_InitToken, slot, (CK_UTF8CHAR_PTR)(uintptr_t)so_pin.ptr, so_pin.len, label);
    P11_CALL(hsm, C_OpenSession, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
             &hsm->session);
    P11_CALL(hsm, C_Login, hsm->session, CKU_SO, (CK_UTF8CHAR_PTR)(uintptr_t)so_pin.ptr,
             so_pin.len);
    P11_CALL(hsm, C_InitPIN, hsm->session, (CK_UTF8CHAR_PTR)(uintptr_t)user_pin.ptr, user_pin.len);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hsm_init_token(const char *module_path, const char *token_label,
                                    struct iotsec_slice so_pin, struct iotsec_slice user_pin)
{
    size_t n = strlen(token_label);
    IOTSEC_ENSURE(n >= 1 && n <= TOKEN_LABEL_LEN, IOTSEC_ERR_INVALID_ARG,
                  "hsm: a token label has 1 to %d characters", TOKEN_LABEL_LEN);
    struct iotsec_hsm *hsm = calloc(1, sizeof(*hsm));
    IOTSEC_ENSURE_ALLOC(hsm);
    hsm->session = CK_INVALID_HANDLE;
    iotsec_result r = load_module(hsm, module_path);
    if (iotsec_ok(r))
        r = init_token(hsm, token_label, so_pin, user_pin);
    iotsec_hsm_close(hsm);
    return r;
}

static iotsec_result open_session(struct iotsec_hsm *hsm, const char *module_path,
                                  const char *token_label, struct iotsec_slice pin)
{
    size_t label_len = strlen(token_label);
    IOTSEC_ENSURE(label_len >= 1 && label_len <= TOKEN_LABEL_LEN, IOTSEC_ERR_INVALID_ARG,
                  "hsm: a token label has 1 to %d characters", TOKEN_LABEL_LEN);
    IOTSEC_GUARD(load_module(hsm, module_path));
    CK_SLOT_ID slot;
    IOTSEC_GUARD(find_slot(hsm, token_label, &slot));
    P11_CALL(hsm, C_OpenSession, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
             &hsm->session);
    /* Login state belongs to the application, not the session (PKCS#11 2.40 section 5.6):
     * a second handle in the same process finds the user logged in already. */
    CK_RV rv =
        hsm->p11->C_Login(hsm->session, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)pin.ptr, pin.len);
    IOTSEC_ENSURE(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, IOTSEC_ERR_PKCS11,
                  "hsm: C_Login: %s", iotsec_hsm_ckr_name(rv));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hsm_open(const char *module_path, const char *token_label,
                              struct iotsec_slice pin, struct iotsec_hsm **out)
{
    struct iotsec_hsm *hsm = calloc(1, sizeof(*hsm));
    IOTSEC_ENSURE_ALLOC(hsm);
    hsm->session = CK_INVALID_HANDLE;
    if (!iotsec_ok(open_session(hsm, module_path, token_label, pin))) {
        iotsec_hsm_close(hsm);
        return IOTSEC_RESULT_ERR;
    }
    *out = hsm;
    return IOTSEC_RESULT_OK;
}

void iotsec_hsm_close(struct iotsec_hsm *hsm)
{
    if (hsm == NULL)
        return;
    /* No C_Logout: it would log out every other handle of this process too. Closing the
     * application's last session logs the user out (PKCS#11 2.40 section 5.6). */
    if (hsm->session != CK_INVALID_HANDLE)
        hsm->p11->C_CloseSession(hsm->session);
    if (hsm->initialized)
        module_release(hsm);
    if (hsm->module != NULL)
        dlclose(hsm->module);
    free(hsm);
}

/* ---- objects ---- */

static iotsec_result check_label(const char *label)
{
    size_t n = strlen(label);
    IOTSEC_ENSURE(n >= 1 && n <= LABEL_MAX, IOTSEC_ERR_INVALID_ARG,
                  "hsm: a key label has 1 to %d characters", LABEL_MAX);
    return IOTSEC_RESULT_OK;
}

/* Finds the one object of `klass` with CKA_LABEL == label. *handle is CK_INVALID_HANDLE and
 * the result OK when there is none and `required` is false. */
static iotsec_result find_object(struct iotsec_hsm *hsm, CK_OBJECT_CLASS klass, const char *label,
                                 bool required, CK_OBJECT_HANDLE *handle)
{
    IOTSEC_GUARD(check_label(label));
    CK_ATTRIBUTE query[] = {
        {CKA_CLASS, &klass, sizeof(klass)},
        {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    P11_CALL(hsm, C_FindObjectsInit, hsm->session, query, 2);
    CK_RV rv = hsm->p11->C_FindObjects(hsm->session, found, 2, &count);
    hsm->p11->C_FindObjectsFinal(hsm->session);
    IOTSEC_ENSURE(rv == CKR_OK, IOTSEC_ERR_PKCS11, "hsm: C_FindObjects: %s",
                  iotsec_hsm_ckr_name(rv));
    IOTSEC_ENSURE(count < 2, IOTSEC_ERR_EXISTS,
                  "hsm: more than one key is labelled '%s'; refusing to guess", label);
    *handle = count == 1 ? found[0] : CK_INVALID_HANDLE;
    IOTSEC_ENSURE(count == 1 || !required, IOTSEC_ERR_NOT_FOUND, "hsm: no key labelled '%s'",
                  label);
    return IOTSEC_RESULT_OK;
}

static iotsec_result ensure_label_free(struct iotsec_hsm *hsm, const char *label)
{
    const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY};
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        CK_OBJECT_HANDLE h;
        IOTSEC_GUARD(find_object(hsm, classes[i], label, false, &h));
        IOTSEC_ENSURE(h == CK_INVALID_HANDLE, IOTSEC_ERR_EXISTS,
                      "hsm: a key labelled '%s' already exists", label);
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hsm_keygen_ec(struct iotsec_hsm *hsm, const char *label)
{
    IOTSEC_GUARD(ensure_label_free(hsm, label));
    uint8_t id[16];
    IOTSEC_GUARD(iotsec_random(id, sizeof(id)));
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG label_len = strlen(label);
    void *label_ptr = (void *)(uintptr_t)label;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_EC_PARAMS, (void *)(uintptr_t)P256_OID_DER, sizeof(P256_OID_DER)},
        {CKA_LABEL, label_ptr, label_len},
        {CKA_ID, id, sizeof(id)},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},     {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},      {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},      {CKA_LABEL, label_ptr, label_len},
        {CKA_ID, id, sizeof(id)},
    };
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub_h, priv_h;
    P11_CALL(hsm, C_GenerateKeyPair, hsm->session, &mech, pub, sizeof(pub) / sizeof(pub[0]), priv,
             sizeof(priv) / sizeof(priv[0]), &pub_h, &priv_h);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hsm_keygen_aes(struct iotsec_hsm *hsm, const char *label)
{
    IOTSEC_GUARD(ensure_label_free(hsm, label));
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = 32;
    CK_KEY_TYPE type = CKK_AES;
    CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &klass, sizeof(klass)}, {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},   {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},      {CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE key;
    P11_CALL(hsm, C_GenerateKey, hsm->session, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &key);
    return IOTSEC_RESULT_OK;
}

/* ---- ECDSA ---- */

/* PKCS#11 signatures are r||s, each 32 bytes; X.509 and OpenSSL use DER SEQUENCE{r, s}. */
static iotsec_result raw_to_der(const uint8_t raw[2 * P256_COORD_LEN], struct iotsec_buf *der)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, P256_COORD_LEN, NULL);
    BIGNUM *s = BN_bin2bn(raw + P256_COORD_LEN, P256_COORD_LEN, NULL);
    bool ok = sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1;
    if (ok)
        r = s = NULL; /* owned by sig now */
    unsigned char *out = NULL;
    int n = ok ? i2d_ECDSA_SIG(sig, &out) : -1;
    iotsec_result res = IOTSEC_RESULT_OK;
    if (n <= 0) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "hsm: encoding the signature");
        res = IOTSEC_RESULT_ERR;
    } else {
        res = iotsec_buf_append(der, out, (size_t)n);
    }
    OPENSSL_free(out);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return res;
}

/* Strict DER only: the signature must re-encode to exactly the bytes given. */
static iotsec_result der_to_raw(struct iotsec_slice der, uint8_t raw[2 * P256_COORD_LEN])
{
    const unsigned char *p = der.ptr;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der.len);
    IOTSEC_ENSURE(sig != NULL, IOTSEC_ERR_VERIFY,
                  "hsm: the signature is not a DER ECDSA signature");
    unsigned char *again = NULL;
    int n = i2d_ECDSA_SIG(sig, &again);
    bool canonical = p == der.ptr + der.len && n > 0 && (size_t)n == der.len &&
                     memcmp(again, der.ptr, der.len) == 0;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    bool fits = BN_bn2binpad(r, raw, P256_COORD_LEN) == P256_COORD_LEN &&
                BN_bn2binpad(s, raw + P256_COORD_LEN, P256_COORD_LEN) == P256_COORD_LEN;
    OPENSSL_free(again);
    ECDSA_SIG_free(sig);
    IOTSEC_ENSURE(canonical, IOTSEC_ERR_VERIFY, "hsm: the signature is not in strict DER");
    IOTSEC_ENSURE(fits, IOTSEC_ERR_VERIFY, "hsm: the signature does not fit P-256");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hsm_sign(struct iotsec_hsm *hsm, const char *label, struct iotsec_slice msg,
                              struct iotsec_buf *sig)
{
    CK_OBJECT_HANDLE key;
    IOTSEC_GUARD(find_object(hsm, CKO_PRIVATE_KEY, label, true, &key));
    uint8_t digest[IOTSEC_SHA256_LEN];
    IOTSEC_GUARD(iotsec_sha256(msg, digest));
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    uint8_t raw[2 * P256_COORD_LEN];
    CK_ULONG raw_len = sizeof(raw);
    P11_CALL(hsm, C_SignInit, hsm->session, &mech, key);
    P11_CALL(hsm, C_Sign, hsm->session, digest, sizeof(digest), raw, &raw_len);
    IOTSEC_ENSURE(raw_len == sizeof(raw), IOTSEC_ERR_PKCS11,
                  "hsm: key '%s' returned a %lu-byte signature; only P-256 keys are supported",
                  label, (unsigned long)raw_len);
    return raw_to_der(raw, sig);
}

iotsec_result iotsec_hsm_verify(struct iotsec_hsm *hsm, const char *label, struct iotsec_slice msg,
                                struct iotsec_slice sig)
{
    CK_OBJECT_HANDLE key;
    IOTSEC_GUARD(find_object(hsm, CKO_PUBLIC_KEY, label, true, &key));
    uint8_t raw[2 * P256_COORD_LEN];
    IOTSEC_GUARD(der_to_raw(sig, raw));
    uint8_t digest[IOTSEC_SHA256_LEN];
    IOTSEC_GUARD(iotsec_sha256(msg, digest));
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    P11_CALL(hsm, C_VerifyInit, hsm->session, &mech, key);
    CK_RV rv = hsm->p11->C_Verify(hsm->session, digest, sizeof(digest), raw, sizeof(raw));
    IOTSEC_ENSURE(rv != CKR_SIGNATURE_INVALID && rv != CKR_SIGNATURE_LEN_RANGE, IOTSEC_ERR_VERIFY,
                  "hsm: signature verification failed");
    IOTSEC_ENSURE(rv == CKR_OK, IOTSEC_ERR_PKCS11, "hsm: C_Verify: %s", iotsec_hsm_ckr_name(rv));
    return IOTSEC_RESULT_OK;
}

/* CKA_EC_POINT is the uncompressed point wrapped in a DER OCTET STRING (PKCS#11 2.40
 * section 2.3.3); some tokens omit the wrapper, so both forms are accepted. */
static iotsec_result ec_point(struct iotsec_slice attr, struct iotsec_slice *point)
{
    if (attr.len == 65 && attr.ptr[0] == 0x04) {
        *point = attr;
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_ENSURE(attr.len == 67 && attr.ptr[0] == 0x04 && attr.ptr[1] == 65 && attr.ptr[2] == 0x04,
                  IOTSEC_ERR_FORMAT,
                  "hsm: the key's CKA_EC_POINT is not an uncompressed P-256 point");
    *point = iotsec_slice_make(attr.ptr + 2, 65);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hsm_pubkey_pem(struct iotsec_hsm *hsm, const char *label,
                                    struct iotsec_buf *pem)
{
    CK_OBJECT_HANDLE key;
    IOTSEC_GUARD(find_object(hsm, CKO_PUBLIC_KEY, label, true, &key));
    uint8_t attr[80];
    CK_ATTRIBUTE query = {CKA_EC_POINT, attr, sizeof(attr)};
    P11_CALL(hsm, C_GetAttributeValue, hsm->session, key, &query, 1);
    struct iotsec_slice point;
    IOTSEC_GUARD(ec_point(iotsec_slice_make(attr, query.ulValueLen), &point));

    /* OpenSSL 3: build the key from parameters; the deprecated EC_KEY API is not used. */
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(uintptr_t)point.ptr,
                                          point.len),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    iotsec_result r = IOTSEC_RESULT_ERR;
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        iotsec_error_set_ossl(IOTSEC_ERR_FORMAT,
                              "hsm: the token's public key '%s' is not a valid "
                              "P-256 point",
                              label);
        goto done;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "hsm: writing the public key");
        goto done;
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    r = iotsec_buf_append(pem, data, (size_t)n);
done:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return r;
}

/* ---- AES-GCM in the token ---- */

static CK_GCM_PARAMS gcm_params(struct iotsec_slice nonce, struct iotsec_slice aad)
{
    return (CK_GCM_PARAMS){
        .pIv = (CK_BYTE_PTR)(uintptr_t)nonce.ptr,
        .ulIvLen = nonce.len,
        .ulIvBits = nonce.len * 8,
        .pAAD = (CK_BYTE_PTR)(uintptr_t)aad.ptr,
        .ulAADLen = aad.len,
        .ulTagBits = IOTSEC_AEAD_TAG_LEN * 8,
    };
}

iotsec_result iotsec_hsm_aead_seal(struct iotsec_hsm *hsm, const char *label,
                                   struct iotsec_slice nonce, struct iotsec_slice aad,
                                   struct iotsec_slice plain, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(nonce.len == IOTSEC_AEAD_NONCE_LEN, IOTSEC_ERR_INVALID_ARG,
                  "hsm: the nonce must be %d bytes", IOTSEC_AEAD_NONCE_LEN);
    CK_OBJECT_HANDLE key;
    IOTSEC_GUARD(find_object(hsm, CKO_SECRET_KEY, label, true, &key));
    CK_GCM_PARAMS params = gcm_params(nonce, aad);
    CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof(params)};
    size_t mark = out->len;
    uint8_t *dst;
    CK_ULONG len = plain.len + IOTSEC_AEAD_TAG_LEN;
    IOTSEC_GUARD(iotsec_buf_grow(out, len, &dst));
    CK_RV rv = hsm->p11->C_EncryptInit(hsm->session, &mech, key);
    /* Tokens reject a NULL data pointer even for zero bytes. */
    static const uint8_t nothing[1];
    const uint8_t *data = plain.ptr != NULL ? plain.ptr : nothing;
    if (rv == CKR_OK)
        rv = hsm->p11->C_Encrypt(hsm->session, (CK_BYTE_PTR)(uintptr_t)data, plain.len, dst, &len);
    if (rv != CKR_OK || len != plain.len + IOTSEC_AEAD_TAG_LEN) {
        out->len = mark;
        IOTSEC_BAIL(IOTSEC_ERR_PKCS11, "hsm: C_Encrypt (AES-GCM): %s",
                    rv == CKR_OK ? "unexpected output length" : iotsec_hsm_ckr_name(rv));
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hsm_aead_open(struct iotsec_hsm *hsm, const char *label,
                                   struct iotsec_slice nonce, struct iotsec_slice aad,
                                   struct iotsec_slice sealed, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(nonce.len == IOTSEC_AEAD_NONCE_LEN, IOTSEC_ERR_INVALID_ARG,
                  "hsm: the nonce must be %d bytes", IOTSEC_AEAD_NONCE_LEN);
    IOTSEC_ENSURE(sealed.len >= IOTSEC_AEAD_TAG_LEN, IOTSEC_ERR_AUTH,
                  "hsm: sealed data is shorter than its tag");
    CK_OBJECT_HANDLE key;
    IOTSEC_GUARD(find_object(hsm, CKO_SECRET_KEY, label, true, &key));
    CK_GCM_PARAMS params = gcm_params(nonce, aad);
    CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof(params)};

    /* Decrypt into a private secret buffer: nothing reaches `out` unless the tag verifies. */
    struct iotsec_buf plain;
    iotsec_buf_init_secret(&plain);
    uint8_t *dst;
    CK_ULONG len = sealed.len;
    IOTSEC_GUARD(iotsec_buf_grow(&plain, sealed.len, &dst));
    CK_RV rv = hsm->p11->C_DecryptInit(hsm->session, &mech, key);
    if (rv == CKR_OK)
        rv = hsm->p11->C_Decrypt(hsm->session, (CK_BYTE_PTR)(uintptr_t)sealed.ptr, sealed.len, dst,
                                 &len);
    iotsec_result r = IOTSEC_RESULT_OK;
    /* The standard answer to a GCM tag mismatch is CKR_ENCRYPTED_DATA_INVALID, but SoftHSM2
     * returns CKR_GENERAL_ERROR from its failed decrypt-final; both mean "not authentic". */
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
        rv == CKR_GENERAL_ERROR) {
        iotsec_error_set(IOTSEC_ERR_AUTH, "hsm: AES-GCM tag mismatch (wrong key or altered data)");
        r = IOTSEC_RESULT_ERR;
    } else if (rv != CKR_OK || len != sealed.len - IOTSEC_AEAD_TAG_LEN) {
        iotsec_error_set(IOTSEC_ERR_PKCS11, "hsm: C_Decrypt (AES-GCM): %s",
                         rv == CKR_OK ? "unexpected output length" : iotsec_hsm_ckr_name(rv));
        r = IOTSEC_RESULT_ERR;
    } else {
        r = iotsec_buf_append(out, dst, len);
    }
    iotsec_buf_free(&plain);
    return r;
}
