/* test_encode_types.c - per-type golden files: PostgreSQL text forms to JSON and typed protobuf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/config.h"
#include "pgcdc/encode.h"
#include "pgcdc/v1/change_event.pb-c.h"
#include "src/encode/encode_int.h"

/*
 * Each tests/fixtures/encode/types/<name>.json holds one column type (its
 * OID, typmod and the type name pgoutput sends), edge values exactly as
 * PostgreSQL prints them (captured from a server by gen_inputs.py next to
 * them), and the expected encodings:
 *
 *   "json":     {"<settings>": [value, ...]}  the "after" values of a row with
 *               one column per input value; "<settings>" is "" for the
 *               defaults or "key=value;key=value" configuration settings
 *   "protobuf": [typed, ...]  per value, the Column.typed oneof as
 *               {"<field>": value} (null when unset); the text form is
 *               checked to be the input itself
 *
 * PGCDC_BLESS=1 rewrites the expectations from the current output (review
 * the diff).
 */

#define NOW_US    INT64_C(1700000000200000)
#define COMMIT_US INT64_C(1700000000123456)

static const cdc_source_info src_info = {"pgcdc", "shop", "0.1.0"};

static const char *fixtures_dir(void)
{
    const char *dir = getenv("FIXTURES_DIR");
    return dir ? dir : "tests/fixtures";
}

static bool blessing(void)
{
    const char *b = getenv("PGCDC_BLESS");
    return b && *b && strcmp(b, "0") != 0;
}

/* A configuration from "key=value;key=value" (format set separately). */
static void config_from(cdc_config *cfg, const char *settings, int format)
{
    cdc_error err = {0};
    assert_int_equal(cdc_config_init(cfg), 0);
    cfg->format = format;
    char *copy = strdup(settings), *save = NULL;
    for (char *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        if (cdc_config_set(cfg, kv, eq + 1, "test", &err) != 0)
            fail_msg("setting %s: %s", kv, err.msg);
    }
    free(copy);
}

/* An insert into public.t with n columns c0..c(n-1) of one type. */
typedef struct row {
    cdc_event ev;
    cdc_event_column *cols;
    cdc_event_value *vals;
    char (*names)[24];
} row;

static void row_make(row *r, size_t n, uint32_t oid, int32_t typmod, const char *type_name,
                     json_t *values)
{
    memset(r, 0, sizeof(*r));
    r->cols = calloc(n ? n : 1, sizeof(*r->cols));
    r->vals = calloc(n ? n : 1, sizeof(*r->vals));
    r->names = calloc(n ? n : 1, sizeof(*r->names));
    for (size_t i = 0; i < n; i++) {
        snprintf(r->names[i], sizeof(r->names[i]), "c%zu", i);
        r->cols[i] = (cdc_event_column){r->names[i], oid, typmod, type_name, false};
        json_t *v = json_array_get(values, i);
        if (json_is_null(v))
            r->vals[i] = (cdc_event_value){CDC_EVENT_NULL, 0, NULL};
        else
            r->vals[i] = (cdc_event_value){CDC_EVENT_TEXT, (uint32_t)json_string_length(v),
                                           json_string_value(v)};
    }
    cdc_event *ev = &r->ev;
    ev->op = CDC_EVENT_INSERT;
    ev->xid = 742;
    ev->commit_lsn = 0x16B3748;
    ev->lsn = 0x16B3700;
    ev->commit_ts_us = COMMIT_US;
    ev->relid = 16384;
    ev->schema = "public";
    ev->table = "t";
    ev->replident = CDC_EVENT_REPLIDENT_DEFAULT;
    ev->ncols = n;
    ev->columns = r->cols;
    ev->after = r->vals;
}

static void row_free(row *r)
{
    free(r->cols);
    free(r->vals);
    free(r->names);
}

/* The "after" values of ev encoded as JSON with the given settings, as an array. */
static json_t *encode_json(const char *settings, const cdc_event *ev)
{
    cdc_config cfg;
    cdc_encoder *e = NULL;
    cdc_error err = {0};
    cdc_buf out = CDC_BUF_INIT;

    config_from(&cfg, settings, CDC_FORMAT_JSON);
    if (cdc_encoder_new(&cfg, &src_info, &e, &err) != 0)
        fail_msg("cdc_encoder_new: %s", err.msg);
    if (cdc_encoder_value(e, ev, NOW_US, &out, &err) != 0)
        fail_msg("cdc_encoder_value: %s", err.msg);
    json_error_t jerr;
    json_t *doc = json_loadb(out.data, out.len, 0, &jerr);
    if (doc == NULL)
        fail_msg("not valid JSON (%s): %s", jerr.text, out.data);
    json_t *after = json_object_get(doc, "after"), *arr = json_array();
    for (size_t i = 0; i < ev->ncols; i++)
        json_array_append(arr, json_object_get(after, ev->columns[i].name));
    json_decref(doc);
    cdc_buf_free(&out);
    cdc_encoder_free(e);
    cdc_config_free(&cfg);
    return arr;
}

/* ---------------------------------------------------------------------------
 * Protobuf typed values as JSON
 * ------------------------------------------------------------------------- */

static json_t *pb_float_json(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    if (d == 0 && signbit(d))
        return json_string("-0");
    return json_real(d);
}

static json_t *pb_field_json(const ProtobufCFieldDescriptor *f, const void *p);

static json_t *pb_message_json(const ProtobufCMessage *m)
{
    json_t *o = json_object();
    for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
        json_object_set_new(o, f->name, pb_field_json(f, (const char *)m + f->offset));
    }
    return o;
}

static json_t *pb_field_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_INT32: return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_INT64: return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT: return pb_float_json(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return pb_float_json(*(const double *)p);
    case PROTOBUF_C_TYPE_STRING: return json_string(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *hex = malloc(2 * b->len + 1);
        for (size_t i = 0; i < b->len; i++)
            sprintf(hex + 2 * i, "%02x", b->data[i]);
        hex[2 * b->len] = '\0';
        json_t *j = json_string(hex);
        free(hex);
        return j;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        return json_string(ev ? ev->name : "?");
    }
    case PROTOBUF_C_TYPE_MESSAGE: return pb_message_json(*(ProtobufCMessage *const *)p);
    default: fail_msg("field %s: unexpected type %d", f->name, (int)f->type);
    }
    return NULL;
}

/* {"<field>": value} of c's typed oneof, or null. */
static json_t *pb_typed_json(const Pgcdc__V1__Column *c)
{
    if (c->typed_case == PGCDC__V1__COLUMN__TYPED__NOT_SET)
        return json_null();
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&pgcdc__v1__column__descriptor, c->typed_case);
    assert_non_null(f);
    json_t *o = json_object();
    json_object_set_new(o, f->name, pb_field_json(f, (const char *)c + f->offset));
    return o;
}

/* Encode ev as protobuf; check the columns and return their typed values as an array. */
static json_t *encode_pb(const cdc_event *ev, json_t *values)
{
    cdc_config cfg;
    cdc_encoder *e = NULL;
    cdc_error err = {0};
    cdc_buf out = CDC_BUF_INIT;

    config_from(&cfg, "", CDC_FORMAT_PROTOBUF);
    if (cdc_encoder_new(&cfg, &src_info, &e, &err) != 0)
        fail_msg("cdc_encoder_new: %s", err.msg);
    if (cdc_encoder_value(e, ev, NOW_US, &out, &err) != 0)
        fail_msg("cdc_encoder_value: %s", err.msg);
    Pgcdc__V1__ChangeEvent *m =
        pgcdc__v1__change_event__unpack(NULL, out.len, (const uint8_t *)out.data);
    assert_non_null(m);
    assert_int_equal(m->n_after, ev->ncols);
    json_t *arr = json_array();
    for (size_t i = 0; i < ev->ncols; i++) {
        const Pgcdc__V1__Column *c = m->after[i];
        const cdc_event_column *col = &ev->columns[i];
        assert_int_equal(c->type_oid, col->type_oid);
        assert_int_equal(c->type_modifier, col->typmod);
        assert_string_equal(c->type_name, col->type_name ? col->type_name : "");
        json_t *v = json_array_get(values, i);
        if (json_is_null(v)) {
            assert_int_equal(c->value_case, PGCDC__V1__COLUMN__VALUE_NULL_VALUE);
            assert_int_equal(c->typed_case, PGCDC__V1__COLUMN__TYPED__NOT_SET);
        } else {
            /* the text form is always there, unchanged */
            assert_int_equal(c->value_case, PGCDC__V1__COLUMN__VALUE_TEXT);
            assert_string_equal(c->text, json_string_value(v));
        }
        json_array_append_new(arr, pb_typed_json(c));
    }
    pgcdc__v1__change_event__free_unpacked(m, NULL);
    cdc_buf_free(&out);
    cdc_encoder_free(e);
    cdc_config_free(&cfg);
    return arr;
}

/* ---------------------------------------------------------------------------
 * The golden files
 * ------------------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_fixture(const char *path, int *failures)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_PRESERVE_ORDER, &jerr);
    if (doc == NULL)
        fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
    uint32_t oid = (uint32_t)json_integer_value(json_object_get(doc, "oid"));
    int32_t typmod = (int32_t)json_integer_value(json_object_get(doc, "typmod"));
    const char *type_name = json_string_value(json_object_get(doc, "type_name"));
    json_t *values = json_object_get(doc, "values");
    size_t n = json_array_size(values);
    bool changed = false;

    row r;
    row_make(&r, n, oid, typmod, type_name, values);

    const char *settings;
    json_t *want;
    json_object_foreach(json_object_get(doc, "json"), settings, want)
    {
        json_t *got = encode_json(settings, &r.ev);
        if (!json_equal(got, want)) {
            if (blessing()) {
                json_object_set(json_object_get(doc, "json"), settings, got);
                changed = true;
            } else {
                char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
                char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
                print_error("%s [%s]:\n  got:  %s\n  want: %s\n", path, settings, g, w);
                free(g);
                free(w);
                (*failures)++;
            }
        }
        json_decref(got);
    }

    json_t *got = encode_pb(&r.ev, values);
    if (!json_equal(got, json_object_get(doc, "protobuf"))) {
        if (blessing()) {
            json_object_set(doc, "protobuf", got);
            changed = true;
        } else {
            char *g = json_dumps(got, JSON_COMPACT);
            char *w = json_dumps(json_object_get(doc, "protobuf"), JSON_COMPACT | JSON_ENCODE_ANY);
            print_error("%s [protobuf]:\n  got:  %s\n  want: %s\n", path, g, w);
            free(g);
            free(w);
            (*failures)++;
        }
    }
    json_decref(got);

    if (changed) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', f);
        fclose(f);
        print_message("blessed %s\n", path);
    }
    row_free(&r);
    json_decref(doc);
    /* a blessing proves nothing: never let it count as a pass */
    if (blessing())
        fail_msg("PGCDC_BLESS is set: expectations were rewritten from the code under test; "
                 "check the diff, then rerun without it");
}

static void test_type_goldens(void **state)
{
    (void)state;
    char dirpath[1024];
    snprintf(dirpath, sizeof(dirpath), "%s/encode/types", fixtures_dir());
    DIR *d = opendir(dirpath);
    assert_non_null(d);
    char *names[512];
    size_t nnames = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && nnames < 512) {
        size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0)
            names[nnames++] = strdup(de->d_name);
    }
    closedir(d);
    assert_true(nnames > 50);
    qsort(names, nnames, sizeof(names[0]), name_cmp);
    int failures = 0;
    for (size_t i = 0; i < nnames; i++) {
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dirpath, names[i]);
        check_fixture(path, &failures);
        free(names[i]);
    }
    if (failures)
        fail_msg("%d golden mismatches", failures);
}

/* ---------------------------------------------------------------------------
 * Properties the golden files cannot show
 * ------------------------------------------------------------------------- */

/* Text that is not what the type prints stays a string of that text: nothing is dropped. */
static void test_unparsable_falls_back_to_text(void **state)
{
    (void)state;
    static const struct {
        uint32_t oid;
        const char *type_name;
        const char *text;
    } cases[] = {
        {16, NULL, "yes"},
        {23, NULL, "12a"},
        {20, NULL, "99999999999999999999999"},
        {1700, NULL, "1.2.3"},
        {790, NULL, "free"},
        {17, NULL, "\\xzz"},
        {1082, NULL, "2024-13-01"},
        {1082, NULL, "01/05/2024"},
        {1083, NULL, "25:00:00"},
        {1266, NULL, "12:00:00"},
        {1114, NULL, "2024-05-01T12:00:00"},
        {1184, NULL, "2024-05-01 12:00:00"},
        {1186, NULL, "P1Y"},
        {1186, NULL, "@ 1 year"},
        {1560, NULL, "10x"},
        {600, NULL, "(1,2"},
        {600, NULL, "(a,b)"},
        {1007, NULL, "{1,2"},
        {1007, NULL, "{1,{2}}x"},
        {1009, NULL, "{\"a}"},
        {16400, "public.hstore", "\"a\"=>"},
        {16400, "public.hstore", "a=>b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *values = json_pack("[s]", cases[i].text);
        row r;
        row_make(&r, 1, cases[i].oid, -1, cases[i].type_name, values);
        static const char *modes[] = {"",
                                      "decimal.handling.mode=precise;time.precision.mode=isostring"
                                      ";interval.handling.mode=string;hstore.handling.mode=map"};
        for (size_t m = 0; m < 2; m++) {
            json_t *got = encode_json(modes[m], &r.ev);
            json_t *v = json_array_get(got, 0);
            if (!json_is_string(v) || strcmp(json_string_value(v), cases[i].text) != 0)
                fail_msg("oid %u \"%s\" [%s]: not kept as text", cases[i].oid, cases[i].text,
                         modes[m]);
            json_decref(got);
        }
        json_t *pb = encode_pb(&r.ev, values);
        assert_true(json_is_null(json_array_get(pb, 0)));
        json_decref(pb);
        row_free(&r);
        json_decref(values);
    }
}

/* Unchanged TOAST values: the placeholder in the shape of the column's type. */
static void test_toast_placeholders(void **state)
{
    (void)state;
    static const cdc_event_column cols[] = {
        {"t", 25, -1, NULL, false},
        {"b", 17, -1, NULL, false},
        {"n", 1700, -1, NULL, false},
        {"a_text", 1009, -1, NULL, false},
        {"a_int", 1007, -1, NULL, false},
        {"a_bool", 1000, -1, NULL, false},
        {"a_bytea", 1001, -1, NULL, false},
        {"a_date", 1182, -1, NULL, false},
        {"h", 16400, -1, "public.hstore", false},
        {"j", 3802, -1, NULL, false},
        {"a_enum", 16500, -1, "public._mood", false},
    };
    enum { N = sizeof(cols) / sizeof(cols[0]) };
    cdc_event_value vals[N];
    for (size_t i = 0; i < N; i++)
        vals[i] = (cdc_event_value){CDC_EVENT_UNCHANGED_TOAST, 0, NULL};
    cdc_event ev = {0};
    ev.op = CDC_EVENT_UPDATE;
    ev.schema = "public";
    ev.table = "t";
    ev.ncols = N;
    ev.columns = cols;
    ev.after = vals;

    static const struct {
        const char *settings;
        const char *want;
    } cases[] = {
        {"unavailable.value.placeholder=ab",
         "[\"ab\",\"YWI=\",\"ab\",[\"ab\"],[97,98],[true,true],[\"YWI=\"],[97,98],"
         "\"{\\\"ab\\\":\\\"ab\\\"}\",\"ab\",[\"ab\"]]"},
        {"unavailable.value.placeholder=ab;binary.handling.mode=hex;hstore.handling.mode=map;"
         "time.precision.mode=isostring",
         "[\"ab\",\"6162\",\"ab\",[\"ab\"],[97,98],[true,true],[\"6162\"],[\"ab\"],"
         "{\"ab\":\"ab\"},\"ab\",[\"ab\"]]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *got = encode_json(cases[i].settings, &ev);
        json_t *want = json_loads(cases[i].want, 0, NULL);
        assert_non_null(want);
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_COMPACT);
            fail_msg("[%s]\n  got:  %s\n  want: %s", cases[i].settings, g, cases[i].want);
        }
        json_decref(got);
        json_decref(want);
    }
}

/* Key columns use the same mapping as row values. */
static void test_key_mapping(void **state)
{
    (void)state;
    static const cdc_event_column cols[] = {
        {"d", 1082, -1, NULL, true},
        {"ts", 1184, -1, NULL, true},
        {"u", 2950, -1, NULL, true},
    };
    static const uint16_t keys[] = {0, 1, 2};
    static const cdc_event_value vals[] = {
        {CDC_EVENT_TEXT, sizeof("2024-05-01") - 1, "2024-05-01"},
        {CDC_EVENT_TEXT, sizeof("2024-05-01 14:00:00.5+02") - 1, "2024-05-01 14:00:00.5+02"},
        {CDC_EVENT_TEXT, 36, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
    };
    cdc_event ev = {0};
    ev.op = CDC_EVENT_INSERT;
    ev.schema = "public";
    ev.table = "t";
    ev.ncols = 3;
    ev.columns = cols;
    ev.nkeys = 3;
    ev.keys = keys;
    ev.after = vals;
    cdc_config cfg;
    config_from(&cfg, "", CDC_FORMAT_JSON);
    cdc_encoder *e = NULL;
    cdc_error err = {0};
    assert_int_equal(cdc_encoder_new(&cfg, &src_info, &e, &err), 0);
    cdc_buf out = CDC_BUF_INIT;
    bool is_null = true;
    assert_int_equal(cdc_encoder_key(e, &ev, CDC_KEY_AFTER, &out, &is_null, &err), 0);
    assert_string_equal(out.data, "{\"d\":19844,\"ts\":\"2024-05-01T12:00:00.500000Z\","
                                  "\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}");
    cdc_buf_free(&out);
    cdc_encoder_free(e);
    cdc_config_free(&cfg);
}

/* Type resolution: built-in OIDs, domains by their base type's name, extension types by name. */
static void test_type_resolution(void **state)
{
    (void)state;
    assert_true(cdc_enc__types_sorted());
    cdc_enc_type t = cdc_enc__type(1007, NULL);
    assert_int_equal(t.kind, CDC_ENC_KIND_ARRAY);
    assert_int_equal(t.elem, CDC_ENC_KIND_INT);
    assert_int_equal(cdc_enc__type(1020, NULL).delim, ';');
    assert_int_equal(cdc_enc__type(25, NULL).kind, CDC_ENC_KIND_TEXT);
    assert_int_equal(cdc_enc__type(2249, NULL).kind, CDC_ENC_KIND_TEXT); /* record */
    /* a domain: its own OID, its base type's name */
    assert_int_equal(cdc_enc__type(16500, "int4").kind, CDC_ENC_KIND_INT);
    assert_int_equal(cdc_enc__type(16500, "timestamptz").kind, CDC_ENC_KIND_TIMESTAMPTZ);
    t = cdc_enc__type(16500, "_numeric");
    assert_int_equal(t.kind, CDC_ENC_KIND_ARRAY);
    assert_int_equal(t.elem, CDC_ENC_KIND_NUMERIC);
    t = cdc_enc__type(16500, "_uuid");
    assert_int_equal(t.kind, CDC_ENC_KIND_ARRAY);
    assert_int_equal(t.elem, CDC_ENC_KIND_TEXT);
    assert_int_equal(cdc_enc__type(16500, "uuid").kind, CDC_ENC_KIND_TEXT);
    /* a user type in a schema is never taken for a built-in one of the same name */
    assert_int_equal(cdc_enc__type(16500, "public.int4").kind, CDC_ENC_KIND_TEXT);
    assert_int_equal(cdc_enc__type(16500, "ext.hstore").kind, CDC_ENC_KIND_HSTORE);
    t = cdc_enc__type(16501, "ext._hstore");
    assert_int_equal(t.kind, CDC_ENC_KIND_ARRAY);
    assert_int_equal(t.elem, CDC_ENC_KIND_HSTORE);
    t = cdc_enc__type(16502, "public._mood");
    assert_int_equal(t.kind, CDC_ENC_KIND_ARRAY);
    assert_int_equal(t.elem, CDC_ENC_KIND_TEXT);
    assert_int_equal(cdc_enc__type(16503, "public.mood").kind, CDC_ENC_KIND_TEXT);
    assert_int_equal(cdc_enc__type(16503, "").kind, CDC_ENC_KIND_TEXT);
}

/* The calendar helpers against known day numbers, and round trips over the whole range. */
static void test_calendar(void **state)
{
    (void)state;
    assert_int_equal(cdc_enc__days_from_civil(1970, 1, 1), 0);
    assert_int_equal(cdc_enc__days_from_civil(2000, 1, 1), 10957);
    assert_int_equal(cdc_enc__days_from_civil(2024, 5, 1), 19844);
    assert_int_equal(cdc_enc__days_from_civil(0, 3, 1), -719468);
    assert_int_equal(cdc_enc__days_from_civil(-4712, 1, 1), -2440550);
    assert_int_equal(cdc_enc__days_from_civil(-5877611, 6, 21), -2147472692);
    for (int64_t d = -2440550; d <= 2145042905; d += 9973) {
        int64_t y;
        unsigned m, dd;
        cdc_enc__civil_from_days(d, &y, &m, &dd);
        assert_int_equal(cdc_enc__days_from_civil(y, m, dd), d);
    }
    char buf[32];
    size_t k = cdc_enc__fmt_date(buf, cdc_enc__days_from_civil(-43, 3, 15));
    buf[k] = '\0';
    assert_string_equal(buf, "-0043-03-15");
    k = cdc_enc__fmt_date(buf, cdc_enc__days_from_civil(10000, 1, 1));
    buf[k] = '\0';
    assert_string_equal(buf, "+10000-01-01");
    k = cdc_enc__fmt_time(buf, 86400000000, -1);
    buf[k] = '\0';
    assert_string_equal(buf, "24:00:00");
    k = cdc_enc__fmt_time(buf, 45296500000, 3);
    buf[k] = '\0';
    assert_string_equal(buf, "12:34:56.500");
}

/* money as lc_monetary prints it in a few locales */
static void test_money_locales(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"$1,234.56", "1234.56"},
        {"-$1,234.56", "-1234.56"},
        {"($5.00)", "-5.00"},
        {"1.234,56 €", "1234.56"},
        {"-1.234,56 €", "-1234.56"},
        {"€0,50", "0.50"},
        {"¥1,234", "1234"},
        {"1 234,56 zł", "1234.56"},
        {"$0.00", "0.00"},
        {"Fr. 1'234.50", "1234.50"},
        {"1234.5", "1234.5"},
        {"₹ 12,34,567.00", "1234567.00"},
        {"$92,233,720,368,547,758.07", "92233720368547758.07"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        size_t k = cdc_enc__parse_money(cases[i].text, strlen(cases[i].text), out);
        out[k] = '\0';
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("money \"%s\": got \"%s\", want \"%s\"", cases[i].text, out, cases[i].want);
    }
    char out[32];
    assert_int_equal(cdc_enc__parse_money("free", 4, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_resolution),
        cmocka_unit_test(test_calendar),
        cmocka_unit_test(test_money_locales),
        cmocka_unit_test(test_type_goldens),
        cmocka_unit_test(test_unparsable_falls_back_to_text),
        cmocka_unit_test(test_toast_placeholders),
        cmocka_unit_test(test_key_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
