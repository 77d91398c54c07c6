/* cmd_config.c - pgcdc config: check a configuration, list keys, show effective values */
#include <stdio.h>

#include "cli_int.h"

int cdc_cmd_config(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    (void)err;
    if (args->list) {
        cdc_config_print_keys(stdout);
        return 0;
    }
    if (args->show) {
        cdc_config_print(cfg, stdout);
        return 0;
    }
    printf("configuration ok%s%s\n", args->config_path ? ": " : "",
           args->config_path ? args->config_path : "");
    return 0;
}
