/*
 * A verifier built from the files of a data directory (docs/device-lifecycle.md), so the
 * API server, the broker plugin and `iotsec device verify` trust exactly the same things.
 */
#include "iotsec/file.h"
#include "iotsec/registry.h"

#include <stdio.h>

typedef iotsec_result (*add_fn)(struct iotsec_pki_verifier *v, struct iotsec_slice data);

static iotsec_result add_file(struct iotsec_pki_verifier *v, const char *dir, const char *name,
                              size_t max, bool required, add_fn add)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    IOTSEC_ENSURE(n > 0 && (size_t)n < sizeof(path), IOTSEC_ERR_TOO_LARGE,
                  "registry: data directory path is too long");
    struct iotsec_buf data;
    iotsec_buf_init(&data);
    iotsec_result r = iotsec_file_read(path, max, &data);
    if (!iotsec_ok(r) && iotsec_error_code() == IOTSEC_ERR_NOT_FOUND && !required) {
        iotsec_buf_free(&data);
        iotsec_error_clear();
        return IOTSEC_RESULT_OK;
    }
    if (!iotsec_ok(r) && iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
        iotsec_error_set(IOTSEC_ERR_NOT_FOUND, "registry: %s is missing (run `iotsec ca init`)",
                         path);
    if (iotsec_ok(r)) {
        r = add(v, iotsec_buf_slice(&data));
        if (!iotsec_ok(r))
            iotsec_error_prefix("%s: ", path);
    }
    iotsec_buf_free(&data);
    return r;
}

iotsec_result iotsec_registry_load_verifier(const char *dir, struct iotsec_pki_verifier **out)
{
    struct iotsec_pki_verifier *v = NULL;
    IOTSEC_GUARD(iotsec_pki_verifier_new(&v));
    bool ok = iotsec_ok(add_file(v, dir, IOTSEC_REGISTRY_CA_CERT, IOTSEC_PKI_CHAIN_MAX, true,
                                 iotsec_pki_verifier_add_trusted)) &&
              iotsec_ok(add_file(v, dir, IOTSEC_REGISTRY_ISSUING_CERT, IOTSEC_PKI_CHAIN_MAX, false,
                                 iotsec_pki_verifier_add_intermediates)) &&
              iotsec_ok(add_file(v, dir, IOTSEC_REGISTRY_CRL, IOTSEC_PKI_CRL_MAX, true,
                                 iotsec_pki_verifier_add_crl)) &&
              iotsec_ok(add_file(v, dir, IOTSEC_REGISTRY_ROOT_CRL, IOTSEC_PKI_CRL_MAX, false,
                                 iotsec_pki_verifier_add_crl));
    if (!ok) {
        iotsec_pki_verifier_free(v);
        return IOTSEC_RESULT_ERR;
    }
    *out = v;
    return IOTSEC_RESULT_OK;
}
