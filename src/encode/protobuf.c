/* protobuf.c - ChangeEvent / ChangeKey (proto/pgcdc/v1/change_event.proto) with protobuf-c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/encode.h"
#include "pgcdc/v1/change_event.pb-c.h"

#include "encode_int.h"

/*
 * protobuf-c packs from C structs whose strings are NUL-terminated. Event
 * data is not (values are length + bytes), so text values are copied into an
 * arena with a NUL; names that are valid UTF-8 (nearly all) are used in
 * place. The arena may move while it grows, so copies are recorded as
 * (field, offset) fix-ups and the pointers set just before packing. Column
 * structs, pointer arrays, arena and fix-ups are reused from event to event.
 */

typedef struct cdc_enc_fixup {
    char **field;   /* where a string pointer goes, or NULL */
    uint8_t **data; /* where a bytes pointer goes, or NULL */
    size_t off;     /* offset of the string or bytes in the arena */
} cdc_enc_fixup;

/* The sub-messages a column's typed value may point to. */
typedef struct cdc_enc_pb_typed {
    Pgcdc__V1__TimeTz timetz;
    Pgcdc__V1__Interval interval;
} cdc_enc_pb_typed;

struct cdc_enc_pb {
    Pgcdc__V1__Column *cols;  /* column structs, cols_cap of them */
    Pgcdc__V1__Column **colp; /* pointers to them, as the repeated fields want */
    cdc_enc_pb_typed *typed;  /* typed sub-messages, one per column struct */
    size_t cols_cap;
    Pgcdc__V1__Relation *rels; /* truncate relations */
    Pgcdc__V1__Relation **relp;
    size_t rels_cap;
    cdc_enc_fixup *fix; /* pending string pointers */
    size_t nfix, fix_cap;
    cdc_buf arena; /* NUL-terminated string copies */
    int rc;        /* first failure while filling, 0 if none */
};

/* ---------------------------------------------------------------------------
 * Scratch memory
 * ------------------------------------------------------------------------- */

static int cdc_enc_pb_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return CDC_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* Make room for ncols columns and nrels relations. */
static int cdc_enc_pb_reserve(cdc_enc_pb *pb, size_t ncols, size_t nrels)
{
    if (ncols > pb->cols_cap) {
        size_t cap = pb->cols_cap, cap2 = pb->cols_cap, cap3 = pb->cols_cap;
        if (cdc_enc_pb_grow((void **)&pb->cols, &cap, ncols, sizeof(*pb->cols)) < 0 ||
            cdc_enc_pb_grow((void **)&pb->colp, &cap2, ncols, sizeof(*pb->colp)) < 0 ||
            cdc_enc_pb_grow((void **)&pb->typed, &cap3, ncols, sizeof(*pb->typed)) < 0)
            return CDC_ENOMEM;
        pb->cols_cap = cap < cap2 ? cap : cap2;
        pb->cols_cap = cap3 < pb->cols_cap ? cap3 : pb->cols_cap;
    }
    if (nrels > pb->rels_cap) {
        size_t cap = pb->rels_cap, cap2 = pb->rels_cap;
        if (cdc_enc_pb_grow((void **)&pb->rels, &cap, nrels, sizeof(*pb->rels)) < 0 ||
            cdc_enc_pb_grow((void **)&pb->relp, &cap2, nrels, sizeof(*pb->relp)) < 0)
            return CDC_ENOMEM;
        pb->rels_cap = cap < cap2 ? cap : cap2;
    }
    return 0;
}

static void cdc_enc_pb_start(cdc_enc_pb *pb)
{
    cdc_buf_reset(&pb->arena);
    pb->nfix = 0;
    pb->rc = 0;
}

/* Record that *field (or *data) must point at arena offset off once the arena is final. */
static void cdc_enc_pb_fixup2(cdc_enc_pb *pb, char **field, uint8_t **data, size_t off)
{
    if (pb->rc == 0 &&
        cdc_enc_pb_grow((void **)&pb->fix, &pb->fix_cap, pb->nfix + 1, sizeof(*pb->fix)) < 0)
        pb->rc = CDC_ENOMEM;
    if (pb->rc)
        return;
    pb->fix[pb->nfix++] = (cdc_enc_fixup){field, data, off};
    if (field)
        *field = (char *)protobuf_c_empty_string; /* until the fix-up */
    else
        *data = NULL;
}

static void cdc_enc_pb_fixup(cdc_enc_pb *pb, char **field, size_t off)
{
    cdc_enc_pb_fixup2(pb, field, NULL, off);
}

static void cdc_enc_pb_finish(cdc_enc_pb *pb)
{
    for (size_t i = 0; i < pb->nfix; i++) {
        if (pb->fix[i].field)
            *pb->fix[i].field = pb->arena.data + pb->fix[i].off;
        else
            *pb->fix[i].data = (uint8_t *)pb->arena.data + pb->fix[i].off;
    }
}

/* Copy n bytes at s plus a NUL into the arena; returns their offset. */
static size_t cdc_enc_pb_put(cdc_enc_pb *pb, const void *s, size_t n)
{
    size_t off = pb->arena.len;
    if (pb->rc == 0 && (cdc_buf_append(&pb->arena, s, n) < 0 || cdc_buf_putc(&pb->arena, 0) < 0))
        pb->rc = CDC_ENOMEM;
    return off;
}

/* Set *field to n bytes at s plus a NUL, copied into the arena; returns the copy's offset. */
static size_t cdc_enc_pb_copy(cdc_enc_pb *pb, char **field, const char *s, size_t n)
{
    size_t off = cdc_enc_pb_put(pb, s, n);
    cdc_enc_pb_fixup(pb, field, off);
    return off;
}

/*
 * Set a string field to s (NULL means ""): in place when it is valid UTF-8,
 * else a copy with U+FFFD for every byte that does not start a well-formed
 * sequence (proto3 strings must be UTF-8).
 */
static void cdc_enc_pb_str(cdc_enc_pb *pb, char **field, const char *s)
{
    if (s == NULL) {
        *field = (char *)protobuf_c_empty_string;
        return;
    }
    size_t n = strlen(s);
    if (cdc_utf8_valid(s, n)) {
        *field = (char *)s; /* packing only reads it */
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t off = pb->arena.len;
    for (size_t i = 0; i < n && pb->rc == 0;) {
        size_t k = cdc_utf8_seq(p + i, n - i);
        int rc = k ? cdc_buf_append(&pb->arena, p + i, k)
                   : cdc_buf_append(&pb->arena, "\xEF\xBF\xBD", 3);
        if (rc < 0)
            pb->rc = CDC_ENOMEM;
        i += k ? k : 1;
    }
    if (pb->rc == 0 && cdc_buf_putc(&pb->arena, 0) < 0)
        pb->rc = CDC_ENOMEM;
    cdc_enc_pb_fixup(pb, field, off);
}

/* ---------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------- */

/* Parse all of s[0..n) as a float (double when d is set); false when it is not one. */
static bool cdc_enc_pb_strtof(const char *s, size_t n, float *f, double *d)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    if (d)
        *d = strtod(buf, &end);
    else
        *f = strtof(buf, &end);
    return end == buf + n;
}

static void cdc_enc_pb_infinity(Pgcdc__V1__Column *c, int inf)
{
    c->typed_case = PGCDC__V1__COLUMN__TYPED_INFINITY;
    c->infinity = inf == CDC_ENC_INF_POS ? PGCDC__V1__INFINITY__INFINITY_POSITIVE
                                         : PGCDC__V1__INFINITY__INFINITY_NEGATIVE;
}

/* µs since the epoch of a timestamp, when it fits an int64. */
static bool cdc_enc_pb_epoch_us(const cdc_enc_ts *t, int64_t *ret)
{
    __int128 us = (__int128)t->days * CDC_ENC_US_PER_DAY + t->us;
    if (us < INT64_MIN || us > INT64_MAX)
        return false;
    *ret = (int64_t)us;
    return true;
}

/*
 * Set the typed value of c from the text s[0..n) of a column of type col,
 * when the type has one and the text parses (see Column.typed in the .proto).
 * text_off is the arena offset of the NUL-terminated copy of the text, or
 * SIZE_MAX when there is none.
 */
static void cdc_enc_pb_fill_typed(cdc_encoder *e, Pgcdc__V1__Column *c, cdc_enc_pb_typed *slot,
                                  const cdc_event_column *col, const char *s, size_t n,
                                  size_t text_off)
{
    cdc_enc_pb *pb = e->pb;
    cdc_enc_type t = cdc_enc__type(col->type_oid, col->type_name);
    cdc_enc_ts ts;
    int r;

    switch ((cdc_enc_kind)t.kind) {
    case CDC_ENC_KIND_BOOL:
        if (n == 1 && (s[0] == 't' || s[0] == 'f')) {
            c->typed_case = PGCDC__V1__COLUMN__TYPED_BOOL_VALUE;
            c->bool_value = s[0] == 't';
        }
        return;
    case CDC_ENC_KIND_INT:
        if (cdc_enc__parse_int64(s, n, &c->int64_value))
            c->typed_case = PGCDC__V1__COLUMN__TYPED_INT64_VALUE;
        return;
    case CDC_ENC_KIND_FLOAT4:
        if (cdc_enc_pb_strtof(s, n, &c->float_value, NULL))
            c->typed_case = PGCDC__V1__COLUMN__TYPED_FLOAT_VALUE;
        return;
    case CDC_ENC_KIND_FLOAT8:
        if (cdc_enc_pb_strtof(s, n, NULL, &c->double_value))
            c->typed_case = PGCDC__V1__COLUMN__TYPED_DOUBLE_VALUE;
        return;
    case CDC_ENC_KIND_NUMERIC: {
        bool ok = cdc_enc__is_decimal(s, n) || (n == 3 && memcmp(s, "NaN", 3) == 0) ||
                  (n == 8 && memcmp(s, "Infinity", 8) == 0) ||
                  (n == 9 && memcmp(s, "-Infinity", 9) == 0);
        if (ok && text_off != SIZE_MAX) {
            c->typed_case = PGCDC__V1__COLUMN__TYPED_DECIMAL_VALUE;
            cdc_enc_pb_fixup(pb, &c->decimal_value, text_off);
        }
        return;
    }
    case CDC_ENC_KIND_MONEY: {
        char dec[32];
        size_t k = cdc_enc__parse_money(s, n, dec);
        if (k > 0) {
            c->typed_case = PGCDC__V1__COLUMN__TYPED_DECIMAL_VALUE;
            cdc_enc_pb_fixup(pb, &c->decimal_value, cdc_enc_pb_put(pb, dec, k));
        }
        return;
    }
    case CDC_ENC_KIND_BYTEA: {
        int rc = cdc_enc__bytea_decode(s, n, &e->scratch);
        if (rc == CDC_ENOMEM && pb->rc == 0)
            pb->rc = rc;
        if (rc < 0)
            return;
        c->typed_case = PGCDC__V1__COLUMN__TYPED_BYTES_VALUE;
        c->bytes_value.len = e->scratch.len;
        cdc_enc_pb_fixup2(pb, NULL, &c->bytes_value.data,
                          cdc_enc_pb_put(pb, e->scratch.data, e->scratch.len));
        return;
    }
    case CDC_ENC_KIND_DATE:
        r = cdc_enc__parse_date(s, n, &ts);
        if (r == CDC_ENC_FINITE && ts.days >= INT32_MIN && ts.days <= INT32_MAX) {
            c->typed_case = PGCDC__V1__COLUMN__TYPED_DATE_DAYS;
            c->date_days = (int32_t)ts.days;
        } else if (r > 0)
            cdc_enc_pb_infinity(c, r);
        return;
    case CDC_ENC_KIND_TIME:
        if (cdc_enc__parse_time(s, n, &ts) == CDC_ENC_FINITE) {
            c->typed_case = PGCDC__V1__COLUMN__TYPED_TIME_US;
            c->time_us = ts.us;
        }
        return;
    case CDC_ENC_KIND_TIMETZ: {
        int32_t off;
        if (cdc_enc__parse_timetz(s, n, &ts, &off) == CDC_ENC_FINITE) {
            pgcdc__v1__time_tz__init(&slot->timetz);
            slot->timetz.time_us = ts.us;
            slot->timetz.offset_seconds = off;
            c->typed_case = PGCDC__V1__COLUMN__TYPED_TIMETZ;
            c->timetz = &slot->timetz;
        }
        return;
    }
    case CDC_ENC_KIND_TIMESTAMP:
    case CDC_ENC_KIND_TIMESTAMPTZ: {
        bool tz = t.kind == CDC_ENC_KIND_TIMESTAMPTZ;
        int64_t us;
        r = cdc_enc__parse_timestamp(s, n, tz, &ts);
        if (r > 0)
            cdc_enc_pb_infinity(c, r);
        else if (r == CDC_ENC_FINITE && cdc_enc_pb_epoch_us(&ts, &us)) {
            if (tz) {
                c->typed_case = PGCDC__V1__COLUMN__TYPED_TIMESTAMPTZ_US;
                c->timestamptz_us = us;
            } else {
                c->typed_case = PGCDC__V1__COLUMN__TYPED_TIMESTAMP_US;
                c->timestamp_us = us;
            }
        }
        return;
    }
    case CDC_ENC_KIND_INTERVAL: {
        cdc_enc_interval iv;
        r = cdc_enc__parse_interval(s, n, &iv);
        if (r > 0)
            cdc_enc_pb_infinity(c, r);
        else if (r == CDC_ENC_FINITE) {
            pgcdc__v1__interval__init(&slot->interval);
            slot->interval.months = iv.months;
            slot->interval.days = iv.days;
            slot->interval.microseconds = iv.us;
            c->typed_case = PGCDC__V1__COLUMN__TYPED_INTERVAL;
            c->interval = &slot->interval;
        }
        return;
    }
    default: return; /* the text form is the value */
    }
}

/* Fill c from one column description and value, keeping the three states apart. */
static void cdc_enc_pb_column(cdc_encoder *e, Pgcdc__V1__Column *c, cdc_enc_pb_typed *slot,
                              const cdc_event_column *col, const cdc_event_value *v)
{
    cdc_enc_pb *pb = e->pb;
    pgcdc__v1__column__init(c);
    cdc_enc_pb_str(pb, &c->name, col->name);
    c->type_oid = col->type_oid;
    c->type_modifier = col->typmod;
    c->is_key = col->is_key;
    cdc_enc_pb_str(pb, &c->type_name, col->type_name);

    const char *data = v->data ? v->data : "";
    switch (v->state) {
    case CDC_EVENT_UNCHANGED_TOAST:
        c->value_case = PGCDC__V1__COLUMN__VALUE_UNCHANGED_TOAST;
        c->unchanged_toast = 1;
        break;
    case CDC_EVENT_TEXT:
        if (memchr(data, 0, v->len) == NULL && cdc_utf8_valid(data, v->len)) {
            c->value_case = PGCDC__V1__COLUMN__VALUE_TEXT;
            size_t off = cdc_enc_pb_copy(pb, &c->text, data, v->len);
            cdc_enc_pb_fill_typed(e, c, slot, col, data, v->len, off);
        } else {
            c->value_case = PGCDC__V1__COLUMN__VALUE_RAW_TEXT;
            c->raw_text.data = (uint8_t *)data; /* packing only reads it */
            c->raw_text.len = v->len;
            cdc_enc_pb_fill_typed(e, c, slot, col, data, v->len, SIZE_MAX);
        }
        break;
    case CDC_EVENT_BINARY:
        c->value_case = PGCDC__V1__COLUMN__VALUE_BINARY;
        c->binary.data = (uint8_t *)data;
        c->binary.len = v->len;
        break;
    case CDC_EVENT_NULL:
    default:
        c->value_case = PGCDC__V1__COLUMN__VALUE_NULL_VALUE;
        c->null_value = 1;
        break;
    }
}

/*
 * Fill columns [*used, ...) of the scratch from a row image: all columns, or
 * the key columns alone. Returns the count through *ret_n and the first
 * pointer through *ret_p.
 */
static void cdc_enc_pb_row(cdc_encoder *e, const cdc_event *ev, const cdc_event_value *row,
                           bool key_only, size_t *used, size_t *ret_n, Pgcdc__V1__Column ***ret_p)
{
    cdc_enc_pb *pb = e->pb;
    size_t start = *used, k = 0;
    for (size_t i = 0; i < ev->ncols; i++) {
        if (key_only) {
            while (k < ev->nkeys && ev->keys[k] < i)
                k++;
            if (k == ev->nkeys || ev->keys[k] != i)
                continue;
        }
        Pgcdc__V1__Column *c = &pb->cols[*used];
        cdc_enc_pb_column(e, c, &pb->typed[*used], &ev->columns[i], cdc_enc__value(ev, row, i));
        pb->colp[*used] = c;
        (*used)++;
    }
    *ret_n = *used - start;
    *ret_p = pb->colp + start;
}

/* Pack msg at the end of out. */
static int cdc_enc_pb_pack(const ProtobufCMessage *msg, cdc_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (cdc_buf_reserve(out, n) < 0)
        return CDC_ENOMEM;
    size_t got = protobuf_c_message_pack(msg, (uint8_t *)out->data + out->len);
    out->len += got;
    out->data[out->len] = '\0';
    return 0;
}

int cdc_enc__pb_value(cdc_encoder *e, const cdc_event *ev, int64_t now_us, cdc_buf *out,
                      cdc_error *err)
{
    cdc_enc_pb *pb = e->pb;
    Pgcdc__V1__ChangeEvent msg = PGCDC__V1__CHANGE_EVENT__INIT;
    Pgcdc__V1__Source src = PGCDC__V1__SOURCE__INIT;
    Pgcdc__V1__Position pos = PGCDC__V1__POSITION__INIT;
    Pgcdc__V1__Truncate trunc = PGCDC__V1__TRUNCATE__INIT;
    Pgcdc__V1__LogicalMessage lm = PGCDC__V1__LOGICAL_MESSAGE__INIT;
    bool row = ev->op != CDC_EVENT_TRUNCATE && ev->op != CDC_EVENT_MESSAGE;

    size_t nrels = ev->op == CDC_EVENT_TRUNCATE ? ev->truncate.nrels : 0;
    if (cdc_enc_pb_reserve(pb, row ? 2 * ev->ncols : 0, nrels) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory encoding an event");
    cdc_enc_pb_start(pb);

    switch (ev->op) {
    case CDC_EVENT_INSERT: msg.op = PGCDC__V1__OP__OP_CREATE; break;
    case CDC_EVENT_UPDATE: msg.op = PGCDC__V1__OP__OP_UPDATE; break;
    case CDC_EVENT_DELETE: msg.op = PGCDC__V1__OP__OP_DELETE; break;
    case CDC_EVENT_TRUNCATE: msg.op = PGCDC__V1__OP__OP_TRUNCATE; break;
    case CDC_EVENT_MESSAGE: msg.op = PGCDC__V1__OP__OP_MESSAGE; break;
    case CDC_EVENT_READ: msg.op = PGCDC__V1__OP__OP_READ; break;
    }

    src.version = e->version;
    src.connector = "postgresql";
    src.name = e->name;
    src.db = e->db;
    if (ev->op != CDC_EVENT_MESSAGE) {
        cdc_enc_pb_str(pb, &src.schema, ev->schema);
        cdc_enc_pb_str(pb, &src.table, ev->table);
        src.relation_id = ev->relid;
    }
    src.snapshot = ev->op == CDC_EVENT_READ;
    if (src.snapshot)
        src.snapshot_marker = (char *)(ev->snapshot ? ev->snapshot : "true");
    cdc_enc_pb_str(pb, &src.origin, ev->origin);
    msg.source = &src;

    pos.commit_lsn = ev->commit_lsn;
    pos.lsn =
        (ev->lsn != CDC_INVALID_LSN || ev->op != CDC_EVENT_MESSAGE) ? ev->lsn : ev->message.lsn;
    pos.ordinal = ev->ordinal;
    pos.xid = ev->xid;
    pos.commit_time_us = ev->commit_ts_us != 0 ? ev->commit_ts_us : now_us;
    msg.position = &pos;

    size_t used = 0;
    if (row && ev->before != NULL && ev->op != CDC_EVENT_INSERT && ev->op != CDC_EVENT_READ) {
        bool key_only = ev->before_image == CDC_EVENT_IMAGE_KEY;
        msg.before_image = key_only ? PGCDC__V1__BEFORE_IMAGE__BEFORE_IMAGE_KEY
                                    : PGCDC__V1__BEFORE_IMAGE__BEFORE_IMAGE_FULL;
        cdc_enc_pb_row(e, ev, ev->before, key_only, &used, &msg.n_before, &msg.before);
    }
    if (row && ev->after != NULL && ev->op != CDC_EVENT_DELETE)
        cdc_enc_pb_row(e, ev, ev->after, false, &used, &msg.n_after, &msg.after);

    if (ev->op == CDC_EVENT_TRUNCATE) {
        trunc.cascade = ev->truncate.cascade;
        trunc.restart_identity = ev->truncate.restart_identity;
        for (size_t i = 0; i < nrels; i++) {
            Pgcdc__V1__Relation *r = &pb->rels[i];
            pgcdc__v1__relation__init(r);
            r->relation_id = ev->truncate.rels[i].relid;
            cdc_enc_pb_str(pb, &r->schema, ev->truncate.rels[i].schema);
            cdc_enc_pb_str(pb, &r->table, ev->truncate.rels[i].table);
            pb->relp[i] = r;
        }
        trunc.n_relations = nrels;
        trunc.relations = pb->relp;
        msg.truncate = &trunc;
    }
    if (ev->op == CDC_EVENT_MESSAGE) {
        lm.transactional = ev->message.transactional;
        cdc_enc_pb_str(pb, &lm.prefix, ev->message.prefix);
        lm.content.data = (uint8_t *)(ev->message.content ? ev->message.content : "");
        lm.content.len = ev->message.len;
        lm.lsn = ev->message.lsn;
        msg.message = &lm;
    }
    msg.processed_at_us = now_us;

    if (pb->rc < 0)
        return cdc_err(err, pb->rc, "out of memory encoding an event");
    cdc_enc_pb_finish(pb);
    if (cdc_enc_pb_pack(&msg.base, out) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory encoding an event");
    return 0;
}

int cdc_enc__pb_key(cdc_encoder *e, const cdc_event *ev, const cdc_event_value *img,
                    const cdc_event_value *other, cdc_buf *out, cdc_error *err)
{
    cdc_enc_pb *pb = e->pb;
    Pgcdc__V1__ChangeKey key = PGCDC__V1__CHANGE_KEY__INIT;

    if (cdc_enc_pb_reserve(pb, ev->op == CDC_EVENT_MESSAGE ? 0 : ev->nkeys, 0) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory encoding a key");
    cdc_enc_pb_start(pb);

    if (ev->op == CDC_EVENT_MESSAGE) {
        cdc_enc_pb_str(pb, &key.prefix, ev->message.prefix);
    } else {
        for (size_t k = 0; k < ev->nkeys; k++) {
            size_t i = ev->keys[k];
            const cdc_event_value *v;
            int krc = cdc_enc__key_value(ev, img, other, k, &v, err);
            if (krc < 0)
                return krc;
            cdc_enc_pb_column(e, &pb->cols[k], &pb->typed[k], &ev->columns[i], v);
            pb->colp[k] = &pb->cols[k];
        }
        key.n_columns = ev->nkeys;
        key.columns = pb->colp;
    }
    if (pb->rc < 0)
        return cdc_err(err, pb->rc, "out of memory encoding a key");
    cdc_enc_pb_finish(pb);
    if (cdc_enc_pb_pack(&key.base, out) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory encoding a key");
    return 0;
}

/* ---------------------------------------------------------------------------
 * Set-up
 * ------------------------------------------------------------------------- */

int cdc_enc__pb_init(cdc_encoder *e, cdc_error *err)
{
    e->pb = calloc(1, sizeof(*e->pb));
    if (e->pb == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory creating the protobuf encoder");
    /* names copied from the source info must be UTF-8 to be proto3 strings */
    if (!cdc_utf8_valid(e->name, strlen(e->name)) || !cdc_utf8_valid(e->db, strlen(e->db)) ||
        !cdc_utf8_valid(e->version, strlen(e->version)))
        return cdc_err(err, CDC_EINVAL, "topic.prefix and database name must be valid UTF-8");
    return 0;
}

void cdc_enc__pb_free(cdc_encoder *e)
{
    cdc_enc_pb *pb = e->pb;
    if (pb == NULL)
        return;
    free(pb->cols);
    free(pb->colp);
    free(pb->typed);
    free(pb->rels);
    free(pb->relp);
    free(pb->fix);
    cdc_buf_free(&pb->arena);
    free(pb);
    e->pb = NULL;
}
