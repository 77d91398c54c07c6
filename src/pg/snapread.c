/* snapread.c - snapshot reads over an ordinary SQL session: tables, watermarks, chunks */
#include "pgcdc/snapread.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "pgcdc/buf.h"

struct cdc_snapread {
    PGconn *conn;
};

/* Rows of one read, in one transaction. */
typedef struct rows_part {
    PGresult *res;
    size_t start, n; /* rows start.. start + n - 1 of the whole */
    uint64_t xmin, xmax;
    uint32_t *xip;
    size_t nxip;
    uint32_t *committed; /* of xip, committed by the end of the read */
    size_t ncommitted;
} rows_part;

/* One read, or several joined (cdc_snap_rows_append): parts in row order. */
struct cdc_snap_rows {
    size_t n;
    size_t nparts;
    rows_part *parts;
};

/* Rows with one part and no row yet; NULL when out of memory. */
static cdc_snap_rows *rows_new(void)
{
    cdc_snap_rows *rows = calloc(1, sizeof(*rows));
    if (rows == NULL)
        return NULL;
    if ((rows->parts = calloc(1, sizeof(*rows->parts))) == NULL) {
        free(rows);
        return NULL;
    }
    rows->nparts = 1;
    return rows;
}

int cdc_snapread_open(const char *dsn, cdc_snapread **ret, cdc_error *err)
{
    cdc_snapread *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc = cdc_pg_connect(dsn, CDC_PG_NORMAL, &r->conn, err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *ret = r;
    return 0;
}

void cdc_snapread_close(cdc_snapread *r)
{
    if (r == NULL)
        return;
    PQfinish(r->conn);
    free(r);
}

int cdc_snapread_server_version(const cdc_snapread *r)
{
    return PQserverVersion(r->conn);
}

void cdc_snap_tables_free(cdc_snap_table *t, size_t n)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < t[i].ncols; c++) {
            free((char *)t[i].cols[c].name);
            free((char *)t[i].cols[c].type_name);
        }
        free(t[i].cols);
        free(t[i].keys);
        free(t[i].chunk);
        free(t[i].schema);
        free(t[i].table);
        free(t[i].rowfilter);
    }
    free(t);
}

/*
 * The columns pgoutput sends for a table: not dropped, not generated, in the
 * publication's column list when it has one. The type name is what its Type
 * message says for a type that is not built in (oid 10000 and up): the base
 * type of a domain, "schema.name", without the schema for pg_catalog. Key
 * flags: the replica identity (primary key for DEFAULT and FULL, see
 * pipeline/keys.c); chunk order: the primary key or replica identity index.
 */
static const char columns_sql[] =
    "WITH RECURSIVE cols AS ("
    "  SELECT a.attnum, a.attname, a.atttypid, a.atttypmod FROM pg_catalog.pg_attribute a"
    "  WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped"
    "    AND (($2::text[] IS NULL AND a.attgenerated = '') OR a.attname = ANY($2::text[]))),"
    " base(attnum, oid, depth) AS ("
    "  SELECT attnum, atttypid, 0 FROM cols"
    "  UNION ALL SELECT b.attnum, t.typbasetype, b.depth + 1 FROM base b"
    "  JOIN pg_catalog.pg_type t ON t.oid = b.oid WHERE t.typtype = 'd'),"
    " idx AS ("
    "  SELECT i.indkey::int2[] AS k, i.indnkeyatts AS nk, i.indisprimary AS pk,"
    "         i.indisreplident AS ri"
    "  FROM pg_catalog.pg_index i WHERE i.indrelid = $1::oid"
    "    AND (i.indisprimary OR i.indisreplident))"
    "SELECT c.attname, c.atttypid, c.atttypmod,"
    "  CASE WHEN c.atttypid >= 10000 THEN ("
    "    SELECT CASE WHEN n.nspname = 'pg_catalog' THEN '' ELSE n.nspname || '.' END"
    "      || t.typname FROM pg_catalog.pg_type t"
    "    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
    "    WHERE t.oid = (SELECT b.oid FROM base b WHERE b.attnum = c.attnum"
    "                   ORDER BY b.depth DESC LIMIT 1)) END,"
    "  (SELECT u.n FROM idx, unnest(idx.k) WITH ORDINALITY u(a, n) WHERE idx.pk"
    "    AND u.a = c.attnum AND u.n <= idx.nk),"
    "  (SELECT u.n FROM idx, unnest(idx.k) WITH ORDINALITY u(a, n) WHERE idx.ri"
    "    AND u.a = c.attnum AND u.n <= idx.nk)"
    " FROM cols c ORDER BY c.attnum";

static int load_columns(cdc_snapread *r, cdc_snap_table *t, const char *attnames, cdc_error *err)
{
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", t->relid);
    const char *params[2] = {oid, attnames};
    PGresult *res =
        cdc_pg_execp(r->conn, "read a published table's columns", columns_sql, 2, params, err);
    if (res == NULL)
        return CDC_EPG;
    size_t n = (size_t)PQntuples(res);
    t->cols = calloc(n ? n : 1, sizeof(*t->cols));
    t->keys = calloc(n ? n : 1, sizeof(*t->keys));
    t->chunk = calloc(n ? n : 1, sizeof(*t->chunk));
    int *pkpos = calloc(n ? n : 1, sizeof(int)), *ripos = calloc(n ? n : 1, sizeof(int));
    int rc = 0;
    if (!t->cols || !t->keys || !t->chunk || !pkpos || !ripos) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        goto out;
    }
    size_t npk = 0, nri = 0;
    for (size_t i = 0; i < n; i++) {
        cdc_event_column *c = &t->cols[i];
        t->ncols = i + 1;
        c->name = strdup(PQgetvalue(res, (int)i, 0));
        c->type_oid = (uint32_t)strtoul(PQgetvalue(res, (int)i, 1), NULL, 10);
        c->typmod = (int32_t)strtol(PQgetvalue(res, (int)i, 2), NULL, 10);
        c->type_name = PQgetisnull(res, (int)i, 3) ? NULL : strdup(PQgetvalue(res, (int)i, 3));
        if (c->name == NULL || (!PQgetisnull(res, (int)i, 3) && c->type_name == NULL)) {
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            goto out;
        }
        pkpos[i] = PQgetisnull(res, (int)i, 4) ? 0 : atoi(PQgetvalue(res, (int)i, 4));
        ripos[i] = PQgetisnull(res, (int)i, 5) ? 0 : atoi(PQgetvalue(res, (int)i, 5));
        npk += pkpos[i] > 0;
        nri += ripos[i] > 0;
    }
    /* the chunk key: the replica identity index for INDEX, else the primary key */
    int *order = t->replident == 'i' && nri > 0 ? ripos : pkpos;
    size_t norder = t->replident == 'i' && nri > 0 ? nri : npk;
    for (size_t k = 1; k <= norder; k++)
        for (size_t i = 0; i < n; i++)
            if (order[i] == (int)k)
                t->chunk[t->nchunk++] = (uint16_t)i;
    if (t->nchunk != norder)
        t->nchunk = 0; /* a key column left out of the column list */
    /* the Kafka key, as the stream keys this table */
    int *kk = t->replident == 'i' ? ripos : t->replident == 'n' ? NULL : pkpos;
    for (size_t i = 0; kk && i < n; i++)
        if (kk[i] > 0) {
            t->cols[i].is_key = true;
            t->keys[t->nkeys++] = (uint16_t)i;
        }
out:
    free(pkpos);
    free(ripos);
    PQclear(res);
    return rc;
}

static int list_tables(cdc_snapread *r, const char *publication, uint32_t relid,
                       cdc_snap_table **ret, size_t *n, cdc_error *err);

int cdc_snapread_tables(cdc_snapread *r, const char *publication, cdc_snap_table **ret, size_t *n,
                        cdc_error *err)
{
    return list_tables(r, publication, 0, ret, n, err);
}

int cdc_snapread_table(cdc_snapread *r, const char *publication, uint32_t relid,
                       cdc_snap_table *ret, cdc_error *err)
{
    cdc_snap_table *t = NULL;
    size_t n = 0;
    int rc = list_tables(r, publication, relid, &t, &n, err);
    if (rc < 0)
        return rc;
    if (n == 0) {
        free(t);
        return CDC_ENOTFOUND;
    }
    *ret = t[0];
    free(t);
    return 0;
}

/* The publication's tables (relid 0), or the one table relid of it. */
static int list_tables(cdc_snapread *r, const char *publication, uint32_t relid,
                       cdc_snap_table **ret, size_t *n, cdc_error *err)
{
    bool v15 = PQserverVersion(r->conn) >= 150000;
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT c.oid, n.nspname, c.relname, c.relreplident, c.relkind = 'p',"
             " c.reltuples::bigint, %s, %s, p.pubname"
             " FROM pg_catalog.pg_publication p"
             " LEFT JOIN pg_catalog.pg_publication_tables pt ON pt.pubname = p.pubname"
             " LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname"
             " LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
             "  AND c.relname = pt.tablename"
             " WHERE p.pubname = $1 AND ($2::oid = 0 OR c.oid = $2::oid) ORDER BY c.oid",
             v15 ? "pt.attnames::text" : "NULL::text", v15 ? "pt.rowfilter" : "NULL::text");
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", relid);
    const char *params[2] = {publication, oid};
    PGresult *res = cdc_pg_execp(r->conn, "list the publication's tables", sql, 2, params, err);
    if (res == NULL)
        return CDC_EPG;
    if (PQntuples(res) == 0 && relid != 0) {
        PQclear(res); /* not (or no longer) published */
        *ret = calloc(1, sizeof(**ret));
        *n = 0;
        return *ret ? 0 : cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        cdc_err(err, CDC_ENOTFOUND, "publication \"%s\" does not exist", publication);
        cdc_err_hint(err, "create it with \"pgcdc setup\" (or sql/setup.sql)");
        return CDC_ENOTFOUND;
    }
    size_t rows = (size_t)PQntuples(res);
    cdc_snap_table *t = calloc(rows, sizeof(*t));
    if (t == NULL) {
        PQclear(res);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < rows && rc == 0; i++) {
        if (PQgetisnull(res, (int)i, 0))
            continue; /* a publication with no tables */
        cdc_snap_table *x = &t[k++];
        x->relid = (uint32_t)strtoul(PQgetvalue(res, (int)i, 0), NULL, 10);
        x->schema = strdup(PQgetvalue(res, (int)i, 1));
        x->table = strdup(PQgetvalue(res, (int)i, 2));
        x->replident = PQgetvalue(res, (int)i, 3)[0];
        x->partitioned = PQgetvalue(res, (int)i, 4)[0] == 't';
        x->est_rows = strtoll(PQgetvalue(res, (int)i, 5), NULL, 10);
        if (!PQgetisnull(res, (int)i, 7))
            x->rowfilter = strdup(PQgetvalue(res, (int)i, 7));
        if (!x->schema || !x->table || (!PQgetisnull(res, (int)i, 7) && !x->rowfilter)) {
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            break;
        }
        rc = load_columns(r, x, PQgetisnull(res, (int)i, 6) ? NULL : PQgetvalue(res, (int)i, 6),
                          err);
    }
    PQclear(res);
    if (rc < 0) {
        cdc_snap_tables_free(t, k);
        return rc;
    }
    *ret = t;
    *n = k;
    return 0;
}

/*
 * The walsender sends only WAL that is flushed, and a non-transactional
 * message does not flush (before PostgreSQL 17's flush argument): left to the
 * WAL writer, each watermark would wait up to wal_writer_delay. A transaction
 * that takes an xid after the message and commits with synchronous_commit =
 * local flushes the WAL past it. It has no changes, so the stream shows
 * nothing of it.
 */
int cdc_snapread_table_ids(cdc_snapread *r, const char *publication, uint32_t **ret, size_t *n,
                           cdc_error *err)
{
    const char *params[1] = {publication};
    PGresult *res = cdc_pg_execp(
        r->conn, "list the publication's tables",
        "SELECT c.oid FROM pg_catalog.pg_publication_tables pt"
        " JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname"
        " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename"
        " WHERE pt.pubname = $1 AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
        "  WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident))"
        " ORDER BY c.oid",
        1, params, err);
    if (res == NULL)
        return CDC_EPG;
    size_t k = (size_t)PQntuples(res);
    uint32_t *ids = calloc(k ? k : 1, sizeof(*ids));
    if (ids == NULL) {
        PQclear(res);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < k; i++)
        ids[i] = (uint32_t)strtoul(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    *ret = ids;
    *n = k;
    return 0;
}

int cdc_snapread_mark(cdc_snapread *r, const char *content, cdc_lsn *ret, cdc_error *err)
{
    return cdc_snapread_message(r, CDC_SNAPSHOT_PREFIX, content, ret, err);
}

int cdc_snapread_message(cdc_snapread *r, const char *prefix, const char *content, cdc_lsn *ret,
                         cdc_error *err)
{
    const char *params[2] = {prefix, content};
    PGresult *res = cdc_pg_exec(r->conn, "begin a snapshot watermark",
                                "BEGIN; SET LOCAL synchronous_commit = local", err);
    if (res == NULL)
        return CDC_EPG;
    PQclear(res);
    res = cdc_pg_execp(r->conn, "write a snapshot watermark",
                       "SELECT pg_catalog.pg_logical_emit_message(false, $1, $2)", 2, params, err);
    if (res != NULL) {
        PGresult *x = cdc_pg_exec(r->conn, "flush a snapshot watermark",
                                  "SELECT pg_catalog.txid_current()", err);
        PGresult *c = x ? cdc_pg_exec(r->conn, "flush a snapshot watermark", "COMMIT", err) : NULL;
        if (c == NULL) {
            PQclear(res);
            res = NULL;
        }
        PQclear(x);
        PQclear(c);
    }
    if (res == NULL) {
        bool denied = strcmp(cdc_pg_last_sqlstate(), "42501") == 0;
        PQclear(PQexec(r->conn, "ROLLBACK"));
        if (denied) {
            /* refused again on every reconnect: stop */
            cdc_err_hint(err, "the role in source.dsn needs EXECUTE on pg_logical_emit_message "
                              "(GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, "
                              "text, text) TO ...), or set snapshot.mode = no_data");
            if (err)
                err->code = CDC_EPGSETUP;
            return CDC_EPGSETUP;
        }
        return CDC_EPG;
    }
    int rc = cdc_lsn_parse(PQgetvalue(res, 0, 0), ret);
    PQclear(res);
    if (rc < 0)
        return cdc_err(err, CDC_EPROTO, "the server returned an unreadable LSN for a watermark");
    return 0;
}

static int append_ident(cdc_snapread *r, cdc_buf *b, const char *name)
{
    char *q = cdc_pg_quote_ident(r->conn, name);
    if (q == NULL)
        return CDC_ENOMEM;
    int rc = cdc_buf_append(b, q, strlen(q));
    free(q);
    return rc;
}

/* A read refused for want of privileges is refused again on every reconnect: make err
 * CDC_EPGSETUP (pgcdc stops) with the GRANT that fixes it. */
static bool denied(const cdc_snap_table *t, cdc_error *err)
{
    if (strcmp(cdc_pg_last_sqlstate(), "42501") != 0)
        return false;
    if (err) {
        err->code = CDC_EPGSETUP;
        cdc_err_hint(err,
                     "the role in source.dsn must be able to read every published table "
                     "for a snapshot: GRANT SELECT ON \"%s\".\"%s\" TO ...; or set "
                     "snapshot.mode = no_data",
                     t->schema, t->table);
    }
    return true;
}

/* Parse pg_snapshot text "xmin:xmax:xip,xip,...". */
static int parse_snapshot(rows_part *rows, const char *s)
{
    char *end;
    rows->xmin = strtoull(s, &end, 10);
    if (*end != ':')
        return -1;
    rows->xmax = strtoull(end + 1, &end, 10);
    if (*end != ':')
        return -1;
    const char *p = end + 1;
    size_t cap = 1;
    for (const char *q = p; *q; q++)
        cap += *q == ',';
    rows->xip = calloc(cap, sizeof(*rows->xip));
    if (rows->xip == NULL)
        return -1;
    while (*p) {
        uint64_t x = strtoull(p, &end, 10);
        if (end == p)
            return -1;
        rows->xip[rows->nxip++] = (uint32_t)x;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* The chunk key columns of t, "a, b". */
static int key_list(cdc_snapread *r, const cdc_snap_table *t, cdc_buf *sql)
{
    int rc = 0;
    for (size_t k = 0; k < t->nchunk; k++) {
        if (k)
            rc |= cdc_buf_puts(sql, ", ");
        rc |= append_ident(r, sql, t->cols[t->chunk[k]].name);
    }
    return rc;
}

/* " WHERE" / " AND" "(a, b) op ($first, $first+1)" */
static int key_cond(cdc_snapread *r, const cdc_snap_table *t, bool *where, const char *op,
                    size_t first, cdc_buf *sql)
{
    int rc = cdc_buf_puts(sql, *where ? " AND (" : " WHERE (");
    *where = true;
    rc |= key_list(r, t, sql);
    rc |= cdc_buf_printf(sql, ") %s (", op);
    for (size_t k = 0; k < t->nchunk; k++)
        rc |= cdc_buf_printf(sql, "%s$%zu", k ? ", " : "", first + k);
    rc |= cdc_buf_puts(sql, ")");
    return rc;
}

/* " FROM [ONLY] t" and its conditions: chunk key above the values $1.. (after), at or below
 * the next ones (upto), the publication's row filter. */
static int from_where(cdc_snapread *r, const cdc_snap_table *t, bool after, bool upto, cdc_buf *sql)
{
    int rc = cdc_buf_puts(sql, t->partitioned ? " FROM " : " FROM ONLY ");
    rc |= append_ident(r, sql, t->schema);
    rc |= cdc_buf_puts(sql, ".");
    rc |= append_ident(r, sql, t->table);
    bool where = false;
    if (after && t->nchunk > 0)
        rc |= key_cond(r, t, &where, ">", 1, sql);
    if (upto && t->nchunk > 0)
        rc |= key_cond(r, t, &where, "<=", after ? t->nchunk + 1 : 1, sql);
    if (t->rowfilter) {
        rc |= cdc_buf_puts(sql, where ? " AND (" : " WHERE (");
        rc |= cdc_buf_puts(sql, t->rowfilter);
        rc |= cdc_buf_puts(sql, ")");
    }
    return rc;
}

/* SELECT of t's published columns and rows (from_where), in chunk key order, up to limit
 * rows (when the table has a chunk key). */
static int select_sql(cdc_snapread *r, const cdc_snap_table *t, bool after, bool upto, size_t limit,
                      cdc_buf *out)
{
    cdc_buf sql = {0};
    int rc = 0;
    rc |= cdc_buf_puts(&sql, "SELECT ");
    for (size_t i = 0; i < t->ncols && rc == 0; i++) {
        if (i)
            rc |= cdc_buf_puts(&sql, ", ");
        rc |= append_ident(r, &sql, t->cols[i].name);
    }
    if (t->ncols == 0)
        rc |= cdc_buf_puts(&sql, "NULL");
    rc |= from_where(r, t, after, upto, &sql);
    if (t->nchunk > 0) {
        rc |= cdc_buf_puts(&sql, " ORDER BY ");
        rc |= key_list(r, t, &sql);
        rc |= cdc_buf_printf(&sql, " LIMIT %zu", limit);
    }
    if (rc != 0 || cdc_buf_append(&sql, "", 1) < 0) {
        cdc_buf_free(&sql);
        return -1;
    }
    *out = sql;
    return 0;
}

/* Which of the snapshot's running transactions the server already marks committed (inside
 * the read's transaction, after its rows are read). */
static int committed_xip(cdc_snapread *r, rows_part *rows, cdc_error *err)
{
    if (rows->nxip == 0)
        return 0;
    PGresult *res = cdc_pg_exec(
        r->conn, "check the snapshot's running transactions",
        "SELECT x::text FROM pg_catalog.pg_snapshot_xip(pg_catalog.pg_current_snapshot()) AS x "
        "WHERE pg_catalog.pg_xact_status(x) = 'committed'",
        err);
    if (res == NULL)
        return CDC_EPG;
    size_t n = (size_t)PQntuples(res);
    rows->committed = calloc(n ? n : 1, sizeof(*rows->committed));
    if (rows->committed == NULL) {
        PQclear(res);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        rows->committed[rows->ncommitted++] =
            (uint32_t)strtoull(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/* BEGIN ISOLATION LEVEL REPEATABLE READ and the snapshot its first statement takes. */
static int begin_read(cdc_snapread *r, rows_part *rows, cdc_error *err)
{
    PGresult *res = cdc_pg_exec(r->conn, "begin a snapshot read",
                                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err);
    if (res == NULL)
        return CDC_EPG;
    PQclear(res);
    if ((res = cdc_pg_exec(r->conn, "read the snapshot of a snapshot read",
                           "SELECT pg_catalog.pg_current_snapshot()::text", err)) == NULL)
        return CDC_EPG;
    if (parse_snapshot(rows, PQgetvalue(res, 0, 0)) < 0) {
        PQclear(res);
        return cdc_err(err, CDC_EPROTO, "unreadable pg_current_snapshot() from the server");
    }
    PQclear(res);
    return 0;
}

int cdc_snapread_chunk(cdc_snapread *r, const cdc_snap_table *t, const char *const *after,
                       const char *const *upto, size_t limit, cdc_snap_rows **ret, cdc_error *err)
{
    cdc_buf sql = {0};
    if (select_sql(r, t, after != NULL, upto != NULL, limit, &sql) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    cdc_snap_rows *rows = rows_new();
    const char **params = calloc(2 * t->nchunk + 1, sizeof(*params));
    if (rows == NULL || params == NULL) {
        free(params);
        cdc_snap_rows_free(rows);
        cdc_buf_free(&sql);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    int np = 0;
    for (size_t k = 0; after && k < t->nchunk; k++)
        params[np++] = after[k];
    for (size_t k = 0; upto && k < t->nchunk; k++)
        params[np++] = upto[k];
    rows_part *part = &rows->parts[0];
    int rc = CDC_EPG;
    char what[600];
    snprintf(what, sizeof(what), "read a snapshot chunk of \"%s.%s\"", t->schema, t->table);
    /* The snapshot is taken by the transaction's first statement and kept to its end. */
    PGresult *res;
    if (begin_read(r, part, err) < 0)
        goto fail;
    part->res = cdc_pg_execp(r->conn, what, (const char *)sql.data, np, params, err);
    if (part->res == NULL) {
        if (denied(t, err))
            rc = CDC_EPGSETUP;
        goto fail;
    }
    part->n = rows->n = (size_t)PQntuples(part->res);
    if (committed_xip(r, part, err) < 0)
        goto fail;
    if ((res = cdc_pg_exec(r->conn, "end a snapshot chunk", "COMMIT", err)) == NULL)
        goto fail;
    PQclear(res);
    cdc_buf_free(&sql);
    free(params);
    *ret = rows;
    return 0;
fail:
    PQclear(PQexec(r->conn, "ROLLBACK"));
    cdc_buf_free(&sql);
    free(params);
    cdc_snap_rows_free(rows);
    return rc;
}

int cdc_snapread_has_rows(cdc_snapread *r, const cdc_snap_table *t, bool *ret, cdc_error *err)
{
    cdc_buf sql = {0};
    int rc = cdc_buf_puts(&sql, "SELECT EXISTS (SELECT 1");
    rc |= from_where(r, t, false, false, &sql);
    rc |= cdc_buf_puts(&sql, ")");
    if (rc != 0 || cdc_buf_append(&sql, "", 1) < 0) {
        cdc_buf_free(&sql);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    char what[600];
    snprintf(what, sizeof(what), "look for rows in \"%s.%s\"", t->schema, t->table);
    PGresult *res = cdc_pg_exec(r->conn, what, (const char *)sql.data, err);
    cdc_buf_free(&sql);
    if (res == NULL)
        return denied(t, err) ? CDC_EPGSETUP : CDC_EPG;
    *ret = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

int cdc_snapread_bounds(cdc_snapread *r, const cdc_snap_table *t, const char *const *after,
                        size_t step, size_t nmax, char ***ret, size_t *n, cdc_error *err)
{
    *ret = NULL;
    *n = 0;
    if (t->nchunk == 0 || step == 0 || nmax == 0)
        return 0;
    /* the step-th key after the last cut (after, at first): an index-only scan of the key,
     * in a statement of its own per cut */
    cdc_buf first = {0}, next = {0};
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        cdc_buf *sql = k ? &next : &first;
        rc |= cdc_buf_puts(sql, "SELECT ");
        rc |= key_list(r, t, sql);
        rc |= from_where(r, t, k == 1 || after != NULL, false, sql);
        rc |= cdc_buf_puts(sql, " ORDER BY ");
        rc |= key_list(r, t, sql);
        rc |= cdc_buf_printf(sql, " OFFSET %zu LIMIT 1", step - 1);
        if (cdc_buf_append(sql, "", 1) < 0)
            rc = -1;
    }
    char **v = calloc(nmax * t->nchunk + 1, sizeof(*v));
    if (rc != 0 || v == NULL) {
        cdc_buf_free(&first);
        cdc_buf_free(&next);
        free(v);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    char what[600];
    snprintf(what, sizeof(what), "split a snapshot chunk of \"%s.%s\"", t->schema, t->table);
    size_t got = 0;
    rc = 0;
    while (got < nmax && rc == 0) {
        const char *const *from = got ? (const char *const *)&v[(got - 1) * t->nchunk] : after;
        const cdc_buf *sql = got ? &next : &first;
        PGresult *res = cdc_pg_execp(r->conn, what, (const char *)sql->data,
                                     from ? (int)t->nchunk : 0, from, err);
        if (res == NULL) {
            rc = denied(t, err) ? CDC_EPGSETUP : CDC_EPG;
            break;
        }
        bool row = PQntuples(res) == 1;
        for (size_t k = 0; row && k < t->nchunk; k++)
            row = !PQgetisnull(res, 0, (int)k); /* (a key has no NULL) */
        for (size_t k = 0; row && k < t->nchunk; k++)
            if ((v[got * t->nchunk + k] = strdup(PQgetvalue(res, 0, (int)k))) == NULL)
                rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        PQclear(res);
        if (!row || rc < 0)
            break; /* fewer than step rows left: no more cuts */
        got++;
    }
    cdc_buf_free(&first);
    cdc_buf_free(&next);
    if (rc < 0) {
        cdc_snap_bounds_free(v, nmax * t->nchunk);
        return rc;
    }
    *ret = v;
    *n = got;
    return 0;
}

void cdc_snap_bounds_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int cdc_snapread_pass_begin(cdc_snapread *r, const cdc_snap_table *t, cdc_snap_rows **ret,
                            cdc_error *err)
{
    cdc_buf sql = {0};
    if (cdc_buf_puts(&sql, "DECLARE pgcdc_pass NO SCROLL CURSOR FOR ") < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    cdc_buf sel = {0};
    if (select_sql(r, t, false, false, 0, &sel) < 0 ||
        cdc_buf_append(&sql, sel.data, sel.len) < 0) {
        cdc_buf_free(&sql);
        cdc_buf_free(&sel);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    cdc_buf_free(&sel);
    cdc_snap_rows *rows = rows_new();
    PGresult *res = NULL;
    if (rows == NULL) {
        cdc_buf_free(&sql);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    if (begin_read(r, &rows->parts[0], err) < 0 ||
        (res = cdc_pg_exec(r->conn, "open a snapshot read", (const char *)sql.data, err)) == NULL ||
        committed_xip(r, &rows->parts[0], err) < 0) {
        int rc = denied(t, err) ? CDC_EPGSETUP : CDC_EPG;
        PQclear(PQexec(r->conn, "ROLLBACK"));
        cdc_buf_free(&sql);
        cdc_snap_rows_free(rows);
        return rc;
    }
    PQclear(res);
    cdc_buf_free(&sql);
    *ret = rows;
    return 0;
}

int cdc_snapread_fetch(cdc_snapread *r, size_t limit, cdc_snap_rows **ret, cdc_error *err)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "FETCH %zu FROM pgcdc_pass", limit);
    cdc_snap_rows *rows = rows_new();
    if (rows == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    if ((rows->parts[0].res = cdc_pg_exec(r->conn, "read a table in one pass", sql, err)) == NULL) {
        cdc_snap_rows_free(rows);
        return CDC_EPG;
    }
    rows->n = rows->parts[0].n = (size_t)PQntuples(rows->parts[0].res);
    *ret = rows;
    return 0;
}

void cdc_snapread_pass_end(cdc_snapread *r)
{
    if (r != NULL)
        PQclear(PQexec(r->conn, "ROLLBACK"));
}

size_t cdc_snap_rows_bytes(const cdc_snap_rows *rows)
{
    size_t b = 0;
    for (size_t k = 0; rows && k < rows->nparts; k++)
        b += rows->parts[k].res ? PQresultMemorySize(rows->parts[k].res) : 0;
    return b;
}

size_t cdc_snap_rows_count(const cdc_snap_rows *rows)
{
    return rows->n;
}

size_t cdc_snap_rows_parts(const cdc_snap_rows *rows)
{
    return rows->nparts;
}

size_t cdc_snap_rows_part_of(const cdc_snap_rows *rows, size_t i)
{
    size_t k = rows->nparts - 1;
    while (k > 0 && rows->parts[k].start > i)
        k--;
    return k;
}

cdc_event_value cdc_snap_rows_value(const cdc_snap_rows *rows, size_t i, size_t col)
{
    const rows_part *p = rows->parts;
    if (rows->nparts > 1) {
        p += cdc_snap_rows_part_of(rows, i);
        i -= p->start;
    }
    if (PQgetisnull(p->res, (int)i, (int)col))
        return (cdc_event_value){.state = CDC_EVENT_NULL};
    return (cdc_event_value){.state = CDC_EVENT_TEXT,
                             .len = (uint32_t)PQgetlength(p->res, (int)i, (int)col),
                             .data = PQgetvalue(p->res, (int)i, (int)col)};
}

void cdc_snap_rows_snapshot(const cdc_snap_rows *rows, size_t part, uint64_t *xmin, uint64_t *xmax,
                            const uint32_t **xip, size_t *nxip)
{
    const rows_part *p = &rows->parts[part];
    *xmin = p->xmin;
    *xmax = p->xmax;
    *xip = p->xip;
    *nxip = p->nxip;
}

void cdc_snap_rows_committed(const cdc_snap_rows *rows, size_t part, const uint32_t **xids,
                             size_t *n)
{
    *xids = rows->parts[part].committed;
    *n = rows->parts[part].ncommitted;
}

int cdc_snap_rows_append(cdc_snap_rows *dst, cdc_snap_rows *src, size_t keep)
{
    rows_part *p = realloc(dst->parts, (dst->nparts + src->nparts) * sizeof(*p));
    if (p == NULL) {
        cdc_snap_rows_free(src);
        return CDC_ENOMEM;
    }
    dst->parts = p;
    if (keep > src->n)
        keep = src->n;
    for (size_t k = 0; k < src->nparts; k++) {
        rows_part q = src->parts[k];
        q.n = q.start >= keep ? 0 : (q.start + q.n > keep ? keep - q.start : q.n);
        q.start += dst->n;
        dst->parts[dst->nparts++] = q;
    }
    dst->n += keep;
    free(src->parts);
    free(src);
    return 0;
}

void cdc_snap_rows_free(cdc_snap_rows *rows)
{
    if (rows == NULL)
        return;
    for (size_t k = 0; k < rows->nparts; k++) {
        PQclear(rows->parts[k].res);
        free(rows->parts[k].committed);
        free(rows->parts[k].xip);
    }
    free(rows->parts);
    free(rows);
}
