/* test_event.c - change event helpers and the NDJSON rendering (escaping, column states) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pgcdc/buf.h"
#include "pgcdc/error.h"
#include "pgcdc/event.h"

#define TEXT(s)                                                                                    \
    {                                                                                              \
        CDC_EVENT_TEXT, sizeof(s) - 1, s                                                           \
    }
#define NUL                                                                                        \
    {                                                                                              \
        CDC_EVENT_NULL, 0, NULL                                                                    \
    }
#define TOAST                                                                                      \
    {                                                                                              \
        CDC_EVENT_UNCHANGED_TOAST, 0, NULL                                                         \
    }

static const cdc_event_column cols[] = {
    {"id", 23, -1, NULL, true},
    {"t\"q\\", 25, -1, NULL, false},
    {"caf\xe9", 25, -1, NULL, false}, /* not UTF-8: rendered with U+FFFD */
    {"m", 16385, -1, "public.mood", false},
};
static const uint16_t keys[] = {0};

static cdc_event row_event(cdc_event_op op)
{
    cdc_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.op = op;
    ev.xid = 7;
    ev.lsn = 0x16B3748;
    ev.commit_lsn = 0x16B3800;
    ev.ordinal = 3;
    ev.commit_ts_us = 1704164645000000;
    ev.relid = 16384;
    ev.schema = "public";
    ev.table = "t";
    ev.replident = CDC_EVENT_REPLIDENT_DEFAULT;
    ev.ncols = 4;
    ev.columns = cols;
    ev.nkeys = 1;
    ev.keys = keys;
    return ev;
}

static void render(const cdc_event *ev, cdc_buf *b)
{
    cdc_buf_reset(b);
    assert_int_equal(cdc_event_to_json_line(ev, b), 0);
    assert_true(cdc_utf8_valid(b->data, b->len));
    assert_true(b->len > 0 && b->data[b->len - 1] == '\n');
    assert_null(memchr(b->data, '\n', b->len - 1));
}

static void test_value_states_and_escaping(void **state)
{
    (void)state;
    cdc_buf b = CDC_BUF_INIT;
    cdc_event_value before[] = {TEXT("1"), NUL, NUL, NUL};
    cdc_event_value after[] = {
        TEXT("1"),
        TEXT("a\"b\\c\n\t\x01\x7f \xe2\x80\xa8 \xf0\x9f\x8c\x8d"),
        {CDC_EVENT_TEXT, 3,
         "\xff\xfe"
         "a"}, /* not UTF-8: hex */
        TOAST,
    };
    cdc_event ev = row_event(CDC_EVENT_UPDATE);
    ev.before_image = CDC_EVENT_IMAGE_KEY;
    ev.before = before;
    ev.after = after;
    ev.origin = "up\"stream";
    render(&ev, &b);
    assert_string_equal(
        b.data,
        "{\"op\":\"u\",\"xid\":7,\"lsn\":\"0/16B3748\",\"commit_lsn\":\"0/16B3800\",\"end_lsn\":null,"
        "\"ordinal\":3,\"commit_ts_us\":1704164645000000,\"origin\":\"up\\\"stream\","
        "\"relid\":16384,\"schema\":\"public\",\"table\":\"t\",\"replica_identity\":\"d\","
        "\"columns\":[{\"name\":\"id\",\"type_oid\":23,\"typmod\":-1,\"key\":true},"
        "{\"name\":\"t\\\"q\\\\\",\"type_oid\":25,\"typmod\":-1,\"key\":false},"
        "{\"name\":\"caf\xef\xbf\xbd\",\"type_oid\":25,\"typmod\":-1,\"key\":false},"
        "{\"name\":\"m\",\"type_oid\":16385,\"typmod\":-1,\"type_name\":\"public.mood\",\"key\":false}],"
        "\"key\":[\"id\"],\"before_image\":\"key\",\"before\":{\"id\":\"1\"},"
        "\"after\":{\"id\":\"1\",\"t\\\"q\\\\\":\"a\\\"b\\\\c\\n\\t\\u0001\\u007f \\u2028 \xf0\x9f\x8c\x8d\","
        "\"caf\xef\xbf\xbd\":{\"text_hex\":\"fffe61\"},\"m\":{\"unchanged_toast\":true}}}\n");
    cdc_buf_free(&b);
}

static void test_null_empty_toast_binary_distinct(void **state)
{
    (void)state;
    cdc_buf b = CDC_BUF_INIT;
    cdc_event_value after[] = {
        NUL, {CDC_EVENT_TEXT, 0, ""}, TOAST, {CDC_EVENT_BINARY, 2, "\x00\xff"}};
    cdc_event ev = row_event(CDC_EVENT_INSERT);
    ev.after = after;
    render(&ev, &b);
    const char *a = strstr(b.data, "\"after\":");
    assert_non_null(a);
    assert_string_equal(a, "\"after\":{\"id\":null,\"t\\\"q\\\\\":\"\",\"caf\xef\xbf\xbd\":"
                           "{\"unchanged_toast\":true},\"m\":{\"binary_hex\":\"00ff\"}}}\n");
    assert_non_null(strstr(b.data, "\"before_image\":null,\"before\":null,"));
    cdc_buf_free(&b);
}

static void test_truncate_and_message(void **state)
{
    (void)state;
    cdc_buf b = CDC_BUF_INIT;
    cdc_event_relref rels[] = {{16384, "public", "t"}, {16390, "s", "u"}};
    cdc_event ev = row_event(CDC_EVENT_TRUNCATE);
    ev.truncate.cascade = true;
    ev.truncate.nrels = 2;
    ev.truncate.rels = rels;
    render(&ev, &b);
    assert_non_null(strstr(b.data,
                           ",\"truncate\":{\"cascade\":true,\"restart_identity\":false,"
                           "\"relations\":[{\"relid\":16384,\"schema\":\"public\",\"table\":\"t\"},"
                           "{\"relid\":16390,\"schema\":\"s\",\"table\":\"u\"}]}}\n"));
    assert_null(strstr(b.data, "\"after\""));

    cdc_event m;
    memset(&m, 0, sizeof(m));
    m.op = CDC_EVENT_MESSAGE;
    m.lsn = m.commit_lsn = m.message.lsn = 0x10;
    m.message.prefix = "p";
    m.message.content = "\x00\x01";
    m.message.len = 2;
    render(&m, &b);
    assert_string_equal(b.data, "{\"op\":\"m\",\"xid\":0,\"lsn\":\"0/10\",\"commit_lsn\":\"0/10\","
                                "\"end_lsn\":null,\"ordinal\":0,\"commit_ts_us\":0,\"message\":"
                                "{\"transactional\":false,\"lsn\":\"0/10\",\"prefix\":\"p\","
                                "\"content\":\"\\u0000\\u0001\"}}\n");
    m.message.content = "\xc3";
    m.message.len = 1;
    render(&m, &b);
    assert_non_null(strstr(b.data, "\"content_hex\":\"c3\"}}\n"));
    cdc_buf_free(&b);
}

static void test_txn_line(void **state)
{
    (void)state;
    cdc_buf b = CDC_BUF_INIT;
    cdc_event_txn t = {42, 0x100, 0x130, 5, NULL, 0, 3};
    assert_int_equal(cdc_event_txn_to_json_line(&t, "commit", &b), 0);
    assert_string_equal(b.data, "{\"txn\":\"commit\",\"xid\":42,\"commit_lsn\":\"0/100\","
                                "\"end_lsn\":\"0/130\",\"commit_ts_us\":5,\"events\":3}\n");
    cdc_buf_reset(&b);
    t.origin = "o";
    t.origin_lsn = 0x123456789ULL;
    t.end_lsn = CDC_INVALID_LSN;
    assert_int_equal(cdc_event_txn_to_json_line(&t, "begin", &b), 0);
    assert_string_equal(b.data, "{\"txn\":\"begin\",\"xid\":42,\"commit_lsn\":\"0/100\","
                                "\"end_lsn\":null,\"commit_ts_us\":5,\"origin\":\"o\","
                                "\"origin_lsn\":\"1/23456789\",\"events\":3}\n");
    cdc_buf_free(&b);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"plain", true},
        {"\xc3\xa9", true},          /* é */
        {"\xe2\x82\xac", true},      /* € */
        {"\xf0\x9f\x8c\x8d", true},  /* 🌍 */
        {"\xf4\x8f\xbf\xbf", true},  /* U+10FFFF */
        {"\xc0\x80", false},         /* overlong NUL */
        {"\xc1\xbf", false},         /* overlong */
        {"\xe0\x80\x80", false},     /* overlong */
        {"\xed\xa0\x80", false},     /* surrogate */
        {"\xf0\x80\x80\x80", false}, /* overlong */
        {"\xf4\x90\x80\x80", false}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", false},
        {"\xc3", false}, /* truncated */
        {"\xe2\x82", false},
        {"\x80", false}, /* lone continuation */
        {"a\xffz", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(cdc_utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].ok);
}

static void test_key_changed(void **state)
{
    (void)state;
    cdc_event_value old_key[] = {TEXT("1"), NUL, NUL, NUL};
    cdc_event_value new_same[] = {TEXT("1"), TEXT("x"), NUL, NUL};
    cdc_event_value new_other[] = {TEXT("2"), TEXT("x"), NUL, NUL};
    cdc_event_value new_longer[] = {TEXT("10"), TEXT("x"), NUL, NUL};
    cdc_event_value new_toast[] = {TOAST, TEXT("x"), NUL, NUL};
    cdc_event ev = row_event(CDC_EVENT_UPDATE);

    ev.after = new_other;
    assert_false(cdc_event_key_changed(&ev)); /* no before image */
    ev.before_image = CDC_EVENT_IMAGE_KEY;
    ev.before = old_key;
    assert_true(cdc_event_key_changed(&ev));
    ev.after = new_longer;
    assert_true(cdc_event_key_changed(&ev));
    ev.after = new_same;
    assert_false(cdc_event_key_changed(&ev));
    ev.after = new_toast;
    assert_false(cdc_event_key_changed(&ev));
    ev.op = CDC_EVENT_DELETE;
    ev.after = NULL;
    assert_false(cdc_event_key_changed(&ev));
}

static void test_op_names(void **state)
{
    (void)state;
    assert_string_equal(cdc_event_op_name(CDC_EVENT_INSERT), "insert");
    assert_string_equal(cdc_event_op_name(CDC_EVENT_TRUNCATE), "truncate");
    assert_string_equal(cdc_event_op_name(CDC_EVENT_READ), "read");
    assert_string_equal(cdc_event_op_name((cdc_event_op)'x'), "unknown");
    assert_int_equal(CDC_EVENT_INSERT, 'c');
    assert_int_equal(CDC_EVENT_MESSAGE, 'm');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_states_and_escaping),
        cmocka_unit_test(test_null_empty_toast_binary_distinct),
        cmocka_unit_test(test_truncate_and_message),
        cmocka_unit_test(test_txn_line),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_key_changed),
        cmocka_unit_test(test_op_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
