/* kafka_int.h - librdkafka-level helpers shared inside src/kafka */
#ifndef PGCDC_KAFKA_INT_H
#define PGCDC_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgcdc/kafka.h"

typedef enum cdc_kafka_role { CDC_KAFKA_PRODUCER, CDC_KAFKA_CONSUMER } cdc_kafka_role;

/* CDC_ECONFIG with a hint unless kafka.bootstrap.servers (or metadata.broker.list) is set. */
int cdc_kafka_require_bootstrap(const cdc_config *cfg, cdc_error *err);

/*
 * Build a librdkafka configuration from cfg: pgcdc's defaults for the role,
 * then every kafka.* property in order; librdkafka's log lines go to pgcdc's
 * log. Returns a new conf in *ret_conf (caller owns it until rd_kafka_new()
 * takes ownership), or an error with *ret_conf unchanged.
 */
int cdc_kafka_conf_build(const cdc_config *cfg, cdc_kafka_role role, rd_kafka_conf_t **ret_conf,
                         cdc_error *err);

/*
 * Refusals that need a person, not a retry: credentials the brokers refuse
 * (SASL), or a broker certificate that does not verify against the
 * configured CA. One refusal may be a blip (a broker restarting before it
 * loaded its users); one still unanswered by any success
 * CDC_KAFKA_REFUSAL_MS later is not. librdkafka repeats an identical error
 * only every 30 s or so, so the time is measured by the caller's checks,
 * not by the callbacks.
 */
#define CDC_KAFKA_REFUSAL_MS 5000

typedef struct cdc_kafka_refusals {
    int64_t first_ms; /* when the first refusal since the last success was seen, 0 = none */
    cdc_error why;    /* the message, the settings involved (never a secret), a hint */
} cdc_kafka_refusals;

/*
 * Note an error from librdkafka's error callback. Returns 1 when it is a
 * refusal that needs a person (logged as a warning the first time), 0 for
 * any other error, which the caller handles as before.
 */
int cdc_kafka_refusal_note(cdc_kafka_refusals *r, const cdc_config *cfg, int err,
                           const char *reason);

/* A success (a delivery, an answer): the refusals so far were a blip. */
void cdc_kafka_refusal_clear(cdc_kafka_refusals *r);

/* 1 when a refusal has stood CDC_KAFKA_REFUSAL_MS without a success since (r->why says which). */
int cdc_kafka_refusal_persists(const cdc_kafka_refusals *r);

/* ------------------------------------------------------------------------
 * High-water marks: the source position of the last message per partition
 * ------------------------------------------------------------------------ */

#include "pgcdc/lsn.h"

/* CLOCK_MONOTONIC in milliseconds (the clock of cdc_now_ms and cdc_sink_source). */
int64_t cdc_kafka_mono_ms(void);

/* A message's source position: commit LSN, then ordinal inside the transaction. */
typedef struct cdc_position {
    cdc_lsn lsn;
    uint64_t ordinal;
} cdc_position;

typedef struct cdc_hwm_topic {
    char *name;         /* owned */
    int32_t partitions; /* 0: the topic did not exist when scanned */
    cdc_position *pos;  /* per partition: last position written by this source */
    bool *has;          /* per partition: pos is valid */
    bool *done;         /* per partition: the scan finished it */
} cdc_hwm_topic;

typedef struct cdc_hwm {
    cdc_hwm_topic *topics; /* owned */
    size_t ntopics, cap;
    size_t *slots; /* open-addressing hash over topics: index + 1, 0 = empty */
    size_t nslots;
    cdc_position max;   /* newest position across all partitions */
    size_t npartitions; /* partitions scanned */
    size_t nfound;      /* partitions whose last message came from this source */
    cdc_lsn wal_limit; /* set by the caller: no mark can be beyond the server's WAL; 0 = no check */
    bool impossible;   /* a last message claimed a position beyond wal_limit: */
    char impossible_at[300]; /* "topic [partition] at offset N: X/X #n" of the first one */
} cdc_hwm;

/* Lexicographic comparison of positions: <0, 0, >0. */
static inline int cdc_position_cmp(cdc_position a, cdc_position b)
{
    if (a.lsn != b.lsn)
        return a.lsn < b.lsn ? -1 : 1;
    return a.ordinal < b.ordinal ? -1 : a.ordinal > b.ordinal ? 1 : 0;
}

/*
 * Read the last message of every partition of topics with one consumer
 * (end offset - 1, found with one batched ListOffsets per broker) and keep the positions of those
 * produced by source (the pgcdc.source header). Retries while the cluster is unreachable, logging
 * each attempt, until *stop becomes non-zero (then CDC_EINTERRUPTED).
 * Adds to hwm (which may already hold other topics).
 *
 * settle_from > 0 (monotonic ms) says an earlier run may have died with messages in flight and
 * may have been sending until then: when a partition is replicated, the scan first waits until
 * settle_from + crash.recovery.wait (auto: 1.5 x the brokers' replica.lag.time.max.ms + 2 s), so
 * that Kafka has committed whatever that run left in a leader's log (see docs/DESIGN.md).
 */
int cdc_hwm_scan(const cdc_config *cfg, const char *source, const char *const *topics,
                 size_t ntopics, cdc_hwm *hwm, int64_t settle_from, volatile int *stop,
                 cdc_error *err);
/* The entry of topic, or NULL when it was never scanned. */
const cdc_hwm_topic *cdc_hwm_find(const cdc_hwm *hwm, const char *topic);
void cdc_hwm_free(cdc_hwm *hwm);

/* Parse the position headers of a message; false when absent or malformed. */
bool cdc_position_parse(const char *lsn, size_t lsnlen, const char *ord, size_t ordlen,
                        cdc_position *ret);

#endif
