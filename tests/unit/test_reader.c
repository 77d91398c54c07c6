/* test_reader.c - bounds-checked big-endian reader: values, short reads, strings */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pgcdc/error.h"
#include "pgcdc/reader.h"

static void test_integers(void **state)
{
    (void)state;
    static const uint8_t b[] = {0xFF, 0x80, 0x01, 0xFF, 0xFF, 0xFF, 0xFE, 0x00, 0x00, 0x00,
                                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xFF, 0xFF, 0xFF,
                                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x12, 0x34, 0x56, 0x78};
    cdc_reader r;
    uint8_t u8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    uint64_t u64;
    uint32_t u32;

    cdc_reader_init(&r, b, sizeof(b));
    assert_int_equal(cdc_reader_u8(&r, &u8), 0);
    assert_int_equal(u8, 0xFF);
    assert_int_equal(cdc_reader_i16(&r, &i16), 0);
    assert_int_equal(i16, (int16_t)-32767); /* 0x8001 */
    assert_int_equal(cdc_reader_i32(&r, &i32), 0);
    assert_int_equal(i32, -2); /* 0xFFFFFFFE */
    assert_int_equal(cdc_reader_u64(&r, &u64), 0);
    assert_true(u64 == 0x0000000102030405ULL);
    assert_int_equal(cdc_reader_remaining(&r), sizeof(b) - 15);
    assert_int_equal(cdc_reader_i16(&r, &i16), 0);
    assert_int_equal(i16, 0x0607);
    assert_int_equal(cdc_reader_i64(&r, &i64), 0);
    assert_true(i64 == -1);
    assert_int_equal(cdc_reader_u32(&r, &u32), 0);
    assert_true(u32 == 0x12345678u);
    assert_int_equal(cdc_reader_remaining(&r), 0);
}

static void test_i64_extremes(void **state)
{
    (void)state;
    static const uint8_t b[] = {0x80, 0,    0,    0,    0,    0,    0,    0,
                                0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    cdc_reader r;
    int64_t v;
    cdc_reader_init(&r, b, sizeof(b));
    assert_int_equal(cdc_reader_i64(&r, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(cdc_reader_i64(&r, &v), 0);
    assert_true(v == INT64_MAX);
}

static void test_short_reads(void **state)
{
    (void)state;
    static const uint8_t b[] = {1, 2, 3};
    cdc_reader r;
    uint32_t u32 = 42;
    int64_t i64 = 42;
    const uint8_t *p = NULL;

    cdc_reader_init(&r, b, sizeof(b));
    assert_int_equal(cdc_reader_u32(&r, &u32), CDC_EPROTO);
    assert_int_equal(u32, 42);                     /* output untouched */
    assert_int_equal(cdc_reader_remaining(&r), 3); /* position untouched */
    assert_int_equal(cdc_reader_i64(&r, &i64), CDC_EPROTO);
    assert_true(i64 == 42);
    assert_int_equal(cdc_reader_bytes(&r, 4, &p), CDC_EPROTO);
    assert_null(p);
    assert_int_equal(cdc_reader_bytes(&r, 3, &p), 0);
    assert_ptr_equal(p, b);
    assert_int_equal(cdc_reader_remaining(&r), 0);
    assert_int_equal(cdc_reader_bytes(&r, 0, &p), 0);
    uint8_t u8 = 7;
    assert_int_equal(cdc_reader_u8(&r, &u8), CDC_EPROTO);
    assert_int_equal(u8, 7);

    /* an empty reader over NULL */
    cdc_reader_init(&r, NULL, 0);
    assert_int_equal(cdc_reader_u8(&r, &u8), CDC_EPROTO);
    const char *s = NULL;
    assert_int_equal(cdc_reader_str(&r, &s, NULL), CDC_EPROTO);
    assert_int_equal(cdc_reader_bytes(&r, 0, &p), 0);
    assert_int_equal(cdc_reader_bytes(&r, 1, &p), CDC_EPROTO);
}

static void test_strings(void **state)
{
    (void)state;
    static const uint8_t b[] = {'a', 'b', 0, 0, 'x', 'y'};
    cdc_reader r;
    const char *s = NULL;
    size_t len = 99;

    cdc_reader_init(&r, b, sizeof(b));
    assert_int_equal(cdc_reader_str(&r, &s, &len), 0);
    assert_string_equal(s, "ab");
    assert_int_equal(len, 2);
    assert_int_equal(cdc_reader_str(&r, &s, &len), 0); /* empty string */
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    /* "xy" has no NUL before the end: an error, position and output kept */
    const char *before = s;
    assert_int_equal(cdc_reader_str(&r, &s, &len), CDC_EPROTO);
    assert_ptr_equal(s, before);
    assert_int_equal(cdc_reader_remaining(&r), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_i64_extremes),
        cmocka_unit_test(test_short_reads),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
