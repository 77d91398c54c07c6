/* event.h - the change event: one row change, truncate or logical message, with its position */
#ifndef PGCDC_EVENT_H
#define PGCDC_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/buf.h"
#include "pgcdc/lsn.h"
#include "pgcdc/utf8.h"

/*
 * Ownership: an event is produced by a source (the pgoutput decoder, later the
 * snapshot) and handed to a callback. The event and everything it points to
 * are borrowed: valid only until that callback returns. A consumer that needs
 * data later copies it.
 */

/* Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's timestamp epoch). */
#define CDC_EVENT_PG_EPOCH_OFFSET_US INT64_C(946684800000000)

/* The operation; values are Debezium's "op" letters. */
typedef enum cdc_event_op {
    CDC_EVENT_INSERT = 'c',   /* create */
    CDC_EVENT_UPDATE = 'u',   /* update */
    CDC_EVENT_DELETE = 'd',   /* delete */
    CDC_EVENT_TRUNCATE = 't', /* truncate, one event per truncated table */
    CDC_EVENT_MESSAGE = 'm',  /* pg_logical_emit_message() */
    CDC_EVENT_READ = 'r',     /* snapshot read */
} cdc_event_op;

/*
 * State of one column value; values are pgoutput's TupleData bytes. NULL,
 * UNCHANGED_TOAST and an empty TEXT value (len 0) are three different things.
 */
typedef enum cdc_event_state {
    CDC_EVENT_NULL = 'n',            /* SQL NULL */
    CDC_EVENT_UNCHANGED_TOAST = 'u', /* TOASTed value not changed by the update: not sent */
    CDC_EVENT_TEXT = 't',            /* text output form of the type */
    CDC_EVENT_BINARY = 'b',          /* binary send form (subscription option binary) */
} cdc_event_state;

/* Replica identity of the table; values are pg_class.relreplident. */
typedef enum cdc_event_replident {
    CDC_EVENT_REPLIDENT_DEFAULT = 'd', /* primary key, if any */
    CDC_EVENT_REPLIDENT_NOTHING = 'n', /* no old values at all */
    CDC_EVENT_REPLIDENT_FULL = 'f',    /* old values of every column */
    CDC_EVENT_REPLIDENT_INDEX = 'i',   /* columns of a chosen unique index */
} cdc_event_replident;

/* What the before image holds; values are pgoutput's old-tuple tags. */
typedef enum cdc_event_image {
    CDC_EVENT_IMAGE_NONE = 0,   /* no before image (insert, update keeping the key) */
    CDC_EVENT_IMAGE_KEY = 'K',  /* key columns only; other columns are NULL */
    CDC_EVENT_IMAGE_FULL = 'O', /* every column (REPLICA IDENTITY FULL) */
} cdc_event_image;

/* One column value. */
typedef struct cdc_event_value {
    cdc_event_state state; /* NULL / UNCHANGED_TOAST / TEXT / BINARY */
    uint32_t len;          /* bytes in data; 0 unless TEXT or BINARY */
    const char *data;      /* TEXT/BINARY: len bytes, NOT NUL-terminated, may be any bytes */
} cdc_event_value;

/* One column of the table, as the source describes it. */
typedef struct cdc_event_column {
    const char *name;      /* column name */
    uint32_t type_oid;     /* pg_type oid */
    int32_t typmod;        /* atttypmod, -1 when none */
    const char *type_name; /* "schema.name" from a Type message (non-built-in types; for a
                            * domain pgoutput names its base type), NULL for built-in ones */
    bool is_key;           /* part of the replica identity (every column with FULL) */
    const char *fill;      /* text of the value written for it where a key-only before image
                            * lacks it (its constant default, or its type's zero when NOT
                            * NULL; see cdc_catalog_fills), NULL for null */
} cdc_event_column;

/* A table named by a truncate event. */
typedef struct cdc_event_relref {
    uint32_t relid;     /* pg_class oid */
    const char *schema; /* namespace, "" for pg_catalog */
    const char *table;  /* relation name */
} cdc_event_relref;

/* A transaction as known at its Begin (end_lsn and nevents complete at its Commit). */
typedef struct cdc_event_txn {
    uint32_t xid;         /* transaction id */
    cdc_lsn commit_lsn;   /* LSN of the commit record (Begin's final LSN) */
    cdc_lsn end_lsn;      /* end of the commit record; CDC_INVALID_LSN until the Commit */
    int64_t commit_ts_us; /* commit time, Unix microseconds */
    const char *origin;   /* replication origin name, NULL when none */
    cdc_lsn origin_lsn;   /* commit LSN on the origin server, when origin is set */
    uint64_t nevents;     /* events emitted so far (all of them at the Commit) */
} cdc_event_txn;

/* A change event. Fields not relevant to the op are zero / NULL. */
typedef struct cdc_event {
    cdc_event_op op; /* c u d t m r */

    /* position */
    uint32_t xid;         /* transaction id; 0 for a non-transactional message */
    cdc_lsn commit_lsn;   /* commit LSN of the transaction; a non-transactional message's LSN */
    cdc_lsn end_lsn;      /* end of the commit record when known, else CDC_INVALID_LSN: a
                           * change is emitted before its Commit arrives, see cdc_event_txn */
    cdc_lsn lsn;          /* WAL position of this change (XLogData start of its message) */
    uint64_t ordinal;     /* 0, 1, 2, ... in the order of the transaction's events */
    int64_t commit_ts_us; /* commit time, Unix microseconds; 0 when unknown */
    const char *origin;   /* replication origin of the transaction, NULL when none */
    cdc_lsn origin_lsn;   /* the transaction's commit LSN on its origin, when origin is set */
    /* op r: Debezium's source.snapshot ("first", "first_in_data_collection", "true",
     * "last_in_data_collection", "last"); NULL for streamed events */
    const char *snapshot;

    /* relation: insert, update, delete, truncate (and read) */
    uint32_t relid;                  /* pg_class oid */
    const char *schema;              /* namespace, "" for pg_catalog */
    const char *table;               /* relation name */
    cdc_event_replident replident;   /* replica identity of the table */
    size_t ncols;                    /* columns published */
    const cdc_event_column *columns; /* ncols descriptors */
    size_t nkeys;                    /* key (replica identity) columns */
    const uint16_t *keys;            /* nkeys indexes into columns, ascending */
    cdc_event_image before_image;    /* what before holds */
    const cdc_event_value *before;   /* ncols values (update, delete), or NULL */
    const cdc_event_value *after;    /* ncols values (insert, update, read), or NULL */

    /* truncate: one event per table, each carrying the whole statement */
    struct {
        bool cascade;                 /* TRUNCATE ... CASCADE */
        bool restart_identity;        /* TRUNCATE ... RESTART IDENTITY */
        size_t nrels;                 /* tables truncated together */
        const cdc_event_relref *rels; /* nrels tables, in protocol order */
    } truncate;

    /* message */
    struct {
        bool transactional;  /* emitted with transactional = true */
        cdc_lsn lsn;         /* LSN of the message */
        const char *prefix;  /* prefix given to pg_logical_emit_message */
        size_t len;          /* bytes in content */
        const char *content; /* content, NOT NUL-terminated, may be any bytes */
    } message;
} cdc_event;

/* "insert", "update", "delete", "truncate", "message", "read"; "unknown" otherwise. */
const char *cdc_event_op_name(cdc_event_op op);

/*
 * For an update: true when the before image is present and a key column's
 * value differs from the after image (a primary key change, which routes as
 * a delete of the old key plus a create of the new one). A KEY before image
 * is only sent when the key changed, but the values are compared anyway.
 * False for every other op.
 */
bool cdc_event_key_changed(const cdc_event *ev);

/*
 * Append ev as one line of JSON plus '\n' to out: the `--sink stdout` view
 * and the golden format of the decoder tests. Keys, in this order:
 *
 *   op, xid, lsn, commit_lsn, end_lsn (null when unknown), ordinal,
 *   commit_ts_us, snapshot (op r only), origin (only when set), then
 *   - row ops: relid, schema, table, replica_identity ("d" "n" "f" "i"),
 *     columns [{name, type_oid, typmod, [type_name,] key}], key [names],
 *     before_image (null, "key", "full"), before, after
 *   - truncate: the relation keys plus
 *     truncate {cascade, restart_identity, relations [{relid, schema, table}]}
 *   - message: message {transactional, lsn, prefix, content | content_hex}
 *
 * before/after are null or an object from column name to value: a TEXT value
 * is a JSON string, NULL is null, an unchanged TOAST value is
 * {"unchanged_toast":true}, a BINARY value is {"binary_hex":"00ff"} and a
 * TEXT value that is not valid UTF-8 is {"text_hex":"..."}; a "key" before
 * image lists the key columns only. LSNs are "%X/%X" strings. Strings
 * escape '"', '\\', control characters, DEL and U+2028/U+2029; invalid UTF-8
 * in names and prefixes becomes U+FFFD, so the line is always well-formed
 * UTF-8 JSON.
 *
 * Returns 0, or CDC_ENOMEM leaving out with a partial line appended.
 */
int cdc_event_to_json_line(const cdc_event *ev, cdc_buf *out);

/*
 * Append a transaction boundary as one JSON line:
 * {"txn":"<what>","xid":..,"commit_lsn":..,"end_lsn":..,"commit_ts_us":..,
 * [origin, origin_lsn,] "events":..}. what is "begin" or "commit".
 * Returns 0 or CDC_ENOMEM.
 */
int cdc_event_txn_to_json_line(const cdc_event_txn *txn, const char *what, cdc_buf *out);

#endif
