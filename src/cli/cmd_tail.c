/* cmd_tail.c - pgcdc tail: consume pgcdc topics and print one NDJSON line per message */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "pgcdc/buf.h"
#include "pgcdc/encode.h"
#include "pgcdc/kafka.h"
#include "pgcdc/stream.h"

static volatile sig_atomic_t tail_stop;

static void on_signal(int sig)
{
    (void)sig;
    tail_stop = 1;
}

/* Escape a topic prefix for a librdkafka regex subscription ("^prefix\\..*"). */
static char *prefix_regex(const char *prefix)
{
    size_t n = strlen(prefix);
    char *re = malloc(n * 2 + 16);
    if (re == NULL)
        return NULL;
    size_t o = 0;
    re[o++] = '^';
    for (size_t i = 0; i < n; i++) {
        if (strchr(".^$*+?()[]{}|\\", prefix[i]))
            re[o++] = '\\';
        re[o++] = prefix[i];
    }
    memcpy(re + o, "\\..*", 5);
    return re;
}

int cdc_cmd_tail(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    const char *const *topics = args->topics;
    size_t ntopics = args->n_topics;
    char *re = NULL;
    const char *one[1];
    if (ntopics == 0) {
        if ((re = prefix_regex(cfg->topic_prefix)) == NULL)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        one[0] = re;
        topics = one;
        ntopics = 1;
    }
    cdc_consumer *c = NULL;
    int rc = cdc_consumer_new(cfg, topics, ntopics, args->from_beginning, &c, err);
    free(re);
    if (rc < 0)
        return rc;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cdc_buf line = CDC_BUF_INIT;
    long long printed = 0;
    int64_t idle_since = cdc_now_ms();
    /* Without --follow: stop at the end of every partition, or after a quiet spell
     * when no partition was ever assigned (no such topic yet). */
    const int64_t quiet_ms = 10000;
    while (!tail_stop && (args->max < 0 || printed < args->max)) {
        cdc_kafka_msg m;
        rc = cdc_consumer_next(c, 200, &m, err);
        if (rc < 0)
            break;
        if (rc == 0) {
            rc = 0;
            if (!args->follow && (cdc_consumer_at_end(c) || cdc_now_ms() - idle_since > quiet_ms))
                break;
            continue;
        }
        idle_since = cdc_now_ms();
        cdc_buf_reset(&line);
        if ((rc = cdc_tail_format(cfg->format, &m, &line, err)) < 0)
            break;
        if (fwrite(line.data, 1, line.len, stdout) != line.len || fflush(stdout) != 0) {
            rc = errno == EPIPE ? 0 : cdc_err(err, CDC_EIO, "cannot write to standard output");
            break;
        }
        printed++;
    }
    cdc_buf_free(&line);
    cdc_consumer_free(c);
    return rc < 0 ? rc : 0;
}
