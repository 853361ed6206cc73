/*
 * bench_vault [DIR]: vault put+get per second through the library, durable (each put is
 * saved: encode, AES-256-GCM, write, fsync, rename, fsync of the directory), against the
 * same-run reference of the bare atomic write of a file of the same size with no
 * encoding or encryption. The ratio is what the vault costs over the durability it
 * cannot avoid. Bounded by count and time.
 *
 * The KDF is opened once: scrypt's cost is paid per process, not per operation, and is
 * measured separately by bench/vault.sh against `openssl kdf`.
 */
#include "iotsec/file.h"
#include "iotsec/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_OPS     5000
#define MAX_SECONDS 3.0
#define ENTRIES     100
#define VALUE_LEN   64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_vault: %s: %s\n", what, iotsec_error_message());
    exit(1);
}

int main(int argc, char **argv)
{
    char dir[256], path[300], ref_path[300];
    snprintf(dir, sizeof(dir), "%s/bench-vault-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/vault", dir);
    snprintf(ref_path, sizeof(ref_path), "%s/reference", dir);

    struct iotsec_vault_key key = {.source = IOTSEC_VAULT_KEY_PASSPHRASE,
                                   .passphrase = iotsec_slice_from_str("bench passphrase")};
    struct iotsec_vault *v;
    if (!iotsec_ok(iotsec_vault_create(path, &key, &v)))
        die("create");
    uint8_t value[VALUE_LEN];
    memset(value, 0x5a, sizeof(value));
    for (int i = 0; i < ENTRIES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "device/%04d/key", i);
        if (!iotsec_ok(iotsec_vault_put(v, name, iotsec_slice_make(value, sizeof(value)))))
            die("put");
    }
    if (!iotsec_ok(iotsec_vault_save(v)))
        die("save");

    struct iotsec_buf got;
    iotsec_buf_init_secret(&got);
    int ops = 0;
    double start = now();
    while (ops < MAX_OPS && now() - start < MAX_SECONDS) {
        char name[32];
        snprintf(name, sizeof(name), "device/%04d/key", ops % ENTRIES);
        value[0] = (uint8_t)ops;
        iotsec_buf_reset(&got);
        if (!iotsec_ok(iotsec_vault_put(v, name, iotsec_slice_make(value, sizeof(value)))) ||
            !iotsec_ok(iotsec_vault_save(v)) || !iotsec_ok(iotsec_vault_get(v, name, &got)) ||
            got.len != VALUE_LEN || got.ptr[0] != (uint8_t)ops)
            die("put+get");
        ops++;
    }
    double vault_rate = ops / (now() - start);
    iotsec_vault_close(v);
    iotsec_buf_free(&got);

    struct stat st;
    if (stat(path, &st) != 0) {
        perror("stat");
        return 1;
    }
    uint8_t *bytes = calloc(1, (size_t)st.st_size);
    int ref_ops = 0;
    start = now();
    while (ref_ops < MAX_OPS && now() - start < MAX_SECONDS) {
        bytes[0] = (uint8_t)ref_ops;
        if (!iotsec_ok(iotsec_file_write_atomic(
                ref_path, iotsec_slice_make(bytes, (size_t)st.st_size), 0600)))
            die("reference write");
        ref_ops++;
    }
    double ref_rate = ref_ops / (now() - start);
    free(bytes);

    printf("vault put+get (durable, %d entries, %jd-byte file): %.0f ops/s; "
           "bare atomic write of the same size: %.0f ops/s; ratio %.2f\n",
           ENTRIES, (intmax_t)st.st_size, vault_rate, ref_rate, vault_rate / ref_rate);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
