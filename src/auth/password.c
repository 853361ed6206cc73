/*
 * Operator passwords: argon2id (RFC 9106) through libargon2's encoded form.
 *
 * The encoded string carries its own parameters and salt, so parameters can be raised
 * later without a schema change: old hashes keep verifying and are upgraded at the next
 * successful login (iotsec_password_needs_rehash).
 *
 * A stored hash is data from disk, not code we trust: before libargon2 sees it, it is
 * parsed strictly here and its cost bounded, since argon2id_verify would otherwise
 * allocate whatever "m=" says (up to 4 TiB) and loop whatever "t=" says.
 */
#include "iotsec/operator.h"

#include "iotsec/crypto.h"

#include <argon2.h>
#include <stdio.h>
#include <string.h>

static const char ARGON2ID_PREFIX[] = "$argon2id$v=19$";

iotsec_result iotsec_password_check_length(struct iotsec_slice password)
{
    IOTSEC_ENSURE(password.len >= IOTSEC_PASSWORD_MIN, IOTSEC_ERR_INVALID_ARG,
                  "password: must be at least %d bytes", IOTSEC_PASSWORD_MIN);
    IOTSEC_ENSURE(password.len <= IOTSEC_PASSWORD_MAX, IOTSEC_ERR_INVALID_ARG,
                  "password: must be at most %d bytes", IOTSEC_PASSWORD_MAX);
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_params(const struct iotsec_password_params *p)
{
    IOTSEC_ENSURE(p->t_cost >= 1 && p->t_cost <= IOTSEC_PASSWORD_MAX_T, IOTSEC_ERR_INVALID_ARG,
                  "password: t_cost must be 1..%d", IOTSEC_PASSWORD_MAX_T);
    IOTSEC_ENSURE(p->p >= 1 && p->p <= IOTSEC_PASSWORD_MAX_P, IOTSEC_ERR_INVALID_ARG,
                  "password: parallelism must be 1..%d", IOTSEC_PASSWORD_MAX_P);
    /* argon2 needs 8 KiB per lane (two blocks per slice, four slices). */
    IOTSEC_ENSURE(p->m_kib >= 8 * p->p && p->m_kib <= IOTSEC_PASSWORD_MAX_M_KIB,
                  IOTSEC_ERR_INVALID_ARG, "password: memory must be %u..%u KiB", 8 * p->p,
                  IOTSEC_PASSWORD_MAX_M_KIB);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_password_hash(const struct iotsec_password_params *params,
                                   struct iotsec_slice password,
                                   char out[IOTSEC_STORE_PASSWORD_HASH_MAX + 1])
{
    IOTSEC_ENSURE(params != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "password: no output");
    IOTSEC_GUARD(check_params(params));
    IOTSEC_GUARD(iotsec_password_check_length(password));
    size_t need = argon2_encodedlen(params->t_cost, params->m_kib, params->p,
                                    IOTSEC_PASSWORD_SALT_LEN, IOTSEC_PASSWORD_HASH_LEN, Argon2_id);
    IOTSEC_ENSURE(need <= IOTSEC_STORE_PASSWORD_HASH_MAX + 1, IOTSEC_ERR_TOO_LARGE,
                  "password: encoded hash would not fit the store");
    uint8_t salt[IOTSEC_PASSWORD_SALT_LEN];
    IOTSEC_GUARD(iotsec_random(salt, sizeof(salt)));
    int rc = argon2id_hash_encoded(params->t_cost, params->m_kib, params->p, password.ptr,
                                   password.len, salt, sizeof(salt), IOTSEC_PASSWORD_HASH_LEN, out,
                                   IOTSEC_STORE_PASSWORD_HASH_MAX + 1);
    iotsec_wipe(salt, sizeof(salt));
    IOTSEC_ENSURE(rc != ARGON2_MEMORY_ALLOCATION_ERROR, IOTSEC_ERR_NOMEM, "password: argon2: %s",
                  argon2_error_message(rc));
    IOTSEC_ENSURE(rc == ARGON2_OK, IOTSEC_ERR_CRYPTO, "password: argon2: %s",
                  argon2_error_message(rc));
    return IOTSEC_RESULT_OK;
}

/* ---- the strict parser ---- */

/* A decimal number without sign or leading zeros, at most max; advances *p. */
static bool parse_u32(const char **p, uint32_t max, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        v = v * 10 + (uint64_t)(s[n] - '0');
        if (v > max)
            return false;
        n++;
    }
    if (n == 0 || (n > 1 && s[0] == '0'))
        return false;
    *out = (uint32_t)v;
    *p = s + n;
    return true;
}

static bool expect(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Unpadded standard base64 up to `end` (a '$' or the NUL): checks the alphabet, that the
 * length is possible, and that the unused low bits of the last character are zero (one
 * spelling per value). Returns the decoded length, or 0 when malformed. */
static size_t b64_decoded_len(const char *s, size_t len)
{
    if (len % 4 == 1)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (b64_value(s[i]) < 0)
            return 0;
    }
    int last = len > 0 ? b64_value(s[len - 1]) : 0;
    if ((len % 4 == 2 && (last & 0x0f) != 0) || (len % 4 == 3 && (last & 0x03) != 0))
        return 0;
    return len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
}

iotsec_result iotsec_password_parse(const char *encoded, struct iotsec_password_params *params)
{
    IOTSEC_ENSURE(encoded != NULL, IOTSEC_ERR_FORMAT, "password: no stored hash");
    IOTSEC_ENSURE(strlen(encoded) <= IOTSEC_STORE_PASSWORD_HASH_MAX, IOTSEC_ERR_FORMAT,
                  "password: stored hash is too long");
    const char *p = encoded;
    struct iotsec_password_params v;
    IOTSEC_ENSURE(expect(&p, ARGON2ID_PREFIX), IOTSEC_ERR_FORMAT,
                  "password: stored hash is not argon2id version 19");
    IOTSEC_ENSURE(expect(&p, "m=") && parse_u32(&p, IOTSEC_PASSWORD_MAX_M_KIB, &v.m_kib) &&
                      expect(&p, ",t=") && parse_u32(&p, IOTSEC_PASSWORD_MAX_T, &v.t_cost) &&
                      expect(&p, ",p=") && parse_u32(&p, IOTSEC_PASSWORD_MAX_P, &v.p) &&
                      expect(&p, "$"),
                  IOTSEC_ERR_FORMAT, "password: stored hash has malformed or excessive parameters");
    IOTSEC_ENSURE(v.t_cost >= 1 && v.p >= 1 && v.m_kib >= 8 * v.p, IOTSEC_ERR_FORMAT,
                  "password: stored hash has parameters below argon2's minimum");

    const char *dollar = strchr(p, '$');
    IOTSEC_ENSURE(dollar != NULL, IOTSEC_ERR_FORMAT, "password: stored hash has no hash part");
    size_t salt_len = b64_decoded_len(p, (size_t)(dollar - p));
    IOTSEC_ENSURE(salt_len >= IOTSEC_PASSWORD_MIN_STORED_SALT &&
                      salt_len <= IOTSEC_PASSWORD_MAX_STORED_SALT,
                  IOTSEC_ERR_FORMAT, "password: stored hash has a malformed salt");
    p = dollar + 1;
    size_t hash_len = b64_decoded_len(p, strlen(p));
    IOTSEC_ENSURE(hash_len >= IOTSEC_PASSWORD_MIN_STORED_HASH &&
                      hash_len <= IOTSEC_PASSWORD_MAX_STORED_HASH,
                  IOTSEC_ERR_FORMAT, "password: stored hash has a malformed hash");
    if (params != NULL)
        *params = v;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_password_verify(const char *encoded, struct iotsec_slice password)
{
    IOTSEC_GUARD(iotsec_password_parse(encoded, NULL));
    /* Out-of-bounds passwords still cost one verification, so their refusal takes as
     * long as a wrong password's; an over-long one is cut to the bound first. */
    bool length_ok = iotsec_ok(iotsec_password_check_length(password));
    size_t len = password.len > IOTSEC_PASSWORD_MAX ? IOTSEC_PASSWORD_MAX : password.len;
    const void *pwd = password.ptr != NULL ? (const void *)password.ptr : (const void *)"";
    int rc = argon2id_verify(encoded, pwd, len);
    IOTSEC_ENSURE(rc != ARGON2_MEMORY_ALLOCATION_ERROR, IOTSEC_ERR_NOMEM, "password: argon2: %s",
                  argon2_error_message(rc));
    IOTSEC_ENSURE(rc == ARGON2_OK || rc == ARGON2_VERIFY_MISMATCH, IOTSEC_ERR_FORMAT,
                  "password: stored hash: %s", argon2_error_message(rc));
    IOTSEC_ENSURE(rc == ARGON2_OK && length_ok, IOTSEC_ERR_AUTH, "password: does not match");
    return IOTSEC_RESULT_OK;
}

bool iotsec_password_needs_rehash(const char *encoded, const struct iotsec_password_params *current)
{
    struct iotsec_password_params stored;
    if (!iotsec_ok(iotsec_password_parse(encoded, &stored)))
        return true;
    return stored.t_cost < current->t_cost || stored.m_kib < current->m_kib ||
           stored.p < current->p;
}

iotsec_result iotsec_password_generate(struct iotsec_buf *out)
{
    uint8_t raw[20];
    struct iotsec_buf b32;
    iotsec_buf_init_secret(&b32);
    iotsec_result r = iotsec_random(raw, sizeof(raw));
    if (iotsec_ok(r))
        r = iotsec_base32_encode(iotsec_slice_make(raw, sizeof(raw)), &b32);
    iotsec_wipe(raw, sizeof(raw));
    for (size_t i = 0; iotsec_ok(r) && i < b32.len; i++) {
        uint8_t c = b32.ptr[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (i > 0 && i % 4 == 0)
            r = iotsec_buf_append_u8(out, '-');
        if (iotsec_ok(r))
            r = iotsec_buf_append_u8(out, c);
    }
    iotsec_buf_free(&b32);
    return r;
}
