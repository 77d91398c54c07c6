/* kafka.h - the Kafka layer as the rest of pgcdc sees it (no librdkafka types) */
#ifndef PGCDC_KAFKA_H
#define PGCDC_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/config.h"
#include "pgcdc/error.h"

/* Producer defaults pgcdc applies unless the configuration sets them. enable.gapless.guarantee:
 * when the broker refuses a batch for good, librdkafka would otherwise start a new producer
 * epoch and let the batches behind it in, so Kafka would hold a gap instead of a prefix (the
 * restart's mark would be past the refused messages). With it the producer fails instead. */
#define CDC_KAFKA_DEFAULTS_INIT                                                                    \
    {                                                                                              \
        {"enable.idempotence", "true"}, {"acks", "all"}, {"message.timeout.ms", "0"},              \
            {"enable.gapless.guarantee", "true"}, {"queue.buffering.max.messages", "1000000"},     \
            {"sticky.partitioning.linger.ms", "0"},                                                \
    }

/*
 * Check every kafka.* property by handing it to librdkafka's
 * rd_kafka_conf_set(), so a wrong property fails at load time. The error
 * names where the property was set (file and line, or -o) and librdkafka's
 * reason. Returns 0, CDC_ECONFIG or CDC_ENOMEM.
 */
int cdc_kafka_conf_check(const cdc_config *cfg, cdc_error *err);

/* ------------------------------------------------------------------------
 * Producer
 * ------------------------------------------------------------------------ */

typedef struct cdc_producer cdc_producer;

/* One message header; name is a C string, value is bytes. Borrowed. */
typedef struct cdc_kafka_header {
    const char *name;
    const void *value;
    size_t len;
} cdc_kafka_header;

/*
 * Delivery report: called from cdc_producer_poll() on the caller's thread
 * for every message sent, in the order Kafka acknowledged them. err is
 * CDC_OK on success; otherwise CDC_EKAFKAFATAL for a permanent refusal
 * (message too large, not authorized, unknown topic) or CDC_EKAFKA, and
 * reason holds librdkafka's message. seq is the value given to send(), bytes
 * the key plus value length, topic (borrowed, valid during the call) and
 * partition where the message went.
 */
typedef void (*cdc_delivery_fn)(void *ctx, uint64_t seq, size_t bytes, const char *topic,
                                int32_t partition, int err, const char *reason);

/*
 * Create the producer from the kafka.* configuration with pgcdc's defaults
 * (idempotent, acks=all, Java-compatible murmur2 partitioning, no message
 * timeout).
 * Does not wait for the broker: an unreachable broker is logged and
 * retried. Returns 0 and a new producer, or an error.
 */
int cdc_producer_new(const cdc_config *cfg, cdc_delivery_fn on_delivery, void *ctx,
                     cdc_producer **ret, cdc_error *err);

/*
 * Queue one message. partition -1 lets the partitioner hash the key
 * (murmur2, as the Java client). value NULL with len 0 is a tombstone.
 * Returns 0, CDC_EAGAIN when librdkafka's queue is full (poll, then retry),
 * or an error. Key, value and headers are copied.
 */
int cdc_producer_send(cdc_producer *p, const char *topic, int32_t partition, const void *key,
                      size_t keylen, const void *value, size_t valuelen,
                      const cdc_kafka_header *headers, size_t nheaders, uint64_t seq,
                      cdc_error *err);

/*
 * Partitioning installed by cdc_producer_new() unless kafka.partitioner is
 * set: a keyed message goes to murmur2(key) (as the Java client), a message
 * with a null key to murmur2(topic name), so every keyless event of a table
 * lands in one partition and keeps its order.
 */

/* Serve delivery reports and errors, waiting up to timeout_ms. Returns events served. */
int cdc_producer_poll(cdc_producer *p, int timeout_ms);

/* Messages queued or in flight. */
int cdc_producer_outq_len(cdc_producer *p);

/*
 * Number of partitions of topic (from cached metadata, fetched on first
 * use, waiting up to timeout_ms). Returns 0 and *ret_count, or an error
 * (CDC_ETIMEOUT when the cluster cannot be reached, CDC_ENOTFOUND when the
 * topic does not exist and cannot be auto-created).
 */
int cdc_producer_partition_count(cdc_producer *p, const char *topic, int timeout_ms,
                                 int32_t *ret_count, cdc_error *err);

/*
 * Tell the producer about topics before the first message: one metadata
 * request for all of them, waiting up to timeout_ms. Without it librdkafka
 * learns a topic's partitions only on its next metadata round (about a
 * second), holding the first messages back. Failure is harmless (logged at
 * debug level): the producer then learns them on its own.
 */
void cdc_producer_warm(cdc_producer *p, const char *const *topics, size_t ntopics, int timeout_ms);

/* The partition murmur2 (Java-compatible) gives key among count partitions. */
int32_t cdc_kafka_murmur2_partition(const void *key, size_t keylen, int32_t count);

/*
 * The first fatal producer error if one happened, with err set, else 0:
 * CDC_EKAFKARESET when a new producer can carry on (librdkafka lost track of
 * its sequence numbers: a leader lost messages it had not acknowledged, or a
 * gap would follow a failed batch), CDC_EKAFKAFATAL when a person is needed.
 * After CDC_EKAFKARESET, cdc_producer_purge() fails what is still queued (as
 * CDC_EKAFKARESET deliveries) so that the caller can drain and start over.
 */
int cdc_producer_fatal(cdc_producer *p, cdc_error *err);
void cdc_producer_purge(cdc_producer *p);

/*
 * Wait up to flush_timeout_ms for queued messages, drop what is left (its
 * delivery reports are not passed on), and free. NULL is fine.
 */
void cdc_producer_free(cdc_producer *p, int flush_timeout_ms);

/* ------------------------------------------------------------------------
 * Consumer (pgcdc tail)
 * ------------------------------------------------------------------------ */

typedef struct cdc_consumer cdc_consumer;

#define CDC_KAFKA_MAX_HEADERS 16

/* A consumed message; everything is borrowed until the next cdc_consumer_next(). */
typedef struct cdc_kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 when the broker gave none */
    const void *key;      /* NULL for a null key */
    size_t keylen;
    const void *value; /* NULL for a tombstone */
    size_t valuelen;
    cdc_kafka_header headers[CDC_KAFKA_MAX_HEADERS];
    size_t nheaders;
} cdc_kafka_msg;

/*
 * Subscribe to topics (names, or regular expressions starting with '^') in a
 * throwaway consumer group that commits nothing; from_beginning starts at the
 * oldest message, otherwise at the end.
 */
int cdc_consumer_new(const cdc_config *cfg, const char *const *topics, size_t ntopics,
                     bool from_beginning, cdc_consumer **ret, cdc_error *err);
/* Wait up to timeout_ms: 1 and *ret filled, 0 when nothing came, or an error. */
int cdc_consumer_next(cdc_consumer *c, int timeout_ms, cdc_kafka_msg *ret, cdc_error *err);
/* True once every assigned partition has been read to its end. */
bool cdc_consumer_at_end(const cdc_consumer *c);
void cdc_consumer_free(cdc_consumer *c);

/* librdkafka's version string, e.g. "2.0.2". Borrowed, static. */
const char *cdc_kafka_version(void);

#endif
