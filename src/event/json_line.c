/* json_line.c - render change events as NDJSON lines with hand-written, UTF-8 safe escaping */
#include "pgcdc/event.h"
#include "pgcdc/error.h"
#include "event_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- writer */

/* A writer with a sticky error: after the first failure every call is a no-op. */
typedef struct jw {
    cdc_buf *b; /* output, appended to */
    int rc;     /* 0 or the first error */
} jw;

static void jw_raw(jw *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = cdc_buf_append(w->b, s, n);
}

static void jw_lit(jw *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

static void jw_fmt(jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jw_fmt(jw *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        if (w->rc == 0)
            w->rc = CDC_EINTERNAL;
        return;
    }
    jw_raw(w, tmp, (size_t)n);
}

/*
 * Append n bytes of s as a quoted JSON string. Well-formed UTF-8 is copied;
 * '"', '\\', control characters, DEL and U+2028/U+2029 are escaped (so the
 * line is also safe as JavaScript and readable on a terminal); each byte
 * that does not start a well-formed UTF-8 sequence becomes U+FFFD.
 */
static void jw_str(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: bytes at p + i - run waiting to be copied as they are */

    jw_raw(w, "\"", 1);
    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char u[7];
        size_t k = 1;

        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20 || c == 0x7F) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 0xF];
            u[6] = '\0';
            esc = u;
        } else if (c >= 0x80) {
            k = cdc_utf8_seq(p + i, n - i);
            if (k == 0) {
                esc = "\xEF\xBF\xBD"; /* U+FFFD REPLACEMENT CHARACTER */
                k = 1;
            } else if (k == 3 && c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] & 0xFE) == 0xA8) {
                esc = p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029"; /* line breaks in JavaScript */
            }
        }
        if (esc) {
            if (run)
                jw_raw(w, (const char *)p + i - run, run);
            run = 0;
            jw_lit(w, esc);
        } else {
            run += k;
        }
        i += k;
    }
    if (run)
        jw_raw(w, (const char *)p + i - run, run);
    jw_raw(w, "\"", 1);
}

static void jw_cstr(jw *w, const char *s)
{
    if (s == NULL)
        jw_lit(w, "null");
    else
        jw_str(w, s, strlen(s));
}

/* Append n bytes as a quoted string of lower-case hex digits. */
static void jw_hex(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char chunk[128];
    size_t used = 0;

    jw_raw(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        chunk[used++] = hex[c >> 4];
        chunk[used++] = hex[c & 0xF];
        if (used == sizeof(chunk)) {
            jw_raw(w, chunk, used);
            used = 0;
        }
    }
    jw_raw(w, chunk, used);
    jw_raw(w, "\"", 1);
}

static void jw_lsn(jw *w, cdc_lsn lsn)
{
    jw_fmt(w, "\"" CDC_LSN_FMT "\"", CDC_LSN_ARGS(lsn));
}

static void jw_bool(jw *w, bool v)
{
    jw_lit(w, v ? "true" : "false");
}

/* ---------------------------------------------------------------- event parts */

static void put_value(jw *w, const cdc_event_value *v)
{
    switch (v->state) {
    case CDC_EVENT_NULL: jw_lit(w, "null"); return;
    case CDC_EVENT_UNCHANGED_TOAST: jw_lit(w, "{\"unchanged_toast\":true}"); return;
    case CDC_EVENT_TEXT:
        if (cdc_utf8_valid(v->data, v->len)) {
            jw_str(w, v->data, v->len);
        } else {
            jw_lit(w, "{\"text_hex\":");
            jw_hex(w, v->data, v->len);
            jw_lit(w, "}");
        }
        return;
    case CDC_EVENT_BINARY:
        jw_lit(w, "{\"binary_hex\":");
        jw_hex(w, v->data, v->len);
        jw_lit(w, "}");
        return;
    }
    jw_fmt(w, "{\"invalid_state\":%d}", (int)v->state);
}

/* values as {name: value}; key_only restricts to key columns. */
static void put_tuple(jw *w, const cdc_event *ev, const cdc_event_value *vals, bool key_only)
{
    bool first = true;
    if (vals == NULL) {
        jw_lit(w, "null");
        return;
    }
    jw_lit(w, "{");
    for (size_t i = 0; i < ev->ncols; i++) {
        if (key_only && !ev->columns[i].is_key)
            continue;
        if (!first)
            jw_lit(w, ",");
        first = false;
        jw_cstr(w, ev->columns[i].name);
        jw_lit(w, ":");
        put_value(w, &vals[i]);
    }
    jw_lit(w, "}");
}

static void put_relation(jw *w, const cdc_event *ev)
{
    jw_fmt(w, ",\"relid\":%" PRIu32 ",\"schema\":", ev->relid);
    jw_cstr(w, ev->schema);
    jw_lit(w, ",\"table\":");
    jw_cstr(w, ev->table);
    jw_fmt(w, ",\"replica_identity\":\"%c\"", (char)ev->replident);

    jw_lit(w, ",\"columns\":[");
    for (size_t i = 0; i < ev->ncols; i++) {
        const cdc_event_column *c = &ev->columns[i];
        jw_lit(w, i ? ",{\"name\":" : "{\"name\":");
        jw_cstr(w, c->name);
        jw_fmt(w, ",\"type_oid\":%" PRIu32 ",\"typmod\":%" PRId32, c->type_oid, c->typmod);
        if (c->type_name) {
            jw_lit(w, ",\"type_name\":");
            jw_cstr(w, c->type_name);
        }
        jw_lit(w, ",\"key\":");
        jw_bool(w, c->is_key);
        jw_lit(w, "}");
    }
    jw_lit(w, "],\"key\":[");
    for (size_t i = 0; i < ev->nkeys; i++) {
        if (i)
            jw_lit(w, ",");
        jw_cstr(w, ev->keys[i] < ev->ncols ? ev->columns[ev->keys[i]].name : NULL);
    }
    jw_lit(w, "]");
}

int cdc_event_to_json_line(const cdc_event *ev, cdc_buf *out)
{
    jw w = {out, 0};

    jw_fmt(&w, "{\"op\":\"%c\",\"xid\":%" PRIu32 ",\"lsn\":", (char)ev->op, ev->xid);
    jw_lsn(&w, ev->lsn);
    jw_lit(&w, ",\"commit_lsn\":");
    jw_lsn(&w, ev->commit_lsn);
    jw_lit(&w, ",\"end_lsn\":");
    if (ev->end_lsn == CDC_INVALID_LSN)
        jw_lit(&w, "null");
    else
        jw_lsn(&w, ev->end_lsn);
    jw_fmt(&w, ",\"ordinal\":%" PRIu64 ",\"commit_ts_us\":%" PRId64, ev->ordinal, ev->commit_ts_us);
    if (ev->snapshot) {
        jw_lit(&w, ",\"snapshot\":");
        jw_cstr(&w, ev->snapshot);
    }
    if (ev->origin) {
        jw_lit(&w, ",\"origin\":");
        jw_cstr(&w, ev->origin);
    }

    switch (ev->op) {
    case CDC_EVENT_INSERT:
    case CDC_EVENT_UPDATE:
    case CDC_EVENT_DELETE:
    case CDC_EVENT_READ:
        put_relation(&w, ev);
        jw_lit(&w, ",\"before_image\":");
        jw_lit(&w, ev->before_image == CDC_EVENT_IMAGE_KEY    ? "\"key\""
                   : ev->before_image == CDC_EVENT_IMAGE_FULL ? "\"full\""
                                                              : "null");
        jw_lit(&w, ",\"before\":");
        put_tuple(&w, ev, ev->before, ev->before_image == CDC_EVENT_IMAGE_KEY);
        jw_lit(&w, ",\"after\":");
        put_tuple(&w, ev, ev->after, false);
        break;
    case CDC_EVENT_TRUNCATE:
        put_relation(&w, ev);
        jw_lit(&w, ",\"truncate\":{\"cascade\":");
        jw_bool(&w, ev->truncate.cascade);
        jw_lit(&w, ",\"restart_identity\":");
        jw_bool(&w, ev->truncate.restart_identity);
        jw_lit(&w, ",\"relations\":[");
        for (size_t i = 0; i < ev->truncate.nrels; i++) {
            const cdc_event_relref *r = &ev->truncate.rels[i];
            jw_fmt(&w, "%s{\"relid\":%" PRIu32 ",\"schema\":", i ? "," : "", r->relid);
            jw_cstr(&w, r->schema);
            jw_lit(&w, ",\"table\":");
            jw_cstr(&w, r->table);
            jw_lit(&w, "}");
        }
        jw_lit(&w, "]}");
        break;
    case CDC_EVENT_MESSAGE:
        jw_lit(&w, ",\"message\":{\"transactional\":");
        jw_bool(&w, ev->message.transactional);
        jw_lit(&w, ",\"lsn\":");
        jw_lsn(&w, ev->message.lsn);
        jw_lit(&w, ",\"prefix\":");
        jw_cstr(&w, ev->message.prefix);
        if (cdc_utf8_valid(ev->message.content, ev->message.len)) {
            jw_lit(&w, ",\"content\":");
            jw_str(&w, ev->message.content, ev->message.len);
        } else {
            jw_lit(&w, ",\"content_hex\":");
            jw_hex(&w, ev->message.content, ev->message.len);
        }
        jw_lit(&w, "}");
        break;
    }
    jw_lit(&w, "}\n");
    return w.rc;
}

int cdc_event_txn_to_json_line(const cdc_event_txn *txn, const char *what, cdc_buf *out)
{
    jw w = {out, 0};

    jw_lit(&w, "{\"txn\":");
    jw_cstr(&w, what);
    jw_fmt(&w, ",\"xid\":%" PRIu32 ",\"commit_lsn\":", txn->xid);
    jw_lsn(&w, txn->commit_lsn);
    jw_lit(&w, ",\"end_lsn\":");
    if (txn->end_lsn == CDC_INVALID_LSN)
        jw_lit(&w, "null");
    else
        jw_lsn(&w, txn->end_lsn);
    jw_fmt(&w, ",\"commit_ts_us\":%" PRId64, txn->commit_ts_us);
    if (txn->origin) {
        jw_lit(&w, ",\"origin\":");
        jw_cstr(&w, txn->origin);
        jw_lit(&w, ",\"origin_lsn\":");
        jw_lsn(&w, txn->origin_lsn);
    }
    jw_fmt(&w, ",\"events\":%" PRIu64 "}\n", txn->nevents);
    return w.rc;
}
