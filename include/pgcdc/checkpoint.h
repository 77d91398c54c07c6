/* checkpoint.h - the durable LSN checkpoint: one small text file, replaced atomically */
#ifndef PGCDC_CHECKPOINT_H
#define PGCDC_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "pgcdc/error.h"
#include "pgcdc/lsn.h"

#define CDC_CKPT_FORMAT_VERSION 3 /* 1 and 2 are still read (1 as not stopped cleanly) */

typedef struct cdc_checkpoint {
    int version;           /* file format version, CDC_CKPT_FORMAT_VERSION */
    uint64_t system_id;    /* IDENTIFY_SYSTEM systemid of the source cluster */
    uint32_t timeline;     /* timeline at write time (informational) */
    char database[128];    /* database the slot belongs to */
    char slot[128];        /* slot name */
    cdc_lsn lsn;           /* everything before this LSN is delivered */
    int64_t written_at_ms; /* Unix time of the write, milliseconds */
    /* Written by a run as it stopped, with nothing in flight: whatever it sent
     * to Kafka was acknowledged, so the next start need not wait for Kafka to
     * commit messages a dead run may have left unreplicated. A run clears it
     * before it produces anything. */
    bool stopped_cleanly;
    /* Snapshot progress (src/snapshot, cdc_snapshot_progress): "" when no snapshot was
     * asked for (and in files of formats 1 and 2), "done", or "running ...". Only
     * progress whose rows are all delivered is written. */
    char snapshot[16384];
} cdc_checkpoint;

/*
 * Read the checkpoint at path. Returns 0 and fills *ret, CDC_ENOTFOUND when
 * there is no file (*ret unchanged), or CDC_EIO / CDC_EPROTO (unreadable,
 * corrupt: bad checksum, unknown version, missing field) with the path and
 * the reason in err.
 */
int cdc_ckpt_read(const char *path, cdc_checkpoint *ret, cdc_error *err);

/*
 * Write ckpt to path durably and atomically: write "path.tmp", fsync it,
 * rename over path, fsync the directory. After a crash at any point the file
 * at path is either the old checkpoint or the new one, never a mix. On error
 * (CDC_EIO) the old file is intact and err names the step and the path.
 */
int cdc_ckpt_write(const char *path, const cdc_checkpoint *ckpt, cdc_error *err);

#endif
