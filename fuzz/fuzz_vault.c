/*
 * Fuzzes the two vault parsers: the file framing (iotsec_vault_parse_header, reached
 * before any key is used, so it sees attacker-controlled bytes) and the decrypted entry
 * list (reached only after authentication, but a parser all the same).
 *
 * Invariant checked beyond "no crash": entries have one canonical encoding, so any input
 * the decoder accepts must re-encode to exactly the same bytes.
 */
#include "iotsec/vault.h"
#include "vault/vault_format.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct iotsec_slice in = iotsec_slice_make(data, size);
    struct iotsec_vault_header header;
    if (iotsec_ok(iotsec_vault_parse_header(in, &header))) {
        if (header.source != IOTSEC_VAULT_KEY_PASSPHRASE && header.source != IOTSEC_VAULT_KEY_HSM)
            abort();
        if (header.body_len > IOTSEC_VAULT_BODY_MAX)
            abort();
    }

    struct iotsec_vault *vault = NULL;
    if (iotsec_ok(iotsec_vault_decode_entries(in, &vault))) {
        struct iotsec_buf again = {0};
        if (!iotsec_ok(vault_encode_entries(vault, &again)))
            abort();
        if (again.len != size || memcmp(again.ptr, data, size) != 0)
            abort();
        iotsec_buf_free(&again);
        iotsec_vault_close(vault);
    }
    return 0;
}
