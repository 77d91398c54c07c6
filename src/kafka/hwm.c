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

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep up to ms in small steps so a stop request is seen promptly. */
static void nap(int ms, volatile int *stop)
{
    for (int i = 0; i < ms / 50 && !*stop; i++)
        usleep(50000);
}

/* How long the scan retries a partition whose last message cannot be read. */
#define READ_RETRY_MS 60000

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

int cdc_hwm_scan(const cdc_config *cfg, const char *source, const char *const *topics,
                 size_t ntopics, cdc_hwm *hwm, volatile int *stop, cdc_error *err)
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
    int64_t t0 = mono_ms();

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
    rd_kafka_metadata_destroy(md);
    scanned = (size_t)ends->cnt;

    /* 2. end offsets: ListOffsets(latest) batched per broker (offsets_for_times with -1) */
    backoff = 500;
    for (int attempt = 1; rc == 0 && ends->cnt > 0; attempt++) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, ends, 10000);
        /* a partition whose end is unknown (leader moving) would go undeduplicated */
        for (int k = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && k < ends->cnt; k++)
            e = ends->elems[k].err;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if ((rc = refused(rk, &watch, err)) < 0)
            break;
        cdc_log_warning("cannot read kafka end offsets (attempt %d): %s; retrying in %d ms",
                        attempt, rd_kafka_err2str(e), backoff);
        nap(backoff, stop);
        if (*stop) {
            rc = cdc_err(err, CDC_EINTERRUPTED, "stopped while waiting for kafka");
            break;
        }
        for (int k = 0; k < ends->cnt; k++) {
            ends->elems[k].offset = RD_KAFKA_OFFSET_END;
            ends->elems[k].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        /* the leaders may have moved (a broker died): ask for them again, or the next
         * request goes to the dead one as well */
        const struct rd_kafka_metadata *fresh = NULL;
        if (rd_kafka_metadata(rk, 1, NULL, &fresh, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(fresh);
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
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
        int64_t last_log = mono_ms(), retry_since = 0;
        while (rc == 0 && done < want) {
            if (*stop) {
                rc = cdc_err(err, CDC_EINTERRUPTED, "stopped while reading kafka positions");
                break;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
            if (m == NULL && (rc = refused(rk, &watch, err)) < 0)
                break;
            if (m == NULL && retry_since > 0 && mono_ms() - retry_since > READ_RETRY_MS) {
                rc = cdc_err(err, CDC_EKAFKA,
                             "cannot read the last message of %zu kafka partitions for %d s",
                             want - done, READ_RETRY_MS / 1000);
                cdc_err_detail(err, "pgcdc reads the last message of every partition it writes "
                                    "before streaming, to skip what Kafka already holds; "
                                    "without it a replay could repeat messages");
                cdc_err_hint(err, "see the warnings above for the partitions and why; check "
                                  "the topics and the brokers, then start pgcdc again");
                break;
            }
            if (m == NULL) {
                if (mono_ms() - last_log > 10000) {
                    cdc_log_warning("still reading the last message of kafka partitions: %zu of "
                                    "%zu done",
                                    done, want);
                    last_log = mono_ms();
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
            } else if (retry_since > 0 && mono_ms() - retry_since > READ_RETRY_MS) {
                /* never give up deduplication for a partition that could not be read:
                 * stop instead, and say which */
                rc =
                    cdc_err(err, CDC_EKAFKA, "cannot read the last message of %s [%d] for %d s: %s",
                            rd_kafka_topic_name(m->rkt), (int)m->partition, READ_RETRY_MS / 1000,
                            rd_kafka_message_errstr(m));
                cdc_err_detail(err, "pgcdc reads the last message of every partition it writes "
                                    "before streaming, to skip what Kafka already holds; "
                                    "without it a replay could repeat messages");
                cdc_err_hint(err, "check the topic (deleted and recreated? unreadable?) and the "
                                  "brokers, then start pgcdc again");
            } else {
                /* a broker down, a partition moving, ...: read it again after a pause */
                if (retry_since == 0)
                    retry_since = mono_ms();
                cdc_log_warning("cannot read the last message of %s [%d] yet: %s; retrying",
                                rd_kafka_topic_name(m->rkt), (int)m->partition,
                                rd_kafka_message_errstr(m));
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
            scanned, want, ntopics, (long long)(mono_ms() - t0), cdc_lsn_format(hwm->max.lsn, lsn),
            (unsigned long long)hwm->max.ordinal);
    }
    return rc;
}
