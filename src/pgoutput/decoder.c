/* decoder.c - pgoutput decoder: transaction state, relation cache, change events via callbacks */
#include "pgcdc/pgoutput.h"
#include "pgcdc/error.h"
#include "pgoutput_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cdc_pgo_decoder {
    cdc_pgo_handler h;         /* callbacks */
    cdc_pgo__map rels;         /* relid -> cdc_pgo__rel */
    cdc_pgo__map types;        /* type oid -> cdc_pgo__type */
    bool in_txn;               /* between Begin and Commit */
    cdc_event_txn txn;         /* the transaction in progress; origin points to origin below */
    char *origin;              /* owned copy of the Origin message's name, or NULL */
    int64_t last_commit_ts_us; /* commit time of the last transaction decoded, 0 before one */

    /* scratch reused by every message, so steady-state decoding does not allocate */
    cdc_pgo_relation rel;    /* last Relation read */
    cdc_pgo_insert ins;      /* last Insert read */
    cdc_pgo_update upd;      /* last Update read */
    cdc_pgo_delete del;      /* last Delete read */
    cdc_pgo_truncate trunc;  /* last Truncate read */
    cdc_event_relref *trefs; /* the tables of the last Truncate */
    size_t trefs_cap;        /* allocated entries of trefs */
};

/* Values of a row of a zero-column table: never read, but not NULL. */
static const cdc_event_value no_values[1];

int cdc_pgo_decoder_new(const cdc_pgo_handler *h, cdc_pgo_decoder **ret, cdc_error *err)
{
    if (h == NULL || h->event == NULL)
        return cdc_err(err, CDC_EINVAL, "pgoutput decoder needs an event callback");
    cdc_pgo_decoder *dec = calloc(1, sizeof(*dec));
    if (dec == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory creating the pgoutput decoder");
    dec->h = *h;
    *ret = dec;
    return 0;
}

static void end_txn(cdc_pgo_decoder *dec)
{
    free(dec->origin);
    dec->origin = NULL;
    dec->in_txn = false;
    memset(&dec->txn, 0, sizeof(dec->txn));
}

void cdc_pgo_decoder_reset(cdc_pgo_decoder *dec)
{
    if (dec == NULL)
        return;
    end_txn(dec);
    cdc_pgo__map_clear(&dec->rels);
    cdc_pgo__map_clear(&dec->types);
}

void cdc_pgo_decoder_free(cdc_pgo_decoder *dec)
{
    if (dec == NULL)
        return;
    cdc_pgo_decoder_reset(dec);
    cdc_pgo_relation_clear(&dec->rel);
    cdc_pgo_insert_clear(&dec->ins);
    cdc_pgo_update_clear(&dec->upd);
    cdc_pgo_delete_clear(&dec->del);
    cdc_pgo_truncate_clear(&dec->trunc);
    free(dec->trefs);
    free(dec);
}

const cdc_event_txn *cdc_pgo_decoder_txn(const cdc_pgo_decoder *dec)
{
    return dec->in_txn ? &dec->txn : NULL;
}

size_t cdc_pgo_decoder_nrelations(const cdc_pgo_decoder *dec)
{
    return dec->rels.n;
}

/* ---------------------------------------------------------------- helpers */

/* "invalid <Type> message at <lsn>: ..." */
static int invalid(cdc_error *err, uint8_t type, cdc_lsn lsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int invalid(cdc_error *err, uint8_t type, cdc_lsn lsn, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cdc_err(err, CDC_EPROTO, "invalid %s message at " CDC_LSN_FMT ": %s",
                   cdc_pgo_msgtype_name(type), CDC_LSN_ARGS(lsn), what);
}

/* Bytes left over after a complete message are an error. */
static int check_end(const cdc_reader *r, uint8_t type, cdc_lsn lsn, cdc_error *err)
{
    size_t left = cdc_reader_remaining(r);
    if (left)
        return invalid(err, type, lsn, "%zu unexpected bytes after the end of the message", left);
    return 0;
}

static int need_txn(const cdc_pgo_decoder *dec, uint8_t type, cdc_lsn lsn, cdc_error *err)
{
    if (!dec->in_txn)
        return cdc_err(err, CDC_EPROTO,
                       "unexpected %s message at " CDC_LSN_FMT ": no transaction in progress",
                       cdc_pgo_msgtype_name(type), CDC_LSN_ARGS(lsn));
    return 0;
}

/* PostgreSQL epoch microseconds to Unix microseconds, refusing overflow. */
static int pg_to_unix_us(int64_t pg, uint8_t type, cdc_lsn lsn, int64_t *ret, cdc_error *err)
{
    if (pg > INT64_MAX - CDC_EVENT_PG_EPOCH_OFFSET_US)
        return invalid(err, type, lsn, "commit timestamp %" PRId64 " out of range", pg);
    *ret = pg + CDC_EVENT_PG_EPOCH_OFFSET_US;
    return 0;
}

/* The cached relation relid, or a protocol error. */
static int lookup_rel(const cdc_pgo_decoder *dec, uint32_t relid, uint8_t type, cdc_lsn lsn,
                      const cdc_pgo__rel **ret, cdc_error *err)
{
    const cdc_pgo__rel *rel = cdc_pgo__map_get(&dec->rels, relid);
    if (rel == NULL)
        return invalid(
            err, type, lsn,
            "unknown relation id %" PRIu32 " (no Relation message for it in this session)", relid);
    *ret = rel;
    return 0;
}

/* A tuple must have exactly the relation's columns. */
static int check_tuple(const cdc_pgo__rel *rel, const cdc_pgo_tuple *t, const char *which,
                       uint8_t type, cdc_lsn lsn, cdc_error *err)
{
    if (t->ncols != rel->ncols)
        return invalid(
            err, type, lsn, "%s has %u columns but relation \"%s\".\"%s\" (%" PRIu32 ") has %u",
            which, (unsigned)t->ncols, rel->schema, rel->table, rel->relid, (unsigned)rel->ncols);
    return 0;
}

/* An event positioned in the current transaction, relation fields from rel. */
static void init_event(cdc_pgo_decoder *dec, cdc_event *ev, cdc_event_op op, cdc_lsn lsn,
                       const cdc_pgo__rel *rel)
{
    memset(ev, 0, sizeof(*ev));
    ev->op = op;
    ev->xid = dec->txn.xid;
    ev->commit_lsn = dec->txn.commit_lsn;
    ev->end_lsn = CDC_INVALID_LSN; /* known at the Commit only */
    ev->lsn = lsn;
    ev->commit_ts_us = dec->txn.commit_ts_us;
    ev->origin = dec->txn.origin;
    ev->origin_lsn = dec->txn.origin ? dec->txn.origin_lsn : CDC_INVALID_LSN;
    if (rel) {
        ev->relid = rel->relid;
        ev->schema = rel->schema;
        ev->table = rel->table;
        ev->replident = rel->replident;
        ev->ncols = rel->ncols;
        ev->columns = rel->cols;
        ev->nkeys = rel->nkeys;
        ev->keys = rel->keys;
    }
}

static const cdc_event_value *values_of(const cdc_pgo_tuple *t)
{
    return t->cols ? t->cols : no_values;
}

/* Number the event and hand it over. */
static int emit(cdc_pgo_decoder *dec, cdc_event *ev)
{
    ev->ordinal = dec->txn.nevents++;
    return dec->h.event(ev, dec->h.arg);
}

/* ---------------------------------------------------------------- per message */

static int on_begin(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    cdc_pgo_begin b;
    int64_t ts = 0;
    int rc;

    if (dec->in_txn)
        return cdc_err(err, CDC_EPROTO,
                       "unexpected Begin message at " CDC_LSN_FMT ": transaction %" PRIu32
                       " has not committed",
                       CDC_LSN_ARGS(lsn), dec->txn.xid);
    if ((rc = cdc_pgo_read_begin(r, lsn, &b, err)) < 0 || (rc = check_end(r, 'B', lsn, err)) < 0 ||
        (rc = pg_to_unix_us(b.commit_ts, 'B', lsn, &ts, err)) < 0)
        return rc;
    memset(&dec->txn, 0, sizeof(dec->txn));
    dec->txn.xid = b.xid;
    dec->txn.commit_lsn = b.final_lsn;
    dec->txn.commit_ts_us = ts;
    dec->in_txn = true;
    return dec->h.begin ? dec->h.begin(&dec->txn, dec->h.arg) : 0;
}

static int on_commit(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    cdc_pgo_commit m;
    int64_t ts = 0;
    int rc;

    if ((rc = need_txn(dec, 'C', lsn, err)) < 0 ||
        (rc = cdc_pgo_read_commit(r, lsn, &m, err)) < 0 || (rc = check_end(r, 'C', lsn, err)) < 0 ||
        (rc = pg_to_unix_us(m.commit_ts, 'C', lsn, &ts, err)) < 0)
        return rc;
    if (m.commit_lsn != dec->txn.commit_lsn)
        return invalid(err, 'C', lsn,
                       "commit LSN " CDC_LSN_FMT " does not match the final LSN " CDC_LSN_FMT
                       " of transaction %" PRIu32,
                       CDC_LSN_ARGS(m.commit_lsn), CDC_LSN_ARGS(dec->txn.commit_lsn), dec->txn.xid);
    dec->txn.end_lsn = m.end_lsn;
    dec->txn.commit_ts_us = ts;
    dec->last_commit_ts_us = ts;
    rc = dec->h.commit ? dec->h.commit(&dec->txn, dec->h.arg) : 0;
    end_txn(dec);
    return rc;
}

static int on_origin(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    cdc_pgo_origin o;
    int rc;

    if ((rc = need_txn(dec, 'O', lsn, err)) < 0 ||
        (rc = cdc_pgo_read_origin(r, lsn, &o, err)) < 0 || (rc = check_end(r, 'O', lsn, err)) < 0)
        return rc;
    if (dec->txn.nevents > 0)
        return invalid(err, 'O', lsn, "transaction %" PRIu32 " already sent changes", dec->txn.xid);
    char *name = strdup(o.name);
    if (name == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory decoding Origin message");
    free(dec->origin);
    dec->origin = name;
    dec->txn.origin = name;
    dec->txn.origin_lsn = o.origin_lsn;
    return 0;
}

static int on_relation(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    int rc;

    if ((rc = cdc_pgo_read_relation(r, lsn, &dec->rel, err)) < 0 ||
        (rc = check_end(r, 'R', lsn, err)) < 0)
        return rc;
    cdc_pgo__rel *rel = cdc_pgo__rel_new(&dec->rel, &dec->types);
    if (rel == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory caching relation %" PRIu32, dec->rel.relid);
    if (cdc_pgo__map_put(&dec->rels, rel->relid, rel) < 0) {
        free(rel);
        return cdc_err(err, CDC_ENOMEM, "out of memory caching relation %" PRIu32, dec->rel.relid);
    }
    return 0;
}

static int on_type(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    cdc_pgo_type t;
    int rc;

    if ((rc = cdc_pgo_read_type(r, lsn, &t, err)) < 0 || (rc = check_end(r, 'Y', lsn, err)) < 0)
        return rc;
    cdc_pgo__type *ty = cdc_pgo__type_new(&t);
    if (ty == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory caching type %" PRIu32, t.oid);
    if (cdc_pgo__map_put(&dec->types, ty->oid, ty) < 0) {
        free(ty);
        return cdc_err(err, CDC_ENOMEM, "out of memory caching type %" PRIu32, t.oid);
    }
    return 0;
}

static int on_insert(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    const cdc_pgo__rel *rel = NULL;
    cdc_event ev;
    int rc;

    if ((rc = need_txn(dec, 'I', lsn, err)) < 0 ||
        (rc = cdc_pgo_read_insert(r, lsn, &dec->ins, err)) < 0 ||
        (rc = check_end(r, 'I', lsn, err)) < 0 ||
        (rc = lookup_rel(dec, dec->ins.relid, 'I', lsn, &rel, err)) < 0 ||
        (rc = check_tuple(rel, &dec->ins.newtup, "new tuple", 'I', lsn, err)) < 0)
        return rc;
    init_event(dec, &ev, CDC_EVENT_INSERT, lsn, rel);
    ev.after = values_of(&dec->ins.newtup);
    return emit(dec, &ev);
}

static int on_update(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    const cdc_pgo__rel *rel = NULL;
    cdc_pgo_update *u = &dec->upd;
    cdc_event ev;
    int rc;

    if ((rc = need_txn(dec, 'U', lsn, err)) < 0 || (rc = cdc_pgo_read_update(r, lsn, u, err)) < 0 ||
        (rc = check_end(r, 'U', lsn, err)) < 0 ||
        (rc = lookup_rel(dec, u->relid, 'U', lsn, &rel, err)) < 0 ||
        (u->old_tag && (rc = check_tuple(rel, &u->oldtup, "old tuple", 'U', lsn, err)) < 0) ||
        (rc = check_tuple(rel, &u->newtup, "new tuple", 'U', lsn, err)) < 0)
        return rc;
    init_event(dec, &ev, CDC_EVENT_UPDATE, lsn, rel);
    if (u->old_tag) {
        ev.before_image = (cdc_event_image)u->old_tag;
        ev.before = values_of(&u->oldtup);
    }
    ev.after = values_of(&u->newtup);
    return emit(dec, &ev);
}

static int on_delete(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    const cdc_pgo__rel *rel = NULL;
    cdc_pgo_delete *d = &dec->del;
    cdc_event ev;
    int rc;

    if ((rc = need_txn(dec, 'D', lsn, err)) < 0 || (rc = cdc_pgo_read_delete(r, lsn, d, err)) < 0 ||
        (rc = check_end(r, 'D', lsn, err)) < 0 ||
        (rc = lookup_rel(dec, d->relid, 'D', lsn, &rel, err)) < 0 ||
        (rc = check_tuple(rel, &d->oldtup, "old tuple", 'D', lsn, err)) < 0)
        return rc;
    init_event(dec, &ev, CDC_EVENT_DELETE, lsn, rel);
    ev.before_image = (cdc_event_image)d->old_tag;
    ev.before = values_of(&d->oldtup);
    return emit(dec, &ev);
}

static int on_truncate(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    cdc_pgo_truncate *t = &dec->trunc;
    int rc;

    if ((rc = need_txn(dec, 'T', lsn, err)) < 0 ||
        (rc = cdc_pgo_read_truncate(r, lsn, t, err)) < 0 || (rc = check_end(r, 'T', lsn, err)) < 0)
        return rc;
    /* every relation must be known before the first event goes out */
    for (uint32_t i = 0; i < t->nrelids; i++) {
        const cdc_pgo__rel *rel = NULL;
        if ((rc = lookup_rel(dec, t->relids[i], 'T', lsn, &rel, err)) < 0)
            return rc;
    }
    if (t->nrelids > dec->trefs_cap) {
        cdc_event_relref *p = realloc(dec->trefs, t->nrelids * sizeof(*p));
        if (p == NULL)
            return cdc_err(err, CDC_ENOMEM, "out of memory decoding Truncate message");
        dec->trefs = p;
        dec->trefs_cap = t->nrelids;
    }
    for (uint32_t i = 0; i < t->nrelids; i++) {
        const cdc_pgo__rel *rel = cdc_pgo__map_get(&dec->rels, t->relids[i]);
        dec->trefs[i] = (cdc_event_relref){rel->relid, rel->schema, rel->table};
    }
    for (uint32_t i = 0; i < t->nrelids; i++) {
        cdc_event ev;
        init_event(dec, &ev, CDC_EVENT_TRUNCATE, lsn, cdc_pgo__map_get(&dec->rels, t->relids[i]));
        ev.truncate.cascade = (t->flags & CDC_PGO_TRUNCATE_CASCADE) != 0;
        ev.truncate.restart_identity = (t->flags & CDC_PGO_TRUNCATE_RESTART_IDENTITY) != 0;
        ev.truncate.nrels = t->nrelids;
        ev.truncate.rels = dec->trefs;
        if ((rc = emit(dec, &ev)) < 0)
            return rc;
    }
    return 0;
}

static int on_message(cdc_pgo_decoder *dec, cdc_reader *r, cdc_lsn lsn, cdc_error *err)
{
    cdc_pgo_message m;
    cdc_event ev;
    int rc;

    if ((rc = cdc_pgo_read_message(r, lsn, &m, err)) < 0 || (rc = check_end(r, 'M', lsn, err)) < 0)
        return rc;
    bool transactional = (m.flags & CDC_PGO_MESSAGE_TRANSACTIONAL) != 0;
    if (transactional && !dec->in_txn)
        return cdc_err(err, CDC_EPROTO,
                       "unexpected transactional Message message at " CDC_LSN_FMT
                       ": no transaction in progress",
                       CDC_LSN_ARGS(lsn));
    if (transactional) {
        init_event(dec, &ev, CDC_EVENT_MESSAGE, lsn, NULL);
    } else {
        /* outside any transaction: positioned by its own LSN, numbered alone, and timed (it
         * has no commit) as Debezium times it: at the last commit before it, if any */
        memset(&ev, 0, sizeof(ev));
        ev.op = CDC_EVENT_MESSAGE;
        ev.commit_lsn = m.lsn;
        ev.lsn = lsn;
        ev.commit_ts_us = dec->last_commit_ts_us;
    }
    ev.message.transactional = transactional;
    ev.message.lsn = m.lsn;
    ev.message.prefix = m.prefix;
    ev.message.len = m.len;
    ev.message.content = (const char *)m.content;
    if (transactional)
        return emit(dec, &ev);
    return dec->h.event(&ev, dec->h.arg);
}

/* ---------------------------------------------------------------- entry */

int cdc_pgo_decoder_feed(cdc_pgo_decoder *dec, const void *data, size_t len, cdc_lsn wal_start,
                         cdc_error *err)
{
    cdc_reader r;
    uint8_t type;

    cdc_reader_init(&r, data, len);
    if (cdc_reader_u8(&r, &type) < 0)
        return cdc_err(err, CDC_EPROTO, "empty pgoutput message at " CDC_LSN_FMT,
                       CDC_LSN_ARGS(wal_start));
    switch (type) {
    case CDC_PGO_BEGIN: return on_begin(dec, &r, wal_start, err);
    case CDC_PGO_COMMIT: return on_commit(dec, &r, wal_start, err);
    case CDC_PGO_ORIGIN: return on_origin(dec, &r, wal_start, err);
    case CDC_PGO_RELATION: return on_relation(dec, &r, wal_start, err);
    case CDC_PGO_TYPE: return on_type(dec, &r, wal_start, err);
    case CDC_PGO_INSERT: return on_insert(dec, &r, wal_start, err);
    case CDC_PGO_UPDATE: return on_update(dec, &r, wal_start, err);
    case CDC_PGO_DELETE: return on_delete(dec, &r, wal_start, err);
    case CDC_PGO_TRUNCATE: return on_truncate(dec, &r, wal_start, err);
    case CDC_PGO_MESSAGE: return on_message(dec, &r, wal_start, err);
    }
    if (cdc_pgo_msgtype_name(type))
        return cdc_err(err, CDC_EPROTO,
                       "unexpected %s message at " CDC_LSN_FMT
                       ": streaming and two-phase messages are not sent with proto_version 1",
                       cdc_pgo_msgtype_name(type), CDC_LSN_ARGS(wal_start));
    return cdc_err(err, CDC_EPROTO, "unknown pgoutput message type 0x%02x at " CDC_LSN_FMT, type,
                   CDC_LSN_ARGS(wal_start));
}
