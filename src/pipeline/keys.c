/* keys.c - Kafka keys where pgoutput names none or every column (REPLICA IDENTITY FULL, or no
 * primary key): the primary key, else the first unique index on NOT NULL columns, as Debezium */
#include "keys.h"

#include <stdio.h>
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
    /* the caches built on the old e->cols (its address may well be reused) are stale */
    e->fsrc_cols = NULL;
    e->dsrc_cols = NULL;
    return 0;
}

/* The entry of relid, added (stale) when new; NULL when out of memory. */
static cdc_keymap_entry *entry(cdc_keymap *m, uint32_t relid)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->entries[i].relid == relid)
            return &m->entries[i];
    cdc_keymap_entry *n = realloc(m->entries, sizeof(*n) * (m->n + 1));
    if (n == NULL)
        return NULL;
    m->entries = n;
    cdc_keymap_entry *e = &m->entries[m->n++];
    memset(e, 0, sizeof(*e));
    e->relid = relid;
    e->stale = true;
    e->fills_stale = true;
    e->domains_stale = true;
    return e;
}

static int catalog(cdc_keymap *m, cdc_error *err)
{
    return m->catalog == NULL ? cdc_catalog_open(m->dsn, &m->catalog, err) : 0;
}

int cdc_keymap_apply(cdc_keymap *m, const cdc_event *ev, cdc_event *ret, cdc_error *err)
{
    cdc_keymap_entry *e = entry(m, ev->relid);
    if (e == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    if (e->stale) {
        int rc = catalog(m, err);
        if (rc < 0)
            return rc;
        free(e->pk);
        e->pk = NULL;
        rc = cdc_catalog_primary_key(m->catalog, ev->relid, &e->pk, err);
        if (rc < 0)
            return rc;
        e->stale = false;
        e->src_cols = NULL;
        if (e->pk[0] == NULL && !e->warned) {
            if (ev->replident == CDC_EVENT_REPLIDENT_FULL)
                cdc_log_warning("table \"%s.%s\" has REPLICA IDENTITY FULL, no primary key and no "
                                "unique index on NOT NULL columns: its messages get a null key, "
                                "and all go to one partition",
                                ev->schema, ev->table);
            e->warned = true;
        }
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

int cdc_keymap_fill(cdc_keymap *m, const cdc_event *ev, cdc_event *ret, cdc_error *err)
{
    cdc_keymap_entry *e = entry(m, ev->relid);
    if (e == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    if (e->fills_stale) {
        int rc = catalog(m, err);
        if (rc < 0)
            return rc;
        free(e->fills);
        e->fills = NULL;
        e->nfills = 0;
        cdc_error ferr = {0};
        if (cdc_catalog_fills(m->catalog, ev->relid, &e->fills, &e->nfills, &ferr) < 0) {
            /* the fills are Debezium's stand-ins, never the row's values: without them the
             * columns a delete lacks are null, and streaming goes on (a new session is
             * opened for the next lookup) */
            cdc_log_warning("cannot read the column defaults of \"%s.%s\" (%s): the columns "
                            "its delete images lack are null until its next schema change",
                            ev->schema, ev->table, ferr.msg);
            cdc_keymap_close(m);
            e->fills = NULL;
            e->nfills = 0;
        }
        e->fills_stale = false;
        e->fsrc_cols = NULL;
    }
    if (e->fsrc_cols != ev->columns || e->fncols != ev->ncols) {
        /* the decoder's columns of this relation version, each with its fill */
        free(e->fcols);
        e->fcols = malloc(sizeof(*e->fcols) * (ev->ncols ? ev->ncols : 1));
        if (e->fcols == NULL) {
            e->fsrc_cols = NULL;
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < ev->ncols; i++) {
            e->fcols[i] = ev->columns[i];
            e->fcols[i].fill = NULL;
            for (size_t k = 0; k < e->nfills; k++)
                if (strcmp(e->fills[k].column, ev->columns[i].name) == 0) {
                    e->fcols[i].fill = e->fills[k].text;
                    break;
                }
        }
        e->fsrc_cols = ev->columns;
        e->fncols = ev->ncols;
    }
    *ret = *ev;
    ret->columns = e->fcols;
    return 0;
}

bool cdc_keymap_may_have_domains(const cdc_event *ev)
{
    for (size_t i = 0; i < ev->ncols; i++)
        if (ev->columns[i].type_name != NULL && ev->columns[i].typmod < 0)
            return true;
    return false;
}

int cdc_keymap_domains(cdc_keymap *m, const cdc_event *ev, cdc_event *ret, cdc_error *err)
{
    cdc_keymap_entry *e = entry(m, ev->relid);
    if (e == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    if (e->domains_stale) {
        int rc = catalog(m, err);
        if (rc < 0)
            return rc;
        free(e->typmods);
        e->typmods = NULL;
        e->ntypmods = 0;
        if ((rc = cdc_catalog_domain_typmods(m->catalog, ev->relid, &e->typmods, &e->ntypmods,
                                             err)) < 0)
            return rc;
        e->domains_stale = false;
        e->dsrc_cols = NULL;
    }
    *ret = *ev;
    if (e->ntypmods == 0)
        return 0;
    if (e->dsrc_cols != ev->columns || e->dncols != ev->ncols) {
        free(e->dcols);
        e->dcols = malloc(sizeof(*e->dcols) * (ev->ncols ? ev->ncols : 1));
        if (e->dcols == NULL) {
            e->dsrc_cols = NULL;
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < ev->ncols; i++) {
            e->dcols[i] = ev->columns[i];
            for (size_t k = 0; k < e->ntypmods && e->dcols[i].typmod < 0; k++)
                if (strcmp(e->typmods[k].column, ev->columns[i].name) == 0)
                    e->dcols[i].typmod = e->typmods[k].typmod;
        }
        e->dsrc_cols = ev->columns;
        e->dncols = ev->ncols;
        e->fsrc_cols = NULL; /* it may have been built on the old dcols */
    }
    ret->columns = e->dcols;
    return 0;
}

void cdc_keymap_forget_columns(cdc_keymap *m, uint32_t relid)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->entries[i].relid == relid) {
            m->entries[i].src_cols = NULL;
            m->entries[i].fsrc_cols = NULL;
            m->entries[i].dsrc_cols = NULL;
        }
}

void cdc_keymap_invalidate(cdc_keymap *m, uint32_t relid)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->entries[i].relid == relid) {
            m->entries[i].stale = true;
            m->entries[i].fills_stale = true;
            m->entries[i].domains_stale = true;
        }
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
        free(m->entries[i].fills);
        free(m->entries[i].fcols);
        free(m->entries[i].typmods);
        free(m->entries[i].dcols);
    }
    free(m->entries);
    cdc_keymap_close(m);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------------
 * Schema changes
 * ------------------------------------------------------------------------ */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* "schema.table" from a Relation payload, or "?" when it is malformed (the decoder reports that).
 */
static void relation_name(const uint8_t *p, size_t len, char *out, size_t outsz)
{
    const char *ns = (const char *)p + 5;
    size_t left = len - 5;
    size_t nslen = strnlen(ns, left);
    if (nslen == left) {
        snprintf(out, outsz, "?");
        return;
    }
    const char *rel = ns + nslen + 1;
    size_t rellen = strnlen(rel, left - nslen - 1);
    snprintf(out, outsz, "%.*s.%.*s", (int)nslen, ns, (int)rellen, rel);
}

void cdc_schemas_note(cdc_schemas *s, const uint8_t *payload, size_t len)
{
    if (len < 5)
        return;
    uint32_t relid = (uint32_t)payload[1] << 24 | (uint32_t)payload[2] << 16 |
                     (uint32_t)payload[3] << 8 | payload[4];
    uint64_t h = fnv1a(payload + 5, len - 5);
    char name[300];
    for (size_t i = 0; i < s->n; i++) {
        if (s->seen[i].relid != relid)
            continue;
        if (s->seen[i].hash != h) {
            relation_name(payload, len, name, sizeof(name));
            cdc_log_info("table \"%s\" (oid %u) changed shape: its events now carry the new "
                         "columns",
                         name, relid);
            s->seen[i].hash = h;
        }
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        cdc_schema_seen *n = realloc(s->seen, sizeof(*n) * cap);
        if (n == NULL)
            return; /* only a log line is at stake */
        s->seen = n;
        s->cap = cap;
    }
    s->seen[s->n++] = (cdc_schema_seen){relid, h};
}

void cdc_schemas_free(cdc_schemas *s)
{
    free(s->seen);
    memset(s, 0, sizeof(*s));
}
