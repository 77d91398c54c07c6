/* keys.h - primary-key keying for REPLICA IDENTITY FULL tables (pgoutput marks every column) */
#ifndef PGCDC_PIPELINE_KEYS_H
#define PGCDC_PIPELINE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/catalog.h"
#include "pgcdc/event.h"

typedef struct cdc_keymap_entry {
    uint32_t relid;
    bool stale;                       /* look the primary key up again */
    char **pk;                        /* primary key column names (one allocation) */
    const cdc_event_column *src_cols; /* the decoder's columns the mask was built for */
    size_t ncols;
    cdc_event_column *cols; /* columns with is_key = primary key membership */
    uint16_t *keys;         /* primary key column indexes */
    size_t nkeys;           /* 0: no primary key (null Kafka key) */
} cdc_keymap_entry;

typedef struct cdc_keymap {
    const char *dsn;           /* borrowed */
    cdc_catalog *catalog;      /* opened on first use */
    cdc_keymap_entry *entries; /* FULL tables seen */
    size_t n;
} cdc_keymap;

/*
 * Fill *ret with ev re-keyed by its table's primary key (columns and keys
 * point into m, valid until the next call for the same table). The primary
 * key is looked up once per table and again after cdc_keymap_invalidate().
 */
int cdc_keymap_apply(cdc_keymap *m, const cdc_event *ev, cdc_event *ret, cdc_error *err);
/* A Relation message arrived for relid: its key may have changed. */
void cdc_keymap_invalidate(cdc_keymap *m, uint32_t relid);
/* Close the catalog session (a reconnect opens a new one). */
void cdc_keymap_close(cdc_keymap *m);
void cdc_keymap_free(cdc_keymap *m);

#endif
