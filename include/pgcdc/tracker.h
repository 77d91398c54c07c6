/* tracker.h - in-order delivery watermark over transactions */
#ifndef PGCDC_TRACKER_H
#define PGCDC_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/lsn.h"

/*
 * The tracker answers one question: up to which LSN is everything
 * delivered? Transactions are opened in commit order and get a sequence
 * number; every message sent for one is counted, every successful delivery
 * report uncounts it. The watermark is the end LSN of the newest closed
 * transaction that, with every transaction before it, has nothing
 * outstanding. Memory is one entry per transaction with messages in flight.
 */
typedef struct cdc_tracker cdc_tracker;

/* New tracker whose watermark starts at lsn; NULL when out of memory. */
cdc_tracker *cdc_tracker_new(cdc_lsn start);
void cdc_tracker_free(cdc_tracker *t);

/* Open the next transaction; returns its sequence number (or 0 on ENOMEM). */
uint64_t cdc_tracker_open(cdc_tracker *t);
/* Record the commit time (Unix microseconds) of transaction seq. */
void cdc_tracker_set_commit_time(cdc_tracker *t, uint64_t seq, int64_t commit_us);
/* The commit time of seq if it is still tracked, else 0. */
int64_t cdc_tracker_commit_time(const cdc_tracker *t, uint64_t seq);
/* Count one more message in flight for transaction seq. */
void cdc_tracker_add(cdc_tracker *t, uint64_t seq);
/* A message of seq was delivered. */
void cdc_tracker_ack(cdc_tracker *t, uint64_t seq);
/*
 * A message of seq failed for good: it is no longer in flight, and the
 * watermark never passes seq.
 */
void cdc_tracker_fail(cdc_tracker *t, uint64_t seq);
/* No more messages will be added to seq; it ends at end_lsn. */
void cdc_tracker_close(cdc_tracker *t, uint64_t seq, cdc_lsn end_lsn);
/*
 * Move the watermark to lsn when nothing is open or in flight (an idle
 * keepalive's WAL end); returns whether it moved.
 */
bool cdc_tracker_advance_idle(cdc_tracker *t, cdc_lsn lsn);

/* Everything before this LSN is delivered. */
cdc_lsn cdc_tracker_watermark(const cdc_tracker *t);
/* Messages in flight across all transactions. */
uint64_t cdc_tracker_inflight(const cdc_tracker *t);
/* True when no transaction is open or has messages in flight. */
bool cdc_tracker_idle(const cdc_tracker *t);

#endif
