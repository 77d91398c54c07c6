/* sink.c - the Kafka sink: route each event to its topic and key, encode, produce, track delivery
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "pgcdc/buf.h"
#include "pgcdc/encode.h"
#include "kafka_int.h"
#include "pgcdc/kafka.h"
#include "pgcdc/log.h"
#include "pgcdc/pipeline.h"
#include "pgcdc_build.h"

/*
 * What a message in flight costs beyond its key and value: librdkafka's
 * message struct, the four copied headers and their list (measured: ~1 KB per
 * narrow row in flight against ~480 bytes of key and value).
 */
#define MSG_OVERHEAD 512

/* A hint for a message Kafka or the producer refuses for good. */
static void refusal_hint(cdc_error *err, const char *reason)
{
    if (reason && strstr(reason, "too large"))
        cdc_err_hint(err, "raise kafka.message.max.bytes (and the topic's max.message.bytes on "
                          "the brokers), or leave the table out of the publication");
    else if (reason && strstr(reason, "uthoriz"))
        cdc_err_hint(err, "grant the producer WRITE on the topic");
    else if (reason && strstr(reason, "nknown topic"))
        cdc_err_hint(err, "create the topic, or allow auto.create.topics.enable on the brokers");
}

/*
 * Commit-to-delivery-report latency, in 0.1 ms buckets up to 10 s (the last
 * bucket holds everything slower), logged when the sink stops.
 */
#define LAT_BUCKETS 100001
typedef struct latency_hist {
    uint32_t *b; /* LAT_BUCKETS counters, allocated on first use */
    uint64_t n;  /* samples */
    int64_t max_us;
} latency_hist;

static void lat_add(latency_hist *h, int64_t us)
{
    if (h->b == NULL && (h->b = calloc(LAT_BUCKETS, sizeof(*h->b))) == NULL)
        return;
    if (us < 0)
        us = 0; /* clocks of server and pgcdc differ slightly */
    int64_t i = us / 100;
    h->b[i < LAT_BUCKETS - 1 ? i : LAT_BUCKETS - 1]++;
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
}

/* The q-quantile (0..1) in milliseconds. */
static double lat_quantile(const latency_hist *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)(h->n - 1)) + 1, seen = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want)
            return (double)(i + 1) / 10.0;
    }
    return (double)h->max_us / 1000.0;
}

typedef struct kafka_sink {
    cdc_sink base;
    const cdc_config *cfg;  /* borrowed, outlives the sink */
    cdc_producer *producer; /* owned */
    cdc_encoder *encoder;   /* owned, made by open() */
    char *dbname;           /* owned */
    cdc_buf topic;          /* topic of the current table */
    cdc_buf topic_schema;   /* schema and table the topic was made for */
    cdc_buf topic_table;
    bool topic_is_table; /* topic is a table's (not the message topic) */
    cdc_lsn lsn_cached;  /* commit LSN whose text is in lsn_text */
    char lsn_text[CDC_LSN_STRLEN];
    cdc_buf key;           /* scratch: encoded key */
    cdc_buf value;         /* scratch: encoded value */
    cdc_buf other_key;     /* scratch: a key change's other key, for Debezium's headers */
    char *source;          /* pgcdc.source header: "<system id>/<database>/<slot>" */
    cdc_hwm hwm;           /* last position per partition found at start */
    volatile int *stop;    /* the pipeline's stop flag */
    int64_t unclean_until; /* cdc_sink_source.unclean_until_ms: scans wait for Kafka */
    cdc_lsn server_wal;    /* cdc_sink_source.server_wal: no mark can be beyond it */
    char **sanitised;      /* topic names made valid (warned once each), owned */
    size_t nsanitised;
    uint64_t skipped;        /* replayed messages already in Kafka, not sent again */
    uint64_t inflight_bytes; /* bytes awaiting delivery, with librdkafka's overhead */
    cdc_error failure;       /* first failed delivery; stops the pipeline */
    bool failure_reported;   /* failure was returned once by poll() */
    bool replace_producer;   /* the producer failed (CDC_EKAFKARESET): open() makes a new one */
    int64_t replaced_at;     /* cdc_kafka_mono_ms() when open() last replaced it, 0 if never */
    bool reset_seen;         /* a delivery failed with the producer (CDC_EKAFKARESET) */
    char reset_reason[256];  /* the first such failure */
    bool warmed;             /* the producer knows the topics' metadata */
    latency_hist latency;    /* commit to delivery report */
} kafka_sink;

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ------------------------------------------------------------------------
 * Delivery reports
 * ------------------------------------------------------------------------ */

static void on_delivery(void *ctx, uint64_t seq, size_t bytes, const char *topic, int32_t partition,
                        int err, const char *reason)
{
    kafka_sink *s = ctx;
    bytes += MSG_OVERHEAD;
    s->inflight_bytes -= bytes < s->inflight_bytes ? bytes : s->inflight_bytes;
    if (err == CDC_OK) {
        int64_t commit = cdc_tracker_commit_time(s->base.tracker, seq);
        if (commit > 0)
            lat_add(&s->latency, now_us() - commit);
        cdc_tracker_ack(s->base.tracker, seq);
        return;
    }
    /* Never acknowledged: the checkpoint cannot pass this transaction. */
    cdc_tracker_fail(s->base.tracker, seq);
    if (err == CDC_EKAFKARESET) {
        /* failed with the producer (its fatal error follows), not refused: poll() replaces it */
        if (!s->reset_seen)
            snprintf(s->reset_reason, sizeof(s->reset_reason), "%s [%d]: %s", topic ? topic : "?",
                     (int)partition, reason ? reason : "unknown error");
        s->reset_seen = true;
        return;
    }
    if (s->failure.code == 0) {
        char part[24] = "";
        if (partition >= 0)
            snprintf(part, sizeof(part), " [%d]", (int)partition);
        cdc_err(&s->failure, err == CDC_EKAFKAFATAL ? CDC_EKAFKAFATAL : CDC_EKAFKA,
                "kafka did not accept a message for topic \"%s\"%s: %s", topic ? topic : "?", part,
                reason ? reason : "unknown error");
        cdc_err_detail(&s->failure,
                       "pgcdc stops without moving its checkpoint past the refused message; a "
                       "restart sends it again");
        refusal_hint(&s->failure, reason);
    }
}

/* ------------------------------------------------------------------------
 * Producing
 * ------------------------------------------------------------------------ */

/* Kafka's rule for topic names: 1..249 of [a-zA-Z0-9._-], and not "." or "..". */
static bool topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 249 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Replace every character Kafka does not allow in a topic name by '_' (as Debezium does);
 * true when one was replaced. */
static bool sanitise_topic(char *name, size_t len)
{
    bool changed = false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            name[i] = '_';
            changed = true;
        }
    }
    return changed;
}

/* Say once per table that its topic name was sanitised. */
static int warn_sanitised(kafka_sink *s, const char *schema, const char *table, cdc_error *err)
{
    for (size_t i = 0; i < s->nsanitised; i++)
        if (strcmp(s->sanitised[i], s->topic.data) == 0)
            return 0;
    char **grown = realloc(s->sanitised, sizeof(*grown) * (s->nsanitised + 1));
    if (grown == NULL || (grown[s->nsanitised] = strdup(s->topic.data)) == NULL) {
        s->sanitised = grown ? grown : s->sanitised;
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    s->sanitised = grown;
    s->nsanitised++;
    cdc_log_warning("table \"%s.%s\" goes to topic \"%s\": kafka topic names allow only "
                    "A-Z a-z 0-9 . _ -, and the others became \"_\"",
                    schema, table, s->topic.data);
    return 0;
}

/*
 * Topic of the event's table (NULL table: the message topic); kept while the
 * table repeats. Characters Kafka does not allow become '_' (with a warning);
 * CDC_EKAFKAFATAL, before anything of the table is produced, when the name is
 * still not one Kafka accepts (over 249 bytes).
 */
static int set_topic(kafka_sink *s, const char *schema, const char *table, cdc_error *err)
{
    if (s->topic.len > 0 && s->topic_is_table == (table != NULL) &&
        (table == NULL ||
         (strcmp(schema, s->topic_schema.data) == 0 && strcmp(table, s->topic_table.data) == 0)))
        return 0;
    cdc_buf_reset(&s->topic);
    cdc_buf_reset(&s->topic_schema);
    cdc_buf_reset(&s->topic_table);
    s->topic_is_table = table != NULL;
    int rc;
    if (table == NULL)
        rc = cdc_buf_printf(&s->topic, "%s.message", s->cfg->topic_prefix);
    else if (cdc_buf_puts(&s->topic_schema, schema) < 0 || cdc_buf_puts(&s->topic_table, table) < 0)
        rc = CDC_ENOMEM;
    else
        rc = cdc_buf_printf(&s->topic, "%s.%s.%s", s->cfg->topic_prefix, schema, table);
    if (rc < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    if (table != NULL && sanitise_topic(s->topic.data, s->topic.len) &&
        (rc = warn_sanitised(s, schema, table, err)) < 0)
        return rc;
    if (!topic_name_valid(s->topic.data, s->topic.len)) {
        if (table != NULL)
            cdc_err(err, CDC_EKAFKAFATAL,
                    "topic \"%s\" of table \"%s.%s\" is not a valid kafka topic name",
                    s->topic.data, schema, table);
        else
            cdc_err(err, CDC_EKAFKAFATAL,
                    "topic \"%s\" of logical messages is not a valid kafka topic name",
                    s->topic.data);
        cdc_err_detail(err, "kafka topic names are 1 to 249 ASCII letters, digits, \".\", \"_\" "
                            "and \"-\"; pgcdc stops before producing anything of the table, its "
                            "checkpoint stays before the change");
        cdc_err_hint(err, "rename the table (or change topic.prefix), or leave the table out of "
                          "the publication");
        cdc_buf_reset(&s->topic); /* asked again, it is refused again */
        return CDC_EKAFKAFATAL;
    }
    return 0;
}

/* Decimal text of v into buf (at least 21 bytes); returns its length. */
static size_t u64_text(uint64_t v, char *buf)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/*
 * The partition a message goes to, as the installed partitioner would pick it:
 * murmur2 of the key, or of the topic name for a null key.
 */
static int32_t partition_of(const cdc_hwm_topic *t, const cdc_buf *key, bool key_null)
{
    if (key_null)
        return cdc_kafka_murmur2_partition(t->name, strlen(t->name), t->partitions);
    return cdc_kafka_murmur2_partition(key->data, key->len, t->partitions);
}

/* A mark beyond the server's WAL (forged, or another cluster's) stops pgcdc: skipping by it
 * would silently drop every later change of its partition. */
static int refuse_impossible(kafka_sink *s, cdc_error *err)
{
    if (!s->hwm.impossible)
        return 0;
    char wal[CDC_LSN_STRLEN];
    cdc_err(err, CDC_EMISMATCH,
            "the last message of %s claims a position beyond the server's WAL (%s), with this "
            "source's pgcdc.source header",
            s->hwm.impossible_at, cdc_lsn_format(s->server_wal, wal));
    cdc_err_detail(err, "pgcdc skips a replayed change at or below the last position in its "
                        "partition; this one would hide every later change");
    cdc_err_hint(err, "something other than this pgcdc wrote it (a copy of another topic, a "
                      "test, a restored cluster); remove or supersede it, or use a new "
                      "topic.prefix");
    return CDC_EMISMATCH;
}

/*
 * The LSN of an event's position. A non-transactional logical message takes its own LSN
 * minus one: PostgreSQL gives it the end of its WAL record, which is where the next record
 * starts, and that can be the commit record of a transaction sent after it (whose first
 * event then has the same LSN and ordinal 0). No record starts at that LSN minus one (it is
 * inside the message's record), so no transaction commits there, and everything sent before
 * the message committed before its record began. See docs/DESIGN.md, "Positions".
 */
static cdc_lsn position_lsn(const cdc_event *ev)
{
    if (ev->op == CDC_EVENT_MESSAGE && !ev->message.transactional && ev->commit_lsn > 0)
        return ev->commit_lsn - 1;
    return ev->commit_lsn;
}

/*
 * Send one message (value NULL = tombstone) of transaction seq. Its position
 * is (position_lsn, event ordinal * 4 + sub), sub numbering the messages one
 * event makes (delete, tombstone, create). A message at or below the last
 * position this source wrote to its partition is already in Kafka (a replay
 * after a crash) and is skipped. extra, when not NULL, is a fifth header.
 */
static int send_one(kafka_sink *s, const cdc_event *ev, uint64_t seq, unsigned sub,
                    const cdc_buf *key, bool key_null, const cdc_buf *value, const char *op,
                    const cdc_kafka_header *extra, cdc_error *err)
{
    char ord[24];
    cdc_position pos = {position_lsn(ev), ev->ordinal * 4 + sub};
    int32_t partition = RD_KAFKA_PARTITION_UA;
    const cdc_hwm_topic *t = cdc_hwm_find(&s->hwm, s->topic.data);

    if (t == NULL && (pos.lsn <= s->server_wal || cdc_position_cmp(pos, s->hwm.max) <= 0)) {
        /* A topic not scanned at start: a table renamed, dropped or taken out of the
         * publication since the checkpoint (the replay names it as it was then), or one
         * added. An earlier run can have written it only below the server's WAL position
         * at connect: read its positions now. */
        const char *one[1] = {s->topic.data};
        int rc = cdc_hwm_scan(s->cfg, s->source, one, 1, &s->hwm, s->unclean_until, s->stop, err);
        if (rc == 0)
            rc = refuse_impossible(s, err);
        if (rc < 0)
            return rc;
        t = cdc_hwm_find(&s->hwm, s->topic.data);
    }
    if (t != NULL && t->partitions > 0) {
        partition = partition_of(t, key, key_null);
        if (t->has[partition] && cdc_position_cmp(pos, t->pos[partition]) <= 0) {
            s->skipped++;
            return 0;
        }
    }

    if (s->lsn_cached != pos.lsn || s->lsn_text[0] == '\0') {
        cdc_lsn_format(pos.lsn, s->lsn_text);
        s->lsn_cached = pos.lsn;
    }
    size_t ordlen = u64_text(pos.ordinal, ord);
    cdc_kafka_header h[5] = {
        {"pgcdc.lsn", s->lsn_text, strlen(s->lsn_text)},
        {"pgcdc.ordinal", ord, ordlen},
        {"pgcdc.op", op, strlen(op)},
        {"pgcdc.source", s->source, strlen(s->source)},
    };
    size_t nh = 4;
    if (extra != NULL)
        h[nh++] = *extra;
    const void *k = key_null ? NULL : key->data;
    size_t klen = key_null ? 0 : key->len;
    const void *v = value ? value->data : NULL;
    size_t vlen = value ? value->len : 0;
    for (;;) {
        int rc = cdc_producer_send(s->producer, s->topic.data, partition, k, klen, v, vlen, h, nh,
                                   seq, err);
        if (rc == 0)
            break;
        if (rc != CDC_EAGAIN) {
            char at[CDC_LSN_STRLEN];
            cdc_err_detail(err,
                           "the message for topic \"%s\" from the transaction committed at %s is "
                           "%zu bytes; pgcdc stops before it, with everything earlier delivered "
                           "and checkpointed",
                           s->topic.data, cdc_lsn_format(ev->commit_lsn, at), klen + vlen);
            refusal_hint(err, err ? err->msg : NULL);
            return rc;
        }
        /* librdkafka's own queue is full: serve delivery reports, then retry */
        if (s->stop && *s->stop)
            return cdc_err(err, CDC_EINTERRUPTED, "stopped while kafka's queue was full");
        cdc_producer_poll(s->producer, 10);
    }
    cdc_tracker_add(s->base.tracker, seq);
    s->inflight_bytes += klen + vlen + MSG_OVERHEAD;
    return 0;
}

/* Encode and send ev under the key of image; then a tombstone if asked. extra, when not
 * NULL, is one more header on both. */
static int publish(kafka_sink *s, const cdc_event *ev, uint64_t seq, unsigned sub, int image,
                   bool tombstone, const cdc_kafka_header *extra, cdc_error *err)
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
    if ((rc = send_one(s, ev, seq, sub, &s->key, key_null, &s->value, op, extra, err)) < 0)
        return rc;
    if (tombstone && !key_null)
        rc = send_one(s, ev, seq, sub + 1, &s->key, false, NULL, "tombstone", extra, err);
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
        if ((rc = set_topic(s, NULL, NULL, err)) < 0)
            return rc;
        return publish(s, ev, seq, 0, CDC_KEY_AFTER, false, NULL, err);
    case CDC_EVENT_TRUNCATE:
        if (!cfg->publish_truncate)
            return 0;
        break;
    default: break;
    }
    if ((rc = set_topic(s, ev->schema, ev->table, err)) < 0)
        return rc;

    if (ev->op == CDC_EVENT_DELETE)
        return publish(s, ev, seq, 0, CDC_KEY_BEFORE, cfg->tombstones, NULL, err);
    if (ev->op == CDC_EVENT_UPDATE && cdc_event_key_changed(ev)) {
        /* As Debezium: delete under the old key (+ tombstone), create under the new key.
         * The delete and its tombstone carry the new key in a __debezium.newkey header, the
         * create the old key in __debezium.oldkey, each encoded as the message key is. */
        cdc_event del = *ev, ins = *ev;
        bool null_key;
        del.op = CDC_EVENT_DELETE;
        del.after = NULL;
        ins.op = CDC_EVENT_INSERT;
        ins.before = NULL;
        ins.before_image = CDC_EVENT_IMAGE_NONE;
        cdc_buf_reset(&s->other_key);
        if ((rc = cdc_encoder_key(s->encoder, ev, CDC_KEY_AFTER, &s->other_key, &null_key, err)) <
            0)
            return rc;
        cdc_kafka_header newkey = {"__debezium.newkey", s->other_key.data, s->other_key.len};
        if ((rc = publish(s, &del, seq, 0, CDC_KEY_BEFORE, cfg->tombstones,
                          null_key ? NULL : &newkey, err)) < 0)
            return rc;
        cdc_buf_reset(&s->other_key);
        if ((rc = cdc_encoder_key(s->encoder, ev, CDC_KEY_BEFORE, &s->other_key, &null_key, err)) <
            0)
            return rc;
        cdc_kafka_header oldkey = {"__debezium.oldkey", s->other_key.data, s->other_key.len};
        return publish(s, &ins, seq, 2, CDC_KEY_AFTER, false, null_key ? NULL : &oldkey, err);
    }
    return publish(s, ev, seq, 0, CDC_KEY_AFTER, false, NULL, err);
}

static int ks_poll(cdc_sink *base, int timeout_ms, cdc_error *err)
{
    kafka_sink *s = (kafka_sink *)base;
    cdc_producer_poll(s->producer, timeout_ms);
    if (s->failure.code && !s->failure_reported) {
        /* reported once: the pipeline then drains what is still deliverable */
        s->failure_reported = true;
        if (err && err->code == 0)
            *err = s->failure;
        return s->failure.code;
    }
    if (s->replace_producer)
        return 0; /* reported once; the pipeline drains what was purged, then reopens */
    int rc = cdc_producer_fatal(s->producer, err);
    if (rc == 0 && s->reset_seen) {
        /* a delivery failed on the producer's sequence numbers without a fatal error (yet) */
        rc = cdc_err(err, CDC_EKAFKARESET, "the kafka producer failed: %s", s->reset_reason);
    }
    if (rc == CDC_EKAFKARESET) {
        s->replace_producer = true;
        cdc_producer_purge(s->producer);
    }
    return rc;
}

static bool ks_busy(cdc_sink *base)
{
    kafka_sink *s = (kafka_sink *)base;
    return cdc_tracker_inflight(base->tracker) >= (uint64_t)s->cfg->inflight_max_messages ||
           s->inflight_bytes >= (uint64_t)s->cfg->inflight_max_bytes;
}

static int ks_open(cdc_sink *base, const cdc_sink_source *src, cdc_error *err)
{
    kafka_sink *s = (kafka_sink *)base;
    char tag[512];
    snprintf(tag, sizeof(tag), "%llu/%s/%s", (unsigned long long)src->system_id, src->dbname,
             src->slot);
    free(s->dbname);
    free(s->source);
    s->dbname = strdup(src->dbname);
    s->source = strdup(tag);
    s->stop = src->stop;
    s->unclean_until = src->unclean_until_ms;
    s->server_wal = src->server_wal;
    if (s->replace_producer) {
        /* what the failed producer sent may sit unreplicated in a leader's log: the scan
         * waits for it as after a crash */
        cdc_producer_free(s->producer, 0);
        s->producer = NULL;
        s->warmed = false;
        int prc = cdc_producer_new(s->cfg, on_delivery, s, &s->producer, err);
        if (prc < 0)
            return prc;
        s->replace_producer = false;
        s->reset_seen = false;
        s->replaced_at = cdc_kafka_mono_ms();
        cdc_log_info("started a new kafka producer");
    }
    if (s->replaced_at > s->unclean_until)
        s->unclean_until = s->replaced_at;
    if (s->dbname == NULL || s->source == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    cdc_source_info info = {
        .name = s->cfg->topic_prefix, .db = s->dbname, .version = PGCDC_VERSION};
    cdc_encoder_free(s->encoder);
    s->encoder = NULL;
    int rc = cdc_encoder_new(s->cfg, &info, &s->encoder, err);
    if (rc < 0)
        return rc;

    /* Every topic this run may write to: one per published table, and the message topic.
     * A reconnect reads them again: messages sent before it are in Kafka now. */
    cdc_hwm_free(&s->hwm);
    size_t n = 0;
    while (src->tables[n])
        n++;
    char **topics = calloc(n + 1, sizeof(*topics));
    if (topics == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (asprintf(&topics[i], "%s.%s", s->cfg->topic_prefix, src->tables[i]) < 0)
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        else
            sanitise_topic(topics[i], strlen(topics[i])); /* as set_topic() names it */
    }
    if (rc == 0 && asprintf(&topics[n], "%s.message", s->cfg->topic_prefix) < 0)
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    s->hwm.wal_limit = s->server_wal;
    if (rc == 0)
        rc = cdc_hwm_scan(s->cfg, s->source, (const char *const *)topics, n + 1, &s->hwm,
                          s->unclean_until, s->stop, err);
    if (rc == 0)
        rc = refuse_impossible(s, err);
    if (rc == 0 && !s->warmed) {
        /* only topics that exist: asking for the others would auto-create them */
        size_t k = 0;
        for (size_t i = 0; i <= n; i++) {
            const cdc_hwm_topic *t = cdc_hwm_find(&s->hwm, topics[i]);
            if (t && t->partitions > 0) {
                char *tmp = topics[k];
                topics[k++] = topics[i];
                topics[i] = tmp;
            }
        }
        if (k > 0)
            cdc_producer_warm(s->producer, (const char *const *)topics, k, 5000);
        s->warmed = true;
    }
    for (size_t i = 0; i <= n; i++)
        free(topics[i]);
    free(topics);
    return rc;
}

static void ks_free(cdc_sink *base)
{
    kafka_sink *s = (kafka_sink *)base;
    if (s == NULL)
        return;
    cdc_producer_free(s->producer, 0);
    if (s->skipped)
        cdc_log_info("skipped %llu replayed messages that kafka already had",
                     (unsigned long long)s->skipped);
    if (s->latency.n > 0)
        cdc_log_info("commit to kafka delivery report: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
                     "over %llu messages",
                     lat_quantile(&s->latency, 0.5), lat_quantile(&s->latency, 0.99),
                     (double)s->latency.max_us / 1000.0, (unsigned long long)s->latency.n);
    free(s->latency.b);
    cdc_encoder_free(s->encoder);
    cdc_hwm_free(&s->hwm);
    for (size_t i = 0; i < s->nsanitised; i++)
        free(s->sanitised[i]);
    free(s->sanitised);
    free(s->source);
    free(s->dbname);
    cdc_buf_free(&s->topic);
    cdc_buf_free(&s->topic_schema);
    cdc_buf_free(&s->topic_table);
    cdc_buf_free(&s->key);
    cdc_buf_free(&s->value);
    cdc_buf_free(&s->other_key);
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
