/* encode_int.h - the encoder struct and helpers shared by the files of src/encode */
#ifndef PGCDC_ENCODE_INT_H
#define PGCDC_ENCODE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "pgcdc/buf.h"
#include "pgcdc/encode.h"

/* ---------------------------------------------------------------------------
 * Types (types.c)
 * ------------------------------------------------------------------------- */

/*
 * How a column value is represented, chosen from the column's type OID (or,
 * for a type that is not built in, from the name pgoutput gives it) by
 * cdc_enc__type(). docs/MESSAGES.md documents the mapping of every kind; the
 * encoders switch on the kind, and fall back to the text form whenever a
 * value does not parse as its kind expects.
 */
typedef enum cdc_enc_kind {
    CDC_ENC_KIND_TEXT = 0,    /* the text output form as a string (every type not listed) */
    CDC_ENC_KIND_BOOL,        /* bool: true / false */
    CDC_ENC_KIND_INT,         /* int2, int4, int8, oid: an exact integer */
    CDC_ENC_KIND_FLOAT4,      /* real */
    CDC_ENC_KIND_FLOAT8,      /* double precision */
    CDC_ENC_KIND_NUMERIC,     /* numeric: as decimal.handling.mode says */
    CDC_ENC_KIND_MONEY,       /* money: a decimal, as decimal.handling.mode says */
    CDC_ENC_KIND_BYTEA,       /* bytea: the bytes as binary.handling.mode says */
    CDC_ENC_KIND_DATE,        /* date */
    CDC_ENC_KIND_TIME,        /* time */
    CDC_ENC_KIND_TIMETZ,      /* timetz */
    CDC_ENC_KIND_TIMESTAMP,   /* timestamp */
    CDC_ENC_KIND_TIMESTAMPTZ, /* timestamptz */
    CDC_ENC_KIND_INTERVAL,    /* interval */
    CDC_ENC_KIND_BIT,         /* bit, varbit */
    CDC_ENC_KIND_POINT,       /* point */
    CDC_ENC_KIND_HSTORE,      /* hstore (extension type, recognised by name) */
    CDC_ENC_KIND_ARRAY,       /* an array; cdc_enc_type.elem gives the element kind */
} cdc_enc_kind;

/* The representation of one column type. */
typedef struct cdc_enc_type {
    uint8_t kind; /* cdc_enc_kind */
    uint8_t elem; /* ARRAY: kind of the elements (never ARRAY) */
    char delim;   /* ARRAY: element delimiter, ',' (';' for box[]) */
} cdc_enc_type;

/* Kind of a built-in type OID; CDC_ENC_KIND_TEXT for any OID not in the table. */
cdc_enc_kind cdc_enc__kind(uint32_t type_oid);

/*
 * Representation of a column type: the built-in table by OID first; else,
 * from type_name ("schema.name" of an extension type, enum or composite, or
 * the bare name of a domain's built-in base type, as pgoutput names them),
 * hstore and arrays are recognised; anything else is TEXT.
 */
cdc_enc_type cdc_enc__type(uint32_t type_oid, const char *type_name);

/* Whether the built-in table is sorted by OID (for the unit tests). */
bool cdc_enc__types_sorted(void);

/*
 * Parsers of PostgreSQL's text output (DateStyle ISO, IntervalStyle postgres,
 * the forms pgcdc's sessions set). Each returns CDC_ENC_FINITE,
 * CDC_ENC_INF_POS or CDC_ENC_INF_NEG ('infinity' / '-infinity' where the type
 * has them), or -1 when the text is not in the expected form, leaving the
 * outputs unspecified. Nothing allocates.
 */
enum { CDC_ENC_FINITE = 0, CDC_ENC_INF_POS = 1, CDC_ENC_INF_NEG = 2 };

#define CDC_ENC_US_PER_DAY INT64_C(86400000000)

/* A date or a timestamp split into whole days and the time of day. */
typedef struct cdc_enc_ts {
    int64_t days; /* days since 1970-01-01, proleptic Gregorian */
    int64_t us;   /* microseconds since midnight, [0, 86400000000] (24:00 only for time) */
} cdc_enc_ts;

/* An interval as PostgreSQL stores it. */
typedef struct cdc_enc_interval {
    int32_t months;
    int32_t days;
    int64_t us;
} cdc_enc_interval;

/* "-?[0-9]+" fitting an int64. Returns true and sets *ret, else false. */
bool cdc_enc__parse_int64(const char *s, size_t n, int64_t *ret);
/* Whether s[0..n) is a decimal as numeric prints one: "-?[0-9]+(\.[0-9]+)?". */
bool cdc_enc__is_decimal(const char *s, size_t n);
/* date: "YYYY-MM-DD[ BC]"; ret->us is 0. */
int cdc_enc__parse_date(const char *s, size_t n, cdc_enc_ts *ret);
/* time: "HH:MM:SS[.ffffff]" (up to 24:00:00); ret->days is 0. */
int cdc_enc__parse_time(const char *s, size_t n, cdc_enc_ts *ret);
/* timetz: time plus "+HH[:MM[:SS]]"; *ret_offset is seconds east of UTC; ret is local time. */
int cdc_enc__parse_timetz(const char *s, size_t n, cdc_enc_ts *ret, int32_t *ret_offset);
/*
 * timestamp ("YYYY-MM-DD HH:MM:SS[.ffffff][ BC]") or, with tz, timestamptz
 * (the same with "+HH[:MM[:SS]]" before " BC"), which is returned in UTC.
 * ret->us < 86400000000.
 */
int cdc_enc__parse_timestamp(const char *s, size_t n, bool tz, cdc_enc_ts *ret);
/* interval in IntervalStyle postgres: "1 year 2 mons -3 days +04:05:06.5". */
int cdc_enc__parse_interval(const char *s, size_t n, cdc_enc_interval *ret);
/*
 * money as lc_monetary prints it ("$1,234.56", "-$0.05", "1.234,56 €") as a
 * plain decimal ("1234.56", "-0.05") in out, which has room for 32 bytes.
 * Returns the length, or 0 when the text holds no amount.
 */
size_t cdc_enc__parse_money(const char *s, size_t n, char *out);

/* Days since 1970-01-01 of a proleptic Gregorian date; year 0 is 1 BC. */
int64_t cdc_enc__days_from_civil(int64_t y, unsigned m, unsigned d);
/* The date of a day count, inverse of cdc_enc__days_from_civil. */
void cdc_enc__civil_from_days(int64_t days, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d);

/*
 * Write an ISO 8601 date ("2024-05-01", "+10000-01-01", "-0043-03-15": the
 * year as java.time prints it) to out (room for 24 bytes); returns the length.
 */
size_t cdc_enc__fmt_date(char *out, int64_t days);
/*
 * Write "HH:MM:SS" and a fraction of the microseconds us (< 86400000001) to
 * out (room for 16 bytes): digits == -1 prints the shortest fraction (none
 * when zero), 0..6 exactly that many digits. Returns the length.
 */
size_t cdc_enc__fmt_time(char *out, int64_t us, int digits);

/* ---------------------------------------------------------------------------
 * The encoder
 * ------------------------------------------------------------------------- */

/* Scratch state of the protobuf encoder (protobuf.c). */
typedef struct cdc_enc_pb cdc_enc_pb;

struct cdc_encoder {
    int format;                  /* cdc_format */
    int decimal_mode;            /* cdc_decimal_mode */
    int binary_mode;             /* cdc_binary_mode */
    int time_mode;               /* cdc_time_mode */
    int interval_mode;           /* cdc_interval_mode */
    int hstore_mode;             /* cdc_hstore_mode */
    char *name;                  /* topic.prefix, owned */
    char *db;                    /* database, owned */
    char *version;               /* pgcdc version, owned */
    char *placeholder;           /* unavailable.value.placeholder, owned */
    size_t placeholder_len;      /* strlen(placeholder) */
    cdc_buf json_src_head;       /* "source":{"version":..,"connector":..,"name":..,"ts_ms": */
    cdc_buf json_src_db;         /* ,"db":"<db>","sequence":"[ */
    cdc_buf json_toast_text;     /* the placeholder as a JSON string */
    cdc_buf json_toast_bin;      /* the placeholder's bytes as a bytea JSON value */
    cdc_buf json_toast_arr_str;  /* ["<placeholder>"]: arrays of string-valued elements */
    cdc_buf json_toast_arr_bin;  /* [<bytea value>]: bytea[] */
    cdc_buf json_toast_arr_num;  /* [95,95,...]: the placeholder's bytes, numeric arrays */
    cdc_buf json_toast_arr_bool; /* [true,...]: one per placeholder byte, bool[] */
    cdc_buf json_toast_hstore;   /* {"<placeholder>":"<placeholder>"}, as hstore.handling.mode */
    cdc_buf scratch;             /* decoded bytea and numeric digits, reused */
    cdc_buf elem;                /* an array element, unquoted, reused */
    cdc_buf hs;                  /* an hstore key or value, unquoted, reused */
    cdc_buf nested;              /* JSON built to be sent as a string (hstore json mode) */
    cdc_enc_pb *pb;              /* protobuf scratch, NULL for json */
};

/*
 * The value of key column k (an index into ev->keys) from image img, taken
 * from other when img holds it as unchanged TOAST. CDC_EINVAL when the index
 * is out of range or neither image has the value.
 */
int cdc_enc__key_value(const cdc_event *ev, const cdc_event_value *img,
                       const cdc_event_value *other, size_t k, const cdc_event_value **ret,
                       cdc_error *err);

/* UTF-8 validation: cdc_utf8_seq(), cdc_utf8_valid() */
#include "pgcdc/utf8.h"

/*
 * Decode bytea's text output into out (replacing its content): the hex
 * format "\x0a0b" (bytea_output = hex, the default) or the escape format
 * (backslash-octal "\ooo" and "\\", anything else literal). Returns 0,
 * CDC_EINVAL for malformed text, or CDC_ENOMEM.
 */
int cdc_enc__bytea_decode(const char *s, size_t n, cdc_buf *out);

/*
 * Column i of row image row (ev->before or ev->after). An unchanged TOAST
 * value in the after image is replaced by the before image's value when that
 * image holds it: REPLICA IDENTITY FULL, or a key column of a key image.
 * Borrowed from ev.
 */
const cdc_event_value *cdc_enc__value(const cdc_event *ev, const cdc_event_value *row, size_t i);

/* json.c: see cdc_encoder_new / _key / _value for the contracts. */
int cdc_enc__json_init(cdc_encoder *e, cdc_error *err);
int cdc_enc__json_key(cdc_encoder *e, const cdc_event *ev, const cdc_event_value *img,
                      const cdc_event_value *other, cdc_buf *out, cdc_error *err);
int cdc_enc__json_value(cdc_encoder *e, const cdc_event *ev, int64_t now_us, cdc_buf *out,
                        cdc_error *err);

/* protobuf.c */
int cdc_enc__pb_init(cdc_encoder *e, cdc_error *err);
void cdc_enc__pb_free(cdc_encoder *e);
int cdc_enc__pb_key(cdc_encoder *e, const cdc_event *ev, const cdc_event_value *img,
                    const cdc_event_value *other, cdc_buf *out, cdc_error *err);
int cdc_enc__pb_value(cdc_encoder *e, const cdc_event *ev, int64_t now_us, cdc_buf *out,
                      cdc_error *err);

#endif
