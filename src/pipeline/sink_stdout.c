/* sink_stdout.c - the debugging sink: one NDJSON line per event on stdout */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/buf.h"
#include "pgcdc/pipeline.h"

typedef struct stdout_sink {
    cdc_sink base;
    cdc_buf line;     /* reused line buffer */
    uint64_t pending; /* events written to stdout's buffer, not yet flushed */
    uint64_t seq;     /* transaction of the pending events */
} stdout_sink;

/* Flush stdout and acknowledge what it held. */
static int flush_pending(stdout_sink *s, cdc_error *err)
{
    if (s->pending == 0)
        return 0;
    if (fflush(stdout) != 0)
        return cdc_err(err, CDC_EIO, "cannot write to standard output: %s", strerror(errno));
    for (; s->pending > 0; s->pending--)
        cdc_tracker_ack(s->base.tracker, s->seq);
    return 0;
}

static int so_event(cdc_sink *base, const cdc_event *ev, uint64_t seq, cdc_error *err)
{
    stdout_sink *s = (stdout_sink *)base;
    if (s->pending > 0 && seq != s->seq) {
        int rc = flush_pending(s, err);
        if (rc < 0)
            return rc;
    }
    cdc_buf_reset(&s->line);
    if (cdc_event_to_json_line(ev, &s->line) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    if (fwrite(s->line.data, 1, s->line.len, stdout) != s->line.len)
        return cdc_err(err, CDC_EIO, "cannot write to standard output: %s", strerror(errno));
    cdc_tracker_add(base->tracker, seq);
    s->seq = seq;
    s->pending++;
    return 0;
}

static int so_commit(cdc_sink *base, const cdc_event_txn *txn, uint64_t seq, cdc_error *err)
{
    (void)txn;
    (void)seq;
    return flush_pending((stdout_sink *)base, err);
}

static int so_poll(cdc_sink *base, int timeout_ms, cdc_error *err)
{
    (void)timeout_ms;
    return flush_pending((stdout_sink *)base, err);
}

static bool so_busy(cdc_sink *base)
{
    (void)base;
    return false;
}

static void so_free(cdc_sink *base)
{
    stdout_sink *s = (stdout_sink *)base;
    if (s == NULL)
        return;
    fflush(stdout);
    cdc_buf_free(&s->line);
    free(s);
}

static const cdc_sink_ops stdout_ops = {
    .event = so_event,
    .commit = so_commit,
    .poll = so_poll,
    .busy = so_busy,
    .free = so_free,
};

int cdc_sink_stdout_new(cdc_sink **ret, cdc_error *err)
{
    stdout_sink *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    s->base.ops = &stdout_ops;
    *ret = &s->base;
    return 0;
}
