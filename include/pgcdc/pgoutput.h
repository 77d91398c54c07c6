/* pgoutput.h - pgoutput logical replication protocol (proto_version 1): messages and decoder */
#ifndef PGCDC_PGOUTPUT_H
#define PGCDC_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/error.h"
#include "pgcdc/event.h"
#include "pgcdc/lsn.h"
#include "pgcdc/reader.h"

/*
 * The wire format of PostgreSQL's pgoutput plugin as sent with
 * proto_version 1 by PostgreSQL 10 to 17 (Truncate since 11, Message with
 * the messages option since 14, binary values with the binary option since
 * 14). Each XLogData payload holds exactly one message: a type byte, then the
 * fields below, all integers in network byte order. This module only reads
 * bytes; it never talks to a server.
 */

/* ---------------------------------------------------------------- protocol bytes */

/* Message types: the first byte of a message. */
typedef enum cdc_pgo_msgtype {
    CDC_PGO_BEGIN = 'B',
    CDC_PGO_COMMIT = 'C',
    CDC_PGO_ORIGIN = 'O',
    CDC_PGO_RELATION = 'R',
    CDC_PGO_TYPE = 'Y',
    CDC_PGO_INSERT = 'I',
    CDC_PGO_UPDATE = 'U',
    CDC_PGO_DELETE = 'D',
    CDC_PGO_TRUNCATE = 'T',
    CDC_PGO_MESSAGE = 'M',
    /* proto_version 2 (streaming) and 3 (two-phase) only: rejected by this decoder */
    CDC_PGO_STREAM_START = 'S',
    CDC_PGO_STREAM_STOP = 'E',
    CDC_PGO_STREAM_COMMIT = 'c',
    CDC_PGO_STREAM_ABORT = 'A',
    CDC_PGO_BEGIN_PREPARE = 'b',
    CDC_PGO_PREPARE = 'P',
    CDC_PGO_COMMIT_PREPARED = 'K',
    CDC_PGO_ROLLBACK_PREPARED = 'r',
    CDC_PGO_STREAM_PREPARE = 'p',
} cdc_pgo_msgtype;

/* Tuple tags inside Insert, Update and Delete. */
typedef enum cdc_pgo_tupletag {
    CDC_PGO_TUPLE_NEW = 'N', /* new tuple */
    CDC_PGO_TUPLE_KEY = 'K', /* old tuple, replica identity columns only */
    CDC_PGO_TUPLE_OLD = 'O', /* old tuple, every column (REPLICA IDENTITY FULL) */
} cdc_pgo_tupletag;

/* Column kinds inside TupleData (the same values as cdc_event_state). */
typedef enum cdc_pgo_colkind {
    CDC_PGO_COL_NULL = 'n',            /* NULL, no data */
    CDC_PGO_COL_UNCHANGED_TOAST = 'u', /* unchanged TOASTed value, no data */
    CDC_PGO_COL_TEXT = 't',            /* Int32 length + text bytes */
    CDC_PGO_COL_BINARY = 'b',          /* Int32 length + binary bytes */
} cdc_pgo_colkind;

/* Flag bits. */
#define CDC_PGO_COMMIT_FLAGS_NONE         0 /* Commit flags: none defined */
#define CDC_PGO_RELATION_COLUMN_KEY       1 /* Relation column: part of the replica identity */
#define CDC_PGO_TRUNCATE_CASCADE          1 /* Truncate: CASCADE */
#define CDC_PGO_TRUNCATE_RESTART_IDENTITY 2 /* Truncate: RESTART IDENTITY */
#define CDC_PGO_MESSAGE_TRANSACTIONAL     1 /* Message: emitted transactional */

/* ---------------------------------------------------------------- messages */

/*
 * One struct per message. Strings and byte ranges point into the bytes the
 * reader was given (borrowed: valid as long as those bytes). Arrays are owned
 * by the struct, grown by the read function and reused by later reads into
 * the same struct; release them with the matching *_clear(). Initialise a
 * struct with {0} before its first read.
 */

typedef struct cdc_pgo_begin {
    cdc_lsn final_lsn; /* LSN of the commit record */
    int64_t commit_ts; /* commit time, PostgreSQL epoch microseconds */
    uint32_t xid;      /* transaction id */
} cdc_pgo_begin;

typedef struct cdc_pgo_commit {
    uint8_t flags;      /* CDC_PGO_COMMIT_FLAGS_NONE */
    cdc_lsn commit_lsn; /* LSN of the commit record */
    cdc_lsn end_lsn;    /* end of the commit record: the position to confirm */
    int64_t commit_ts;  /* commit time, PostgreSQL epoch microseconds */
} cdc_pgo_commit;

typedef struct cdc_pgo_origin {
    cdc_lsn origin_lsn; /* commit LSN on the origin server */
    const char *name;   /* origin name (borrowed) */
} cdc_pgo_origin;

typedef struct cdc_pgo_relcol {
    uint8_t flags;     /* CDC_PGO_RELATION_COLUMN_KEY */
    const char *name;  /* column name (borrowed) */
    uint32_t type_oid; /* pg_type oid */
    int32_t typmod;    /* atttypmod */
} cdc_pgo_relcol;

typedef struct cdc_pgo_relation {
    uint32_t relid;       /* pg_class oid */
    const char *nspname;  /* namespace (borrowed), "" for pg_catalog */
    const char *relname;  /* relation name (borrowed) */
    uint8_t replident;    /* cdc_event_replident: 'd' 'n' 'f' 'i' */
    uint16_t ncols;       /* columns in cols */
    cdc_pgo_relcol *cols; /* ncols columns (owned array) */
    size_t cap;           /* allocated entries of cols */
} cdc_pgo_relation;

typedef struct cdc_pgo_type {
    uint32_t oid;        /* pg_type oid (of the domain, for a domain) */
    const char *nspname; /* namespace (borrowed), "" for pg_catalog */
    const char *typname; /* type name (of the base type, for a domain) */
} cdc_pgo_type;

/* TupleData: the values of one row, in the column order of the Relation. */
typedef struct cdc_pgo_tuple {
    uint16_t ncols;        /* values in cols */
    cdc_event_value *cols; /* ncols values, data borrowed from the message (owned array) */
    size_t cap;            /* allocated entries of cols */
} cdc_pgo_tuple;

typedef struct cdc_pgo_insert {
    uint32_t relid;       /* relation oid */
    cdc_pgo_tuple newtup; /* the new row */
} cdc_pgo_insert;

typedef struct cdc_pgo_update {
    uint32_t relid;       /* relation oid */
    uint8_t old_tag;      /* 0 (no old tuple), CDC_PGO_TUPLE_KEY or CDC_PGO_TUPLE_OLD */
    cdc_pgo_tuple oldtup; /* old row when old_tag is set */
    cdc_pgo_tuple newtup; /* the new row */
} cdc_pgo_update;

typedef struct cdc_pgo_delete {
    uint32_t relid;       /* relation oid */
    uint8_t old_tag;      /* CDC_PGO_TUPLE_KEY or CDC_PGO_TUPLE_OLD */
    cdc_pgo_tuple oldtup; /* the deleted row */
} cdc_pgo_delete;

typedef struct cdc_pgo_truncate {
    uint8_t flags;    /* CDC_PGO_TRUNCATE_CASCADE | CDC_PGO_TRUNCATE_RESTART_IDENTITY */
    uint32_t nrelids; /* relations in relids */
    uint32_t *relids; /* nrelids relation oids (owned array) */
    size_t cap;       /* allocated entries of relids */
} cdc_pgo_truncate;

typedef struct cdc_pgo_message {
    uint8_t flags;          /* CDC_PGO_MESSAGE_TRANSACTIONAL */
    cdc_lsn lsn;            /* LSN of the message */
    const char *prefix;     /* prefix (borrowed) */
    uint32_t len;           /* bytes in content */
    const uint8_t *content; /* content (borrowed), any bytes */
} cdc_pgo_message;

/* "Begin", "Update", "Stream Start", ...; NULL for a byte that is no message type. */
const char *cdc_pgo_msgtype_name(uint8_t type);

/*
 * Read one message body: r is positioned just after the type byte. lsn is the
 * WAL start of the message, used only in error messages. Every field is
 * checked as it is read; bytes left after the message are not an error here
 * (the decoder checks them). Returns 0, or on a short or malformed field
 * CDC_EPROTO (CDC_ENOMEM when an array cannot grow) with err naming the
 * message, its LSN and the field, e.g. "truncated Update message at
 * 0/16B3748: column 3 of new tuple: length 120 exceeds remaining 7 bytes".
 * On failure r's position and the plain fields of *ret are unspecified, and
 * its arrays stay valid for *_clear() or another read.
 */
int cdc_pgo_read_begin(cdc_reader *r, cdc_lsn lsn, cdc_pgo_begin *ret, cdc_error *err);
int cdc_pgo_read_commit(cdc_reader *r, cdc_lsn lsn, cdc_pgo_commit *ret, cdc_error *err);
int cdc_pgo_read_origin(cdc_reader *r, cdc_lsn lsn, cdc_pgo_origin *ret, cdc_error *err);
int cdc_pgo_read_relation(cdc_reader *r, cdc_lsn lsn, cdc_pgo_relation *ret, cdc_error *err);
int cdc_pgo_read_type(cdc_reader *r, cdc_lsn lsn, cdc_pgo_type *ret, cdc_error *err);
int cdc_pgo_read_insert(cdc_reader *r, cdc_lsn lsn, cdc_pgo_insert *ret, cdc_error *err);
int cdc_pgo_read_update(cdc_reader *r, cdc_lsn lsn, cdc_pgo_update *ret, cdc_error *err);
int cdc_pgo_read_delete(cdc_reader *r, cdc_lsn lsn, cdc_pgo_delete *ret, cdc_error *err);
int cdc_pgo_read_truncate(cdc_reader *r, cdc_lsn lsn, cdc_pgo_truncate *ret, cdc_error *err);
int cdc_pgo_read_message(cdc_reader *r, cdc_lsn lsn, cdc_pgo_message *ret, cdc_error *err);

/* Free the arrays owned by a struct and zero it; each accepts NULL. */
void cdc_pgo_relation_clear(cdc_pgo_relation *rel);
void cdc_pgo_tuple_clear(cdc_pgo_tuple *tup);
void cdc_pgo_insert_clear(cdc_pgo_insert *ins);
void cdc_pgo_update_clear(cdc_pgo_update *upd);
void cdc_pgo_delete_clear(cdc_pgo_delete *del);
void cdc_pgo_truncate_clear(cdc_pgo_truncate *trunc);

/* ---------------------------------------------------------------- decoder */

/*
 * What the decoder calls. event is required; begin and commit may be NULL.
 * A callback returns 0 to go on, or a negative CDC_E* code that stops the
 * current cdc_pgo_decoder_feed() and is returned by it (fill the err given
 * to feed through your own state if you want a message). Callbacks must not
 * call into the decoder. Everything passed to them is borrowed until they
 * return.
 */
typedef struct cdc_pgo_handler {
    int (*begin)(const cdc_event_txn *txn, void *arg);  /* a transaction starts */
    int (*event)(const cdc_event *ev, void *arg);       /* one change event */
    int (*commit)(const cdc_event_txn *txn, void *arg); /* it committed: end_lsn, nevents set */
    void *arg;                                          /* passed to every callback */
} cdc_pgo_handler;

/*
 * The decoder: the relation and type caches of one replication session plus
 * the transaction in progress. Not thread-safe; one per stream.
 */
typedef struct cdc_pgo_decoder cdc_pgo_decoder;

/*
 * Create a decoder calling h (copied). Returns 0 and sets *ret (owned by the
 * caller, release with cdc_pgo_decoder_free), or CDC_EINVAL (no event
 * callback) / CDC_ENOMEM leaving *ret unchanged.
 */
int cdc_pgo_decoder_new(const cdc_pgo_handler *h, cdc_pgo_decoder **ret, cdc_error *err);

/* Free the decoder and everything it owns. Accepts NULL. */
void cdc_pgo_decoder_free(cdc_pgo_decoder *dec);

/*
 * Decode one XLogData payload of len bytes whose WAL start is wal_start.
 * Begin, Origin, Relation and Type update the decoder's state and emit
 * nothing; Insert, Update, Delete and Message emit one event; Truncate emits
 * one event per table; Commit calls the commit callback. Events carry the
 * transaction's xid, commit LSN and time, and ordinals 0, 1, 2, ... in order;
 * a non-transactional Message outside a transaction has xid 0, ordinal 0 and
 * its own LSN as commit LSN.
 *
 * Returns 0, or:
 * - CDC_EPROTO with err set when the message is malformed or out of place
 *   (truncated, trailing bytes, unknown type, a change for a relation no
 *   Relation message described, a column count that does not match it, a
 *   change outside a transaction, a Begin inside one, a streaming or
 *   two-phase message). The decoder's state is then exactly what it was
 *   before the call: no callback was made.
 * - CDC_ENOMEM, state unchanged.
 * - the negative code a callback returned; events of this payload emitted
 *   before it stay emitted, and the transaction continues as if they had
 *   been consumed.
 * The payload is only read during the call; events point into it.
 */
int cdc_pgo_decoder_feed(cdc_pgo_decoder *dec, const void *data, size_t len, cdc_lsn wal_start,
                         cdc_error *err);

/*
 * Forget the transaction in progress and both caches, as needed when a new
 * replication session starts (the server sends Relation messages again).
 */
void cdc_pgo_decoder_reset(cdc_pgo_decoder *dec);

/* The transaction in progress (borrowed, valid until the next feed or reset), or NULL. */
const cdc_event_txn *cdc_pgo_decoder_txn(const cdc_pgo_decoder *dec);

/* Number of relations in the cache. */
size_t cdc_pgo_decoder_nrelations(const cdc_pgo_decoder *dec);

#endif
