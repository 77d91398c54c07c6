/* protobuf.c - ChangeEvent / ChangeKey (proto/pgcdc/v1/change_event.proto) with protobuf-c */
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
    char **field; /* where the pointer goes */
    size_t off;   /* offset of the string in the arena */
} cdc_enc_fixup;

struct cdc_enc_pb {
    Pgcdc__V1__Column *cols;  /* column structs, cols_cap of them */
    Pgcdc__V1__Column **colp; /* pointers to them, as the repeated fields want */
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
        size_t cap = pb->cols_cap, cap2 = pb->cols_cap;
        if (cdc_enc_pb_grow((void **)&pb->cols, &cap, ncols, sizeof(*pb->cols)) < 0 ||
            cdc_enc_pb_grow((void **)&pb->colp, &cap2, ncols, sizeof(*pb->colp)) < 0)
            return CDC_ENOMEM;
        pb->cols_cap = cap < cap2 ? cap : cap2;
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

/* Record that *field must point at arena offset off once the arena is final. */
static void cdc_enc_pb_fixup(cdc_enc_pb *pb, char **field, size_t off)
{
    if (pb->rc == 0 &&
        cdc_enc_pb_grow((void **)&pb->fix, &pb->fix_cap, pb->nfix + 1, sizeof(*pb->fix)) < 0)
        pb->rc = CDC_ENOMEM;
    if (pb->rc)
        return;
    pb->fix[pb->nfix++] = (cdc_enc_fixup){field, off};
    *field = (char *)protobuf_c_empty_string; /* until the fix-up */
}

static void cdc_enc_pb_finish(cdc_enc_pb *pb)
{
    for (size_t i = 0; i < pb->nfix; i++)
        *pb->fix[i].field = pb->arena.data + pb->fix[i].off;
}

/* Set *field to n bytes at s plus a NUL, copied into the arena. */
static void cdc_enc_pb_copy(cdc_enc_pb *pb, char **field, const char *s, size_t n)
{
    size_t off = pb->arena.len;
    if (pb->rc == 0 && (cdc_buf_append(&pb->arena, s, n) < 0 || cdc_buf_putc(&pb->arena, 0) < 0))
        pb->rc = CDC_ENOMEM;
    cdc_enc_pb_fixup(pb, field, off);
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
    if (cdc_enc__utf8_valid(s, n)) {
        *field = (char *)s; /* packing only reads it */
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t off = pb->arena.len;
    for (size_t i = 0; i < n && pb->rc == 0;) {
        size_t k = cdc_enc__utf8_seq(p + i, n - i);
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

/* Fill c from one column description and value, keeping the three states apart. */
static void cdc_enc_pb_column(cdc_enc_pb *pb, Pgcdc__V1__Column *c, const cdc_event_column *col,
                              const cdc_event_value *v)
{
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
        if (memchr(data, 0, v->len) == NULL && cdc_enc__utf8_valid(data, v->len)) {
            c->value_case = PGCDC__V1__COLUMN__VALUE_TEXT;
            cdc_enc_pb_copy(pb, &c->text, data, v->len);
        } else {
            c->value_case = PGCDC__V1__COLUMN__VALUE_RAW_TEXT;
            c->raw_text.data = (uint8_t *)data; /* packing only reads it */
            c->raw_text.len = v->len;
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
static void cdc_enc_pb_row(cdc_enc_pb *pb, const cdc_event *ev, const cdc_event_value *row,
                           bool key_only, size_t *used, size_t *ret_n, Pgcdc__V1__Column ***ret_p)
{
    size_t start = *used, k = 0;
    for (size_t i = 0; i < ev->ncols; i++) {
        if (key_only) {
            while (k < ev->nkeys && ev->keys[k] < i)
                k++;
            if (k == ev->nkeys || ev->keys[k] != i)
                continue;
        }
        Pgcdc__V1__Column *c = &pb->cols[*used];
        cdc_enc_pb_column(pb, c, &ev->columns[i], cdc_enc__value(ev, row, i));
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
        cdc_enc_pb_row(pb, ev, ev->before, key_only, &used, &msg.n_before, &msg.before);
    }
    if (row && ev->after != NULL && ev->op != CDC_EVENT_DELETE)
        cdc_enc_pb_row(pb, ev, ev->after, false, &used, &msg.n_after, &msg.after);

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
            if (i >= ev->ncols)
                return cdc_err(err, CDC_EINVAL, "key column %zu of \"%s.%s\" out of range", i,
                               ev->schema ? ev->schema : "", ev->table ? ev->table : "");
            const cdc_event_value *v = &img[i];
            if (v->state == CDC_EVENT_UNCHANGED_TOAST && other != NULL &&
                other[i].state != CDC_EVENT_UNCHANGED_TOAST)
                v = &other[i];
            if (v->state == CDC_EVENT_UNCHANGED_TOAST)
                return cdc_err(
                    err, CDC_EINVAL, "key column \"%s\" of \"%s.%s\" is an unchanged TOAST value",
                    ev->columns[i].name, ev->schema ? ev->schema : "", ev->table ? ev->table : "");
            cdc_enc_pb_column(pb, &pb->cols[k], &ev->columns[i], v);
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
    if (!cdc_enc__utf8_valid(e->name, strlen(e->name)) ||
        !cdc_enc__utf8_valid(e->db, strlen(e->db)) ||
        !cdc_enc__utf8_valid(e->version, strlen(e->version)))
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
    free(pb->rels);
    free(pb->relp);
    free(pb->fix);
    cdc_buf_free(&pb->arena);
    free(pb);
    e->pb = NULL;
}
