/*
 * The vault file format, version 1: encoding and strict parsing.
 *
 * The parser reads the file like its schema (docs/vault-format.md): magic and version
 * first, then every length checked against the bytes present, every reserved field
 * required to be zero, and nothing allowed after the final tag. Parsing needs no key and
 * never decrypts; it only finds where each part lies, so it is what the fuzzer drives.
 *
 * The entries (the body's plaintext) have one canonical encoding: names strictly
 * increasing, so a duplicate or reordered entry is a format error, not a choice between
 * two values.
 */
#include "vault_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

iotsec_result iotsec_vault_check_name(const char *name)
{
    size_t len = strlen(name);
    IOTSEC_ENSURE(len >= 1 && len <= IOTSEC_VAULT_NAME_MAX, IOTSEC_ERR_INVALID_ARG,
                  "vault: a secret name must be 1 to %d characters, got %zu", IOTSEC_VAULT_NAME_MAX,
                  len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("._:/@-", c) != NULL;
        IOTSEC_ENSURE(ok, IOTSEC_ERR_INVALID_ARG,
                      "vault: invalid character 0x%02x at position %zu of a secret name "
                      "(allowed: letters, digits and ._:/@-)",
                      c, i + 1);
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result parse_scrypt_params(struct iotsec_slice params, struct iotsec_vault_header *h)
{
    uint8_t salt_len;
    IOTSEC_ENSURE(params.len == VAULT_SCRYPT_PARAMS_LEN, IOTSEC_ERR_FORMAT,
                  "scrypt parameters are %zu bytes, expected %d", params.len,
                  VAULT_SCRYPT_PARAMS_LEN);
    IOTSEC_GUARD(iotsec_slice_read_u8(&params, &h->scrypt.log2_n));
    IOTSEC_GUARD(iotsec_slice_read_u32(&params, &h->scrypt.r));
    IOTSEC_GUARD(iotsec_slice_read_u32(&params, &h->scrypt.p));
    IOTSEC_GUARD(iotsec_slice_read_u8(&params, &salt_len));
    IOTSEC_ENSURE(salt_len == IOTSEC_VAULT_SALT_LEN, IOTSEC_ERR_FORMAT,
                  "salt length is %u, expected %d", salt_len, IOTSEC_VAULT_SALT_LEN);
    IOTSEC_GUARD(iotsec_slice_read(&params, h->salt, IOTSEC_VAULT_SALT_LEN));
    /* Bounds are checked before any work so that a crafted file cannot ask for 1 TiB. */
    if (!iotsec_ok(iotsec_scrypt_params_check(h->scrypt))) {
        char why[256];
        snprintf(why, sizeof(why), "%s", iotsec_error_message());
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "scrypt parameters out of range: %s", why);
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result parse_hsm_params(struct iotsec_slice params, struct iotsec_vault_header *h)
{
    uint8_t label_len;
    IOTSEC_GUARD(iotsec_slice_read_u8(&params, &label_len));
    IOTSEC_ENSURE(label_len >= 1 && label_len <= IOTSEC_VAULT_HSM_LABEL_MAX, IOTSEC_ERR_FORMAT,
                  "token key label length %u is out of range 1..%d", label_len,
                  IOTSEC_VAULT_HSM_LABEL_MAX);
    IOTSEC_GUARD(iotsec_slice_read(&params, h->hsm_key_label, label_len));
    h->hsm_key_label[label_len] = '\0';
    IOTSEC_ENSURE(memchr(h->hsm_key_label, '\0', label_len) == NULL, IOTSEC_ERR_FORMAT,
                  "token key label contains a NUL byte");
    IOTSEC_GUARD(iotsec_slice_expect_end(&params));
    return IOTSEC_RESULT_OK;
}

iotsec_result vault_parse(struct iotsec_slice file, struct vault_layout *out)
{
    struct iotsec_slice in = file;
    struct iotsec_slice magic, params;
    uint8_t source, flags;
    uint16_t params_len;
    uint32_t body_len;

    memset(out, 0, sizeof(*out));
    IOTSEC_ENSURE(file.len <= IOTSEC_VAULT_FILE_MAX, IOTSEC_ERR_TOO_LARGE,
                  "file is %zu bytes, larger than any vault", file.len);
    IOTSEC_GUARD(iotsec_slice_take(&in, VAULT_MAGIC_LEN, &magic));
    IOTSEC_ENSURE(memcmp(magic.ptr, VAULT_MAGIC, VAULT_MAGIC_LEN) == 0, IOTSEC_ERR_FORMAT,
                  "not an iotsec vault (bad magic)");
    IOTSEC_GUARD(iotsec_slice_read_u16(&in, &out->header.version));
    IOTSEC_ENSURE(out->header.version == IOTSEC_VAULT_VERSION, IOTSEC_ERR_VERSION,
                  "unsupported vault version %u (this iotsec reads version %d)",
                  out->header.version, IOTSEC_VAULT_VERSION);
    IOTSEC_GUARD(iotsec_slice_read_u8(&in, &source));
    IOTSEC_GUARD(iotsec_slice_read_u8(&in, &flags));
    IOTSEC_ENSURE(flags == 0, IOTSEC_ERR_FORMAT, "reserved flags are 0x%02x, must be 0", flags);
    IOTSEC_GUARD(iotsec_slice_read_u16(&in, &params_len));
    IOTSEC_GUARD(iotsec_slice_take(&in, params_len, &params));

    switch (source) {
    case IOTSEC_VAULT_KEY_PASSPHRASE:
        IOTSEC_GUARD(parse_scrypt_params(params, &out->header));
        break;
    case IOTSEC_VAULT_KEY_HSM:
        IOTSEC_GUARD(parse_hsm_params(params, &out->header));
        break;
    default:
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "unknown key source %u", source);
    }
    out->header.source = (enum iotsec_vault_key_source)source;
    out->wrap_aad = iotsec_slice_make(file.ptr, (size_t)(in.ptr - file.ptr));

    IOTSEC_GUARD(iotsec_slice_take(&in, IOTSEC_AEAD_NONCE_LEN, &out->dek_nonce));
    IOTSEC_GUARD(iotsec_slice_take(&in, VAULT_WRAPPED_DEK_LEN, &out->wrapped_dek));
    out->key_block = iotsec_slice_make(file.ptr, (size_t)(in.ptr - file.ptr));

    IOTSEC_GUARD(iotsec_slice_take(&in, IOTSEC_AEAD_NONCE_LEN, &out->body_nonce));
    IOTSEC_GUARD(iotsec_slice_read_u32(&in, &body_len));
    IOTSEC_ENSURE(body_len <= IOTSEC_VAULT_BODY_MAX, IOTSEC_ERR_FORMAT,
                  "body length %u exceeds the limit of %zu", body_len, IOTSEC_VAULT_BODY_MAX);
    out->body_aad = iotsec_slice_make(file.ptr, (size_t)(in.ptr - file.ptr));
    out->header.body_len = body_len;

    IOTSEC_GUARD(iotsec_slice_take(&in, (size_t)body_len + IOTSEC_AEAD_TAG_LEN, &out->body_sealed));
    IOTSEC_GUARD(iotsec_slice_expect_end(&in));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_vault_parse_header(struct iotsec_slice file, struct iotsec_vault_header *out)
{
    struct vault_layout layout;
    IOTSEC_GUARD(vault_parse(file, &layout));
    *out = layout.header;
    return IOTSEC_RESULT_OK;
}

iotsec_result vault_encode_key_params(const struct iotsec_vault_header *h, struct iotsec_buf *out)
{
    if (h->source == IOTSEC_VAULT_KEY_PASSPHRASE) {
        IOTSEC_GUARD(iotsec_buf_append_u8(out, h->scrypt.log2_n));
        IOTSEC_GUARD(iotsec_buf_append_u32(out, h->scrypt.r));
        IOTSEC_GUARD(iotsec_buf_append_u32(out, h->scrypt.p));
        IOTSEC_GUARD(iotsec_buf_append_u8(out, IOTSEC_VAULT_SALT_LEN));
        return iotsec_buf_append(out, h->salt, IOTSEC_VAULT_SALT_LEN);
    }
    size_t len = strlen(h->hsm_key_label);
    IOTSEC_ENSURE(len >= 1 && len <= IOTSEC_VAULT_HSM_LABEL_MAX, IOTSEC_ERR_INVALID_ARG,
                  "vault: token key label must be 1 to %d characters", IOTSEC_VAULT_HSM_LABEL_MAX);
    IOTSEC_GUARD(iotsec_buf_append_u8(out, (uint8_t)len));
    return iotsec_buf_append(out, h->hsm_key_label, len);
}

iotsec_result vault_encode_prefix(const struct iotsec_vault_header *h, struct iotsec_buf *out)
{
    struct iotsec_buf params = {0};
    iotsec_result r = vault_encode_key_params(h, &params);
    if (iotsec_ok(r)) {
        bool ok = iotsec_ok(iotsec_buf_append(out, VAULT_MAGIC, VAULT_MAGIC_LEN)) &&
                  iotsec_ok(iotsec_buf_append_u16(out, IOTSEC_VAULT_VERSION)) &&
                  iotsec_ok(iotsec_buf_append_u8(out, (uint8_t)h->source)) &&
                  iotsec_ok(iotsec_buf_append_u8(out, 0)) &&
                  iotsec_ok(iotsec_buf_append_u16(out, (uint16_t)params.len)) &&
                  iotsec_ok(iotsec_buf_append_slice(out, iotsec_buf_slice(&params)));
        r = ok ? IOTSEC_RESULT_OK : IOTSEC_RESULT_ERR;
    }
    iotsec_buf_free(&params);
    return r;
}

iotsec_result vault_encode_entries(const struct iotsec_vault *v, struct iotsec_buf *plain)
{
    IOTSEC_GUARD(iotsec_buf_append_u32(plain, (uint32_t)v->count));
    for (size_t i = 0; i < v->count; i++) {
        const struct vault_entry *e = &v->entries[i];
        size_t name_len = strlen(e->name);
        IOTSEC_GUARD(iotsec_buf_append_u8(plain, (uint8_t)name_len));
        IOTSEC_GUARD(iotsec_buf_append(plain, e->name, name_len));
        IOTSEC_GUARD(iotsec_buf_append_u32(plain, (uint32_t)e->value.len));
        IOTSEC_GUARD(iotsec_buf_append_slice(plain, iotsec_buf_slice(&e->value)));
    }
    IOTSEC_ENSURE(plain->len <= IOTSEC_VAULT_BODY_MAX, IOTSEC_ERR_TOO_LARGE,
                  "vault: the secrets total %zu bytes, more than the limit of %zu", plain->len,
                  IOTSEC_VAULT_BODY_MAX);
    return IOTSEC_RESULT_OK;
}

static iotsec_result decode_entry(struct iotsec_slice *in, struct vault_entry *e,
                                  const char *previous)
{
    uint8_t name_len;
    uint32_t value_len;
    struct iotsec_slice name, value;

    IOTSEC_GUARD(iotsec_slice_read_u8(in, &name_len));
    IOTSEC_GUARD(iotsec_slice_take(in, name_len, &name));
    IOTSEC_ENSURE(memchr(name.ptr, '\0', name.len) == NULL, IOTSEC_ERR_FORMAT,
                  "a secret name contains a NUL byte");
    e->name = strndup((const char *)name.ptr, name.len);
    IOTSEC_ENSURE_ALLOC(e->name);
    IOTSEC_GUARD(iotsec_vault_check_name(e->name));
    IOTSEC_ENSURE(previous == NULL || strcmp(previous, e->name) < 0, IOTSEC_ERR_FORMAT,
                  "entry '%s' is out of order or duplicated", e->name);

    IOTSEC_GUARD(iotsec_slice_read_u32(in, &value_len));
    IOTSEC_ENSURE(value_len <= IOTSEC_VAULT_VALUE_MAX, IOTSEC_ERR_FORMAT,
                  "entry '%s' is %u bytes, over the limit of %zu", e->name, value_len,
                  IOTSEC_VAULT_VALUE_MAX);
    IOTSEC_GUARD(iotsec_slice_take(in, value_len, &value));
    iotsec_buf_init_secret(&e->value);
    IOTSEC_GUARD(iotsec_buf_append_slice(&e->value, value));
    return IOTSEC_RESULT_OK;
}

iotsec_result vault_decode_entries(struct iotsec_slice plain, struct iotsec_vault *v)
{
    uint32_t count;
    IOTSEC_GUARD(iotsec_slice_read_u32(&plain, &count));
    IOTSEC_ENSURE(count <= IOTSEC_VAULT_ENTRIES_MAX, IOTSEC_ERR_FORMAT,
                  "%u entries, more than the limit of %d", count, IOTSEC_VAULT_ENTRIES_MAX);
    /* Each entry takes at least 6 bytes: never allocate for entries that cannot be there. */
    IOTSEC_ENSURE(count <= plain.len / 6, IOTSEC_ERR_TRUNCATED, "%u entries announced in %zu bytes",
                  count, plain.len);
    if (count > 0) {
        v->entries = calloc(count, sizeof(*v->entries));
        IOTSEC_ENSURE_ALLOC(v->entries);
        v->cap = count;
    }
    for (uint32_t i = 0; i < count; i++) {
        const char *previous = i == 0 ? NULL : v->entries[i - 1].name;
        /* count first: close() frees the partly decoded entry too. */
        v->count = i + 1;
        IOTSEC_GUARD(decode_entry(&plain, &v->entries[i], previous));
    }
    return iotsec_slice_expect_end(&plain);
}

iotsec_result iotsec_vault_decode_entries(struct iotsec_slice plain, struct iotsec_vault **out)
{
    struct iotsec_vault *v = vault_alloc();
    IOTSEC_ENSURE_ALLOC(v);
    if (!iotsec_ok(vault_decode_entries(plain, v))) {
        iotsec_vault_close(v);
        return IOTSEC_RESULT_ERR;
    }
    *out = v;
    return IOTSEC_RESULT_OK;
}
