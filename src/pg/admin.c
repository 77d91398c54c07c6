/* admin.c - slot and publication administration: server checks, lookups, create and drop */
#include "pgcdc/admin.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_int.h"

struct cdc_admin {
    PGconn *conn;    /* ordinary SQL session */
    int version_num; /* server_version_num */
};

/* The SQL expression that names a pg_class row as a quoted qualified name. */
#define QUALIFIED_NAME "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
/* Tables FOR ALL TABLES would publish: permanent user tables (c, n in scope). */
#define USER_TABLE                                                                                 \
    "c.relpersistence = 'p' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"

/* ------------------------------------------------------------------------
 * Name lists
 * ------------------------------------------------------------------------ */

static int names_push(cdc_admin_names *l, const char *s)
{
    char *copy = strdup(s);
    char **v = copy ? realloc(l->v, sizeof(*v) * (l->n + 1)) : NULL;
    if (v == NULL) {
        free(copy);
        return CDC_ENOMEM;
    }
    v[l->n++] = copy;
    l->v = v;
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sort and drop duplicates. */
static void names_sort(cdc_admin_names *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof(*l->v), cmp_str);
    size_t o = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[o - 1]) == 0)
            free(l->v[i]);
        else
            l->v[o++] = l->v[i];
    }
    l->n = o;
}

bool cdc_admin_names_equal(const cdc_admin_names *x, const cdc_admin_names *y)
{
    if (x->n != y->n)
        return false;
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i], y->v[i]) != 0)
            return false;
    return true;
}

char *cdc_admin_names_join(const cdc_admin_names *l, const char *sep)
{
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + strlen(sep);
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            strcat(s, sep);
        strcat(s, l->v[i]);
    }
    return s;
}

void cdc_admin_names_free(cdc_admin_names *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/*
 * The names as a PostgreSQL text[] literal: {"a","b"}, every element quoted
 * with backslash escapes. New string or NULL when out of memory.
 */
static char *names_array_literal(const cdc_admin_names *l)
{
    size_t len = 3;
    for (size_t i = 0; i < l->n; i++)
        len += 2 * strlen(l->v[i]) + 3;
    char *s = malloc(len), *o = s;
    if (s == NULL)
        return NULL;
    *o++ = '{';
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            *o++ = ',';
        *o++ = '"';
        for (const char *p = l->v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                *o++ = '\\';
            *o++ = *p;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return s;
}

/* Append every first-column value of res to l. */
static int names_from_result(cdc_admin_names *l, const PGresult *res, cdc_error *err)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (names_push(l, PQgetvalue(res, i, 0)) < 0)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
    names_sort(l);
    return 0;
}

/* ------------------------------------------------------------------------
 * Session
 * ------------------------------------------------------------------------ */

int cdc_admin_open(const char *dsn, cdc_admin **ret, cdc_error *err)
{
    cdc_admin *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc = cdc_pg_connect(dsn, CDC_PG_NORMAL, &a->conn, err);
    if (rc < 0) {
        free(a);
        return rc;
    }
    /* Names go into JSON and terminals as UTF-8 whatever the server encoding. */
    if (PQsetClientEncoding(a->conn, "UTF8") != 0) {
        cdc_err(err, CDC_EPG, "cannot set client_encoding to UTF8: %.*s",
                (int)strcspn(PQerrorMessage(a->conn), "\n"), PQerrorMessage(a->conn));
        cdc_admin_close(a);
        return CDC_EPG;
    }
    a->version_num = PQserverVersion(a->conn);
    *ret = a;
    return 0;
}

cdc_admin *cdc_admin_close(cdc_admin *a)
{
    if (a == NULL)
        return NULL;
    if (a->conn)
        PQfinish(a->conn);
    free(a);
    return NULL;
}

int cdc_admin_check_replication_conn(const char *dsn, cdc_error *err)
{
    PGconn *conn = NULL;
    cdc_error cerr = {0};
    if (cdc_pg_connect(dsn, CDC_PG_REPLICATION, &conn, &cerr) < 0) {
        cdc_err(err, CDC_EPGSETUP, "replication connection refused: %s", cerr.msg);
        if (strstr(cerr.msg, "replication role") || strstr(cerr.msg, "superuser"))
            cdc_err_hint(err,
                         "give the role the REPLICATION attribute: ALTER ROLE ... REPLICATION;");
        else if (strstr(cerr.msg, "pg_hba.conf"))
            cdc_err_hint(err, "add a pg_hba.conf line for this user with database \"replication\" "
                              "(or \"all\"), then reload the server");
        else if (strstr(cerr.msg, "wal senders") || strstr(cerr.msg, "too many"))
            cdc_err_hint(err, "raise max_wal_senders (ALTER SYSTEM SET max_wal_senders = ...; then "
                              "restart the server)");
        else if (cerr.hint[0])
            cdc_err_hint(err, "%s", cerr.hint);
        return CDC_EPGSETUP;
    }
    PGresult *res = cdc_pg_exec(conn, "run IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM", &cerr);
    PQclear(res);
    PQfinish(conn);
    if (res == NULL) {
        cdc_err(err, CDC_EPGSETUP, "replication connection does not work: %s", cerr.msg);
        return CDC_EPGSETUP;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Inspection
 * ------------------------------------------------------------------------ */

static void copy_field(char *dst, size_t sz, const PGresult *res, int row, int col)
{
    snprintf(dst, sz, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static bool bool_field(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

static int64_t int_field(const PGresult *res, int row, int col, int64_t null_value)
{
    if (PQgetisnull(res, row, col))
        return null_value;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static cdc_lsn lsn_field(const PGresult *res, int row, int col)
{
    cdc_lsn lsn = CDC_INVALID_LSN;
    if (!PQgetisnull(res, row, col))
        cdc_lsn_parse(PQgetvalue(res, row, col), &lsn);
    return lsn;
}

int cdc_admin_server_info(cdc_admin *a, cdc_admin_server *ret, cdc_error *err)
{
    /* Works on any server, so that an old one gets a clear version error. */
    static const char basic[] =
        "SELECT current_setting('server_version_num')::int, current_setting('server_version'), "
        "current_database(), current_user, quote_ident(current_user), r.rolsuper, "
        "r.rolreplication, current_setting('wal_level') "
        "FROM pg_roles r WHERE r.rolname = current_user";
    static const char more[] =
        "SELECT current_setting('max_replication_slots')::int, "
        "(SELECT count(*) FROM pg_replication_slots), "
        "current_setting('max_wal_senders')::int, "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'), "
        "(SELECT system_identifier FROM pg_control_system()), pg_current_wal_lsn()";

    memset(ret, 0, sizeof(*ret));
    PGresult *res = cdc_pg_exec(a->conn, "read the server settings", basic, err);
    if (res == NULL)
        return CDC_EPG;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cdc_err(err, CDC_EPG, "cannot read the attributes of the current role");
    }
    ret->version_num = (int)int_field(res, 0, 0, 0);
    copy_field(ret->version, sizeof(ret->version), res, 0, 1);
    copy_field(ret->database, sizeof(ret->database), res, 0, 2);
    copy_field(ret->user, sizeof(ret->user), res, 0, 3);
    copy_field(ret->user_ident, sizeof(ret->user_ident), res, 0, 4);
    ret->superuser = bool_field(res, 0, 5);
    ret->replication = bool_field(res, 0, 6);
    copy_field(ret->wal_level, sizeof(ret->wal_level), res, 0, 7);
    PQclear(res);
    a->version_num = ret->version_num;
    if (ret->version_num < CDC_ADMIN_MIN_SERVER_VERSION)
        return 0;

    res = cdc_pg_exec(a->conn, "read the server settings", more, err);
    if (res == NULL)
        return CDC_EPG;
    ret->max_replication_slots = (int)int_field(res, 0, 0, 0);
    ret->used_replication_slots = (int)int_field(res, 0, 1, 0);
    ret->max_wal_senders = (int)int_field(res, 0, 2, 0);
    ret->used_wal_senders = (int)int_field(res, 0, 3, 0);
    ret->system_id = PQgetisnull(res, 0, 4) ? 0 : strtoull(PQgetvalue(res, 0, 4), NULL, 10);
    ret->current_lsn = lsn_field(res, 0, 5);
    PQclear(res);
    return 0;
}

int cdc_admin_slot_get(cdc_admin *a, const char *name, cdc_admin_slot *ret, cdc_error *err)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT slot_type = 'logical', temporary, coalesce(plugin, ''), "
             "coalesce(database::text, ''), active, coalesce(active_pid, 0), restart_lsn, "
             "confirmed_flush_lsn, %s, "
             "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, "
             "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
             "FROM pg_replication_slots WHERE slot_name = $1",
             a->version_num >= 130000 ? "wal_status" : "''");
    const char *params[] = {name};
    char what[256];
    snprintf(what, sizeof(what), "look up replication slot \"%s\"", name);
    PGresult *res = cdc_pg_execp(a->conn, what, sql, 1, params, err);
    if (res == NULL)
        return CDC_EPG;
    memset(ret, 0, sizeof(*ret));
    if (PQntuples(res) == 1) {
        ret->exists = true;
        ret->logical = bool_field(res, 0, 0);
        ret->temporary = bool_field(res, 0, 1);
        copy_field(ret->plugin, sizeof(ret->plugin), res, 0, 2);
        copy_field(ret->database, sizeof(ret->database), res, 0, 3);
        ret->active = bool_field(res, 0, 4);
        ret->active_pid = (int)int_field(res, 0, 5, 0);
        ret->restart_lsn = lsn_field(res, 0, 6);
        ret->confirmed_flush_lsn = lsn_field(res, 0, 7);
        copy_field(ret->wal_status, sizeof(ret->wal_status), res, 0, 8);
        ret->retained_bytes = int_field(res, 0, 9, -1);
        ret->lag_bytes = int_field(res, 0, 10, -1);
    }
    PQclear(res);
    return 0;
}

/* Run a one-parameter query and collect its first column into l. */
static int query_names(cdc_admin *a, const char *what, const char *sql, const char *param,
                       cdc_admin_names *l, cdc_error *err)
{
    const char *params[] = {param};
    PGresult *res = cdc_pg_execp(a->conn, what, sql, 1, params, err);
    if (res == NULL)
        return CDC_EPG;
    int rc = names_from_result(l, res, err);
    PQclear(res);
    return rc;
}

int cdc_admin_pub_get(cdc_admin *a, const char *name, cdc_admin_pub *ret, cdc_error *err)
{
    char sql[512], what[256];
    const char *params[] = {name};
    int rc;

    memset(ret, 0, sizeof(*ret));
    snprintf(what, sizeof(what), "look up publication \"%s\"", name);
    snprintf(sql, sizeof(sql),
             "SELECT puballtables, pubinsert, pubupdate, pubdelete, %s, %s, "
             "pg_get_userbyid(pubowner), pg_has_role(pubowner, 'USAGE') "
             "FROM pg_publication WHERE pubname = $1",
             a->version_num >= 110000 ? "pubtruncate" : "false",
             a->version_num >= 130000 ? "pubviaroot" : "false");
    PGresult *res = cdc_pg_execp(a->conn, what, sql, 1, params, err);
    if (res == NULL)
        return CDC_EPG;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    ret->exists = true;
    ret->all_tables = bool_field(res, 0, 0);
    ret->pub_insert = bool_field(res, 0, 1);
    ret->pub_update = bool_field(res, 0, 2);
    ret->pub_delete = bool_field(res, 0, 3);
    ret->pub_truncate = bool_field(res, 0, 4);
    ret->via_root = bool_field(res, 0, 5);
    copy_field(ret->owner, sizeof(ret->owner), res, 0, 6);
    ret->can_drop = bool_field(res, 0, 7);
    PQclear(res);

    rc = query_names(a, what,
                     "SELECT " QUALIFIED_NAME " FROM pg_publication p "
                     "JOIN pg_publication_rel pr ON pr.prpubid = p.oid "
                     "JOIN pg_class c ON c.oid = pr.prrelid "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1",
                     name, &ret->tables, err);
    if (rc == 0 && a->version_num >= 150000)
        rc = query_names(a, what,
                         "SELECT quote_ident(n.nspname) FROM pg_publication p "
                         "JOIN pg_publication_namespace pn ON pn.pnpubid = p.oid "
                         "JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE p.pubname = $1",
                         name, &ret->schemas, err);
    if (rc == 0)
        rc = query_names(a, what,
                         "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) "
                         "FROM pg_publication_tables WHERE pubname = $1",
                         name, &ret->published, err);
    if (rc < 0)
        cdc_admin_pub_free(ret);
    return rc;
}

void cdc_admin_pub_free(cdc_admin_pub *p)
{
    if (p == NULL)
        return;
    cdc_admin_names_free(&p->tables);
    cdc_admin_names_free(&p->schemas);
    cdc_admin_names_free(&p->published);
    memset(p, 0, sizeof(*p));
}

/* Trim spaces at both ends in place; returns the start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

int cdc_admin_resolve_tables(cdc_admin *a, const char *list, cdc_admin_names *ret, cdc_error *err)
{
    static const char sql[] = "SELECT " QUALIFIED_NAME ", c.relkind FROM pg_class c "
                              "JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE c.oid = to_regclass($1)";
    cdc_admin_names out = {0};
    char *copy = strdup(list);
    if (copy == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc = 0;
    if (*trim(copy) == '\0')
        goto done;

    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *name = trim(tok);
        if (*name == '\0') {
            rc = cdc_err(err, CDC_ECONFIG, "publication.tables has an empty entry: \"%s\"", list);
            cdc_err_hint(err, "write table names separated by commas: schema.table, table");
            goto done;
        }
        const char *params[] = {name};
        char what[600];
        snprintf(what, sizeof(what), "look up table \"%s\" of publication.tables", name);
        PGresult *res = cdc_pg_execp(a->conn, what, sql, 1, params, err);
        if (res == NULL) {
            rc = CDC_EPG;
            goto done;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            rc = cdc_err(err, CDC_ECONFIG,
                         "table \"%s\" of publication.tables does not exist in the database", name);
            cdc_err_hint(err, "create the table or fix publication.tables; names are resolved "
                              "like SQL (unquoted names fold to lower case, no schema means "
                              "search_path)");
            goto done;
        }
        char kind = PQgetvalue(res, 0, 1)[0];
        if (kind != 'r' && kind != 'p') {
            PQclear(res);
            rc = cdc_err(err, CDC_ECONFIG, "\"%s\" of publication.tables is not a table", name);
            cdc_err_hint(err, "only ordinary and partitioned tables can be published");
            goto done;
        }
        rc = names_push(&out, PQgetvalue(res, 0, 0));
        PQclear(res);
        if (rc < 0) {
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            goto done;
        }
    }
    names_sort(&out);

done:
    free(copy);
    if (rc < 0)
        cdc_admin_names_free(&out);
    else
        *ret = out;
    return rc;
}

/*
 * Run sql with $1 = tables as a text[] (NULL for all tables). Returns the
 * result or NULL with err set.
 */
static PGresult *exec_for_tables(cdc_admin *a, const char *what, const char *sql,
                                 const cdc_admin_names *tables, cdc_error *err)
{
    char *arr = NULL;
    if (tables != NULL && (arr = names_array_literal(tables)) == NULL) {
        cdc_err(err, CDC_ENOMEM, "out of memory");
        return NULL;
    }
    const char *params[] = {arr};
    PGresult *res = cdc_pg_execp(a->conn, what, sql, 1, params, err);
    free(arr);
    return res;
}

int cdc_admin_unreadable_tables(cdc_admin *a, const cdc_admin_names *tables, cdc_admin_names *ret,
                                size_t *ret_checked, cdc_error *err)
{
    static const char sql[] =
        "SELECT " QUALIFIED_NAME ", "
        "has_table_privilege(c.oid, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE CASE WHEN $1::text[] IS NULL "
        "THEN c.relkind IN ('r', 'p') AND NOT c.relispartition AND " USER_TABLE " "
        "ELSE c.oid IN (SELECT to_regclass(x) FROM unnest($1::text[]) x) END";
    cdc_admin_names out = {0};
    PGresult *res = exec_for_tables(a, "check table privileges", sql, tables, err);
    if (res == NULL)
        return err && err->code ? err->code : CDC_EPG;
    for (int i = 0; i < PQntuples(res); i++) {
        if (!bool_field(res, i, 1) && names_push(&out, PQgetvalue(res, i, 0)) < 0) {
            PQclear(res);
            cdc_admin_names_free(&out);
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        }
    }
    names_sort(&out);
    *ret_checked = (size_t)PQntuples(res);
    *ret = out;
    PQclear(res);
    return 0;
}

int cdc_admin_ri_problems(cdc_admin *a, const cdc_admin_names *tables, cdc_admin_ri_problem **ret,
                          size_t *ret_n, cdc_error *err)
{
    /* Leaf partitions carry the replica identity that updates and deletes use. */
    const char *leaves =
        a->version_num >= 120000
            ? "SELECT to_regclass(x) FROM unnest($1::text[]) x UNION "
              "SELECT t.relid FROM unnest($1::text[]) x, pg_partition_tree(to_regclass(x)) t "
              "WHERE t.isleaf"
            : "SELECT to_regclass(x) FROM unnest($1::text[]) x";
    char sql[4096];
    snprintf(sql, sizeof(sql),
             "SELECT name, relreplident, has_pk, has_ri_index, candidate FROM ("
             " SELECT " QUALIFIED_NAME " AS name, c.relreplident,"
             "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"
             "   AS has_pk,"
             "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)"
             "   AS has_ri_index,"
             "  (SELECT quote_ident(ic.relname) FROM pg_index i"
             "   JOIN pg_class ic ON ic.oid = i.indexrelid"
             "   WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indisvalid"
             "    AND i.indpred IS NULL AND i.indexprs IS NULL"
             "    AND NOT EXISTS (SELECT 1 FROM pg_attribute att WHERE att.attrelid = c.oid"
             "     AND att.attnum = ANY (i.indkey) AND NOT att.attnotnull)"
             "   ORDER BY ic.relname LIMIT 1) AS candidate"
             " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE c.relkind = 'r' AND CASE WHEN $1::text[] IS NULL THEN " USER_TABLE
             " ELSE c.oid IN (%s) END"
             ") s WHERE relreplident = 'n' OR (relreplident = 'd' AND NOT has_pk)"
             " OR (relreplident = 'i' AND NOT has_ri_index) ORDER BY name",
             leaves);

    *ret = NULL;
    *ret_n = 0;
    PGresult *res = exec_for_tables(a, "check replica identities", sql, tables, err);
    if (res == NULL)
        return err && err->code ? err->code : CDC_EPG;
    int n = PQntuples(res);
    cdc_admin_ri_problem *p = calloc((size_t)n + 1, sizeof(*p));
    if (p == NULL) {
        PQclear(res);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const char *table = PQgetvalue(res, i, 0);
        char ident = PQgetvalue(res, i, 1)[0];
        bool has_pk = bool_field(res, i, 2);
        const char *candidate = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
        const char *reason = ident == 'n'   ? "REPLICA IDENTITY NOTHING"
                             : ident == 'd' ? "no primary key and REPLICA IDENTITY DEFAULT"
                                            : "REPLICA IDENTITY USING INDEX names a dropped index";
        size_t fixlen = strlen(table) + (candidate ? strlen(candidate) : 0) + 64;
        p[i].table = strdup(table);
        p[i].reason = strdup(reason);
        p[i].fix = malloc(fixlen);
        if (p[i].table == NULL || p[i].reason == NULL || p[i].fix == NULL) {
            PQclear(res);
            cdc_admin_ri_free(p, (size_t)i + 1);
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        }
        if (has_pk)
            snprintf(p[i].fix, fixlen, "ALTER TABLE %s REPLICA IDENTITY DEFAULT;", table);
        else if (candidate)
            snprintf(p[i].fix, fixlen, "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;", table,
                     candidate);
        else
            snprintf(p[i].fix, fixlen, "ALTER TABLE %s REPLICA IDENTITY FULL;", table);
    }
    PQclear(res);
    *ret = p;
    *ret_n = (size_t)n;
    return 0;
}

void cdc_admin_ri_free(cdc_admin_ri_problem *p, size_t n)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].table);
        free(p[i].reason);
        free(p[i].fix);
    }
    free(p);
}

/* Start a check entry; returns it. */
static cdc_admin_check *check_add(cdc_admin_check *ret, size_t *n, const char *name)
{
    cdc_admin_check *c = &ret[(*n)++];
    memset(c, 0, sizeof(*c));
    c->name = name;
    return c;
}

size_t cdc_admin_check_server(const cdc_admin_server *s, const cdc_admin_slot *slot, bool via_root,
                              cdc_admin_check *ret)
{
    size_t n = 0;
    cdc_admin_check *c = check_add(ret, &n, "server version");
    snprintf(c->found, sizeof(c->found), "%s", s->version);
    if (s->version_num < CDC_ADMIN_MIN_SERVER_VERSION) {
        cdc_err(&c->err, CDC_EPGSETUP, "postgresql %s is too old: pgcdc needs version 10 or later",
                s->version);
        cdc_err_hint(&c->err, "upgrade the server; pgcdc is tested with postgresql 15");
        return n; /* the other settings cannot be read from such a server */
    }

    c = check_add(ret, &n, "wal_level");
    snprintf(c->found, sizeof(c->found), "%s", s->wal_level);
    if (strcmp(s->wal_level, "logical") != 0) {
        cdc_err(&c->err, CDC_EPGSETUP, "wal_level is \"%s\": logical decoding needs \"logical\"",
                s->wal_level);
        cdc_err_hint(&c->err, "run ALTER SYSTEM SET wal_level = logical; as a superuser and "
                              "restart the server");
    }

    c = check_add(ret, &n, "replication slots");
    snprintf(c->found, sizeof(c->found), "%d of %d used%s", s->used_replication_slots,
             s->max_replication_slots, slot->exists ? " (including this slot)" : "");
    if (!slot->exists && s->used_replication_slots >= s->max_replication_slots) {
        cdc_err(&c->err, CDC_EPGSETUP,
                "no free replication slot: %d of max_replication_slots = %d in use",
                s->used_replication_slots, s->max_replication_slots);
        cdc_err_hint(&c->err,
                     "drop a slot that is no longer needed (SELECT "
                     "pg_drop_replication_slot('name');) or raise "
                     "max_replication_slots (ALTER SYSTEM SET max_replication_slots "
                     "= %d; then restart the server)",
                     s->max_replication_slots + 1 > 10 ? s->max_replication_slots + 1 : 10);
    }

    c = check_add(ret, &n, "wal senders");
    snprintf(c->found, sizeof(c->found), "%d of %d used", s->used_wal_senders, s->max_wal_senders);
    if (!slot->active && s->used_wal_senders >= s->max_wal_senders) {
        cdc_err(&c->err, CDC_EPGSETUP, "no free wal sender: %d of max_wal_senders = %d in use",
                s->used_wal_senders, s->max_wal_senders);
        cdc_err_hint(&c->err,
                     "raise max_wal_senders (ALTER SYSTEM SET max_wal_senders = %d; "
                     "then restart the server)",
                     s->max_wal_senders + 1 > 10 ? s->max_wal_senders + 1 : 10);
    }

    c = check_add(ret, &n, "role");
    snprintf(c->found, sizeof(c->found), "\"%s\"%s%s", s->user, s->superuser ? " SUPERUSER" : "",
             s->replication ? " REPLICATION" : "");
    if (!s->superuser && !s->replication) {
        cdc_err(&c->err, CDC_EPGSETUP,
                "role \"%s\" has neither the REPLICATION attribute nor SUPERUSER", s->user);
        cdc_err_hint(&c->err, "as a superuser run ALTER ROLE %s REPLICATION;", s->user_ident);
    }

    if (via_root) {
        c = check_add(ret, &n, "publish_via_partition_root");
        snprintf(c->found, sizeof(c->found), "%s",
                 s->version_num >= 130000 ? "supported" : "not supported");
        if (s->version_num < 130000) {
            cdc_err(&c->err, CDC_EPGSETUP,
                    "publication.via_root needs postgresql 13 or later, the server runs %s",
                    s->version);
            cdc_err_hint(&c->err, "set publication.via_root = false or upgrade the server");
        }
    }
    return n;
}

/* ------------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------------ */

/* snprintf into a new string of the exact size. */
static char *format_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format_new(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *cdc_admin_sql_create_pub(cdc_admin *a, const char *name, const cdc_admin_names *tables,
                               bool via_root)
{
    char *ident = cdc_pg_quote_ident(a->conn, name);
    char *list = tables ? cdc_admin_names_join(tables, ", ") : NULL;
    char *sql = NULL;
    if (ident && (tables == NULL || list))
        sql = format_new("CREATE PUBLICATION %s FOR %s%s%s;", ident, list ? "TABLE " : "ALL TABLES",
                         list ? list : "",
                         via_root && a->version_num >= 130000
                             ? " WITH (publish_via_partition_root = true)"
                             : "");
    free(ident);
    free(list);
    return sql;
}

char *cdc_admin_sql_create_slot(cdc_admin *a, const char *name)
{
    char *lit = cdc_pg_quote_literal(a->conn, name);
    char *sql =
        lit ? format_new("SELECT lsn FROM pg_create_logical_replication_slot(%s, 'pgoutput');", lit)
            : NULL;
    free(lit);
    return sql;
}

char *cdc_admin_sql_drop_pub(cdc_admin *a, const char *name)
{
    char *ident = cdc_pg_quote_ident(a->conn, name);
    char *sql = ident ? format_new("DROP PUBLICATION %s;", ident) : NULL;
    free(ident);
    return sql;
}

char *cdc_admin_sql_drop_slot(cdc_admin *a, const char *name)
{
    char *lit = cdc_pg_quote_literal(a->conn, name);
    char *sql = lit ? format_new("SELECT pg_drop_replication_slot(%s);", lit) : NULL;
    free(lit);
    return sql;
}

int cdc_admin_exec(cdc_admin *a, const char *what, const char *sql, char *ret_value,
                   size_t ret_size, cdc_error *err)
{
    PGresult *res = cdc_pg_exec(a->conn, what, sql, err);
    if (res == NULL)
        return CDC_EPG;
    if (ret_value && ret_size > 0) {
        ret_value[0] = '\0';
        if (PQntuples(res) > 0 && PQnfields(res) > 0)
            copy_field(ret_value, ret_size, res, 0, 0);
    }
    PQclear(res);
    return 0;
}
