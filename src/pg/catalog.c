/* catalog.c - primary key and column default lookups over an ordinary SQL session */
#include "pgcdc/catalog.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"
#include "pgcdc/buf.h"

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
                     "WITH ix AS ("
                     "  SELECT i.indkey, i.indnkeyatts FROM pg_catalog.pg_index i"
                     "    JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid"
                     "   WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid"
                     "     AND i.indpred IS NULL AND i.indexprs IS NULL"
                     "     AND (i.indisprimary OR NOT EXISTS ("
                     "       SELECT 1 FROM unnest(i.indkey) WITH ORDINALITY AS u(attnum, n)"
                     "       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid"
                     "        AND a.attnum = u.attnum"
                     "      WHERE u.n <= i.indnkeyatts AND NOT a.attnotnull))"
                     "   ORDER BY i.indisprimary DESC, x.relname LIMIT 1) "
                     "SELECT a.attname FROM ix "
                     "CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) "
                     "JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid "
                     "AND a.attnum = k.attnum "
                     "WHERE k.n <= ix.indnkeyatts ORDER BY k.n",
                     1, params, err);
    if (res == NULL)
        return CDC_EPG;
    return column_strings(res, 0, ret_names, err);
}

/*
 * The value of a default expression as pg_get_expr() prints it, when it is a constant:
 * a quoted literal with casts after it ('zz'::text, '{}'::integer[]), a bare number
 * (7, 1.5, -2) or true/false. Written into out (at least strlen(expr) + 1 bytes);
 * false for anything else (a function call, an operator, E'' strings).
 */
static bool constant_default(const char *expr, char *out)
{
    const char *p = expr;
    if ((p[0] == 'B' || p[0] == 'X') && p[1] == '\'')
        p++; /* a bit string: B'101' (X'1F' is read by bit's input from the text "x1F") */
    if (*p == '\'') {
        char *w = out;
        for (p++;; p++) {
            if (*p == '\0')
                return false;
            if (*p == '\'') {
                if (p[1] != '\'')
                    break;
                p++;
            }
            *w++ = *p;
        }
        *w = '\0';
        /* only casts may follow: ::name, ::name[], ::"quoted name", ::name(10,2) */
        for (p++; *p;) {
            if (p[0] != ':' || p[1] != ':')
                return false;
            for (p += 2; *p && !(p[0] == ':' && p[1] == ':'); p++)
                if (!(*p == ' ' || *p == '_' || *p == '.' || *p == '"' || *p == '[' || *p == ']' ||
                      *p == '(' || *p == ')' || *p == ',' || (*p >= 'a' && *p <= 'z') ||
                      (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                    return false;
        }
        if (expr[0] == 'X') { /* bit's input reads hex digits after an x */
            memmove(out + 1, out, strlen(out) + 1);
            out[0] = 'x';
        }
        return true;
    }
    if (strcmp(p, "true") == 0 || strcmp(p, "false") == 0) {
        strcpy(out, p[0] == 't' ? "t" : "f"); /* as bool's output function writes them */
        return true;
    }
    const char *q = p;
    if (*q == '-')
        q++;
    bool digits = false;
    for (; (*q >= '0' && *q <= '9') || *q == '.'; q++)
        digits = digits || *q != '.';
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '-' || *q == '+')
            q++;
        while (*q >= '0' && *q <= '9')
            q++;
    }
    if (!digits || *q != '\0')
        return false;
    strcpy(out, p);
    return true;
}

/* The zero Debezium writes for a NOT NULL column without a constant default, as the
 * text of a value of the (base) type; NULL when there is none to write. */
static const char *type_zero(uint32_t oid, char category)
{
    switch (oid) {
    case 17: return "\\x";                      /* bytea */
    case 1082: return "1970-01-01";             /* date */
    case 1083: return "00:00:00";               /* time */
    case 1266: return "00:00:00+00";            /* timetz */
    case 1114: return "1970-01-01 00:00:00";    /* timestamp */
    case 1184: return "1970-01-01 00:00:00+00"; /* timestamptz */
    case 1186: return "00:00:00";               /* interval */
    case 790: return "$0.00";                   /* money */
    default: break;
    }
    switch (category) {
    case 'N': return "0";  /* numbers */
    case 'B': return "f";  /* bool */
    case 'A': return "{}"; /* arrays */
    case 'S':              /* strings */
    case 'E':              /* enums */
    case 'V':              /* bit strings */
    case 'I': /* network addresses */ return "";
    default: return NULL;
    }
}

/*
 * The literals of lits (rows entries, NULL where none) as the columns would store
 * them: each read by its base type's input function with the column's (or domain's)
 * modifier, and written by its output function, as pgoutput would send the value:
 * '1.5' as numeric(5,2) is 1.50, false is f, '10.0.0.1' as inet stays 10.0.0.1. No cast
 * function and no domain CHECK constraint runs (they may call anyone's functions): a
 * base type's input and output functions are C functions only a superuser installs. In
 * a read-only transaction with a statement timeout. NULL when it fails (the raw literals
 * are used then).
 */
static PGresult *coerce_literals(cdc_catalog *c, PGresult *cols, char **lits, int rows)
{
    cdc_buf sql = {0};
    const char **params = calloc((size_t)(rows ? rows : 1), sizeof(*params));
    int np = 0;
    bool ok = params != NULL && cdc_buf_puts(&sql, "SELECT ") == 0;
    for (int i = 0; ok && i < rows; i++) {
        if (lits[i] == NULL)
            continue;
        params[np] = lits[i];
        /* format_type() names the type as SQL spells it (quoted where it must be) */
        ok = cdc_buf_printf(&sql, "%s$%d::%s", np ? ", " : "", np + 1, PQgetvalue(cols, i, 5)) == 0;
        np++;
    }
    PGresult *res = NULL;
    if (ok) {
        cdc_error ignored = {0};
        PGresult *b = cdc_pg_exec(c->conn, "read column defaults",
                                  "BEGIN READ ONLY; SET LOCAL statement_timeout = 5000", &ignored);
        if (b != NULL) {
            PQclear(b);
            res = cdc_pg_execp(c->conn, "read column defaults", sql.data, np, params, &ignored);
        }
        /* whatever happened: the session leaves the transaction (a no-op outside one) */
        PQclear(cdc_pg_exec(c->conn, "read column defaults", "ROLLBACK", &ignored));
    }
    cdc_buf_free(&sql);
    free(params);
    return res;
}

int cdc_catalog_fills(cdc_catalog *c, uint32_t relid, cdc_catalog_fill **ret, size_t *n,
                      cdc_error *err)
{
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", relid);
    const char *params[1] = {oid};
    /* a domain's base type: its category and oid decide the zero */
    PGresult *res = cdc_pg_execp(
        c->conn, "look up column defaults",
        "WITH RECURSIVE base(attnum, typ, typmod) AS ("
        "  SELECT attnum, atttypid, atttypmod FROM pg_catalog.pg_attribute "
        "   WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped "
        "  UNION ALL "
        "  SELECT b.attnum, t.typbasetype, "
        "         CASE WHEN b.typmod <> -1 THEN b.typmod ELSE t.typtypmod END FROM base b "
        "    JOIN pg_catalog.pg_type t ON t.oid = b.typ WHERE t.typtype = 'd') "
        "SELECT a.attname, a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), "
        "       bt.oid, bt.typcategory, pg_catalog.format_type(bt.oid, b.typmod), ct.typtype "
        "  FROM pg_catalog.pg_attribute a "
        "  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "       AND a.attgenerated = '' "
        "  JOIN base b ON b.attnum = a.attnum "
        "  JOIN pg_catalog.pg_type bt ON bt.oid = b.typ AND bt.typtype <> 'd' "
        "  JOIN pg_catalog.pg_type ct ON ct.oid = a.atttypid "
        " WHERE a.attrelid = $1::oid ORDER BY a.attnum",
        1, params, err);
    if (res == NULL)
        return CDC_EPG;
    int rows = PQntuples(res);
    char **lits = calloc((size_t)(rows ? rows : 1), sizeof(*lits));
    const char **text = calloc((size_t)(rows ? rows : 1), sizeof(*text));
    PGresult *cast = NULL;
    int rc = 0;
    if (lits == NULL || text == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        goto out;
    }
    bool any = false;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 2))
            continue;
        const char *expr = PQgetvalue(res, i, 2);
        if ((lits[i] = malloc(strlen(expr) + 1)) == NULL) {
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            goto out;
        }
        /* as Debezium, which parses the defaults of numbers, booleans, strings, dates and
         * times, intervals and bit strings, and never a domain's */
        char cat = PQgetvalue(res, i, 4)[0];
        bool parsed = PQgetvalue(res, i, 6)[0] != 'd' && cat != '\0' && strchr("NBSDTV", cat);
        if (!parsed || !constant_default(expr, lits[i])) {
            free(lits[i]);
            lits[i] = NULL;
        }
        any = any || lits[i] != NULL;
    }
    if (any)
        cast = coerce_literals(c, res, lits, rows);
    size_t bytes = sizeof(cdc_catalog_fill) * (size_t)(rows ? rows : 1);
    for (int i = 0, k = 0; i < rows; i++) {
        if (lits[i] != NULL) {
            /* char(n) as Debezium reads it: the literal, not padded to n */
            bool bpchar = strcmp(PQgetvalue(res, i, 3), "1042") == 0;
            text[i] =
                cast && !bpchar && !PQgetisnull(cast, 0, k) ? PQgetvalue(cast, 0, k) : lits[i];
            k++;
        } else if (PQgetvalue(res, i, 1)[0] == 't') {
            text[i] = type_zero((uint32_t)strtoul(PQgetvalue(res, i, 3), NULL, 10),
                                PQgetvalue(res, i, 4)[0]);
        }
        bytes += strlen(PQgetvalue(res, i, 0)) + 1 + (text[i] ? strlen(text[i]) + 1 : 0);
    }
    cdc_catalog_fill *f = malloc(bytes);
    if (f == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        goto out;
    }
    char *w = (char *)(f + (rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        size_t len = strlen(PQgetvalue(res, i, 0)) + 1;
        memcpy(w, PQgetvalue(res, i, 0), len);
        f[i].column = w;
        w += len;
        f[i].text = NULL;
        if (text[i] != NULL) {
            len = strlen(text[i]) + 1;
            memcpy(w, text[i], len);
            f[i].text = w;
            w += len;
        }
    }
    *ret = f;
    *n = (size_t)rows;
out:
    for (int i = 0; lits && i < rows; i++)
        free(lits[i]);
    free(lits);
    free(text);
    PQclear(cast);
    PQclear(res);
    return rc;
}

int cdc_catalog_domain_typmods(cdc_catalog *c, uint32_t relid, cdc_catalog_typmod **ret, size_t *n,
                               cdc_error *err)
{
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", relid);
    const char *params[1] = {oid};
    /* down the chain of domains to the first modifier */
    PGresult *res = cdc_pg_execp(
        c->conn, "look up domain type modifiers",
        "WITH RECURSIVE d(attname, typ, typmod, depth) AS ("
        "  SELECT a.attname, t.typbasetype, t.typtypmod, 0 FROM pg_catalog.pg_attribute a "
        "    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid AND t.typtype = 'd' "
        "   WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
        "     AND a.atttypmod = -1 "
        "  UNION ALL "
        "  SELECT d.attname, t.typbasetype, t.typtypmod, d.depth + 1 FROM d "
        "    JOIN pg_catalog.pg_type t ON t.oid = d.typ AND t.typtype = 'd' "
        "   WHERE d.typmod = -1) "
        "SELECT DISTINCT ON (attname) attname, typmod FROM d WHERE typmod <> -1 "
        " ORDER BY attname, depth",
        1, params, err);
    if (res == NULL)
        return CDC_EPG;
    int rows = PQntuples(res);
    size_t bytes = sizeof(cdc_catalog_typmod) * (size_t)(rows ? rows : 1);
    for (int i = 0; i < rows; i++)
        bytes += strlen(PQgetvalue(res, i, 0)) + 1;
    cdc_catalog_typmod *t = malloc(bytes);
    if (t == NULL) {
        PQclear(res);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    char *w = (char *)(t + (rows ? rows : 1));
    for (int i = 0; i < rows; i++) {
        size_t len = strlen(PQgetvalue(res, i, 0)) + 1;
        memcpy(w, PQgetvalue(res, i, 0), len);
        t[i].column = w;
        t[i].typmod = (int32_t)strtol(PQgetvalue(res, i, 1), NULL, 10);
        w += len;
    }
    PQclear(res);
    *ret = t;
    *n = (size_t)rows;
    return 0;
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
