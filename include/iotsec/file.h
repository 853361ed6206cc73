/*
 * Files that hold secrets or must survive a crash.
 *
 * Reading is bounded (a maximum size, checked against fstat and against what is actually
 * read) and refuses symbolic links (O_NOFOLLOW) and anything that is not a regular file.
 *
 * Writing is atomic: the data goes to a fresh temporary file in the same directory,
 * created with the final mode, then fsync(file), rename() over the target, fsync(dir).
 * A crash at any point leaves either the old file or the new one under the name, never a
 * mixture; at worst a stale temporary "<name>.tmp.XXXXXX" is left beside it.
 */
#ifndef IOTSEC_FILE_H
#define IOTSEC_FILE_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <stdbool.h>
#include <sys/types.h>

/* Appends the whole file to out. A file larger than max is IOTSEC_ERR_TOO_LARGE, a missing
 * one IOTSEC_ERR_NOT_FOUND; messages name the path. */
IOTSEC_MUST_CHECK iotsec_result iotsec_file_read(const char *path, size_t max,
                                                 struct iotsec_buf *out);

/* Like iotsec_file_read, and also refuses a file that group or others may read
 * (IOTSEC_ERR_PERMISSION): for passphrase, PIN and key files. */
IOTSEC_MUST_CHECK iotsec_result iotsec_file_read_private(const char *path, size_t max,
                                                         struct iotsec_buf *out);

/* Atomically replaces path with data; the new file has the given mode (e.g. 0600). */
IOTSEC_MUST_CHECK iotsec_result iotsec_file_write_atomic(const char *path, struct iotsec_slice data,
                                                         mode_t mode);

bool iotsec_file_exists(const char *path);

#endif
