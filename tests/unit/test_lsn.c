/* test_lsn.c - LSN parse/format round trips and malformed input */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pgcdc/error.h"
#include "pgcdc/lsn.h"

static void test_parse_valid(void **state)
{
    (void)state;
    cdc_lsn l = 0;
    assert_int_equal(cdc_lsn_parse("0/16B3748", &l), 0);
    assert_true(l == 0x16B3748ULL);
    assert_int_equal(cdc_lsn_parse("FFFFFFFF/FFFFFFFF", &l), 0);
    assert_true(l == UINT64_MAX);
    assert_int_equal(cdc_lsn_parse("16/b374d848", &l), 0);
    assert_true(l == 0x16B374D848ULL);
    assert_int_equal(cdc_lsn_parse("0/0", &l), 0);
    assert_true(l == 0);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"",           "/",     "0/",          "/0",          "0",
                         "0/16B3748 ", " 0/1",  "1FFFFFFFF/0", "0/1FFFFFFFF", "0/G",
                         "0//1",       "0/1/2", "-1/0",        "0x1/0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cdc_lsn l = 42;
        assert_int_equal(cdc_lsn_parse(bad[i], &l), CDC_EINVAL);
        assert_true(l == 42); /* output untouched on failure */
    }
    cdc_lsn l = 42;
    assert_int_equal(cdc_lsn_parse(NULL, &l), CDC_EINVAL);
}

static void test_format(void **state)
{
    (void)state;
    char buf[CDC_LSN_STRLEN];
    assert_string_equal(cdc_lsn_format(0x16B3748ULL, buf), "0/16B3748");
    assert_string_equal(cdc_lsn_format(UINT64_MAX, buf), "FFFFFFFF/FFFFFFFF");
    assert_string_equal(cdc_lsn_format(0, buf), "0/0");
    cdc_lsn back = 0;
    assert_int_equal(cdc_lsn_parse(cdc_lsn_format(0x123456789ABCULL, buf), &back), 0);
    assert_true(back == 0x123456789ABCULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
