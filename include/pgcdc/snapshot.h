/* snapshot.h - the existing rows of published tables as op r events, consistent with the stream */
#ifndef PGCDC_SNAPSHOT_H
#define PGCDC_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/error.h"
#include "pgcdc/event.h"
#include "pgcdc/lsn.h"

/*
 * A snapshot reads every published table in chunks (rows in key order) and
 * hands the rows to the stream at the chunk's high watermark, a logical
 * message written after the read, so that they take their place in the
 * stream's order. Between the chunk's low watermark (written before the
 * read) and its high watermark, a streamed change to a key the chunk holds
 * drops that row: the stream carries a value at least as new. The argument,
 * and why a crash loses nothing, is in docs/DESIGN.md, "Snapshots".
 *
 * Progress is a line of text kept in the checkpoint: "" (no snapshot),
 * "done", or "running <relid> <key> <rows> <start ms>" (tables below relid
 * are done; relid resumes after key, "-" from its start, with rows of it
 * delivered since its read began). Only progress whose rows are all
 * delivered reaches a checkpoint.
 *
 * One thread (the pipeline's) drives it; the reads block that thread for one
 * chunk's query.
 */
typedef struct cdc_snapshot cdc_snapshot;

/* progress: from the checkpoint ("running 0 -" starts a snapshot from scratch; "" or
 * "done": none until a request, pgcdc snapshot, names the slot). */
/* new_tables_every_ms > 0: snapshot.new.tables, looking every that often. */
int cdc_snapshot_new(const char *progress, size_t chunk_size, const char *slot,
                     int64_t new_tables_every_ms, cdc_snapshot **ret, cdc_error *err);
void cdc_snapshot_free(cdc_snapshot *s);

/* signal.data.collection: inserts into "schema.table" are Debezium signals (signal.h);
 * CDC_ECONFIG when name is not schema.table. */
int cdc_snapshot_set_signal_table(cdc_snapshot *s, const char *name, cdc_error *err);

/* Chunks placed in the stream (high watermark written) while the ones before them are
 * not yet delivered, at most (1 unless set; the setting snapshot.max.inflight.chunks
 * defaults to 2): a crash reads at most that many again. */
void cdc_snapshot_set_inflight(cdc_snapshot *s, size_t chunks);

/* snapshot.max.threads: sessions that read each window at once, a key range each (1
 * unless set, at most 16): a window is then n chunks as cut (window.h: a range that grew
 * since holds up to twice a chunk), and each of n - 1 more sessions stays open while the
 * snapshot runs. */
void cdc_snapshot_set_threads(cdc_snapshot *s, size_t n);

/* A progress line in the log every ms while a table is read (default 10 s). */
void cdc_snapshot_set_log_every(cdc_snapshot *s, int64_t ms);

/* True until every table is read and delivered. */
bool cdc_snapshot_active(const cdc_snapshot *s);

/*
 * Start a session: open the SQL session, list the publication's tables and
 * go back to the durable progress (a chunk in the air is read again).
 * server_version: the stream's; snapshots need pgoutput's messages (14+).
 */
int cdc_snapshot_connect(cdc_snapshot *s, const char *dsn, const char *publication,
                         int server_version, cdc_error *err);
void cdc_snapshot_disconnect(cdc_snapshot *s);

/*
 * Do the next step that does not wait for the stream: write the next chunk's
 * low watermark and read its rows; write its high watermark once the
 * chunk before it is in a checkpoint (durable: the checkpoint's LSN), so
 * that a crash repeats at most one chunk. Blocks for the query. Returns 1 when
 * it did one of them, 0 when there is nothing to do yet, or an error.
 */
int cdc_snapshot_work(cdc_snapshot *s, cdc_lsn durable, cdc_error *err);

/* Stream hooks, in stream order. */
void cdc_snapshot_txn(cdc_snapshot *s, uint32_t xid, cdc_lsn commit_lsn);
/* A logical message: true when it is a pgcdc watermark or a request to this slot
 * (CDC_SIGNAL_PREFIX, pgcdc snapshot; never published). */
bool cdc_snapshot_mark(cdc_snapshot *s, const cdc_event *ev);
/* A streamed change (insert, update, delete, truncate) as the sink sees it. 0, or an
 * error when a signal row (signal.data.collection) cannot be acted on for now (the
 * stream reconnects and the row comes again). */
int cdc_snapshot_change(cdc_snapshot *s, const cdc_event *ev, cdc_error *err);

/* True while a chunk's rows wait to be handed to the sink (the stream waits). */
bool cdc_snapshot_emitting(const cdc_snapshot *s);
/* The next row as an op r event (borrowed until the next call): 1, 0 when the chunk
 * has no more rows (then call cdc_snapshot_chunk_done), or an error (a one-pass read
 * fetches as it goes). */
int cdc_snapshot_next(cdc_snapshot *s, cdc_event *ev, cdc_error *err);
/* Every row of the chunk was handed over; returns the LSN the chunk ends at (its high
 * watermark) for the tracker. */
cdc_lsn cdc_snapshot_chunk_done(cdc_snapshot *s);

/*
 * Progress to write with a checkpoint at lsn (everything before lsn
 * delivered). Borrowed until the next call.
 */
const char *cdc_snapshot_progress(cdc_snapshot *s, cdc_lsn lsn);
/* The last progress without the tables it knows of (snapshot.new.tables), for a
 * checkpoint it would not fit otherwise. Borrowed until the next call. */
const char *cdc_snapshot_progress_compact(cdc_snapshot *s);
/* True when a checkpoint at lsn would record progress not yet written. */
bool cdc_snapshot_progress_waiting(const cdc_snapshot *s, cdc_lsn lsn);

/* What a checkpoint's progress line says (for pgcdc status). */
typedef struct cdc_snapshot_info {
    bool none;                /* no snapshot was asked for */
    bool done;                /* every table read and delivered */
    uint32_t relid;           /* running: the table being read (those below are done) */
    uint64_t table_rows;      /* running: its rows delivered */
    int64_t table_started_ms; /* running: when its read began (Unix ms) */
    uint32_t *only;           /* running an incremental round: its tables (sorted relids) */
    size_t nonly;             /* 0: the round reads every published table */
    size_t nthen;             /* tables asked for again, for the round after it */
} cdc_snapshot_info;
/* 0, or CDC_EPROTO when text is not a progress line. Free with cdc_snapshot_info_free. */
int cdc_snapshot_parse_progress(const char *text, cdc_snapshot_info *ret);
void cdc_snapshot_info_free(cdc_snapshot_info *info);

/* Counters for logs and status. */
typedef struct cdc_snapshot_stats {
    uint64_t rows;      /* rows handed to the sink */
    uint64_t dropped;   /* chunk rows dropped for a change in their window */
    uint64_t chunks;    /* windows finished (a chunk per reader, the closing one) */
    uint64_t retries;   /* chunks read again (a transaction the read did not see) */
    size_t tables_done; /* of tables */
    size_t tables;
} cdc_snapshot_stats;
void cdc_snapshot_get_stats(const cdc_snapshot *s, cdc_snapshot_stats *ret);

#endif
