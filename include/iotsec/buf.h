/*
 * Bytes travel with their length.
 *
 * struct iotsec_slice is a read-only view (pointer + length) that parsers consume from
 * the front: every read checks the bytes are there and fails with IOTSEC_ERR_TRUNCATED
 * otherwise, so a parser reads like the schema of its format. A slice never owns memory.
 *
 * struct iotsec_buf is a growable, owned byte buffer for writing. A buffer created with
 * iotsec_buf_init_secret() holds secret material: its old storage is wiped whenever it
 * grows, and iotsec_buf_free() wipes it before releasing. Wire integers are big-endian.
 * Every buffer has a maximum size (IOTSEC_BUF_MAX unless set lower) so that no input can
 * make it grow without bound. A zero-initialised struct iotsec_buf is a valid empty buffer.
 */
#ifndef IOTSEC_BUF_H
#define IOTSEC_BUF_H

#include "iotsec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard ceiling on any buffer: 1 GiB. Callers set tighter limits per format. */
#define IOTSEC_BUF_MAX ((size_t)1 << 30)

struct iotsec_slice {
    const uint8_t *ptr;
    size_t len;
};

struct iotsec_buf {
    uint8_t *ptr;
    size_t len;
    size_t cap;
    size_t max;
    bool secret;
};

/* ---- slices ---- */
static inline struct iotsec_slice iotsec_slice_make(const void *ptr, size_t len)
{
    return (struct iotsec_slice){.ptr = (const uint8_t *)ptr, .len = len};
}
struct iotsec_slice iotsec_slice_from_str(const char *s);

/* Takes n bytes off the front of `in` into `out` (a view into the same memory). */
IOTSEC_MUST_CHECK iotsec_result iotsec_slice_take(struct iotsec_slice *in, size_t n,
                                                  struct iotsec_slice *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_slice_read(struct iotsec_slice *in, void *dst, size_t n);
IOTSEC_MUST_CHECK iotsec_result iotsec_slice_read_u8(struct iotsec_slice *in, uint8_t *v);
IOTSEC_MUST_CHECK iotsec_result iotsec_slice_read_u16(struct iotsec_slice *in, uint16_t *v);
IOTSEC_MUST_CHECK iotsec_result iotsec_slice_read_u32(struct iotsec_slice *in, uint32_t *v);
IOTSEC_MUST_CHECK iotsec_result iotsec_slice_read_u64(struct iotsec_slice *in, uint64_t *v);
/* Fails with IOTSEC_ERR_FORMAT when bytes remain: formats reject trailing garbage. */
IOTSEC_MUST_CHECK iotsec_result iotsec_slice_expect_end(const struct iotsec_slice *in);

/* Byte equality, NOT constant time: for public data only (see iotsec_ct_equal). */
bool iotsec_slice_equal(struct iotsec_slice a, struct iotsec_slice b);

/* ---- buffers ---- */
void iotsec_buf_init(struct iotsec_buf *b);
void iotsec_buf_init_secret(struct iotsec_buf *b);
/* Lowers the maximum size; appends beyond it fail with IOTSEC_ERR_TOO_LARGE. */
void iotsec_buf_set_max(struct iotsec_buf *b, size_t max);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_reserve(struct iotsec_buf *b, size_t extra);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_append(struct iotsec_buf *b, const void *data, size_t n);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_append_slice(struct iotsec_buf *b,
                                                        struct iotsec_slice s);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_append_str(struct iotsec_buf *b, const char *s);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_append_u8(struct iotsec_buf *b, uint8_t v);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_append_u16(struct iotsec_buf *b, uint16_t v);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_append_u32(struct iotsec_buf *b, uint32_t v);
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_append_u64(struct iotsec_buf *b, uint64_t v);
/* Appends n writable bytes and returns a pointer to them (for APIs that fill memory). */
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_grow(struct iotsec_buf *b, size_t n, uint8_t **dst);
/* Keeps a NUL after the contents (not counted in len), for APIs that need a C string. */
IOTSEC_MUST_CHECK iotsec_result iotsec_buf_terminate(struct iotsec_buf *b);
/* Drops the contents (wiped if secret) but keeps the storage. */
void iotsec_buf_reset(struct iotsec_buf *b);
void iotsec_buf_free(struct iotsec_buf *b);
static inline struct iotsec_slice iotsec_buf_slice(const struct iotsec_buf *b)
{
    return iotsec_slice_make(b->ptr, b->len);
}

/* Overwrites memory in a way the compiler cannot elide (explicit_bzero). */
void iotsec_wipe(void *p, size_t n);

#endif
