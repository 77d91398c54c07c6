/* pipeline.h - the main loop: stream -> decoder -> sink, tracker -> checkpoint -> flush LSN */
#ifndef PGCDC_PIPELINE_H
#define PGCDC_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "pgcdc/config.h"
#include "pgcdc/error.h"
#include "pgcdc/event.h"
#include "pgcdc/lsn.h"
#include "pgcdc/tracker.h"

typedef struct cdc_sink cdc_sink;

/* What a sink learns about the source before streaming starts. */
typedef struct cdc_sink_source {
    const char *dbname;        /* database of the slot */
    uint64_t system_id;        /* server's system identifier */
    const char *slot;          /* slot name */
    const char *const *tables; /* published "schema.table" names, NULL-terminated */
    volatile int *stop;        /* becomes non-zero when pgcdc is asked to stop */
    /* Monotonic ms (cdc_now_ms) until which an earlier run may have been sending without
     * having every message acknowledged (it did not stop cleanly); 0 when none did. */
    int64_t unclean_until_ms;
    cdc_lsn server_wal; /* the server's WAL flush position when the session began */
} cdc_sink_source;

/*
 * A sink publishes events. For every message it sends it calls
 * cdc_tracker_add(tracker, seq) and, when the message is durably accepted,
 * cdc_tracker_ack(tracker, seq): that is the only way the checkpoint moves.
 */
typedef struct cdc_sink_ops {
    /*
     * Called once before streaming starts (optional). The Kafka sink reads
     * the last source position of every partition here (exactly-once).
     */
    int (*open)(cdc_sink *s, const cdc_sink_source *src, cdc_error *err);
    /* Publish one event of tracker transaction seq. */
    int (*event)(cdc_sink *s, const cdc_event *ev, uint64_t seq, cdc_error *err);
    /* Transaction seq has no more events (optional). */
    int (*commit)(cdc_sink *s, const cdc_event_txn *txn, uint64_t seq, cdc_error *err);
    /* Serve delivery reports, waiting up to timeout_ms; returns 0 or a fatal error. */
    int (*poll)(cdc_sink *s, int timeout_ms, cdc_error *err);
    /* True while the sink wants no new events (in-flight limits reached). */
    bool (*busy)(cdc_sink *s);
    /* Release everything; NULL-safe. */
    void (*free)(cdc_sink *s);
} cdc_sink_ops;

struct cdc_sink {
    const cdc_sink_ops *ops;
    cdc_tracker *tracker; /* set by the pipeline before the first event */
};

/* The NDJSON debugging sink: events as cdc_event_to_json_line() on stdout. */
int cdc_sink_stdout_new(cdc_sink **ret, cdc_error *err);

/*
 * The Kafka sink: routes events to topics (<topic.prefix>.<schema>.<table>,
 * logical messages to <topic.prefix>.message), encodes them (format),
 * produces them idempotently and acknowledges on delivery reports. A primary
 * key change becomes a delete under the old key, its tombstone and a create
 * under the new key; a delete is followed by a tombstone unless
 * tombstones = false. cfg must outlive the sink.
 */
int cdc_sink_kafka_new(const cdc_config *cfg, cdc_sink **ret, cdc_error *err);

/* What the main loop needs to know. */
typedef struct cdc_run_opts {
    const cdc_config *cfg;   /* loaded configuration */
    cdc_sink *sink;          /* where events go; the pipeline does not free it */
    bool require_checkpoint; /* resume: refuse to run without a checkpoint */
    bool has_endpos;         /* stop at endpos */
    cdc_lsn endpos;          /* stop once everything up to here is handled */
} cdc_run_opts;

/*
 * Stream until stopped (SIGINT/SIGTERM, endpos, or an error). Resumes from
 * the checkpoint when there is one (checked against the server's system
 * identifier, the database and the slot: a mismatch is CDC_EMISMATCH),
 * otherwise from the slot. The flush LSN reported to the server is the
 * durable checkpoint, never more. On a clean stop waits for outstanding
 * deliveries (shutdown.timeout), writes the final checkpoint and the final
 * status update. Returns 0 on a clean stop.
 */
int cdc_run(const cdc_run_opts *opts, cdc_error *err);

/* Ask a running cdc_run() to stop (async-signal-safe). */
void cdc_run_request_stop(void);

#endif
