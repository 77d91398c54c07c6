/* stream.c - logical replication over libpq: IDENTIFY_SYSTEM, START_REPLICATION, CopyBoth frames */
#include "pgcdc/stream.h"

#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_int.h"
#include "pgcdc/log.h"

/* Seconds between the Unix epoch and PostgreSQL's 2000-01-01 epoch. */
#define PG_EPOCH_OFFSET_S 946684800LL

struct cdc_stream {
    PGconn *conn;           /* replication connection */
    cdc_system_info sys;    /* IDENTIFY_SYSTEM */
    cdc_lsn slot_confirmed; /* confirmed_flush_lsn at open */
    char *copybuf;          /* last frame from PQgetCopyData, freed on next call */
    int64_t last_status_ms; /* when the last status update was sent */
    bool want_write;        /* PQflush left data queued */
    bool streaming;         /* START_REPLICATION succeeded: COPY BOTH is open */
    char *slot;             /* slot name, owned */
    char *publication;      /* publication name(s), owned */
    int64_t sender_timeout; /* wal_sender_timeout in ms, 0 if disabled or unknown */
};

int64_t cdc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t pg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - PG_EPOCH_OFFSET_S) * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

const cdc_system_info *cdc_stream_system(const cdc_stream *s)
{
    return &s->sys;
}

bool cdc_stream_is_streaming(const cdc_stream *s)
{
    return s != NULL && s->streaming;
}

int64_t cdc_stream_sender_timeout_ms(const cdc_stream *s)
{
    return s->sender_timeout;
}

/* SHOW wal_sender_timeout: "60s", "500ms", "1min", "0". Unknown forms leave 0. */
static void read_sender_timeout(cdc_stream *s)
{
    PGresult *res = PQexec(s->conn, "SHOW wal_sender_timeout");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        char *end;
        const char *v = PQgetvalue(res, 0, 0);
        double n = strtod(v, &end);
        double mult = strcmp(end, "ms") == 0    ? 1
                      : strcmp(end, "s") == 0   ? 1000
                      : strcmp(end, "min") == 0 ? 60000
                      : strcmp(end, "h") == 0   ? 3600000
                      : *end == '\0'            ? 1
                                                : 0;
        s->sender_timeout = (int64_t)(n * mult);
    }
    PQclear(res);
}

cdc_lsn cdc_stream_slot_confirmed(const cdc_stream *s)
{
    return s->slot_confirmed;
}

int cdc_stream_fd(const cdc_stream *s)
{
    return PQsocket(s->conn);
}

bool cdc_stream_want_write(const cdc_stream *s)
{
    return s->want_write;
}

int64_t cdc_stream_last_status_ms(const cdc_stream *s)
{
    return s->last_status_ms;
}

static int identify_system(cdc_stream *s, cdc_error *err)
{
    PGresult *res = cdc_pg_exec(s->conn, "run IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM", err);
    if (res == NULL)
        return CDC_EPG;
    if (PQntuples(res) != 1 || PQnfields(res) < 4) {
        int rows = PQntuples(res), fields = PQnfields(res);
        PQclear(res);
        return cdc_err(err, CDC_EPROTO, "unexpected IDENTIFY_SYSTEM result: %d rows, %d fields",
                       rows, fields);
    }
    s->sys.system_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    s->sys.timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    if (cdc_lsn_parse(PQgetvalue(res, 0, 2), &s->sys.xlogpos) < 0) {
        PQclear(res);
        return cdc_err(err, CDC_EPROTO, "IDENTIFY_SYSTEM returned a malformed xlogpos");
    }
    if (PQgetisnull(res, 0, 3)) {
        PQclear(res);
        return cdc_err(err, CDC_EINTERNAL, "replication connection is not bound to a database");
    }
    snprintf(s->sys.dbname, sizeof(s->sys.dbname), "%s", PQgetvalue(res, 0, 3));
    s->sys.server_version = PQserverVersion(s->conn);
    PQclear(res);
    return 0;
}

/* Check the slot with SQL (allowed on replication=database connections since PG 10). */
static int check_slot(cdc_stream *s, const char *slot, cdc_error *err)
{
    /* replication connections speak the simple query protocol only: quote by hand */
    char *lit = cdc_pg_quote_literal(s->conn, slot);
    char sql[1024];
    if (lit == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    snprintf(sql, sizeof(sql),
             "SELECT plugin, slot_type, database, active, active_pid, confirmed_flush_lsn, %s, "
             "current_setting('max_slot_wal_keep_size') "
             "FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
             /* wal_status: PostgreSQL 13 and later */
             s->sys.server_version >= 130000 ? "wal_status" : "NULL::text", lit);
    free(lit);
    PGresult *res = cdc_pg_exec(s->conn, "look up the replication slot", sql, err);
    if (res == NULL)
        return CDC_EPG;
    int rc = 0;
    if (PQntuples(res) == 0) {
        rc = cdc_err(err, CDC_ENOTFOUND, "replication slot \"%s\" does not exist", slot);
        cdc_err_hint(err, "create it with \"pgcdc setup\" (or sql/setup.sql); if it was dropped "
                          "while pgcdc was stopped, changes since then are lost to it");
    } else if (strcmp(PQgetvalue(res, 0, 1), "logical") != 0) {
        rc = cdc_err(err, CDC_EPGSETUP, "replication slot \"%s\" is a physical slot", slot);
        cdc_err_hint(err, "use a logical slot created with the pgoutput plugin");
    } else if (strcmp(PQgetvalue(res, 0, 0), "pgoutput") != 0) {
        rc = cdc_err(err, CDC_EPGSETUP, "replication slot \"%s\" uses plugin \"%s\", not pgoutput",
                     slot, PQgetvalue(res, 0, 0));
        cdc_err_hint(err, "set slot.name to a pgoutput slot, or drop and recreate this one");
    } else if (strcmp(PQgetvalue(res, 0, 2), s->sys.dbname) != 0) {
        rc = cdc_err(err, CDC_EPGSETUP,
                     "replication slot \"%s\" belongs to database \"%s\", not \"%s\"", slot,
                     PQgetvalue(res, 0, 2), s->sys.dbname);
        cdc_err_hint(err, "point source.dsn at database \"%s\"", PQgetvalue(res, 0, 2));
    } else if (strcmp(PQgetvalue(res, 0, 6), "lost") == 0) {
        /* PostgreSQL removed WAL the slot still needed: no reconnect brings it back */
        rc = cdc_err(err, CDC_EPGSETUP,
                     "replication slot \"%s\" was invalidated: the server removed WAL it still "
                     "needed (max_slot_wal_keep_size = %s)",
                     slot, PQgetvalue(res, 0, 7));
        cdc_err_detail(err, "pgcdc fell behind by more than max_slot_wal_keep_size (stopped, "
                            "or Kafka slower than the writes); the changes in the removed WAL "
                            "are lost to this slot, everything up to pgcdc's checkpoint is in "
                            "Kafka");
        cdc_err_hint(err, "raise max_slot_wal_keep_size (or -1 for no limit), drop and recreate "
                          "the slot (pgcdc teardown, pgcdc setup), remove the checkpoint, and "
                          "take a snapshot to recover the lost changes");
    } else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
        rc = cdc_err(err, CDC_EPG, "replication slot \"%s\" is in use by process %s", slot,
                     PQgetvalue(res, 0, 4));
        cdc_err_hint(err, "another pgcdc (or consumer) is streaming from this slot; stop it first");
    } else if (!PQgetisnull(res, 0, 5)) {
        if (cdc_lsn_parse(PQgetvalue(res, 0, 5), &s->slot_confirmed) < 0)
            rc = cdc_err(err, CDC_EPROTO, "slot \"%s\" has a malformed confirmed_flush_lsn \"%s\"",
                         slot, PQgetvalue(res, 0, 5));
    }
    PQclear(res);
    return rc;
}

static int start_replication(cdc_stream *s, cdc_lsn start_lsn, cdc_error *err)
{
    char *slot = cdc_pg_quote_ident(s->conn, s->slot);
    char *pubs = cdc_pg_quote_literal(s->conn, s->publication);
    char lsn[CDC_LSN_STRLEN], sql[2048];
    int rc = 0;
    if (slot == NULL || pubs == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        goto out;
    }
    cdc_pgoutput_options o = cdc_stream_pgoutput_options(s->sys.server_version);
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT %s LOGICAL %s (proto_version '%d', publication_names %s%s)",
             slot, cdc_lsn_format(start_lsn, lsn), o.proto_version, pubs,
             o.messages ? ", messages 'true'" : "");
    cdc_log_debug("%s", sql);
    PGresult *res = PQexec(s->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *h = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        const char *d = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        rc = cdc_err(err, CDC_EPG, "cannot start replication from slot \"%s\": %s", s->slot,
                     m ? m : cdc_pg_errmsg(s->conn));
        if (d)
            cdc_err_detail(err, "%s", d);
        if (h)
            cdc_err_hint(err, "%s", h);
        else if (m && strstr(m, "publication"))
            cdc_err_hint(err, "create the publication with \"pgcdc setup\"");
    }
    PQclear(res);
out:
    free(slot);
    free(pubs);
    return rc;
}

int cdc_stream_connect(const cdc_stream_opts *opts, cdc_stream **ret, cdc_error *err)
{
    cdc_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc;
    s->slot = strdup(opts->slot);
    s->publication = strdup(opts->publication);
    if (s->slot == NULL || s->publication == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        goto error;
    }
    if ((rc = cdc_pg_connect(opts->dsn, CDC_PG_REPLICATION, &s->conn, err)) < 0)
        goto error;
    if ((rc = identify_system(s, err)) < 0)
        goto error;
    if ((rc = check_slot(s, opts->slot, err)) < 0)
        goto error;
    read_sender_timeout(s);
    *ret = s;
    return 0;

error:
    if (s->conn)
        PQfinish(s->conn);
    free(s->slot);
    free(s->publication);
    free(s);
    return rc;
}

cdc_pgoutput_options cdc_stream_pgoutput_options(int version_num)
{
    return (cdc_pgoutput_options){.proto_version = 1, .messages = version_num >= 140000};
}

int cdc_stream_start(cdc_stream *s, cdc_lsn start_lsn, cdc_error *err)
{
    int rc = start_replication(s, start_lsn, err);
    if (rc < 0)
        return rc;
    s->streaming = true;
    if (PQsetnonblocking(s->conn, 1) != 0)
        return cdc_err(err, CDC_EPG, "cannot make the replication connection non-blocking");
    s->last_status_ms = cdc_now_ms();
    return 0;
}

int cdc_stream_open(const cdc_stream_opts *opts, cdc_stream **ret, cdc_error *err)
{
    cdc_stream *s = NULL;
    int rc = cdc_stream_connect(opts, &s, err);
    if (rc < 0)
        return rc;
    if ((rc = cdc_stream_start(s, opts->start_lsn, err)) < 0) {
        cdc_stream_close(s);
        return rc;
    }
    *ret = s;
    return 0;
}

int cdc_stream_next(cdc_stream *s, cdc_stream_msg *msg, cdc_error *err)
{
    if (s->copybuf) {
        PQfreemem(s->copybuf);
        s->copybuf = NULL;
    }
    for (;;) {
        int n = PQgetCopyData(s->conn, &s->copybuf, 1);
        if (n == 0) {
            if (PQconsumeInput(s->conn) == 0)
                return cdc_err(err, CDC_EPG, "replication connection lost: %s",
                               cdc_pg_errmsg(s->conn));
            n = PQgetCopyData(s->conn, &s->copybuf, 1);
            if (n == 0)
                return 0;
        }
        if (n == -1) {
            /* The server ended COPY: fetch the final result for its reason. */
            PGresult *res = PQgetResult(s->conn);
            int rc = CDC_EINTERRUPTED;
            if (res && PQresultStatus(res) != PGRES_COMMAND_OK &&
                PQresultStatus(res) != PGRES_COPY_OUT && PQresultStatus(res) != PGRES_COPY_BOTH) {
                const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
                rc = cdc_err(err, CDC_EPG, "replication stream ended: %s",
                             m ? m : cdc_pg_errmsg(s->conn));
            } else {
                cdc_err(err, CDC_EINTERRUPTED, "server ended the replication stream");
            }
            PQclear(res);
            return rc;
        }
        if (n == -2)
            return cdc_err(err, CDC_EPG, "replication connection lost: %s", cdc_pg_errmsg(s->conn));

        const uint8_t *p = (const uint8_t *)s->copybuf;
        memset(msg, 0, sizeof(*msg));
        if (p[0] == 'w') {
            if (n < 25)
                return cdc_err(err, CDC_EPROTO, "streaming header too small: %d bytes", n);
            msg->kind = CDC_STREAM_XLOGDATA;
            msg->wal_start = get_u64(p + 1);
            msg->wal_end = get_u64(p + 9);
            msg->server_time = (int64_t)get_u64(p + 17);
            msg->data = p + 25;
            msg->len = (size_t)n - 25;
            return 1;
        }
        if (p[0] == 'k') {
            if (n < 18)
                return cdc_err(err, CDC_EPROTO, "keepalive message too small: %d bytes", n);
            msg->kind = CDC_STREAM_KEEPALIVE;
            msg->wal_end = get_u64(p + 1);
            msg->server_time = (int64_t)get_u64(p + 9);
            msg->reply_requested = p[17] != 0;
            return 1;
        }
        cdc_log_warning("ignoring unknown replication frame type 0x%02x", p[0]);
        PQfreemem(s->copybuf);
        s->copybuf = NULL;
    }
}

int cdc_stream_flush(cdc_stream *s, cdc_error *err)
{
    int r = PQflush(s->conn);
    if (r < 0)
        return cdc_err(err, CDC_EPG, "cannot send to the server: %s", cdc_pg_errmsg(s->conn));
    s->want_write = r == 1;
    return r;
}

int cdc_stream_send_status(cdc_stream *s, cdc_lsn written, cdc_lsn flushed, bool reply,
                           cdc_error *err)
{
    uint8_t buf[34];
    buf[0] = 'r';
    put_u64(buf + 1, written);
    put_u64(buf + 9, flushed);
    put_u64(buf + 17, flushed);
    put_u64(buf + 25, (uint64_t)pg_now_us());
    buf[33] = reply ? 1 : 0;
    if (PQputCopyData(s->conn, (const char *)buf, sizeof(buf)) <= 0)
        return cdc_err(err, CDC_EPG, "cannot send a status update: %s", cdc_pg_errmsg(s->conn));
    s->last_status_ms = cdc_now_ms();
    cdc_log_debug("status update: write " CDC_LSN_FMT " flush " CDC_LSN_FMT, CDC_LSN_ARGS(written),
                  CDC_LSN_ARGS(flushed));
    int r = cdc_stream_flush(s, err);
    return r < 0 ? r : 0;
}

void cdc_stream_close(cdc_stream *s)
{
    if (s == NULL)
        return;
    if (s->copybuf)
        PQfreemem(s->copybuf);
    if (s->conn && s->streaming && PQstatus(s->conn) == CONNECTION_OK) {
        /* CopyDone, then discard what the server still sends until it ends COPY, for
         * at most 2 s: a server that stopped answering must not hold pgcdc up */
        int64_t deadline = cdc_now_ms() + 2000;
        if (PQputCopyEnd(s->conn, NULL) == 1) {
            while (cdc_now_ms() < deadline) {
                if (PQflush(s->conn) < 0 || PQconsumeInput(s->conn) == 0)
                    break;
                char *buf;
                int n;
                while ((n = PQgetCopyData(s->conn, &buf, 1)) > 0)
                    PQfreemem(buf);
                if (n == -1 || n == -2) {
                    PGresult *res;
                    while (!PQisBusy(s->conn) && (res = PQgetResult(s->conn)) != NULL)
                        PQclear(res);
                    break;
                }
                struct pollfd pfd = {.fd = PQsocket(s->conn), .events = POLLIN};
                poll(&pfd, 1, 100);
            }
        }
    }
    if (s->conn)
        PQfinish(s->conn);
    free(s->slot);
    free(s->publication);
    free(s);
}
