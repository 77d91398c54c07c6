/* admin.h - slot and publication administration on the source database (setup, status, teardown) */
#ifndef PGCDC_ADMIN_H
#define PGCDC_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgcdc/error.h"
#include "pgcdc/lsn.h"

/* The oldest server pgcdc supports (server_version_num). */
#define CDC_ADMIN_MIN_SERVER_VERSION 100000

/* An ordinary SQL session on the source database; opaque. */
typedef struct cdc_admin cdc_admin;

/*
 * A sorted list of table names, each schema-qualified and quoted as SQL
 * needs it: public.orders, "Sales"."Q1". The strings are owned by the list.
 */
typedef struct cdc_admin_names {
    char **v;
    size_t n;
} cdc_admin_names;

/* What setup and status need to know about the server and the session's role. */
typedef struct cdc_admin_server {
    int version_num;            /* server_version_num, e.g. 150004 */
    char version[64];           /* server_version, e.g. "15.4 (Debian 15.4-1)" */
    uint64_t system_id;         /* pg_control_system().system_identifier */
    char database[128];         /* current_database() */
    char user[128];             /* current_user */
    char user_ident[260];       /* current_user quoted as an SQL identifier */
    bool superuser;             /* role is a superuser */
    bool replication;           /* role has the REPLICATION attribute */
    char wal_level[32];         /* minimal, replica or logical */
    int max_replication_slots;  /* setting */
    int used_replication_slots; /* rows in pg_replication_slots */
    int max_wal_senders;        /* setting */
    int used_wal_senders;       /* walsender processes running */
    cdc_lsn current_lsn;        /* pg_current_wal_lsn() */
} cdc_admin_server;

/* One row of pg_replication_slots, plus the WAL it holds back. */
typedef struct cdc_admin_slot {
    bool exists;                 /* false: every other field is zero */
    bool logical;                /* slot_type = logical */
    bool temporary;              /* a temporary slot (dies with its session) */
    char plugin[64];             /* output plugin, "" for a physical slot */
    char database[128];          /* database of a logical slot, "" for a physical one */
    bool active;                 /* a walsender or backend is using it */
    int active_pid;              /* that process, 0 when inactive */
    cdc_lsn restart_lsn;         /* oldest WAL the slot needs, CDC_INVALID_LSN if none */
    cdc_lsn confirmed_flush_lsn; /* what the consumer confirmed, CDC_INVALID_LSN if none */
    char wal_status[16];         /* reserved, extended, unreserved, lost; "" before PG13 */
    int64_t retained_bytes;      /* current WAL position - restart_lsn, -1 when unknown */
    int64_t lag_bytes;           /* current WAL position - confirmed_flush_lsn, -1 unknown */
} cdc_admin_slot;

/* One row of pg_publication with its tables. */
typedef struct cdc_admin_pub {
    bool exists;               /* false: every other field is zero */
    bool all_tables;           /* FOR ALL TABLES */
    bool via_root;             /* publish_via_partition_root (always false before PG13) */
    bool pub_insert;           /* publish = 'insert' ... */
    bool pub_update;           /* */
    bool pub_delete;           /* */
    bool pub_truncate;         /* (always false before PG11) */
    char owner[128];           /* role that owns it */
    bool can_drop;             /* the session's role owns it (or is a superuser) */
    cdc_admin_names tables;    /* tables named in the publication (FOR TABLE), owned */
    cdc_admin_names schemas;   /* schemas named (FOR TABLES IN SCHEMA, PG15+), owned */
    cdc_admin_names published; /* pg_publication_tables: what it publishes now, owned */
} cdc_admin_pub;

/* A published table whose updates and deletes cannot carry a key, and the fix. */
typedef struct cdc_admin_ri_problem {
    char *table;  /* qualified name, owned */
    char *reason; /* e.g. "no primary key and REPLICA IDENTITY DEFAULT", owned */
    char *fix;    /* e.g. "ALTER TABLE public.t REPLICA IDENTITY FULL;", owned */
} cdc_admin_ri_problem;

/* The outcome of one server check made by cdc_admin_check_server(). */
typedef struct cdc_admin_check {
    const char *name; /* what was checked, e.g. "wal_level"; static */
    char found[256];  /* what was found, e.g. "logical" or "3 of 10 used" */
    cdc_error err;    /* err.code == 0 when the check passed, else CDC_EPGSETUP and why */
} cdc_admin_check;

/* Most checks cdc_admin_check_server() makes. */
#define CDC_ADMIN_MAX_CHECKS 8

/* ------------------------------------------------------------------------
 * Session
 * ------------------------------------------------------------------------ */

/*
 * Connect to the source database (a libpq conninfo). Returns 0 and a new
 * session in *ret (free with cdc_admin_close), or CDC_EPGCONN with libpq's
 * reason, the redacted DSN and a hint; *ret is unchanged on error.
 */
int cdc_admin_open(const char *dsn, cdc_admin **ret, cdc_error *err);
/* Close the session and free it. Accepts NULL; returns NULL. */
cdc_admin *cdc_admin_close(cdc_admin *a);

/*
 * Open a replication connection (replication=database) with dsn and run
 * IDENTIFY_SYSTEM, as the stream will. Returns 0, or CDC_EPGSETUP with the
 * server's reason and a hint (REPLICATION attribute, pg_hba.conf, wal senders).
 */
int cdc_admin_check_replication_conn(const char *dsn, cdc_error *err);

/* ------------------------------------------------------------------------
 * Inspection (read only)
 * ------------------------------------------------------------------------ */

/*
 * Fill *ret with the server's version, settings and the role's attributes.
 * On a server older than CDC_ADMIN_MIN_SERVER_VERSION only version_num,
 * version, database, user, user_ident, superuser, replication and wal_level
 * are set. Returns 0 or CDC_EPG (*ret may be partly filled).
 */
int cdc_admin_server_info(cdc_admin *a, cdc_admin_server *ret, cdc_error *err);

/* Look up a replication slot by name. Returns 0 (ret->exists says whether found) or CDC_EPG. */
int cdc_admin_slot_get(cdc_admin *a, const char *name, cdc_admin_slot *ret, cdc_error *err);

/*
 * Look up a publication by name. Returns 0 (ret->exists says whether found;
 * free with cdc_admin_pub_free either way) or CDC_EPG / CDC_ENOMEM with
 * *ret emptied.
 */
int cdc_admin_pub_get(cdc_admin *a, const char *name, cdc_admin_pub *ret, cdc_error *err);
/* Free what a publication owns and zero it. Accepts NULL. */
void cdc_admin_pub_free(cdc_admin_pub *p);

/*
 * Resolve publication.tables ("schema.table" or "table" separated by commas,
 * resolved with the session's search_path like SQL does) into qualified
 * names. An empty list gives ret->n == 0 (meaning all tables). Returns 0, or
 * CDC_ECONFIG naming an entry that is empty, not a table or does not exist
 * (ret empty), or CDC_EPG.
 */
int cdc_admin_resolve_tables(cdc_admin *a, const char *list, cdc_admin_names *ret, cdc_error *err);

/*
 * The tables of `tables` (NULL: every ordinary and partitioned table outside
 * the system schemas, as FOR ALL TABLES publishes) that the session's role
 * cannot SELECT from (no SELECT on the table or no USAGE on its schema), in
 * *ret (caller frees with cdc_admin_names_free); *ret_checked gets the
 * number of tables checked. Returns 0 or CDC_EPG / CDC_ENOMEM.
 */
int cdc_admin_unreadable_tables(cdc_admin *a, const cdc_admin_names *tables, cdc_admin_names *ret,
                                size_t *ret_checked, cdc_error *err);

/*
 * Published tables that cannot produce keyed updates and deletes: REPLICA
 * IDENTITY NOTHING, DEFAULT without a primary key, or USING INDEX whose
 * index is gone. tables as for cdc_admin_unreadable_tables (partitioned
 * tables stand for their leaf partitions). Returns 0 with a new array in
 * *ret (free with cdc_admin_ri_free) and its length in *ret_n, or CDC_EPG /
 * CDC_ENOMEM with *ret NULL and *ret_n 0.
 */
int cdc_admin_ri_problems(cdc_admin *a, const cdc_admin_names *tables, cdc_admin_ri_problem **ret,
                          size_t *ret_n, cdc_error *err);
/* Free an array from cdc_admin_ri_problems. Accepts NULL. */
void cdc_admin_ri_free(cdc_admin_ri_problem *p, size_t n);

/*
 * Check what logical replication with pgcdc needs: server version,
 * wal_level, a free replication slot (unless slot exists already), a free
 * wal sender (unless slot is active), REPLICATION or superuser, and
 * publish_via_partition_root support when via_root. Fills up to
 * CDC_ADMIN_MAX_CHECKS entries of ret in order and returns how many; each
 * failed one carries CDC_EPGSETUP, the reason and a hint saying how to fix it.
 */
size_t cdc_admin_check_server(const cdc_admin_server *s, const cdc_admin_slot *slot, bool via_root,
                              cdc_admin_check *ret);

/* ------------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------------ */

/*
 * The statement that creates publication name for tables (NULL: FOR ALL
 * TABLES), with publish_via_partition_root when via_root on PG13+. Returns
 * a new string ending in ";" (caller frees) or NULL when out of memory.
 */
char *cdc_admin_sql_create_pub(cdc_admin *a, const char *name, const cdc_admin_names *tables,
                               bool via_root);
/* The statement that creates logical slot name with pgoutput; new string or NULL. */
char *cdc_admin_sql_create_slot(cdc_admin *a, const char *name);
/* The statements that drop them; new strings or NULL. */
char *cdc_admin_sql_drop_pub(cdc_admin *a, const char *name);
char *cdc_admin_sql_drop_slot(cdc_admin *a, const char *name);

/*
 * Run one statement (from the cdc_admin_sql_* functions). what names the
 * action for the error message ("create publication \"p\""). When ret_value
 * is not NULL it gets the first column of the first row ("" if none),
 * truncated to ret_size. Returns 0 or CDC_EPG with the server's message,
 * detail and hint.
 */
int cdc_admin_exec(cdc_admin *a, const char *what, const char *sql, char *ret_value,
                   size_t ret_size, cdc_error *err);

/* ------------------------------------------------------------------------
 * Name lists
 * ------------------------------------------------------------------------ */

/* True when both lists hold the same names (both are sorted). */
bool cdc_admin_names_equal(const cdc_admin_names *x, const cdc_admin_names *y);
/*
 * Join the names with sep into a new string ("" for an empty list); NULL
 * when out of memory.
 */
char *cdc_admin_names_join(const cdc_admin_names *l, const char *sep);
/* Free the strings and zero the list. Accepts NULL. */
void cdc_admin_names_free(cdc_admin_names *l);

#endif
