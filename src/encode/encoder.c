/* encoder.c - the encoder interface: settings, argument checks, dispatch to json.c / protobuf.c */
#include "pgcdc/encode.h"

#include <stdlib.h>
#include <string.h>

#include "encode_int.h"

/* ---------------------------------------------------------------------------
 * Public interface
 * ------------------------------------------------------------------------- */

static char *cdc_enc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

int cdc_encoder_new(const cdc_config *cfg, const cdc_source_info *src, cdc_encoder **ret,
                    cdc_error *err)
{
    if (cfg == NULL || src == NULL || ret == NULL || src->name == NULL || src->db == NULL ||
        src->version == NULL)
        return cdc_err(err, CDC_EINVAL, "encoder needs a configuration and source names");
    if (cfg->format != CDC_FORMAT_JSON && cfg->format != CDC_FORMAT_PROTOBUF)
        return cdc_err(err, CDC_EINVAL, "unknown message format %d", cfg->format);
    if (cfg->binary_handling_mode < CDC_BINARY_BASE64 ||
        cfg->binary_handling_mode > CDC_BINARY_BASE64_URL)
        return cdc_err(err, CDC_EINVAL, "unknown binary.handling.mode %d",
                       cfg->binary_handling_mode);
    if (cfg->decimal_handling_mode != CDC_DECIMAL_STRING &&
        cfg->decimal_handling_mode != CDC_DECIMAL_DOUBLE &&
        cfg->decimal_handling_mode != CDC_DECIMAL_PRECISE)
        return cdc_err(err, CDC_EINVAL, "unknown decimal.handling.mode %d",
                       cfg->decimal_handling_mode);
    if (cfg->time_precision_mode < CDC_TIME_ADAPTIVE || cfg->time_precision_mode > CDC_TIME_NANOS)
        return cdc_err(err, CDC_EINVAL, "unknown time.precision.mode %d", cfg->time_precision_mode);
    if (cfg->interval_handling_mode != CDC_INTERVAL_NUMERIC &&
        cfg->interval_handling_mode != CDC_INTERVAL_STRING)
        return cdc_err(err, CDC_EINVAL, "unknown interval.handling.mode %d",
                       cfg->interval_handling_mode);
    if (cfg->hstore_handling_mode != CDC_HSTORE_JSON && cfg->hstore_handling_mode != CDC_HSTORE_MAP)
        return cdc_err(err, CDC_EINVAL, "unknown hstore.handling.mode %d",
                       cfg->hstore_handling_mode);

    cdc_encoder *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory creating the encoder");
    e->format = cfg->format;
    e->decimal_mode = cfg->decimal_handling_mode;
    e->binary_mode = cfg->binary_handling_mode;
    e->time_mode = cfg->time_precision_mode;
    e->interval_mode = cfg->interval_handling_mode;
    e->hstore_mode = cfg->hstore_handling_mode;
    const char *ph = cfg->unavailable_value_placeholder ? cfg->unavailable_value_placeholder : "";
    e->name = cdc_enc_strdup(src->name);
    e->db = cdc_enc_strdup(src->db);
    e->version = cdc_enc_strdup(src->version);
    e->placeholder = cdc_enc_strdup(ph);
    if (e->name == NULL || e->db == NULL || e->version == NULL || e->placeholder == NULL) {
        cdc_encoder_free(e);
        return cdc_err(err, CDC_ENOMEM, "out of memory creating the encoder");
    }
    e->placeholder_len = strlen(e->placeholder);

    int rc = e->format == CDC_FORMAT_JSON ? cdc_enc__json_init(e, err) : cdc_enc__pb_init(e, err);
    if (rc < 0) {
        cdc_encoder_free(e);
        return rc;
    }
    *ret = e;
    return 0;
}

void cdc_encoder_free(cdc_encoder *e)
{
    if (e == NULL)
        return;
    cdc_enc__pb_free(e);
    cdc_buf_free(&e->json_src_head);
    cdc_buf_free(&e->json_src_db);
    cdc_buf_free(&e->json_toast_text);
    cdc_buf_free(&e->json_toast_bin);
    cdc_buf_free(&e->json_toast_arr_str);
    cdc_buf_free(&e->json_toast_arr_bin);
    cdc_buf_free(&e->json_toast_arr_num);
    cdc_buf_free(&e->json_toast_arr_bool);
    cdc_buf_free(&e->json_toast_hstore);
    cdc_buf_free(&e->scratch);
    cdc_buf_free(&e->elem);
    cdc_buf_free(&e->hs);
    cdc_buf_free(&e->nested);
    free(e->name);
    free(e->db);
    free(e->version);
    free(e->placeholder);
    free(e);
}

static bool cdc_enc_is_row_op(cdc_event_op op)
{
    return op == CDC_EVENT_INSERT || op == CDC_EVENT_UPDATE || op == CDC_EVENT_DELETE ||
           op == CDC_EVENT_READ;
}

int cdc_encoder_key(cdc_encoder *e, const cdc_event *ev, int image, cdc_buf *out, bool *ret_null,
                    cdc_error *err)
{
    const cdc_event_value *img = NULL, *other = NULL;

    if (ev->op == CDC_EVENT_TRUNCATE || (cdc_enc_is_row_op(ev->op) && ev->nkeys == 0)) {
        *ret_null = true;
        return 0;
    }
    if (cdc_enc_is_row_op(ev->op)) {
        if (image != CDC_KEY_AFTER && image != CDC_KEY_BEFORE)
            return cdc_err(err, CDC_EINVAL, "unknown key image %d", image);
        img = image == CDC_KEY_AFTER ? ev->after : ev->before;
        other = image == CDC_KEY_AFTER ? ev->before : ev->after;
        if (img == NULL)
            return cdc_err(err, CDC_EINVAL, "%s event on \"%s.%s\" has no %s image for its key",
                           cdc_event_op_name(ev->op), ev->schema ? ev->schema : "",
                           ev->table ? ev->table : "", image == CDC_KEY_AFTER ? "after" : "before");
        if (ev->keys == NULL || ev->columns == NULL)
            return cdc_err(err, CDC_EINVAL, "%s event on \"%s.%s\" lists no key columns",
                           cdc_event_op_name(ev->op), ev->schema ? ev->schema : "",
                           ev->table ? ev->table : "");
    } else if (ev->op != CDC_EVENT_MESSAGE) {
        return cdc_err(err, CDC_EINVAL, "cannot encode a key for event op %d", (int)ev->op);
    }

    size_t len0 = out->len;
    int rc = e->format == CDC_FORMAT_JSON ? cdc_enc__json_key(e, ev, img, other, out, err)
                                          : cdc_enc__pb_key(e, ev, img, other, out, err);
    if (rc < 0) {
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
        return rc;
    }
    *ret_null = false;
    return 0;
}

int cdc_encoder_value(cdc_encoder *e, const cdc_event *ev, int64_t now_us, cdc_buf *out,
                      cdc_error *err)
{
    switch (ev->op) {
    case CDC_EVENT_INSERT:
    case CDC_EVENT_UPDATE:
    case CDC_EVENT_READ:
        if (ev->after == NULL)
            return cdc_err(err, CDC_EINVAL, "%s event on \"%s.%s\" has no after image",
                           cdc_event_op_name(ev->op), ev->schema ? ev->schema : "",
                           ev->table ? ev->table : "");
        break;
    case CDC_EVENT_DELETE:
    case CDC_EVENT_TRUNCATE:
    case CDC_EVENT_MESSAGE: break;
    default: return cdc_err(err, CDC_EINVAL, "cannot encode event op %d", (int)ev->op);
    }

    size_t len0 = out->len;
    int rc = e->format == CDC_FORMAT_JSON ? cdc_enc__json_value(e, ev, now_us, out, err)
                                          : cdc_enc__pb_value(e, ev, now_us, out, err);
    if (rc < 0) {
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    return rc;
}
