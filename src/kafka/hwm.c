/* hwm.c - read the source position of the last message in each partition (exactly-once on restart)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_int.h"
#include "pgcdc/log.h"

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

const cdc_hwm_topic *cdc_hwm_find(const cdc_hwm *hwm, const char *topic)
{
    if (hwm->nslots == 0)
        return NULL;
    for (size_t i = hash_str(topic) & (hwm->nslots - 1);; i = (i + 1) & (hwm->nslots - 1)) {
        size_t v = hwm->slots[i];
        if (v == 0)
            return NULL;
        if (strcmp(hwm->topics[v - 1].name, topic) == 0)
            return &hwm->topics[v - 1];
    }
}

static int rehash(cdc_hwm *hwm, size_t nslots)
{
    size_t *slots = calloc(nslots, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t t = 0; t < hwm->ntopics; t++) {
        size_t i = hash_str(hwm->topics[t].name) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = t + 1;
    }
    free(hwm->slots);
    hwm->slots = slots;
    hwm->nslots = nslots;
    return 0;
}

/* Add topic with partitions (all positions unknown); returns the entry or NULL. */
static cdc_hwm_topic *add_topic(cdc_hwm *hwm, const char *name, int32_t partitions)
{
    if (hwm->ntopics == hwm->cap) {
        size_t cap = hwm->cap ? hwm->cap * 2 : 64;
        cdc_hwm_topic *t = realloc(hwm->topics, sizeof(*t) * cap);
        if (t == NULL)
            return NULL;
        hwm->topics = t;
        hwm->cap = cap;
    }
    if ((hwm->ntopics + 1) * 2 > hwm->nslots &&
        rehash(hwm, hwm->nslots ? hwm->nslots * 2 : 128) < 0)
        return NULL;
    cdc_hwm_topic *t = &hwm->topics[hwm->ntopics];
    memset(t, 0, sizeof(*t));
    t->name = strdup(name);
    t->partitions = partitions;
    if (partitions > 0) {
        t->pos = calloc((size_t)partitions, sizeof(*t->pos));
        t->has = calloc((size_t)partitions, sizeof(*t->has));
        t->done = calloc((size_t)partitions, sizeof(*t->done));
    }
    if (t->name == NULL ||
        (partitions > 0 && (t->pos == NULL || t->has == NULL || t->done == NULL))) {
        free(t->name);
        free(t->pos);
        free(t->has);
        free(t->done);
        return NULL;
    }
    size_t i = hash_str(name) & (hwm->nslots - 1);
    while (hwm->slots[i])
        i = (i + 1) & (hwm->nslots - 1);
    hwm->slots[i] = ++hwm->ntopics;
    hwm->npartitions += (size_t)(partitions > 0 ? partitions : 0);
    return t;
}

void cdc_hwm_free(cdc_hwm *hwm)
{
    for (size_t i = 0; i < hwm->ntopics; i++) {
        free(hwm->topics[i].name);
        free(hwm->topics[i].pos);
        free(hwm->topics[i].has);
        free(hwm->topics[i].done);
    }
    free(hwm->topics);
    free(hwm->slots);
    memset(hwm, 0, sizeof(*hwm));
}

bool cdc_position_parse(const char *lsn, size_t lsnlen, const char *ord, size_t ordlen,
                        cdc_position *ret)
{
    char buf[32];
    cdc_position p;
    if (lsnlen == 0 || lsnlen >= sizeof(buf) || ordlen == 0 || ordlen >= sizeof(buf))
        return false;
    memcpy(buf, lsn, lsnlen);
    buf[lsnlen] = '\0';
    if (cdc_lsn_parse(buf, &p.lsn) < 0)
        return false;
    memcpy(buf, ord, ordlen);
    buf[ordlen] = '\0';
    char *end;
    p.ordinal = strtoull(buf, &end, 10);
    if (*end != '\0' || buf[0] == '-')
        return false;
    *ret = p;
    return true;
}

static bool header(rd_kafka_headers_t *h, const char *name, const char **val, size_t *len)
{
    const void *v;
    if (rd_kafka_header_get_last(h, name, &v, len) != RD_KAFKA_RESP_ERR_NO_ERROR || v == NULL)
        return false;
    *val = v;
    return true;
}

/* Record the position of m if this source wrote it. */
static void note_message(cdc_hwm *hwm, const char *source, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    cdc_hwm_topic *t = (cdc_hwm_topic *)cdc_hwm_find(hwm, topic);
    rd_kafka_headers_t *h = NULL;
    const char *src, *lsn, *ord;
    size_t srclen, lsnlen, ordlen;
    cdc_position p;
    if (t == NULL || m->partition < 0 || m->partition >= t->partitions)
        return;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || h == NULL ||
        !header(h, "pgcdc.source", &src, &srclen) || srclen != strlen(source) ||
        memcmp(src, source, srclen) != 0 || !header(h, "pgcdc.lsn", &lsn, &lsnlen) ||
        !header(h, "pgcdc.ordinal", &ord, &ordlen) ||
        !cdc_position_parse(lsn, lsnlen, ord, ordlen, &p)) {
        cdc_log_debug("last message of %s [%d] is not from this source: not deduplicated", topic,
                      (int)m->partition);
        t->has[m->partition] = false;
        return;
    }
    if (hwm->wal_limit > 0 && p.lsn > hwm->wal_limit) {
        /* pgcdc never wrote it: its position is WAL the server does not have yet. Taking it
         * as the mark would skip every later change of the partition. */
        if (!hwm->impossible) {
            char at[CDC_LSN_STRLEN];
            snprintf(hwm->impossible_at, sizeof(hwm->impossible_at),
                     "%s [%d] at offset %lld: %s #%llu", topic, (int)m->partition,
                     (long long)m->offset, cdc_lsn_format(p.lsn, at),
                     (unsigned long long)p.ordinal);
        }
        hwm->impossible = true;
        t->has[m->partition] = false;
        return;
    }
    if (!t->has[m->partition])
        hwm->nfound++;
    t->pos[m->partition] = p;
    t->has[m->partition] = true;
    if (cdc_position_cmp(p, hwm->max) > 0)
        hwm->max = p;
}

/* The first of topics with a metadata error other than "does not exist", or NULL. */
static const char *transient_topic_error(const struct rd_kafka_metadata *md,
                                         const char *const *topics, size_t ntopics,
                                         rd_kafka_resp_err_t *ret_err)
{
    for (int k = 0; k < md->topic_cnt; k++) {
        rd_kafka_resp_err_t e = md->topics[k].err;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        for (size_t i = 0; i < ntopics; i++) {
            if (strcmp(md->topics[k].topic, topics[i]) == 0) {
                *ret_err = e;
                return topics[i];
            }
        }
    }
    return NULL;
}

/* Mark a partition finished; true the first time. */
static bool mark_done(cdc_hwm *hwm, const char *topic, int32_t partition)
{
    cdc_hwm_topic *t = (cdc_hwm_topic *)cdc_hwm_find(hwm, topic);
    if (t == NULL || partition < 0 || partition >= t->partitions || t->done[partition])
        return false;
    t->done[partition] = true;
    return true;
}

/* Sleep up to ms in small steps so a stop request is seen promptly. */
static void nap(int ms, volatile int *stop)
{
    for (int i = 0; i < ms / 50 && !*stop; i++)
        usleep(50000);
}

/* The position reader's error callback: refusals that need a person (cdc_kafka_refusal_note). */
typedef struct scan_watch {
    const cdc_config *cfg;
    cdc_kafka_refusals refusals;
} scan_watch;

static void scan_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    scan_watch *w = opaque;
    if (!cdc_kafka_refusal_note(&w->refusals, w->cfg, err, reason))
        cdc_log_debug("kafka position reader: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                      reason);
}

/* The refusal the watch saw, as the scan's error; 0 when there was none. Serves the
 * handle's error callbacks first (they run only inside a poll). */
static int refused(rd_kafka_t *rk, const scan_watch *w, cdc_error *err)
{
    rd_kafka_poll(rk, 0);
    if (!cdc_kafka_refusal_persists(&w->refusals))
        return 0;
    if (err)
        *err = w->refusals.why;
    return w->refusals.why.code;
}

/* Kafka's default replica.lag.time.max.ms, assumed when the brokers' cannot be read. */
#define KAFKA_DEFAULT_REPLICA_LAG_MS 30000

/* True when a partition of topics has more than one replica. */
static bool replicated(const struct rd_kafka_metadata *md, const char *const *topics,
                       size_t ntopics)
{
    for (int k = 0; k < md->topic_cnt; k++) {
        bool wanted = false;
        for (size_t i = 0; i < ntopics && !wanted; i++)
            wanted = strcmp(md->topics[k].topic, topics[i]) == 0;
        for (int p = 0; wanted && p < md->topics[k].partition_cnt; p++)
            if (md->topics[k].partitions[p].replica_cnt > 1)
                return true;
    }
    return false;
}

/* replica.lag.time.max.ms of broker id (one DescribeConfigs), or -1 with the reason in why. */
static int64_t replica_lag_of(rd_kafka_t *rk, rd_kafka_queue_t *q, int32_t id, char *why,
                              size_t whysz)
{
    char name[16];
    snprintf(name, sizeof(name), "%d", (int)id);
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_BROKER, name);
    if (res == NULL) {
        snprintf(why, whysz, "out of memory");
        return -1;
    }
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    int64_t lag = -1;
    snprintf(why, whysz, "broker %d does not say", (int)id);
    if (ev == NULL) {
        snprintf(why, whysz, "broker %d did not answer in 15 s", (int)id);
        return -1;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(why, whysz, "%s", rd_kafka_event_error_string(ev));
    } else {
        size_t nr = 0;
        const rd_kafka_ConfigResource_t **got = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &nr);
        for (size_t i = 0; i < nr; i++) {
            if (rd_kafka_ConfigResource_error(got[i])) {
                snprintf(why, whysz, "%s", rd_kafka_ConfigResource_error_string(got[i]));
                continue;
            }
            size_t ne = 0;
            const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(got[i], &ne);
            for (size_t k = 0; k < ne; k++) {
                const char *v = rd_kafka_ConfigEntry_value(e[k]);
                if (v && strcmp(rd_kafka_ConfigEntry_name(e[k]), "replica.lag.time.max.ms") == 0)
                    lag = atoll(v);
            }
        }
    }
    rd_kafka_event_destroy(ev);
    return lag;
}

/* The largest replica.lag.time.max.ms of the brokers in md (librdkafka asks one broker per
 * call), or -1 with the reason in why. */
static int64_t replica_lag_max(rd_kafka_t *rk, const struct rd_kafka_metadata *md, char *why,
                               size_t whysz)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int64_t lag = -1;
    snprintf(why, whysz, "no broker in the metadata");
    for (int i = 0; q != NULL && i < md->broker_cnt; i++) {
        int64_t one = replica_lag_of(rk, q, md->brokers[i].id, why, whysz);
        if (one < 0) {
            lag = -1;
            break;
        }
        if (one > lag)
            lag = one;
    }
    if (q)
        rd_kafka_queue_destroy(q);
    return lag;
}

/*
 * After a run that may have died with messages in flight (settle_from > 0, when it may still
 * have been sending), wait before reading ends: the partition leader may hold messages of that
 * run which its followers have not fetched yet. Consumers see a partition only up to its high
 * watermark, so those would look absent and be written again. Within replica.lag.time.max.ms a
 * follower in the ISR has them or is dropped from the ISR (checked every half of it), and
 * either way the high watermark passes them.
 */
static int settle(rd_kafka_t *rk, const cdc_config *cfg, const struct rd_kafka_metadata *md,
                  const char *const *topics, size_t ntopics, int64_t settle_from,
                  volatile int *stop, cdc_error *err)
{
    if (settle_from <= 0 || cfg->crash_recovery_wait == 0 || !replicated(md, topics, ntopics))
        return 0;
    int64_t wait = cfg->crash_recovery_wait;
    char how[160];
    if (wait < 0) {
        char why[256];
        int64_t lag = replica_lag_max(rk, md, why, sizeof(why));
        if (lag < 0) {
            cdc_log_warning("cannot read the brokers' replica.lag.time.max.ms (%s): assuming "
                            "Kafka's default %d ms; set crash.recovery.wait to choose",
                            why, KAFKA_DEFAULT_REPLICA_LAG_MS);
            lag = KAFKA_DEFAULT_REPLICA_LAG_MS;
        }
        wait = lag * 3 / 2 + 2000;
        snprintf(how, sizeof(how), "1.5 x replica.lag.time.max.ms %lld ms + 2 s", (long long)lag);
    } else {
        snprintf(how, sizeof(how), "crash.recovery.wait");
    }
    int64_t until = settle_from + wait, now = cdc_kafka_mono_ms();
    if (now >= until)
        return 0;
    cdc_log_info("the last run did not stop cleanly: waiting %.1f s (%s) for kafka to commit "
                 "what it may have sent, before reading the last message of each partition",
                 (double)(until - now) / 1000.0, how);
    int64_t last_log = now;
    while ((now = cdc_kafka_mono_ms()) < until) {
        if (*stop)
            return cdc_err(err, CDC_EINTERRUPTED, "stopped while waiting for kafka");
        if (now - last_log >= 10000) {
            cdc_log_info("waiting for kafka to commit the last run's messages: %.0f s left",
                         (double)(until - now) / 1000.0);
            last_log = now;
        }
        nap(200, stop);
    }
    return 0;
}

/* Partitions whose end offsets are asked for in one request (see cdc_hwm_scan). */
#define END_BATCH 256

/* The end offsets of the partitions of list (ListOffsets, latest), retried until every one
 * is known: a partition whose end is unknown (leader moving) would go undeduplicated. */
static int end_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list,
                       const scan_watch *watch, volatile int *stop, cdc_error *err)
{
    int backoff = 500, rc = 0;
    for (int attempt = 1;; attempt++) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, list, 10000);
        for (int k = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && k < list->cnt; k++)
            e = list->elems[k].err;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if ((rc = refused(rk, watch, err)) < 0)
            return rc;
        cdc_log_warning("cannot read kafka end offsets (attempt %d): %s; retrying in %d ms",
                        attempt, rd_kafka_err2str(e), backoff);
        nap(backoff, stop);
        if (*stop)
            return cdc_err(err, CDC_EINTERRUPTED, "stopped while waiting for kafka");
        for (int k = 0; k < list->cnt; k++) {
            list->elems[k].offset = RD_KAFKA_OFFSET_END;
            list->elems[k].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        /* the leaders may have moved (a broker died): ask for them again, or the next
         * request goes to the dead one as well */
        const struct rd_kafka_metadata *fresh = NULL;
        if (rd_kafka_metadata(rk, 1, NULL, &fresh, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(fresh);
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
    }
}

int cdc_hwm_scan(const cdc_config *cfg, const char *source, const char *const *topics,
                 size_t ntopics, cdc_hwm *hwm, int64_t settle_from, volatile int *stop,
                 cdc_error *err)
{
    scan_watch watch = {.cfg = cfg};
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    int rc = cdc_kafka_conf_build(cfg, CDC_KAFKA_CONSUMER, &conf, err);
    if (rc < 0)
        return rc;
    if (rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", "pgcdc-hwm", errstr, sizeof(errstr)) ||
        /* the answer is at hand: do not let the broker hold fetches open */
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", errstr, sizeof(errstr)) ||
        /* an offset retention removed is an error to report, not a jump elsewhere */
        rd_kafka_conf_set(conf, "auto.offset.reset", "error", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(conf);
        return cdc_err(err, CDC_ECONFIG, "cannot configure the position reader: %s", errstr);
    }
    rd_kafka_conf_set_opaque(conf, &watch);
    rd_kafka_conf_set_error_cb(conf, scan_error_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return cdc_err(err, CDC_ECONFIG, "cannot create the kafka consumer: %s", errstr);
    }
    int64_t t0 = cdc_kafka_mono_ms();

    /* 1. partition counts: one metadata request for the whole cluster */
    const struct rd_kafka_metadata *md = NULL;
    int backoff = 500, wait_ms = 2000; /* wait grows: a slow broker still answers */
    for (int attempt = 1;; attempt++) {
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, wait_ms);
        const char *what = "";
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* a topic that does not exist has nothing to skip; any other topic error
             * (leader election, ...) would hide its marks: ask again */
            what = transient_topic_error(md, topics, ntopics, &e);
            if (what == NULL)
                break;
            rd_kafka_metadata_destroy(md);
            md = NULL;
        }
        if ((rc = refused(rk, &watch, err)) < 0) {
            rd_kafka_destroy(rk);
            return rc;
        }
        cdc_log_warning("cannot read kafka metadata%s%s (attempt %d): %s; retrying in %d ms",
                        *what ? " of topic " : "", what, attempt, rd_kafka_err2str(e), backoff);
        nap(backoff, stop);
        if (*stop) {
            rd_kafka_destroy(rk);
            return cdc_err(err, CDC_EINTERRUPTED, "stopped while waiting for kafka");
        }
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
        wait_ms = wait_ms * 2 > 30000 ? 30000 : wait_ms * 2;
    }
    rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_new(64);
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(64);
    size_t want = 0, scanned = 0;
    rc = 0;
    for (size_t i = 0; i < ntopics && rc == 0; i++) {
        if (cdc_hwm_find(hwm, topics[i]))
            continue;
        int32_t parts = 0;
        for (int k = 0; k < md->topic_cnt; k++)
            if (strcmp(md->topics[k].topic, topics[i]) == 0 && md->topics[k].err == 0)
                parts = md->topics[k].partition_cnt;
        if (add_topic(hwm, topics[i], parts) == NULL) {
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            break;
        }
        for (int32_t p = 0; p < parts; p++)
            rd_kafka_topic_partition_list_add(ends, topics[i], p)->offset = RD_KAFKA_OFFSET_END;
    }
    if (rc == 0)
        rc = settle(rk, cfg, md, topics, ntopics, settle_from, stop, err);
    rd_kafka_metadata_destroy(md);
    scanned = (size_t)ends->cnt;

    /* 2. end offsets: ListOffsets(latest) batched per broker (offsets_for_times with -1),
     * END_BATCH partitions at a time: librdkafka matches each partition of a reply with a
     * walk of the list asked for, so one list of every partition costs their count squared
     * (0.8 billion instructions for 4,000) */
    for (int from = 0; rc == 0 && from < ends->cnt; from += END_BATCH) {
        int n = ends->cnt - from < END_BATCH ? ends->cnt - from : END_BATCH;
        rd_kafka_topic_partition_list_t *part = rd_kafka_topic_partition_list_new(n);
        for (int k = 0; k < n; k++)
            rd_kafka_topic_partition_list_add(part, ends->elems[from + k].topic,
                                              ends->elems[from + k].partition)
                ->offset = RD_KAFKA_OFFSET_END;
        rc = end_offsets(rk, part, &watch, stop, err);
        for (int k = 0; rc == 0 && k < n; k++)
            ends->elems[from + k].offset = part->elems[k].offset;
        rd_kafka_topic_partition_list_destroy(part);
    }
    for (int k = 0; rc == 0 && k < ends->cnt; k++) {
        const rd_kafka_topic_partition_t *tp = &ends->elems[k];
        if (tp->offset <= 0)
            continue; /* empty partition: nothing to skip */
        rd_kafka_topic_partition_list_add(assign, tp->topic, tp->partition)->offset =
            tp->offset - 1;
        want++;
    }
    rd_kafka_topic_partition_list_destroy(ends);

    /* 3. the last message of every non-empty partition, then its end */
    if (rc == 0 && want > 0) {
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = cdc_err(err, CDC_EKAFKA, "cannot read partitions: %s", rd_kafka_err2str(e));
        size_t done = 0;
        int64_t last_log = cdc_kafka_mono_ms(), retry_since = 0, retry_warned = 0;
        while (rc == 0 && done < want) {
            if (*stop) {
                rc = cdc_err(err, CDC_EINTERRUPTED, "stopped while reading kafka positions");
                break;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
            if (m == NULL && (rc = refused(rk, &watch, err)) < 0)
                break;
            if (m == NULL) {
                if (cdc_kafka_mono_ms() - last_log > 10000) {
                    cdc_log_warning("still reading the last message of kafka partitions: %zu of "
                                    "%zu done",
                                    done, want);
                    last_log = cdc_kafka_mono_ms();
                }
                continue;
            }
            if (m->err == 0) {
                note_message(hwm, source, m);
            } else if (m->rkt == NULL) {
                cdc_log_warning("reading kafka positions: %s", rd_kafka_message_errstr(m));
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                       m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                       m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                /* the end of the partition, or its last message is gone (removed by
                 * retention since its end was read; auto.offset.reset=error reports that
                 * as _AUTO_OFFSET_RESET): either way it is finished, once */
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    cdc_log_warning("the last message of %s [%d] is gone (retention?): replayed "
                                    "messages in that partition are not deduplicated",
                                    rd_kafka_topic_name(m->rkt), (int)m->partition);
                if (mark_done(hwm, rd_kafka_topic_name(m->rkt), m->partition))
                    done++;
            } else if (m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                rc = cdc_err(err, CDC_EKAFKA, "cannot read %s [%d] to find what Kafka holds: %s",
                             rd_kafka_topic_name(m->rkt), (int)m->partition,
                             rd_kafka_message_errstr(m));
                cdc_err_hint(err, "pgcdc reads the last message of each of its partitions at "
                                  "start: allow its principal to read (Describe, Read) its topics");
            } else {
                /* a broker down, a partition moving, ...: read it again after a pause, for as
                 * long as it takes (or until a stop): never give up deduplication */
                int64_t now = cdc_kafka_mono_ms();
                if (retry_since == 0)
                    retry_since = now;
                if (now - retry_warned >= 10000 || retry_warned == 0) {
                    cdc_log_warning("cannot read the last message of %s [%d] yet: %s; retrying "
                                    "(for %lld s now; pgcdc does not stream before it knows "
                                    "what Kafka holds)",
                                    rd_kafka_topic_name(m->rkt), (int)m->partition,
                                    rd_kafka_message_errstr(m),
                                    (long long)(now - retry_since) / 1000);
                    retry_warned = now;
                }
                const rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                    assign, rd_kafka_topic_name(m->rkt), m->partition);
                nap(500, stop);
                if (tp != NULL) {
                    rd_kafka_resp_err_t se = rd_kafka_seek(m->rkt, m->partition, tp->offset, 5000);
                    if (se != RD_KAFKA_RESP_ERR_NO_ERROR)
                        cdc_log_warning("cannot seek %s [%d] again: %s; retrying",
                                        rd_kafka_topic_name(m->rkt), (int)m->partition,
                                        rd_kafka_err2str(se));
                }
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_topic_partition_list_destroy(assign);
    rd_kafka_destroy(rk);
    if (rc == 0) {
        char lsn[CDC_LSN_STRLEN];
        cdc_log_info(
            "read the last message of %zu partitions (%zu not empty) in %zu topics in %lld "
            "ms; newest position from this source: %s #%llu",
            scanned, want, ntopics, (long long)(cdc_kafka_mono_ms() - t0),
            cdc_lsn_format(hwm->max.lsn, lsn), (unsigned long long)hwm->max.ordinal);
    }
    return rc;
}
