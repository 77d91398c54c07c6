/* encode.h - Kafka message keys and values from change events: Debezium JSON or protobuf */
#ifndef PGCDC_ENCODE_H
#define PGCDC_ENCODE_H

#include <stdbool.h>
#include <stdint.h>

#include "pgcdc/buf.h"
#include "pgcdc/config.h"
#include "pgcdc/error.h"
#include "pgcdc/event.h"
#include "pgcdc/kafka.h"

/*
 * One encoder per pipeline, used from one thread. It holds the settings it
 * copied at creation and scratch memory that is reused from message to
 * message, so steady-state encoding does not allocate. The message format is
 * described in docs/MESSAGES.md and proto/pgcdc/v1/change_event.proto.
 */
typedef struct cdc_encoder cdc_encoder;

/* Which image of a row event the key is taken from. */
enum {
    CDC_KEY_AFTER = 0,  /* the new row: create, update, read */
    CDC_KEY_BEFORE = 1, /* the old row: delete */
};

/* What the encoder reports about itself in every event's source block. */
typedef struct cdc_source_info {
    const char *name;    /* connector name: topic.prefix (source.name) */
    const char *db;      /* database of the replication slot (source.db) */
    const char *version; /* pgcdc version (source.version) */
} cdc_source_info;

/*
 * Create an encoder for cfg->format (json or protobuf) with cfg's
 * unavailable.value.placeholder and the Debezium-style type options
 * (decimal, time.precision, binary, interval and hstore handling modes).
 * Strings of cfg and src are copied; neither is needed
 * afterwards. src->name, src->db and src->version must not be NULL.
 * Returns 0 and sets *ret, or CDC_EINVAL / CDC_ENOMEM leaving *ret unchanged.
 */
int cdc_encoder_new(const cdc_config *cfg, const cdc_source_info *src, cdc_encoder **ret,
                    cdc_error *err);

/* Free the encoder. Accepts NULL. */
void cdc_encoder_free(cdc_encoder *e);

/*
 * Append the Kafka key of ev to out.
 *
 * Row events (c u d r): the key columns (ev->keys) taken from the after image
 * (image = CDC_KEY_AFTER) or the before image (CDC_KEY_BEFORE): JSON
 * {"id":42}, protobuf ChangeKey. A key column the chosen image reports as an
 * unchanged TOAST value is taken from the other image when that one has it.
 * Message events (m): {"prefix":"..."} / ChangeKey.prefix, as Debezium keys
 * them; image is ignored. Tables without a key (ev->nkeys == 0) and truncate
 * events have a null key: *ret_null is set to true and nothing is appended.
 * Otherwise *ret_null is set to false.
 *
 * Returns 0, CDC_EINVAL when the chosen image is missing (NULL) or a key
 * column in it is unchanged TOAST in both images, or CDC_ENOMEM. On error out
 * is restored to its length on entry and *ret_null is unchanged.
 */
int cdc_encoder_key(cdc_encoder *e, const cdc_event *ev, int image, cdc_buf *out, bool *ret_null,
                    cdc_error *err);

/*
 * Append the Kafka value of ev to out: the Debezium envelope (JSON) or a
 * ChangeEvent (protobuf). now_us is the processing time in microseconds since
 * the Unix epoch (the envelope's ts_ms / ts_us / ts_ns). The encoder encodes
 * exactly the event it gets: a primary-key change arrives from the router as
 * a delete (after == NULL) and a create (before == NULL).
 *
 * Returns 0, CDC_EINVAL for an unknown op or a create, update or read
 * without an after image, or CDC_ENOMEM. On error out is restored to its
 * length on entry.
 */
int cdc_encoder_value(cdc_encoder *e, const cdc_event *ev, int64_t now_us, cdc_buf *out,
                      cdc_error *err);

/*
 * Append one NDJSON line for a consumed message (pgcdc tail): topic,
 * partition, offset, timestamp, headers, key and value. format says how key
 * and value were encoded: JSON is embedded as parsed; protobuf is decoded
 * (ChangeKey / ChangeEvent) into an object with the proto field names,
 * 64-bit unsigned integers as decimal strings and bytes as base64. A null
 * key or tombstone value is null; bytes that do not decode appear as
 * {"undecodable_base64": ...}. Returns 0 or CDC_ENOMEM.
 */
int cdc_tail_format(int format, const cdc_kafka_msg *m, cdc_buf *out, cdc_error *err);

#endif
