/* cmd_teardown.c - pgcdc teardown: drop the replication slot and the publication */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli_int.h"
#include "pgcdc/admin.h"

/* Refuse a slot of the configured name that setup would not have made. */
static int check_slot_is_ours(const cdc_config *cfg, const char *database,
                              const cdc_admin_slot *slot, cdc_error *err)
{
    const char *name = cfg->slot_name;
    if (!slot->logical)
        cdc_err(err, CDC_EMISMATCH, "replication slot \"%s\" is a physical slot: not dropped",
                name);
    else if (strcmp(slot->plugin, "pgoutput") != 0)
        cdc_err(err, CDC_EMISMATCH,
                "replication slot \"%s\" uses plugin \"%s\", not pgcdc's \"pgoutput\": not dropped",
                name, slot->plugin);
    else if (strcmp(slot->database, database) != 0)
        cdc_err(err, CDC_EMISMATCH,
                "replication slot \"%s\" belongs to database \"%s\", not \"%s\": not dropped", name,
                slot->database, database);
    else
        return 0;
    cdc_err_detail(err, "nothing was dropped");
    cdc_err_hint(err,
                 "if nothing needs the slot, drop it by hand: SELECT "
                 "pg_drop_replication_slot('%s');",
                 name);
    return CDC_EMISMATCH;
}

/*
 * Ask on the terminal. Returns 0 when the answer is yes, CDC_EINTERRUPTED
 * for anything else (nothing dropped).
 */
static int confirm(const char *question, cdc_error *err)
{
    char answer[64];
    printf("%s [y/N] ", question);
    fflush(stdout);
    if (fgets(answer, sizeof(answer), stdin) == NULL)
        answer[0] = '\0';
    answer[strcspn(answer, "\r\n")] = '\0';
    if (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0)
        return 0;
    return cdc_err(err, CDC_EINTERRUPTED, "teardown cancelled: nothing was dropped");
}

/* Tell the operator the checkpoint no longer matches anything on the server. */
static void print_checkpoint_note(const char *path)
{
    if (access(path, F_OK) == 0)
        printf("checkpoint file \"%s\" is now stale and was kept: remove it before the next "
               "pgcdc start, or that start will refuse to run\n",
               path);
    else
        printf("no checkpoint file at \"%s\"\n", path);
}

int cdc_cmd_teardown(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    cdc_admin *a = NULL;
    cdc_admin_server srv;
    cdc_admin_slot slot;
    cdc_admin_pub pub = {0};
    char *slot_sql = NULL, *pub_sql = NULL;
    int rc;

    if (cfg->source_dsn[0] == '\0') {
        rc = cdc_err(err, CDC_ECONFIG, "source.dsn is not set");
        cdc_err_hint(err, "set source.dsn to a libpq connection string");
        return rc;
    }
    if ((rc = cdc_admin_open(cfg->source_dsn, &a, err)) < 0)
        return rc;
    if ((rc = cdc_admin_server_info(a, &srv, err)) < 0 ||
        (rc = cdc_admin_slot_get(a, cfg->slot_name, &slot, err)) < 0 ||
        (rc = cdc_admin_pub_get(a, cfg->publication_name, &pub, err)) < 0)
        goto out;

    if (slot.exists && (rc = check_slot_is_ours(cfg, srv.database, &slot, err)) < 0)
        goto out;
    if (slot.active) {
        rc = cdc_err(err, CDC_EPG, "replication slot \"%s\" is active for PID %d: not dropped",
                     cfg->slot_name, slot.active_pid);
        cdc_err_detail(err, "nothing was dropped");
        cdc_err_hint(err,
                     "stop the pgcdc (or other client) that streams from the slot and run "
                     "teardown again; SELECT pg_terminate_backend(%d); ends its connection",
                     slot.active_pid);
        goto out;
    }

    if (pub.exists && !pub.can_drop) {
        rc = cdc_err(err, CDC_EPG,
                     "publication \"%s\" is owned by \"%s\": role \"%s\" cannot drop it",
                     cfg->publication_name, pub.owner, srv.user);
        cdc_err_detail(err, "nothing was dropped");
        cdc_err_hint(err, "run teardown with a source.dsn of the owner or a superuser (or run "
                          "sql/teardown.sql as one)");
        goto out;
    }
    if (slot.exists && !srv.superuser && !srv.replication) {
        rc = cdc_err(err, CDC_EPG,
                     "role \"%s\" cannot drop replication slot \"%s\": it needs REPLICATION "
                     "or SUPERUSER",
                     srv.user, cfg->slot_name);
        cdc_err_detail(err, "nothing was dropped");
        cdc_err_hint(err, "run teardown as a role with REPLICATION or as a superuser");
        goto out;
    }

    if (slot.exists || pub.exists) {
        char targets[600], question[1024];
        if (slot.exists && pub.exists)
            snprintf(targets, sizeof(targets), "slot \"%s\" and publication \"%s\"", cfg->slot_name,
                     cfg->publication_name);
        else if (slot.exists)
            snprintf(targets, sizeof(targets), "slot \"%s\"", cfg->slot_name);
        else
            snprintf(targets, sizeof(targets), "publication \"%s\"", cfg->publication_name);
        snprintf(question, sizeof(question), "drop %s on database \"%s\"?", targets, srv.database);
        if (!args->yes) {
            if (!isatty(STDIN_FILENO)) {
                rc = cdc_err(err, CDC_EUSAGE,
                             "teardown needs --yes when standard input is not a terminal");
                cdc_err_detail(err,
                               "nothing was dropped; teardown would drop %s on database "
                               "\"%s\"",
                               targets, srv.database);
                cdc_err_hint(err, "run pgcdc teardown -c FILE --yes to drop them without asking");
                goto out;
            }
            if ((rc = confirm(question, err)) < 0)
                goto out;
        }
    }

    char what[256];
    if (slot.exists) {
        if ((slot_sql = cdc_admin_sql_drop_slot(a, cfg->slot_name)) == NULL) {
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(what, sizeof(what), "drop replication slot \"%s\"", cfg->slot_name);
        if ((rc = cdc_admin_exec(a, what, slot_sql, NULL, 0, err)) < 0)
            goto out;
        printf("dropped replication slot \"%s\"\n", cfg->slot_name);
    } else {
        printf("replication slot \"%s\" does not exist (already absent)\n", cfg->slot_name);
    }
    if (pub.exists) {
        if ((pub_sql = cdc_admin_sql_drop_pub(a, cfg->publication_name)) == NULL) {
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(what, sizeof(what), "drop publication \"%s\"", cfg->publication_name);
        if ((rc = cdc_admin_exec(a, what, pub_sql, NULL, 0, err)) < 0)
            goto out;
        printf("dropped publication \"%s\"\n", cfg->publication_name);
    } else {
        printf("publication \"%s\" does not exist (already absent)\n", cfg->publication_name);
    }
    print_checkpoint_note(cfg->checkpoint_path);
    rc = 0;

out:
    free(slot_sql);
    free(pub_sql);
    cdc_admin_pub_free(&pub);
    cdc_admin_close(a);
    return rc;
}
