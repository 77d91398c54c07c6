/* pg_int.h - libpq-level helpers shared inside src/pg (the only place that includes libpq) */
#ifndef PGCDC_PG_INT_H
#define PGCDC_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "pgcdc/error.h"

typedef enum cdc_pg_conn_kind {
    CDC_PG_NORMAL = 0,      /* ordinary SQL session */
    CDC_PG_REPLICATION = 1, /* replication=database: walsender commands and SQL */
} cdc_pg_conn_kind;

/*
 * Connect with a libpq conninfo (key=value or URI; PG* variables, .pgpass and
 * sslmode apply as in psql). application_name defaults to "pgcdc". Returns 0
 * and a new connection in *ret_conn (caller PQfinish()es it), or CDC_EPGCONN
 * with an error that carries libpq's reason (never the password) and a hint
 * for the common causes: bad password, server not running, unknown database.
 */
int cdc_pg_connect(const char *dsn, cdc_pg_conn_kind kind, PGconn **ret_conn, cdc_error *err);

/*
 * Run a query expected to return rows or a command status. Returns a new
 * PGresult (caller PQclear()s it) or NULL with err set to CDC_EPG naming
 * what was attempted (`what`, e.g. "create publication \"p\"") and the
 * server's message, detail and hint.
 */
PGresult *cdc_pg_exec(PGconn *conn, const char *what, const char *sql, cdc_error *err);
/* The same with text parameters $1..$n. */
PGresult *cdc_pg_execp(PGconn *conn, const char *what, const char *sql, int nparams,
                       const char *const *params, cdc_error *err);

/* libpq's last error on conn as one line (newlines and tabs folded); static buffer. */
const char *cdc_pg_errmsg(PGconn *conn);

/* The SQLSTATE of the last cdc_pg_exec/cdc_pg_execp that failed on this thread ("" when
 * it succeeded or the connection failed without one). */
const char *cdc_pg_last_sqlstate(void);

/* Server's SQLSTATE of a failed result, or "" */
const char *cdc_pg_sqlstate(const PGresult *res);

/* Quote an identifier / literal; return malloc'd strings (NULL on error), caller frees. */
char *cdc_pg_quote_ident(PGconn *conn, const char *ident);
char *cdc_pg_quote_literal(PGconn *conn, const char *lit);

#endif
