/* kafka.h - the Kafka layer as the rest of pgcdc sees it (no librdkafka types) */
#ifndef PGCDC_KAFKA_H
#define PGCDC_KAFKA_H

#include "pgcdc/config.h"
#include "pgcdc/error.h"

/* Producer defaults pgcdc applies unless the configuration sets them. */
#define CDC_KAFKA_DEFAULTS_INIT                                                                    \
    {                                                                                              \
        {"enable.idempotence", "true"}, {"acks", "all"}, {"partitioner", "murmur2_random"},        \
    }

/*
 * Check every kafka.* property by handing it to librdkafka's
 * rd_kafka_conf_set(), so a wrong property fails at load time. The error
 * names where the property was set (file and line, or -o) and librdkafka's
 * reason. Returns 0, CDC_ECONFIG or CDC_ENOMEM.
 */
int cdc_kafka_conf_check(const cdc_config *cfg, cdc_error *err);

/* librdkafka's version string, e.g. "2.0.2". Borrowed, static. */
const char *cdc_kafka_version(void);

#endif
