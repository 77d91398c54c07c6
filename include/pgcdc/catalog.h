/* catalog.h - catalog lookups the replication protocol does not answer (primary keys) */
#ifndef PGCDC_CATALOG_H
#define PGCDC_CATALOG_H

#include <stdint.h>

#include "pgcdc/error.h"

typedef struct cdc_catalog cdc_catalog;

/* Open an ordinary SQL session with dsn for lookups. */
int cdc_catalog_open(const char *dsn, cdc_catalog **ret, cdc_error *err);

/*
 * Primary key column names of table relid, in key order, as a
 * NULL-terminated array in one allocation (caller free()s it); an empty
 * array when the table has no primary key or no longer exists. CDC_EPG when
 * the query fails.
 */
int cdc_catalog_primary_key(cdc_catalog *c, uint32_t relid, char ***ret_names, cdc_error *err);

/* Close the session; NULL is fine. */
void cdc_catalog_close(cdc_catalog *c);

#endif
