/*
 * Pieces shared by the CLI subcommands: error printing and reading secrets.
 *
 * Secrets come only from places that do not leak them to other users of the machine:
 * a private file, the controlling terminal with echo off, or stdin. argv is readable by
 * everyone through /proc/<pid>/cmdline, so no secret is ever accepted there.
 */
#include "cli.h"

#include "iotsec/file.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int cli_fail(void)
{
    fprintf(stderr, "iotsec: %s\n", iotsec_error_message());
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("iotsec: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_require_exact_options(int argc, char **argv, const struct option *options,
                              const char *command)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            break;
        if (strncmp(arg, "--", 2) != 0)
            continue;
        size_t len = strcspn(arg + 2, "=");
        bool known = false;
        for (const struct option *o = options; o->name != NULL; o++) {
            if (strlen(o->name) == len && strncmp(o->name, arg + 2, len) == 0) {
                known = true;
                /* An option with an argument consumes the next word: skip it. */
                if (o->has_arg == required_argument && arg[2 + len] != '=')
                    i++;
                break;
            }
        }
        if (!known)
            return cli_usage_error("%s: unknown option '%.*s' (see --help)", command, (int)len + 2,
                                   arg);
    }
    return CLI_EXIT_OK;
}

/* One trailing newline (LF or CRLF) is how editors and `echo` end a line, not part of
 * the secret. */
static void drop_trailing_newline(struct iotsec_buf *b)
{
    if (b->len > 0 && b->ptr[b->len - 1] == '\n')
        b->ptr[--b->len] = 0;
    if (b->len > 0 && b->ptr[b->len - 1] == '\r')
        b->ptr[--b->len] = 0;
}

iotsec_result cli_read_secret_file(const char *path, const char *what, struct iotsec_buf *secret)
{
    size_t start = secret->len;
    if (!iotsec_ok(iotsec_file_read_private(path, CLI_SECRET_MAX, secret))) {
        iotsec_error_prefix("%s ", what);
        return IOTSEC_RESULT_ERR;
    }
    drop_trailing_newline(secret);
    IOTSEC_ENSURE(secret->len > start, IOTSEC_ERR_INVALID_ARG, "%s %s: is empty", what, path);
    return IOTSEC_RESULT_OK;
}

iotsec_result cli_prompt_secret(const char *prompt, struct iotsec_buf *secret)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    IOTSEC_ENSURE(fd >= 0, IOTSEC_ERR_NOT_FOUND,
                  "no terminal to prompt on; give the secret in a file instead");
    struct termios saved, quiet;
    bool restore = tcgetattr(fd, &saved) == 0;
    if (restore) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* The prompt is a courtesy; reading still works without it. */
    }

    iotsec_result r = IOTSEC_RESULT_OK;
    for (;;) {
        uint8_t c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == '\n')
            break;
        if (!iotsec_ok(iotsec_buf_append_u8(secret, c)) || secret->len > CLI_SECRET_MAX) {
            iotsec_error_set(IOTSEC_ERR_TOO_LARGE, "secret is longer than %d bytes",
                             CLI_SECRET_MAX);
            r = IOTSEC_RESULT_ERR;
            break;
        }
    }
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &saved);
    if (write(fd, "\n", 1) < 0) {
        /* Cosmetic only. */
    }
    close(fd);
    IOTSEC_GUARD(r);
    drop_trailing_newline(secret);
    IOTSEC_ENSURE(secret->len > 0, IOTSEC_ERR_INVALID_ARG, "empty secret");
    return IOTSEC_RESULT_OK;
}

iotsec_result cli_read_stdin(size_t max, struct iotsec_buf *out)
{
    size_t start = out->len;
    for (;;) {
        uint8_t *dst;
        IOTSEC_GUARD(iotsec_buf_reserve(out, 4096));
        dst = out->ptr + out->len;
        ssize_t n = read(STDIN_FILENO, dst, 4096);
        if (n < 0 && errno == EINTR)
            continue;
        IOTSEC_ENSURE(n >= 0, IOTSEC_ERR_IO, "stdin: %s", strerror(errno));
        if (n == 0)
            break;
        out->len += (size_t)n;
        IOTSEC_ENSURE(out->len - start <= max, IOTSEC_ERR_TOO_LARGE,
                      "stdin: input exceeds the limit of %zu bytes", max);
    }
    return IOTSEC_RESULT_OK;
}

bool cli_parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}
