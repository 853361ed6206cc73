/*
 * iotsec: the operator CLI. main() hardens the process (no core dumps: they would hold
 * keys and passphrases) and dispatches to one subcommand file per area.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"vault", cmd_vault, "encrypted secret store: init, put, get, list, rm, rekey"},
    {"hsm", cmd_hsm, "keys in a PKCS#11 token: keygen, sign, verify, pubkey"},
    {"ca", cmd_ca, "the device CA: init, crl, show, server-cert"},
    {"device", cmd_device, "device lifecycle: issue, revoke, disable, enable, list, show, verify"},
    {"events", cmd_events, "security event log: list, verify the hash chain"},
    {"block", cmd_block, "blocklist: list, add, rm"},
    {"user", cmd_user, "operator accounts: add, passwd, totp, role, list, disable, rm, check"},
    {"apikey", cmd_apikey, "API keys of devices: create, list, revoke"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: iotsec <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'iotsec <command> --help' describes a command. docs/cli.md has them all.\n");
}

static void harden_process(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    harden_process();
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "iotsec: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
