/*
 * Bounded reads and crash-safe atomic writes (see include/iotsec/file.h).
 *
 * The atomic write follows the classic sequence; each step is there for a reason:
 *   1. mkstemp() in the target's directory: rename() is only atomic within a filesystem.
 *   2. fchmod() before any data is written, so a secret never sits in a 0644 file.
 *   3. write everything, fsync(file): the data is on disk before the name points at it,
 *      otherwise a crash after rename can leave the new name on an empty file.
 *   4. rename() over the target: the atomic switch.
 *   5. fsync(directory): makes the rename itself durable.
 */
#include "iotsec/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static iotsec_result read_fd(int fd, const char *path, size_t max, bool private_only,
                             struct iotsec_buf *out)
{
    struct stat st;
    IOTSEC_ENSURE(fstat(fd, &st) == 0, IOTSEC_ERR_IO, "%s: %s", path, strerror(errno));
    IOTSEC_ENSURE(S_ISREG(st.st_mode), IOTSEC_ERR_INVALID_ARG, "%s: not a regular file", path);
    IOTSEC_ENSURE(!private_only || (st.st_mode & 077) == 0, IOTSEC_ERR_PERMISSION,
                  "%s: readable by group or others (mode %04o); it must be 0600 or stricter", path,
                  (unsigned)(st.st_mode & 07777));
    IOTSEC_ENSURE((uintmax_t)st.st_size <= max, IOTSEC_ERR_TOO_LARGE,
                  "%s: file is %jd bytes, the limit is %zu", path, (intmax_t)st.st_size, max);

    size_t start = out->len;
    /* The file may grow between fstat and read: read at most max+1 to notice. */
    for (;;) {
        uint8_t *dst;
        size_t chunk = 65536;
        IOTSEC_GUARD(iotsec_buf_reserve(out, chunk));
        dst = out->ptr + out->len;
        ssize_t n = read(fd, dst, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        IOTSEC_ENSURE(n >= 0, IOTSEC_ERR_IO, "%s: read: %s", path, strerror(errno));
        if (n == 0)
            break;
        out->len += (size_t)n;
        if (out->len - start > max) {
            iotsec_buf_reset(out);
            IOTSEC_BAIL(IOTSEC_ERR_TOO_LARGE, "%s: file exceeds the limit of %zu bytes", path, max);
        }
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_file(const char *path, size_t max, bool private_only,
                               struct iotsec_buf *out)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            IOTSEC_BAIL(IOTSEC_ERR_NOT_FOUND, "%s: no such file", path);
        if (errno == ELOOP)
            IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "%s: is a symbolic link; refusing to follow it",
                        path);
        IOTSEC_BAIL(IOTSEC_ERR_IO, "%s: %s", path, strerror(errno));
    }
    iotsec_result r = read_fd(fd, path, max, private_only, out);
    close(fd);
    return r;
}

iotsec_result iotsec_file_read(const char *path, size_t max, struct iotsec_buf *out)
{
    return read_file(path, max, false, out);
}

iotsec_result iotsec_file_read_private(const char *path, size_t max, struct iotsec_buf *out)
{
    return read_file(path, max, true, out);
}

static iotsec_result write_all(int fd, const char *path, struct iotsec_slice data)
{
    while (data.len > 0) {
        ssize_t n = write(fd, data.ptr, data.len);
        if (n < 0 && errno == EINTR)
            continue;
        IOTSEC_ENSURE(n > 0, IOTSEC_ERR_IO, "%s: write: %s", path, strerror(errno));
        data.ptr += n;
        data.len -= (size_t)n;
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result fsync_dir_of(const char *path)
{
    char copy[PATH_MAX];
    IOTSEC_ENSURE(strlen(path) < sizeof(copy), IOTSEC_ERR_INVALID_ARG, "%s: path too long", path);
    strcpy(copy, path);
    const char *dir = dirname(copy);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    IOTSEC_ENSURE(dfd >= 0, IOTSEC_ERR_IO, "%s: %s", dir, strerror(errno));
    int rc = fsync(dfd);
    int err = errno;
    close(dfd);
    IOTSEC_ENSURE(rc == 0, IOTSEC_ERR_IO, "%s: fsync: %s", dir, strerror(err));
    return IOTSEC_RESULT_OK;
}

static iotsec_result write_temp(int fd, const char *tmp, struct iotsec_slice data, mode_t mode)
{
    IOTSEC_ENSURE(fchmod(fd, mode) == 0, IOTSEC_ERR_IO, "%s: chmod: %s", tmp, strerror(errno));
    IOTSEC_GUARD(write_all(fd, tmp, data));
    IOTSEC_ENSURE(fsync(fd) == 0, IOTSEC_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_file_write_atomic(const char *path, struct iotsec_slice data, mode_t mode)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    IOTSEC_ENSURE(n > 0 && (size_t)n < sizeof(tmp), IOTSEC_ERR_INVALID_ARG, "%s: path too long",
                  path);

    int fd = mkostemp(tmp, O_CLOEXEC);
    IOTSEC_ENSURE(fd >= 0, IOTSEC_ERR_IO, "%s: cannot create a temporary file: %s", path,
                  strerror(errno));
    iotsec_result r = write_temp(fd, tmp, data, mode);
    if (close(fd) != 0 && iotsec_ok(r)) {
        iotsec_error_set(IOTSEC_ERR_IO, "%s: close: %s", tmp, strerror(errno));
        r = IOTSEC_RESULT_ERR;
    }
    if (iotsec_ok(r) && rename(tmp, path) != 0) {
        iotsec_error_set(IOTSEC_ERR_IO, "%s: rename: %s", path, strerror(errno));
        r = IOTSEC_RESULT_ERR;
    }
    if (!iotsec_ok(r)) {
        unlink(tmp);
        return r;
    }
    return fsync_dir_of(path);
}

bool iotsec_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}
