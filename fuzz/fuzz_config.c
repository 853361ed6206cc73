/*
 * Fuzzes the INI config parser (iotsec_config_parse). Config files come from operators,
 * not attackers, but a parser that mis-reads a file silently changes security settings,
 * and libinih's own line splitting and truncation are exactly what our reader guards.
 *
 * Invariants beyond "no crash": a refusal is IOTSEC_ERR_CONFIG (or TOO_LARGE) with a
 * message free of control characters; an accepted file answers every getter either with
 * a value or a clean error, and a key reported present by iotsec_config_has() has a value.
 */
#include "iotsec/config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(void)
{
    iotsec_err code = iotsec_error_code();
    if (code != IOTSEC_ERR_CONFIG && code != IOTSEC_ERR_TOO_LARGE)
        abort();
    for (const char *m = iotsec_error_message(); *m != '\0'; m++) {
        if ((unsigned char)*m < 0x20 || *m == 0x7f)
            abort();
    }
}

static void exercise(const struct iotsec_config *cfg, const char *section, const char *key)
{
    const char *s = NULL;
    int64_t i = 0;
    bool b = false;
    if (!iotsec_ok(iotsec_config_get_string(cfg, section, key, &s)))
        abort();
    if (iotsec_config_has(cfg, section, key) != (s != NULL))
        abort();
    if (!iotsec_ok(iotsec_config_get_int(cfg, section, key, -100, 100000, &i)))
        check_message();
    if (!iotsec_ok(iotsec_config_get_bool(cfg, section, key, &b)))
        check_message();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct iotsec_config_key known[] = {
        {"server", "port"}, {"server", "listen"}, {"log", "level"}, {"", "name"}, {NULL, NULL}};
    struct iotsec_config *cfg = NULL;
    if (!iotsec_ok(iotsec_config_parse(iotsec_slice_make(data, size), "fuzz.conf", &cfg))) {
        if (cfg != NULL)
            abort();
        check_message();
        return 0;
    }
    for (size_t i = 0; known[i].key != NULL; i++)
        exercise(cfg, known[i].section, known[i].key);
    exercise(cfg, "s", "k");
    if (!iotsec_ok(iotsec_config_check_known(cfg, known)))
        check_message();
    iotsec_config_free(cfg);
    return 0;
}
