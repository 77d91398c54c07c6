/* conn.c - connecting to PostgreSQL and running queries with clear errors */
#include "pg_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/config.h"
#include "pgcdc/log.h"

/* Strip libpq's trailing newline(s) in place. */
static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Replace every occurrence of what (non-empty) in buf (of size sz) by with, in place. */
static void replace_all(char *buf, size_t sz, const char *what, const char *with)
{
    size_t wl = strlen(what), nl = strlen(with);
    if (wl == 0)
        return;
    char *p = buf;
    while ((p = strstr(p, what)) != NULL) {
        size_t tail = strlen(p + wl);
        if ((size_t)(p - buf) + nl + tail + 1 > sz)
            tail = sz - 1 - (size_t)(p - buf) - nl; /* cut the end rather than overflow */
        memmove(p + nl, p + wl, tail);
        memcpy(p, with, nl);
        p[nl + tail] = '\0';
        p += nl;
    }
}

/*
 * A libpq connection error can quote the conninfo: an unparsable URI appears whole,
 * password included. Show the redacted conninfo instead, and mask any password value
 * the conninfo holds wherever it appears.
 */
static void scrub(char *msg, size_t sz, const char *dsn, const char *shown)
{
    if (shown != NULL && strlen(dsn) >= 8)
        replace_all(msg, sz, dsn, shown);
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if ((strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0) &&
            o->val && strlen(o->val) >= 3)
            replace_all(msg, sz, o->val, "********");
    PQconninfoFree(opts);
}

int cdc_pg_connect(const char *dsn, cdc_pg_conn_kind kind, PGconn **ret_conn, cdc_error *err)
{
    const char *keys[6], *vals[6];
    int n = 0;
    /* a default that the dsn (expanded after it) overrides: an unreachable host must
     * not block a reconnect attempt for the kernel's TCP timeout */
    keys[n] = "connect_timeout";
    vals[n++] = getenv("PGCONNECT_TIMEOUT") ? getenv("PGCONNECT_TIMEOUT") : "10";
    /* expand_dbname=1: dsn may be a full conninfo; later keys override it */
    keys[n] = "dbname";
    vals[n++] = dsn;
    keys[n] = "fallback_application_name";
    vals[n++] = "pgcdc";
    /* always set: a source.dsn that says replication=... must not turn an ordinary
     * session into a walsender (see cdc_catalog_publication_tables) */
    keys[n] = "replication";
    vals[n++] = kind == CDC_PG_REPLICATION ? "database" : "false";
    /* pgoutput converts text values and names to the client encoding (pq_sendcountedtext):
     * UTF-8, whatever the database's, is what the encoders need */
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = NULL;
    vals[n] = NULL;

    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory while connecting to postgresql");
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        chomp(msg);
        char *shown = cdc_config_redact_dsn(dsn);
        scrub(msg, sizeof(msg), dsn, shown);
        cdc_err(err, CDC_EPGCONN, "cannot connect to postgresql: %s", msg);
        cdc_err_detail(err, "source.dsn = \"%s\"", shown ? shown : "");
        free(shown);
        if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied"))
            cdc_err_hint(err, "check the user and password in source.dsn, PGPASSWORD or ~/.pgpass");
        else if (strstr(msg, "Connection refused") || strstr(msg, "No such file or directory"))
            cdc_err_hint(err, "is the server running and accepting connections at that host and "
                              "port? check source.dsn");
        else if (strstr(msg, "certificate verify failed") || strstr(msg, "does not match host"))
            cdc_err_hint(err, "the server's certificate does not verify: point sslrootcert in "
                              "source.dsn at the CA that signed it, and with "
                              "sslmode=verify-full use the host name the certificate names");
        else if (strstr(msg, "does not exist"))
            cdc_err_hint(err, "check the dbname and user in source.dsn");
        else if (strstr(msg, "replication connection") || strstr(msg, "pg_hba.conf"))
            cdc_err_hint(err, "pg_hba.conf must allow this user and database (and \"replication\" "
                              "connections for streaming)");
        PQfinish(conn);
        return CDC_EPGCONN;
    }
    /* Deterministic text output regardless of the role's settings: the walsender's
     * output functions use these, so the encoders can parse values exactly. */
    /* SQL_ASCII stores bytes without an encoding: converting them to UTF-8 fails on the
     * first byte that is not, and the walsender would stop there on every reconnect. Take
     * them as they are; the encoders make such bytes U+FFFD (JSON) or hex (stdout). */
    const char *enc = PQparameterStatus(conn, "server_encoding");
    bool sql_ascii = enc != NULL && strcmp(enc, "SQL_ASCII") == 0;
    if (sql_ascii && kind == CDC_PG_REPLICATION)
        cdc_log_warning("database encoding is SQL_ASCII: text is sent as stored, and bytes "
                        "that are not UTF-8 become U+FFFD in JSON events; use a UTF8 database "
                        "to capture them exactly");
    PGresult *res =
        PQexec(conn, sql_ascii ? "SET datestyle = 'ISO'; SET intervalstyle = 'postgres'; "
                                 "SET extra_float_digits = 3; SET lc_monetary = 'C'; "
                                 "SET client_encoding = 'SQL_ASCII'"
                               : "SET datestyle = 'ISO'; SET intervalstyle = 'postgres'; "
                                 "SET extra_float_digits = 3; SET lc_monetary = 'C'");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        cdc_err(err, CDC_EPG, "cannot set session parameters: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return CDC_EPG;
    }
    PQclear(res);
    *ret_conn = conn;
    return 0;
}

static __thread char last_sqlstate[6];

const char *cdc_pg_last_sqlstate(void)
{
    return last_sqlstate;
}

static PGresult *check_result(PGconn *conn, PGresult *res, const char *what, cdc_error *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    last_sqlstate[0] = '\0';
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", cdc_pg_sqlstate(res));
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", primary ? primary : PQerrorMessage(conn));
    chomp(msg);
    cdc_err(err, CDC_EPG, "cannot %s: %s", what, msg);
    if (detail)
        cdc_err_detail(err, "%s", detail);
    if (hint)
        cdc_err_hint(err, "%s", hint);
    PQclear(res);
    return NULL;
}

PGresult *cdc_pg_exec(PGconn *conn, const char *what, const char *sql, cdc_error *err)
{
    return check_result(conn, PQexec(conn, sql), what, err);
}

PGresult *cdc_pg_execp(PGconn *conn, const char *what, const char *sql, int nparams,
                       const char *const *params, cdc_error *err)
{
    return check_result(conn, PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0), what,
                        err);
}

const char *cdc_pg_errmsg(PGconn *conn)
{
    static __thread char buf[1024]; /* the snapshot reads ahead on a thread of its own */
    size_t o = 0;
    bool space = false;
    for (const char *p = PQerrorMessage(conn); *p && o + 1 < sizeof(buf); p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < sizeof(buf))
            buf[o++] = ' ';
        space = false;
        buf[o++] = *p;
    }
    buf[o] = '\0';
    return buf;
}

const char *cdc_pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

static char *dup_and_free(char *libpq_str)
{
    if (libpq_str == NULL)
        return NULL;
    char *s = strdup(libpq_str);
    PQfreemem(libpq_str);
    return s;
}

char *cdc_pg_quote_ident(PGconn *conn, const char *ident)
{
    return dup_and_free(PQescapeIdentifier(conn, ident, strlen(ident)));
}

char *cdc_pg_quote_literal(PGconn *conn, const char *lit)
{
    return dup_and_free(PQescapeLiteral(conn, lit, strlen(lit)));
}
