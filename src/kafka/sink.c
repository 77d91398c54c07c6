/* sink.c - the Kafka sink (routing, encoding, producing): placeholder until the encoders land */
#include "pgcdc/pipeline.h"

int cdc_sink_kafka_new(const cdc_config *cfg, cdc_sink **ret, cdc_error *err)
{
    (void)cfg;
    (void)ret;
    cdc_err(err, CDC_ENOTIMPL, "the kafka sink is not implemented yet");
    cdc_err_hint(err, "use --sink stdout");
    return CDC_ENOTIMPL;
}
