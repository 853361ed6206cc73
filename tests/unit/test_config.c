/* Unit tests for INI configuration: the accepted dialect, each refusal with its exact
 * "file:line: section.key" message, typed getters and their defaults, and file loading. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotsec/config.h"

static struct iotsec_config *parses(const char *text)
{
    struct iotsec_config *cfg = NULL;
    iotsec_result r = iotsec_config_parse(iotsec_slice_from_str(text), "t.conf", &cfg);
    if (!iotsec_ok(r))
        fail_msg("%s", iotsec_error_message());
    assert_non_null(cfg);
    return cfg;
}

static void fails_bytes(const char *text, size_t len, const char *message)
{
    struct iotsec_config *cfg = (struct iotsec_config *)1;
    assert_false(iotsec_ok(iotsec_config_parse(iotsec_slice_make(text, len), "t.conf", &cfg)));
    assert_null(cfg);
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    assert_string_equal(iotsec_error_message(), message);
}

static void fails_with(const char *text, const char *message)
{
    fails_bytes(text, strlen(text), message);
}

static void config_reads_sections_and_typed_values(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("; iotsecd\n"
                                       "# two comment styles\n"
                                       "\n"
                                       "[server]\n"
                                       "port = 8443\n"
                                       "listen=0.0.0.0\n"
                                       "tls: on\n"
                                       "[log]\n"
                                       "level = info\n");
    int64_t port = 1;
    const char *listen = NULL, *level = NULL;
    bool tls = false;
    assert_true(iotsec_ok(iotsec_config_get_int(cfg, "server", "port", 1, 65535, &port)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "server", "listen", &listen)));
    assert_true(iotsec_ok(iotsec_config_get_bool(cfg, "server", "tls", &tls)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "log", "level", &level)));
    assert_int_equal(port, 8443);
    assert_string_equal(listen, "0.0.0.0");
    assert_true(tls);
    assert_string_equal(level, "info");
    assert_true(iotsec_config_has(cfg, "log", "level"));
    assert_false(iotsec_config_has(cfg, "server", "level"));
    iotsec_config_free(cfg);
}

static void config_absent_keys_keep_the_callers_defaults(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("[server]\nport = 8443\n");
    int64_t workers = 4;
    bool debug = true;
    const char *path = "/var/lib/iotsec";
    assert_true(iotsec_ok(iotsec_config_get_int(cfg, "server", "workers", 1, 64, &workers)));
    assert_true(iotsec_ok(iotsec_config_get_bool(cfg, "server", "debug", &debug)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "vault", "path", &path)));
    assert_int_equal(workers, 4);
    assert_true(debug);
    assert_string_equal(path, "/var/lib/iotsec");
    iotsec_config_free(cfg);
}

static void config_keys_before_any_section_have_no_section(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("name = edge-1\n[s]\nname = other\n");
    const char *a = NULL, *b = NULL;
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "", "name", &a)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "s", "name", &b)));
    assert_string_equal(a, "edge-1");
    assert_string_equal(b, "other");
    assert_false(iotsec_ok(iotsec_config_require(cfg, "", "missing")));
    assert_string_equal(iotsec_error_message(), "t.conf: missing required key missing");
    iotsec_config_free(cfg);
}

static void config_comments_follow_the_inih_dialect(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("[s]\n"
                                       "a = x ; trailing comment\n"
                                       "b = y;z\n"
                                       "c = p # q\n"
                                       "d =\n"
                                       "e = spaced value  \r\n"
                                       "   ; an indented comment\n"
                                       "  \t\n");
    const char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "s", "a", &a)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "s", "b", &b)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "s", "c", &c)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "s", "d", &d)));
    assert_true(iotsec_ok(iotsec_config_get_string(cfg, "s", "e", &e)));
    assert_string_equal(a, "x");
    assert_string_equal(b, "y;z");
    assert_string_equal(c, "p # q");
    assert_string_equal(d, "");
    assert_string_equal(e, "spaced value");
    iotsec_config_free(cfg);
}

static void config_rejects_duplicate_keys(void **state)
{
    (void)state;
    fails_with("[server]\nport = 1\nhost = a\nport = 2\n",
               "t.conf:4: server.port: duplicate key (first set on line 2)");
    /* A section may be reopened, but not to set a key again. */
    fails_with("[a]\nx = 1\n[b]\nx = 1\n[a]\ny = 2\nx = 3\n",
               "t.conf:7: a.x: duplicate key (first set on line 2)");
}

static void config_rejects_unknown_keys_when_known_keys_are_given(void **state)
{
    (void)state;
    static const struct iotsec_config_key known[] = {
        {"server", "port"}, {"server", "listen"}, {"log", "level"}, {"", "name"}, {NULL, NULL}};
    struct iotsec_config *cfg = parses("name = x\n[server]\nport = 1\n[log]\nlevel = info\n");
    assert_true(iotsec_ok(iotsec_config_check_known(cfg, known)));
    iotsec_config_free(cfg);

    cfg = parses("[server]\nport = 1\nprot = 2\n[lg]\nlevel = info\n");
    assert_false(iotsec_ok(iotsec_config_check_known(cfg, known)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    assert_string_equal(iotsec_error_message(), "t.conf:3: unknown key 'server.prot'");
    iotsec_config_free(cfg);

    cfg = parses("[server]\nport = 1\n[lg]\nlevel = info\n");
    assert_false(iotsec_ok(iotsec_config_check_known(cfg, known)));
    assert_string_equal(iotsec_error_message(), "t.conf:4: unknown key 'lg.level'");
    iotsec_config_free(cfg);
}

static void config_reports_syntax_errors_with_their_line(void **state)
{
    (void)state;
    fails_with("[server]\nport = 1\njust some words\n",
               "t.conf:3: syntax error (expected [section], key = value, or a comment)");
    fails_with("[server\nport = 1\n",
               "t.conf:1: syntax error (expected [section], key = value, or a comment)");
    /* The first problem in the file is the one reported, whoever finds it. */
    fails_with("[s]\nbad line\na = 1\na = 2\n",
               "t.conf:2: syntax error (expected [section], key = value, or a comment)");
    fails_with("[s]\na = 1\na = 2\nbad line\n",
               "t.conf:3: s.a: duplicate key (first set on line 2)");
}

static void config_rejects_indented_lines(void **state)
{
    (void)state;
    /* libinih would read "  port = 2" as more of host's value. */
    fails_with("[server]\nhost = a\n  port = 2\n",
               "t.conf:3: indented line (indentation would make it part of the previous value; "
               "remove it)");
    fails_with("[server]\n\tport = 2\n",
               "t.conf:2: indented line (indentation would make it part of the previous value; "
               "remove it)");
}

static void config_rejects_lines_libinih_would_split(void **state)
{
    (void)state;
    char text[400];
    /* 197 bytes fit libinih's 200-byte buffer with "\r\n" and the NUL; 198 do not. */
    snprintf(text, sizeof(text), "[s]\nk = %0*d\n", 193, 0);
    struct iotsec_config *cfg = parses(text);
    iotsec_config_free(cfg);
    snprintf(text, sizeof(text), "[s]\nk = %0*d\r\n", 193, 0);
    cfg = parses(text);
    iotsec_config_free(cfg);
    snprintf(text, sizeof(text), "[s]\n; %0*d admin = true\n", 183, 0);
    fails_with(text, "t.conf:2: line is longer than 197 bytes");
}

static void config_rejects_section_names_libinih_would_cut(void **state)
{
    (void)state;
    struct iotsec_config *cfg =
        parses("[a23456789012345678901234567890123456789012345678x]\nk=v\n");
    assert_true(iotsec_config_has(cfg, "a23456789012345678901234567890123456789012345678x", "k"));
    iotsec_config_free(cfg);
    fails_with("[a23456789012345678901234567890123456789012345678xy]\nk=v\n",
               "t.conf:1: section name is longer than 49 bytes");
}

static void config_rejects_nul_bytes_and_empty_keys(void **state)
{
    (void)state;
    fails_bytes("[s]\na = 1\0b = 2\n", 15, "t.conf:2: NUL byte in line");
    fails_with("[s]\n= value\n", "t.conf:2: empty key name");
}

static void config_int_must_be_decimal_and_in_range(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("[s]\n"
                                       "hex = 0x10\n"
                                       "exp = 1e3\n"
                                       "big = 9223372036854775808\n"
                                       "port = 70000\n"
                                       "neg = -5\n"
                                       "octal = 010\n"
                                       "empty =\n"
                                       "min = -9223372036854775808\n"
                                       "plus = +5\n");
    int64_t v = 7;
    assert_false(iotsec_ok(iotsec_config_get_int(cfg, "s", "hex", 0, 100, &v)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    assert_string_equal(iotsec_error_message(),
                        "t.conf:2: s.hex: expected a decimal integer, got '0x10'");
    assert_false(iotsec_ok(iotsec_config_get_int(cfg, "s", "exp", 0, 100, &v)));
    assert_string_equal(iotsec_error_message(),
                        "t.conf:3: s.exp: expected a decimal integer, got '1e3'");
    assert_false(iotsec_ok(iotsec_config_get_int(cfg, "s", "big", INT64_MIN, INT64_MAX, &v)));
    assert_string_equal(iotsec_error_message(),
                        "t.conf:4: s.big: expected a decimal integer, got '9223372036854775808'");
    assert_false(iotsec_ok(iotsec_config_get_int(cfg, "s", "port", 1, 65535, &v)));
    assert_string_equal(iotsec_error_message(), "t.conf:5: s.port: 70000 is out of range 1..65535");
    assert_false(iotsec_ok(iotsec_config_get_int(cfg, "s", "empty", 0, 100, &v)));
    assert_string_equal(iotsec_error_message(),
                        "t.conf:8: s.empty: expected a decimal integer, got ''");
    assert_false(iotsec_ok(iotsec_config_get_int(cfg, "s", "plus", 0, 100, &v)));
    assert_int_equal(v, 7); /* a bad value never overwrites the default */

    assert_true(iotsec_ok(iotsec_config_get_int(cfg, "s", "neg", -10, 10, &v)));
    assert_int_equal(v, -5);
    assert_true(iotsec_ok(iotsec_config_get_int(cfg, "s", "octal", 0, 100, &v)));
    assert_int_equal(v, 10);
    assert_true(iotsec_ok(iotsec_config_get_int(cfg, "s", "min", INT64_MIN, 0, &v)));
    assert_true(v == INT64_MIN);
    iotsec_config_free(cfg);
}

static void config_bool_accepts_the_usual_spellings(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("[s]\na = true\nb = YES\nc = On\nd = 1\n"
                                       "e = false\nf = no\ng = OFF\nh = 0\nbad = maybe\n");
    const char *truthy[] = {"a", "b", "c", "d"}, *falsy[] = {"e", "f", "g", "h"};
    for (size_t i = 0; i < 4; i++) {
        bool t = false, f = true;
        assert_true(iotsec_ok(iotsec_config_get_bool(cfg, "s", truthy[i], &t)));
        assert_true(iotsec_ok(iotsec_config_get_bool(cfg, "s", falsy[i], &f)));
        assert_true(t);
        assert_false(f);
    }
    bool b = true;
    assert_false(iotsec_ok(iotsec_config_get_bool(cfg, "s", "bad", &b)));
    assert_string_equal(
        iotsec_error_message(),
        "t.conf:10: s.bad: expected true/false, yes/no, on/off or 1/0, got 'maybe'");
    assert_true(b);
    iotsec_config_free(cfg);
}

static void config_require_names_the_missing_key(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("[vault]\nkeyfile = k\n");
    assert_true(iotsec_ok(iotsec_config_require(cfg, "vault", "keyfile")));
    assert_false(iotsec_ok(iotsec_config_require(cfg, "vault", "path")));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    assert_string_equal(iotsec_error_message(), "t.conf: missing required key vault.path");
    iotsec_config_free(cfg);
}

static void config_error_prefix_points_at_the_key(void **state)
{
    (void)state;
    struct iotsec_config *cfg = parses("[s]\n\n[log]\nlevel = loud\n");
    iotsec_error_set(IOTSEC_ERR_CONFIG, "unknown level 'loud'");
    iotsec_config_error_prefix(cfg, "log", "level");
    assert_string_equal(iotsec_error_message(), "t.conf:4: log.level: unknown level 'loud'");
    iotsec_error_set(IOTSEC_ERR_CONFIG, "needed");
    iotsec_config_error_prefix(cfg, "log", "sink");
    assert_string_equal(iotsec_error_message(), "t.conf: log.sink: needed");
    iotsec_config_free(cfg);
}

static void config_messages_do_not_echo_control_characters(void **state)
{
    (void)state;
    static const struct iotsec_config_key known[] = {{NULL, NULL}};
    struct iotsec_config *cfg = parses("[s]\nk\x1b[31m = 1\n");
    assert_false(iotsec_ok(iotsec_config_check_known(cfg, known)));
    assert_string_equal(iotsec_error_message(), "t.conf:2: unknown key 's.k?[31m'");
    iotsec_config_free(cfg);
}

static void config_rejects_too_many_keys(void **state)
{
    (void)state;
    size_t cap = 16 * (IOTSEC_CONFIG_MAX_KEYS + 2);
    char *text = malloc(cap);
    size_t len = 0;
    for (int i = 0; i <= IOTSEC_CONFIG_MAX_KEYS; i++)
        len += (size_t)snprintf(text + len, cap - len, "k%d = 1\n", i);
    fails_bytes(text, len, "t.conf:1025: more than 1024 keys");
    free(text);
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/iotsec-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void config_load_reads_a_file_and_names_it(void **state)
{
    (void)state;
    char *path = write_temp("[server]\nport = 8443\nport = 1\n");
    struct iotsec_config *cfg = NULL;
    assert_false(iotsec_ok(iotsec_config_load(path, &cfg)));
    char want[128];
    snprintf(want, sizeof(want), "%s:3: server.port: duplicate key (first set on line 2)", path);
    assert_string_equal(iotsec_error_message(), want);
    unlink(path);
    free(path);

    path = write_temp("[server]\nport = 8443\n");
    assert_true(iotsec_ok(iotsec_config_load(path, &cfg)));
    int64_t port = 0;
    assert_true(iotsec_ok(iotsec_config_get_int(cfg, "server", "port", 1, 65535, &port)));
    assert_int_equal(port, 8443);
    iotsec_config_free(cfg);
    unlink(path);
    free(path);

    assert_false(iotsec_ok(iotsec_config_load("/nonexistent/iotsec.conf", &cfg)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);
    assert_null(cfg);
}

static void config_load_refuses_oversized_files(void **state)
{
    (void)state;
    char *text = malloc(IOTSEC_CONFIG_MAX_BYTES + 2);
    memset(text, '\n', IOTSEC_CONFIG_MAX_BYTES + 1);
    text[IOTSEC_CONFIG_MAX_BYTES + 1] = '\0';
    char *path = write_temp(text);
    struct iotsec_config *cfg = NULL;
    assert_false(iotsec_ok(iotsec_config_load(path, &cfg)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TOO_LARGE);
    assert_false(iotsec_ok(
        iotsec_config_parse(iotsec_slice_make(text, IOTSEC_CONFIG_MAX_BYTES + 1), "big", &cfg)));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_TOO_LARGE);
    assert_string_equal(iotsec_error_message(), "big: config is 262145 bytes, the limit is 262144");
    unlink(path);
    free(path);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_reads_sections_and_typed_values),
        cmocka_unit_test(config_absent_keys_keep_the_callers_defaults),
        cmocka_unit_test(config_keys_before_any_section_have_no_section),
        cmocka_unit_test(config_comments_follow_the_inih_dialect),
        cmocka_unit_test(config_rejects_duplicate_keys),
        cmocka_unit_test(config_rejects_unknown_keys_when_known_keys_are_given),
        cmocka_unit_test(config_reports_syntax_errors_with_their_line),
        cmocka_unit_test(config_rejects_indented_lines),
        cmocka_unit_test(config_rejects_lines_libinih_would_split),
        cmocka_unit_test(config_rejects_section_names_libinih_would_cut),
        cmocka_unit_test(config_rejects_nul_bytes_and_empty_keys),
        cmocka_unit_test(config_int_must_be_decimal_and_in_range),
        cmocka_unit_test(config_bool_accepts_the_usual_spellings),
        cmocka_unit_test(config_require_names_the_missing_key),
        cmocka_unit_test(config_error_prefix_points_at_the_key),
        cmocka_unit_test(config_messages_do_not_echo_control_characters),
        cmocka_unit_test(config_rejects_too_many_keys),
        cmocka_unit_test(config_load_reads_a_file_and_names_it),
        cmocka_unit_test(config_load_refuses_oversized_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
