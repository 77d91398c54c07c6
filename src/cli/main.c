/* cli/main.c - command line parsing, configuration loading and subcommand dispatch */
#include "pgcdc/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "pgcdc/kafka.h"
#include "pgcdc/log.h"
#include "pgcdc/version.h"
#include "pgcdc_build.h"

typedef struct cdc_cli_cmd {
    const char *name;
    unsigned opts;       /* OPT_* accepted */
    cdc_cli_run_fn run;  /* NULL: not implemented yet */
    const char *summary; /* one line for pgcdc --help */
    const char *help;    /* option lines for pgcdc COMMAND --help */
} cdc_cli_cmd;

#define CONFIG_HELP                                                                                \
    "  -c, --config FILE      configuration file (key = value lines)\n"                            \
    "  -o, --option KEY=VALUE override one configuration key (repeatable)\n"

static const cdc_cli_cmd commands[] = {
    {"setup", OPT_CONFIG | OPT_DRY_RUN, cdc_cmd_setup,
     "create the publication and the replication slot, check server settings",
     CONFIG_HELP "      --dry-run          print the SQL that would run, change nothing\n"},
    {"start", OPT_CONFIG | OPT_SINK | OPT_ENDPOS, cdc_cmd_start,
     "stream changes; resume from the checkpoint when there is one",
     CONFIG_HELP "      --sink kafka|stdout where events go (default kafka; stdout prints NDJSON)\n"
                 "      --endpos LSN       stop once everything up to LSN is handled, exit 0\n"},
    {"resume", OPT_CONFIG | OPT_SINK | OPT_ENDPOS, cdc_cmd_resume,
     "like start, but refuse to run without a checkpoint",
     CONFIG_HELP "      --sink kafka|stdout where events go (default kafka)\n"
                 "      --endpos LSN       stop once everything up to LSN is handled, exit 0\n"},
    {"status", OPT_CONFIG | OPT_JSON, cdc_cmd_status,
     "show slot, lag, checkpoint, publication and replica identity problems",
     CONFIG_HELP "      --json             print one JSON object instead of text\n"},
    {"teardown", OPT_CONFIG | OPT_YES, cdc_cmd_teardown,
     "drop the replication slot and the publication",
     CONFIG_HELP "      --yes              do not ask for confirmation\n"},
    {"tail", OPT_CONFIG | OPT_TOPIC | OPT_FROM_BEGIN | OPT_MAX | OPT_FOLLOW, cdc_cmd_tail,
     "consume pgcdc topics and print one NDJSON line per message",
     CONFIG_HELP "      --topic TOPIC      topic to read (repeatable; default: all <prefix>.*)\n"
                 "      --from-beginning   start at the oldest message, not the newest\n"
                 "      --max N            stop after N messages\n"
                 "      --follow           keep waiting for new messages (default: stop at the\n"
                 "                         end of every partition, or after 10 s without one)\n"},
    {"snapshot", OPT_CONFIG | OPT_TABLES, cdc_cmd_snapshot,
     "ask pgcdc to read published tables again, while it streams",
     CONFIG_HELP "      --tables T1,T2     the tables (schema.table, or table when unique)\n"},
    {"config", OPT_CONFIG | OPT_LIST | OPT_SHOW, cdc_cmd_config,
     "check a configuration, list every key, or show the effective values",
     CONFIG_HELP "      --list             list every key with its default and description\n"
                 "      --show             print the effective configuration (secrets masked)\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *out)
{
    fprintf(out,
            "pgcdc %s - PostgreSQL change data capture to Kafka\n\n"
            "usage: pgcdc COMMAND [OPTIONS]\n\ncommands:\n",
            PGCDC_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-9s %s\n", "version", "print the versions of pgcdc and its libraries");
    fprintf(out, "  %-9s %s\n", "help", "show this help, or a command's: pgcdc help COMMAND");
    fprintf(out, "\nexit status: 0 ok, 1 runtime failure, 2 usage or configuration error,\n"
                 "3 not implemented yet, 4 refused because state does not match (checkpoint,\n"
                 "slot), 5 status found a problem\n"
                 "\nrun \"pgcdc COMMAND --help\" for a command's options\n");
}

static void print_command_help(const cdc_cli_cmd *c, FILE *out)
{
    fprintf(out, "usage: pgcdc %s [OPTIONS]\n\n%s\n\noptions:\n%s", c->name, c->summary, c->help);
    fprintf(out, "  -h, --help             show this help\n");
}

static int print_version(void)
{
    printf("pgcdc %s\n", PGCDC_VERSION);
    printf("libpq %s\n", cdc_version_libpq());
    printf("librdkafka %s\n", cdc_kafka_version());
    printf("jansson %s\n", cdc_version_jansson());
    printf("protobuf-c %s\n", cdc_version_protobuf_c());
    return 0;
}

static const cdc_cli_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Append to a growing array of borrowed strings. */
static int push(const char ***arr, size_t *n, const char *s)
{
    const char **p = realloc(*arr, sizeof(*p) * (*n + 1));
    if (p == NULL)
        return -1;
    p[(*n)++] = s;
    *arr = p;
    return 0;
}

enum {
    LO_DRY_RUN = 256,
    LO_YES,
    LO_JSON,
    LO_SINK,
    LO_ENDPOS,
    LO_TOPIC,
    LO_FROM_BEGIN,
    LO_MAX,
    LO_FOLLOW,
    LO_LIST,
    LO_SHOW,
    LO_TABLES,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"option", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {"dry-run", no_argument, NULL, LO_DRY_RUN},
    {"yes", no_argument, NULL, LO_YES},
    {"json", no_argument, NULL, LO_JSON},
    {"sink", required_argument, NULL, LO_SINK},
    {"endpos", required_argument, NULL, LO_ENDPOS},
    {"topic", required_argument, NULL, LO_TOPIC},
    {"from-beginning", no_argument, NULL, LO_FROM_BEGIN},
    {"max", required_argument, NULL, LO_MAX},
    {"follow", no_argument, NULL, LO_FOLLOW},
    {"list", no_argument, NULL, LO_LIST},
    {"show", no_argument, NULL, LO_SHOW},
    {"tables", required_argument, NULL, LO_TABLES},
    {NULL, 0, NULL, 0},
};

/* The OPT_* bit of a getopt result, for "option not accepted by command" checks. */
static unsigned opt_bit(int c)
{
    switch (c) {
    case 'c':
    case 'o': return OPT_CONFIG;
    case LO_DRY_RUN: return OPT_DRY_RUN;
    case LO_YES: return OPT_YES;
    case LO_JSON: return OPT_JSON;
    case LO_SINK: return OPT_SINK;
    case LO_ENDPOS: return OPT_ENDPOS;
    case LO_TOPIC: return OPT_TOPIC;
    case LO_FROM_BEGIN: return OPT_FROM_BEGIN;
    case LO_MAX: return OPT_MAX;
    case LO_FOLLOW: return OPT_FOLLOW;
    case LO_LIST: return OPT_LIST;
    case LO_SHOW: return OPT_SHOW;
    case LO_TABLES: return OPT_TABLES;
    default: return 0;
    }
}

/* Returns 0, 1 when help was printed, or CDC_EUSAGE with err set. */
static int parse_args(const cdc_cli_cmd *cmd, int argc, char **argv, cdc_cli_args *a,
                      cdc_error *err)
{
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:o:h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            print_command_help(cmd, stdout);
            return 1;
        }
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            if (c == ':')
                return cdc_err(err, CDC_EUSAGE, "pgcdc %s: option \"%s\" needs a value", cmd->name,
                               bad);
            return cdc_err(err, CDC_EUSAGE, "pgcdc %s: unknown option \"%s\"", cmd->name, bad);
        }
        if ((opt_bit(c) & cmd->opts) == 0)
            return cdc_err(err, CDC_EUSAGE,
                           "pgcdc %s: option \"%s\" does not apply to this command", cmd->name,
                           argv[optind - 1]);
        switch (c) {
        case 'c': a->config_path = optarg; break;
        case 'o':
            if (push(&a->overrides, &a->n_overrides, optarg) < 0)
                return cdc_err(err, CDC_ENOMEM, "out of memory");
            break;
        case LO_DRY_RUN: a->dry_run = true; break;
        case LO_YES: a->yes = true; break;
        case LO_JSON: a->json = true; break;
        case LO_SINK:
            if (strcmp(optarg, "kafka") == 0)
                a->sink = CDC_SINK_KAFKA;
            else if (strcmp(optarg, "stdout") == 0)
                a->sink = CDC_SINK_STDOUT;
            else
                return cdc_err(err, CDC_EUSAGE,
                               "pgcdc %s: invalid --sink \"%s\": use kafka or stdout", cmd->name,
                               optarg);
            break;
        case LO_ENDPOS:
            if (cdc_lsn_parse(optarg, &a->endpos) < 0)
                return cdc_err(
                    err, CDC_EUSAGE,
                    "pgcdc %s: invalid --endpos \"%s\": expected an LSN such as 0/16B3748",
                    cmd->name, optarg);
            a->has_endpos = true;
            break;
        case LO_TOPIC:
            if (push(&a->topics, &a->n_topics, optarg) < 0)
                return cdc_err(err, CDC_ENOMEM, "out of memory");
            break;
        case LO_FROM_BEGIN: a->from_beginning = true; break;
        case LO_MAX: {
            char *end;
            a->max = strtoll(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || a->max < 0)
                return cdc_err(err, CDC_EUSAGE,
                               "pgcdc %s: invalid --max \"%s\": expected a non-negative integer",
                               cmd->name, optarg);
            break;
        }
        case LO_FOLLOW: a->follow = true; break;
        case LO_LIST: a->list = true; break;
        case LO_SHOW: a->show = true; break;
        case LO_TABLES: a->tables = optarg; break;
        }
    }
    if (optind < argc)
        return cdc_err(err, CDC_EUSAGE, "pgcdc %s: unexpected argument \"%s\"", cmd->name,
                       argv[optind]);
    return 0;
}

/*
 * Mask the secret in a -o KEY=VALUE argument, in place, once it is applied: argv is what
 * /proc/PID/cmdline and ps show to every local user. A secret key's value becomes stars;
 * a conninfo keeps its shape with the password masked (padded to its length).
 */
static void scrub_override(char *kv)
{
    char *eq = strchr(kv, '=');
    if (eq == NULL)
        return;
    *eq = '\0';
    bool secret = cdc_config_is_secret_key(kv), dsn = strcmp(kv, "source.dsn") == 0;
    *eq = '=';
    char *v = eq + 1;
    size_t n = strlen(v);
    if (secret) {
        memset(v, '*', n);
    } else if (dsn) {
        char *shown = cdc_config_redact_dsn(v);
        if (shown != NULL && strcmp(shown, v) != 0) {
            size_t m = strlen(shown);
            if (m <= n) {
                memcpy(v, shown, m);
                memset(v + m, ' ', n - m);
            } else {
                memset(v, '*', n);
            }
        }
        free(shown);
    }
}

/* Load defaults, the file, the overrides, then check the kafka.* keys. */
static int load_config(const cdc_cli_args *a, cdc_config *cfg, cdc_error *err)
{
    int rc = cdc_config_init(cfg);
    if (rc < 0)
        return cdc_err(err, rc, "cannot initialise configuration: %s", cdc_strerror(rc));
    if (a->config_path && (rc = cdc_config_load_file(cfg, a->config_path, err)) < 0)
        return rc;
    for (size_t i = 0; i < a->n_overrides; i++)
        if ((rc = cdc_config_apply_override(cfg, a->overrides[i], err)) < 0)
            return rc;
    for (size_t i = 0; i < a->n_overrides; i++)
        scrub_override((char *)a->overrides[i]);
    if ((rc = cdc_config_check(cfg, err)) < 0)
        return rc;
    if ((rc = cdc_kafka_conf_check(cfg, err)) < 0)
        return rc;
    cdc_log_set_level((cdc_log_level)cfg->log_level);
    cdc_log_set_format((cdc_log_format)cfg->log_format);
    return 0;
}

static void report(const cdc_error *err)
{
    fprintf(stderr, "pgcdc: error: %s\n", err->msg);
    if (err->detail[0])
        fprintf(stderr, "detail: %s\n", err->detail);
    if (err->hint[0])
        fprintf(stderr, "hint: %s\n", err->hint);
}

int cdc_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        if (argc > 2) {
            const cdc_cli_cmd *c = find_command(argv[2]);
            if (c == NULL) {
                fprintf(stderr, "pgcdc: error: unknown command \"%s\"\n", argv[2]);
                return 2;
            }
            print_command_help(c, stdout);
            return 0;
        }
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0)
        return print_version();

    const cdc_cli_cmd *cmd = find_command(name);
    if (cmd == NULL) {
        fprintf(stderr, "pgcdc: error: unknown command \"%s\"\n", name);
        fprintf(stderr, "hint: run \"pgcdc --help\" for the list of commands\n");
        return 2;
    }

    cdc_cli_args args = {.command = cmd->name, .max = -1};
    cdc_config cfg = {0};
    cdc_error err = {0};
    int rc = parse_args(cmd, argc - 1, argv + 1, &args, &err);
    if (rc == 1) {
        rc = 0;
        goto out;
    }
    if (rc == 0 && !(cmd->run == cdc_cmd_config && args.list))
        rc = load_config(&args, &cfg, &err);
    if (rc == 0) {
        if (cmd->run == NULL) {
            rc = cdc_err(&err, CDC_ENOTIMPL, "pgcdc %s is not implemented yet", cmd->name);
            cdc_err_detail(&err, "this build parses the command and its configuration only");
        } else {
            rc = cmd->run(&args, &cfg, &err);
        }
    }
    if (rc < 0) {
        report(&err);
        rc = cdc_error_exit_status(err.code ? err.code : rc);
    } else {
        rc = 0;
    }
out:
    cdc_config_free(&cfg);
    free(args.overrides);
    free(args.topics);
    return rc;
}
