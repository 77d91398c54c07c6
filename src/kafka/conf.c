/* conf.c - librdkafka configuration from pgcdc's kafka.* keys */
#include "kafka_int.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "pgcdc/log.h"

static const char *const producer_defaults[][2] = CDC_KAFKA_DEFAULTS_INIT;

/* Consumer-only keys make a producer conf fail and vice versa; skip them per role. */
static int role_skips(cdc_kafka_role role, const char *key)
{
    static const char *const producer_only[] = {
        "enable.idempotence", "enable.gapless.guarantee", "acks", "partitioner",
        "linger.ms",          "compression.type",         NULL};
    if (role == CDC_KAFKA_CONSUMER)
        for (int i = 0; producer_only[i]; i++)
            if (strcmp(key, producer_only[i]) == 0)
                return 1;
    return 0;
}

/*
 * librdkafka's log lines at pgcdc's levels. Connection failures (facility
 * FAIL) are transient and also reach the error callback, which logs them
 * once as a warning: here they are debug. librdkafka reports fatal errors
 * through the error callback, never only through its log.
 */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* pgcdc sets enable.gapless.guarantee itself (see kafka.h); the error callback logs
     * FATAL errors */
    bool ours = (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "enable.gapless.guarantee")) ||
                strcmp(fac, "FATAL") == 0;
    if (level <= 4 && strcmp(fac, "FAIL") != 0 && !ours)
        cdc_log_warning("librdkafka %s: %s", fac, buf);
    else
        cdc_log_debug("librdkafka %s: %s", fac, buf);
}

/* Whether err is a refusal that needs a person; then fills *ret. */
static int needs_person(const cdc_config *cfg, int err, const char *reason, cdc_error *ret)
{
    if (reason == NULL)
        reason = "";
    /* a handshake cut by the network, or a token provider out of reach, is not a refusal */
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && strstr(reason, "failed: Local:") == NULL &&
        strstr(reason, "OAUTHBEARER token") == NULL) {
        const char *user = cdc_config_kafka_get(cfg, "sasl.username");
        const char *mech = cdc_config_kafka_get(cfg, "sasl.mechanisms");
        if (mech == NULL)
            mech = cdc_config_kafka_get(cfg, "sasl.mechanism");
        cdc_err(ret, CDC_EKAFKAFATAL, "kafka refused pgcdc's credentials: %s", reason);
        /* librdkafka before 2.6.1 repeats the client nonce in SCRAM's final message, which
         * Kafka 4 brokers refuse whatever the password (librdkafka issue 4895) */
        bool old_scram =
            mech != NULL && strncmp(mech, "SCRAM-", 6) == 0 && rd_kafka_version() < 0x020601ff;
        cdc_err_detail(ret, "kafka.sasl.username = \"%s\", kafka.sasl.mechanisms = %s%s%s%s",
                       user ? user : "(not set)", mech ? mech : "GSSAPI (librdkafka's default)",
                       old_scram ? "; this librdkafka (" : "",
                       old_scram ? rd_kafka_version_str() : "",
                       old_scram ? ") is older than 2.6.1, whose SCRAM Kafka 4 brokers refuse "
                                   "even with the right password: with Kafka 4 brokers use "
                                   "librdkafka 2.6.1 or later"
                                 : "");
        cdc_err_hint(ret, "check kafka.sasl.username and kafka.sasl.password (and "
                          "kafka.sasl.mechanisms) against the brokers' users; the checkpoint "
                          "does not pass anything undelivered");
        return 1;
    }
    if (err == RD_KAFKA_RESP_ERR__SSL && strstr(reason, "certificate verify failed")) {
        const char *ca = cdc_config_kafka_get(cfg, "ssl.ca.location");
        cdc_err(ret, CDC_EKAFKAFATAL, "the kafka broker's TLS certificate does not verify: %s",
                reason);
        cdc_err_detail(ret, "kafka.ssl.ca.location = %s%s%s", ca ? "\"" : "",
                       ca ? ca : "(not set: the system's CA certificates)", ca ? "\"" : "");
        cdc_err_hint(ret, "point kafka.ssl.ca.location at the CA that signed the brokers' "
                          "certificates (and check that they name the host in bootstrap.servers)");
        return 1;
    }
    return 0;
}

int64_t cdc_kafka_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cdc_kafka_refusal_note(cdc_kafka_refusals *r, const cdc_config *cfg, int err,
                           const char *reason)
{
    cdc_error why = {0};
    if (!needs_person(cfg, err, reason, &why))
        return 0;
    if (r->first_ms == 0) {
        r->first_ms = cdc_kafka_mono_ms();
        r->why = why;
        cdc_log_warning("%s (pgcdc stops if this persists)", why.msg);
    }
    return 1;
}

void cdc_kafka_refusal_clear(cdc_kafka_refusals *r)
{
    r->first_ms = 0;
}

int cdc_kafka_refusal_persists(const cdc_kafka_refusals *r)
{
    return r->first_ms != 0 && cdc_kafka_mono_ms() - r->first_ms >= CDC_KAFKA_REFUSAL_MS;
}

int cdc_kafka_require_bootstrap(const cdc_config *cfg, cdc_error *err)
{
    if (cdc_config_kafka_get(cfg, "bootstrap.servers") != NULL ||
        cdc_config_kafka_get(cfg, "metadata.broker.list") != NULL)
        return 0;
    cdc_err(err, CDC_ECONFIG, "kafka.bootstrap.servers is not set");
    cdc_err_hint(err, "add \"kafka.bootstrap.servers = host:9092\" to the configuration");
    return CDC_ECONFIG;
}

int cdc_kafka_conf_build(const cdc_config *cfg, cdc_kafka_role role, rd_kafka_conf_t **ret_conf,
                         cdc_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");

    if (role == CDC_KAFKA_PRODUCER) {
        for (size_t i = 0; i < sizeof(producer_defaults) / sizeof(producer_defaults[0]); i++) {
            if (rd_kafka_conf_set(conf, producer_defaults[i][0], producer_defaults[i][1], errstr,
                                  sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                return cdc_err(err, CDC_EINTERNAL, "cannot set kafka default \"%s\": %s",
                               producer_defaults[i][0], errstr);
            }
        }
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const cdc_config_kv *kv = &cfg->kafka[i];
        if (role_skips(role, kv->key))
            continue;
        if (rd_kafka_conf_set(conf, kv->key, kv->value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            cdc_err(err, CDC_ECONFIG, "%s: invalid kafka property \"kafka.%s\": %s", kv->origin,
                    kv->key, errstr);
            cdc_err_hint(err, "kafka.* keys are librdkafka properties, see librdkafka's "
                              "CONFIGURATION.md");
            return CDC_ECONFIG;
        }
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    *ret_conf = conf;
    return 0;
}

int cdc_kafka_conf_check(const cdc_config *cfg, cdc_error *err)
{
    rd_kafka_conf_t *conf = NULL;
    int rc = cdc_kafka_conf_build(cfg, CDC_KAFKA_PRODUCER, &conf, err);
    if (rc == 0)
        rd_kafka_conf_destroy(conf);
    return rc;
}

const char *cdc_kafka_version(void)
{
    return rd_kafka_version_str();
}
