/*
 * Fuzzes the API key format parser (iotsec_apikey_parse) with arbitrary bytes.
 *
 * Invariants beyond "no crash":
 * - an input is accepted exactly when it is "iot_" followed by 48 lowercase hex digits,
 *   checked here by an independent, obviously-correct predicate;
 * - an accepted input's hash is SHA-256 of the input bytes (nothing trimmed or folded);
 * - a refusal is IOTSEC_ERR_FORMAT with a message starting "apikey: ".
 */
#include "iotsec/apikey.h"
#include "iotsec/crypto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool well_formed(const uint8_t *d, size_t n)
{
    if (n != 52 || memcmp(d, "iot_", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++) {
        if (strchr("0123456789abcdef", d[i]) == NULL || d[i] == 0)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hash[IOTSEC_APIKEY_HASH_LEN], want[IOTSEC_SHA256_LEN];
    bool ok = iotsec_ok(iotsec_apikey_parse(iotsec_slice_make(data, size), hash));
    if (ok != well_formed(data, size))
        abort();
    if (ok) {
        if (!iotsec_ok(iotsec_sha256(iotsec_slice_make(data, size), want)) ||
            memcmp(hash, want, sizeof(want)) != 0)
            abort();
    } else if (iotsec_error_code() != IOTSEC_ERR_FORMAT ||
               strncmp(iotsec_error_message(), "apikey: ", 8) != 0) {
        abort();
    }
    return 0;
}
