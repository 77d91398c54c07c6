/* testbroker.c - Kafka test broker for the integration suite, over librdkafka's mock cluster */
/*
 * pgcdc-testbroker starts an in-memory Kafka cluster of N brokers listening
 * on loopback ports (librdkafka's rdkafka_mock.h), prints one line
 *
 *     bootstrap=127.0.0.1:PORT,127.0.0.1:PORT,...
 *
 * to stdout, then answers control commands read from stdin, one per line,
 * with exactly one line each: "ok" (or "ok VALUE") or "error: MESSAGE".
 *
 *     down K | all              broker K stops accepting and drops connections
 *     up K | all                broker K accepts connections again
 *     rtt K | all MS            delay every response of broker K by MS ms
 *     topic NAME PARTITIONS     create a topic
 *     leader NAME PARTITION K   move the partition's leader to broker K (-1: none)
 *     errors APIKEY ERR...      fail the next requests of APIKEY with these codes
 *     clear-errors APIKEY       drop the codes still queued for APIKEY
 *     topic-error NAME ERR      return ERR for NAME in metadata (0 clears)
 *     bootstrap                 answer "ok bootstrap=..."
 *     ping                      answer "ok"
 *     quit                      exit cleanly
 *
 * Broker ids are 1..N. End of stdin keeps the cluster running unless
 * --exit-on-eof is given; SIGTERM and SIGINT exit cleanly.
 *
 * Limits of the mock cluster (librdkafka 2.0.2): data lives in memory, each
 * partition keeps only about its newest 5 MB, aborted transactions are not
 * hidden from read_committed consumers, CreateTopics is not supported (use
 * --topic or the topic command) and auto-created topics always get 4
 * partitions.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define TB_LINE_MAX   4096 /* longest accepted command line */
#define TB_ARGS_MAX   64   /* most words in one command */
#define TB_TOPICS_MAX 256  /* most --topic options */

typedef struct tb_topic {
    const char *name; /* borrowed from argv */
    int partitions;
} tb_topic;

/* Options, with their defaults. */
typedef struct tb_options {
    int brokers;                    /* number of brokers, ids 1..brokers */
    tb_topic topics[TB_TOPICS_MAX]; /* topics created before start */
    int topic_cnt;                  /* used entries in topics */
    const char *port_file;          /* also write the bootstrap line here */
    int exit_on_eof;                /* quit when stdin reaches end of file */
    int debug;                      /* librdkafka debug logging on stderr */
} tb_options;

static volatile sig_atomic_t stop_requested = 0;

static void handle_stop(int signo)
{
    (void)signo;
    stop_requested = 1;
}

/* ---------------------------------------------------------------- helpers */

/* Parse a decimal int in [min, max]; returns 0, or -1 leaving *ret unchanged. */
static int parse_int(const char *s, long min, long max, int *ret)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *ret = (int)v;
    return 0;
}

/* Parse a broker id, or "all" / "-1" for every broker. */
static int parse_broker(const char *s, int brokers, int *ret)
{
    if (strcmp(s, "all") == 0) {
        *ret = -1;
        return 0;
    }
    return parse_int(s, -1, brokers, ret) == 0 && *ret != 0 ? 0 : -1;
}

/* Print one answer line and flush; a closed stdout is ignored. */
static void reply(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void reply_err(rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        reply("ok");
    else
        reply("error: %s (%s)", rd_kafka_err2str(err), rd_kafka_err2name(err));
}

/* Split line in place into at most TB_ARGS_MAX words; returns the count. */
static int split_words(char *line, char **argv)
{
    int argc = 0;
    char *save = NULL;

    for (char *w = strtok_r(line, " \t\r\n", &save); w != NULL && argc < TB_ARGS_MAX;
         w = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = w;
    return argc;
}

/* --------------------------------------------------------------- commands */

/* Execute one command line; returns 1 when the broker must quit, else 0. */
static int run_command(rd_kafka_mock_cluster_t *mc, const tb_options *opt, char *line)
{
    char *argv[TB_ARGS_MAX];
    int argc = split_words(line, argv);
    int id, n, part;

    if (argc == 0)
        return 0; /* blank lines get no answer */

    if (strcmp(argv[0], "quit") == 0 && argc == 1) {
        reply("ok");
        return 1;
    } else if (strcmp(argv[0], "ping") == 0 && argc == 1) {
        reply("ok");
    } else if (strcmp(argv[0], "bootstrap") == 0 && argc == 1) {
        reply("ok bootstrap=%s", rd_kafka_mock_cluster_bootstraps(mc));
    } else if ((strcmp(argv[0], "down") == 0 || strcmp(argv[0], "up") == 0) && argc == 2) {
        if (parse_broker(argv[1], opt->brokers, &id) != 0) {
            reply("error: broker id must be 1..%d or \"all\", not \"%s\"", opt->brokers, argv[1]);
            return 0;
        }
        reply_err(argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
                                    : rd_kafka_mock_broker_set_up(mc, id));
    } else if (strcmp(argv[0], "rtt") == 0 && argc == 3) {
        if (parse_broker(argv[1], opt->brokers, &id) != 0) {
            reply("error: broker id must be 1..%d or \"all\", not \"%s\"", opt->brokers, argv[1]);
            return 0;
        }
        if (parse_int(argv[2], 0, INT_MAX, &n) != 0) {
            reply("error: invalid rtt \"%s\"", argv[2]);
            return 0;
        }
        reply_err(rd_kafka_mock_broker_set_rtt(mc, id, n));
    } else if (strcmp(argv[0], "topic") == 0 && argc == 3) {
        if (parse_int(argv[2], 1, 100000, &n) != 0) {
            reply("error: invalid partition count \"%s\"", argv[2]);
            return 0;
        }
        reply_err(rd_kafka_mock_topic_create(mc, argv[1], n, opt->brokers < 3 ? opt->brokers : 3));
    } else if (strcmp(argv[0], "leader") == 0 && argc == 4) {
        if (parse_int(argv[2], 0, INT_MAX, &part) != 0) {
            reply("error: invalid partition \"%s\"", argv[2]);
            return 0;
        }
        if (parse_int(argv[3], -1, opt->brokers, &id) != 0 || id == 0) {
            reply("error: broker id must be 1..%d or -1, not \"%s\"", opt->brokers, argv[3]);
            return 0;
        }
        reply_err(rd_kafka_mock_partition_set_leader(mc, argv[1], part, id));
    } else if (strcmp(argv[0], "errors") == 0 && argc >= 3) {
        rd_kafka_resp_err_t errs[TB_ARGS_MAX];
        int apikey;

        if (parse_int(argv[1], 0, 32767, &apikey) != 0) {
            reply("error: invalid api key \"%s\"", argv[1]);
            return 0;
        }
        for (int i = 2; i < argc; i++) {
            if (parse_int(argv[i], -200, 1000, &n) != 0) {
                reply("error: invalid error code \"%s\"", argv[i]);
                return 0;
            }
            errs[i - 2] = (rd_kafka_resp_err_t)n;
        }
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)apikey, (size_t)(argc - 2), errs);
        reply("ok");
    } else if (strcmp(argv[0], "clear-errors") == 0 && argc == 2) {
        int apikey;
        if (parse_int(argv[1], 0, 32767, &apikey) != 0) {
            reply("error: invalid api key \"%s\"", argv[1]);
            return 0;
        }
        rd_kafka_mock_clear_request_errors(mc, (int16_t)apikey);
        reply("ok");
    } else if (strcmp(argv[0], "topic-error") == 0 && argc == 3) {
        if (parse_int(argv[2], -200, 1000, &n) != 0) {
            reply("error: invalid error code \"%s\"", argv[2]);
            return 0;
        }
        rd_kafka_mock_topic_set_error(mc, argv[1], (rd_kafka_resp_err_t)n);
        reply("ok");
    } else {
        reply("error: unknown command or wrong number of arguments: \"%s\"", argv[0]);
    }
    return 0;
}

/* ------------------------------------------------------------------- loop */

/*
 * Read commands from stdin until quit, a stop signal, or (with exit_on_eof)
 * end of file. Returns 0 on a clean stop, -1 on a read error.
 */
static int command_loop(rd_kafka_mock_cluster_t *mc, const tb_options *opt)
{
    char buf[TB_LINE_MAX];
    size_t len = 0;
    int stdin_open = 1;

    while (!stop_requested) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&pfd, stdin_open ? 1 : 0, 200);
        ssize_t got;

        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "pgcdc-testbroker: poll failed: %s\n", strerror(errno));
            return -1;
        }
        if (r == 0 || !stdin_open)
            continue;

        got = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "pgcdc-testbroker: could not read stdin: %s\n", strerror(errno));
            return -1;
        }
        if (got == 0) {
            if (len > 0) { /* a last line without newline */
                buf[len] = '\0';
                len = 0;
                if (run_command(mc, opt, buf))
                    return 0;
            }
            if (opt->exit_on_eof)
                return 0;
            stdin_open = 0;
            continue;
        }
        len += (size_t)got;

        for (;;) {
            char *nl = memchr(buf, '\n', len);
            size_t linelen;

            if (nl == NULL)
                break;
            *nl = '\0';
            linelen = (size_t)(nl - buf) + 1;
            if (run_command(mc, opt, buf))
                return 0;
            memmove(buf, buf + linelen, len - linelen);
            len -= linelen;
        }
        if (len == sizeof(buf)) {
            reply("error: command line longer than %d bytes", TB_LINE_MAX - 1);
            len = 0;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------- main */

static void usage(FILE *out)
{
    fprintf(out, "usage: pgcdc-testbroker [options]\n"
                 "  --brokers N              number of brokers, ids 1..N (default 1)\n"
                 "  --topic NAME:PARTITIONS  create a topic before start (repeatable)\n"
                 "  --port-file PATH         also write the bootstrap line to PATH\n"
                 "  --exit-on-eof            exit when stdin is closed (default: keep running)\n"
                 "  --debug                  librdkafka debug log on stderr\n"
                 "Auto-created topics get 4 partitions (fixed by librdkafka's mock cluster).\n");
}

/* Parse the command line into opt; exits on error. */
static void parse_args(int argc, char **argv, tb_options *opt)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--exit-on-eof") == 0) {
            opt->exit_on_eof = 1;
        } else if (strcmp(a, "--debug") == 0) {
            opt->debug = 1;
        } else if (strcmp(a, "--brokers") == 0 && val != NULL) {
            if (parse_int(val, 1, 64, &opt->brokers) != 0) {
                fprintf(stderr, "pgcdc-testbroker: invalid --brokers \"%s\"\n", val);
                exit(2);
            }
            i++;
        } else if (strcmp(a, "--port-file") == 0 && val != NULL) {
            opt->port_file = val;
            i++;
        } else if (strcmp(a, "--topic") == 0 && val != NULL) {
            char *colon = strrchr(argv[i + 1], ':');
            tb_topic *t = &opt->topics[opt->topic_cnt];

            if (opt->topic_cnt == TB_TOPICS_MAX) {
                fprintf(stderr, "pgcdc-testbroker: too many --topic options\n");
                exit(2);
            }
            if (colon == NULL || colon == argv[i + 1] ||
                parse_int(colon + 1, 1, 100000, &t->partitions) != 0) {
                fprintf(stderr, "pgcdc-testbroker: --topic wants NAME:PARTITIONS, not \"%s\"\n",
                        val);
                exit(2);
            }
            *colon = '\0';
            t->name = argv[i + 1];
            opt->topic_cnt++;
            i++;
        } else {
            fprintf(stderr, "pgcdc-testbroker: unknown or incomplete option \"%s\"\n", a);
            usage(stderr);
            exit(2);
        }
    }
}

/* Write "bootstrap=..." plus newline to path through a temp file and rename. */
static int write_port_file(const char *path, const char *bootstraps)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "bootstrap=%s\n", bootstraps);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tb_options opt = {.brokers = 1};
    struct sigaction sa;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    char errstr[512];
    int port_file_written = 0;
    int status = 1;

    parse_args(argc, argv, &opt);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handle_stop; /* no SA_RESTART: poll() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The mock cluster lives on a client instance that never connects anywhere. */
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "client.id", "pgcdc-testbroker", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        /* hide the notice that this client has no bootstrap.servers */
        rd_kafka_conf_set(conf, "log_level", opt.debug ? "7" : "4", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        (opt.debug && rd_kafka_conf_set(conf, "debug", "mock,broker", errstr, sizeof(errstr)) !=
                          RD_KAFKA_CONF_OK)) {
        fprintf(stderr, "pgcdc-testbroker: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    /* rd_kafka_new() takes ownership of conf on success only. */
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "pgcdc-testbroker: could not create client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    mc = rd_kafka_mock_cluster_new(rk, opt.brokers);
    if (mc == NULL) {
        fprintf(stderr, "pgcdc-testbroker: could not create mock cluster\n");
        goto error;
    }

    for (int i = 0; i < opt.topic_cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            mc, opt.topics[i].name, opt.topics[i].partitions, opt.brokers < 3 ? opt.brokers : 3);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "pgcdc-testbroker: could not create topic \"%s\": %s\n",
                    opt.topics[i].name, rd_kafka_err2str(err));
            goto error;
        }
    }

    if (opt.port_file != NULL &&
        write_port_file(opt.port_file, rd_kafka_mock_cluster_bootstraps(mc)) != 0) {
        fprintf(stderr, "pgcdc-testbroker: could not write port file \"%s\": %s\n", opt.port_file,
                strerror(errno));
        goto error;
    }
    port_file_written = opt.port_file != NULL;

    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    if (command_loop(mc, &opt) == 0)
        status = 0;

error:
    if (mc != NULL)
        rd_kafka_mock_cluster_destroy(mc);
    if (port_file_written)
        unlink(opt.port_file);
    rd_kafka_destroy(rk);
    return status;
}
