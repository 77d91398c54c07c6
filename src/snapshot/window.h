/* window.h - a snapshot window's rows, read by one session or by several at once */
#ifndef PGCDC_SNAPSHOT_WINDOW_H
#define PGCDC_SNAPSHOT_WINDOW_H

#include <stdbool.h>
#include <stddef.h>

#include "pgcdc/error.h"
#include "pgcdc/snapread.h"

/* snapshot.max.threads at most. */
#define CDC_SNAP_MAX_READERS 16

/*
 * Read the next rows of t after after (NULL: from its start), in chunk key
 * order: with one session, one chunk (up to chunk rows); with nr sessions, up
 * to nr chunks, cut where cdc_snapread_bounds says and read each on its own
 * session at the same time (a range whose rows grew past twice a chunk since
 * it was cut ends the window there). *ret holds the rows joined, one part
 * per read, each with its snapshot; *nrows of them are the window's (*ret may
 * hold one more), *more when t has rows after them. Every read starts after
 * the call does and ends before it returns: the caller writes the window's
 * low watermark before and its high one after.
 */
int cdc_snap_window_read(cdc_snapread *const *r, size_t nr, const cdc_snap_table *t,
                         const char *const *after, size_t chunk, cdc_snap_rows **ret, size_t *nrows,
                         bool *more, cdc_error *err);

#endif
