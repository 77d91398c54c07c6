/* cmd_snapshot.c - pgcdc snapshot --tables: ask pgcdc to read published tables again */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "pgcdc/buf.h"
#include "pgcdc/snapread.h"

/* The published table that name ("schema.table", or "table" when one schema has it)
 * names, or NULL with err set. */
static const cdc_snap_table *resolve(const cdc_snap_table *t, size_t n, const char *name,
                                     const char *publication, cdc_error *err)
{
    const char *dot = strchr(name, '.');
    const cdc_snap_table *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < n; i++) {
        bool same = dot ? (strlen(t[i].schema) == (size_t)(dot - name) &&
                           strncmp(t[i].schema, name, (size_t)(dot - name)) == 0 &&
                           strcmp(t[i].table, dot + 1) == 0)
                        : strcmp(t[i].table, name) == 0;
        if (same) {
            found = &t[i];
            matches++;
        }
    }
    if (matches == 1)
        return found;
    if (matches > 1) {
        cdc_err(err, CDC_EUSAGE, "table \"%s\" is in more than one schema of publication \"%s\"",
                name, publication);
        cdc_err_hint(err, "name it as schema.table");
    } else {
        cdc_err(err, CDC_EUSAGE, "table \"%s\" is not in publication \"%s\"", name, publication);
        cdc_err_hint(err, "pgcdc reads only published tables; pgcdc status lists them");
    }
    return NULL;
}

int cdc_cmd_snapshot(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    if (args->tables == NULL || args->tables[0] == '\0') {
        cdc_err(err, CDC_EUSAGE, "pgcdc snapshot: --tables is required");
        cdc_err_hint(err, "pgcdc snapshot -c FILE --tables public.orders,public.customers");
        return CDC_EUSAGE;
    }
    cdc_snapread *r = NULL;
    cdc_snap_table *t = NULL;
    size_t n = 0;
    int rc = cdc_snapread_open(cfg->source_dsn, &r, err);
    if (rc == 0 && cdc_snapread_server_version(r) < 140000) {
        rc = cdc_err(err, CDC_ECONFIG,
                     "snapshots need PostgreSQL 14 or later (pgoutput sends logical decoding "
                     "messages from 14 on)");
    }
    if (rc == 0)
        rc = cdc_snapread_tables(r, cfg->publication_name, &t, &n, err);
    cdc_buf content = {0}, names = {0};
    if (rc == 0 && cdc_buf_printf(&content, "execute-snapshot %s ", cfg->slot_name) < 0)
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    char *list = rc == 0 ? strdup(args->tables) : NULL;
    if (rc == 0 && list == NULL)
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    size_t count = 0;
    char *save = NULL;
    for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (len == 0)
            continue;
        const cdc_snap_table *x = resolve(t, n, tok, cfg->publication_name, err);
        if (x == NULL) {
            rc = CDC_EUSAGE;
            break;
        }
        if (x->nchunk == 0) {
            cdc_err(err, CDC_EUSAGE,
                    "table \"%s.%s\" has no primary key or replica identity index: it cannot "
                    "be read again while streaming",
                    x->schema, x->table);
            cdc_err_detail(err, "its rows would come again beside the ones consumers already "
                                "have, with nothing to tell them apart (Debezium's incremental "
                                "snapshots need a key too)");
            cdc_err_hint(err, "add a primary key (or REPLICA IDENTITY USING INDEX) to it");
            rc = CDC_EUSAGE;
            break;
        }
        if (cdc_buf_printf(&content, "%s%u", count ? "," : "", x->relid) < 0 ||
            cdc_buf_printf(&names, "%s%s.%s", count ? ", " : "", x->schema, x->table) < 0)
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
        count++;
    }
    if (rc == 0 && count == 0)
        rc = cdc_err(err, CDC_EUSAGE, "pgcdc snapshot: --tables names no table");
    if (rc == 0 && count > 1000) {
        /* what remains to read is recorded in the checkpoint, which has room for so many */
        cdc_err(err, CDC_EUSAGE, "pgcdc snapshot: %zu tables at once; at most 1000", count);
        cdc_err_hint(err, "ask for them in several requests, one after the other finishes");
        rc = CDC_EUSAGE;
    }
    cdc_lsn at = 0;
    if (rc == 0 && (cdc_buf_append(&content, "", 1) < 0 || cdc_buf_append(&names, "", 1) < 0))
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    if (rc == 0)
        rc = cdc_snapread_message(r, CDC_SIGNAL_PREFIX, (const char *)content.data, &at, err);
    if (rc == 0) {
        char lsn[CDC_LSN_STRLEN];
        printf("requested a snapshot of %zu table%s (%s) for slot \"%s\" at %s\n", count,
               count == 1 ? "" : "s", (const char *)names.data, cfg->slot_name,
               cdc_lsn_format(at, lsn));
        printf("pgcdc reads them while it streams, when its stream reaches that position (a "
               "stopped pgcdc when it next starts); pgcdc status shows the progress\n");
    }
    free(list);
    cdc_buf_free(&content);
    cdc_buf_free(&names);
    cdc_snap_tables_free(t, n);
    cdc_snapread_close(r);
    return rc;
}
