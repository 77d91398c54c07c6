/* encode_int.h - the encoder struct and helpers shared by the files of src/encode */
#ifndef PGCDC_ENCODE_INT_H
#define PGCDC_ENCODE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "pgcdc/buf.h"
#include "pgcdc/encode.h"

/*
 * How a column value is represented, chosen from the column's type OID by
 * cdc_enc__kind(). Issue 6 (Debezium's full type mapping) adds kinds here
 * and rows to the table in encoder.c; the encoders switch on the kind.
 */
typedef enum cdc_enc_kind {
    CDC_ENC_KIND_TEXT = 0, /* the text output form as a string (every type not listed) */
    CDC_ENC_KIND_BOOL,     /* bool: true / false */
    CDC_ENC_KIND_INT,      /* int2, int4, int8, oid: an exact JSON integer */
    CDC_ENC_KIND_FLOAT,    /* float4, float8: a JSON number, "NaN" / "Infinity" / "-Infinity" */
    CDC_ENC_KIND_NUMERIC,  /* numeric: as decimal.handling.mode says */
    CDC_ENC_KIND_BYTEA,    /* bytea: the bytes as binary.handling.mode says */
} cdc_enc_kind;

/* Scratch state of the protobuf encoder (protobuf.c). */
typedef struct cdc_enc_pb cdc_enc_pb;

struct cdc_encoder {
    int format;              /* cdc_format */
    int decimal_mode;        /* cdc_decimal_mode */
    int binary_mode;         /* cdc_binary_mode */
    char *name;              /* topic.prefix, owned */
    char *db;                /* database, owned */
    char *version;           /* pgcdc version, owned */
    char *placeholder;       /* unavailable.value.placeholder, owned */
    size_t placeholder_len;  /* strlen(placeholder) */
    cdc_buf json_src_head;   /* "source":{"version":..,"connector":..,"name":..,"ts_ms": */
    cdc_buf json_src_db;     /* ,"db":"<db>","sequence":"[ */
    cdc_buf json_toast_text; /* the placeholder as a JSON string */
    cdc_buf json_toast_bin;  /* the placeholder's bytes as a bytea JSON value */
    cdc_buf scratch;         /* decoded bytea and numeric digits, reused */
    cdc_enc_pb *pb;          /* protobuf scratch, NULL for json */
};

/* Representation of a type OID; CDC_ENC_KIND_TEXT for any OID not in the table. */
cdc_enc_kind cdc_enc__kind(uint32_t type_oid);

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * surrogates or code points above U+10FFFF), or 0 when the bytes there are
 * not one. left >= 1 bytes are readable at p.
 */
size_t cdc_enc__utf8_seq(const unsigned char *p, size_t left);
/* Whether n bytes at s are well-formed UTF-8. */
bool cdc_enc__utf8_valid(const char *s, size_t n);

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
