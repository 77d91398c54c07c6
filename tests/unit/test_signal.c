/* test_signal.c - Debezium signal rows: parsing and data-collections matching */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pgcdc/error.h"
#include "pgcdc/signal.h"

static int parse(const char *type, const char *data, cdc_signal *sig, cdc_error *err)
{
    return cdc_signal_parse(type, type ? strlen(type) : 0, data, data ? strlen(data) : 0, sig, err);
}

static void test_execute_snapshot(void **state)
{
    (void)state;
    cdc_signal sig;
    cdc_error err = {0};
    assert_int_equal(
        parse(
            "execute-snapshot",
            "{\"data-collections\": [\"public.orders\", \"inv\\\\..*\"], \"type\": \"INCREMENTAL\"}",
            &sig, &err),
        0);
    assert_int_equal(sig.kind, CDC_SIGNAL_EXECUTE_SNAPSHOT);
    assert_int_equal(sig.ncollections, 2);
    assert_string_equal(sig.collections[0], "public.orders");
    assert_string_equal(sig.collections[1], "inv\\..*");
    assert_false(sig.blocking);
    cdc_signal_free(&sig);

    /* type may be left out (incremental), blocking is recognised */
    assert_int_equal(parse("execute-snapshot", "{\"data-collections\": [\"a.b\"]}", &sig, &err), 0);
    assert_false(sig.blocking);
    cdc_signal_free(&sig);
    assert_int_equal(parse("execute-snapshot",
                           "{\"data-collections\": [\"a.b\"], \"type\": \"blocking\", "
                           "\"additional-conditions\": []}",
                           &sig, &err),
                     0);
    assert_true(sig.blocking);
    cdc_signal_free(&sig);
}

static void test_refused_rows(void **state)
{
    (void)state;
    struct {
        const char *type, *data, *says;
    } bad[] = {
        {"execute-snapshot", NULL, "data is empty"},
        {"execute-snapshot", "{not json", "not a JSON object"},
        {"execute-snapshot", "[1]", "not a JSON object"},
        {"execute-snapshot", "{\"type\": \"incremental\"}", "no \"data-collections\""},
        {"execute-snapshot", "{\"data-collections\": []}", "no \"data-collections\""},
        {"execute-snapshot", "{\"data-collections\": [7]}", "entry 1"},
        {"execute-snapshot", "{\"data-collections\": [\"a.b\"], \"type\": \"full\"}", "neither"},
        {"execute-snapshot",
         "{\"data-collections\": [\"a.b\"], \"additional-conditions\": [{\"data-collection\": "
         "\"a.b\", \"filter\": \"id > 5\"}]}",
         "additional-conditions"},
        {"execute-snapshot", "{\"data-collections\": [\"a.b\"], \"surrogate-key\": \"x\"}",
         "surrogate-key"},
        {"log", "{\"msg\": \"x\"}", "no \"message\""},
        {NULL, "{}", "type is empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cdc_signal sig;
        cdc_error err = {0};
        assert_int_equal(parse(bad[i].type, bad[i].data, &sig, &err), CDC_EINVAL);
        if (strstr(err.msg, bad[i].says) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err.msg, bad[i].says);
        cdc_signal_free(&sig);
    }
}

static void test_log_and_other_types(void **state)
{
    (void)state;
    cdc_signal sig;
    cdc_error err = {0};
    assert_int_equal(parse("log", "{\"message\": \"hello from the DBA\"}", &sig, &err), 0);
    assert_int_equal(sig.kind, CDC_SIGNAL_LOG);
    assert_string_equal(sig.message, "hello from the DBA");
    cdc_signal_free(&sig);
    /* a type pgcdc does not act on parses (so it can be named in a warning), data unread */
    assert_int_equal(parse("pause-snapshot", NULL, &sig, &err), 0);
    assert_int_equal(sig.kind, CDC_SIGNAL_UNSUPPORTED);
    assert_string_equal(sig.type, "pause-snapshot");
    cdc_signal_free(&sig);
}

static void test_patterns_match_in_full(void **state)
{
    (void)state;
    cdc_signal_pattern *p = NULL;
    cdc_error err = {0};
    assert_int_equal(cdc_signal_pattern_new("public.orders", &p, &err), 0);
    assert_true(cdc_signal_pattern_match(p, "public", "orders"));
    assert_false(cdc_signal_pattern_match(p, "public", "orders_archive"));
    assert_false(cdc_signal_pattern_match(p, "xpublic", "orders"));
    cdc_signal_pattern_free(p);

    assert_int_equal(cdc_signal_pattern_new("inv\\..*|public.t[0-9]+", &p, &err), 0);
    assert_true(cdc_signal_pattern_match(p, "inv", "anything"));
    assert_true(cdc_signal_pattern_match(p, "public", "t12"));
    assert_false(cdc_signal_pattern_match(p, "public", "t"));
    assert_false(cdc_signal_pattern_match(p, "inventory", "x"));
    cdc_signal_pattern_free(p);

    /* a long name does not fit the stack buffer */
    char longt[400];
    memset(longt, 'a', sizeof(longt) - 1);
    longt[sizeof(longt) - 1] = '\0';
    assert_int_equal(cdc_signal_pattern_new("s\\.a+", &p, &err), 0);
    assert_true(cdc_signal_pattern_match(p, "s", longt));
    cdc_signal_pattern_free(p);

    assert_int_equal(cdc_signal_pattern_new("public.(orders", &p, &err), CDC_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "not a regular expression"));
    /* unbalanced the other way: wrapped in the anchors' group it would compile, and match
     * anything that starts with public.a or ends with public.b */
    assert_int_equal(cdc_signal_pattern_new("public.a)|(public.b", &p, &err), CDC_EINVAL);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_execute_snapshot),
        cmocka_unit_test(test_refused_rows),
        cmocka_unit_test(test_log_and_other_types),
        cmocka_unit_test(test_patterns_match_in_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
