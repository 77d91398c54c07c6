/* snapread.h - the SQL side of a snapshot: published tables, watermarks, chunk reads */
#ifndef PGCDC_SNAPREAD_H
#define PGCDC_SNAPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/error.h"
#include "pgcdc/event.h"
#include "pgcdc/lsn.h"

/* The prefix of pgcdc's watermark messages (pg_logical_emit_message); never published. */
#define CDC_SNAPSHOT_PREFIX "pgcdc.snapshot"

/* An ordinary SQL session that reads tables for a snapshot; opaque. */
typedef struct cdc_snapread cdc_snapread;

/*
 * A published table as a snapshot reads it: the columns pgoutput sends for
 * it (the publication's column list, no generated columns), with the types
 * and type names its Relation and Type messages carry, so that a snapshot
 * row encodes exactly like a streamed one.
 */
typedef struct cdc_snap_table {
    uint32_t relid;
    char *schema;
    char *table;
    char replident;   /* pg_class.relreplident */
    bool partitioned; /* a partitioned root: read with its partitions */
    size_t ncols;
    cdc_event_column *cols; /* is_key: the Kafka key, as streamed events of the table have it */
    size_t nkeys;
    uint16_t *keys;   /* Kafka key columns, ascending (as cdc_event.keys) */
    size_t nchunk;    /* chunk key columns (primary key or replica identity index); 0:
                       * the table has none and cannot be read in chunks */
    uint16_t *chunk;  /* chunk key columns in index order */
    char *rowfilter;  /* the publication's row filter (PostgreSQL 15+), NULL if none */
    int64_t est_rows; /* pg_class.reltuples, -1 when never analysed */
} cdc_snap_table;

/* Rows of one chunk, read in one REPEATABLE READ transaction; opaque. */
typedef struct cdc_snap_rows cdc_snap_rows;

int cdc_snapread_open(const char *dsn, cdc_snapread **ret, cdc_error *err);
void cdc_snapread_close(cdc_snapread *r);
/* PQserverVersion of the session. */
int cdc_snapread_server_version(const cdc_snapread *r);

/*
 * The tables of publication, ordered by relid, in *ret (free with
 * cdc_snap_tables_free). CDC_ENOTFOUND when the publication does not exist.
 */
int cdc_snapread_tables(cdc_snapread *r, const char *publication, cdc_snap_table **ret, size_t *n,
                        cdc_error *err);
/* One table of the publication, as it is now (its columns may have changed); CDC_ENOTFOUND
 * when it is no longer published. Free its parts with cdc_snap_tables_free on a copy. */
int cdc_snapread_table(cdc_snapread *r, const char *publication, uint32_t relid,
                       cdc_snap_table *ret, cdc_error *err);
void cdc_snap_tables_free(cdc_snap_table *t, size_t n);
/* Only the relids of the publication's tables that have a chunk key (sorted; free()),
 * a cheap query for noticing tables added to it. */
int cdc_snapread_table_ids(cdc_snapread *r, const char *publication, uint32_t **ret, size_t *n,
                           cdc_error *err);

/* The prefix of requests to a running pgcdc (pgcdc snapshot); never published. Content:
 * "execute-snapshot <slot> <relid>,<relid>,...". */
#define CDC_SIGNAL_PREFIX "pgcdc.signal"

/* Write a non-transactional logical message (CDC_SNAPSHOT_PREFIX, content) into the WAL;
 * *ret is its LSN (the end of its record), as the stream reports it. */
int cdc_snapread_mark(cdc_snapread *r, const char *content, cdc_lsn *ret, cdc_error *err);
/* The same with another prefix (CDC_SIGNAL_PREFIX). */
int cdc_snapread_message(cdc_snapread *r, const char *prefix, const char *content, cdc_lsn *ret,
                         cdc_error *err);

/*
 * Read up to limit rows of t with a chunk key above after (t->nchunk text
 * values in chunk order; NULL: from the start) and at or below upto (NULL: no
 * bound), in chunk key order, in one REPEATABLE READ transaction whose
 * snapshot is recorded. Free with cdc_snap_rows_free.
 */
int cdc_snapread_chunk(cdc_snapread *r, const cdc_snap_table *t, const char *const *after,
                       const char *const *upto, size_t limit, cdc_snap_rows **ret, cdc_error *err);

/*
 * Split points for reading the rows after after in ranges: the chunk key of
 * the step-th row after after (in t's row filter), of the step-th after that,
 * and so on, up to nmax of them (fewer when the rows run out first), in *ret
 * as *n times t->nchunk text values (free with cdc_snap_bounds_free(*ret,
 * nmax * t->nchunk)). A statement of its own per cut: the points are only
 * where to cut; each range is read under its own snapshot.
 */
int cdc_snapread_bounds(cdc_snapread *r, const cdc_snap_table *t, const char *const *after,
                        size_t step, size_t nmax, char ***ret, size_t *n, cdc_error *err);
void cdc_snap_bounds_free(char **v, size_t n);

/* Whether t has a row (in its row filter) now, in a statement of its own. */
int cdc_snapread_has_rows(cdc_snapread *r, const cdc_snap_table *t, bool *ret, cdc_error *err);

/*
 * A table without a chunk key is read in one pass: begin a REPEATABLE READ
 * transaction, record its snapshot and open a cursor over the table (no row
 * is read yet: *ret has 0 rows and the snapshot). Fetch batches from it with
 * cdc_snapread_fetch, and end it with cdc_snapread_pass_end.
 */
int cdc_snapread_pass_begin(cdc_snapread *r, const cdc_snap_table *t, cdc_snap_rows **ret,
                            cdc_error *err);
/* The next up to limit rows of the pass's cursor (0 rows: the table is read). */
int cdc_snapread_fetch(cdc_snapread *r, size_t limit, cdc_snap_rows **ret, cdc_error *err);
/* End the pass's transaction (it only read). */
void cdc_snapread_pass_end(cdc_snapread *r);

size_t cdc_snap_rows_count(const cdc_snap_rows *rows);
/* Bytes the rows hold in memory. */
size_t cdc_snap_rows_bytes(const cdc_snap_rows *rows);
/* Column col of row i as an event value (TEXT or NULL), valid while rows lives. */
cdc_event_value cdc_snap_rows_value(const cdc_snap_rows *rows, size_t i, size_t col);
/*
 * Rows of several reads can be joined in one (cdc_snap_rows_append): each read
 * is a part, with its own snapshot. Parts, and the part row i came from.
 */
size_t cdc_snap_rows_parts(const cdc_snap_rows *rows);
size_t cdc_snap_rows_part_of(const cdc_snap_rows *rows, size_t i);
/* Append src's first keep rows (and its snapshots) to dst, taking src (freed, also on
 * failure: CDC_ENOMEM, dst unchanged). */
int cdc_snap_rows_append(cdc_snap_rows *dst, cdc_snap_rows *src, size_t keep);
/* A part's snapshot: transactions it does not see are the in-progress ones (xip, low 32
 * bits) and every one from xmax on. */
void cdc_snap_rows_snapshot(const cdc_snap_rows *rows, size_t part, uint64_t *xmin, uint64_t *xmax,
                            const uint32_t **xip, size_t *nxip);
/* Transactions a part's snapshot lists as running that the server had already marked
 * committed when the read ended (low 32 bits): their commit records precede the read. */
void cdc_snap_rows_committed(const cdc_snap_rows *rows, size_t part, const uint32_t **xids,
                             size_t *n);
void cdc_snap_rows_free(cdc_snap_rows *rows);

#endif
