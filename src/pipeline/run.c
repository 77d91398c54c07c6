/* run.c - the main loop: replication stream -> decoder -> sink; watermark -> checkpoint -> flush */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgcdc/catalog.h"
#include "pgcdc/checkpoint.h"
#include "pgcdc/crashpoint.h"
#include "pgcdc/log.h"
#include "pgcdc/pgoutput.h"
#include "pgcdc/pipeline.h"
#include "pgcdc/snapshot.h"
#include "pgcdc/stream.h"

#include "keys.h"

static volatile int stop_requested; /* int is sig_atomic_t on every target we build for */

void cdc_run_request_stop(void)
{
    stop_requested = 1;
}

static volatile sig_atomic_t stop_signal; /* the signal that asked for the stop, 0 if none */

/* SIGINT, SIGTERM and SIGHUP all stop pgcdc cleanly: drain, checkpoint, exit 0. SIGHUP too,
 * because pgcdc reads its configuration only at start and logs to stderr (no file to
 * reopen), and a closed terminal should not kill it without a checkpoint. */
static void on_signal(int sig)
{
    stop_signal = sig;
    stop_requested = 1;
}

/* State shared by the loop and the decoder callbacks. */
typedef struct run_state {
    const cdc_run_opts *opts;
    cdc_sink *sink;
    cdc_tracker *tracker;
    cdc_stream *stream;
    cdc_pgo_decoder *dec;
    cdc_checkpoint ckpt;      /* identity fields filled at start; lsn = durable */
    cdc_lsn durable;          /* last checkpoint written (what the server may forget) */
    cdc_lsn received;         /* highest WAL end seen */
    uint64_t cur_seq;         /* tracker transaction of the open transaction, 0 if none */
    int64_t last_ckpt_ms;     /* when the checkpoint was last written */
    bool endpos_reached;      /* nothing more to read */
    bool reply_pending;       /* the server asked for a status update */
    uint64_t events;          /* events handed to the sink */
    int64_t connected_ms;     /* when the current session started streaming, 0 before */
    cdc_error cb_err;         /* error raised inside a decoder callback */
    cdc_keymap keymap;        /* primary keys of FULL tables, defaults for key-only images */
    cdc_schemas schemas;      /* shape of each table seen, to log changes once */
    int64_t unclean_until_ms; /* an earlier run may have been sending until then; 0: none */
    cdc_snapshot *snap;       /* the snapshot being taken, NULL when none is wanted */
    uint64_t snap_seq;        /* tracker transaction of the chunk being handed over, 0: none */
} run_state;

/* snapshot.new.tables looks every status.interval; never under no_data. */
static int64_t new_tables_every(const cdc_config *cfg)
{
    return cfg->snapshot_new_tables && cfg->snapshot_mode != CDC_SNAPSHOT_NO_DATA
               ? cfg->status_interval
               : 0;
}

/* The snapshot state for progress, with the configuration's settings. */
static int new_snapshot(const cdc_config *cfg, const char *progress, cdc_snapshot **ret,
                        cdc_error *err)
{
    int rc = cdc_snapshot_new(progress, (size_t)cfg->snapshot_chunk_size, cfg->slot_name,
                              new_tables_every(cfg), ret, err);
    if (rc < 0)
        return rc;
    cdc_snapshot_set_log_every(*ret, cfg->status_interval);
    cdc_snapshot_set_inflight(*ret, (size_t)cfg->snapshot_max_inflight_chunks);
    cdc_snapshot_set_threads(*ret, (size_t)cfg->snapshot_max_threads);
    if (cfg->signal_data_collection[0] != '\0' &&
        (rc = cdc_snapshot_set_signal_table(*ret, cfg->signal_data_collection, err)) < 0) {
        cdc_snapshot_free(*ret);
        *ret = NULL;
        return rc;
    }
    return 0;
}

/* While a snapshot runs, endpos waits: the snapshot finishes first (its rows sit at
 * watermarks beyond endpos), then streaming stops at the next transaction past it. */
static bool endpos_applies(const run_state *st)
{
    return st->opts->has_endpos && !cdc_snapshot_active(st->snap);
}

/* ------------------------------------------------------------------------
 * Decoder callbacks
 * ------------------------------------------------------------------------ */

static int on_begin(const cdc_event_txn *txn, void *arg)
{
    run_state *st = arg;
    st->cur_seq = cdc_tracker_open(st->tracker);
    if (st->cur_seq == 0)
        return cdc_err(&st->cb_err, CDC_ENOMEM, "out of memory");
    cdc_tracker_set_commit_time(st->tracker, st->cur_seq, txn->commit_ts_us);
    cdc_snapshot_txn(st->snap, txn->xid, txn->commit_lsn);
    return 0;
}

static int on_event(const cdc_event *ev, void *arg)
{
    run_state *st = arg;
    if (ev->op == CDC_EVENT_MESSAGE && cdc_snapshot_mark(st->snap, ev))
        return 0; /* a snapshot watermark: pgcdc's own, never published */
    uint64_t seq = st->cur_seq;
    bool standalone = seq == 0; /* a non-transactional message between transactions */
    if (standalone && (seq = cdc_tracker_open(st->tracker)) == 0)
        return cdc_err(&st->cb_err, CDC_ENOMEM, "out of memory");
    cdc_event typed, rekeyed;
    if ((ev->replident == CDC_EVENT_REPLIDENT_FULL || ev->nkeys == 0) &&
        ev->op != CDC_EVENT_MESSAGE && ev->op != CDC_EVENT_TRUNCATE) {
        /* pgoutput marks every column of a FULL table as key, and none of a table without a
         * replica identity key: key by the primary key, else a unique index, as Debezium */
        int krc = cdc_keymap_apply(&st->keymap, ev, &rekeyed, &st->cb_err);
        if (krc < 0)
            return krc;
        ev = &rekeyed;
    }
    if (ev->op != CDC_EVENT_MESSAGE) {
        int src = cdc_snapshot_change(st->snap, ev, &st->cb_err);
        if (src < 0)
            return src;
    }
    /* after the snapshot's look at it, which compares the columns with those it read */
    if (ev->op != CDC_EVENT_MESSAGE && cdc_keymap_may_have_domains(ev)) {
        /* a domain over numeric(10,2) or timestamp(3): pgoutput does not send its typmod */
        int drc = cdc_keymap_domains(&st->keymap, ev, &typed, &st->cb_err);
        if (drc < 0)
            return drc;
        ev = &typed;
    }
    cdc_event filled;
    if (ev->before_image == CDC_EVENT_IMAGE_KEY && ev->before != NULL &&
        st->opts->cfg->format == CDC_FORMAT_JSON) {
        /* Debezium's JSON before image of a delete (or key change) has every column: what
         * the key-only image lacks is filled as Debezium fills it (its default, or zero) */
        int frc = cdc_keymap_fill(&st->keymap, ev, &filled, &st->cb_err);
        if (frc < 0)
            return frc;
        ev = &filled;
    }
    int rc = st->sink->ops->event(st->sink, ev, seq, &st->cb_err);
    if (rc < 0)
        return rc;
    st->events++;
    if (standalone) {
        /* Its own LSN: a restart from there does not lose it (it may repeat it). */
        cdc_tracker_close(st->tracker, seq, ev->message.lsn ? ev->message.lsn : ev->lsn);
    }
    return 0;
}

static int on_commit(const cdc_event_txn *txn, void *arg)
{
    run_state *st = arg;
    if (st->sink->ops->commit) {
        int rc = st->sink->ops->commit(st->sink, txn, st->cur_seq, &st->cb_err);
        if (rc < 0)
            return rc;
    }
    cdc_tracker_close(st->tracker, st->cur_seq, txn->end_lsn);
    st->cur_seq = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Checkpoint and status
 * ------------------------------------------------------------------------ */

/* Write the watermark when it moved (or when clean changes what the file says). clean: this
 * run is stopping and every message it sent is acknowledged. */
static int write_checkpoint(run_state *st, bool clean, cdc_error *err)
{
    cdc_lsn w = cdc_tracker_watermark(st->tracker);
    if (w <= st->durable && clean == st->ckpt.stopped_cleanly)
        return 0;
    if (w < st->durable)
        w = st->durable;
    st->ckpt.lsn = w;
    st->ckpt.stopped_cleanly = clean;
    if (st->snap) {
        const char *p = cdc_snapshot_progress(st->snap, w);
        if (strlen(p) >= sizeof(st->ckpt.snapshot)) {
            /* without the tables known for snapshot.new.tables: a table added while pgcdc
             * is stopped is then found only by its next look, not at start */
            p = cdc_snapshot_progress_compact(st->snap);
            cdc_log_warning("snapshot progress too long for the checkpoint: it is written "
                            "without the list of known tables");
        }
        if (strlen(p) >= sizeof(st->ckpt.snapshot)) {
            /* the checkpoint cannot say what remains to read: stop before it moves past it */
            cdc_err(err, CDC_ECONFIG,
                    "the snapshot's progress (%zu bytes) no longer fits the checkpoint (%zu)",
                    strlen(p), sizeof(st->ckpt.snapshot) - 1);
            cdc_err_detail(err, "too many tables were asked for at once (pgcdc snapshot), or a "
                                "table's key is very long");
            cdc_err_hint(err, "the checkpoint is unchanged; ask for fewer tables at a time");
            return CDC_ECONFIG;
        }
        snprintf(st->ckpt.snapshot, sizeof(st->ckpt.snapshot), "%s", p);
    }
    st->ckpt.written_at_ms = 0;
    int rc = cdc_ckpt_write(st->opts->cfg->checkpoint_path, &st->ckpt, err);
    if (rc < 0) {
        cdc_err_hint(err, "the previous checkpoint is intact and the slot was not advanced; fix "
                          "checkpoint.path and restart");
        return rc;
    }
    st->durable = w;
    st->last_ckpt_ms = cdc_now_ms();
    cdc_log_debug("checkpoint at " CDC_LSN_FMT, CDC_LSN_ARGS(w));
    return 0;
}

static int send_status(run_state *st, cdc_error *err)
{
    st->reply_pending = false;
    /* write = flush: keeps the walsender sending keepalives while we are behind it */
    return cdc_stream_send_status(st->stream, st->durable, st->durable, false, err);
}

/* ------------------------------------------------------------------------
 * Start: checkpoint and slot agreement
 * ------------------------------------------------------------------------ */

static int check_checkpoint(run_state *st, const cdc_checkpoint *saved, cdc_error *err)
{
    const cdc_system_info *sys = cdc_stream_system(st->stream);
    const cdc_config *cfg = st->opts->cfg;
    const char *path = cfg->checkpoint_path;
    if (saved->system_id != sys->system_id) {
        cdc_err(err, CDC_EMISMATCH,
                "checkpoint \"%s\" belongs to another server (system identifier %llu, this "
                "server is %llu)",
                path, (unsigned long long)saved->system_id, (unsigned long long)sys->system_id);
        cdc_err_hint(err, "point checkpoint.path at this server's checkpoint, or remove the file "
                          "to start from the slot's position");
        return CDC_EMISMATCH;
    }
    if (strcmp(saved->database, sys->dbname) != 0 || strcmp(saved->slot, cfg->slot_name) != 0) {
        cdc_err(err, CDC_EMISMATCH,
                "checkpoint \"%s\" belongs to slot \"%s\" in database \"%s\", not slot \"%s\" in "
                "database \"%s\"",
                path, saved->slot, saved->database, cfg->slot_name, sys->dbname);
        cdc_err_hint(err, "each slot needs its own checkpoint.path; remove the file to start "
                          "from the slot's position");
        return CDC_EMISMATCH;
    }
    cdc_lsn confirmed = cdc_stream_slot_confirmed(st->stream);
    if (saved->lsn < confirmed) {
        cdc_err(err, CDC_EMISMATCH,
                "checkpoint " CDC_LSN_FMT " in \"%s\" is behind slot \"%s\" (confirmed " CDC_LSN_FMT
                ")",
                CDC_LSN_ARGS(saved->lsn), path, cfg->slot_name, CDC_LSN_ARGS(confirmed));
        cdc_err_detail(err, "changes between the two positions were consumed by something else "
                            "(another consumer of the slot, or the slot was recreated) and cannot "
                            "be replayed");
        cdc_err_hint(err, "to accept the gap and continue from the slot, set snapshot.mode = "
                          "when_needed (which reads every table again) or remove the checkpoint "
                          "file; to capture everything, recreate the slot and take a snapshot");
        return CDC_EMISMATCH;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------ */

/* Peek at a Begin payload's final LSN (big-endian at offset 1). */
static bool begin_final_lsn(const uint8_t *p, size_t len, cdc_lsn *ret)
{
    if (len < 9 || p[0] != 'B')
        return false;
    cdc_lsn v = 0;
    for (int i = 1; i <= 8; i++)
        v = (v << 8) | p[i];
    *ret = v;
    return true;
}

/* Read and dispatch up to a batch of messages; returns messages handled or an error. */
static int read_batch(run_state *st, cdc_error *err)
{
    int handled = 0;
    const cdc_run_opts *o = st->opts;
    while (handled < 1024 && !st->endpos_reached && !stop_requested &&
           !st->sink->ops->busy(st->sink) && !cdc_snapshot_emitting(st->snap)) {
        cdc_stream_msg m;
        int r = cdc_stream_next(st->stream, &m, err);
        if (r <= 0)
            return r < 0 ? r : handled;
        handled++;
        bool in_txn = cdc_pgo_decoder_txn(st->dec) != NULL;
        if (m.kind == CDC_STREAM_KEEPALIVE) {
            if (m.wal_end > st->received)
                st->received = m.wal_end;
            if (m.reply_requested)
                st->reply_pending = true;
            if (!in_txn && cdc_tracker_advance_idle(st->tracker, m.wal_end))
                cdc_log_debug("idle: watermark moves to " CDC_LSN_FMT, CDC_LSN_ARGS(m.wal_end));
            if (endpos_applies(st) && !in_txn && m.wal_end >= o->endpos)
                st->endpos_reached = true;
            continue;
        }
        if (endpos_applies(st) && !in_txn) {
            cdc_lsn final;
            if ((begin_final_lsn(m.data, m.len, &final) && final > o->endpos) ||
                m.wal_start > o->endpos) {
                st->endpos_reached = true;
                break;
            }
        }
        if (m.len >= 5 && m.data[0] == 'R') {
            cdc_schemas_note(&st->schemas, m.data, m.len);
            cdc_keymap_invalidate(&st->keymap, (uint32_t)m.data[1] << 24 |
                                                   (uint32_t)m.data[2] << 16 |
                                                   (uint32_t)m.data[3] << 8 | m.data[4]);
        }
        cdc_err_clear(&st->cb_err);
        int rc = cdc_pgo_decoder_feed(st->dec, m.data, m.len, m.wal_start, err);
        if (rc < 0) {
            if (st->cb_err.code && err && err->code == 0)
                *err = st->cb_err;
            return rc;
        }
        if (m.wal_end > st->received)
            st->received = m.wal_end;
    }
    return handled;
}

/* Wait for socket input/output or a timeout. */
static int wait_io(run_state *st, int timeout_ms)
{
    struct pollfd pfd = {.fd = cdc_stream_fd(st->stream), .events = 0};
    if (!st->endpos_reached && !st->sink->ops->busy(st->sink))
        pfd.events |= POLLIN;
    if (cdc_stream_want_write(st->stream))
        pfd.events |= POLLOUT;
    int r = poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno != EINTR)
        return -1;
    return 0;
}

/*
 * How often to send status updates: status.interval, but at least three times
 * per wal_sender_timeout. While the sink is full pgcdc does not read the
 * socket and cannot see the server's reply requests, so the updates alone
 * must keep the walsender from timing out.
 */
static int64_t status_every(const run_state *st)
{
    int64_t every = st->opts->cfg->status_interval;
    int64_t wst = cdc_stream_sender_timeout_ms(st->stream);
    if (wst > 0 && wst / 3 < every)
        every = wst / 3 > 100 ? wst / 3 : 100;
    return every;
}

/*
 * Wait until every message sent is delivered, up to timeout_ms (negative:
 * until stop is requested, then shutdown.timeout more). Keeps sending status
 * updates while the stream is alive.
 */
static int drain(run_state *st, int64_t timeout_ms, bool stream_alive, cdc_error *err)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : cdc_now_ms() + timeout_ms;
    int64_t last_log = cdc_now_ms();
    while (cdc_tracker_inflight(st->tracker) > 0) {
        if (timeout_ms < 0 && stop_requested && deadline == INT64_MAX)
            deadline = cdc_now_ms() + st->opts->cfg->shutdown_timeout;
        if (cdc_now_ms() - last_log >= 10000) {
            cdc_log_warning("waiting for %llu kafka deliveries",
                            (unsigned long long)cdc_tracker_inflight(st->tracker));
            last_log = cdc_now_ms();
        }
        int64_t left = deadline - cdc_now_ms();
        if (left <= 0) {
            cdc_err(err, CDC_ETIMEOUT,
                    "%llu messages still undelivered after shutdown.timeout; the checkpoint "
                    "stays at " CDC_LSN_FMT,
                    (unsigned long long)cdc_tracker_inflight(st->tracker),
                    CDC_LSN_ARGS(cdc_tracker_watermark(st->tracker)));
            cdc_err_hint(err, "they are sent again on the next start");
            return CDC_ETIMEOUT;
        }
        int rc = st->sink->ops->poll(st->sink, left > 100 ? 100 : (int)left, err);
        if (rc < 0)
            return rc;
        /* keep the server from timing us out while we wait */
        if (stream_alive &&
            cdc_now_ms() - cdc_stream_last_status_ms(st->stream) >= status_every(st))
            if ((rc = send_status(st, err)) < 0)
                return rc;
    }
    return 0;
}

/*
 * The snapshot's share of the loop: hand a chunk's rows to the sink while it
 * has room (the stream waits at the chunk's high watermark meanwhile), or
 * read the next chunk. Returns 1 when it did something, 0, or an error.
 */
static int snapshot_step(run_state *st, cdc_error *err)
{
    if (st->snap == NULL)
        return 0;
    if (!cdc_snapshot_emitting(st->snap)) {
        return cdc_snapshot_work(st->snap, st->durable, err);
    }
    if (st->snap_seq == 0 && (st->snap_seq = cdc_tracker_open(st->tracker)) == 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int did = 0;
    while (!st->sink->ops->busy(st->sink)) {
        cdc_event ev;
        int nrc = cdc_snapshot_next(st->snap, &ev, err);
        if (nrc < 0)
            return nrc;
        if (nrc == 0) {
            cdc_tracker_close(st->tracker, st->snap_seq, cdc_snapshot_chunk_done(st->snap));
            st->snap_seq = 0;
            return 1;
        }
        cdc_event typed;
        bool rekey = ev.replident == CDC_EVENT_REPLIDENT_FULL || ev.nkeys == 0;
        bool domains = cdc_keymap_may_have_domains(&ev);
        uint32_t relid = ev.relid;
        if (rekey || domains) /* the snapshot's columns: nothing cached on them is trusted */
            cdc_keymap_forget_columns(&st->keymap, relid);
        if (rekey) {
            /* keyed as the table's streamed rows are */
            int krc = cdc_keymap_apply(&st->keymap, &ev, &typed, err);
            if (krc < 0)
                return krc;
            ev = typed;
        }
        if (domains) {
            /* as streamed rows: a domain's typmod from the catalog */
            int drc = cdc_keymap_domains(&st->keymap, &ev, &typed, err);
            if (drc < 0)
                return drc;
            ev = typed;
        }
        int rc = st->sink->ops->event(st->sink, &ev, st->snap_seq, err);
        if (rekey || domains) /* nor the streamed rows after it on what was built here */
            cdc_keymap_forget_columns(&st->keymap, relid);
        if (rc < 0)
            return rc;
        cdc_crashpoint("snapshot-row"); /* "snapshot-row:N": in the middle of a chunk */
        st->events++;
        did = 1;
    }
    return did;
}

static int loop(run_state *st, cdc_error *err)
{
    const cdc_config *cfg = st->opts->cfg;
    const int64_t every = status_every(st);
    int rc = 0;
    while (!stop_requested) {
        int sn = snapshot_step(st, err);
        if (sn < 0)
            return sn;
        if (endpos_applies(st) && !st->endpos_reached && st->received >= st->opts->endpos &&
            cdc_pgo_decoder_txn(st->dec) == NULL)
            st->endpos_reached = true; /* a snapshot took the stream past endpos */
        int n = read_batch(st, err);
        if (n < 0)
            return n;
        n += sn;
        if ((rc = st->sink->ops->poll(st->sink, 0, err)) < 0)
            return rc;

        int64_t now = cdc_now_ms();
        cdc_lsn w = cdc_tracker_watermark(st->tracker);
        bool done = st->endpos_reached && cdc_tracker_idle(st->tracker);
        if (w > st->durable && (done || now - st->last_ckpt_ms >= cfg->checkpoint_interval ||
                                cdc_snapshot_progress_waiting(st->snap, w))) {
            if ((rc = write_checkpoint(st, false, err)) < 0)
                return rc;
            st->reply_pending = true; /* tell the server promptly */
        }
        if (st->reply_pending || now - cdc_stream_last_status_ms(st->stream) >= every)
            if ((rc = send_status(st, err)) < 0)
                return rc;
        if (cdc_stream_want_write(st->stream) && cdc_stream_flush(st->stream, err) < 0)
            return CDC_EPG;
        if (done)
            return 0;
        if (cfg->snapshot_mode == CDC_SNAPSHOT_INITIAL_ONLY && st->snap &&
            !cdc_snapshot_active(st->snap)) {
            cdc_log_info("snapshot.mode = initial_only: the snapshot is in kafka, stopping");
            return 0;
        }
        if (n > 0)
            continue;

        /* Nothing buffered: sleep until input, the next status update, or a delivery. */
        int64_t until_status = every - (now - cdc_stream_last_status_ms(st->stream));
        int timeout = until_status < 0 ? 0 : until_status > 1000 ? 1000 : (int)until_status;
        if (cdc_tracker_inflight(st->tracker) > 0 || w > st->durable)
            timeout = timeout > 5 ? 5 : timeout;
        if (cdc_snapshot_active(st->snap) && timeout > 10)
            timeout = 10; /* a chunk read again after a short backoff */
        if (wait_io(st, timeout) < 0)
            return cdc_err(err, CDC_EIO, "poll failed: %s", strerror(errno));
    }
    return 0;
}

/* Errors after which pgcdc reconnects to PostgreSQL instead of exiting. */
/* Failures a new session recovers from: PostgreSQL's, and a Kafka producer that failed
 * and is replaced (the sink's open() makes a new one). */
static bool is_transient(int rc)
{
    return rc == CDC_EPG || rc == CDC_EPGCONN || rc == CDC_EINTERRUPTED || rc == CDC_EKAFKARESET;
}

/*
 * One replication session: connect, check the slot against the checkpoint,
 * let the sink read its positions, start streaming, and run the loop.
 * Returns what ended it; the stream stays open for the caller to close.
 */
static int session(run_state *st, const cdc_checkpoint *saved, bool first, cdc_error *err)
{
    const cdc_run_opts *opts = st->opts;
    const cdc_config *cfg = opts->cfg;
    cdc_stream_opts so = {
        .dsn = cfg->source_dsn,
        .slot = cfg->slot_name,
        .publication = cfg->publication_name,
    };
    int rc = cdc_stream_connect(&so, &st->stream, err);
    if (rc < 0)
        return rc;
    const cdc_system_info *sys = cdc_stream_system(st->stream);
    if (saved && first && cfg->snapshot_mode == CDC_SNAPSHOT_WHEN_NEEDED &&
        saved->system_id == sys->system_id && saved->lsn < cdc_stream_slot_confirmed(st->stream)) {
        /* the checkpoint cannot be resumed from: changes after it are gone. when_needed
         * takes a new snapshot from the slot's position instead of stopping. */
        cdc_log_warning("checkpoint " CDC_LSN_FMT " is behind slot \"%s\" (confirmed " CDC_LSN_FMT
                        "): snapshot.mode = when_needed takes a new snapshot and streams from "
                        "the slot",
                        CDC_LSN_ARGS(saved->lsn), cfg->slot_name,
                        CDC_LSN_ARGS(cdc_stream_slot_confirmed(st->stream)));
        saved = NULL;
        cdc_snapshot_free(st->snap);
        st->snap = NULL;
        if ((rc = new_snapshot(cfg, "running 0 -", &st->snap, err)) < 0)
            return rc;
    }
    if (saved && (rc = check_checkpoint(st, saved, err)) < 0)
        return rc;

    cdc_lsn start = saved ? saved->lsn : cdc_stream_slot_confirmed(st->stream);
    if (first) {
        st->ckpt = (cdc_checkpoint){.version = CDC_CKPT_FORMAT_VERSION,
                                    .system_id = sys->system_id,
                                    .timeline = sys->timeline,
                                    .lsn = start};
        snprintf(st->ckpt.database, sizeof(st->ckpt.database), "%s", sys->dbname);
        snprintf(st->ckpt.slot, sizeof(st->ckpt.slot), "%s", cfg->slot_name);
        if (st->snap)
            snprintf(st->ckpt.snapshot, sizeof(st->ckpt.snapshot), "%s",
                     cdc_snapshot_progress(st->snap, start));
        else if (saved)
            snprintf(st->ckpt.snapshot, sizeof(st->ckpt.snapshot), "%s", saved->snapshot);
        st->durable = start;
        if (saved && saved->stopped_cleanly) {
            /* The next start must know that this run may die with messages in flight:
             * say so before anything is sent. */
            if ((rc = cdc_ckpt_write(cfg->checkpoint_path, &st->ckpt, err)) < 0) {
                cdc_err_hint(err, "the checkpoint is intact; fix checkpoint.path and restart");
                return rc;
            }
        }
    }
    st->last_ckpt_ms = cdc_now_ms();
    cdc_tracker_free(st->tracker);
    if ((st->tracker = cdc_tracker_new(start)) == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    st->sink->tracker = st->tracker;
    st->cur_seq = 0;
    st->snap_seq = 0;
    cdc_pgo_decoder_reset(st->dec);

    /* The publication must exist (a missing one is permanent, not worth a reconnect).
     * Asked on an ordinary session: see cdc_catalog_publication_tables(). */
    char **tables = NULL;
    cdc_catalog *cat = NULL;
    if ((rc = cdc_catalog_open(cfg->source_dsn, &cat, err)) < 0)
        return rc;
    rc = cdc_catalog_publication_tables(cat, cfg->publication_name, &tables, err);
    cdc_catalog_close(cat);
    if (rc < 0)
        return rc;
    if (cfg->signal_data_collection[0] != '\0') {
        /* signals come with the stream: a signal table outside the publication never speaks */
        bool published = false;
        for (size_t i = 0; tables[i] && !published; i++)
            published = strcmp(tables[i], cfg->signal_data_collection) == 0;
        if (!published) {
            free(tables);
            cdc_err(err, CDC_ECONFIG, "signal.data.collection \"%s\" is not in publication \"%s\"",
                    cfg->signal_data_collection, cfg->publication_name);
            cdc_err_detail(err, "pgcdc reads signals from the stream, as Debezium does: rows "
                                "inserted into an unpublished table never reach it");
            cdc_err_hint(err,
                         "ALTER PUBLICATION %s ADD TABLE %s (or add it to "
                         "publication.tables and run pgcdc setup)",
                         cfg->publication_name, cfg->signal_data_collection);
            return CDC_ECONFIG;
        }
    }
    if (st->sink->ops->open) {
        cdc_sink_source src = {.dbname = sys->dbname,
                               .system_id = sys->system_id,
                               .slot = cfg->slot_name,
                               .tables = (const char *const *)tables,
                               .stop = &stop_requested,
                               .unclean_until_ms = st->unclean_until_ms,
                               .server_wal = sys->xlogpos};
        rc = st->sink->ops->open(st->sink, &src, err);
    }
    free(tables);
    if (rc < 0)
        return rc;
    if (st->snap && (rc = cdc_snapshot_connect(st->snap, cfg->source_dsn, cfg->publication_name,
                                               sys->server_version, err)) < 0)
        return rc;
    if ((rc = cdc_stream_start(st->stream, start, err)) < 0)
        return rc;
    cdc_log_info("streaming from slot \"%s\" publication \"%s\" database \"%s\" at " CDC_LSN_FMT
                 " (%s)",
                 cfg->slot_name, cfg->publication_name, sys->dbname, CDC_LSN_ARGS(start),
                 saved && first ? "checkpoint"
                 : first        ? "slot position"
                                : "reconnected");
    if (endpos_applies(st) && start >= opts->endpos) {
        st->endpos_reached = true;
        cdc_log_info("already at or past endpos " CDC_LSN_FMT, CDC_LSN_ARGS(opts->endpos));
    }
    st->connected_ms = cdc_now_ms();
    return loop(st, err);
}

/* Sleep ms, waking early when a stop is requested. */
static void sleep_interruptible(int64_t ms)
{
    int64_t until = cdc_now_ms() + ms;
    while (!stop_requested && cdc_now_ms() < until)
        poll(NULL, 0, 50);
}

int cdc_run(const cdc_run_opts *opts, cdc_error *err)
{
    const cdc_config *cfg = opts->cfg;
    run_state st = {.opts = opts, .sink = opts->sink};
    cdc_checkpoint saved;
    bool have_ckpt = false;
    int rc = cdc_ckpt_read(cfg->checkpoint_path, &saved, err);
    if (rc == 0) {
        have_ckpt = true;
    } else if (rc == CDC_ENOTFOUND) {
        if (opts->require_checkpoint) {
            cdc_err(err, CDC_ENOTFOUND, "no checkpoint at \"%s\"", cfg->checkpoint_path);
            cdc_err_hint(err, "\"pgcdc resume\" continues an earlier run; use \"pgcdc start\" for "
                              "a first run, or fix checkpoint.path");
            return CDC_ENOTFOUND;
        }
    } else {
        return rc;
    }
    if (have_ckpt && saved.stopped_cleanly)
        cdc_log_debug("the last run stopped cleanly: every message it sent was acknowledged");
    else /* it died, maybe before its first checkpoint: it may have been sending until now */
        st.unclean_until_ms = cdc_now_ms();

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    stop_signal = 0;
    signal(SIGPIPE, SIG_IGN);
    stop_requested = 0;
    srand((unsigned)(cdc_now_ms() ^ getpid()));

    /* A first run (no checkpoint) takes the snapshot; a checkpoint carries on with one it
     * records as running. A checkpoint without snapshot progress comes from a run that
     * streamed without one (or an older pgcdc): none is started under it. Whatever the
     * mode, a request (pgcdc snapshot) starts one. */
    const char *progress = !have_ckpt ? "running 0 -" : saved.snapshot;
    bool resume = strncmp(progress, "running ", 8) == 0;
    if (cfg->snapshot_mode == CDC_SNAPSHOT_NO_DATA && resume) {
        if (have_ckpt)
            cdc_log_warning("snapshot.mode = no_data: the unfinished snapshot the checkpoint "
                            "records is given up");
        progress = "";
        resume = false;
    }
    if ((rc = new_snapshot(cfg, progress, &st.snap, err)) < 0)
        return rc;
    if (cfg->snapshot_mode != CDC_SNAPSHOT_NO_DATA) {
        if (resume) {
            cdc_log_info("snapshot.mode = %s: %s",
                         cfg->snapshot_mode == CDC_SNAPSHOT_INITIAL        ? "initial"
                         : cfg->snapshot_mode == CDC_SNAPSHOT_INITIAL_ONLY ? "initial_only"
                                                                           : "when_needed",
                         have_ckpt ? "resuming the snapshot recorded in the checkpoint"
                                   : "reading the existing rows of every published table");
        } else if (cfg->snapshot_mode == CDC_SNAPSHOT_INITIAL_ONLY) {
            cdc_log_info("snapshot.mode = initial_only: %s; nothing to do",
                         strncmp(progress, "done", 4) == 0
                             ? "the checkpoint records the snapshot as done"
                             : "the checkpoint records streaming without a snapshot");
            cdc_snapshot_free(st.snap);
            return 0;
        }
    }

    cdc_pgo_handler h = {.begin = on_begin, .event = on_event, .commit = on_commit, .arg = &st};
    if ((rc = cdc_pgo_decoder_new(&h, &st.dec, err)) < 0)
        return rc;
    st.keymap.dsn = cfg->source_dsn;

    int64_t backoff = cfg->reconnect_backoff_min;
    for (int attempt = 0;; attempt++) {
        bool first = attempt == 0;
        cdc_err_clear(err);
        rc = session(&st, first ? (have_ckpt ? &saved : NULL) : &st.ckpt, first, err);
        cdc_log_status(NULL); /* a snapshot's progress line: stale from here on */
        if (rc == CDC_ENOTFOUND && !first && strstr(err->msg, "replication slot") != NULL) {
            /* it was there when this run started: someone dropped it under pgcdc */
            cdc_err_clear(err);
            cdc_err(err, CDC_EMISMATCH,
                    "replication slot \"%s\" was dropped while pgcdc was running", cfg->slot_name);
            cdc_err_detail(err,
                           "pgcdc lost its replication connection and, reconnecting, "
                           "found no slot; everything up to the checkpoint " CDC_LSN_FMT
                           " is in Kafka, changes after it are lost to any new slot",
                           CDC_LSN_ARGS(st.durable));
            cdc_err_hint(err, "recreate the slot (pgcdc setup) and remove the checkpoint to "
                              "stream from the new slot's position, or take a snapshot");
            rc = CDC_EMISMATCH;
        }
        if (rc == 0 || stop_requested || !is_transient(rc) || (first && st.connected_ms == 0))
            break;

        /* A transient PostgreSQL failure: keep what is delivered, then reconnect. */
        cdc_log_msg(CDC_LOG_WARNING, err->detail, err->hint, "%s", err->msg);
        cdc_stream_close(st.stream);
        st.stream = NULL;
        cdc_keymap_close(&st.keymap);
        cdc_error derr = {0};
        int drc = drain(&st, -1, false, &derr);
        /* the watermark covers delivered messages only: checkpointing is always safe */
        cdc_error werr = {0};
        int wrc = write_checkpoint(&st, false, &werr);
        if (drc < 0 || wrc < 0) {
            *err = drc < 0 ? derr : werr;
            rc = drc < 0 ? drc : wrc;
            goto out;
        }
        if (stop_requested) {
            rc = 0;
            goto out;
        }
        if (st.connected_ms && cdc_now_ms() - st.connected_ms > 60000)
            backoff = cfg->reconnect_backoff_min; /* it ran for a while: start over */
        int64_t wait = backoff / 2 + (int64_t)((double)rand() / RAND_MAX * (double)(backoff / 2));
        cdc_log_warning("%s in %lld ms (attempt %d), resuming from " CDC_LSN_FMT,
                        rc == CDC_EKAFKARESET ? "starting over with a new kafka producer"
                                              : "reconnecting to postgresql",
                        (long long)wait, attempt + 1, CDC_LSN_ARGS(st.durable));
        sleep_interruptible(wait);
        backoff =
            backoff * 2 > cfg->reconnect_backoff_max ? cfg->reconnect_backoff_max : backoff * 2;
        if (stop_requested) {
            rc = 0;
            goto out;
        }
    }
    if (st.tracker == NULL || st.stream == NULL)
        goto out;
    if (rc == 0 && stop_requested)
        cdc_log_info("stopping%s: waiting for outstanding deliveries",
                     stop_signal == SIGHUP    ? " (SIGHUP, handled as SIGTERM)"
                     : stop_signal == SIGINT  ? " (SIGINT)"
                     : stop_signal == SIGTERM ? " (SIGTERM)"
                                              : "");

    /* Whatever happened, keep what is delivered: checkpoint it, then tell the server. */
    {
        cdc_error derr = {0};
        int drc = 0;
        bool alive = !is_transient(rc) && cdc_stream_is_streaming(st.stream);
        /* after a refused message too: what was sent before it can still be delivered */
        if (rc == 0 || is_transient(rc) || rc == CDC_EKAFKAFATAL || rc == CDC_EKAFKA)
            drc = drain(&st, cfg->shutdown_timeout, alive, &derr);
        bool clean = rc == 0 && drc == 0 && cdc_tracker_inflight(st.tracker) == 0;
        int wrc = write_checkpoint(&st, clean, rc == 0 && drc == 0 ? err : &derr);
        cdc_crashpoint("shutdown-after-checkpoint");
        if (wrc == 0 && alive)
            send_status(&st, &derr);
        if (rc == 0 && drc < 0) {
            *err = derr;
            rc = drc;
        } else if (rc == 0 && wrc < 0) {
            rc = wrc;
        }
    }
    if (rc == 0)
        cdc_log_info("stopped at " CDC_LSN_FMT " after %llu events", CDC_LSN_ARGS(st.durable),
                     (unsigned long long)st.events);
out:
    if (rc == CDC_EINTERRUPTED && stop_requested)
        rc = 0; /* stopped while waiting for kafka or postgresql: nothing was lost */
    cdc_stream_close(st.stream);
    cdc_pgo_decoder_free(st.dec);
    cdc_tracker_free(st.tracker);
    cdc_keymap_free(&st.keymap);
    cdc_schemas_free(&st.schemas);
    cdc_snapshot_free(st.snap);
    return rc;
}
