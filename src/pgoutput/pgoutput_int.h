/* pgoutput_int.h - internals shared by the files of src/pgoutput: oid maps and cache entries */
#ifndef PGCDC_PGOUTPUT_INT_H
#define PGCDC_PGOUTPUT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "pgcdc/event.h"
#include "pgcdc/pgoutput.h"

/* An open-addressing map from a non-zero oid to an owned pointer. */
typedef struct cdc_pgo__map {
    uint32_t *keys; /* cap keys, 0 marks an empty slot */
    void **vals;    /* cap values, owned, freed with free() */
    size_t cap;     /* slots, a power of two or 0 */
    size_t n;       /* slots in use */
} cdc_pgo__map;

/* The value for key, or NULL. */
void *cdc_pgo__map_get(const cdc_pgo__map *m, uint32_t key);
/*
 * Store val (ownership passes to the map) under key (non-zero), freeing the
 * value it replaces. Returns 0, or CDC_ENOMEM leaving the map unchanged and
 * val still the caller's.
 */
int cdc_pgo__map_put(cdc_pgo__map *m, uint32_t key, void *val);
/* Free every value and the slots; the map is then empty and reusable. */
void cdc_pgo__map_clear(cdc_pgo__map *m);

/* A cached Relation, in one allocation (free() releases all of it). */
typedef struct cdc_pgo__rel {
    uint32_t relid;                /* pg_class oid */
    const char *schema;            /* namespace, "" for pg_catalog */
    const char *table;             /* relation name */
    cdc_event_replident replident; /* replica identity */
    uint16_t ncols;                /* columns */
    uint16_t nkeys;                /* replica identity columns */
    cdc_event_column *cols;        /* ncols descriptors */
    uint16_t *keys;                /* nkeys indexes into cols */
} cdc_pgo__rel;

/* A cached Type, in one allocation. */
typedef struct cdc_pgo__type {
    uint32_t oid;     /* pg_type oid */
    const char *name; /* "schema.name", or "name" for pg_catalog */
} cdc_pgo__type;

/*
 * Build a cache entry from a Relation message, naming the columns' types from
 * the type map. Returns a new entry (free with free()) or NULL when out of
 * memory.
 */
cdc_pgo__rel *cdc_pgo__rel_new(const cdc_pgo_relation *msg, const cdc_pgo__map *types);
/* Build a cache entry from a Type message; NULL when out of memory. */
cdc_pgo__type *cdc_pgo__type_new(const cdc_pgo_type *msg);

#endif
