/*
 * `iotsec hsm`: keys inside a PKCS#11 token.
 *
 *   iotsec hsm init-token --so-pin-file FILE       (with --module, --token, --pin-file)
 *   iotsec hsm keygen --label KEY [--type ec|aes]
 *   iotsec hsm sign   --label KEY --in FILE --out SIG
 *   iotsec hsm verify --label KEY --in FILE --sig SIG
 *   iotsec hsm pubkey --label KEY [--out FILE]
 *
 * with --module PATH, --token LABEL and --pin-file FILE (or IOTSEC_PKCS11_MODULE,
 * IOTSEC_HSM_TOKEN, IOTSEC_HSM_PIN_FILE). PINs are read from 0600 files, never argv.
 *
 * Each command is a row in a table saying which options it requires and which it takes;
 * an option a command does not take is a usage error rather than silently ignored, so
 * `iotsec hsm verify --out x` cannot be mistaken for something that wrote x. All checks
 * that need no token happen before the module is loaded.
 */
#include "cli.h"

#include "iotsec/file.h"
#include "iotsec/hsm.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages to sign are read whole; a firmware image is streamed by the firmware module. */
#define HSM_INPUT_MAX ((size_t)64 << 20)
#define HSM_SIG_MAX   1024

/* Options that belong to some commands only, as bits; in the order usage errors name them. */
enum {
    HSM_LABEL = 1 << 0,
    HSM_TYPE = 1 << 1,
    HSM_IN = 1 << 2,
    HSM_OUT = 1 << 3,
    HSM_SIG = 1 << 4,
    HSM_SO_PIN = 1 << 5,
};
static const char *const hsm_option_names[] = {"--label", "--type", "--in",
                                               "--out",   "--sig",  "--so-pin-file"};

struct hsm_opts {
    const char *module;
    const char *token;
    const char *pin_file;
    const char *so_pin_file;
    const char *label;
    const char *type;
    const char *in;
    const char *out;
    const char *sig;
    unsigned given; /* HSM_* bits of the options present */
};

static void hsm_usage(FILE *out)
{
    fprintf(
        out,
        "usage: iotsec hsm <command> [options]\n"
        "\n"
        "  init-token --so-pin-file F            initialise a free slot's token with the\n"
        "                                        label --token, the SO PIN from F and the\n"
        "                                        user PIN from --pin-file\n"
        "  keygen --label KEY [--type ec|aes]    make a key in the token: an EC P-256 key\n"
        "                                        pair (default) or an AES-256 key for\n"
        "                                        wrapping a vault's data key\n"
        "  sign --label KEY --in FILE --out SIG  ECDSA P-256 / SHA-256 signature of FILE (DER)\n"
        "  verify --label KEY --in FILE --sig SIG\n"
        "                                        check a signature with the token's public\n"
        "                                        key: \"signature OK\" or exit 1\n"
        "  pubkey --label KEY [--out FILE]       the public key as PEM (stdout by default)\n"
        "\n"
        "token options:\n"
        "  --module PATH     PKCS#11 module (default $IOTSEC_PKCS11_MODULE)\n"
        "  --token LABEL     token label (default $IOTSEC_HSM_TOKEN)\n"
        "  --pin-file FILE   user PIN, mode 0600 (default $IOTSEC_HSM_PIN_FILE)\n");
}

static void buf_cleanup(struct iotsec_buf *b)
{
    iotsec_buf_free(b);
}

static void hsm_cleanup(struct iotsec_hsm **hsm)
{
    iotsec_hsm_close(*hsm);
}

/* The PIN lives in a secret buffer, wiped as soon as the token has it. */
static iotsec_result open_hsm(const struct hsm_opts *o, struct iotsec_hsm **hsm)
{
    struct iotsec_buf pin IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init_secret(&pin);
    IOTSEC_GUARD(cli_read_secret_file(o->pin_file, "PIN file", &pin));
    return iotsec_hsm_open(o->module, o->token, iotsec_buf_slice(&pin), hsm);
}

static iotsec_result write_output(const char *path, struct iotsec_slice data)
{
    if (path != NULL)
        return iotsec_file_write_atomic(path, data, 0644); /* public: signature, public key */
    IOTSEC_ENSURE(fwrite(data.ptr, 1, data.len, stdout) == data.len && fflush(stdout) == 0,
                  IOTSEC_ERR_IO, "hsm: cannot write to stdout");
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_init_token(const struct hsm_opts *o)
{
    struct iotsec_buf so_pin IOTSEC_DEFER(buf_cleanup);
    struct iotsec_buf pin IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init_secret(&so_pin);
    iotsec_buf_init_secret(&pin);
    IOTSEC_GUARD(cli_read_secret_file(o->so_pin_file, "SO PIN file", &so_pin));
    IOTSEC_GUARD(cli_read_secret_file(o->pin_file, "PIN file", &pin));
    IOTSEC_GUARD(iotsec_hsm_init_token(o->module, o->token, iotsec_buf_slice(&so_pin),
                                       iotsec_buf_slice(&pin)));
    fprintf(stderr, "iotsec: hsm: token '%s' initialised\n", o->token);
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_keygen(const struct hsm_opts *o)
{
    bool aes = o->type != NULL && strcmp(o->type, "aes") == 0;
    struct iotsec_hsm *hsm IOTSEC_DEFER(hsm_cleanup) = NULL;
    IOTSEC_GUARD(open_hsm(o, &hsm));
    IOTSEC_GUARD(aes ? iotsec_hsm_keygen_aes(hsm, o->label) : iotsec_hsm_keygen_ec(hsm, o->label));
    fprintf(stderr, "iotsec: hsm: %s key '%s' generated in the token\n", aes ? "aes" : "ec",
            o->label);
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_sign(const struct hsm_opts *o)
{
    struct iotsec_buf in IOTSEC_DEFER(buf_cleanup) = {0};
    struct iotsec_buf sig IOTSEC_DEFER(buf_cleanup) = {0};
    struct iotsec_hsm *hsm IOTSEC_DEFER(hsm_cleanup) = NULL;
    IOTSEC_GUARD(iotsec_file_read(o->in, HSM_INPUT_MAX, &in));
    IOTSEC_GUARD(open_hsm(o, &hsm));
    IOTSEC_GUARD(iotsec_hsm_sign(hsm, o->label, iotsec_buf_slice(&in), &sig));
    return write_output(o->out, iotsec_buf_slice(&sig));
}

static iotsec_result do_verify(const struct hsm_opts *o)
{
    struct iotsec_buf in IOTSEC_DEFER(buf_cleanup) = {0};
    struct iotsec_buf sig IOTSEC_DEFER(buf_cleanup) = {0};
    struct iotsec_hsm *hsm IOTSEC_DEFER(hsm_cleanup) = NULL;
    IOTSEC_GUARD(iotsec_file_read(o->in, HSM_INPUT_MAX, &in));
    IOTSEC_GUARD(iotsec_file_read(o->sig, HSM_SIG_MAX, &sig));
    IOTSEC_GUARD(open_hsm(o, &hsm));
    IOTSEC_GUARD(iotsec_hsm_verify(hsm, o->label, iotsec_buf_slice(&in), iotsec_buf_slice(&sig)));
    printf("signature OK\n");
    return IOTSEC_RESULT_OK;
}

static iotsec_result do_pubkey(const struct hsm_opts *o)
{
    struct iotsec_buf pem IOTSEC_DEFER(buf_cleanup) = {0};
    struct iotsec_hsm *hsm IOTSEC_DEFER(hsm_cleanup) = NULL;
    IOTSEC_GUARD(open_hsm(o, &hsm));
    IOTSEC_GUARD(iotsec_hsm_pubkey_pem(hsm, o->label, &pem));
    return write_output(o->out, iotsec_buf_slice(&pem));
}

static const struct hsm_command {
    const char *name;
    unsigned required;
    unsigned optional;
    iotsec_result (*run)(const struct hsm_opts *o);
} hsm_commands[] = {
    {"init-token", HSM_SO_PIN, 0, do_init_token},
    {"keygen", HSM_LABEL, HSM_TYPE, do_keygen},
    {"sign", HSM_LABEL | HSM_IN | HSM_OUT, 0, do_sign},
    {"verify", HSM_LABEL | HSM_IN | HSM_SIG, 0, do_verify},
    {"pubkey", HSM_LABEL, HSM_OUT, do_pubkey},
};

static const struct hsm_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(hsm_commands) / sizeof(hsm_commands[0]); i++) {
        if (strcmp(hsm_commands[i].name, name) == 0)
            return &hsm_commands[i];
    }
    return NULL;
}

/* The first option the command needs but lacks, then the first it does not take. */
static int check_options(const struct hsm_command *cmd, const struct hsm_opts *o)
{
    for (size_t i = 0; i < sizeof(hsm_option_names) / sizeof(hsm_option_names[0]); i++) {
        unsigned bit = 1u << i;
        if ((cmd->required & bit) != 0 && (o->given & bit) == 0)
            return cli_usage_error("hsm %s: missing %s", cmd->name, hsm_option_names[i]);
    }
    for (size_t i = 0; i < sizeof(hsm_option_names) / sizeof(hsm_option_names[0]); i++) {
        unsigned bit = 1u << i;
        if ((o->given & bit) != 0 && ((cmd->required | cmd->optional) & bit) == 0)
            return cli_usage_error("hsm %s: %s does not apply (see --help)", cmd->name,
                                   hsm_option_names[i]);
    }
    if (o->type != NULL && strcmp(o->type, "ec") != 0 && strcmp(o->type, "aes") != 0)
        return cli_usage_error("hsm keygen: --type must be ec or aes, not '%s'", o->type);
    return CLI_EXIT_OK;
}

/* An empty variable counts as unset, like an absent one. */
static const char *env_or(const char *value, const char *env)
{
    if (value != NULL)
        return value;
    const char *v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The token options, from argv or the environment; without them nothing can be done. */
static int resolve_token_options(const struct hsm_command *cmd, struct hsm_opts *o)
{
    o->module = env_or(o->module, "IOTSEC_PKCS11_MODULE");
    o->token = env_or(o->token, "IOTSEC_HSM_TOKEN");
    o->pin_file = env_or(o->pin_file, "IOTSEC_HSM_PIN_FILE");
    if (o->module == NULL)
        return cli_usage_error("hsm %s: give --module or set IOTSEC_PKCS11_MODULE", cmd->name);
    if (o->token == NULL)
        return cli_usage_error("hsm %s: give --token or set IOTSEC_HSM_TOKEN", cmd->name);
    if (o->pin_file == NULL)
        return cli_usage_error("hsm %s: give --pin-file or set IOTSEC_HSM_PIN_FILE", cmd->name);
    return CLI_EXIT_OK;
}

int cmd_hsm(int argc, char **argv)
{
    enum {
        OPT_MODULE = 1000,
        OPT_TOKEN,
        OPT_PIN,
        OPT_SO_PIN,
        OPT_LABEL,
        OPT_TYPE,
        OPT_IN,
        OPT_OUT,
        OPT_SIG,
        OPT_HELP
    };
    static const struct option options[] = {
        {"module", required_argument, NULL, OPT_MODULE},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"pin-file", required_argument, NULL, OPT_PIN},
        {"so-pin-file", required_argument, NULL, OPT_SO_PIN},
        {"label", required_argument, NULL, OPT_LABEL},
        {"type", required_argument, NULL, OPT_TYPE},
        {"in", required_argument, NULL, OPT_IN},
        {"out", required_argument, NULL, OPT_OUT},
        {"sig", required_argument, NULL, OPT_SIG},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (cli_require_exact_options(argc, argv, options, "hsm") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    struct hsm_opts o = {0};
    int c, index = -1;
    optind = 1;
    opterr = 0;
    /* The leading ':' makes a missing value ':' and an unknown option '?'. */
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (optarg != NULL && optarg[0] == '\0')
            return cli_usage_error("hsm: option '--%s' needs a value", options[index].name);
        switch (c) {
        case OPT_MODULE:
            o.module = optarg;
            break;
        case OPT_TOKEN:
            o.token = optarg;
            break;
        case OPT_PIN:
            o.pin_file = optarg;
            break;
        case OPT_SO_PIN:
            o.so_pin_file = optarg;
            o.given |= HSM_SO_PIN;
            break;
        case OPT_LABEL:
            o.label = optarg;
            o.given |= HSM_LABEL;
            break;
        case OPT_TYPE:
            o.type = optarg;
            o.given |= HSM_TYPE;
            break;
        case OPT_IN:
            o.in = optarg;
            o.given |= HSM_IN;
            break;
        case OPT_OUT:
            o.out = optarg;
            o.given |= HSM_OUT;
            break;
        case OPT_SIG:
            o.sig = optarg;
            o.given |= HSM_SIG;
            break;
        case OPT_HELP:
        case 'h':
            hsm_usage(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage_error("hsm: option '%s' needs a value (see --help)", argv[optind - 1]);
        default:
            if (optopt != 0)
                return cli_usage_error("hsm: unknown option '-%c' (see --help)", optopt);
            return cli_usage_error("hsm: unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("hsm: missing command: init-token, keygen, sign, verify or pubkey");
    const struct hsm_command *cmd = find_command(argv[optind]);
    if (cmd == NULL)
        return cli_usage_error(
            "hsm: unknown command '%s' (init-token, keygen, sign, verify, pubkey)", argv[optind]);
    if (optind + 1 < argc)
        return cli_usage_error("hsm %s: unexpected argument '%s'", cmd->name, argv[optind + 1]);

    int usage = check_options(cmd, &o);
    if (usage == CLI_EXIT_OK)
        usage = resolve_token_options(cmd, &o);
    if (usage != CLI_EXIT_OK)
        return usage;
    return iotsec_ok(cmd->run(&o)) ? CLI_EXIT_OK : cli_fail();
}
