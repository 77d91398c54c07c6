/* main.c - pgcdc entry point: dispatch to the subcommand */
#include "pgcdc/cli.h"

int main(int argc, char **argv)
{
    return cdc_cli_main(argc, argv);
}
