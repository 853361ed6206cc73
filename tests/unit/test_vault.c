/* Unit tests for the vault: round trips, every way a file can be wrong, rekey. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iotsec/file.h"
#include "iotsec/vault.h"
#include "vault/vault_format.h"

/* Cheap scrypt so the many opens below stay fast; the default cost is tested by e2e. */
#define TEST_SCRYPT ((struct iotsec_scrypt_params){.log2_n = 10, .r = 8, .p = 1})

struct fixture {
    char dir[64];
    char path[128];
    struct iotsec_vault_key key;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotsec-vault-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/vault", f->dir);
    f->key = (struct iotsec_vault_key){.source = IOTSEC_VAULT_KEY_PASSPHRASE,
                                       .passphrase = iotsec_slice_from_str("pass phrase"),
                                       .scrypt = TEST_SCRYPT};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void make_vault(struct fixture *f, int entries)
{
    struct iotsec_vault *v;
    assert_true(iotsec_ok(iotsec_vault_create(f->path, &f->key, &v)));
    for (int i = 0; i < entries; i++) {
        char name[32], value[32];
        snprintf(name, sizeof(name), "key%02d", i);
        snprintf(value, sizeof(value), "value %d", i);
        assert_true(iotsec_ok(iotsec_vault_put(v, name, iotsec_slice_from_str(value))));
    }
    assert_true(iotsec_ok(iotsec_vault_save(v)));
    iotsec_vault_close(v);
}

static struct iotsec_buf read_all(const char *path)
{
    struct iotsec_buf b = {0};
    assert_true(iotsec_ok(iotsec_file_read(path, IOTSEC_VAULT_FILE_MAX, &b)));
    return b;
}

static void write_all(const char *path, const uint8_t *p, size_t n)
{
    assert_true(iotsec_ok(iotsec_file_write_atomic(path, iotsec_slice_make(p, n), 0600)));
}

static void vault_round_trips_entries_after_reopen(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 3);
    struct iotsec_vault *v;
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
    assert_int_equal(iotsec_vault_count(v), 3);
    assert_string_equal(iotsec_vault_name_at(v, 0), "key00");
    assert_null(iotsec_vault_name_at(v, 3));
    struct iotsec_buf value;
    iotsec_buf_init_secret(&value);
    assert_true(iotsec_ok(iotsec_vault_get(v, "key02", &value)));
    assert_int_equal(value.len, strlen("value 2"));
    assert_memory_equal(value.ptr, "value 2", value.len);
    assert_false(iotsec_ok(iotsec_vault_get(v, "nope", &value)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);
    iotsec_buf_free(&value);
    iotsec_vault_close(v);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void vault_stores_salt_and_kdf_parameters(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 0);
    struct iotsec_buf file = read_all(f->path);
    struct iotsec_vault_header h;
    assert_true(iotsec_ok(iotsec_vault_parse_header(iotsec_buf_slice(&file), &h)));
    assert_int_equal(h.version, 1);
    assert_int_equal(h.source, IOTSEC_VAULT_KEY_PASSPHRASE);
    assert_int_equal(h.scrypt.log2_n, 10);
    assert_int_equal(h.scrypt.r, 8);
    assert_int_equal(h.scrypt.p, 1);
    uint8_t zero[IOTSEC_VAULT_SALT_LEN] = {0};
    assert_memory_not_equal(h.salt, zero, sizeof(zero));
    iotsec_buf_free(&file);
}

static void vault_default_kdf_is_scrypt_2_15(void **state)
{
    struct fixture *f = *state;
    f->key.scrypt = (struct iotsec_scrypt_params){0};
    make_vault(f, 0);
    struct iotsec_buf file = read_all(f->path);
    struct iotsec_vault_header h;
    assert_true(iotsec_ok(iotsec_vault_parse_header(iotsec_buf_slice(&file), &h)));
    assert_int_equal(h.scrypt.log2_n, 15);
    assert_int_equal(h.scrypt.r, 8);
    assert_int_equal(h.scrypt.p, 1);
    iotsec_buf_free(&file);
}

static void vault_rejects_wrong_passphrase_and_leaves_file(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 1);
    struct iotsec_buf before = read_all(f->path);
    struct iotsec_vault_key wrong = f->key;
    wrong.passphrase = iotsec_slice_from_str("pass phrasf");
    struct iotsec_vault *v = NULL;
    assert_false(iotsec_ok(iotsec_vault_open(f->path, &wrong, IOTSEC_VAULT_WRITE, &v)));
    assert_null(v);
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_AUTH);
    char want[256];
    snprintf(want, sizeof(want), "vault %s: wrong passphrase or corrupted file", f->path);
    assert_string_equal(iotsec_error_message(), want);
    struct iotsec_buf after = read_all(f->path);
    assert_true(iotsec_slice_equal(iotsec_buf_slice(&before), iotsec_buf_slice(&after)));
    iotsec_buf_free(&before);
    iotsec_buf_free(&after);
}

static void vault_rejects_every_truncation(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 2);
    struct iotsec_buf file = read_all(f->path);
    for (size_t len = 0; len < file.len; len++) {
        write_all(f->path, file.ptr, len);
        struct iotsec_vault *v;
        assert_false(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TRUNCATED);
        assert_non_null(strstr(iotsec_error_message(), "truncated file"));
    }
    iotsec_buf_free(&file);
}

/* Every single-bit change anywhere in the file is refused: header bytes are either
 * checked by the parser or authenticated as AAD; body bytes by the GCM tag. */
static void vault_detects_every_flipped_bit(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 1);
    struct iotsec_buf file = read_all(f->path);
    for (size_t i = 0; i < file.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            file.ptr[i] ^= (uint8_t)(1u << bit);
            write_all(f->path, file.ptr, file.len);
            file.ptr[i] ^= (uint8_t)(1u << bit);
            struct iotsec_vault *v = NULL;
            iotsec_result r = iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v);
            if (iotsec_ok(r))
                fail_msg("flipping bit %d of byte %zu went unnoticed", bit, i);
        }
    }
    iotsec_buf_free(&file);
}

static void vault_rejects_unknown_version(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 0);
    struct iotsec_buf file = read_all(f->path);
    file.ptr[9] = 2;
    write_all(f->path, file.ptr, file.len);
    struct iotsec_vault *v;
    assert_false(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_VERSION);
    assert_non_null(strstr(iotsec_error_message(), "unsupported vault version 2"));
    iotsec_buf_free(&file);
}

/* A crafted header must not make us run scrypt with absurd cost: refused before KDF. */
static void vault_rejects_absurd_kdf_parameters(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 0);
    struct iotsec_buf file = read_all(f->path);
    file.ptr[14] = 40; /* log2_n = 40: 2^40 * 1 KiB of memory */
    write_all(f->path, file.ptr, file.len);
    struct iotsec_vault *v;
    assert_false(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_FORMAT);
    assert_non_null(strstr(iotsec_error_message(), "scrypt parameters out of range"));
    iotsec_buf_free(&file);
}

static void vault_create_never_overwrites(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 1);
    struct iotsec_vault *v = NULL;
    assert_false(iotsec_ok(iotsec_vault_create(f->path, &f->key, &v)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_EXISTS);
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
    assert_int_equal(iotsec_vault_count(v), 1);
    iotsec_vault_close(v);
}

static void vault_save_needs_write_mode(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 0);
    struct iotsec_vault *v;
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
    assert_true(iotsec_ok(iotsec_vault_put(v, "a", iotsec_slice_from_str("b"))));
    assert_false(iotsec_ok(iotsec_vault_save(v)));
    assert_non_null(strstr(iotsec_error_message(), "not opened for writing"));
    iotsec_vault_close(v);
}

static void vault_put_replace_remove_keep_names_sorted(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 0);
    struct iotsec_vault *v;
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_WRITE, &v)));
    const char *names[] = {"m", "b", "z", "a", "q"};
    for (size_t i = 0; i < 5; i++)
        assert_true(iotsec_ok(iotsec_vault_put(v, names[i], iotsec_slice_from_str(names[i]))));
    assert_true(iotsec_ok(iotsec_vault_put(v, "m", iotsec_slice_from_str("replaced"))));
    assert_true(iotsec_ok(iotsec_vault_remove(v, "b")));
    assert_false(iotsec_ok(iotsec_vault_remove(v, "b")));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);
    assert_true(iotsec_ok(iotsec_vault_save(v)));
    iotsec_vault_close(v);

    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
    const char *want[] = {"a", "m", "q", "z"};
    assert_int_equal(iotsec_vault_count(v), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(iotsec_vault_name_at(v, i), want[i]);
    struct iotsec_buf value = {0};
    assert_true(iotsec_ok(iotsec_vault_get(v, "m", &value)));
    assert_int_equal(value.len, 8);
    assert_memory_equal(value.ptr, "replaced", 8);
    iotsec_buf_free(&value);
    iotsec_vault_close(v);
}

static void vault_rejects_bad_names_and_oversized_values(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 0);
    struct iotsec_vault *v;
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_WRITE, &v)));
    const char *bad[] = {"", "has space", "tab\t", "caf\xc3\xa9", "new\nline"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(iotsec_ok(iotsec_vault_put(v, bad[i], iotsec_slice_from_str("x"))));
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    }
    char long_name[IOTSEC_VAULT_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(iotsec_ok(iotsec_vault_put(v, long_name, iotsec_slice_from_str("x"))));
    long_name[IOTSEC_VAULT_NAME_MAX] = '\0';
    assert_true(iotsec_ok(iotsec_vault_put(v, long_name, iotsec_slice_from_str("x"))));
    uint8_t *big = calloc(1, IOTSEC_VAULT_VALUE_MAX + 1);
    assert_false(
        iotsec_ok(iotsec_vault_put(v, "big", iotsec_slice_make(big, IOTSEC_VAULT_VALUE_MAX + 1))));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TOO_LARGE);
    assert_true(
        iotsec_ok(iotsec_vault_put(v, "big", iotsec_slice_make(big, IOTSEC_VAULT_VALUE_MAX))));
    free(big);
    iotsec_vault_close(v);
}

static void vault_rekey_replaces_passphrase_and_data_key(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 2);
    struct iotsec_buf before = read_all(f->path);
    struct iotsec_vault *v;
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_WRITE, &v)));
    struct iotsec_vault_key fresh = f->key;
    fresh.passphrase = iotsec_slice_from_str("another one");
    assert_true(iotsec_ok(iotsec_vault_rekey(v, &fresh)));
    iotsec_vault_close(v);

    struct iotsec_buf after = read_all(f->path);
    /* New salt, new wrapped key: the whole key block differs. */
    assert_memory_not_equal(before.ptr + 24, after.ptr + 24, 16 + 12 + 48);
    assert_false(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_READ, &v)));
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &fresh, IOTSEC_VAULT_READ, &v)));
    assert_int_equal(iotsec_vault_count(v), 2);
    iotsec_vault_close(v);
    iotsec_buf_free(&before);
    iotsec_buf_free(&after);
}

static void vault_save_uses_fresh_nonce(void **state)
{
    struct fixture *f = *state;
    make_vault(f, 1);
    struct iotsec_buf a = read_all(f->path);
    struct iotsec_vault *v;
    assert_true(iotsec_ok(iotsec_vault_open(f->path, &f->key, IOTSEC_VAULT_WRITE, &v)));
    assert_true(iotsec_ok(iotsec_vault_save(v)));
    iotsec_vault_close(v);
    struct iotsec_buf b = read_all(f->path);
    assert_int_equal(a.len, b.len);
    struct vault_layout la, lb;
    assert_true(iotsec_ok(vault_parse(iotsec_buf_slice(&a), &la)));
    assert_true(iotsec_ok(vault_parse(iotsec_buf_slice(&b), &lb)));
    assert_true(iotsec_slice_equal(la.key_block, lb.key_block));
    assert_false(iotsec_slice_equal(la.body_nonce, lb.body_nonce));
    iotsec_buf_free(&a);
    iotsec_buf_free(&b);
}

static void decode(const uint8_t *p, size_t n, iotsec_err want)
{
    struct iotsec_vault *v = NULL;
    iotsec_result r = iotsec_vault_decode_entries(iotsec_slice_make(p, n), &v);
    if (want == IOTSEC_ERR_OK) {
        assert_true(iotsec_ok(r));
        iotsec_vault_close(v);
        return;
    }
    assert_false(iotsec_ok(r));
    assert_int_equal(iotsec_error_code(), want);
}

static void vault_entries_have_one_canonical_encoding(void **state)
{
    (void)state;
    const uint8_t ok[] = {0, 0, 0, 2, 1, 'a', 0, 0, 0, 1, 'x', 1, 'b', 0, 0, 0, 0};
    decode(ok, sizeof(ok), IOTSEC_ERR_OK);
    const uint8_t dup[] = {0, 0, 0, 2, 1, 'a', 0, 0, 0, 1, 'x', 1, 'a', 0, 0, 0, 0};
    decode(dup, sizeof(dup), IOTSEC_ERR_FORMAT);
    const uint8_t order[] = {0, 0, 0, 2, 1, 'b', 0, 0, 0, 1, 'x', 1, 'a', 0, 0, 0, 0};
    decode(order, sizeof(order), IOTSEC_ERR_FORMAT);
    const uint8_t trailing[] = {0, 0, 0, 1, 1, 'a', 0, 0, 0, 0, 0};
    decode(trailing, sizeof(trailing), IOTSEC_ERR_FORMAT);
    const uint8_t short_value[] = {0, 0, 0, 1, 1, 'a', 0, 0, 0, 5, 'x'};
    decode(short_value, sizeof(short_value), IOTSEC_ERR_TRUNCATED);
    const uint8_t huge_count[] = {0xff, 0xff, 0xff, 0xff};
    decode(huge_count, sizeof(huge_count), IOTSEC_ERR_FORMAT);
    const uint8_t bad_name[] = {0, 0, 0, 1, 1, ' ', 0, 0, 0, 0};
    decode(bad_name, sizeof(bad_name), IOTSEC_ERR_INVALID_ARG);
    const uint8_t nul_name[] = {0, 0, 0, 1, 2, 'a', 0, 0, 0, 0, 0};
    decode(nul_name, sizeof(nul_name), IOTSEC_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(vault_round_trips_entries_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_stores_salt_and_kdf_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_default_kdf_is_scrypt_2_15, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_rejects_wrong_passphrase_and_leaves_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vault_rejects_every_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_detects_every_flipped_bit, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_rejects_unknown_version, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_rejects_absurd_kdf_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_create_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_save_needs_write_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(vault_put_replace_remove_keep_names_sorted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vault_rejects_bad_names_and_oversized_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vault_rekey_replaces_passphrase_and_data_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vault_save_uses_fresh_nonce, setup, teardown),
        cmocka_unit_test(vault_entries_have_one_canonical_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
