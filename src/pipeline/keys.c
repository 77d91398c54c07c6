/* keys.c - Kafka keys for REPLICA IDENTITY FULL tables: their primary key, not every column */
#include "keys.h"

#include <stdlib.h>
#include <string.h>

#include "pgcdc/log.h"

/* Recompute e's key mask for the columns of ev; 0 or CDC_ENOMEM. */
static int build(cdc_keymap_entry *e, const cdc_event *ev)
{
    free(e->keys);
    free(e->cols);
    e->keys = NULL;
    e->cols = NULL;
    e->nkeys = 0;
    e->cols = malloc(sizeof(*e->cols) * (ev->ncols ? ev->ncols : 1));
    e->keys = malloc(sizeof(*e->keys) * (ev->ncols ? ev->ncols : 1));
    if (e->cols == NULL || e->keys == NULL)
        return CDC_ENOMEM;
    for (size_t i = 0; i < ev->ncols; i++) {
        bool key = false;
        for (char **p = e->pk; p && *p; p++)
            if (strcmp(*p, ev->columns[i].name) == 0)
                key = true;
        if (key)
            e->keys[e->nkeys++] = (uint16_t)i;
    }
    /* a primary key column missing from the publication's column list: no usable key */
    size_t npk = 0;
    for (char **p = e->pk; p && *p; p++)
        npk++;
    if (e->nkeys != npk)
        e->nkeys = 0;
    e->src_cols = ev->columns;
    e->ncols = ev->ncols;
    return 0;
}

int cdc_keymap_apply(cdc_keymap *m, const cdc_event *ev, cdc_event *ret, cdc_error *err)
{
    cdc_keymap_entry *e = NULL;
    for (size_t i = 0; i < m->n; i++)
        if (m->entries[i].relid == ev->relid)
            e = &m->entries[i];
    if (e == NULL) {
        cdc_keymap_entry *n = realloc(m->entries, sizeof(*n) * (m->n + 1));
        if (n == NULL)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        m->entries = n;
        e = &m->entries[m->n++];
        memset(e, 0, sizeof(*e));
        e->relid = ev->relid;
        e->stale = true;
    }
    if (e->stale) {
        if (m->catalog == NULL) {
            int rc = cdc_catalog_open(m->dsn, &m->catalog, err);
            if (rc < 0)
                return rc;
        }
        free(e->pk);
        e->pk = NULL;
        int rc = cdc_catalog_primary_key(m->catalog, ev->relid, &e->pk, err);
        if (rc < 0)
            return rc;
        e->stale = false;
        e->src_cols = NULL;
        if (e->pk[0] == NULL)
            cdc_log_info("table \"%s.%s\" has REPLICA IDENTITY FULL and no primary key: its "
                         "messages get a null key and one partition",
                         ev->schema, ev->table);
    }
    if ((e->src_cols != ev->columns || e->ncols != ev->ncols) && build(e, ev) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    *ret = *ev;
    for (size_t i = 0; i < ev->ncols; i++) {
        e->cols[i] = ev->columns[i];
        e->cols[i].is_key = false;
    }
    for (size_t k = 0; k < e->nkeys; k++)
        e->cols[e->keys[k]].is_key = true;
    ret->columns = e->cols;
    ret->keys = e->keys;
    ret->nkeys = e->nkeys;
    return 0;
}

void cdc_keymap_invalidate(cdc_keymap *m, uint32_t relid)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->entries[i].relid == relid)
            m->entries[i].stale = true;
}

void cdc_keymap_close(cdc_keymap *m)
{
    cdc_catalog_close(m->catalog);
    m->catalog = NULL;
}

void cdc_keymap_free(cdc_keymap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->entries[i].pk);
        free(m->entries[i].cols);
        free(m->entries[i].keys);
    }
    free(m->entries);
    cdc_keymap_close(m);
    memset(m, 0, sizeof(*m));
}
