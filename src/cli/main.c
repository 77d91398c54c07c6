/* cli/main.c - placeholder dispatch, replaced by the real CLI */
#include "pgcdc/cli.h"

int cdc_cli_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
