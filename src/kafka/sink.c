/* sink.c - the Kafka sink: route each event to its topic and key, encode, produce, track delivery
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "pgcdc/buf.h"
#include "pgcdc/encode.h"
#include "pgcdc/kafka.h"
#include "pgcdc/log.h"
#include "pgcdc/pipeline.h"
#include "pgcdc_build.h"

typedef struct kafka_sink {
    cdc_sink base;
    const cdc_config *cfg;   /* borrowed, outlives the sink */
    cdc_producer *producer;  /* owned */
    cdc_encoder *encoder;    /* owned, made by open() */
    char *dbname;            /* owned */
    cdc_buf topic;           /* scratch: topic name */
    cdc_buf key;             /* scratch: encoded key */
    cdc_buf value;           /* scratch: encoded value */
    uint64_t cur_seq;        /* transaction of msg_ordinal */
    uint64_t msg_ordinal;    /* next message ordinal inside cur_seq */
    uint64_t inflight_bytes; /* key + value bytes awaiting delivery */
    cdc_error failure;       /* first failed delivery; stops the pipeline */
} kafka_sink;

/* ------------------------------------------------------------------------
 * Delivery reports
 * ------------------------------------------------------------------------ */

static void on_delivery(void *ctx, uint64_t seq, size_t bytes, int err, const char *reason)
{
    kafka_sink *s = ctx;
    s->inflight_bytes -= bytes < s->inflight_bytes ? bytes : s->inflight_bytes;
    if (err == CDC_OK) {
        cdc_tracker_ack(s->base.tracker, seq);
        return;
    }
    /* Never acknowledged: the checkpoint cannot pass this transaction. */
    if (s->failure.code == 0) {
        cdc_err(&s->failure, err == CDC_EKAFKAFATAL ? CDC_EKAFKAFATAL : CDC_EKAFKA,
                "kafka did not accept a message: %s", reason ? reason : "unknown error");
        cdc_err_detail(&s->failure,
                       "pgcdc stops without moving its checkpoint past the refused message; a "
                       "restart sends it again");
        if (reason && strstr(reason, "too large"))
            cdc_err_hint(&s->failure, "raise the topic's max.message.bytes (and the producer's "
                                      "kafka.message.max.bytes), or exclude the table");
        else if (reason && strstr(reason, "uthoriz"))
            cdc_err_hint(&s->failure, "grant the producer WRITE on the topic");
        else if (reason && strstr(reason, "nknown topic"))
            cdc_err_hint(&s->failure,
                         "create the topic, or allow auto.create.topics.enable on the brokers");
    }
}

/* ------------------------------------------------------------------------
 * Producing
 * ------------------------------------------------------------------------ */

static int set_topic(kafka_sink *s, const char *schema, const char *table)
{
    cdc_buf_reset(&s->topic);
    if (table == NULL)
        return cdc_buf_printf(&s->topic, "%s.message", s->cfg->topic_prefix);
    return cdc_buf_printf(&s->topic, "%s.%s.%s", s->cfg->topic_prefix, schema, table);
}

/* Send one message (value NULL = tombstone) of transaction seq with position headers. */
static int send_one(kafka_sink *s, const cdc_event *ev, uint64_t seq, const cdc_buf *key,
                    bool key_null, const cdc_buf *value, const char *op, cdc_error *err)
{
    char lsn[CDC_LSN_STRLEN], ord[24];
    if (seq != s->cur_seq) {
        s->cur_seq = seq;
        s->msg_ordinal = 0;
    }
    cdc_lsn_format(ev->commit_lsn, lsn);
    snprintf(ord, sizeof(ord), "%llu", (unsigned long long)s->msg_ordinal);
    cdc_kafka_header h[3] = {
        {"pgcdc.lsn", lsn, strlen(lsn)},
        {"pgcdc.ordinal", ord, strlen(ord)},
        {"pgcdc.op", op, strlen(op)},
    };
    const void *k = key_null ? NULL : key->data;
    size_t klen = key_null ? 0 : key->len;
    const void *v = value ? value->data : NULL;
    size_t vlen = value ? value->len : 0;
    for (;;) {
        int rc =
            cdc_producer_send(s->producer, s->topic.data, -1, k, klen, v, vlen, h, 3, seq, err);
        if (rc == 0)
            break;
        if (rc != CDC_EAGAIN)
            return rc;
        /* librdkafka's own queue is full: serve delivery reports, then retry */
        cdc_producer_poll(s->producer, 10);
    }
    cdc_tracker_add(s->base.tracker, seq);
    s->inflight_bytes += klen + vlen;
    s->msg_ordinal++;
    return 0;
}

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Encode and send ev under the key of image; then a tombstone if asked. */
static int publish(kafka_sink *s, const cdc_event *ev, uint64_t seq, int image, bool tombstone,
                   cdc_error *err)
{
    bool key_null = true;
    int rc;
    cdc_buf_reset(&s->key);
    cdc_buf_reset(&s->value);
    if (ev->op == CDC_EVENT_MESSAGE) {
        /* Debezium keys logical messages by prefix */
        rc = cdc_encoder_key(s->encoder, ev, image, &s->key, &key_null, err);
    } else if (ev->op == CDC_EVENT_TRUNCATE) {
        key_null = true;
        rc = 0;
    } else {
        rc = cdc_encoder_key(s->encoder, ev, image, &s->key, &key_null, err);
    }
    if (rc < 0)
        return rc;
    if ((rc = cdc_encoder_value(s->encoder, ev, now_us(), &s->value, err)) < 0)
        return rc;
    char op[2] = {(char)ev->op, '\0'};
    if ((rc = send_one(s, ev, seq, &s->key, key_null, &s->value, op, err)) < 0)
        return rc;
    if (tombstone && !key_null)
        rc = send_one(s, ev, seq, &s->key, false, NULL, "tombstone", err);
    return rc;
}

static int ks_event(cdc_sink *base, const cdc_event *ev, uint64_t seq, cdc_error *err)
{
    kafka_sink *s = (kafka_sink *)base;
    const cdc_config *cfg = s->cfg;
    int rc;

    switch (ev->op) {
    case CDC_EVENT_MESSAGE:
        if (!cfg->publish_messages)
            return 0;
        if ((rc = set_topic(s, NULL, NULL)) < 0)
            return cdc_err(err, rc, "out of memory");
        return publish(s, ev, seq, CDC_KEY_AFTER, false, err);
    case CDC_EVENT_TRUNCATE:
        if (!cfg->publish_truncate)
            return 0;
        break;
    default: break;
    }
    if ((rc = set_topic(s, ev->schema, ev->table)) < 0)
        return cdc_err(err, rc, "out of memory");

    if (ev->op == CDC_EVENT_DELETE)
        return publish(s, ev, seq, CDC_KEY_BEFORE, cfg->tombstones, err);
    if (ev->op == CDC_EVENT_UPDATE && cdc_event_key_changed(ev)) {
        /* As Debezium: delete under the old key (+ tombstone), create under the new key. */
        cdc_event del = *ev, ins = *ev;
        del.op = CDC_EVENT_DELETE;
        del.after = NULL;
        ins.op = CDC_EVENT_INSERT;
        ins.before = NULL;
        ins.before_image = CDC_EVENT_IMAGE_NONE;
        if ((rc = publish(s, &del, seq, CDC_KEY_BEFORE, cfg->tombstones, err)) < 0)
            return rc;
        return publish(s, &ins, seq, CDC_KEY_AFTER, false, err);
    }
    return publish(s, ev, seq, CDC_KEY_AFTER, false, err);
}

static int ks_poll(cdc_sink *base, int timeout_ms, cdc_error *err)
{
    kafka_sink *s = (kafka_sink *)base;
    cdc_producer_poll(s->producer, timeout_ms);
    if (s->failure.code) {
        if (err && err->code == 0)
            *err = s->failure;
        return s->failure.code;
    }
    return cdc_producer_fatal(s->producer, err);
}

static bool ks_busy(cdc_sink *base)
{
    kafka_sink *s = (kafka_sink *)base;
    return cdc_tracker_inflight(base->tracker) >= (uint64_t)s->cfg->inflight_max_messages ||
           s->inflight_bytes >= (uint64_t)s->cfg->inflight_max_bytes;
}

static int ks_open(cdc_sink *base, const char *dbname, cdc_error *err)
{
    kafka_sink *s = (kafka_sink *)base;
    free(s->dbname);
    s->dbname = strdup(dbname);
    if (s->dbname == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    cdc_source_info src = {.name = s->cfg->topic_prefix, .db = s->dbname, .version = PGCDC_VERSION};
    cdc_encoder_free(s->encoder);
    s->encoder = NULL;
    return cdc_encoder_new(s->cfg, &src, &s->encoder, err);
}

static void ks_free(cdc_sink *base)
{
    kafka_sink *s = (kafka_sink *)base;
    if (s == NULL)
        return;
    cdc_producer_free(s->producer, 0);
    cdc_encoder_free(s->encoder);
    free(s->dbname);
    cdc_buf_free(&s->topic);
    cdc_buf_free(&s->key);
    cdc_buf_free(&s->value);
    free(s);
}

static const cdc_sink_ops kafka_ops = {
    .open = ks_open,
    .event = ks_event,
    .commit = NULL,
    .poll = ks_poll,
    .busy = ks_busy,
    .free = ks_free,
};

int cdc_sink_kafka_new(const cdc_config *cfg, cdc_sink **ret, cdc_error *err)
{
    kafka_sink *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    s->base.ops = &kafka_ops;
    s->cfg = cfg;
    int rc = cdc_producer_new(cfg, on_delivery, s, &s->producer, err);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *ret = &s->base;
    return 0;
}
