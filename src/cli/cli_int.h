/* cli_int.h - parsed command line shared by the subcommand implementations */
#ifndef PGCDC_CLI_INT_H
#define PGCDC_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "pgcdc/config.h"
#include "pgcdc/error.h"
#include "pgcdc/lsn.h"

/* Option bits: which options a subcommand accepts. */
enum {
    OPT_CONFIG = 1u << 0,     /* -c FILE, -o key=value */
    OPT_DRY_RUN = 1u << 1,    /* --dry-run */
    OPT_YES = 1u << 2,        /* --yes */
    OPT_JSON = 1u << 3,       /* --json */
    OPT_SINK = 1u << 4,       /* --sink kafka|stdout */
    OPT_ENDPOS = 1u << 5,     /* --endpos LSN */
    OPT_TOPIC = 1u << 6,      /* --topic T (repeatable) */
    OPT_FROM_BEGIN = 1u << 7, /* --from-beginning */
    OPT_MAX = 1u << 8,        /* --max N */
    OPT_FOLLOW = 1u << 9,     /* --follow */
    OPT_LIST = 1u << 10,      /* --list */
    OPT_SHOW = 1u << 11,      /* --show */
    OPT_TABLES = 1u << 12,    /* --tables T1,T2 */
};

typedef enum cdc_sink_kind { CDC_SINK_KAFKA = 0, CDC_SINK_STDOUT = 1 } cdc_sink_kind;

typedef struct cdc_cli_args {
    const char *command;     /* subcommand name */
    const char *config_path; /* -c, or NULL */
    const char **overrides;  /* -o values, in order */
    size_t n_overrides;
    bool dry_run;        /* setup --dry-run */
    bool yes;            /* teardown --yes */
    bool json;           /* status --json */
    cdc_sink_kind sink;  /* start/resume --sink */
    bool has_endpos;     /* --endpos given */
    cdc_lsn endpos;      /* --endpos value */
    const char **topics; /* tail --topic values */
    size_t n_topics;
    bool from_beginning; /* tail --from-beginning */
    long long max;       /* tail --max, -1 = unlimited */
    bool follow;         /* tail --follow */
    bool list;           /* config --list */
    bool show;           /* config --show */
    const char *tables;  /* snapshot --tables, or NULL */
} cdc_cli_args;

/*
 * A subcommand body. cfg is loaded and checked. Returns 0 or a CDC_E* code
 * with err filled; the dispatcher prints the error and picks the exit status.
 */
typedef int (*cdc_cli_run_fn)(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);

/* Subcommand bodies (NULL where a later issue brings the implementation). */
int cdc_cmd_config(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);
int cdc_cmd_setup(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);
int cdc_cmd_status(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);
int cdc_cmd_teardown(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);
int cdc_cmd_start(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);
int cdc_cmd_resume(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);
int cdc_cmd_tail(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);
int cdc_cmd_snapshot(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err);

#endif
