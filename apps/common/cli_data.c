/*
 * The data directory every command works on: --data DIR, else $IOTSEC_DATA, else ./var.
 *
 * It holds the vault (DIR/vault), the CA certificate and CRL (DIR/ca.crt, DIR/ca.crl) and
 * the store (DIR/store.db). The directory is private to its owner: it is created with
 * mode 0700, and an existing one that group or other may write is refused, since anyone
 * who can replace ca.crt there chooses whom the platform trusts.
 */
#include "cli.h"

#include "iotsec/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *cli_data_dir(const char *option)
{
    if (option != NULL && option[0] != '\0')
        return option;
    const char *env = getenv("IOTSEC_DATA");
    if (env != NULL && env[0] != '\0')
        return env;
    return CLI_DEFAULT_DATA_DIR;
}

iotsec_result cli_data_path(const char *dir, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    IOTSEC_ENSURE(n >= 0 && (size_t)n < size, IOTSEC_ERR_TOO_LARGE,
                  "data directory path '%s' is too long", dir);
    return IOTSEC_RESULT_OK;
}

iotsec_result cli_data_prepare(const char *dir)
{
    IOTSEC_ENSURE(mkdir(dir, 0700) == 0 || errno == EEXIST, IOTSEC_ERR_IO,
                  "data directory %s: cannot create: %s", dir, strerror(errno));
    struct stat st;
    IOTSEC_ENSURE(stat(dir, &st) == 0, IOTSEC_ERR_IO, "data directory %s: %s", dir,
                  strerror(errno));
    IOTSEC_ENSURE(S_ISDIR(st.st_mode), IOTSEC_ERR_INVALID_ARG, "data directory %s: not a directory",
                  dir);
    IOTSEC_ENSURE((st.st_mode & (S_IWGRP | S_IWOTH)) == 0, IOTSEC_ERR_PERMISSION,
                  "data directory %s: group or others may write to it (mode %03o); chmod go-w it",
                  dir, (unsigned)(st.st_mode & 0777));
    return IOTSEC_RESULT_OK;
}

iotsec_result cli_open_store(const char *dir, struct iotsec_store **out)
{
    char path[CLI_PATH_MAX];
    IOTSEC_GUARD(cli_data_prepare(dir));
    IOTSEC_GUARD(cli_data_path(dir, "store.db", path, sizeof(path)));
    return iotsec_store_open(path, out);
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
