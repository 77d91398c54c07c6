/* producer.c - the librdkafka producer: idempotent sends, delivery reports, partition metadata */
#include <stdlib.h>
#include <string.h>

#include "kafka_int.h"
#include "pgcdc/log.h"

typedef struct topic_meta {
    char *name;         /* owned */
    int32_t partitions; /* partition count */
} topic_meta;

struct cdc_producer {
    rd_kafka_t *rk; /* owns its conf */
    cdc_delivery_fn on_delivery;
    void *ctx;
    topic_meta *topics; /* metadata cache */
    size_t ntopics;
    const cdc_config *cfg;       /* borrowed: outlives the producer */
    int fatal;                   /* a fatal error was raised */
    bool restartable;            /* ... and a new producer can carry on */
    cdc_error fatal_err;         /* the first one */
    cdc_kafka_refusals refusals; /* credentials or certificates refused */
    bool closing;                /* being freed: delivery reports are dropped */
    rd_kafka_topic_t **warm;     /* topic handles kept so their metadata stays known */
    size_t nwarm;
};

/* ------------------------------------------------------------------------
 * Callbacks (run inside rd_kafka_poll on the caller's thread)
 * ------------------------------------------------------------------------ */

static int is_permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__FATAL: return 1;
    default: return 0;
    }
}

/*
 * Fatal errors a new producer recovers from. librdkafka raises them when it can no longer
 * reason about its sequence numbers (a leader lost messages it never acknowledged, the
 * broker forgot the producer id) or when going on would leave a gap behind a failed batch
 * (enable.gapless.guarantee). Kafka still holds a prefix of what pgcdc sent to each
 * partition, so a new producer replaying from the checkpoint, after the scan, is exact. A
 * refused message (too large, not authorised) fails its own delivery with that reason, and
 * that stops pgcdc before this matters.
 */
static bool restartable(rd_kafka_resp_err_t orig)
{
    switch (orig) {
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE:
    case RD_KAFKA_RESP_ERR__INCONSISTENT: return true;
    default: return false;
    }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    cdc_producer *p = opaque;
    uint64_t seq = (uint64_t)(uintptr_t)m->_private;
    size_t bytes = m->len + m->key_len;
    if (p->closing)
        return;
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : NULL;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        cdc_kafka_refusal_clear(&p->refusals);
        p->on_delivery(p->ctx, seq, bytes, topic, m->partition, CDC_OK, NULL);
        return;
    }
    int code = is_permanent(m->err) ? CDC_EKAFKAFATAL : CDC_EKAFKA;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT || restartable(m->err))
        code = CDC_EKAFKARESET; /* failed with the producer, not refused: see error_cb */
    p->on_delivery(p->ctx, seq, bytes, topic, m->partition, code, rd_kafka_err2str(m->err));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cdc_producer *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        if (!p->fatal) {
            p->fatal = 1;
            p->restartable = restartable(orig);
            if (p->restartable) {
                cdc_err(&p->fatal_err, CDC_EKAFKARESET, "the kafka producer failed: %s: %s",
                        rd_kafka_err2name(orig), buf);
                cdc_err_detail(&p->fatal_err,
                               "pgcdc replaces it and replays from its checkpoint, skipping "
                               "what Kafka holds");
            } else {
                cdc_err(&p->fatal_err, CDC_EKAFKAFATAL, "kafka producer failed for good: %s: %s",
                        rd_kafka_err2name(orig), buf);
            }
        }
        cdc_log_error("kafka producer fatal error: %s", buf);
        return;
    }
    if (cdc_kafka_refusal_note(&p->refusals, p->cfg, err, reason))
        return; /* cdc_producer_fatal() stops pgcdc if it persists */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
        err == RD_KAFKA_RESP_ERR__RESOLVE) {
        cdc_log_warning("kafka unreachable: %s (retrying; messages stay queued)", reason);
        return;
    }
    cdc_log_warning("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static uint32_t murmur2(const uint8_t *data, size_t len);

/* murmur2 of the key, or of the topic name for a null key (see kafka.h). */
static int32_t partitioner_cb(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                              int32_t partition_cnt, void *rkt_opaque, void *msg_opaque)
{
    (void)rkt_opaque;
    (void)msg_opaque;
    if (key == NULL) {
        const char *name = rd_kafka_topic_name(rkt);
        key = name;
        keylen = strlen(name);
    }
    return (int32_t)((murmur2(key, keylen) & 0x7fffffffu) % (uint32_t)partition_cnt);
}

/* ------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------ */

int cdc_producer_new(const cdc_config *cfg, cdc_delivery_fn on_delivery, void *ctx,
                     cdc_producer **ret, cdc_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    if (cdc_kafka_require_bootstrap(cfg, err) < 0)
        return CDC_ECONFIG;
    cdc_producer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc = cdc_kafka_conf_build(cfg, CDC_KAFKA_PRODUCER, &conf, err);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->cfg = cfg;
    p->on_delivery = on_delivery;
    p->ctx = ctx;
    if (cdc_config_kafka_get(cfg, "partitioner") == NULL) {
        /* topic-level kafka.* properties (acks, ...) already live in conf's default topic conf */
        rd_kafka_topic_conf_t *tconf = rd_kafka_conf_get_default_topic_conf(conf);
        if (tconf != NULL) {
            rd_kafka_topic_conf_set_partitioner_cb(tconf, partitioner_cb);
        } else {
            tconf = rd_kafka_topic_conf_new();
            rd_kafka_topic_conf_set_partitioner_cb(tconf, partitioner_cb);
            rd_kafka_conf_set_default_topic_conf(conf, tconf); /* conf now owns tconf */
        }
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk == NULL) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new() takes ownership only on success */
        free(p);
        return cdc_err(err, CDC_ECONFIG, "cannot create the kafka producer: %s", errstr);
    }
    *ret = p;
    return 0;
}

int cdc_producer_send(cdc_producer *p, const char *topic, int32_t partition, const void *key,
                      size_t keylen, const void *value, size_t valuelen,
                      const cdc_kafka_header *headers, size_t nheaders, uint64_t seq,
                      cdc_error *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (nheaders > 0) {
        hdrs = rd_kafka_headers_new(nheaders);
        for (size_t i = 0; i < nheaders; i++)
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                (ssize_t)headers[i].len);
    }
    rd_kafka_resp_err_t e =
        rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                          RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0; /* the headers now belong to the message */
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return CDC_EAGAIN;
    /* librdkafka's text says "Broker: ..." even when the producer refused it locally */
    const char *why = rd_kafka_err2str(e);
    if (strncmp(why, "Broker: ", 8) == 0)
        why += 8;
    return cdc_err(err, is_permanent(e) ? CDC_EKAFKAFATAL : CDC_EKAFKA,
                   "the kafka producer refused a message for topic \"%s\": %s", topic, why);
}

int cdc_producer_poll(cdc_producer *p, int timeout_ms)
{
    return rd_kafka_poll(p->rk, timeout_ms);
}

int cdc_producer_outq_len(cdc_producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

int cdc_producer_partition_count(cdc_producer *p, const char *topic, int timeout_ms,
                                 int32_t *ret_count, cdc_error *err)
{
    for (size_t i = 0; i < p->ntopics; i++) {
        if (strcmp(p->topics[i].name, topic) == 0) {
            *ret_count = p->topics[i].partitions;
            return 0;
        }
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (rkt == NULL)
        return cdc_err(err, CDC_EKAFKA, "cannot use topic \"%s\": %s", topic,
                       rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return cdc_err(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? CDC_ETIMEOUT : CDC_EKAFKA,
                       "cannot read metadata of topic \"%s\": %s", topic, rd_kafka_err2str(e));
    int rc = 0;
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topics[0].partition_cnt <= 0) {
        rd_kafka_resp_err_t te =
            md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        rc = cdc_err(err,
                     te == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ? CDC_EAGAIN
                     : is_permanent(te)                           ? CDC_ENOTFOUND
                                                                  : CDC_EKAFKA,
                     "topic \"%s\" is not available: %s", topic, rd_kafka_err2str(te));
        cdc_err_hint(err, "create the topic, or allow auto-creation on the brokers");
    } else {
        topic_meta *n = realloc(p->topics, sizeof(*n) * (p->ntopics + 1));
        char *name = strdup(topic);
        if (n == NULL || name == NULL) {
            free(name);
            if (n)
                p->topics = n;
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        } else {
            p->topics = n;
            n[p->ntopics].name = name;
            n[p->ntopics].partitions = md->topics[0].partition_cnt;
            p->ntopics++;
            *ret_count = md->topics[0].partition_cnt;
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

void cdc_producer_warm(cdc_producer *p, const char *const *topics, size_t ntopics, int timeout_ms)
{
    rd_kafka_topic_t **h = realloc(p->warm, sizeof(*h) * (p->nwarm + ntopics));
    if (h == NULL)
        return;
    p->warm = h;
    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topics[i], NULL);
        if (rkt)
            p->warm[p->nwarm++] = rkt;
    }
    /* all_topics = 0, no topic: the locally known topics, in one request */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        cdc_log_debug("producer metadata warm-up: %s", rd_kafka_err2str(e));
    else
        rd_kafka_metadata_destroy(md);
}

/* Kafka's murmur2 (seed 0x9747b28c), as org.apache.kafka.common.utils.Utils.murmur2. */
static uint32_t murmur2(const uint8_t *data, size_t len)
{
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len - i) {
    case 3: h ^= (uint32_t)data[i + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)data[i + 1] << 8;  /* fall through */
    case 1: h ^= data[i]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

int32_t cdc_kafka_murmur2_partition(const void *key, size_t keylen, int32_t count)
{
    if (count <= 0)
        return -1;
    return (int32_t)((murmur2(key, keylen) & 0x7fffffffu) % (uint32_t)count);
}

void cdc_producer_purge(cdc_producer *p)
{
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                              RD_KAFKA_PURGE_F_NON_BLOCKING);
}

int cdc_producer_fatal(cdc_producer *p, cdc_error *err)
{
    if (!p->fatal && cdc_kafka_refusal_persists(&p->refusals)) {
        p->fatal = 1;
        p->fatal_err = p->refusals.why;
    }
    if (!p->fatal)
        return 0;
    if (err && err->code == 0) /* the first error set wins */
        *err = p->fatal_err;
    return p->fatal_err.code;
}

void cdc_producer_free(cdc_producer *p, int flush_timeout_ms)
{
    if (p == NULL)
        return;
    if (flush_timeout_ms > 0)
        rd_kafka_flush(p->rk, flush_timeout_ms);
    p->closing = true;
    if (rd_kafka_outq_len(p->rk) > 0) {
        /* with no message timeout, destroy would wait for a broker that may never return */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
    }
    for (size_t i = 0; i < p->nwarm; i++)
        rd_kafka_topic_destroy(p->warm[i]);
    free(p->warm);
    rd_kafka_destroy(p->rk);
    for (size_t i = 0; i < p->ntopics; i++)
        free(p->topics[i].name);
    free(p->topics);
    free(p);
}
