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
