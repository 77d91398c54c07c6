/* cmd_setup.c - pgcdc setup: check the server, create the publication and the slot if missing */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "pgcdc/admin.h"

/* Print one check result line and, for a failure, its reason and hint. */
static void print_check(const cdc_admin_check *c)
{
    if (c->err.code == 0) {
        printf("ok      %s: %s\n", c->name, c->found);
        return;
    }
    printf("FAILED  %s: %s\n", c->name, c->err.msg);
    if (c->err.hint[0])
        printf("        hint: %s\n", c->err.hint);
}

/* Record a finished check: print it and keep the first failure in err. */
static void finish_check(const cdc_admin_check *c, cdc_error *err, int *failed)
{
    print_check(c);
    if (c->err.code != 0 && (*failed)++ == 0 && err && err->code == 0)
        *err = c->err;
}

/*
 * Compare an existing publication with the configuration. Returns 0 when it
 * publishes what the configuration asks for, else CDC_EMISMATCH with what
 * differs and the statement that would align it.
 */
static int check_existing_pub(const cdc_config *cfg, const cdc_admin_server *srv,
                              const cdc_admin_pub *pub, const cdc_admin_names *want, cdc_error *err)
{
    const char *name = cfg->publication_name;
    bool want_all = want->n == 0;
    char *have = cdc_admin_names_join(&pub->tables, ", ");
    char *wanted = cdc_admin_names_join(want, ", ");
    int rc = 0;

    if (have == NULL || wanted == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    } else if (pub->schemas.n > 0) {
        char *schemas = cdc_admin_names_join(&pub->schemas, ", ");
        rc = cdc_err(err, CDC_EMISMATCH,
                     "publication \"%s\" exists but publishes whole schemas (%s), which "
                     "publication.tables cannot describe",
                     name, schemas ? schemas : "");
        cdc_err_hint(err,
                     "drop the publication (DROP PUBLICATION %s;) and run setup again, or "
                     "use another publication.name",
                     name);
        free(schemas);
    } else if (want_all != pub->all_tables ||
               (!want_all && !cdc_admin_names_equal(want, &pub->tables))) {
        rc = cdc_err(err, CDC_EMISMATCH,
                     "publication \"%s\" exists with other tables than the configuration", name);
        cdc_err_detail(err, "publication has %s%s; publication.tables asks for %s%s",
                       pub->all_tables ? "ALL TABLES" : "tables: ", pub->all_tables ? "" : have,
                       want_all ? "ALL TABLES" : "tables: ", want_all ? "" : wanted);
        if (!want_all && !pub->all_tables)
            cdc_err_hint(err,
                         "to publish the configured tables run ALTER PUBLICATION %s SET "
                         "TABLE %s; or change publication.tables",
                         name, wanted);
        else
            cdc_err_hint(err,
                         "drop the publication (DROP PUBLICATION %s;) and run setup again, "
                         "or change publication.tables",
                         name);
    } else if (srv->version_num >= 130000 && pub->via_root != cfg->publication_via_root) {
        rc = cdc_err(err, CDC_EMISMATCH,
                     "publication \"%s\" has publish_via_partition_root = %s but "
                     "publication.via_root is %s",
                     name, pub->via_root ? "true" : "false",
                     cfg->publication_via_root ? "true" : "false");
        cdc_err_hint(err,
                     "run ALTER PUBLICATION %s SET (publish_via_partition_root = %s); or "
                     "change publication.via_root",
                     name, cfg->publication_via_root ? "true" : "false");
    }
    free(have);
    free(wanted);
    return rc;
}

/* Refuse a slot of the same name that pgcdc cannot use. */
static int check_existing_slot(const cdc_config *cfg, const cdc_admin_server *srv,
                               const cdc_admin_slot *slot, cdc_error *err)
{
    const char *name = cfg->slot_name;
    if (!slot->logical)
        cdc_err(err, CDC_EMISMATCH, "replication slot \"%s\" exists but is a physical slot", name);
    else if (strcmp(slot->plugin, "pgoutput") != 0)
        cdc_err(err, CDC_EMISMATCH,
                "replication slot \"%s\" exists with output plugin \"%s\", pgcdc needs "
                "\"pgoutput\"",
                name, slot->plugin);
    else if (strcmp(slot->database, srv->database) != 0)
        cdc_err(err, CDC_EMISMATCH,
                "replication slot \"%s\" exists in database \"%s\", not in \"%s\"", name,
                slot->database, srv->database);
    else
        return 0;
    cdc_err_hint(err,
                 "use another slot.name, or drop the slot if nothing needs it: SELECT "
                 "pg_drop_replication_slot('%s');",
                 name);
    return CDC_EMISMATCH;
}

/* Print the replica identity problems as warnings. */
static void print_ri_warnings(const cdc_admin_ri_problem *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("warning: table %s cannot produce keyed updates and deletes: %s\n", p[i].table,
               p[i].reason);
        printf("         fix: %s\n", p[i].fix);
    }
    if (n > 0)
        printf("         (while such a table is published, UPDATE and DELETE on it fail on the "
               "server)\n");
}

int cdc_cmd_setup(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    cdc_admin *a = NULL;
    cdc_admin_server srv;
    cdc_admin_slot slot;
    cdc_admin_pub pub = {0};
    cdc_admin_names tables = {0}, unreadable = {0};
    cdc_admin_ri_problem *ri = NULL;
    size_t n_ri = 0, n_checked = 0;
    char *pub_sql = NULL, *slot_sql = NULL;
    int failed = 0, rc;

    if (cfg->source_dsn[0] == '\0') {
        rc = cdc_err(err, CDC_ECONFIG, "source.dsn is not set");
        cdc_err_hint(err, "set source.dsn to a libpq connection string, e.g. \"host=db "
                          "dbname=app user=pgcdc\"");
        return rc;
    }
    char *shown = cdc_config_redact_dsn(cfg->source_dsn);
    printf("checking %s\n", shown ? shown : "source.dsn");
    free(shown);
    if ((rc = cdc_admin_open(cfg->source_dsn, &a, err)) < 0)
        return rc;

    /* Checks: read only, all of them run so the operator sees every problem at once. */
    if ((rc = cdc_admin_server_info(a, &srv, err)) < 0)
        goto out;
    memset(&slot, 0, sizeof(slot));
    if (srv.version_num >= CDC_ADMIN_MIN_SERVER_VERSION &&
        (rc = cdc_admin_slot_get(a, cfg->slot_name, &slot, err)) < 0)
        goto out;
    cdc_admin_check checks[CDC_ADMIN_MAX_CHECKS];
    size_t n_checks = cdc_admin_check_server(&srv, &slot, cfg->publication_via_root, checks);
    bool role_ok = true;
    for (size_t i = 0; i < n_checks; i++) {
        finish_check(&checks[i], err, &failed);
        if (strcmp(checks[i].name, "role") == 0 && checks[i].err.code != 0)
            role_ok = false;
    }
    if (srv.version_num < CDC_ADMIN_MIN_SERVER_VERSION) {
        rc = err->code;
        goto out;
    }
    if (role_ok) {
        cdc_admin_check c = {.name = "replication connection"};
        if (cdc_admin_check_replication_conn(cfg->source_dsn, &c.err) == 0)
            snprintf(c.found, sizeof(c.found), "accepted");
        finish_check(&c, err, &failed);
    }

    if ((rc = cdc_admin_resolve_tables(a, cfg->publication_tables, &tables, err)) < 0)
        goto out;
    const cdc_admin_names *published = tables.n > 0 ? &tables : NULL;
    if ((rc = cdc_admin_unreadable_tables(a, published, &unreadable, &n_checked, err)) < 0)
        goto out;
    cdc_admin_check c = {.name = "table privileges"};
    if (unreadable.n == 0) {
        snprintf(c.found, sizeof(c.found), "\"%s\" can read the %zu published table%s%s", srv.user,
                 n_checked, n_checked == 1 ? "" : "s",
                 published ? "" : " (all tables of the database)");
    } else {
        char *list = cdc_admin_names_join(&unreadable, ", ");
        cdc_err(&c.err, CDC_EPGSETUP, "role \"%s\" cannot read %zu of the published tables: %s",
                srv.user, unreadable.n, list ? list : "");
        cdc_err_hint(&c.err,
                     "as the tables' owner or a superuser run GRANT SELECT ON %s TO %s; "
                     "(and GRANT USAGE ON SCHEMA ... where the schema is not readable)",
                     list ? list : "...", srv.user_ident);
        free(list);
    }
    finish_check(&c, err, &failed);
    if (failed > 0) {
        if (failed > 1)
            cdc_err_detail(err, "%d checks failed, see the list above", failed);
        rc = err->code;
        goto out;
    }

    /* Existing objects must be what the configuration describes. */
    if ((rc = cdc_admin_pub_get(a, cfg->publication_name, &pub, err)) < 0)
        goto out;
    if (pub.exists && (rc = check_existing_pub(cfg, &srv, &pub, &tables, err)) < 0)
        goto out;
    if (slot.exists && (rc = check_existing_slot(cfg, &srv, &slot, err)) < 0)
        goto out;

    /* Changes: the publication first, so the slot's decoding sees it from its start. */
    if (!pub.exists && (pub_sql = cdc_admin_sql_create_pub(a, cfg->publication_name, published,
                                                           cfg->publication_via_root)) == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        goto out;
    }
    if (!slot.exists && (slot_sql = cdc_admin_sql_create_slot(a, cfg->slot_name)) == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        goto out;
    }
    const char *pub_kind = published ? "for the configured tables" : "FOR ALL TABLES";
    if (args->dry_run) {
        printf("-- dry run: the SQL setup would run, nothing is changed\n");
        if (pub_sql)
            printf("%s\n", pub_sql);
        else
            printf("-- publication \"%s\" already exists\n", cfg->publication_name);
        if (slot_sql)
            printf("%s\n", slot_sql);
        else
            printf("-- replication slot \"%s\" already exists\n", cfg->slot_name);
    } else {
        char what[256], lsn[64];
        if (pub_sql) {
            snprintf(what, sizeof(what), "create publication \"%s\"", cfg->publication_name);
            if ((rc = cdc_admin_exec(a, what, pub_sql, NULL, 0, err)) < 0)
                goto out;
            printf("created publication \"%s\" %s\n", cfg->publication_name, pub_kind);
        } else {
            printf("publication \"%s\" already exists %s\n", cfg->publication_name, pub_kind);
        }
        if (slot_sql) {
            snprintf(what, sizeof(what), "create replication slot \"%s\"", cfg->slot_name);
            if ((rc = cdc_admin_exec(a, what, slot_sql, lsn, sizeof(lsn), err)) < 0) {
                /* leave nothing half done: drop the publication this run created */
                char *drop = pub_sql ? cdc_admin_sql_drop_pub(a, cfg->publication_name) : NULL;
                cdc_error derr = {0};
                if (drop && cdc_admin_exec(a, "drop publication", drop, NULL, 0, &derr) == 0)
                    cdc_err_detail(err,
                                   "setup dropped the publication \"%s\" it had just "
                                   "created: nothing was changed",
                                   cfg->publication_name);
                else if (drop)
                    cdc_err_detail(err, "the publication \"%s\" created just before stays: %s",
                                   cfg->publication_name, derr.msg);
                free(drop);
                goto out;
            }
            printf("created replication slot \"%s\" (plugin pgoutput, database \"%s\") at %s\n",
                   cfg->slot_name, srv.database, lsn);
        } else {
            printf("replication slot \"%s\" already exists (plugin pgoutput, database \"%s\")\n",
                   cfg->slot_name, srv.database);
        }
    }

    /* Warnings only: streaming works, but these tables' updates lack a key. */
    if ((rc = cdc_admin_ri_problems(a, published, &ri, &n_ri, err)) < 0)
        goto out;
    if (n_ri == 0)
        printf("ok      replica identity: every published table has a key for updates and "
               "deletes\n");
    print_ri_warnings(ri, n_ri);
    if (args->dry_run)
        printf("dry run complete: nothing was changed\n");
    else
        printf("setup complete: publication \"%s\" and replication slot \"%s\" on database "
               "\"%s\"\n",
               cfg->publication_name, cfg->slot_name, srv.database);
    rc = 0;

out:
    free(pub_sql);
    free(slot_sql);
    cdc_admin_ri_free(ri, n_ri);
    cdc_admin_names_free(&tables);
    cdc_admin_names_free(&unreadable);
    cdc_admin_pub_free(&pub);
    cdc_admin_close(a);
    return rc;
}
