/* catalog.h - lookups the replication protocol does not answer: primary keys, publications */
#ifndef PGCDC_CATALOG_H
#define PGCDC_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "pgcdc/error.h"

typedef struct cdc_catalog cdc_catalog;

/* Open an ordinary SQL session with dsn for lookups. */
int cdc_catalog_open(const char *dsn, cdc_catalog **ret, cdc_error *err);

/*
 * The key column names of table relid as Debezium keys a table whose replica
 * identity gives none or every column (FULL, or no key), in key order: its
 * primary key, else the first (by name) valid unique index without a predicate
 * or expressions whose columns are all NOT NULL; INCLUDE columns are not key
 * columns. A NULL-terminated array in one allocation (caller free()s it); an
 * empty array when the table has neither or no longer exists. CDC_EPG when the
 * query fails.
 */
int cdc_catalog_primary_key(cdc_catalog *c, uint32_t relid, char ***ret_names, cdc_error *err);

/* What a column holds in an image that lacks it (see cdc_catalog_fills). */
typedef struct cdc_catalog_fill {
    const char *column; /* column name */
    const char *text;   /* the value's text form, as pgoutput would send it; NULL: null */
} cdc_catalog_fill;

/*
 * For each column of table relid, the value Debezium writes for it in a row image
 * that does not carry it (the before image of a delete under REPLICA IDENTITY
 * DEFAULT or USING INDEX holds the identity columns alone): the column's default
 * when that is a constant (a literal, maybe cast) of a type whose defaults Debezium
 * reads (numbers, booleans, strings, dates and times, intervals, bit strings; never a
 * domain), else for a NOT NULL column its type's zero ("0", "", false, the epoch, an
 * empty array), else null. Defaults that are not constants (now(), nextval()) are
 * never evaluated; a literal is only read by its base type's input function. One allocation
 * in *ret (free() it), *n entries in column order; none when the table no longer
 * exists. CDC_EPG when the query fails.
 */
int cdc_catalog_fills(cdc_catalog *c, uint32_t relid, cdc_catalog_fill **ret, size_t *n,
                      cdc_error *err);

/* A column whose type is a domain with a type modifier (see cdc_catalog_domain_typmods). */
typedef struct cdc_catalog_typmod {
    const char *column; /* column name */
    int32_t typmod;     /* the domain's (or its base domain's) typmod */
} cdc_catalog_typmod;

/*
 * The columns of table relid whose type is a domain over a type with a modifier
 * (CREATE DOMAIN price AS numeric(10,2)), with that modifier: pgoutput sends such a
 * column's own atttypmod, which is -1. One allocation in *ret (free() it), *n entries.
 * CDC_EPG when the query fails.
 */
int cdc_catalog_domain_typmods(cdc_catalog *c, uint32_t relid, cdc_catalog_typmod **ret, size_t *n,
                               cdc_error *err);

/*
 * Tables of the publication as "schema.table" strings (a NULL-terminated
 * array in one allocation: free() it). CDC_ENOTFOUND when the publication
 * does not exist.
 *
 * This runs on the ordinary session, never on the replication connection:
 * from PostgreSQL 16 on, a walsender that has run SQL touching a published
 * table before START_REPLICATION decodes that table's older changes with the
 * table as it is now (a later rename, new columns, and values read with a
 * later column type).
 */
int cdc_catalog_publication_tables(cdc_catalog *c, const char *publication, char ***ret,
                                   cdc_error *err);

/* Close the session; NULL is fine. */
void cdc_catalog_close(cdc_catalog *c);

#endif
