/* test_error.c - the error table and the first-error-wins struct */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pgcdc/error.h"

static void test_table(void **state)
{
    (void)state;
    assert_string_equal(cdc_strerror_name(CDC_ECONFIG), "CONFIG");
    assert_string_equal(cdc_strerror(CDC_ENOMEM), "out of memory");
    assert_int_equal(cdc_error_exit_status(CDC_ECONFIG), 2);
    assert_int_equal(cdc_error_exit_status(CDC_EUSAGE), 2);
    assert_int_equal(cdc_error_exit_status(CDC_EIO), 1);
    assert_int_equal(cdc_error_exit_status(CDC_OK), 0);
    assert_string_equal(cdc_strerror_name(-9999), "UNKNOWN");
    assert_true(CDC_ENOMEM < 0 && CDC_EINTERNAL < 0);
}

static void test_first_error_wins(void **state)
{
    (void)state;
    cdc_error err = {0};
    assert_int_equal(cdc_err(&err, CDC_EIO, "cannot open \"%s\"", "x"), CDC_EIO);
    cdc_err_hint(&err, "check the path");
    assert_int_equal(cdc_err(&err, CDC_ECONFIG, "second"), CDC_ECONFIG);
    assert_int_equal(err.code, CDC_EIO);
    assert_string_equal(err.msg, "cannot open \"x\"");
    assert_string_equal(err.hint, "check the path");
    assert_string_equal(err.detail, "");
    cdc_err_clear(&err);
    assert_int_equal(err.code, 0);
    /* a NULL error struct is allowed and only passes the code through */
    assert_int_equal(cdc_err(NULL, CDC_EPROTO, "x"), CDC_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_first_error_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
