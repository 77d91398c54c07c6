/* window.c - a snapshot window's rows, read by one session or by several at once */
#include "window.h"

#include <pthread.h>
#include <stdlib.h>

/* One range of the window. */
typedef struct range_read {
    cdc_snapread *r;
    const cdc_snap_table *t;
    const char *const *after, *const *upto;
    size_t limit;
    cdc_snap_rows *rows;
    int rc;
    cdc_error err;
    pthread_t thread;
    bool started;
} range_read;

static void *range_main(void *arg)
{
    range_read *q = arg;
    q->rc = cdc_snapread_chunk(q->r, q->t, q->after, q->upto, q->limit, &q->rows, &q->err);
    return NULL;
}

int cdc_snap_window_read(cdc_snapread *const *r, size_t nr, const cdc_snap_table *t,
                         const char *const *after, size_t chunk, cdc_snap_rows **ret, size_t *nrows,
                         bool *more, cdc_error *err)
{
    *ret = NULL;
    *nrows = 0;
    *more = false;
    if (nr > CDC_SNAP_MAX_READERS)
        nr = CDC_SNAP_MAX_READERS;
    char **cut = NULL;
    size_t ncut = 0;
    if (nr > 1) {
        int brc = cdc_snapread_bounds(r[0], t, after, chunk, nr - 1, &cut, &ncut, err);
        if (brc < 0)
            return brc;
    }
    /* range k: above cut k - 1 (after for the first), at or below cut k (none for the
     * last); a range before the last holds chunk rows as cut, and may hold up to twice
     * that before the window ends in it */
    range_read q[CDC_SNAP_MAX_READERS] = {0};
    size_t nq = ncut + 1;
    for (size_t k = 0; k < nq; k++) {
        q[k].r = r[k];
        q[k].t = t;
        q[k].after = k == 0 ? after : (const char *const *)&cut[(k - 1) * t->nchunk];
        q[k].upto = k < ncut ? (const char *const *)&cut[k * t->nchunk] : NULL;
        q[k].limit = k < ncut ? 2 * chunk + 1 : chunk + 1;
    }
    for (size_t k = 1; k < nq; k++)
        q[k].started = pthread_create(&q[k].thread, NULL, range_main, &q[k]) == 0;
    range_main(&q[0]);
    for (size_t k = 1; k < nq; k++) {
        if (q[k].started)
            pthread_join(q[k].thread, NULL);
        else
            range_main(&q[k]); /* no thread: read it here */
    }
    int rc = 0;
    for (size_t k = 0; k < nq && rc == 0; k++)
        if (q[k].rc < 0) {
            rc = q[k].rc;
            if (err)
                *err = q[k].err;
        }
    cdc_snap_rows *all = NULL;
    size_t n = 0;
    bool cut_short = false;
    for (size_t k = 0; k < nq; k++) {
        cdc_snap_rows *rows = q[k].rows;
        q[k].rows = NULL;
        if (rc < 0 || cut_short) {
            cdc_snap_rows_free(rows);
            continue;
        }
        size_t got = cdc_snap_rows_count(rows);
        size_t want = q[k].limit - 1;
        if (got > want) {
            /* more rows than the range may give the window: it ends at its last one */
            cut_short = true;
            *more = true;
        }
        size_t keep = got > want ? want : got;
        n += keep;
        if (all == NULL) {
            all = rows;
            continue;
        }
        /* the first range's rows hold the first rows: join the others after them */
        if (cdc_snap_rows_append(all, rows, keep) < 0)
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    cdc_snap_bounds_free(cut, nr > 1 ? (nr - 1) * t->nchunk : 0);
    if (rc < 0) {
        cdc_snap_rows_free(all);
        *more = false;
        return rc;
    }
    *ret = all;
    *nrows = n;
    return 0;
}
