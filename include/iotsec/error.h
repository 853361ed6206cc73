/*
 * iotsec error model: one result type, one error enum, one thread-local error.
 *
 * Every fallible function returns `iotsec_result` and is marked IOTSEC_MUST_CHECK.
 * On failure it records a code and a human-readable message naming what was wrong
 * ("vault: /var/iotsec/vault: truncated header") in a thread-local slot, so callers
 * propagate with IOTSEC_GUARD and only the app that owns stderr reads the message:
 *
 *     IOTSEC_GUARD(iotsec_slice_read_u16(&in, &version));
 *     IOTSEC_ENSURE(version == VAULT_VERSION, IOTSEC_ERR_VERSION,
 *                   "vault: unsupported version %u", version);
 *     IOTSEC_GUARD_OSSL(EVP_DecryptFinal_ex(ctx, out, &n), IOTSEC_ERR_AUTH, "aead: open");
 *
 * The library never prints and never exits; it only sets the error and returns.
 */
#ifndef IOTSEC_ERROR_H
#define IOTSEC_ERROR_H

#include <stdbool.h>

#define IOTSEC_MUST_CHECK   __attribute__((warn_unused_result))
#define IOTSEC_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* X(name, default message). The message is used when a site gives no detail. */
#define IOTSEC_ERROR_LIST(X)                                                                       \
    X(OK, "success")                                                                               \
    X(NOMEM, "out of memory")                                                                      \
    X(INVALID_ARG, "invalid argument")                                                             \
    X(IO, "input/output error")                                                                    \
    X(TRUNCATED, "input is truncated")                                                             \
    X(FORMAT, "malformed input")                                                                   \
    X(TOO_LARGE, "input is too large")                                                             \
    X(VERSION, "unsupported version")                                                              \
    X(CRYPTO, "cryptographic operation failed")                                                    \
    X(AUTH, "authentication failed")                                                               \
    X(VERIFY, "signature verification failed")                                                     \
    X(NOT_FOUND, "not found")                                                                      \
    X(EXISTS, "already exists")                                                                    \
    X(PERMISSION, "permission denied")                                                             \
    X(JSON, "invalid JSON")                                                                        \
    X(CONFIG, "invalid configuration")                                                             \
    X(TIME, "invalid time")                                                                        \
    X(PKCS11, "PKCS#11 operation failed")                                                          \
    X(BUSY, "resource is busy")

typedef enum {
#define IOTSEC_ERR_ENUM(name, msg) IOTSEC_ERR_##name,
    IOTSEC_ERROR_LIST(IOTSEC_ERR_ENUM)
#undef IOTSEC_ERR_ENUM
        IOTSEC_ERR__COUNT
} iotsec_err;

/* A struct, not an int, so that a result cannot be mixed up with a length or a count. */
typedef struct {
    int failed;
} iotsec_result;

#define IOTSEC_RESULT_OK  ((iotsec_result){0})
#define IOTSEC_RESULT_ERR ((iotsec_result){1})

static inline bool iotsec_ok(iotsec_result r)
{
    return r.failed == 0;
}

/* The default message of a code ("input is truncated"). Never NULL. */
const char *iotsec_strerror(iotsec_err code);

/* The code and message of the last failure on this thread. */
iotsec_err iotsec_error_code(void);
const char *iotsec_error_message(void);

/* Records a failure. fmt may be NULL, then the code's default message is used. */
void iotsec_error_set(iotsec_err code, const char *fmt, ...) IOTSEC_PRINTF(2, 3);

/* Records a failure and appends OpenSSL's own reason (draining its error queue),
 * so "aead: open" becomes "aead: open: bad decrypt". */
void iotsec_error_set_ossl(iotsec_err code, const char *fmt, ...) IOTSEC_PRINTF(2, 3);

/* Prefixes the current message with context ("vault.db: " + message). */
void iotsec_error_prefix(const char *fmt, ...) IOTSEC_PRINTF(1, 2);

void iotsec_error_clear(void);

/* Leave early on failure. Each takes an optional printf-style detail message. */
#define IOTSEC_BAIL(code, ...)                                                                     \
    do {                                                                                           \
        iotsec_error_set((code), __VA_ARGS__);                                                     \
        return IOTSEC_RESULT_ERR;                                                                  \
    } while (0)

#define IOTSEC_ENSURE(cond, code, ...)                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            IOTSEC_BAIL((code), __VA_ARGS__);                                                      \
    } while (0)

#define IOTSEC_GUARD(expr)                                                                         \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            return IOTSEC_RESULT_ERR;                                                              \
    } while (0)

/* OpenSSL's convention: 1 is success, anything else (0, -1) failure. */
#define IOTSEC_GUARD_OSSL(expr, code, ...)                                                         \
    do {                                                                                           \
        if ((expr) != 1) {                                                                         \
            iotsec_error_set_ossl((code), __VA_ARGS__);                                            \
            return IOTSEC_RESULT_ERR;                                                              \
        }                                                                                          \
    } while (0)

/* For pointers returned by allocators and OpenSSL constructors. */
#define IOTSEC_ENSURE_ALLOC(ptr)                                                                   \
    IOTSEC_ENSURE((ptr) != NULL, IOTSEC_ERR_NOMEM, "out of memory at %s:%d", __FILE__, __LINE__)

/* Scope-bound cleanup (s2n's DEFER_CLEANUP): the function runs with a pointer to the
 * variable when it goes out of scope, on every path out of the block. */
#define IOTSEC_DEFER(cleanup_fn) __attribute__((cleanup(cleanup_fn)))

#endif
