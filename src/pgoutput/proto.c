/* proto.c - read functions for each pgoutput message, checking every field as it is read */
#include "pgcdc/pgoutput.h"
#include "pgcdc/error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Smallest encodings, used to refuse counts the remaining bytes cannot hold. */
#define MIN_RELCOL_BYTES   10 /* flags, "" name, type oid, typmod */
#define MIN_TUPLECOL_BYTES 1

const char *cdc_pgo_msgtype_name(uint8_t type)
{
    switch (type) {
    case CDC_PGO_BEGIN: return "Begin";
    case CDC_PGO_COMMIT: return "Commit";
    case CDC_PGO_ORIGIN: return "Origin";
    case CDC_PGO_RELATION: return "Relation";
    case CDC_PGO_TYPE: return "Type";
    case CDC_PGO_INSERT: return "Insert";
    case CDC_PGO_UPDATE: return "Update";
    case CDC_PGO_DELETE: return "Delete";
    case CDC_PGO_TRUNCATE: return "Truncate";
    case CDC_PGO_MESSAGE: return "Message";
    case CDC_PGO_STREAM_START: return "Stream Start";
    case CDC_PGO_STREAM_STOP: return "Stream Stop";
    case CDC_PGO_STREAM_COMMIT: return "Stream Commit";
    case CDC_PGO_STREAM_ABORT: return "Stream Abort";
    case CDC_PGO_BEGIN_PREPARE: return "Begin Prepare";
    case CDC_PGO_PREPARE: return "Prepare";
    case CDC_PGO_COMMIT_PREPARED: return "Commit Prepared";
    case CDC_PGO_ROLLBACK_PREPARED: return "Rollback Prepared";
    case CDC_PGO_STREAM_PREPARE: return "Stream Prepare";
    }
    return NULL;
}

/* ---------------------------------------------------------------- checked reads */

/* What is being read: names the message in every error. */
typedef struct pctx {
    cdc_reader *r;   /* the message body */
    const char *msg; /* "Update" */
    cdc_lsn lsn;     /* WAL start of the message */
    cdc_error *err;  /* filled on error, may be NULL */
} pctx;

/* Fail with "<kind> <msg> message at <lsn>: <field>: <what>"; returns CDC_EPROTO. */
static int fail(const pctx *c, const char *kind, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(const pctx *c, const char *kind, const char *field, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cdc_err(c->err, CDC_EPROTO, "%s %s message at " CDC_LSN_FMT ": %s: %s", kind, c->msg,
                   CDC_LSN_ARGS(c->lsn), field, what);
}

static int short_read(const pctx *c, const char *field, size_t need)
{
    return fail(c, "truncated", field, "need %zu bytes, %zu remain", need,
                cdc_reader_remaining(c->r));
}

static int rd_u8(const pctx *c, const char *field, uint8_t *v)
{
    return cdc_reader_u8(c->r, v) < 0 ? short_read(c, field, 1) : 0;
}

static int rd_i16(const pctx *c, const char *field, int16_t *v)
{
    return cdc_reader_i16(c->r, v) < 0 ? short_read(c, field, 2) : 0;
}

static int rd_u32(const pctx *c, const char *field, uint32_t *v)
{
    return cdc_reader_u32(c->r, v) < 0 ? short_read(c, field, 4) : 0;
}

static int rd_i32(const pctx *c, const char *field, int32_t *v)
{
    return cdc_reader_i32(c->r, v) < 0 ? short_read(c, field, 4) : 0;
}

static int rd_i64(const pctx *c, const char *field, int64_t *v)
{
    return cdc_reader_i64(c->r, v) < 0 ? short_read(c, field, 8) : 0;
}

static int rd_lsn(const pctx *c, const char *field, cdc_lsn *v)
{
    return cdc_reader_u64(c->r, v) < 0 ? short_read(c, field, 8) : 0;
}

static int rd_str(const pctx *c, const char *field, const char **v)
{
    if (cdc_reader_str(c->r, v, NULL) < 0)
        return fail(c, "truncated", field, "no terminating NUL in the remaining %zu bytes",
                    cdc_reader_remaining(c->r));
    return 0;
}

/* A non-zero oid naming a relation or type. */
static int rd_oid(const pctx *c, const char *field, uint32_t *v)
{
    uint32_t oid;
    int rc = rd_u32(c, field, &oid);
    if (rc < 0)
        return rc;
    if (oid == 0)
        return fail(c, "invalid", field, "oid 0");
    *v = oid;
    return 0;
}

/* Make room for n elements of size el in *arr (capacity *cap); 0 or CDC_ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t el)
{
    if (n <= *cap)
        return 0;
    size_t want = *cap ? *cap : 8;
    while (want < n)
        want *= 2;
    void *p = realloc(*arr, want * el);
    if (p == NULL)
        return CDC_ENOMEM;
    *arr = p;
    *cap = want;
    return 0;
}

static int no_memory(const pctx *c, const char *what)
{
    return cdc_err(c->err, CDC_ENOMEM, "out of memory reading %s message at " CDC_LSN_FMT ": %s",
                   c->msg, CDC_LSN_ARGS(c->lsn), what);
}

/* ---------------------------------------------------------------- TupleData */

/* Read a TupleData into t; which ("new tuple") names it in errors. */
/*
 * The field name of column i of which, for error messages only: built when a
 * read fails, never on the hot path (formatting it per column cost a fifth of
 * pgcdc's CPU).
 */
static const char *col_field(char *buf, size_t sz, int i, const char *which, const char *suffix)
{
    snprintf(buf, sz, "column %d of %s%s", i + 1, which, suffix);
    return buf;
}

static int read_tuple(const pctx *c, const char *which, cdc_pgo_tuple *t)
{
    char field[96];
    int16_t n;

    if (cdc_reader_i16(c->r, &n) < 0) {
        snprintf(field, sizeof(field), "%s: column count", which);
        return short_read(c, field, 2);
    }
    if (n < 0) {
        snprintf(field, sizeof(field), "%s: column count", which);
        return fail(c, "invalid", field, "negative count %d", n);
    }
    if ((size_t)n * MIN_TUPLECOL_BYTES > cdc_reader_remaining(c->r)) {
        snprintf(field, sizeof(field), "%s: column count", which);
        return fail(c, "truncated", field, "%d columns cannot fit in the remaining %zu bytes", n,
                    cdc_reader_remaining(c->r));
    }
    if (grow((void **)&t->cols, &t->cap, (size_t)n, sizeof(*t->cols)) < 0)
        return no_memory(c, which);

    for (int i = 0; i < n; i++) {
        cdc_event_value *v = &t->cols[i];
        uint8_t kind;
        int32_t len;
        const uint8_t *data;

        if (cdc_reader_u8(c->r, &kind) < 0)
            return short_read(c, col_field(field, sizeof(field), i, which, ""), 1);
        switch (kind) {
        case CDC_PGO_COL_NULL:
        case CDC_PGO_COL_UNCHANGED_TOAST:
            v->state = (cdc_event_state)kind;
            v->len = 0;
            v->data = NULL;
            break;
        case CDC_PGO_COL_TEXT:
        case CDC_PGO_COL_BINARY:
            if (cdc_reader_i32(c->r, &len) < 0)
                return short_read(c, col_field(field, sizeof(field), i, which, ": length"), 4);
            if (len < 0)
                return fail(c, "invalid", col_field(field, sizeof(field), i, which, ""),
                            "negative length %" PRId32, len);
            if (cdc_reader_bytes(c->r, (size_t)len, &data) < 0)
                return fail(c, "truncated", col_field(field, sizeof(field), i, which, ""),
                            "length %" PRId32 " exceeds remaining %zu bytes", len,
                            cdc_reader_remaining(c->r));
            v->state = (cdc_event_state)kind;
            v->len = (uint32_t)len;
            v->data = (const char *)data;
            break;
        default:
            return fail(c, "invalid", col_field(field, sizeof(field), i, which, ""),
                        "unknown column kind 0x%02x", kind);
        }
    }
    t->ncols = (uint16_t)n;
    return 0;
}

/* ---------------------------------------------------------------- messages */

int cdc_pgo_read_begin(cdc_reader *r, cdc_lsn lsn, cdc_pgo_begin *ret, cdc_error *err)
{
    pctx c = {r, "Begin", lsn, err};
    cdc_pgo_begin b;
    int rc;

    if ((rc = rd_lsn(&c, "final LSN", &b.final_lsn)) < 0 ||
        (rc = rd_i64(&c, "commit timestamp", &b.commit_ts)) < 0 ||
        (rc = rd_u32(&c, "xid", &b.xid)) < 0)
        return rc;
    if (b.final_lsn == CDC_INVALID_LSN)
        return fail(&c, "invalid", "final LSN", "not set");
    *ret = b;
    return 0;
}

int cdc_pgo_read_commit(cdc_reader *r, cdc_lsn lsn, cdc_pgo_commit *ret, cdc_error *err)
{
    pctx c = {r, "Commit", lsn, err};
    cdc_pgo_commit m;
    int rc;

    if ((rc = rd_u8(&c, "flags", &m.flags)) < 0)
        return rc;
    if (m.flags != CDC_PGO_COMMIT_FLAGS_NONE)
        return fail(&c, "invalid", "flags", "unrecognized flags 0x%02x", m.flags);
    if ((rc = rd_lsn(&c, "commit LSN", &m.commit_lsn)) < 0 ||
        (rc = rd_lsn(&c, "end LSN", &m.end_lsn)) < 0 ||
        (rc = rd_i64(&c, "commit timestamp", &m.commit_ts)) < 0)
        return rc;
    if (m.commit_lsn == CDC_INVALID_LSN)
        return fail(&c, "invalid", "commit LSN", "not set");
    if (m.end_lsn <= m.commit_lsn)
        return fail(&c, "invalid", "end LSN",
                    CDC_LSN_FMT " does not follow the commit LSN " CDC_LSN_FMT,
                    CDC_LSN_ARGS(m.end_lsn), CDC_LSN_ARGS(m.commit_lsn));
    *ret = m;
    return 0;
}

int cdc_pgo_read_origin(cdc_reader *r, cdc_lsn lsn, cdc_pgo_origin *ret, cdc_error *err)
{
    pctx c = {r, "Origin", lsn, err};
    cdc_pgo_origin o;
    int rc;

    if ((rc = rd_lsn(&c, "origin LSN", &o.origin_lsn)) < 0 ||
        (rc = rd_str(&c, "origin name", &o.name)) < 0)
        return rc;
    *ret = o;
    return 0;
}

int cdc_pgo_read_relation(cdc_reader *r, cdc_lsn lsn, cdc_pgo_relation *ret, cdc_error *err)
{
    pctx c = {r, "Relation", lsn, err};
    char field[64];
    uint8_t ri;
    int16_t n;
    int rc;

    if ((rc = rd_oid(&c, "relation id", &ret->relid)) < 0 ||
        (rc = rd_str(&c, "namespace", &ret->nspname)) < 0 ||
        (rc = rd_str(&c, "relation name", &ret->relname)) < 0 ||
        (rc = rd_u8(&c, "replica identity", &ri)) < 0)
        return rc;
    if (ri != CDC_EVENT_REPLIDENT_DEFAULT && ri != CDC_EVENT_REPLIDENT_NOTHING &&
        ri != CDC_EVENT_REPLIDENT_FULL && ri != CDC_EVENT_REPLIDENT_INDEX)
        return fail(&c, "invalid", "replica identity", "unknown setting 0x%02x", ri);
    ret->replident = ri;
    if ((rc = rd_i16(&c, "column count", &n)) < 0)
        return rc;
    if (n < 0)
        return fail(&c, "invalid", "column count", "negative count %d", n);
    if ((size_t)n * MIN_RELCOL_BYTES > cdc_reader_remaining(r))
        return fail(&c, "truncated", "column count",
                    "%d columns cannot fit in the remaining %zu bytes", n, cdc_reader_remaining(r));
    if (grow((void **)&ret->cols, &ret->cap, (size_t)n, sizeof(*ret->cols)) < 0)
        return no_memory(&c, "columns");

    for (int i = 0; i < n; i++) {
        cdc_pgo_relcol *col = &ret->cols[i];
        snprintf(field, sizeof(field), "column %d: flags", i + 1);
        if ((rc = rd_u8(&c, field, &col->flags)) < 0)
            return rc;
        if (col->flags & ~CDC_PGO_RELATION_COLUMN_KEY)
            return fail(&c, "invalid", field, "unrecognized flags 0x%02x", col->flags);
        snprintf(field, sizeof(field), "column %d: name", i + 1);
        if ((rc = rd_str(&c, field, &col->name)) < 0)
            return rc;
        snprintf(field, sizeof(field), "column %d: type oid", i + 1);
        if ((rc = rd_oid(&c, field, &col->type_oid)) < 0)
            return rc;
        snprintf(field, sizeof(field), "column %d: type modifier", i + 1);
        if ((rc = rd_i32(&c, field, &col->typmod)) < 0)
            return rc;
    }
    ret->ncols = (uint16_t)n;
    return 0;
}

int cdc_pgo_read_type(cdc_reader *r, cdc_lsn lsn, cdc_pgo_type *ret, cdc_error *err)
{
    pctx c = {r, "Type", lsn, err};
    cdc_pgo_type t;
    int rc;

    if ((rc = rd_oid(&c, "type oid", &t.oid)) < 0 ||
        (rc = rd_str(&c, "namespace", &t.nspname)) < 0 ||
        (rc = rd_str(&c, "type name", &t.typname)) < 0)
        return rc;
    *ret = t;
    return 0;
}

/* Expect the tuple tag want ('N'); field names it in errors. */
static int expect_tag(const pctx *c, uint8_t tag, uint8_t want, const char *field)
{
    if (tag != want)
        return fail(c, "invalid", field, "expected '%c' but found 0x%02x", want, tag);
    return 0;
}

int cdc_pgo_read_insert(cdc_reader *r, cdc_lsn lsn, cdc_pgo_insert *ret, cdc_error *err)
{
    pctx c = {r, "Insert", lsn, err};
    uint8_t tag;
    int rc;

    if ((rc = rd_oid(&c, "relation id", &ret->relid)) < 0 ||
        (rc = rd_u8(&c, "tuple tag", &tag)) < 0 ||
        (rc = expect_tag(&c, tag, CDC_PGO_TUPLE_NEW, "tuple tag")) < 0)
        return rc;
    return read_tuple(&c, "new tuple", &ret->newtup);
}

int cdc_pgo_read_update(cdc_reader *r, cdc_lsn lsn, cdc_pgo_update *ret, cdc_error *err)
{
    pctx c = {r, "Update", lsn, err};
    uint8_t tag;
    int rc;

    if ((rc = rd_oid(&c, "relation id", &ret->relid)) < 0 ||
        (rc = rd_u8(&c, "tuple tag", &tag)) < 0)
        return rc;
    ret->old_tag = 0;
    if (tag == CDC_PGO_TUPLE_KEY || tag == CDC_PGO_TUPLE_OLD) {
        const char *which = tag == CDC_PGO_TUPLE_KEY ? "old key tuple" : "old tuple";
        if ((rc = read_tuple(&c, which, &ret->oldtup)) < 0)
            return rc;
        ret->old_tag = tag;
        if ((rc = rd_u8(&c, "new tuple tag", &tag)) < 0 ||
            (rc = expect_tag(&c, tag, CDC_PGO_TUPLE_NEW, "new tuple tag")) < 0)
            return rc;
    } else if (tag != CDC_PGO_TUPLE_NEW) {
        return fail(&c, "invalid", "tuple tag", "expected 'K', 'O' or 'N' but found 0x%02x", tag);
    }
    return read_tuple(&c, "new tuple", &ret->newtup);
}

int cdc_pgo_read_delete(cdc_reader *r, cdc_lsn lsn, cdc_pgo_delete *ret, cdc_error *err)
{
    pctx c = {r, "Delete", lsn, err};
    uint8_t tag;
    int rc;

    if ((rc = rd_oid(&c, "relation id", &ret->relid)) < 0 ||
        (rc = rd_u8(&c, "tuple tag", &tag)) < 0)
        return rc;
    if (tag != CDC_PGO_TUPLE_KEY && tag != CDC_PGO_TUPLE_OLD)
        return fail(&c, "invalid", "tuple tag", "expected 'K' or 'O' but found 0x%02x", tag);
    ret->old_tag = tag;
    return read_tuple(&c, tag == CDC_PGO_TUPLE_KEY ? "old key tuple" : "old tuple", &ret->oldtup);
}

int cdc_pgo_read_truncate(cdc_reader *r, cdc_lsn lsn, cdc_pgo_truncate *ret, cdc_error *err)
{
    pctx c = {r, "Truncate", lsn, err};
    char field[48];
    int32_t n;
    uint8_t flags;
    int rc;

    if ((rc = rd_i32(&c, "relation count", &n)) < 0)
        return rc;
    if (n <= 0)
        return fail(&c, "invalid", "relation count", "%" PRId32 " relations", n);
    if ((rc = rd_u8(&c, "flags", &flags)) < 0)
        return rc;
    if (flags & ~(CDC_PGO_TRUNCATE_CASCADE | CDC_PGO_TRUNCATE_RESTART_IDENTITY))
        return fail(&c, "invalid", "flags", "unrecognized flags 0x%02x", flags);
    if ((size_t)n > cdc_reader_remaining(r) / 4)
        return fail(&c, "truncated", "relation ids", "%" PRId32 " ids need %zu bytes, %zu remain",
                    n, (size_t)n * 4, cdc_reader_remaining(r));
    if (grow((void **)&ret->relids, &ret->cap, (size_t)n, sizeof(*ret->relids)) < 0)
        return no_memory(&c, "relation ids");
    for (int32_t i = 0; i < n; i++) {
        snprintf(field, sizeof(field), "relation id %" PRId32, i + 1);
        if ((rc = rd_oid(&c, field, &ret->relids[i])) < 0)
            return rc;
    }
    ret->flags = flags;
    ret->nrelids = (uint32_t)n;
    return 0;
}

int cdc_pgo_read_message(cdc_reader *r, cdc_lsn lsn, cdc_pgo_message *ret, cdc_error *err)
{
    pctx c = {r, "Message", lsn, err};
    cdc_pgo_message m;
    int32_t len;
    int rc;

    if ((rc = rd_u8(&c, "flags", &m.flags)) < 0)
        return rc;
    if (m.flags & ~CDC_PGO_MESSAGE_TRANSACTIONAL)
        return fail(&c, "invalid", "flags", "unrecognized flags 0x%02x", m.flags);
    if ((rc = rd_lsn(&c, "message LSN", &m.lsn)) < 0 ||
        (rc = rd_str(&c, "prefix", &m.prefix)) < 0 || (rc = rd_i32(&c, "content length", &len)) < 0)
        return rc;
    if (len < 0)
        return fail(&c, "invalid", "content length", "negative length %" PRId32, len);
    if (cdc_reader_bytes(r, (size_t)len, &m.content) < 0)
        return fail(&c, "truncated", "content", "length %" PRId32 " exceeds remaining %zu bytes",
                    len, cdc_reader_remaining(r));
    m.len = (uint32_t)len;
    *ret = m;
    return 0;
}

/* ---------------------------------------------------------------- clear */

void cdc_pgo_relation_clear(cdc_pgo_relation *rel)
{
    if (rel == NULL)
        return;
    free(rel->cols);
    memset(rel, 0, sizeof(*rel));
}

void cdc_pgo_tuple_clear(cdc_pgo_tuple *tup)
{
    if (tup == NULL)
        return;
    free(tup->cols);
    memset(tup, 0, sizeof(*tup));
}

void cdc_pgo_insert_clear(cdc_pgo_insert *ins)
{
    if (ins == NULL)
        return;
    cdc_pgo_tuple_clear(&ins->newtup);
    ins->relid = 0;
}

void cdc_pgo_update_clear(cdc_pgo_update *upd)
{
    if (upd == NULL)
        return;
    cdc_pgo_tuple_clear(&upd->oldtup);
    cdc_pgo_tuple_clear(&upd->newtup);
    upd->relid = 0;
    upd->old_tag = 0;
}

void cdc_pgo_delete_clear(cdc_pgo_delete *del)
{
    if (del == NULL)
        return;
    cdc_pgo_tuple_clear(&del->oldtup);
    del->relid = 0;
    del->old_tag = 0;
}

void cdc_pgo_truncate_clear(cdc_pgo_truncate *trunc)
{
    if (trunc == NULL)
        return;
    free(trunc->relids);
    memset(trunc, 0, sizeof(*trunc));
}
