/* cmd_start.c - pgcdc start and pgcdc resume: run the pipeline into the chosen sink */
#include <string.h>

#include "cli_int.h"
#include "pgcdc/pipeline.h"

static int run(const cdc_cli_args *args, const cdc_config *cfg, bool require_checkpoint,
               cdc_error *err)
{
    cdc_sink *sink = NULL;
    int rc;
    if (args->sink == CDC_SINK_STDOUT) {
        rc = cdc_sink_stdout_new(&sink, err);
    } else {
        rc = cdc_sink_kafka_new(cfg, &sink, err);
    }
    if (rc < 0)
        return rc;
    cdc_run_opts o = {
        .cfg = cfg,
        .sink = sink,
        .require_checkpoint = require_checkpoint,
        .has_endpos = args->has_endpos,
        .endpos = args->endpos,
    };
    rc = cdc_run(&o, err);
    sink->ops->free(sink);
    return rc;
}

int cdc_cmd_start(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    return run(args, cfg, false, err);
}

int cdc_cmd_resume(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    return run(args, cfg, true, err);
}
