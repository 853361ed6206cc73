/*
 * Operator accounts: password hashing (argon2id), TOTP second factor (RFC 6238), login,
 * roles and permissions, and the bootstrap of the first admin (docs/operators.md).
 *
 * Accounts live in the store (struct iotsec_store_user); this module decides what goes
 * into them and how a login is judged. The primitives are not ours: argon2id is
 * libargon2's, HOTP/TOTP is liboath's, randomness is iotsec_random. What this module adds:
 *
 * - Passwords are 12..1024 bytes. They are hashed into argon2's self-describing encoded
 *   form ("$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>") with a 16-byte random salt.
 *   A stored string is parsed strictly and its cost bounded (IOTSEC_PASSWORD_MAX_*) before
 *   libargon2 sees it, so a corrupt or hostile record cannot make a login allocate
 *   gigabytes. iotsec_password_needs_rehash() says when a stored hash is weaker than the
 *   current parameters; a successful login re-hashes it.
 * - TOTP codes are exactly 6 ASCII digits, HMAC-SHA1, 30 s steps, accepted one step
 *   either side of now; all three candidates are computed and compared in constant time.
 *   A code is never accepted twice: the login context remembers, per user, the last step
 *   it accepted and refuses that step and every earlier one (RFC 6238 section 5.2). That
 *   record is in this process's memory: processes that share a store do not share it.
 * - A login answers "ok, with this role" or one failure that does not say which factor
 *   was wrong; the reason is returned separately, for the security event log only.
 *   Unknown and disabled users cost the same argon2 computation as real ones.
 * - Roles grant permissions through one table (iotsec_role_allows); anything not in the
 *   table, including an unknown role or permission, is refused.
 *
 * Times are passed in by the caller (Unix milliseconds, like the store). Secrets passed
 * in are borrowed; secrets handed out go into caller buffers, which should be secret
 * buffers (iotsec_buf_init_secret), and everything temporary is wiped.
 */
#ifndef IOTSEC_OPERATOR_H
#define IOTSEC_OPERATOR_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- passwords ---- */

/* Bytes. Long enough to resist guessing offline; the upper bound keeps hashing cheap to
 * call and a request body small. */
#define IOTSEC_PASSWORD_MIN 12
#define IOTSEC_PASSWORD_MAX 1024

#define IOTSEC_PASSWORD_SALT_LEN 16
#define IOTSEC_PASSWORD_HASH_LEN 32

/* What a stored hash may ask for before it is refused as malformed (m in KiB). */
#define IOTSEC_PASSWORD_MAX_M_KIB       ((uint32_t)1 << 20) /* 1 GiB */
#define IOTSEC_PASSWORD_MAX_T           64
#define IOTSEC_PASSWORD_MAX_P           16
#define IOTSEC_PASSWORD_MIN_STORED_SALT 8
#define IOTSEC_PASSWORD_MAX_STORED_SALT 64
#define IOTSEC_PASSWORD_MIN_STORED_HASH 16
#define IOTSEC_PASSWORD_MAX_STORED_HASH 64

struct iotsec_password_params {
    uint32_t t_cost; /* passes over memory */
    uint32_t m_kib;  /* memory in KiB */
    uint32_t p;      /* lanes (libargon2 computes them in p threads) */
};

/* RFC 9106 section 4's second recommended option is t=3, m=64 MiB, p=4; we use one lane
 * so that a login never takes more than one core of the server. */
#define IOTSEC_PASSWORD_PARAMS_DEFAULT ((struct iotsec_password_params){3, 65536, 1})
/* For tests only: fast, and far too weak for real accounts. */
#define IOTSEC_PASSWORD_PARAMS_TEST ((struct iotsec_password_params){1, 64, 1})

/* IOTSEC_ERR_INVALID_ARG with "password: must be at least 12 bytes" (or at most 1024). */
IOTSEC_MUST_CHECK iotsec_result iotsec_password_check_length(struct iotsec_slice password);

/* The encoded argon2id hash of password with a fresh random salt, into
 * out[IOTSEC_STORE_PASSWORD_HASH_MAX + 1]. Checks the length first. */
IOTSEC_MUST_CHECK iotsec_result iotsec_password_hash(const struct iotsec_password_params *params,
                                                     struct iotsec_slice password,
                                                     char out[IOTSEC_STORE_PASSWORD_HASH_MAX + 1]);

/* Parses an encoded hash strictly: "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" with decimal
 * numbers without leading zeros, within the bounds above, and SALT and HASH in unpadded
 * standard base64 whose lengths are within bounds. params may be NULL.
 * IOTSEC_ERR_FORMAT otherwise. */
IOTSEC_MUST_CHECK iotsec_result iotsec_password_parse(const char *encoded,
                                                      struct iotsec_password_params *params);

/* OK when password matches; IOTSEC_ERR_AUTH when it does not (or is out of the length
 * bounds, after the same amount of work); IOTSEC_ERR_FORMAT when encoded does not parse
 * (no hashing is done then). */
IOTSEC_MUST_CHECK iotsec_result iotsec_password_verify(const char *encoded,
                                                       struct iotsec_slice password);

/* True when encoded is weaker than current in any parameter (or does not parse). */
bool iotsec_password_needs_rehash(const char *encoded,
                                  const struct iotsec_password_params *current);

/* A random one-time password: 20 random bytes in lowercase base32, in groups of four
 * ("abcd-efgh-..."; 39 characters, 160 bits). Appended to out (use a secret buffer). */
IOTSEC_MUST_CHECK iotsec_result iotsec_password_generate(struct iotsec_buf *out);

/* ---- HOTP / TOTP ---- */

#define IOTSEC_TOTP_SECRET_LEN 20 /* bytes, the HMAC-SHA1 block-friendly size RFC 4226 advises */
#define IOTSEC_TOTP_DIGITS     6
#define IOTSEC_TOTP_STEP       30 /* seconds */
#define IOTSEC_TOTP_WINDOW     1  /* steps accepted either side of now */
#define IOTSEC_OTP_MAX_DIGITS  8
#define IOTSEC_TOTP_ISSUER     "iotsec"

enum iotsec_otp_hash {
    IOTSEC_OTP_SHA1,
    IOTSEC_OTP_SHA256,
    IOTSEC_OTP_SHA512,
};

/* RFC 4226 HOTP (HMAC-SHA1) of counter, digits 6..8, into out (digits + NUL). */
IOTSEC_MUST_CHECK iotsec_result iotsec_hotp_generate(struct iotsec_slice secret, uint64_t counter,
                                                     unsigned digits,
                                                     char out[IOTSEC_OTP_MAX_DIGITS + 1]);
/* RFC 6238 TOTP at unix_sec (>= 0) with the given step (seconds, > 0), digits and hash. */
IOTSEC_MUST_CHECK iotsec_result iotsec_totp_generate(struct iotsec_slice secret, int64_t unix_sec,
                                                     unsigned step, unsigned digits,
                                                     enum iotsec_otp_hash hash,
                                                     char out[IOTSEC_OTP_MAX_DIGITS + 1]);

/* A code as typed: exactly IOTSEC_TOTP_DIGITS ASCII digits, nothing before or after (no
 * spaces, signs or newline). Copied to out with a NUL. IOTSEC_ERR_FORMAT otherwise. */
IOTSEC_MUST_CHECK iotsec_result iotsec_totp_parse_code(struct iotsec_slice in,
                                                       char out[IOTSEC_TOTP_DIGITS + 1]);

/* Checks a parsed code against the steps now-1, now, now+1 (SHA-1, 6 digits, 30 s).
 * On a match *step is the matching step number; IOTSEC_ERR_AUTH otherwise. This alone
 * does not stop replay: iotsec_operator_login does. */
IOTSEC_MUST_CHECK iotsec_result iotsec_totp_verify(struct iotsec_slice secret,
                                                   const char code[IOTSEC_TOTP_DIGITS + 1],
                                                   int64_t unix_sec, uint64_t *step);

/* Unpadded RFC 4648 base32 (uppercase) of secret, appended to out. */
IOTSEC_MUST_CHECK iotsec_result iotsec_base32_encode(struct iotsec_slice in,
                                                     struct iotsec_buf *out);

/* "otpauth://totp/iotsec:NAME?secret=BASE32&issuer=iotsec&algorithm=SHA1&digits=6&period=30",
 * appended to out (a secret buffer: it holds the secret). */
IOTSEC_MUST_CHECK iotsec_result iotsec_totp_uri(struct iotsec_slice secret, const char *account,
                                                struct iotsec_buf *out);

/* ---- roles ---- */

enum iotsec_permission {
    IOTSEC_PERM_DEVICES_READ,
    IOTSEC_PERM_DEVICES_WRITE, /* register, disable, enrol, revoke certificates */
    IOTSEC_PERM_TELEMETRY_READ,
    IOTSEC_PERM_EVENTS_READ,
    IOTSEC_PERM_BLOCKS_READ,
    IOTSEC_PERM_BLOCKS_WRITE,
    IOTSEC_PERM_COMMANDS_SEND,
    IOTSEC_PERM_FIRMWARE_READ,
    IOTSEC_PERM_FIRMWARE_PUBLISH,
    IOTSEC_PERM_APIKEYS_MANAGE,
    IOTSEC_PERM_USERS_MANAGE,
    IOTSEC_PERM__COUNT
};

/* The one check the servers call before acting for an operator. False for any role or
 * permission outside the enumerations. */
bool iotsec_role_allows(enum iotsec_store_role role, enum iotsec_permission perm);
/* "devices.read", ...; NULL out of range. */
const char *iotsec_permission_name(enum iotsec_permission perm);
IOTSEC_MUST_CHECK iotsec_result iotsec_permission_parse(const char *name,
                                                        enum iotsec_permission *out);

/* ---- login ---- */

/* Why a login failed, for the security event log only: never shown to the client, who
 * learns only that the login failed. */
enum iotsec_login_reason {
    IOTSEC_LOGIN_OK,
    IOTSEC_LOGIN_UNKNOWN_USER,
    IOTSEC_LOGIN_DISABLED,
    IOTSEC_LOGIN_BAD_PASSWORD,
    IOTSEC_LOGIN_TOTP_MISSING,      /* enrolled, but no code given */
    IOTSEC_LOGIN_TOTP_MALFORMED,    /* not 6 digits */
    IOTSEC_LOGIN_TOTP_WRONG,        /* no match in the window */
    IOTSEC_LOGIN_TOTP_REPLAYED,     /* that step (or a later one) was already used */
    IOTSEC_LOGIN_TOTP_NOT_ENROLLED, /* an admin without TOTP, when the policy asks for it */
    IOTSEC_LOGIN_BUSY,              /* the replay record is full; try again shortly */
    IOTSEC_LOGIN_ERROR,             /* the store failed; see the iotsec error */
};
/* "ok", "unknown_user", "disabled", "bad_password", "totp_missing", ...; never NULL. */
const char *iotsec_login_reason_name(enum iotsec_login_reason reason);

struct iotsec_operator_config {
    struct iotsec_password_params params; /* for new hashes and rehash decisions */
    bool require_totp_for_admin;          /* refuse admins who have not enrolled TOTP */
};

struct iotsec_login_outcome {
    enum iotsec_login_reason reason;
    enum iotsec_store_role role; /* when reason is OK */
    /* The account holds a one-time or reset password: the server must allow nothing but
     * a password change in this session. */
    bool must_change_password;
    bool rehashed; /* the stored hash was upgraded to the current parameters */
};

/* How many users' last accepted TOTP steps one context remembers at once. */
#define IOTSEC_OPERATOR_REPLAY_SLOTS 4096

/* A login context: the parameters, a dummy hash for unknown users, and the TOTP replay
 * record. One per server process; thread-safe (the store handle passed to each call is
 * not: use one per thread). */
struct iotsec_operator_auth;
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_auth_new(const struct iotsec_operator_config *cfg,
                                                         struct iotsec_operator_auth **out);
void iotsec_operator_auth_free(struct iotsec_operator_auth *a);

/* Judges a login. code is the TOTP code as typed (len 0: none given). OK when the user
 * exists, is enabled, the password matches and, when enrolled (or required), the code is
 * right and fresh. Otherwise IOTSEC_ERR_AUTH with the message "operator: login failed"
 * whatever the reason, and out->reason says which. Store failures other than NOT_FOUND
 * are returned as they are, with reason IOTSEC_LOGIN_ERROR. */
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_login(struct iotsec_operator_auth *a,
                                                      struct iotsec_store *s, const char *name,
                                                      struct iotsec_slice password,
                                                      struct iotsec_slice code, int64_t now_ms,
                                                      struct iotsec_login_outcome *out);

/* ---- account management ---- */

/* A new account with password (length checked, hashed with params). must_change marks a
 * one-time password. IOTSEC_ERR_EXISTS when the name is taken. */
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_create(
    struct iotsec_store *s, const struct iotsec_password_params *params, const char *name,
    enum iotsec_store_role role, struct iotsec_slice password, bool must_change, int64_t now_ms);
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_set_password(
    struct iotsec_store *s, const struct iotsec_password_params *params, const char *name,
    struct iotsec_slice password, bool must_change, int64_t now_ms);
/* Enrols TOTP with a new random secret, replacing any previous one. The secret is written
 * to secret[IOTSEC_TOTP_SECRET_LEN] for the caller to show once (and then wipe). */
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_totp_enrol(struct iotsec_store *s, const char *name,
                                                           int64_t now_ms,
                                                           uint8_t secret[IOTSEC_TOTP_SECRET_LEN]);
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_totp_remove(struct iotsec_store *s,
                                                            const char *name, int64_t now_ms);
/* Role changes, disabling and removal refuse (IOTSEC_ERR_PERMISSION) to leave the store
 * without an enabled admin, checked in the same transaction as the change. */
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_set_role(struct iotsec_store *s, const char *name,
                                                         enum iotsec_store_role role,
                                                         int64_t now_ms);
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_set_disabled(struct iotsec_store *s,
                                                             const char *name, bool disabled,
                                                             int64_t now_ms);
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_delete(struct iotsec_store *s, const char *name);

/* First start: when the store holds no user at all, creates `name` as an admin with a
 * random one-time password (must_change_password), appends that password to
 * one_time_password (a secret buffer; show it once) and sets *created. When any user
 * exists it does nothing and *created is false. Check and insert are one transaction, so
 * two processes starting at once create at most one admin. */
IOTSEC_MUST_CHECK iotsec_result iotsec_operator_bootstrap(
    struct iotsec_store *s, const struct iotsec_password_params *params, const char *name,
    int64_t now_ms, struct iotsec_buf *one_time_password, bool *created);

#endif
