/*
 * vault_crash_writer VAULT PASSFILE: opens the vault for writing once, then saves it in a
 * tight loop, each time with the entry "counter" set to the next number and a 256 KiB
 * filler rewritten, printing the number only after the save has returned (so a printed
 * number is committed). tests/e2e/test_vault_crash.sh kills it with SIGKILL at random
 * moments, which then fall anywhere in the write sequence: temp file creation, writing,
 * fsync, rename, directory fsync.
 */
#include "iotsec/buf.h"
#include "iotsec/file.h"
#include "iotsec/vault.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vault_crash_writer VAULT PASSFILE\n");
        return 2;
    }
    struct iotsec_buf pass;
    iotsec_buf_init_secret(&pass);
    if (!iotsec_ok(iotsec_file_read_private(argv[2], 4096, &pass))) {
        fprintf(stderr, "vault_crash_writer: %s\n", iotsec_error_message());
        return 1;
    }
    while (pass.len > 0 && pass.ptr[pass.len - 1] == '\n')
        pass.len--;
    struct iotsec_vault_key key = {.source = IOTSEC_VAULT_KEY_PASSPHRASE,
                                   .passphrase = iotsec_buf_slice(&pass)};
    struct iotsec_vault *v;
    if (!iotsec_ok(iotsec_vault_open(argv[1], &key, IOTSEC_VAULT_WRITE, &v))) {
        fprintf(stderr, "vault_crash_writer: %s\n", iotsec_error_message());
        return 1;
    }
    static uint8_t filler[256 * 1024];
    for (unsigned long k = 1; k < 1000000; k++) {
        char value[32];
        int n = snprintf(value, sizeof(value), "%lu", k);
        memset(filler, (int)(k & 0xff), sizeof(filler));
        if (!iotsec_ok(iotsec_vault_put(v, "counter", iotsec_slice_make(value, (size_t)n))) ||
            !iotsec_ok(iotsec_vault_put(v, "filler", iotsec_slice_make(filler, sizeof(filler)))) ||
            !iotsec_ok(iotsec_vault_save(v))) {
            fprintf(stderr, "vault_crash_writer: %s\n", iotsec_error_message());
            return 1;
        }
        printf("%lu\n", k);
        fflush(stdout);
    }
    iotsec_vault_close(v);
    iotsec_buf_free(&pass);
    return 0;
}
