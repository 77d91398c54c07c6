/* relcache.c - relation and type caches of the pgoutput decoder, keyed by oid */
#include "pgoutput_int.h"
#include "pgcdc/error.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- oid map */

static size_t slot_of(uint32_t key, size_t cap)
{
    uint32_t h = key * UINT32_C(2654435761); /* Fibonacci hashing spreads sequential oids */
    return (size_t)(h ^ (h >> 16)) & (cap - 1);
}

void *cdc_pgo__map_get(const cdc_pgo__map *m, uint32_t key)
{
    if (m->cap == 0 || key == 0)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

/* Double the slots (or make the first 16); 0 or CDC_ENOMEM leaving m unchanged. */
static int map_grow(cdc_pgo__map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    uint32_t *keys = calloc(cap, sizeof(*keys));
    void **vals = calloc(cap, sizeof(*vals));
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return CDC_ENOMEM;
    }
    for (size_t j = 0; j < m->cap; j++) {
        if (m->keys[j] == 0)
            continue;
        size_t i = slot_of(m->keys[j], cap);
        while (keys[i] != 0)
            i = (i + 1) & (cap - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

int cdc_pgo__map_put(cdc_pgo__map *m, uint32_t key, void *val)
{
    if (key == 0)
        return CDC_EINVAL;
    if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0) /* load factor <= 1/2 */
        return CDC_ENOMEM;
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] != 0 && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == key) {
        free(m->vals[i]);
    } else {
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
    return 0;
}

void cdc_pgo__map_clear(cdc_pgo__map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != 0)
            free(m->vals[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------- entries */

/* Copy s (len bytes) to *pool as a NUL-terminated string; return the copy. */
static const char *pool_put(char **pool, const char *s, size_t len)
{
    char *p = *pool;
    memcpy(p, s, len);
    p[len] = '\0';
    *pool += len + 1;
    return p;
}

cdc_pgo__rel *cdc_pgo__rel_new(const cdc_pgo_relation *msg, const cdc_pgo__map *types)
{
    size_t nkeys = 0, strbytes = 0;
    size_t nsplen = strlen(msg->nspname), rellen = strlen(msg->relname);

    strbytes += nsplen + 1 + rellen + 1;
    for (size_t i = 0; i < msg->ncols; i++) {
        const cdc_pgo__type *t = cdc_pgo__map_get(types, msg->cols[i].type_oid);
        strbytes += strlen(msg->cols[i].name) + 1;
        if (t)
            strbytes += strlen(t->name) + 1;
        if (msg->cols[i].flags & CDC_PGO_RELATION_COLUMN_KEY)
            nkeys++;
    }

    /* layout: entry | cols (pointer-aligned) | keys (uint16) | strings */
    size_t size = sizeof(cdc_pgo__rel) + msg->ncols * sizeof(cdc_event_column) +
                  nkeys * sizeof(uint16_t) + strbytes;
    cdc_pgo__rel *rel = malloc(size);
    if (rel == NULL)
        return NULL;
    rel->cols = (cdc_event_column *)(rel + 1);
    rel->keys = (uint16_t *)(rel->cols + msg->ncols);
    char *pool = (char *)(rel->keys + nkeys);

    rel->relid = msg->relid;
    rel->schema = pool_put(&pool, msg->nspname, nsplen);
    rel->table = pool_put(&pool, msg->relname, rellen);
    rel->replident = (cdc_event_replident)msg->replident;
    rel->ncols = msg->ncols;
    rel->nkeys = (uint16_t)nkeys;
    nkeys = 0;
    for (uint16_t i = 0; i < msg->ncols; i++) {
        const cdc_pgo_relcol *mc = &msg->cols[i];
        const cdc_pgo__type *t = cdc_pgo__map_get(types, mc->type_oid);
        cdc_event_column *c = &rel->cols[i];
        c->name = pool_put(&pool, mc->name, strlen(mc->name));
        c->type_oid = mc->type_oid;
        c->typmod = mc->typmod;
        c->type_name = t ? pool_put(&pool, t->name, strlen(t->name)) : NULL;
        c->is_key = (mc->flags & CDC_PGO_RELATION_COLUMN_KEY) != 0;
        if (c->is_key)
            rel->keys[nkeys++] = i;
    }
    return rel;
}

cdc_pgo__type *cdc_pgo__type_new(const cdc_pgo_type *msg)
{
    size_t nsplen = strlen(msg->nspname), namelen = strlen(msg->typname);
    cdc_pgo__type *t = malloc(sizeof(*t) + nsplen + 1 + namelen + 1);
    if (t == NULL)
        return NULL;
    char *p = (char *)(t + 1);
    t->oid = msg->oid;
    t->name = p;
    if (nsplen) {
        memcpy(p, msg->nspname, nsplen);
        p[nsplen] = '.';
        p += nsplen + 1;
    }
    memcpy(p, msg->typname, namelen);
    p[namelen] = '\0';
    return t;
}
