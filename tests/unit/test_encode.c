/* test_encode.c - JSON envelope against golden files, protobuf round trips, keys and errors */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/config.h"
#include "pgcdc/encode.h"
#include "pgcdc/v1/change_event.pb-c.h"
#include "src/encode/encode_int.h"

/* ---------------------------------------------------------------------------
 * Fixture events
 * ------------------------------------------------------------------------- */

#define NOW_US    INT64_C(1700000000200000) /* processing time */
#define COMMIT_US INT64_C(1700000000123456) /* commit time */

/* public.users: id int4 (key), name text, balance numeric, big int8, ratio float8,
 * avatar bytea, active bool, note text */
static const cdc_event_column users_cols[] = {
    {"id", 23, -1, NULL, true},         {"name", 25, -1, NULL, false},
    {"balance", 1700, -1, NULL, false}, {"big", 20, -1, NULL, false},
    {"ratio", 701, -1, NULL, false},    {"avatar", 17, -1, NULL, false},
    {"active", 16, -1, NULL, false},    {"note", 25, -1, NULL, false},
};
#define USERS_NCOLS (sizeof(users_cols) / sizeof(users_cols[0]))
static const uint16_t users_keys[] = {0};

/* clang-format off */
#define T(s)  {CDC_EVENT_TEXT, sizeof(s) - 1, s}
#define NUL_V {CDC_EVENT_NULL, 0, NULL}
#define TOAST {CDC_EVENT_UNCHANGED_TOAST, 0, NULL}
/* clang-format on */

static const cdc_event_value row1[] = {
    T("1"), T("Ann"), T("10.50"), T("42"), T("0.25"), T("\\x0102ff"), T("t"), T("hello"),
};
static const cdc_event_value row1_new[] = {
    T("1"), T("Ann Marie"), T("11.00"), T("43"), T("0.5"), T("\\x"), T("f"), T("hello"),
};
static const cdc_event_value row1_key[] = {
    T("1"), NUL_V, NUL_V, NUL_V, NUL_V, NUL_V, NUL_V, NUL_V,
};
static const cdc_event_value row2[] = {
    T("2"), T("Ann Marie"), T("11.00"), T("43"), T("0.5"), T("\\x"), T("f"), T("hello"),
};

/* A row event on public.users at a fixed position. */
static cdc_event users_event(cdc_event_op op, const cdc_event_value *before, cdc_event_image image,
                             const cdc_event_value *after)
{
    cdc_event ev = {0};
    ev.op = op;
    ev.xid = 742;
    ev.commit_lsn = 0x16B3748; /* 23803720 */
    ev.lsn = 0x16B3700;        /* 23803648 */
    ev.ordinal = 3;
    ev.commit_ts_us = COMMIT_US;
    ev.relid = 16384;
    ev.schema = "public";
    ev.table = "users";
    ev.replident = CDC_EVENT_REPLIDENT_DEFAULT;
    ev.ncols = USERS_NCOLS;
    ev.columns = users_cols;
    ev.nkeys = 1;
    ev.keys = users_keys;
    ev.before_image = image;
    ev.before = before;
    ev.after = after;
    return ev;
}

typedef struct fx {
    cdc_config cfg;
    cdc_encoder *json;
    cdc_encoder *pb;
    cdc_buf out;
} fx;

static const cdc_source_info src_info = {"pgcdc", "shop", "0.1.0"};

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(cdc_config_init(&f->cfg), 0);
    cdc_error err = {0};
    f->cfg.format = CDC_FORMAT_JSON;
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &f->json, &err), 0);
    f->cfg.format = CDC_FORMAT_PROTOBUF;
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &f->pb, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    cdc_encoder_free(f->json);
    cdc_encoder_free(f->pb);
    cdc_buf_free(&f->out);
    cdc_config_free(&f->cfg);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------------
 * JSON helpers
 * ------------------------------------------------------------------------- */

static json_t *load_golden(const char *name)
{
    const char *dir = getenv("FIXTURES_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/encode/%s.json", dir ? dir : "tests/fixtures", name);
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (j == NULL)
        fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
    return j;
}

/* Objects in a and b list the same keys in the same order, recursively. */
static void assert_same_key_order(json_t *a, json_t *b, const char *where)
{
    if (json_is_object(a) && json_is_object(b)) {
        void *ia = json_object_iter(a), *ib = json_object_iter(b);
        while (ia && ib) {
            const char *ka = json_object_iter_key(ia), *kb = json_object_iter_key(ib);
            if (strcmp(ka, kb) != 0)
                fail_msg("%s: key \"%s\" where the golden file has \"%s\"", where, ka, kb);
            assert_same_key_order(json_object_iter_value(ia), json_object_iter_value(ib), ka);
            ia = json_object_iter_next(a, ia);
            ib = json_object_iter_next(b, ib);
        }
        if (ia || ib)
            fail_msg("%s: different number of keys", where);
    }
}

/* out holds exactly one valid JSON text equal (values and key order) to the golden file. */
static void assert_json_golden(const cdc_buf *out, const char *name)
{
    json_error_t jerr;
    json_t *got = json_loadb(out->data, out->len, JSON_ALLOW_NUL, &jerr);
    if (got == NULL)
        fail_msg("%s: output is not valid JSON: %s at %d: %s", name, jerr.text, jerr.position,
                 out->data);
    json_t *want = load_golden(name);
    if (!json_equal(got, want)) {
        char *w = json_dumps(want, JSON_COMPACT);
        fail_msg("%s: mismatch\n got: %s\nwant: %s", name, out->data, w);
    }
    assert_same_key_order(got, want, name);
    json_decref(got);
    json_decref(want);
}

static void encode_value_json(fx *f, const cdc_event *ev)
{
    cdc_error err = {0};
    cdc_buf_reset(&f->out);
    int rc = cdc_encoder_value(f->json, ev, NOW_US, &f->out, &err);
    if (rc != 0)
        fail_msg("cdc_encoder_value: %s", err.msg);
}

static void encode_key_json(fx *f, const cdc_event *ev, int image, bool *is_null)
{
    cdc_error err = {0};
    cdc_buf_reset(&f->out);
    int rc = cdc_encoder_key(f->json, ev, image, &f->out, is_null, &err);
    if (rc != 0)
        fail_msg("cdc_encoder_key: %s", err.msg);
}

/* ---------------------------------------------------------------------------
 * JSON values against golden files
 * ------------------------------------------------------------------------- */

static void test_json_insert(void **state)
{
    fx *f = *state;
    cdc_event ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, row1);
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "insert");

    /* the exact bytes, to pin compactness and key order */
    json_t *want = load_golden("insert");
    char *s = json_dumps(want, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(f->out.data, s);
    free(s);
    json_decref(want);

    bool is_null = true;
    encode_key_json(f, &ev, CDC_KEY_AFTER, &is_null);
    assert_false(is_null);
    assert_string_equal(f->out.data, "{\"id\":1}");
}

static void test_json_update(void **state)
{
    fx *f = *state;
    cdc_event ev = users_event(CDC_EVENT_UPDATE, row1, CDC_EVENT_IMAGE_FULL, row1_new);
    ev.replident = CDC_EVENT_REPLIDENT_FULL;
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "update_full");

    ev = users_event(CDC_EVENT_UPDATE, NULL, CDC_EVENT_IMAGE_NONE, row1_new);
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "update");
}

static void test_json_delete(void **state)
{
    fx *f = *state;
    bool is_null = true;
    /* the columns the key-only image lacks get their fill (constant default or the NOT NULL
     * zero, as Debezium writes them), else null: big and ratio are nullable, no default */
    cdc_event_column cols[USERS_NCOLS];
    memcpy(cols, users_cols, sizeof(cols));
    cols[1].fill = "";    /* name text NOT NULL */
    cols[2].fill = "0";   /* balance numeric NOT NULL */
    cols[5].fill = "\\x"; /* avatar bytea NOT NULL */
    cols[6].fill = "f";   /* active bool NOT NULL */
    cols[7].fill = "zz";  /* note text DEFAULT 'zz' */
    cdc_event ev = users_event(CDC_EVENT_DELETE, row1_key, CDC_EVENT_IMAGE_KEY, NULL);
    ev.columns = cols;
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "delete_key");
    encode_key_json(f, &ev, CDC_KEY_BEFORE, &is_null);
    assert_false(is_null);
    assert_string_equal(f->out.data, "{\"id\":1}");

    ev = users_event(CDC_EVENT_DELETE, row1, CDC_EVENT_IMAGE_FULL, NULL);
    ev.replident = CDC_EVENT_REPLIDENT_FULL;
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "delete_full");
}

/* UPDATE users SET id = 2 WHERE id = 1, split by the router into delete + create */
static void test_json_pk_change(void **state)
{
    fx *f = *state;
    bool is_null = true;
    cdc_event del = users_event(CDC_EVENT_DELETE, row1_key, CDC_EVENT_IMAGE_KEY, NULL);
    del.ordinal = 4;
    encode_value_json(f, &del);
    assert_json_golden(&f->out, "pk_change_delete");
    encode_key_json(f, &del, CDC_KEY_BEFORE, &is_null);
    assert_string_equal(f->out.data, "{\"id\":1}");

    cdc_event cre = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, row2);
    cre.ordinal = 5;
    encode_value_json(f, &cre);
    assert_json_golden(&f->out, "pk_change_create");
    encode_key_json(f, &cre, CDC_KEY_AFTER, &is_null);
    assert_string_equal(f->out.data, "{\"id\":2}");
}

static void test_json_read(void **state)
{
    fx *f = *state;
    cdc_event ev = users_event(CDC_EVENT_READ, NULL, CDC_EVENT_IMAGE_NONE, row1);
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "read");
}

static const cdc_event_relref trunc_rels[] = {{16384, "public", "users"},
                                              {16390, "public", "orders"}};

static cdc_event truncate_event(void)
{
    cdc_event ev = users_event(CDC_EVENT_TRUNCATE, NULL, CDC_EVENT_IMAGE_NONE, NULL);
    ev.ncols = 0;
    ev.columns = NULL;
    ev.nkeys = 0;
    ev.keys = NULL;
    ev.truncate.cascade = true;
    ev.truncate.restart_identity = false;
    ev.truncate.nrels = 2;
    ev.truncate.rels = trunc_rels;
    return ev;
}

static void test_json_truncate(void **state)
{
    fx *f = *state;
    cdc_event ev = truncate_event();
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "truncate");

    bool is_null = false;
    cdc_buf_reset(&f->out);
    cdc_error err = {0};
    assert_int_equal(cdc_encoder_key(f->json, &ev, CDC_KEY_AFTER, &f->out, &is_null, &err), 0);
    assert_true(is_null);
    assert_int_equal(f->out.len, 0);
}

static cdc_event message_event(bool transactional)
{
    cdc_event ev = {0};
    ev.op = CDC_EVENT_MESSAGE;
    ev.xid = transactional ? 743 : 0;
    ev.commit_lsn = transactional ? 0x16B3800 : 0x16B3900;
    ev.lsn = transactional ? 0x16B37C0 : 0x16B3900;
    ev.ordinal = transactional ? 1 : 0;
    ev.commit_ts_us = transactional ? COMMIT_US : 0;
    ev.message.transactional = transactional;
    ev.message.lsn = ev.lsn;
    ev.message.prefix = "outbox";
    ev.message.content = "{\"id\":1}\n\xff";
    ev.message.len = 10;
    return ev;
}

static void test_json_message(void **state)
{
    fx *f = *state;
    bool is_null = true;
    cdc_event ev = message_event(true);
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "message_transactional");
    encode_key_json(f, &ev, CDC_KEY_AFTER, &is_null);
    assert_false(is_null);
    assert_string_equal(f->out.data, "{\"prefix\":\"outbox\"}");

    ev = message_event(false);
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "message_nontransactional");
}

/* NULL, unchanged TOAST and the empty string stay three different things */
static void test_json_toast(void **state)
{
    fx *f = *state;
    static const cdc_event_value after[] = {
        T("1"), T(""), NUL_V, T("42"), T("0.25"), TOAST, T("t"), TOAST,
    };
    cdc_event ev = users_event(CDC_EVENT_UPDATE, NULL, CDC_EVENT_IMAGE_NONE, after);
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "toast");

    /* REPLICA IDENTITY FULL: the old value stands in for the unchanged one */
    ev = users_event(CDC_EVENT_UPDATE, row1, CDC_EVENT_IMAGE_FULL, after);
    ev.replident = CDC_EVENT_REPLIDENT_FULL;
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "toast_full");
}

static const cdc_event_column types_cols[] = {
    {"id", 20, -1, NULL, true},         {"num40", 1700, -1, NULL, false},
    {"num_nan", 1700, -1, NULL, false}, {"i8max", 20, -1, NULL, false},
    {"i8min", 20, -1, NULL, false},     {"i2", 21, -1, NULL, false},
    {"o", 26, -1, NULL, false},         {"f_nan", 701, -1, NULL, false},
    {"f_inf", 701, -1, NULL, false},    {"f_ninf", 700, -1, NULL, false},
    {"f_exp", 701, -1, NULL, false},    {"f_neg0", 700, -1, NULL, false},
    {"blob", 17, -1, NULL, false},      {"blob_esc", 17, -1, NULL, false},
    {"bad_utf8", 25, -1, NULL, false},  {"escapes", 1043, 36, NULL, false},
    {"uni", 25, -1, NULL, false},       {"mood", 16400, -1, "public.mood", false},
    {"ts", 1184, -1, NULL, false},      {"flag", 16, -1, NULL, false},
};
#define TYPES_NCOLS (sizeof(types_cols) / sizeof(types_cols[0]))

static const cdc_event_value types_row[] = {
    T("9223372036854775807"),
    T("1234567890123456789012345678901234567890.0123456789"),
    T("NaN"),
    T("9223372036854775807"),
    T("-9223372036854775808"),
    T("-32768"),
    T("4294967295"),
    T("NaN"),
    T("Infinity"),
    T("-Infinity"),
    T("1.5e+300"),
    T("-0"),
    T("\\x00ff10"),
    T("a\\\\b\\000"),
    T("caf\xe9 \xff\xfe ok"),
    T("q\"b\\s/\n\t\x01"),
    T("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
    T("happy"),
    T("2024-05-01 12:00:00.5+00"),
    T("f"),
};

static cdc_event types_event(void)
{
    cdc_event ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, types_row);
    ev.table = "types";
    ev.relid = 16500;
    ev.ncols = TYPES_NCOLS;
    ev.columns = types_cols;
    return ev;
}

static void test_json_types(void **state)
{
    fx *f = *state;
    cdc_event ev = types_event();
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "types");

    bool is_null = true;
    encode_key_json(f, &ev, CDC_KEY_AFTER, &is_null);
    assert_string_equal(f->out.data, "{\"id\":9223372036854775807}");
}

static void test_json_keyless(void **state)
{
    fx *f = *state;
    static const cdc_event_column cols[] = {{"line", 25, -1, NULL, false}};
    static const cdc_event_value row[] = {T("GET /index.html")};
    cdc_event ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, row);
    ev.table = "access_log";
    ev.relid = 16600;
    ev.replident = CDC_EVENT_REPLIDENT_NOTHING;
    ev.ncols = 1;
    ev.columns = cols;
    ev.nkeys = 0;
    ev.keys = NULL;
    encode_value_json(f, &ev);
    assert_json_golden(&f->out, "keyless");

    bool is_null = false;
    cdc_buf_reset(&f->out);
    cdc_error err = {0};
    assert_int_equal(cdc_encoder_key(f->json, &ev, CDC_KEY_AFTER, &f->out, &is_null, &err), 0);
    assert_true(is_null);
    assert_int_equal(f->out.len, 0);
}

/* binary.handling.mode=hex and decimal.handling.mode=precise / double */
static void test_json_modes(void **state)
{
    fx *f = *state;
    static const cdc_event_column cols[] = {
        {"id", 23, -1, NULL, true},
        {"price", 1700, (10 << 16 | 2) + 4, NULL, false}, /* numeric(10,2) */
        {"neg", 1700, (10 << 16 | 2) + 4, NULL, false},
        {"zero", 1700, (10 << 16 | 2) + 4, NULL, false},
        {"b128", 1700, (10 << 16 | 0) + 4, NULL, false},
        {"m128", 1700, (10 << 16 | 0) + 4, NULL, false},
        {"free", 1700, -1, NULL, false},
        {"big", 1700, -1, NULL, false},
        {"nan", 1700, -1, NULL, false},
        {"blob", 17, -1, NULL, false},
        {"note", 25, -1, NULL, false},
        {"pic", 17, -1, NULL, false},
    };
    static const cdc_event_value row[] = {
        T("7"),   T("123.45"),      T("-1.00"), T("0.00"),
        T("128"), T("-128"),        T("0.001"), T("-12345678901234567890123456789.5"),
        T("NaN"), T("\\xdeadBEEF"), TOAST,      TOAST,
    };
    cdc_event ev = users_event(CDC_EVENT_UPDATE, NULL, CDC_EVENT_IMAGE_NONE, row);
    ev.table = "modes";
    ev.ncols = sizeof(cols) / sizeof(cols[0]);
    ev.columns = cols;

    cdc_encoder *e = NULL;
    cdc_error err = {0};
    f->cfg.format = CDC_FORMAT_JSON;
    f->cfg.binary_handling_mode = CDC_BINARY_HEX;
    f->cfg.decimal_handling_mode = CDC_DECIMAL_PRECISE;
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &e, &err), 0);
    cdc_buf_reset(&f->out);
    assert_int_equal(cdc_encoder_value(e, &ev, NOW_US, &f->out, &err), 0);
    assert_json_golden(&f->out, "modes_hex_precise");
    cdc_encoder_free(e);

    f->cfg.binary_handling_mode = CDC_BINARY_BASE64;
    f->cfg.decimal_handling_mode = CDC_DECIMAL_DOUBLE;
    free(f->cfg.unavailable_value_placeholder);
    f->cfg.unavailable_value_placeholder = strdup("<toasted>");
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &e, &err), 0);
    cdc_buf_reset(&f->out);
    assert_int_equal(cdc_encoder_value(e, &ev, NOW_US, &f->out, &err), 0);
    assert_json_golden(&f->out, "modes_base64_double");
    cdc_encoder_free(e);
}

/* ---------------------------------------------------------------------------
 * Keys and errors
 * ------------------------------------------------------------------------- */

static void test_key_toast_fallback(void **state)
{
    fx *f = *state;
    static const cdc_event_column cols[] = {{"code", 25, -1, NULL, true},
                                            {"v", 23, -1, NULL, false}};
    static const uint16_t keys[] = {0};
    static const cdc_event_value before[] = {T("a-very-long-key"), NUL_V};
    static const cdc_event_value after[] = {TOAST, T("5")};
    cdc_event ev = users_event(CDC_EVENT_UPDATE, before, CDC_EVENT_IMAGE_KEY, after);
    ev.ncols = 2;
    ev.columns = cols;
    ev.keys = keys;
    bool is_null = true;
    encode_key_json(f, &ev, CDC_KEY_AFTER, &is_null);
    assert_string_equal(f->out.data, "{\"code\":\"a-very-long-key\"}");

    /* neither image has it: an error, out and *ret_null untouched */
    ev.before = NULL;
    cdc_buf_reset(&f->out);
    cdc_buf_puts(&f->out, "keep");
    is_null = true;
    cdc_error err = {0};
    assert_int_equal(cdc_encoder_key(f->json, &ev, CDC_KEY_AFTER, &f->out, &is_null, &err),
                     CDC_EINVAL);
    assert_true(is_null);
    assert_string_equal(f->out.data, "keep");
    assert_non_null(strstr(err.msg, "\"code\""));
    cdc_err_clear(&err);
    assert_int_equal(cdc_encoder_key(f->pb, &ev, CDC_KEY_AFTER, &f->out, &is_null, &err),
                     CDC_EINVAL);
    assert_string_equal(f->out.data, "keep");
}

static void test_errors(void **state)
{
    fx *f = *state;
    cdc_error err = {0};
    bool is_null = false;

    /* missing image for the key */
    cdc_event ev = users_event(CDC_EVENT_DELETE, NULL, CDC_EVENT_IMAGE_NONE, NULL);
    assert_int_equal(cdc_encoder_key(f->json, &ev, CDC_KEY_BEFORE, &f->out, &is_null, &err),
                     CDC_EINVAL);
    cdc_err_clear(&err);

    /* create without after */
    ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, NULL);
    assert_int_equal(cdc_encoder_value(f->json, &ev, NOW_US, &f->out, &err), CDC_EINVAL);
    cdc_err_clear(&err);
    assert_int_equal(cdc_encoder_value(f->pb, &ev, NOW_US, &f->out, &err), CDC_EINVAL);
    cdc_err_clear(&err);

    /* unknown op */
    ev = users_event((cdc_event_op)'x', NULL, CDC_EVENT_IMAGE_NONE, row1);
    assert_int_equal(cdc_encoder_value(f->json, &ev, NOW_US, &f->out, &err), CDC_EINVAL);
    cdc_err_clear(&err);

    /* bad configuration */
    cdc_encoder *e = NULL;
    f->cfg.format = 7;
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &e, &err), CDC_EINVAL);
    assert_null(e);
    cdc_err_clear(&err);
    f->cfg.format = CDC_FORMAT_JSON;
    f->cfg.time_precision_mode = 9;
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &e, &err), CDC_EINVAL);
    assert_non_null(strstr(err.msg, "time.precision.mode"));
    cdc_err_clear(&err);
    f->cfg.time_precision_mode = CDC_TIME_ADAPTIVE;
    f->cfg.interval_handling_mode = -1;
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &e, &err), CDC_EINVAL);
    cdc_err_clear(&err);
    f->cfg.interval_handling_mode = CDC_INTERVAL_NUMERIC;
    f->cfg.hstore_handling_mode = 2;
    assert_int_equal(cdc_encoder_new(&f->cfg, &src_info, &e, &err), CDC_EINVAL);
    assert_null(e);
    cdc_err_clear(&err);
    f->cfg.hstore_handling_mode = CDC_HSTORE_JSON;
    cdc_source_info bad = {"pgcdc", NULL, "0.1.0"};
    assert_int_equal(cdc_encoder_new(&f->cfg, &bad, &e, &err), CDC_EINVAL);
    cdc_encoder_free(NULL);
}

/* the value is appended: earlier content of out stays */
static void test_append(void **state)
{
    fx *f = *state;
    cdc_error err = {0};
    cdc_event ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, row1);
    cdc_buf_reset(&f->out);
    cdc_buf_puts(&f->out, "X");
    assert_int_equal(cdc_encoder_value(f->json, &ev, NOW_US, &f->out, &err), 0);
    assert_true(f->out.data[0] == 'X' && f->out.data[1] == '{');
    assert_int_equal(strlen(f->out.data), f->out.len);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(cdc_utf8_valid("", 0));
    assert_true(cdc_utf8_valid("plain ascii, longer than eight", 30));
    assert_true(cdc_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13));
    assert_false(cdc_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(cdc_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(cdc_utf8_valid("\xed\xa0\x80", 3));     /* surrogate U+D800 */
    assert_false(cdc_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(cdc_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(cdc_utf8_valid("0123456789\x80", 11));  /* after an ASCII run */
}

/*
 * Random byte strings as text values: the JSON is always valid and decodes
 * to the input with well-formed UTF-8 kept and every other byte as U+FFFD.
 */
static void test_json_strings_random(void **state)
{
    fx *f = *state;
    static const cdc_event_column cols[] = {{"s", 25, -1, NULL, false}};
    static const unsigned char alphabet[] = {'a',  ' ',  '"',  '\\', '/',  0x01, 0x1f, '\n',
                                             0x7f, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f,
                                             0x98, 0x80, 0xff, 0xed, 0xa0, 'z'};
    uint32_t seed = 12345;
    char in[64];
    char want[64 * 3 + 1];
    for (int iter = 0; iter < 5000; iter++) {
        size_t n = (size_t)(iter % 40);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)alphabet[(seed >> 16) % sizeof(alphabet)];
        }
        /* expected decoded text */
        size_t wn = 0;
        for (size_t i = 0; i < n;) {
            size_t k = cdc_utf8_seq((const unsigned char *)in + i, n - i);
            if (k) {
                memcpy(want + wn, in + i, k);
                wn += k;
                i += k;
            } else {
                memcpy(want + wn, "\xEF\xBF\xBD", 3);
                wn += 3;
                i++;
            }
        }
        cdc_event_value v = {CDC_EVENT_TEXT, (uint32_t)n, in};
        cdc_event ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, &v);
        ev.ncols = 1;
        ev.columns = cols;
        ev.nkeys = 0;
        encode_value_json(f, &ev);
        json_error_t jerr;
        json_t *j = json_loadb(f->out.data, f->out.len, 0, &jerr);
        if (j == NULL)
            fail_msg("iteration %d: invalid JSON: %s: %s", iter, jerr.text, f->out.data);
        json_t *s = json_object_get(json_object_get(j, "after"), "s");
        assert_true(json_is_string(s));
        assert_int_equal(json_string_length(s), wn);
        assert_memory_equal(json_string_value(s), want, wn);
        json_decref(j);
    }
}

static void test_type_table(void **state)
{
    (void)state;
    assert_int_equal(cdc_enc__kind(16), CDC_ENC_KIND_BOOL);
    assert_int_equal(cdc_enc__kind(17), CDC_ENC_KIND_BYTEA);
    assert_int_equal(cdc_enc__kind(20), CDC_ENC_KIND_INT);
    assert_int_equal(cdc_enc__kind(21), CDC_ENC_KIND_INT);
    assert_int_equal(cdc_enc__kind(23), CDC_ENC_KIND_INT);
    assert_int_equal(cdc_enc__kind(26), CDC_ENC_KIND_INT);
    assert_int_equal(cdc_enc__kind(700), CDC_ENC_KIND_FLOAT4);
    assert_int_equal(cdc_enc__kind(701), CDC_ENC_KIND_FLOAT8);
    assert_int_equal(cdc_enc__kind(1700), CDC_ENC_KIND_NUMERIC);
    assert_int_equal(cdc_enc__kind(25), CDC_ENC_KIND_TEXT);
    assert_int_equal(cdc_enc__kind(0), CDC_ENC_KIND_TEXT);
    assert_int_equal(cdc_enc__kind(UINT32_MAX), CDC_ENC_KIND_TEXT);
}

/* ---------------------------------------------------------------------------
 * Protobuf
 * ------------------------------------------------------------------------- */

static Pgcdc__V1__ChangeEvent *pb_value(fx *f, const cdc_event *ev)
{
    cdc_error err = {0};
    cdc_buf_reset(&f->out);
    int rc = cdc_encoder_value(f->pb, ev, NOW_US, &f->out, &err);
    if (rc != 0)
        fail_msg("cdc_encoder_value: %s", err.msg);
    Pgcdc__V1__ChangeEvent *m =
        pgcdc__v1__change_event__unpack(NULL, f->out.len, (const uint8_t *)f->out.data);
    assert_non_null(m);
    return m;
}

static void assert_pb_text(const Pgcdc__V1__Column *c, const char *name, uint32_t oid,
                           const char *text)
{
    assert_string_equal(c->name, name);
    assert_int_equal(c->type_oid, oid);
    assert_int_equal(c->value_case, PGCDC__V1__COLUMN__VALUE_TEXT);
    assert_string_equal(c->text, text);
}

static void assert_pb_source(const Pgcdc__V1__ChangeEvent *m, const char *schema, const char *table,
                             uint32_t relid)
{
    assert_non_null(m->source);
    assert_string_equal(m->source->version, "0.1.0");
    assert_string_equal(m->source->connector, "postgresql");
    assert_string_equal(m->source->name, "pgcdc");
    assert_string_equal(m->source->db, "shop");
    assert_string_equal(m->source->schema, schema);
    assert_string_equal(m->source->table, table);
    assert_int_equal(m->source->relation_id, relid);
    assert_string_equal(m->source->origin, "");
    assert_int_equal(m->processed_at_us, NOW_US);
}

static void test_pb_insert(void **state)
{
    fx *f = *state;
    cdc_event ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, row1);
    Pgcdc__V1__ChangeEvent *m = pb_value(f, &ev);
    assert_int_equal(m->op, PGCDC__V1__OP__OP_CREATE);
    assert_pb_source(m, "public", "users", 16384);
    assert_false(m->source->snapshot);
    assert_non_null(m->position);
    assert_true(m->position->commit_lsn == 0x16B3748);
    assert_true(m->position->lsn == 0x16B3700);
    assert_int_equal(m->position->ordinal, 3);
    assert_int_equal(m->position->xid, 742);
    assert_int_equal(m->position->commit_time_us, COMMIT_US);
    assert_int_equal(m->before_image, PGCDC__V1__BEFORE_IMAGE__BEFORE_IMAGE_NONE);
    assert_int_equal(m->n_before, 0);
    assert_int_equal(m->n_after, USERS_NCOLS);
    assert_pb_text(m->after[0], "id", 23, "1");
    assert_true(m->after[0]->is_key);
    assert_int_equal(m->after[0]->type_modifier, -1);
    assert_string_equal(m->after[0]->type_name, "");
    assert_pb_text(m->after[1], "name", 25, "Ann");
    assert_false(m->after[1]->is_key);
    assert_pb_text(m->after[2], "balance", 1700, "10.50");
    assert_pb_text(m->after[5], "avatar", 17, "\\x0102ff");
    assert_pb_text(m->after[7], "note", 25, "hello");
    assert_null(m->truncate);
    assert_null(m->message);
    pgcdc__v1__change_event__free_unpacked(m, NULL);

    /* key */
    bool is_null = true;
    cdc_error err = {0};
    cdc_buf_reset(&f->out);
    assert_int_equal(cdc_encoder_key(f->pb, &ev, CDC_KEY_AFTER, &f->out, &is_null, &err), 0);
    assert_false(is_null);
    Pgcdc__V1__ChangeKey *k =
        pgcdc__v1__change_key__unpack(NULL, f->out.len, (const uint8_t *)f->out.data);
    assert_non_null(k);
    assert_int_equal(k->n_columns, 1);
    assert_pb_text(k->columns[0], "id", 23, "1");
    assert_true(k->columns[0]->is_key);
    assert_string_equal(k->prefix, "");
    pgcdc__v1__change_key__free_unpacked(k, NULL);
}

/* NULL, unchanged TOAST, empty string, invalid UTF-8 and binary values stay apart */
static void test_pb_column_states(void **state)
{
    fx *f = *state;
    static const cdc_event_value before[] = {
        T("1"), T("x"), T("1"), T("1"), T("1"), T("\\x"), T("t"), T("old note"),
    };
    static const cdc_event_value after[] = {
        T("1"),       T(""), NUL_V,  {CDC_EVENT_BINARY, 8, "\0\0\0\0\0\0\0\x2a"},
        T("caf\xe9"), TOAST, T("t"), TOAST,
    };
    cdc_event ev = users_event(CDC_EVENT_UPDATE, NULL, CDC_EVENT_IMAGE_NONE, after);
    Pgcdc__V1__ChangeEvent *m = pb_value(f, &ev);
    assert_int_equal(m->op, PGCDC__V1__OP__OP_UPDATE);
    assert_int_equal(m->before_image, PGCDC__V1__BEFORE_IMAGE__BEFORE_IMAGE_NONE);
    assert_int_equal(m->n_before, 0);
    assert_int_equal(m->n_after, USERS_NCOLS);
    assert_pb_text(m->after[1], "name", 25, "");
    assert_int_equal(m->after[2]->value_case, PGCDC__V1__COLUMN__VALUE_NULL_VALUE);
    assert_true(m->after[2]->null_value);
    assert_int_equal(m->after[3]->value_case, PGCDC__V1__COLUMN__VALUE_BINARY);
    assert_int_equal(m->after[3]->binary.len, 8);
    assert_memory_equal(m->after[3]->binary.data, "\0\0\0\0\0\0\0\x2a", 8);
    assert_int_equal(m->after[4]->value_case, PGCDC__V1__COLUMN__VALUE_RAW_TEXT);
    assert_int_equal(m->after[4]->raw_text.len, 4);
    assert_memory_equal(m->after[4]->raw_text.data, "caf\xe9", 4);
    assert_int_equal(m->after[5]->value_case, PGCDC__V1__COLUMN__VALUE_UNCHANGED_TOAST);
    assert_true(m->after[5]->unchanged_toast);
    assert_int_equal(m->after[7]->value_case, PGCDC__V1__COLUMN__VALUE_UNCHANGED_TOAST);
    pgcdc__v1__change_event__free_unpacked(m, NULL);

    /* with a full before image the old value stands in for the unchanged one */
    ev = users_event(CDC_EVENT_UPDATE, before, CDC_EVENT_IMAGE_FULL, after);
    m = pb_value(f, &ev);
    assert_int_equal(m->before_image, PGCDC__V1__BEFORE_IMAGE__BEFORE_IMAGE_FULL);
    assert_int_equal(m->n_before, USERS_NCOLS);
    assert_pb_text(m->before[7], "note", 25, "old note");
    assert_pb_text(m->after[7], "note", 25, "old note");
    assert_pb_text(m->after[5], "avatar", 17, "\\x");
    assert_int_equal(m->after[2]->value_case, PGCDC__V1__COLUMN__VALUE_NULL_VALUE);
    pgcdc__v1__change_event__free_unpacked(m, NULL);

    /* a key image only vouches for key columns */
    static const cdc_event_value key_before[] = {
        T("1"), NUL_V, NUL_V, NUL_V, NUL_V, NUL_V, NUL_V, NUL_V,
    };
    ev = users_event(CDC_EVENT_UPDATE, key_before, CDC_EVENT_IMAGE_KEY, after);
    m = pb_value(f, &ev);
    assert_int_equal(m->n_before, 1);
    assert_int_equal(m->after[7]->value_case, PGCDC__V1__COLUMN__VALUE_UNCHANGED_TOAST);
    pgcdc__v1__change_event__free_unpacked(m, NULL);
}

static void test_pb_delete_key(void **state)
{
    fx *f = *state;
    static const cdc_event_column cols[] = {
        {"id", 23, -1, NULL, true},
        {"na\xffme", 25, -1, "my\xfe.type", false},
    };
    static const cdc_event_value key_row[] = {T("1"), NUL_V};
    cdc_event ev = users_event(CDC_EVENT_DELETE, key_row, CDC_EVENT_IMAGE_KEY, NULL);
    ev.ncols = 2;
    ev.columns = cols;
    ev.table = "us\xe9rs";
    Pgcdc__V1__ChangeEvent *m = pb_value(f, &ev);
    assert_int_equal(m->op, PGCDC__V1__OP__OP_DELETE);
    assert_string_equal(m->source->table, "us\xef\xbf\xbdrs"); /* U+FFFD */
    assert_int_equal(m->before_image, PGCDC__V1__BEFORE_IMAGE__BEFORE_IMAGE_KEY);
    assert_int_equal(m->n_before, 1);
    assert_pb_text(m->before[0], "id", 23, "1");
    assert_int_equal(m->n_after, 0);
    pgcdc__v1__change_event__free_unpacked(m, NULL);

    /* a full image keeps the column, with its sanitised names */
    ev.before_image = CDC_EVENT_IMAGE_FULL;
    m = pb_value(f, &ev);
    assert_int_equal(m->n_before, 2);
    assert_string_equal(m->before[1]->name, "na\xef\xbf\xbdme");
    assert_string_equal(m->before[1]->type_name, "my\xef\xbf\xbd.type");
    assert_int_equal(m->before[1]->value_case, PGCDC__V1__COLUMN__VALUE_NULL_VALUE);
    pgcdc__v1__change_event__free_unpacked(m, NULL);
}

static void test_pb_truncate(void **state)
{
    fx *f = *state;
    cdc_event ev = truncate_event();
    Pgcdc__V1__ChangeEvent *m = pb_value(f, &ev);
    assert_int_equal(m->op, PGCDC__V1__OP__OP_TRUNCATE);
    assert_pb_source(m, "public", "users", 16384);
    assert_non_null(m->truncate);
    assert_true(m->truncate->cascade);
    assert_false(m->truncate->restart_identity);
    assert_int_equal(m->truncate->n_relations, 2);
    assert_int_equal(m->truncate->relations[1]->relation_id, 16390);
    assert_string_equal(m->truncate->relations[1]->schema, "public");
    assert_string_equal(m->truncate->relations[1]->table, "orders");
    assert_int_equal(m->n_before + m->n_after, 0);
    pgcdc__v1__change_event__free_unpacked(m, NULL);
}

static void test_pb_message(void **state)
{
    fx *f = *state;
    cdc_event ev = message_event(false);
    Pgcdc__V1__ChangeEvent *m = pb_value(f, &ev);
    assert_int_equal(m->op, PGCDC__V1__OP__OP_MESSAGE);
    assert_pb_source(m, "", "", 0);
    assert_int_equal(m->position->xid, 0);
    assert_true(m->position->commit_lsn == 0x16B3900);
    assert_int_equal(m->position->commit_time_us, NOW_US); /* no commit time: read time */
    assert_non_null(m->message);
    assert_false(m->message->transactional);
    assert_string_equal(m->message->prefix, "outbox");
    assert_int_equal(m->message->content.len, 10);
    assert_memory_equal(m->message->content.data, "{\"id\":1}\n\xff", 10);
    assert_true(m->message->lsn == 0x16B3900);
    pgcdc__v1__change_event__free_unpacked(m, NULL);

    bool is_null = true;
    cdc_error err = {0};
    cdc_buf_reset(&f->out);
    assert_int_equal(cdc_encoder_key(f->pb, &ev, CDC_KEY_AFTER, &f->out, &is_null, &err), 0);
    assert_false(is_null);
    Pgcdc__V1__ChangeKey *k =
        pgcdc__v1__change_key__unpack(NULL, f->out.len, (const uint8_t *)f->out.data);
    assert_non_null(k);
    assert_int_equal(k->n_columns, 0);
    assert_string_equal(k->prefix, "outbox");
    pgcdc__v1__change_key__free_unpacked(k, NULL);
}

static void test_pb_read_and_reuse(void **state)
{
    fx *f = *state;
    /* a wide row after narrow ones, then narrow again: scratch grows and is reused */
    static cdc_event_column cols[300];
    static cdc_event_value vals[300];
    static char names[300][8];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof(names[i]), "c%d", i);
        cols[i] = (cdc_event_column){names[i], 25, -1, NULL, i == 0};
        vals[i] = (cdc_event_value){CDC_EVENT_TEXT, (uint32_t)strlen(names[i]), names[i]};
    }
    cdc_event ev = users_event(CDC_EVENT_READ, NULL, CDC_EVENT_IMAGE_NONE, vals);
    ev.ncols = 300;
    ev.columns = cols;
    ev.snapshot = "incremental";
    Pgcdc__V1__ChangeEvent *m = pb_value(f, &ev);
    assert_int_equal(m->op, PGCDC__V1__OP__OP_READ);
    assert_true(m->source->snapshot);
    assert_string_equal(m->source->snapshot_marker, "incremental");
    assert_int_equal(m->n_after, 300);
    assert_pb_text(m->after[299], "c299", 25, "c299");
    pgcdc__v1__change_event__free_unpacked(m, NULL);

    ev = users_event(CDC_EVENT_INSERT, NULL, CDC_EVENT_IMAGE_NONE, row1);
    m = pb_value(f, &ev);
    assert_int_equal(m->n_after, USERS_NCOLS);
    assert_pb_text(m->after[1], "name", 25, "Ann");
    pgcdc__v1__change_event__free_unpacked(m, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_pk_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_toast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_keyless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_toast_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append, setup, teardown),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test_setup_teardown(test_json_strings_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pb_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pb_column_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pb_delete_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pb_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pb_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pb_read_and_reuse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
