/*
 * The vault: keys, encryption and the file's life cycle (include/iotsec/vault.h).
 *
 * Opening: parse the framing, obtain the KEK (scrypt of the passphrase with the file's own
 * salt and cost, or the token's AES key), unwrap the DEK with the header as AAD, then
 * decrypt the body with the DEK and the whole header as AAD. Only after both tags verify
 * are the entries decoded; a decode error after that means a bug or a forged key, and is
 * reported as corruption.
 *
 * Saving never needs the KEK: the key block (header prefix, DEK nonce, wrapped DEK) is kept
 * verbatim from open/create, and only the body is re-encrypted, under a fresh random
 * nonce. The DEK changes only on rekey, so random 96-bit nonces stay far below the GCM
 * collision bound (2^32 messages per key).
 */
#include "vault_format.h"

#include "iotsec/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* A writer waits this long for another writer to finish before giving up. */
#define VAULT_LOCK_WAIT_MS 10000

struct iotsec_vault *vault_alloc(void)
{
    struct iotsec_vault *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->lock_fd = -1;
    iotsec_buf_init(&v->key_block);
    return v;
}

void iotsec_vault_close(struct iotsec_vault *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->count; i++) {
        free(v->entries[i].name);
        iotsec_buf_free(&v->entries[i].value);
    }
    free(v->entries);
    iotsec_wipe(v->dek, sizeof(v->dek));
    iotsec_buf_free(&v->key_block);
    if (v->lock_fd >= 0)
        close(v->lock_fd); /* releases the flock */
    free(v->path);
    free(v);
}

/* ---- keys ---- */

static iotsec_result passphrase_kek(const struct iotsec_vault_key *key,
                                    const struct iotsec_vault_header *h,
                                    uint8_t kek[IOTSEC_AEAD_KEY_LEN])
{
    IOTSEC_ENSURE(key->passphrase.len > 0, IOTSEC_ERR_INVALID_ARG, "empty passphrase");
    return iotsec_scrypt(key->passphrase, iotsec_slice_make(h->salt, IOTSEC_VAULT_SALT_LEN),
                         h->scrypt, kek, IOTSEC_AEAD_KEY_LEN);
}

static iotsec_result wrap_dek(const struct iotsec_vault_key *key,
                              const struct iotsec_vault_header *h, struct iotsec_slice aad,
                              struct iotsec_slice nonce, const uint8_t *dek, struct iotsec_buf *out)
{
    struct iotsec_slice plain = iotsec_slice_make(dek, VAULT_DEK_LEN);
    if (h->source == IOTSEC_VAULT_KEY_HSM)
        return iotsec_hsm_aead_seal(key->hsm, h->hsm_key_label, nonce, aad, plain, out);

    uint8_t kek[IOTSEC_AEAD_KEY_LEN];
    iotsec_result r = passphrase_kek(key, h, kek);
    if (iotsec_ok(r))
        r = iotsec_aead_seal(iotsec_slice_make(kek, sizeof(kek)), nonce, aad, plain, out);
    iotsec_wipe(kek, sizeof(kek));
    return r;
}

static iotsec_result unwrap_dek(const struct iotsec_vault_key *key,
                                const struct vault_layout *layout, uint8_t *dek)
{
    const struct iotsec_vault_header *h = &layout->header;
    struct iotsec_buf plain;
    iotsec_buf_init_secret(&plain);
    iotsec_result r;

    if (h->source == IOTSEC_VAULT_KEY_HSM) {
        IOTSEC_ENSURE(key->source == IOTSEC_VAULT_KEY_HSM && key->hsm != NULL,
                      IOTSEC_ERR_INVALID_ARG,
                      "is protected by the token key '%s'; open it with the token "
                      "(--hsm-module, --token, --pin-file)",
                      h->hsm_key_label);
        r = iotsec_hsm_aead_open(key->hsm, h->hsm_key_label, layout->dek_nonce, layout->wrap_aad,
                                 layout->wrapped_dek, &plain);
        if (!iotsec_ok(r) && iotsec_error_code() == IOTSEC_ERR_AUTH)
            iotsec_error_set(IOTSEC_ERR_AUTH, "wrong token key or corrupted file");
    } else {
        IOTSEC_ENSURE(key->source == IOTSEC_VAULT_KEY_PASSPHRASE, IOTSEC_ERR_INVALID_ARG,
                      "is protected by a passphrase, not by a token key");
        uint8_t kek[IOTSEC_AEAD_KEY_LEN];
        r = passphrase_kek(key, h, kek);
        if (iotsec_ok(r)) {
            r = iotsec_aead_open(iotsec_slice_make(kek, sizeof(kek)), layout->dek_nonce,
                                 layout->wrap_aad, layout->wrapped_dek, &plain);
            if (!iotsec_ok(r))
                iotsec_error_set(IOTSEC_ERR_AUTH, "wrong passphrase or corrupted file");
        }
        iotsec_wipe(kek, sizeof(kek));
    }
    if (iotsec_ok(r) && plain.len != VAULT_DEK_LEN) {
        iotsec_error_set(IOTSEC_ERR_FORMAT, "wrapped data key has the wrong size");
        r = IOTSEC_RESULT_ERR;
    }
    if (iotsec_ok(r))
        memcpy(dek, plain.ptr, VAULT_DEK_LEN);
    iotsec_buf_free(&plain);
    return r;
}

/* A fresh DEK and the key block that wraps it under `key`. */
static iotsec_result make_key_block(const struct iotsec_vault_key *key, uint8_t *dek,
                                    struct iotsec_buf *block)
{
    struct iotsec_vault_header h = {.version = IOTSEC_VAULT_VERSION, .source = key->source};
    uint8_t nonce[IOTSEC_AEAD_NONCE_LEN];

    if (key->source == IOTSEC_VAULT_KEY_PASSPHRASE) {
        h.scrypt = key->scrypt.log2_n == 0 ? IOTSEC_SCRYPT_DEFAULT : key->scrypt;
        IOTSEC_GUARD(iotsec_scrypt_params_check(h.scrypt));
        IOTSEC_GUARD(iotsec_random(h.salt, sizeof(h.salt)));
    } else {
        IOTSEC_ENSURE(key->source == IOTSEC_VAULT_KEY_HSM && key->hsm != NULL &&
                          key->hsm_key_label != NULL,
                      IOTSEC_ERR_INVALID_ARG, "a token key needs an open token and a key label");
        IOTSEC_ENSURE(strlen(key->hsm_key_label) <= IOTSEC_VAULT_HSM_LABEL_MAX,
                      IOTSEC_ERR_INVALID_ARG, "token key label is longer than %d characters",
                      IOTSEC_VAULT_HSM_LABEL_MAX);
        strcpy(h.hsm_key_label, key->hsm_key_label);
    }
    IOTSEC_GUARD(iotsec_random(dek, VAULT_DEK_LEN));
    IOTSEC_GUARD(iotsec_random(nonce, sizeof(nonce)));

    iotsec_buf_reset(block);
    IOTSEC_GUARD(vault_encode_prefix(&h, block));
    size_t aad_len = block->len;
    IOTSEC_GUARD(iotsec_buf_append(block, nonce, sizeof(nonce)));
    /* The AAD view is taken after the append: the append may move the buffer. */
    struct iotsec_buf wrapped = {0};
    iotsec_result r = wrap_dek(key, &h, iotsec_slice_make(block->ptr, aad_len),
                               iotsec_slice_make(nonce, sizeof(nonce)), dek, &wrapped);
    if (iotsec_ok(r))
        r = iotsec_buf_append_slice(block, iotsec_buf_slice(&wrapped));
    iotsec_buf_free(&wrapped);
    return r;
}

/* ---- files and the writer lock ---- */

static iotsec_result take_writer_lock(struct iotsec_vault *v)
{
    char lock_path[4096];
    int n = snprintf(lock_path, sizeof(lock_path), "%s.lock", v->path);
    IOTSEC_ENSURE(n > 0 && (size_t)n < sizeof(lock_path), IOTSEC_ERR_INVALID_ARG, "path too long");
    v->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    IOTSEC_ENSURE(v->lock_fd >= 0, IOTSEC_ERR_IO, "cannot open the lock file %s: %s", lock_path,
                  strerror(errno));
    for (int waited_ms = 0;; waited_ms += 10) {
        if (flock(v->lock_fd, LOCK_EX | LOCK_NB) == 0)
            return IOTSEC_RESULT_OK;
        IOTSEC_ENSURE(errno == EWOULDBLOCK || errno == EINTR, IOTSEC_ERR_IO, "lock %s: %s",
                      lock_path, strerror(errno));
        IOTSEC_ENSURE(waited_ms < VAULT_LOCK_WAIT_MS, IOTSEC_ERR_BUSY,
                      "another writer has held the vault for %d seconds; try again later",
                      VAULT_LOCK_WAIT_MS / 1000);
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
}

/* A writer killed mid-save leaves "<vault>.tmp.XXXXXX" behind. Whoever holds the writer
 * lock is the only writer, so any such file is a dead writer's and can go. Best effort:
 * a leftover temporary file is untidy, never harmful. */
static void remove_stale_temps(const char *path)
{
    char dir[4096], prefix[4096];
    const char *slash = strrchr(path, '/');
    const char *base = slash == NULL ? path : slash + 1;
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
    snprintf(prefix, sizeof(prefix), "%s.tmp.", base);

    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            strlen(e->d_name) == strlen(prefix) + 6)
            unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

static iotsec_result save_locked(struct iotsec_vault *v)
{
    IOTSEC_ENSURE(v->path != NULL && v->lock_fd >= 0, IOTSEC_ERR_INVALID_ARG,
                  "the vault was not opened for writing");
    uint8_t nonce[IOTSEC_AEAD_NONCE_LEN];
    struct iotsec_buf plain, file = {0};
    iotsec_buf_init_secret(&plain);

    bool ok = iotsec_ok(vault_encode_entries(v, &plain)) &&
              iotsec_ok(iotsec_random(nonce, sizeof(nonce))) &&
              iotsec_ok(iotsec_buf_append_slice(&file, iotsec_buf_slice(&v->key_block))) &&
              iotsec_ok(iotsec_buf_append(&file, nonce, sizeof(nonce))) &&
              iotsec_ok(iotsec_buf_append_u32(&file, (uint32_t)plain.len));
    if (ok) {
        /* seal appends to `file`, which may move it: AAD and output must not alias, so the
         * header is copied into its own buffer first. */
        struct iotsec_buf aad = {0};
        ok = iotsec_ok(iotsec_buf_append_slice(&aad, iotsec_buf_slice(&file))) &&
             iotsec_ok(iotsec_aead_seal(iotsec_slice_make(v->dek, VAULT_DEK_LEN),
                                        iotsec_slice_make(nonce, sizeof(nonce)),
                                        iotsec_buf_slice(&aad), iotsec_buf_slice(&plain), &file)) &&
             iotsec_ok(iotsec_file_write_atomic(v->path, iotsec_buf_slice(&file), 0600));
        iotsec_buf_free(&aad);
    }
    iotsec_buf_free(&plain);
    iotsec_buf_free(&file);
    if (ok)
        remove_stale_temps(v->path);
    return ok ? IOTSEC_RESULT_OK : IOTSEC_RESULT_ERR;
}

/* Every error leaving the public API names the vault file. */
static iotsec_result named(const struct iotsec_vault *v, const char *path, iotsec_result r)
{
    if (!iotsec_ok(r))
        iotsec_error_prefix("vault %s: ", v != NULL && v->path != NULL ? v->path : path);
    return r;
}

iotsec_result iotsec_vault_save(struct iotsec_vault *v)
{
    return named(v, NULL, save_locked(v));
}

static iotsec_result create(struct iotsec_vault *v, const struct iotsec_vault_key *key)
{
    IOTSEC_GUARD(take_writer_lock(v));
    IOTSEC_ENSURE(!iotsec_file_exists(v->path), IOTSEC_ERR_EXISTS,
                  "already exists; a vault is never overwritten (use rekey to change its key)");
    IOTSEC_GUARD(make_key_block(key, v->dek, &v->key_block));
    return save_locked(v);
}

iotsec_result iotsec_vault_create(const char *path, const struct iotsec_vault_key *key,
                                  struct iotsec_vault **out)
{
    struct iotsec_vault *v = vault_alloc();
    IOTSEC_ENSURE_ALLOC(v);
    v->path = strdup(path);
    if (v->path == NULL || !iotsec_ok(named(v, path, create(v, key)))) {
        if (v->path == NULL)
            iotsec_error_set(IOTSEC_ERR_NOMEM, NULL);
        iotsec_vault_close(v);
        return IOTSEC_RESULT_ERR;
    }
    *out = v;
    return IOTSEC_RESULT_OK;
}

static iotsec_result open_file(struct iotsec_vault *v, const struct iotsec_vault_key *key,
                               enum iotsec_vault_mode mode)
{
    if (mode == IOTSEC_VAULT_WRITE)
        IOTSEC_GUARD(take_writer_lock(v));

    struct iotsec_buf file = {0}, plain;
    struct vault_layout layout;
    iotsec_buf_init_secret(&plain);
    iotsec_result r = iotsec_file_read(v->path, IOTSEC_VAULT_FILE_MAX, &file);
    if (!iotsec_ok(r) && iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
        iotsec_error_set(IOTSEC_ERR_NOT_FOUND,
                         "no such file (create one with 'iotsec vault init')");
    if (iotsec_ok(r)) {
        r = vault_parse(iotsec_buf_slice(&file), &layout);
        if (!iotsec_ok(r) && iotsec_error_code() == IOTSEC_ERR_TRUNCATED)
            iotsec_error_prefix("truncated file: ");
    }
    if (iotsec_ok(r))
        r = unwrap_dek(key, &layout, v->dek);
    if (iotsec_ok(r)) {
        r = iotsec_aead_open(iotsec_slice_make(v->dek, VAULT_DEK_LEN), layout.body_nonce,
                             layout.body_aad, layout.body_sealed, &plain);
        if (!iotsec_ok(r))
            iotsec_error_set(IOTSEC_ERR_AUTH, "contents are corrupted (authentication failed)");
    }
    if (iotsec_ok(r))
        r = vault_decode_entries(iotsec_buf_slice(&plain), v);
    if (iotsec_ok(r))
        r = iotsec_buf_append_slice(&v->key_block, layout.key_block);
    iotsec_buf_free(&plain);
    iotsec_buf_free(&file);
    return r;
}

iotsec_result iotsec_vault_open(const char *path, const struct iotsec_vault_key *key,
                                enum iotsec_vault_mode mode, struct iotsec_vault **out)
{
    struct iotsec_vault *v = vault_alloc();
    IOTSEC_ENSURE_ALLOC(v);
    v->path = strdup(path);
    if (v->path == NULL || !iotsec_ok(named(v, path, open_file(v, key, mode)))) {
        if (v->path == NULL)
            iotsec_error_set(IOTSEC_ERR_NOMEM, NULL);
        iotsec_vault_close(v);
        return IOTSEC_RESULT_ERR;
    }
    *out = v;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_vault_rekey(struct iotsec_vault *v, const struct iotsec_vault_key *new_key)
{
    uint8_t old_dek[VAULT_DEK_LEN];
    struct iotsec_buf old_block = v->key_block;
    memcpy(old_dek, v->dek, VAULT_DEK_LEN);

    iotsec_buf_init(&v->key_block);
    iotsec_result r = make_key_block(new_key, v->dek, &v->key_block);
    if (iotsec_ok(r))
        r = save_locked(v);
    if (iotsec_ok(r)) {
        iotsec_buf_free(&old_block);
    } else {
        /* The file on disk is still the old one: keep the object consistent with it. */
        iotsec_buf_free(&v->key_block);
        v->key_block = old_block;
        memcpy(v->dek, old_dek, VAULT_DEK_LEN);
    }
    iotsec_wipe(old_dek, sizeof(old_dek));
    return named(v, NULL, r);
}

/* ---- entries ---- */

/* Index of name, or where it would be inserted (binary search over sorted names). */
static size_t find(const struct iotsec_vault *v, const char *name, bool *found)
{
    size_t lo = 0, hi = v->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v->entries[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

iotsec_result iotsec_vault_get(const struct iotsec_vault *v, const char *name,
                               struct iotsec_buf *value)
{
    bool found;
    IOTSEC_GUARD(iotsec_vault_check_name(name));
    size_t i = find(v, name, &found);
    IOTSEC_ENSURE(found, IOTSEC_ERR_NOT_FOUND, "vault: no secret named '%s'", name);
    return iotsec_buf_append_slice(value, iotsec_buf_slice(&v->entries[i].value));
}

iotsec_result iotsec_vault_put(struct iotsec_vault *v, const char *name, struct iotsec_slice value)
{
    bool found;
    IOTSEC_GUARD(iotsec_vault_check_name(name));
    IOTSEC_ENSURE(value.len <= IOTSEC_VAULT_VALUE_MAX, IOTSEC_ERR_TOO_LARGE,
                  "vault: secret '%s' is %zu bytes, over the limit of %zu", name, value.len,
                  IOTSEC_VAULT_VALUE_MAX);
    size_t i = find(v, name, &found);
    if (found) {
        iotsec_buf_reset(&v->entries[i].value);
        return iotsec_buf_append_slice(&v->entries[i].value, value);
    }
    IOTSEC_ENSURE(v->count < IOTSEC_VAULT_ENTRIES_MAX, IOTSEC_ERR_TOO_LARGE,
                  "vault: already holds the maximum of %d secrets", IOTSEC_VAULT_ENTRIES_MAX);
    if (v->count == v->cap) {
        size_t cap = v->cap == 0 ? 16 : v->cap * 2;
        struct vault_entry *grown = realloc(v->entries, cap * sizeof(*grown));
        IOTSEC_ENSURE_ALLOC(grown);
        v->entries = grown;
        v->cap = cap;
    }
    struct vault_entry e = {.name = strdup(name)};
    IOTSEC_ENSURE_ALLOC(e.name);
    iotsec_buf_init_secret(&e.value);
    if (!iotsec_ok(iotsec_buf_append_slice(&e.value, value))) {
        free(e.name);
        iotsec_buf_free(&e.value);
        return IOTSEC_RESULT_ERR;
    }
    memmove(&v->entries[i + 1], &v->entries[i], (v->count - i) * sizeof(*v->entries));
    v->entries[i] = e;
    v->count++;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_vault_remove(struct iotsec_vault *v, const char *name)
{
    bool found;
    IOTSEC_GUARD(iotsec_vault_check_name(name));
    size_t i = find(v, name, &found);
    IOTSEC_ENSURE(found, IOTSEC_ERR_NOT_FOUND, "vault: no secret named '%s'", name);
    free(v->entries[i].name);
    iotsec_buf_free(&v->entries[i].value);
    memmove(&v->entries[i], &v->entries[i + 1], (v->count - i - 1) * sizeof(*v->entries));
    v->count--;
    return IOTSEC_RESULT_OK;
}

size_t iotsec_vault_count(const struct iotsec_vault *v)
{
    return v->count;
}

const char *iotsec_vault_name_at(const struct iotsec_vault *v, size_t index)
{
    return index < v->count ? v->entries[index].name : NULL;
}
