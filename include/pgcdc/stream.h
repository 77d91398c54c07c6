/* stream.h - the logical replication stream: START_REPLICATION over libpq, non-blocking */
#ifndef PGCDC_STREAM_H
#define PGCDC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/error.h"
#include "pgcdc/lsn.h"

typedef struct cdc_stream cdc_stream;

/* What IDENTIFY_SYSTEM and the server told us. */
typedef struct cdc_system_info {
    uint64_t system_id; /* systemid */
    uint32_t timeline;  /* timeline */
    cdc_lsn xlogpos;    /* current WAL flush position at connect */
    char dbname[128];   /* database of the connection */
    int server_version; /* e.g. 150004 */
} cdc_system_info;

typedef struct cdc_stream_opts {
    const char *dsn;         /* libpq conninfo */
    const char *slot;        /* slot name */
    const char *publication; /* publication name(s), comma separated */
    cdc_lsn start_lsn;       /* 0: the slot's confirmed_flush_lsn */
    bool binary;             /* reserved: binary tuple data (PG14+), unused in proto 1 */
} cdc_stream_opts;

typedef enum cdc_stream_msg_kind {
    CDC_STREAM_XLOGDATA = 'w', /* payload is one pgoutput message */
    CDC_STREAM_KEEPALIVE = 'k',
} cdc_stream_msg_kind;

typedef struct cdc_stream_msg {
    cdc_stream_msg_kind kind;
    cdc_lsn wal_start;    /* 'w': LSN of the message; 'k': 0 */
    cdc_lsn wal_end;      /* server's WAL end */
    int64_t server_time;  /* microseconds since 2000-01-01 */
    bool reply_requested; /* 'k': the server wants a status update now */
    const uint8_t *data;  /* 'w': payload, valid until the next cdc_stream_next() */
    size_t len;           /* 'w': payload length */
} cdc_stream_msg;

/*
 * Connect (replication=database), run IDENTIFY_SYSTEM and check that the
 * slot exists, is logical, uses pgoutput, belongs to this database and is
 * not in use (clear errors otherwise: CDC_ENOTFOUND for a missing slot with
 * a hint to run pgcdc setup). Returns a new, not yet streaming, stream.
 */
int cdc_stream_connect(const cdc_stream_opts *opts, cdc_stream **ret, cdc_error *err);

/*
 * The pgoutput options pgcdc asks a server of version_num (PQserverVersion)
 * for: proto_version 1 everywhere (whole transactions at their commit, which
 * the positions rest on), logical decoding messages where the server sends
 * them (PostgreSQL 14 on).
 */
typedef struct cdc_pgoutput_options {
    int proto_version;
    bool messages;
} cdc_pgoutput_options;

cdc_pgoutput_options cdc_stream_pgoutput_options(int version_num);

/*
 * START_REPLICATION SLOT ... LOGICAL start_lsn with proto_version 1,
 * publication_names and messages (PG14+); start_lsn 0 = the slot's
 * confirmed position.
 */
int cdc_stream_start(cdc_stream *s, cdc_lsn start_lsn, cdc_error *err);

/* cdc_stream_connect() then cdc_stream_start(opts->start_lsn). */
int cdc_stream_open(const cdc_stream_opts *opts, cdc_stream **ret, cdc_error *err);

/* Borrowed; valid until cdc_stream_close(). */
const cdc_system_info *cdc_stream_system(const cdc_stream *s);
/* True once START_REPLICATION succeeded (status updates can be sent). */
bool cdc_stream_is_streaming(const cdc_stream *s);
/* The server's wal_sender_timeout in ms read at connect (0: disabled or unknown). */
int64_t cdc_stream_sender_timeout_ms(const cdc_stream *s);
/* The slot's confirmed_flush_lsn read at open. */
cdc_lsn cdc_stream_slot_confirmed(const cdc_stream *s);
/* The socket to poll() for input (and for output while cdc_stream_want_write()). */
int cdc_stream_fd(const cdc_stream *s);
/* True when output is queued and the socket should be polled for POLLOUT. */
bool cdc_stream_want_write(const cdc_stream *s);

/*
 * Take the next message without blocking. Returns 1 with *msg filled, 0 when
 * nothing is buffered (poll the fd), CDC_EINTERRUPTED when the server ended
 * the stream (CopyDone), or an error (CDC_EPG, CDC_EPROTO for a malformed
 * frame) with err set.
 */
int cdc_stream_next(cdc_stream *s, cdc_stream_msg *msg, cdc_error *err);

/*
 * Queue a standby status update: written = received up to, flushed = durable
 * (the checkpoint), applied = flushed. Sends what it can without blocking.
 */
int cdc_stream_send_status(cdc_stream *s, cdc_lsn written, cdc_lsn flushed, bool reply,
                           cdc_error *err);
/* Push queued output; returns 0 when all sent, 1 when more remains, or error. */
int cdc_stream_flush(cdc_stream *s, cdc_error *err);
/* Monotonic milliseconds of the last status update sent. */
int64_t cdc_stream_last_status_ms(const cdc_stream *s);

/*
 * Stop streaming cleanly: CopyDone, drain what the server still sends,
 * read the final results, disconnect. Always frees s (NULL is fine).
 */
void cdc_stream_close(cdc_stream *s);

/* Monotonic clock in milliseconds. */
int64_t cdc_now_ms(void);

#endif
