/* kafka_int.h - librdkafka-level helpers shared inside src/kafka */
#ifndef PGCDC_KAFKA_INT_H
#define PGCDC_KAFKA_INT_H

#include <librdkafka/rdkafka.h>

#include "pgcdc/kafka.h"

typedef enum cdc_kafka_role { CDC_KAFKA_PRODUCER, CDC_KAFKA_CONSUMER } cdc_kafka_role;

/*
 * Build a librdkafka configuration from cfg: pgcdc's defaults for the role,
 * then every kafka.* property in order. Returns a new conf in *ret_conf
 * (caller owns it until rd_kafka_new() takes ownership), or an error with
 * *ret_conf unchanged.
 */
int cdc_kafka_conf_build(const cdc_config *cfg, cdc_kafka_role role, rd_kafka_conf_t **ret_conf,
                         cdc_error *err);

#endif
