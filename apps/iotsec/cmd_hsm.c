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
 * IOTSEC_HSM_TOKEN, IOTSEC_HSM_PIN_FILE). The PIN is read from a 0600 file, never argv.
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
};

static void hsm_usage(FILE *out)
{
    fprintf(out,
            "usage: iotsec hsm <command> --label KEY [options]\n"
            "\n"
            "  init-token --so-pin-file F    initialise a free slot's token with the label\n"
            "                                --token, SO PIN from F and user PIN from --pin-file\n"
            "  keygen [--type ec|aes]        make a key in the token: an EC P-256 key pair\n"
            "                                (default) or an AES-256 key for vault wrapping\n"
            "  sign --in FILE --out SIG      ECDSA P-256 / SHA-256 signature of FILE (DER)\n"
            "  verify --in FILE --sig SIG    check a signature with the token's public key\n"
            "  pubkey [--out FILE]           the public key as PEM (stdout by default)\n"
            "\n"
            "token options:\n"
            "  --module PATH     PKCS#11 module (default $IOTSEC_PKCS11_MODULE)\n"
            "  --token LABEL     token label (default $IOTSEC_HSM_TOKEN)\n"
            "  --pin-file FILE   user PIN, mode 0600 (default $IOTSEC_HSM_PIN_FILE)\n");
}

static iotsec_result open_hsm(const struct hsm_opts *o, struct iotsec_hsm **hsm)
{
    IOTSEC_ENSURE(o->module != NULL, IOTSEC_ERR_INVALID_ARG,
                  "hsm: give --module or set IOTSEC_PKCS11_MODULE");
    IOTSEC_ENSURE(o->token != NULL, IOTSEC_ERR_INVALID_ARG,
                  "hsm: give --token or set IOTSEC_HSM_TOKEN");
    IOTSEC_ENSURE(o->pin_file != NULL, IOTSEC_ERR_INVALID_ARG,
                  "hsm: give --pin-file or set IOTSEC_HSM_PIN_FILE");
    struct iotsec_buf pin;
    iotsec_buf_init_secret(&pin);
    iotsec_result r = cli_read_secret_file(o->pin_file, "PIN file", &pin);
    if (iotsec_ok(r))
        r = iotsec_hsm_open(o->module, o->token, iotsec_buf_slice(&pin), hsm);
    iotsec_buf_free(&pin);
    return r;
}

static iotsec_result init_token(const struct hsm_opts *o)
{
    IOTSEC_ENSURE(o->module != NULL && o->token != NULL && o->pin_file != NULL,
                  IOTSEC_ERR_INVALID_ARG,
                  "hsm init-token: needs --module, --token and --pin-file (or their variables)");
    struct iotsec_buf so_pin, pin;
    iotsec_buf_init_secret(&so_pin);
    iotsec_buf_init_secret(&pin);
    iotsec_result r = cli_read_secret_file(o->so_pin_file, "SO PIN file", &so_pin);
    if (iotsec_ok(r))
        r = cli_read_secret_file(o->pin_file, "PIN file", &pin);
    if (iotsec_ok(r))
        r = iotsec_hsm_init_token(o->module, o->token, iotsec_buf_slice(&so_pin),
                                  iotsec_buf_slice(&pin));
    if (iotsec_ok(r))
        fprintf(stderr, "iotsec: hsm: token '%s' initialised\n", o->token);
    iotsec_buf_free(&so_pin);
    iotsec_buf_free(&pin);
    return r;
}

static iotsec_result write_output(const char *path, struct iotsec_slice data, mode_t mode)
{
    if (path == NULL) {
        IOTSEC_ENSURE(fwrite(data.ptr, 1, data.len, stdout) == data.len && fflush(stdout) == 0,
                      IOTSEC_ERR_IO, "hsm: cannot write to stdout");
        return IOTSEC_RESULT_OK;
    }
    return iotsec_file_write_atomic(path, data, mode);
}

static iotsec_result run(const char *cmd, const struct hsm_opts *o, struct iotsec_hsm *hsm)
{
    struct iotsec_buf in = {0}, out = {0}, sig = {0};
    iotsec_result r = IOTSEC_RESULT_OK;
    if (strcmp(cmd, "keygen") == 0) {
        if (o->type == NULL || strcmp(o->type, "ec") == 0)
            r = iotsec_hsm_keygen_ec(hsm, o->label);
        else
            r = iotsec_hsm_keygen_aes(hsm, o->label);
        if (iotsec_ok(r))
            fprintf(stderr, "iotsec: hsm: %s key '%s' generated in the token\n",
                    o->type == NULL ? "ec" : o->type, o->label);
    } else if (strcmp(cmd, "pubkey") == 0) {
        r = iotsec_hsm_pubkey_pem(hsm, o->label, &out);
        if (iotsec_ok(r))
            r = write_output(o->out, iotsec_buf_slice(&out), 0644);
    } else if (strcmp(cmd, "sign") == 0) {
        r = iotsec_file_read(o->in, HSM_INPUT_MAX, &in);
        if (iotsec_ok(r))
            r = iotsec_hsm_sign(hsm, o->label, iotsec_buf_slice(&in), &out);
        if (iotsec_ok(r))
            r = write_output(o->out, iotsec_buf_slice(&out), 0644);
    } else {
        r = iotsec_file_read(o->in, HSM_INPUT_MAX, &in);
        if (iotsec_ok(r))
            r = iotsec_file_read(o->sig, HSM_SIG_MAX, &sig);
        if (iotsec_ok(r))
            r = iotsec_hsm_verify(hsm, o->label, iotsec_buf_slice(&in), iotsec_buf_slice(&sig));
        if (iotsec_ok(r))
            printf("signature OK\n");
    }
    iotsec_buf_free(&in);
    iotsec_buf_free(&out);
    iotsec_buf_free(&sig);
    return r;
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
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
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
            break;
        case OPT_LABEL:
            o.label = optarg;
            break;
        case OPT_TYPE:
            o.type = optarg;
            break;
        case OPT_IN:
            o.in = optarg;
            break;
        case OPT_OUT:
            o.out = optarg;
            break;
        case OPT_SIG:
            o.sig = optarg;
            break;
        case OPT_HELP:
            hsm_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("hsm: option '%s' needs a value (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("hsm: missing command: keygen, sign, verify or pubkey");
    const char *cmd = argv[optind++];
    if (optind < argc)
        return cli_usage_error("hsm %s: unexpected argument '%s'", cmd, argv[optind]);
    bool init = strcmp(cmd, "init-token") == 0;
    bool known = init || strcmp(cmd, "keygen") == 0 || strcmp(cmd, "sign") == 0 ||
                 strcmp(cmd, "verify") == 0 || strcmp(cmd, "pubkey") == 0;
    if (!known)
        return cli_usage_error(
            "hsm: unknown command '%s' (init-token, keygen, sign, verify, pubkey)", cmd);
    if (init && o.so_pin_file == NULL)
        return cli_usage_error("hsm init-token: missing --so-pin-file");
    if (!init && o.label == NULL)
        return cli_usage_error("hsm %s: missing --label", cmd);
    if (o.type != NULL && strcmp(o.type, "ec") != 0 && strcmp(o.type, "aes") != 0)
        return cli_usage_error("hsm keygen: --type must be ec or aes, not '%s'", o.type);
    if ((strcmp(cmd, "sign") == 0 || strcmp(cmd, "verify") == 0) && o.in == NULL)
        return cli_usage_error("hsm %s: missing --in", cmd);
    if (strcmp(cmd, "sign") == 0 && o.out == NULL)
        return cli_usage_error("hsm sign: missing --out");
    if (strcmp(cmd, "verify") == 0 && o.sig == NULL)
        return cli_usage_error("hsm verify: missing --sig");

    o.module = o.module != NULL ? o.module : getenv("IOTSEC_PKCS11_MODULE");
    o.token = o.token != NULL ? o.token : getenv("IOTSEC_HSM_TOKEN");
    o.pin_file = o.pin_file != NULL ? o.pin_file : getenv("IOTSEC_HSM_PIN_FILE");

    if (init)
        return iotsec_ok(init_token(&o)) ? CLI_EXIT_OK : cli_fail();
    struct iotsec_hsm *hsm = NULL;
    bool ok = iotsec_ok(open_hsm(&o, &hsm)) && iotsec_ok(run(cmd, &o, hsm));
    iotsec_hsm_close(hsm);
    return ok ? CLI_EXIT_OK : cli_fail();
}
