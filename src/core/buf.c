/*
 * Slices and growable buffers (see include/iotsec/buf.h).
 *
 * A secret buffer never uses realloc(): realloc may move the bytes and free the old
 * block without wiping it, leaving a copy of the secret on the heap. Instead it
 * allocates, copies, wipes and frees by hand.
 */
#include "iotsec/buf.h"

#include <stdlib.h>
#include <string.h>

struct iotsec_slice iotsec_slice_from_str(const char *s)
{
    return iotsec_slice_make(s, s == NULL ? 0 : strlen(s));
}

iotsec_result iotsec_slice_take(struct iotsec_slice *in, size_t n, struct iotsec_slice *out)
{
    IOTSEC_ENSURE(n <= in->len, IOTSEC_ERR_TRUNCATED,
                  "input is truncated: %zu bytes needed, %zu present", n, in->len);
    *out = iotsec_slice_make(in->ptr, n);
    in->ptr += n;
    in->len -= n;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_slice_read(struct iotsec_slice *in, void *dst, size_t n)
{
    struct iotsec_slice part;
    IOTSEC_GUARD(iotsec_slice_take(in, n, &part));
    if (n > 0)
        memcpy(dst, part.ptr, n);
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_be(struct iotsec_slice *in, size_t n, uint64_t *v)
{
    struct iotsec_slice part;
    IOTSEC_GUARD(iotsec_slice_take(in, n, &part));
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | part.ptr[i];
    *v = x;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_slice_read_u8(struct iotsec_slice *in, uint8_t *v)
{
    uint64_t x;
    IOTSEC_GUARD(read_be(in, 1, &x));
    *v = (uint8_t)x;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_slice_read_u16(struct iotsec_slice *in, uint16_t *v)
{
    uint64_t x;
    IOTSEC_GUARD(read_be(in, 2, &x));
    *v = (uint16_t)x;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_slice_read_u32(struct iotsec_slice *in, uint32_t *v)
{
    uint64_t x;
    IOTSEC_GUARD(read_be(in, 4, &x));
    *v = (uint32_t)x;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_slice_read_u64(struct iotsec_slice *in, uint64_t *v)
{
    return read_be(in, 8, v);
}

iotsec_result iotsec_slice_expect_end(const struct iotsec_slice *in)
{
    IOTSEC_ENSURE(in->len == 0, IOTSEC_ERR_FORMAT, "%zu unexpected trailing bytes", in->len);
    return IOTSEC_RESULT_OK;
}

bool iotsec_slice_equal(struct iotsec_slice a, struct iotsec_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

void iotsec_buf_init(struct iotsec_buf *b)
{
    *b = (struct iotsec_buf){.max = IOTSEC_BUF_MAX};
}

void iotsec_buf_init_secret(struct iotsec_buf *b)
{
    *b = (struct iotsec_buf){.max = IOTSEC_BUF_MAX, .secret = true};
}

void iotsec_buf_set_max(struct iotsec_buf *b, size_t max)
{
    b->max = max < IOTSEC_BUF_MAX ? max : IOTSEC_BUF_MAX;
}

iotsec_result iotsec_buf_reserve(struct iotsec_buf *b, size_t extra)
{
    /* +1 keeps room for iotsec_buf_terminate() without another move. */
    size_t max = b->max == 0 ? IOTSEC_BUF_MAX : b->max;
    IOTSEC_ENSURE(extra <= max && b->len <= max - extra, IOTSEC_ERR_TOO_LARGE,
                  "data exceeds the limit of %zu bytes", max);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return IOTSEC_RESULT_OK;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;

    uint8_t *p = malloc(cap);
    IOTSEC_ENSURE_ALLOC(p);
    if (b->len > 0)
        memcpy(p, b->ptr, b->len);
    if (b->ptr != NULL) {
        if (b->secret)
            iotsec_wipe(b->ptr, b->cap);
        free(b->ptr);
    }
    b->ptr = p;
    b->cap = cap;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_buf_grow(struct iotsec_buf *b, size_t n, uint8_t **dst)
{
    IOTSEC_GUARD(iotsec_buf_reserve(b, n));
    *dst = b->ptr + b->len;
    b->len += n;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_buf_append(struct iotsec_buf *b, const void *data, size_t n)
{
    uint8_t *dst;
    IOTSEC_GUARD(iotsec_buf_grow(b, n, &dst));
    if (n > 0)
        memcpy(dst, data, n);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_buf_append_slice(struct iotsec_buf *b, struct iotsec_slice s)
{
    return iotsec_buf_append(b, s.ptr, s.len);
}

iotsec_result iotsec_buf_append_str(struct iotsec_buf *b, const char *s)
{
    return iotsec_buf_append(b, s, strlen(s));
}

static iotsec_result append_be(struct iotsec_buf *b, uint64_t v, size_t n)
{
    uint8_t bytes[8];
    for (size_t i = 0; i < n; i++)
        bytes[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return iotsec_buf_append(b, bytes, n);
}

iotsec_result iotsec_buf_append_u8(struct iotsec_buf *b, uint8_t v)
{
    return append_be(b, v, 1);
}

iotsec_result iotsec_buf_append_u16(struct iotsec_buf *b, uint16_t v)
{
    return append_be(b, v, 2);
}

iotsec_result iotsec_buf_append_u32(struct iotsec_buf *b, uint32_t v)
{
    return append_be(b, v, 4);
}

iotsec_result iotsec_buf_append_u64(struct iotsec_buf *b, uint64_t v)
{
    return append_be(b, v, 8);
}

iotsec_result iotsec_buf_terminate(struct iotsec_buf *b)
{
    IOTSEC_GUARD(iotsec_buf_reserve(b, 0));
    b->ptr[b->len] = '\0';
    return IOTSEC_RESULT_OK;
}

void iotsec_buf_reset(struct iotsec_buf *b)
{
    if (b->secret && b->ptr != NULL)
        iotsec_wipe(b->ptr, b->cap);
    b->len = 0;
}

void iotsec_buf_free(struct iotsec_buf *b)
{
    if (b->ptr != NULL) {
        if (b->secret)
            iotsec_wipe(b->ptr, b->cap);
        free(b->ptr);
    }
    size_t max = b->max;
    bool secret = b->secret;
    *b = (struct iotsec_buf){.max = max, .secret = secret};
}

void iotsec_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero(p, n);
}
