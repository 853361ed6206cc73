/*
 * Fuzzes the operator-account parsers with the same bytes three ways:
 * - as a typed TOTP code (iotsec_totp_parse_code): accepted exactly when it is six ASCII
 *   digits, and then copied unchanged;
 * - as a stored password hash (iotsec_password_parse, then iotsec_password_verify when the
 *   parsed cost is small enough for a fuzzer): a stored string must never make libargon2
 *   allocate beyond the documented bounds, and nothing the fuzzer writes verifies (it
 *   cannot invert argon2id), so an acceptance means a check was skipped;
 * - as a TOTP key for base32 and the otpauth:// URI: the encoding has the RFC 4648 length
 *   and alphabet.
 */
#include "iotsec/operator.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char PASSWORD[] = "fuzz password, long enough";

static void fuzz_code(const uint8_t *data, size_t size)
{
    char out[IOTSEC_TOTP_DIGITS + 1];
    bool digits = size == IOTSEC_TOTP_DIGITS;
    for (size_t i = 0; digits && i < size; i++)
        digits = data[i] >= '0' && data[i] <= '9';
    bool ok = iotsec_ok(iotsec_totp_parse_code(iotsec_slice_make(data, size), out));
    if (ok != digits)
        abort();
    if (ok && (memcmp(out, data, size) != 0 || out[size] != '\0'))
        abort();
}

static void fuzz_stored_hash(const uint8_t *data, size_t size)
{
    char encoded[IOTSEC_STORE_PASSWORD_HASH_MAX + 2];
    size_t n = size < sizeof(encoded) - 1 ? size : sizeof(encoded) - 1;
    memcpy(encoded, data, n);
    encoded[n] = '\0';
    struct iotsec_password_params p;
    if (!iotsec_ok(iotsec_password_parse(encoded, &p))) {
        if (iotsec_error_code() != IOTSEC_ERR_FORMAT)
            abort();
        return;
    }
    if (strncmp(encoded, "$argon2id$v=19$", 15) != 0 || p.m_kib > IOTSEC_PASSWORD_MAX_M_KIB ||
        p.t_cost > IOTSEC_PASSWORD_MAX_T || p.p > IOTSEC_PASSWORD_MAX_P || p.m_kib < 8 * p.p)
        abort();
    if (p.m_kib > 1024 || p.t_cost > 4 || p.p > 4)
        return; /* valid but too slow to run thousands of times a second */
    if (iotsec_ok(iotsec_password_verify(encoded, iotsec_slice_from_str(PASSWORD))))
        abort();
    iotsec_err code = iotsec_error_code();
    if (code != IOTSEC_ERR_AUTH && code != IOTSEC_ERR_FORMAT)
        abort();
}

static void fuzz_base32(const uint8_t *data, size_t size)
{
    if (size == 0 || size > IOTSEC_STORE_TOTP_SECRET_MAX)
        return;
    struct iotsec_buf b32 = {0}, uri = {0};
    if (!iotsec_ok(iotsec_base32_encode(iotsec_slice_make(data, size), &b32)) ||
        b32.len != (size * 8 + 4) / 5)
        abort();
    for (size_t i = 0; i < b32.len; i++) {
        uint8_t c = b32.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')))
            abort();
    }
    if (!iotsec_ok(iotsec_totp_uri(iotsec_slice_make(data, size), "fuzz@example", &uri)))
        abort();
    iotsec_buf_free(&b32);
    iotsec_buf_free(&uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_code(data, size);
    fuzz_stored_hash(data, size);
    fuzz_base32(data, size);
    return 0;
}
