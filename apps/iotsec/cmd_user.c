/*
 * `iotsec user`: operator accounts in the store (DIR/store.db of --data DIR).
 *
 *   iotsec user add NAME --role ROLE [--password-file F]
 *   iotsec user passwd NAME [--password-file F]
 *   iotsec user totp NAME [--disable]
 *   iotsec user role NAME ROLE
 *   iotsec user list
 *   iotsec user disable|enable|rm NAME
 *   iotsec user check NAME            (password, then an optional code, on stdin)
 *
 * Passwords never come from argv (anyone on the host can read /proc/PID/cmdline): from a
 * 0600 file, a prompt on the terminal, or stdin for `check`. Secrets this command makes
 * (a one-time password, a TOTP key) go to stdout once and nowhere else; messages go to
 * stderr, so `iotsec user add x --role viewer > otp.txt` captures just the password.
 */
#include "cli.h"

#include "iotsec/crypto.h"
#include "iotsec/operator.h"
#include "iotsec/store.h"
#include "iotsec/time.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* A password line, a newline, a code line, a newline: anything longer is not a login. */
#define USER_CHECK_INPUT_MAX (IOTSEC_PASSWORD_MAX + IOTSEC_TOTP_DIGITS + 4)

enum {
    USER_ROLE = 1 << 0,
    USER_PASSWORD_FILE = 1 << 1,
    USER_DISABLE = 1 << 2,
};
static const char *const user_option_names[] = {"--role", "--password-file", "--disable"};

struct user_opts {
    const char *data;
    const char *role_name;
    const char *password_file;
    unsigned given;
    const char *name; /* first positional argument */
    const char *arg;  /* second (user role NAME ROLE) */
    enum iotsec_store_role role;
};

static void user_usage(FILE *out)
{
    fprintf(out,
            "usage: iotsec user <command> [options]\n"
            "\n"
            "  add NAME --role ROLE [--password-file F]\n"
            "                        create an account (ROLE: admin, operator, viewer); without\n"
            "                        a file, a random one-time password is printed once and\n"
            "                        must be changed at first login\n"
            "  passwd NAME [--password-file F]\n"
            "                        set a new password (prompted twice on the terminal when no\n"
            "                        file is given)\n"
            "  totp NAME             enrol a new TOTP key: prints its otpauth:// URI and base32\n"
            "                        key once (replaces any previous key)\n"
            "  totp NAME --disable   remove TOTP from the account\n"
            "  role NAME ROLE        change the role\n"
            "  list                  list accounts (never hashes or keys)\n"
            "  disable NAME          refuse logins; enable NAME lets them in again\n"
            "  enable NAME\n"
            "  rm NAME               delete the account\n"
            "  check NAME            try a login: reads the password and, on a second line,\n"
            "                        the TOTP code from stdin\n"
            "\n"
            "options:\n"
            "  --data DIR            data directory (default $IOTSEC_DATA, else ./var)\n"
            "  --help                this text\n"
            "\n"
            "Passwords are 12 to 1024 bytes. Password files must be mode 0600 or stricter.\n"
            "The last enabled admin cannot be demoted, disabled or removed.\n");
}

static void buf_cleanup(struct iotsec_buf *b)
{
    iotsec_buf_free(b);
}

static void store_cleanup(struct iotsec_store **s)
{
    iotsec_store_close(*s);
}

static void auth_cleanup(struct iotsec_operator_auth **a)
{
    iotsec_operator_auth_free(*a);
}

static const struct iotsec_password_params *params(void)
{
    static const struct iotsec_password_params p = IOTSEC_PASSWORD_PARAMS_DEFAULT;
    return &p;
}

static iotsec_result open_store(const struct user_opts *o, struct iotsec_store **s)
{
    return cli_open_store(cli_data_dir(o->data), s);
}

static iotsec_result write_stdout(struct iotsec_slice data)
{
    IOTSEC_ENSURE(fwrite(data.ptr, 1, data.len, stdout) == data.len && fputc('\n', stdout) != EOF &&
                      fflush(stdout) == 0,
                  IOTSEC_ERR_IO, "user: cannot write to stdout");
    return IOTSEC_RESULT_OK;
}

/* A new password from --password-file, or typed twice on the terminal. */
static iotsec_result read_new_password(const struct user_opts *o, struct iotsec_buf *pw)
{
    if (o->password_file != NULL) {
        IOTSEC_GUARD(cli_read_secret_file(o->password_file, "password file", pw));
        return iotsec_password_check_length(iotsec_buf_slice(pw));
    }
    struct iotsec_buf again IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init_secret(&again);
    if (!iotsec_ok(cli_prompt_secret("New password: ", pw))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG,
                        "user: no terminal to prompt on; give --password-file");
        return IOTSEC_RESULT_ERR;
    }
    IOTSEC_GUARD(iotsec_password_check_length(iotsec_buf_slice(pw)));
    IOTSEC_GUARD(cli_prompt_secret("Again: ", &again));
    IOTSEC_ENSURE(iotsec_ct_equal(iotsec_buf_slice(pw), iotsec_buf_slice(&again)),
                  IOTSEC_ERR_INVALID_ARG, "user: the two passwords differ");
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_add(const struct user_opts *o)
{
    struct iotsec_buf pw IOTSEC_DEFER(buf_cleanup);
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    iotsec_buf_init_secret(&pw);
    bool one_time = o->password_file == NULL;
    if (one_time)
        IOTSEC_GUARD(iotsec_password_generate(&pw));
    else
        IOTSEC_GUARD(read_new_password(o, &pw));
    IOTSEC_GUARD(open_store(o, &s));
    IOTSEC_GUARD(iotsec_operator_create(s, params(), o->name, o->role, iotsec_buf_slice(&pw),
                                        one_time, cli_now_ms()));
    fprintf(stderr, "iotsec: user: %s created (%s)%s\n", o->name, iotsec_store_role_name(o->role),
            one_time ? "; its one-time password is on stdout, shown only now" : "");
    if (one_time)
        IOTSEC_GUARD(write_stdout(iotsec_buf_slice(&pw)));
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_passwd(const struct user_opts *o)
{
    struct iotsec_buf pw IOTSEC_DEFER(buf_cleanup);
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    iotsec_buf_init_secret(&pw);
    IOTSEC_GUARD(open_store(o, &s));
    /* Say "no such user" before asking for a password nobody will use. */
    struct iotsec_store_user u = {0};
    IOTSEC_GUARD(iotsec_store_user_get(s, o->name, &u));
    iotsec_store_user_clear(&u);
    IOTSEC_GUARD(read_new_password(o, &pw));
    IOTSEC_GUARD(iotsec_operator_set_password(s, params(), o->name, iotsec_buf_slice(&pw), false,
                                              cli_now_ms()));
    fprintf(stderr, "iotsec: user: password of %s changed\n", o->name);
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_totp(const struct user_opts *o)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(open_store(o, &s));
    if ((o->given & USER_DISABLE) != 0) {
        IOTSEC_GUARD(iotsec_operator_totp_remove(s, o->name, cli_now_ms()));
        fprintf(stderr, "iotsec: user: TOTP removed from %s\n", o->name);
        return IOTSEC_RESULT_OK;
    }
    uint8_t secret[IOTSEC_TOTP_SECRET_LEN];
    struct iotsec_buf out IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init_secret(&out);
    IOTSEC_GUARD(iotsec_operator_totp_enrol(s, o->name, cli_now_ms(), secret));
    struct iotsec_slice key = iotsec_slice_make(secret, sizeof(secret));
    iotsec_result r = iotsec_totp_uri(key, o->name, &out);
    if (iotsec_ok(r))
        r = iotsec_buf_append_u8(&out, '\n');
    if (iotsec_ok(r))
        r = iotsec_base32_encode(key, &out);
    iotsec_wipe(secret, sizeof(secret));
    IOTSEC_GUARD(r);
    fprintf(stderr,
            "iotsec: user: TOTP enrolled for %s; add the key to an authenticator app "
            "now, it is not shown again\n",
            o->name);
    return write_stdout(iotsec_buf_slice(&out));
}

static iotsec_result do_role(const struct user_opts *o)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(open_store(o, &s));
    IOTSEC_GUARD(iotsec_operator_set_role(s, o->name, o->role, cli_now_ms()));
    fprintf(stderr, "iotsec: user: %s is now %s\n", o->name, iotsec_store_role_name(o->role));
    return IOTSEC_RESULT_OK;
}

static iotsec_result set_disabled(const struct user_opts *o, bool disabled)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(open_store(o, &s));
    IOTSEC_GUARD(iotsec_operator_set_disabled(s, o->name, disabled, cli_now_ms()));
    fprintf(stderr, "iotsec: user: %s %s\n", o->name, disabled ? "disabled" : "enabled");
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_disable(const struct user_opts *o)
{
    return set_disabled(o, true);
}

static iotsec_result do_enable(const struct user_opts *o)
{
    return set_disabled(o, false);
}

static iotsec_result do_rm(const struct user_opts *o)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(open_store(o, &s));
    IOTSEC_GUARD(iotsec_operator_delete(s, o->name));
    fprintf(stderr, "iotsec: user: %s removed\n", o->name);
    return IOTSEC_RESULT_OK;
}

static void print_user(const struct iotsec_store_user *u)
{
    char created[IOTSEC_TIME_STR_MAX] = "-";
    struct iotsec_time t = {.sec = u->created_at / 1000, .nsec = 0};
    if (!iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_SECONDS, created)))
        snprintf(created, sizeof(created), "-");
    printf("%-24s %-8s %-8s %-4s %-9s %s\n", u->name, iotsec_store_role_name(u->role),
           u->disabled ? "disabled" : "enabled", u->totp_secret_len > 0 ? "yes" : "no",
           u->must_change_password ? "one-time" : "set", created);
}

static iotsec_result do_list(const struct user_opts *o)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(open_store(o, &s));
    char after[IOTSEC_STORE_USER_MAX + 1] = "";
    printf("%-24s %-8s %-8s %-4s %-9s %s\n", "NAME", "ROLE", "STATUS", "TOTP", "PASSWORD",
           "CREATED");
    for (;;) {
        struct iotsec_store_user_list list = {0};
        struct iotsec_store_page page = {.after = after, .limit = IOTSEC_STORE_LIST_MAX};
        IOTSEC_GUARD(iotsec_store_user_list(s, &page, &list));
        for (size_t i = 0; i < list.count; i++)
            print_user(&list.items[i]);
        bool more = list.more && list.count > 0;
        if (more)
            snprintf(after, sizeof(after), "%s", list.items[list.count - 1].name);
        iotsec_store_user_list_free(&list);
        if (!more)
            break;
    }
    IOTSEC_ENSURE(fflush(stdout) == 0, IOTSEC_ERR_IO, "user: cannot write to stdout");
    return IOTSEC_RESULT_OK;
}

/* stdin: "PASSWORD\n" or "PASSWORD\nCODE\n" (final newline optional). */
static iotsec_result split_check_input(struct iotsec_buf *in, struct iotsec_slice *password,
                                       struct iotsec_slice *code)
{
    const uint8_t *nl = memchr(in->ptr, '\n', in->len);
    size_t pw_len = nl != NULL ? (size_t)(nl - in->ptr) : in->len;
    *password = iotsec_slice_make(in->ptr, pw_len);
    *code = iotsec_slice_make(NULL, 0);
    if (nl == NULL)
        return IOTSEC_RESULT_OK;
    size_t rest = in->len - pw_len - 1;
    const uint8_t *start = nl + 1;
    if (rest > 0 && start[rest - 1] == '\n')
        rest--;
    IOTSEC_ENSURE(memchr(start, '\n', rest) == NULL, IOTSEC_ERR_FORMAT,
                  "user check: stdin holds more than a password and a code");
    *code = iotsec_slice_make(start, rest);
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_check(const struct user_opts *o)
{
    struct iotsec_buf in IOTSEC_DEFER(buf_cleanup);
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    struct iotsec_operator_auth *a IOTSEC_DEFER(auth_cleanup) = NULL;
    iotsec_buf_init_secret(&in);
    IOTSEC_GUARD(cli_read_stdin(USER_CHECK_INPUT_MAX, &in));
    struct iotsec_slice password, code;
    IOTSEC_GUARD(split_check_input(&in, &password, &code));
    IOTSEC_GUARD(open_store(o, &s));
    struct iotsec_operator_config cfg = {.params = *params()};
    IOTSEC_GUARD(iotsec_operator_auth_new(&cfg, &a));
    struct iotsec_login_outcome out;
    if (!iotsec_ok(iotsec_operator_login(a, s, o->name, password, code, cli_now_ms(), &out))) {
        /* Like a server, the answer does not say which factor failed. */
        if (iotsec_error_code() == IOTSEC_ERR_AUTH)
            iotsec_error_set(IOTSEC_ERR_AUTH, "user check: login failed");
        return IOTSEC_RESULT_ERR;
    }
    printf("ok: %s, role %s%s\n", o->name, iotsec_store_role_name(out.role),
           out.must_change_password ? ", must change password" : "");
    return IOTSEC_RESULT_OK;
}

static const struct user_command {
    const char *name;
    int args; /* positional arguments after the command */
    unsigned required;
    unsigned optional;
    iotsec_result (*run)(const struct user_opts *o);
} user_commands[] = {
    {"add", 1, USER_ROLE, USER_PASSWORD_FILE, do_add},
    {"passwd", 1, 0, USER_PASSWORD_FILE, do_passwd},
    {"totp", 1, 0, USER_DISABLE, do_totp},
    {"role", 2, 0, 0, do_role},
    {"list", 0, 0, 0, do_list},
    {"disable", 1, 0, 0, do_disable},
    {"enable", 1, 0, 0, do_enable},
    {"rm", 1, 0, 0, do_rm},
    {"check", 1, 0, 0, do_check},
};

static const struct user_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(user_commands) / sizeof(user_commands[0]); i++) {
        if (strcmp(user_commands[i].name, name) == 0)
            return &user_commands[i];
    }
    return NULL;
}

static int check_options(const struct user_command *cmd, struct user_opts *o)
{
    for (size_t i = 0; i < sizeof(user_option_names) / sizeof(user_option_names[0]); i++) {
        unsigned bit = 1u << i;
        if ((cmd->required & bit) != 0 && (o->given & bit) == 0)
            return cli_usage_error("user %s: missing %s", cmd->name, user_option_names[i]);
        if ((o->given & bit) != 0 && ((cmd->required | cmd->optional) & bit) == 0)
            return cli_usage_error("user %s: %s does not apply (see --help)", cmd->name,
                                   user_option_names[i]);
    }
    const char *role = cmd->run == do_role ? o->arg : o->role_name;
    if (role != NULL && !iotsec_ok(iotsec_store_role_parse(role, &o->role)))
        return cli_usage_error("user %s: unknown role '%s' (admin, operator or viewer)", cmd->name,
                               role);
    return CLI_EXIT_OK;
}

int cmd_user(int argc, char **argv)
{
    enum { OPT_DATA = 1000, OPT_ROLE, OPT_PASSWORD_FILE, OPT_DISABLE, OPT_HELP };
    static const struct option options[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"role", required_argument, NULL, OPT_ROLE},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"disable", no_argument, NULL, OPT_DISABLE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (cli_require_exact_options(argc, argv, options, "user") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    struct user_opts o = {0};
    int c, index = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (optarg != NULL && optarg[0] == '\0')
            return cli_usage_error("user: option '--%s' needs a value", options[index].name);
        switch (c) {
        case OPT_DATA:
            o.data = optarg;
            break;
        case OPT_ROLE:
            o.role_name = optarg;
            o.given |= USER_ROLE;
            break;
        case OPT_PASSWORD_FILE:
            o.password_file = optarg;
            o.given |= USER_PASSWORD_FILE;
            break;
        case OPT_DISABLE:
            o.given |= USER_DISABLE;
            break;
        case OPT_HELP:
        case 'h':
            user_usage(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage_error("user: option '%s' needs a value (see --help)",
                                   argv[optind - 1]);
        default:
            if (optopt != 0)
                return cli_usage_error("user: unknown option '-%c' (see --help)", optopt);
            return cli_usage_error("user: unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error(
            "user: missing command: add, passwd, totp, role, list, disable, enable, rm or check");
    const struct user_command *cmd = find_command(argv[optind]);
    if (cmd == NULL)
        return cli_usage_error("user: unknown command '%s' (see --help)", argv[optind]);
    int given = argc - optind - 1;
    if (given < cmd->args)
        return cli_usage_error("user %s: missing %s", cmd->name,
                               given == 0 && cmd->args > 0 ? "NAME" : "ROLE");
    if (given > cmd->args)
        return cli_usage_error("user %s: unexpected argument '%s'", cmd->name,
                               argv[optind + 1 + cmd->args]);
    o.name = cmd->args >= 1 ? argv[optind + 1] : NULL;
    o.arg = cmd->args >= 2 ? argv[optind + 2] : NULL;
    int usage = check_options(cmd, &o);
    if (usage != CLI_EXIT_OK)
        return usage;
    return iotsec_ok(cmd->run(&o)) ? CLI_EXIT_OK : cli_fail();
}
