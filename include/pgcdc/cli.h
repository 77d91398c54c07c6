/* cli.h - the command line: subcommand dispatch and shared option parsing */
#ifndef PGCDC_CLI_H
#define PGCDC_CLI_H

/* Run pgcdc with the given arguments; returns the process exit status. */
int cdc_cli_main(int argc, char **argv);

#endif
