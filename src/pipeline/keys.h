/* keys.h - what pgoutput does not say about a table: primary-key keying for REPLICA IDENTITY
 * FULL tables (pgoutput marks every column), and the columns' defaults */
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
    bool warned;                      /* the no-primary-key warning was logged */
    char **pk;                        /* primary key column names (one allocation) */
    const cdc_event_column *src_cols; /* the decoder's columns the mask was built for */
    size_t ncols;
    cdc_event_column *cols; /* columns with is_key = primary key membership */
    uint16_t *keys;         /* primary key column indexes */
    size_t nkeys;           /* 0: no primary key (null Kafka key) */

    /* fills for key-only before images (cdc_keymap_fill) */
    bool fills_stale;        /* look the defaults up again */
    cdc_catalog_fill *fills; /* per catalog column (one allocation) */
    size_t nfills;
    const cdc_event_column *fsrc_cols; /* the decoder's columns fcols was built for */
    size_t fncols;
    cdc_event_column *fcols; /* the decoder's columns with fill set */

    /* domains' type modifiers (cdc_keymap_domains) */
    bool domains_stale;          /* look them up again */
    cdc_catalog_typmod *typmods; /* columns of a domain with a modifier */
    size_t ntypmods;
    const cdc_event_column *dsrc_cols; /* the decoder's columns dcols was built for */
    size_t dncols;
    cdc_event_column *dcols; /* the decoder's columns with the domains' typmods */
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
/*
 * Fill *ret with ev whose columns carry their fill (cdc_event_column.fill): what a
 * key-only before image (a delete or key change under REPLICA IDENTITY DEFAULT or
 * USING INDEX) holds for the columns it lacks, as Debezium writes them. Looked up once
 * per table and again after cdc_keymap_invalidate(); columns point into m.
 */
int cdc_keymap_fill(cdc_keymap *m, const cdc_event *ev, cdc_event *ret, cdc_error *err);
/*
 * Whether ev's table may have a column of a domain with a type modifier: a column of a
 * type pgoutput describes in a Type message and no typmod of its own (cheap, per event).
 */
bool cdc_keymap_may_have_domains(const cdc_event *ev);
/*
 * Fill *ret with ev whose columns of a domain over a type with a modifier (numeric(10,2),
 * timestamp(3)) carry that modifier, which pgoutput does not send, so that they are
 * encoded as Debezium encodes them. Looked up once per table and again after
 * cdc_keymap_invalidate(); columns point into m.
 */
int cdc_keymap_domains(cdc_keymap *m, const cdc_event *ev, cdc_event *ret, cdc_error *err);
/*
 * Trust no column array cached for relid: the next call rebuilds from the event's. The
 * caches are keyed by the address of the columns they were built from, which is only
 * sound for the decoder's (replaced only with a Relation message, which invalidates);
 * snapshot rows bring the snapshot's, freed and allocated again between chunks.
 */
void cdc_keymap_forget_columns(cdc_keymap *m, uint32_t relid);
/* A Relation message arrived for relid: its key (and defaults) may have changed. */
void cdc_keymap_invalidate(cdc_keymap *m, uint32_t relid);

/* Schemas seen: a Relation message's content per table, to log each change once. */
typedef struct cdc_schema_seen {
    uint32_t relid;
    uint64_t hash; /* of the Relation message after the relid */
} cdc_schema_seen;

typedef struct cdc_schemas {
    cdc_schema_seen *seen;
    size_t n, cap;
} cdc_schemas;

/*
 * Note a Relation message payload (type byte included). Logs "table ...
 * changed" when the same relid arrives with different content (columns,
 * types, name, replica identity), nothing for a repeat (sent again after a
 * reconnect or a cache invalidation).
 */
void cdc_schemas_note(cdc_schemas *s, const uint8_t *payload, size_t len);
void cdc_schemas_free(cdc_schemas *s);
/* Close the catalog session (a reconnect opens a new one). */
void cdc_keymap_close(cdc_keymap *m);
void cdc_keymap_free(cdc_keymap *m);

#endif
