/* consumer.c - the Kafka consumer behind pgcdc tail: subscribe, read, report end of partitions */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_int.h"
#include "pgcdc/log.h"

struct cdc_consumer {
    rd_kafka_t *rk;
    rd_kafka_message_t *last; /* message handed out, destroyed on the next call */
    int assigned;             /* partitions assigned */
    int at_eof;               /* assigned partitions that reached their end */
    bool got_assignment;
};

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cdc_consumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        c->assigned = parts->cnt;
        c->at_eof = 0;
        c->got_assignment = true;
    } else {
        rd_kafka_assign(rk, NULL);
        c->assigned = 0;
        c->at_eof = 0;
    }
}

int cdc_consumer_new(const cdc_config *cfg, const char *const *topics, size_t ntopics,
                     bool from_beginning, cdc_consumer **ret, cdc_error *err)
{
    char errstr[512], group[64];
    rd_kafka_conf_t *conf = NULL;
    if (cdc_kafka_require_bootstrap(cfg, err) < 0)
        return CDC_ECONFIG;
    cdc_consumer *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc = cdc_kafka_conf_build(cfg, CDC_KAFKA_CONSUMER, &conf, err);
    if (rc < 0) {
        free(c);
        return rc;
    }
    snprintf(group, sizeof(group), "pgcdc-tail-%d", (int)getpid());
    /* tail is a viewer: its own group, no committed offsets, see partition ends */
    const char *settings[][2] = {
        {"group.id", cdc_config_kafka_get(cfg, "group.id") ? NULL : group},
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", from_beginning ? "earliest" : "latest"},
        {"topic.metadata.refresh.interval.ms", "2000"},
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (settings[i][1] == NULL)
            continue;
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            free(c);
            return cdc_err(err, CDC_ECONFIG, "cannot set %s: %s", settings[i][0], errstr);
        }
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return cdc_err(err, CDC_ECONFIG, "cannot create the kafka consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(c->rk);

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cdc_consumer_free(c);
        return cdc_err(err, CDC_EKAFKA, "cannot subscribe: %s", rd_kafka_err2str(e));
    }
    *ret = c;
    return 0;
}

int cdc_consumer_next(cdc_consumer *c, int timeout_ms, cdc_kafka_msg *ret, cdc_error *err)
{
    if (c->last) {
        rd_kafka_message_destroy(c->last);
        c->last = NULL;
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (m == NULL)
        return 0;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        c->at_eof++;
        rd_kafka_message_destroy(m);
        return 0;
    }
    if (m->err) {
        int rc = CDC_EKAFKA;
        if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
            cdc_log_warning("kafka: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            return 0;
        }
        cdc_err(err, rc, "kafka consumer error: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return rc;
    }
    memset(ret, 0, sizeof(*ret));
    ret->topic = rd_kafka_topic_name(m->rkt);
    ret->partition = m->partition;
    ret->offset = m->offset;
    ret->key = m->key;
    ret->keylen = m->key_len;
    ret->value = m->payload;
    ret->valuelen = m->len;
    rd_kafka_timestamp_type_t tstype;
    ret->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        size_t n = rd_kafka_header_cnt(hdrs);
        for (size_t i = 0; i < n && ret->nheaders < CDC_KAFKA_MAX_HEADERS; i++) {
            const char *name;
            const void *val;
            size_t len;
            if (rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                ret->headers[ret->nheaders].name = name;
                ret->headers[ret->nheaders].value = val;
                ret->headers[ret->nheaders].len = len;
                ret->nheaders++;
            }
        }
    }
    c->last = m;
    return 1;
}

bool cdc_consumer_at_end(const cdc_consumer *c)
{
    return c->got_assignment && c->assigned > 0 && c->at_eof >= c->assigned;
}

void cdc_consumer_free(cdc_consumer *c)
{
    if (c == NULL)
        return;
    if (c->last)
        rd_kafka_message_destroy(c->last);
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c);
}
