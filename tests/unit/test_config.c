/* test_config.c - configuration file parsing, overrides, errors and secret masking */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgcdc/config.h"
#include "pgcdc/kafka.h"

static char tmpdir[] = "/tmp/pgcdc-test-config-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Load text as a file; returns the status and leaves the error in *err. */
static int load_text(cdc_config *cfg, const char *text, cdc_error *err)
{
    assert_int_equal(cdc_config_init(cfg), 0);
    return cdc_config_load_file(cfg, write_file("t.conf", text), err);
}

static void test_defaults(void **state)
{
    (void)state;
    cdc_config cfg;
    assert_int_equal(cdc_config_init(&cfg), 0);
    assert_string_equal(cfg.slot_name, "pgcdc");
    assert_string_equal(cfg.source_dsn, "");
    assert_int_equal(cfg.format, CDC_FORMAT_JSON);
    assert_true(cfg.tombstones);
    assert_true(cfg.status_interval == 10000);
    assert_true(cfg.inflight_max_bytes == 16 * 1024 * 1024);
    assert_string_equal(cfg.unavailable_value_placeholder, "__debezium_unavailable_value");
    assert_int_equal((int)cfg.n_kafka, 0);
    cdc_config_free(&cfg);
}

static void test_file_syntax(void **state)
{
    (void)state;
    cdc_config cfg;
    cdc_error err = {0};
    int rc = load_text(&cfg,
                       "# a comment\n"
                       "\n"
                       "   slot.name   =   my_slot   \n"
                       "\t# indented comment\n"
                       "source.dsn = host=db port=5433 password=a=b#c\n"
                       "format=protobuf\n"
                       "tombstones = off\n"
                       "status.interval = 2s\n"
                       "checkpoint.interval = 250\n"
                       "inflight.max.bytes = 1M\n"
                       "topic.prefix =\n"
                       "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                       "kafka.linger.ms = 5\n",
                       &err);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.slot_name, "my_slot");
    assert_string_equal(cfg.source_dsn, "host=db port=5433 password=a=b#c");
    assert_int_equal(cfg.format, CDC_FORMAT_PROTOBUF);
    assert_false(cfg.tombstones);
    assert_true(cfg.status_interval == 2000);
    assert_true(cfg.checkpoint_interval == 250);
    assert_true(cfg.inflight_max_bytes == 1048576);
    assert_string_equal(cfg.topic_prefix, "");
    assert_int_equal((int)cfg.n_kafka, 2);
    assert_string_equal(cdc_config_kafka_get(&cfg, "bootstrap.servers"), "127.0.0.1:9092");
    assert_string_equal(cdc_config_kafka_get(&cfg, "linger.ms"), "5");
    assert_null(cdc_config_kafka_get(&cfg, "acks"));
    cdc_config_free(&cfg);
}

static void test_override_wins(void **state)
{
    (void)state;
    cdc_config cfg;
    cdc_error err = {0};
    assert_int_equal(load_text(&cfg, "slot.name = a\nkafka.acks = 1\n", &err), 0);
    assert_int_equal(cdc_config_apply_override(&cfg, "slot.name=b", &err), 0);
    assert_int_equal(cdc_config_apply_override(&cfg, "kafka.acks = all", &err), 0);
    assert_string_equal(cfg.slot_name, "b");
    assert_string_equal(cdc_config_kafka_get(&cfg, "acks"), "all");
    assert_int_equal((int)cfg.n_kafka, 1);
    assert_int_equal(cdc_config_apply_override(&cfg, "noequals", &err), CDC_EUSAGE);
    assert_non_null(strstr(err.msg, "expected key=value"));
    cdc_config_free(&cfg);
}

static void test_unknown_key_suggests(void **state)
{
    (void)state;
    cdc_config cfg;
    cdc_error err = {0};
    assert_int_equal(load_text(&cfg, "slot.name = a\n\nslot.nmae = b\n", &err), CDC_ECONFIG);
    assert_non_null(strstr(err.msg, "t.conf:3"));
    assert_non_null(strstr(err.msg, "unknown key \"slot.nmae\""));
    assert_non_null(strstr(err.hint, "\"slot.name\""));
    cdc_config_free(&cfg);
}

static void test_malformed_line(void **state)
{
    (void)state;
    cdc_config cfg;
    cdc_error err = {0};
    assert_int_equal(load_text(&cfg, "slot.name = a\njust some words\n", &err), CDC_ECONFIG);
    assert_non_null(strstr(err.msg, "t.conf:2"));
    assert_non_null(strstr(err.msg, "malformed line"));
    cdc_config_free(&cfg);
    cdc_err_clear(&err);
    assert_int_equal(load_text(&cfg, "= value\n", &err), CDC_ECONFIG);
    assert_non_null(strstr(err.msg, "t.conf:1"));
    cdc_config_free(&cfg);
}

static void test_invalid_values(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want_key, *want_hint;
    } cases[] = {
        {"format = xml\n", "\"format\"", "json, protobuf"},
        {"tombstones = maybe\n", "\"tombstones\"", "true or false"},
        {"status.interval = soon\n", "\"status.interval\"", "duration"},
        {"status.interval = 10\n", "\"status.interval\"", NULL}, /* below 100 ms */
        {"inflight.max.bytes = 12parsecs\n", "\"inflight.max.bytes\"", "size"},
        {"inflight.max.messages = 0\n", "\"inflight.max.messages\"", NULL},
        {"log.level = loud\n", "\"log.level\"", "error, warning, info, debug"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cdc_config cfg;
        cdc_error err = {0};
        assert_int_equal(load_text(&cfg, cases[i].text, &err), CDC_ECONFIG);
        assert_non_null(strstr(err.msg, "t.conf:1"));
        assert_non_null(strstr(err.msg, cases[i].want_key));
        if (cases[i].want_hint)
            assert_non_null(strstr(err.hint, cases[i].want_hint));
        cdc_config_free(&cfg);
    }
}

static void test_duplicate_key(void **state)
{
    (void)state;
    cdc_config cfg;
    cdc_error err = {0};
    assert_int_equal(load_text(&cfg, "slot.name = a\nslot.name = b\n", &err), CDC_ECONFIG);
    assert_non_null(strstr(err.msg, "t.conf:2"));
    assert_non_null(strstr(err.msg, "first at line 1"));
    cdc_config_free(&cfg);
}

static void test_missing_file(void **state)
{
    (void)state;
    cdc_config cfg;
    cdc_error err = {0};
    assert_int_equal(cdc_config_init(&cfg), 0);
    assert_int_equal(cdc_config_load_file(&cfg, "/nonexistent/pgcdc.conf", &err), CDC_ECONFIG);
    assert_non_null(strstr(err.msg, "/nonexistent/pgcdc.conf"));
    cdc_config_free(&cfg);
}

static void test_kafka_properties_checked(void **state)
{
    (void)state;
    cdc_config cfg;
    cdc_error err = {0};
    assert_int_equal(load_text(&cfg, "slot.name = a\nkafka.acks = sometimes\n", &err), 0);
    assert_int_equal(cdc_kafka_conf_check(&cfg, &err), CDC_ECONFIG);
    assert_non_null(strstr(err.msg, "t.conf:2"));
    assert_non_null(strstr(err.msg, "kafka.acks"));
    cdc_config_free(&cfg);

    cdc_err_clear(&err);
    assert_int_equal(load_text(&cfg, "kafka.bootstrap.servers = h:1\nkafka.linger.ms = 3\n", &err),
                     0);
    assert_int_equal(cdc_kafka_conf_check(&cfg, &err), 0);
    cdc_config_free(&cfg);
}

static void test_redaction(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"host=h password=secret dbname=d", "host=h password=******** dbname=d"},
        {"password = 'se cret\\' x' host=h", "password = ******** host=h"},
        {"host=h", "host=h"},
        {"postgresql://u:secret@h:5432/d", "postgresql://u:********@h:5432/d"},
        {"postgres://u@h/d?password=secret&sslmode=require",
         "postgres://u@h/d?password=********&sslmode=require"},
        /* every secret parameter, not only the first "password=" */
        {"postgres://h/d?sslpassword=x&password=SECRET",
         "postgres://h/d?sslpassword=********&password=********"},
        {"host=h sslpassword=k password=p", "host=h sslpassword=******** password=********"},
        /* masks longer than the values they replace must not overflow */
        {"password=a password=b password=c",
         "password=******** password=******** password=********"},
        {"postgres://u:@h?password=", "postgres://u:********@h?password=********"},
        {"postgresql://u:p@ss@h:5/d", "postgresql://u:********@h:5/d"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *r = cdc_config_redact_dsn(cases[i].in);
        assert_string_equal(r, cases[i].out);
        free(r);
    }
    assert_true(cdc_config_is_secret_key("sasl.password"));
    assert_false(cdc_config_is_secret_key("bootstrap.servers"));
}

static int setup_dir(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_syntax),
        cmocka_unit_test(test_override_wins),
        cmocka_unit_test(test_unknown_key_suggests),
        cmocka_unit_test(test_malformed_line),
        cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_kafka_properties_checked),
        cmocka_unit_test(test_redaction),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
