/* values.c - row and key values as both writers (json.c, protobuf.c) read them */
#include <string.h>

#include "encode_int.h"
#include "pgcdc/hex.h"

/* A row's value of column i; an unchanged TOAST value of the new row is taken from a
 * before image that has it. */
const cdc_event_value *cdc_enc__value(const cdc_event *ev, const cdc_event_value *row, size_t i)
{
    const cdc_event_value *v = &row[i];
    if (v->state != CDC_EVENT_UNCHANGED_TOAST || row != ev->after || ev->before == NULL)
        return v;
    bool have = ev->before_image == CDC_EVENT_IMAGE_FULL;
    for (size_t k = 0; !have && ev->before_image == CDC_EVENT_IMAGE_KEY && k < ev->nkeys; k++)
        have = ev->keys[k] == i;
    if (have && ev->before[i].state != CDC_EVENT_UNCHANGED_TOAST)
        return &ev->before[i];
    return v;
}

int cdc_enc__key_value(const cdc_event *ev, const cdc_event_value *img,
                       const cdc_event_value *other, size_t k, const cdc_event_value **ret,
                       cdc_error *err)
{
    size_t i = ev->keys[k];
    if (i >= ev->ncols)
        return cdc_err(err, CDC_EINVAL, "key column %zu of \"%s.%s\" out of range", i,
                       ev->schema ? ev->schema : "", ev->table ? ev->table : "");
    const cdc_event_value *v = &img[i];
    if (v->state == CDC_EVENT_UNCHANGED_TOAST && other != NULL &&
        other[i].state != CDC_EVENT_UNCHANGED_TOAST)
        v = &other[i];
    if (v->state == CDC_EVENT_UNCHANGED_TOAST)
        return cdc_err(
            err, CDC_EINVAL, "key column \"%s\" of \"%s.%s\" is an unchanged TOAST value",
            ev->columns[i].name, ev->schema ? ev->schema : "", ev->table ? ev->table : "");
    *ret = v;
    return 0;
}

/* Decode bytea's text output (hex "\\x..." or escape format) into out. */
int cdc_enc__bytea_decode(const char *s, size_t n, cdc_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;

    cdc_buf_reset(out);
    if (cdc_buf_reserve(out, n) < 0)
        return CDC_ENOMEM;
    unsigned char *o = (unsigned char *)out->data;
    size_t k = 0;
    if (n >= 2 && p[0] == '\\' && p[1] == 'x') {
        if ((n - 2) % 2)
            return CDC_EINVAL;
        for (size_t i = 2; i < n; i += 2) {
            int hi = cdc_hex_digit(p[i]), lo = cdc_hex_digit(p[i + 1]);
            if (hi < 0 || lo < 0)
                return CDC_EINVAL;
            o[k++] = (unsigned char)(hi << 4 | lo);
        }
    } else {
        for (size_t i = 0; i < n;) {
            if (p[i] != '\\') {
                o[k++] = p[i++];
            } else if (i + 1 < n && p[i + 1] == '\\') {
                o[k++] = '\\';
                i += 2;
            } else if (i + 3 < n && p[i + 1] >= '0' && p[i + 1] <= '3' && p[i + 2] >= '0' &&
                       p[i + 2] <= '7' && p[i + 3] >= '0' && p[i + 3] <= '7') {
                o[k++] = (unsigned char)((p[i + 1] - '0') << 6 | (p[i + 2] - '0') << 3 |
                                         (p[i + 3] - '0'));
                i += 4;
            } else
                return CDC_EINVAL;
        }
    }
    out->len = k;
    out->data[k] = '\0';
    return 0;
}
