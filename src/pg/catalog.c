/* catalog.c - primary key lookups over an ordinary SQL session */
#include "pgcdc/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"

struct cdc_catalog {
    PGconn *conn;
};

int cdc_catalog_open(const char *dsn, cdc_catalog **ret, cdc_error *err)
{
    cdc_catalog *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc = cdc_pg_connect(dsn, CDC_PG_NORMAL, &c->conn, err);
    if (rc < 0) {
        free(c);
        return rc;
    }
    *ret = c;
    return 0;
}

/*
 * The non-NULL values of column col of res as a NULL-terminated array in one
 * allocation (caller free()s it) in *ret; clears res either way.
 */
static int column_strings(PGresult *res, int col, char ***ret, cdc_error *err)
{
    int n = PQntuples(res);
    size_t bytes = sizeof(char *) * (size_t)(n + 1);
    for (int i = 0; i < n; i++)
        if (!PQgetisnull(res, i, col))
            bytes += strlen(PQgetvalue(res, i, col)) + 1;
    char **arr = malloc(bytes);
    if (arr == NULL) {
        PQclear(res);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    char *w = (char *)(arr + n + 1);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, col))
            continue;
        size_t len = strlen(PQgetvalue(res, i, col)) + 1;
        memcpy(w, PQgetvalue(res, i, col), len);
        arr[k++] = w;
        w += len;
    }
    arr[k] = NULL;
    PQclear(res);
    *ret = arr;
    return 0;
}

int cdc_catalog_primary_key(cdc_catalog *c, uint32_t relid, char ***ret_names, cdc_error *err)
{
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", relid);
    const char *params[1] = {oid};
    PGresult *res =
        cdc_pg_execp(c->conn, "look up a primary key",
                     "SELECT a.attname FROM pg_catalog.pg_index i "
                     "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
                     "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
                     "AND a.attnum = k.attnum "
                     "WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.n",
                     1, params, err);
    if (res == NULL)
        return CDC_EPG;
    return column_strings(res, 0, ret_names, err);
}

int cdc_catalog_publication_tables(cdc_catalog *c, const char *publication, char ***ret,
                                   cdc_error *err)
{
    const char *params[1] = {publication};
    PGresult *res = cdc_pg_execp(
        c->conn, "list the publication's tables",
        "SELECT p.pubname, t.schemaname || '.' || t.tablename FROM pg_catalog.pg_publication p "
        "LEFT JOIN pg_catalog.pg_publication_tables t ON t.pubname = p.pubname "
        "WHERE p.pubname = $1 ORDER BY 2",
        1, params, err);
    if (res == NULL)
        return CDC_EPG;
    if (PQntuples(res) == 0) {
        PQclear(res);
        cdc_err(err, CDC_ENOTFOUND, "publication \"%s\" does not exist", publication);
        cdc_err_hint(err, "create it with \"pgcdc setup\" (or sql/setup.sql)");
        return CDC_ENOTFOUND;
    }
    return column_strings(res, 1, ret, err); /* NULL: a publication with no tables yet */
}

void cdc_catalog_close(cdc_catalog *c)
{
    if (c == NULL)
        return;
    PQfinish(c->conn);
    free(c);
}
