/* event.c - change event helpers: op names, key change detection, UTF-8 validation */
#include "pgcdc/event.h"
#include "event_int.h"

#include <string.h>

const char *cdc_event_op_name(cdc_event_op op)
{
    switch (op) {
    case CDC_EVENT_INSERT: return "insert";
    case CDC_EVENT_UPDATE: return "update";
    case CDC_EVENT_DELETE: return "delete";
    case CDC_EVENT_TRUNCATE: return "truncate";
    case CDC_EVENT_MESSAGE: return "message";
    case CDC_EVENT_READ: return "read";
    }
    return "unknown";
}

/* Whether two values are the same; an unchanged TOAST value equals anything. */
static bool same_value(const cdc_event_value *a, const cdc_event_value *b)
{
    if (a->state == CDC_EVENT_UNCHANGED_TOAST || b->state == CDC_EVENT_UNCHANGED_TOAST)
        return true;
    if (a->state != b->state)
        return false;
    if (a->state == CDC_EVENT_NULL)
        return true;
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

bool cdc_event_key_changed(const cdc_event *ev)
{
    if (ev->op != CDC_EVENT_UPDATE || ev->before == NULL || ev->after == NULL ||
        ev->before_image == CDC_EVENT_IMAGE_NONE)
        return false;
    for (size_t i = 0; i < ev->nkeys; i++) {
        size_t k = ev->keys[i];
        if (k < ev->ncols && !same_value(&ev->before[k], &ev->after[k]))
            return true;
    }
    return false;
}

/* RFC 3629 section 4: the continuation byte ranges depend on the lead byte. */
size_t cdc_event__utf8_seq(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlongs */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0;
    if (left < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

bool cdc_event_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = cdc_event__utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}
