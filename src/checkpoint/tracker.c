/* tracker.c - delivery watermark: a queue of transactions with outstanding message counts */
#include "pgcdc/tracker.h"

#include <stdlib.h>

typedef struct txn_entry {
    uint64_t outstanding; /* messages sent and not yet acknowledged */
    cdc_lsn end_lsn;      /* valid once closed */
    bool closed;          /* no more messages will be added */
    bool failed;          /* a message failed for good: never complete */
    int64_t commit_us;    /* commit time, Unix microseconds; 0 unknown */
} txn_entry;

struct cdc_tracker {
    txn_entry *ring; /* cap entries, a circular queue */
    size_t cap;
    size_t head;       /* index of the oldest entry */
    size_t count;      /* entries in the queue */
    uint64_t head_seq; /* sequence number of ring[head] */
    uint64_t next_seq; /* sequence number of the next open() */
    uint64_t inflight; /* sum of outstanding */
    cdc_lsn watermark;
};

cdc_tracker *cdc_tracker_new(cdc_lsn start)
{
    cdc_tracker *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->cap = 64;
    t->ring = calloc(t->cap, sizeof(*t->ring));
    if (t->ring == NULL) {
        free(t);
        return NULL;
    }
    t->head_seq = t->next_seq = 1;
    t->watermark = start;
    return t;
}

void cdc_tracker_free(cdc_tracker *t)
{
    if (t == NULL)
        return;
    free(t->ring);
    free(t);
}

static txn_entry *entry(const cdc_tracker *t, uint64_t seq)
{
    if (seq < t->head_seq || seq >= t->head_seq + t->count)
        return NULL;
    return &t->ring[(t->head + (size_t)(seq - t->head_seq)) % t->cap];
}

/* Pop completed transactions from the head, moving the watermark. */
static void advance(cdc_tracker *t)
{
    while (t->count > 0) {
        txn_entry *e = &t->ring[t->head];
        if (!e->closed || e->outstanding > 0 || e->failed)
            break;
        if (e->end_lsn > t->watermark)
            t->watermark = e->end_lsn;
        t->head = (t->head + 1) % t->cap;
        t->head_seq++;
        t->count--;
    }
}

static int grow(cdc_tracker *t)
{
    size_t ncap = t->cap * 2;
    txn_entry *n = calloc(ncap, sizeof(*n));
    if (n == NULL)
        return -1;
    for (size_t i = 0; i < t->count; i++)
        n[i] = t->ring[(t->head + i) % t->cap];
    free(t->ring);
    t->ring = n;
    t->cap = ncap;
    t->head = 0;
    return 0;
}

uint64_t cdc_tracker_open(cdc_tracker *t)
{
    if (t->count == t->cap && grow(t) < 0)
        return 0;
    txn_entry *e = &t->ring[(t->head + t->count) % t->cap];
    e->outstanding = 0;
    e->end_lsn = CDC_INVALID_LSN;
    e->closed = false;
    e->failed = false;
    e->commit_us = 0;
    t->count++;
    return t->next_seq++;
}

void cdc_tracker_set_commit_time(cdc_tracker *t, uint64_t seq, int64_t commit_us)
{
    txn_entry *e = entry(t, seq);
    if (e)
        e->commit_us = commit_us;
}

int64_t cdc_tracker_commit_time(const cdc_tracker *t, uint64_t seq)
{
    const txn_entry *e = entry(t, seq);
    return e ? e->commit_us : 0;
}

void cdc_tracker_add(cdc_tracker *t, uint64_t seq)
{
    txn_entry *e = entry(t, seq);
    if (e) {
        e->outstanding++;
        t->inflight++;
    }
}

void cdc_tracker_ack(cdc_tracker *t, uint64_t seq)
{
    txn_entry *e = entry(t, seq);
    if (e && e->outstanding > 0) {
        e->outstanding--;
        t->inflight--;
        advance(t);
    }
}

void cdc_tracker_fail(cdc_tracker *t, uint64_t seq)
{
    txn_entry *e = entry(t, seq);
    if (e && e->outstanding > 0) {
        e->outstanding--;
        t->inflight--;
        e->failed = true;
    }
}

void cdc_tracker_close(cdc_tracker *t, uint64_t seq, cdc_lsn end_lsn)
{
    txn_entry *e = entry(t, seq);
    if (e) {
        e->closed = true;
        e->end_lsn = end_lsn;
        advance(t);
    }
}

bool cdc_tracker_advance_idle(cdc_tracker *t, cdc_lsn lsn)
{
    if (t->count > 0 || lsn <= t->watermark)
        return false;
    t->watermark = lsn;
    return true;
}

cdc_lsn cdc_tracker_watermark(const cdc_tracker *t)
{
    return t->watermark;
}

uint64_t cdc_tracker_inflight(const cdc_tracker *t)
{
    return t->inflight;
}

bool cdc_tracker_idle(const cdc_tracker *t)
{
    return t->count == 0;
}
