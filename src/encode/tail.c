/* tail.c - render a consumed pgcdc message (JSON or protobuf) as one NDJSON line for pgcdc tail */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/encode.h"
#include "pgcdc/v1/change_event.pb-c.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64_string(const uint8_t *p, size_t n)
{
    size_t olen = (n + 2) / 3 * 4;
    char *o = malloc(olen + 1), *w = o;
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *w++ = b64[v >> 18 & 63];
        *w++ = b64[v >> 12 & 63];
        *w++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *w = '\0';
    json_t *s = json_stringn(o, olen);
    free(o);
    return s;
}

/* A string that may not be valid UTF-8: jansson refuses those, so fall back to base64. */
static json_t *safe_string(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    return j ? j : base64_string((const uint8_t *)s, n);
}

static json_t *message_to_json(const ProtobufCMessage *m);

/* JSON has no NaN or infinities: those become the strings PostgreSQL prints. */
static json_t *real_or_text(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* One scalar or sub-message at p of field f. */
static json_t *field_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        /* JSON numbers lose precision past 2^53: LSNs and the like as decimal strings */
        char buf[24];
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)*(const uint64_t *)p);
        return json_string(buf);
    }
    case PROTOBUF_C_TYPE_FLOAT: return real_or_text(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return real_or_text(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        return ev ? json_string(ev->name) : json_integer(*(const int *)p);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s ? safe_string(s, strlen(s)) : json_string("");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return base64_string(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? message_to_json(sub) : json_null();
    }
    }
    return json_null();
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
    }
}

/* Is the proto3 scalar at p its default (then it is left out, as proto3's JSON mapping does)? */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(void *const *)p == NULL;
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, type_size(f->type)) == 0;
    }
    }
}

/* Generic protobuf-c message -> JSON object by reflection over its descriptor. */
static json_t *message_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *obj = json_object();
    for (unsigned i = 0; obj && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        const void *p = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            v = json_array();
            const char *arr = *(char *const *)p;
            for (size_t k = 0; v && k < n; k++)
                json_array_append_new(v, field_value(f, arr + k * type_size(f->type)));
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
            v = field_value(f, p);
        } else {
            if (is_default(f, p))
                continue;
            v = field_value(f, p);
        }
        json_object_set_new(obj, f->name, v ? v : json_null());
    }
    return obj;
}

/* Key or value bytes as JSON: null, the parsed JSON, the decoded protobuf, or a string. */
static json_t *payload_json(int format, bool is_key, const void *data, size_t len)
{
    if (data == NULL)
        return json_null();
    if (format == CDC_FORMAT_PROTOBUF) {
        ProtobufCMessage *m =
            is_key ? (ProtobufCMessage *)pgcdc__v1__change_key__unpack(NULL, len, data)
                   : (ProtobufCMessage *)pgcdc__v1__change_event__unpack(NULL, len, data);
        if (m) {
            json_t *j = message_to_json(m);
            protobuf_c_message_free_unpacked(m, NULL);
            return j;
        }
    } else {
        json_t *j = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (j)
            return j;
    }
    /* not ours: show the raw bytes */
    json_t *o = json_object();
    json_object_set_new(o, "undecodable_base64", base64_string(data, len));
    return o;
}

int cdc_tail_format(int format, const cdc_kafka_msg *m, cdc_buf *out, cdc_error *err)
{
    json_t *line = json_object(), *hdrs = json_object();
    if (line == NULL || hdrs == NULL) {
        json_decref(line);
        json_decref(hdrs);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    json_object_set_new(line, "topic", json_string(m->topic));
    json_object_set_new(line, "partition", json_integer(m->partition));
    json_object_set_new(line, "offset", json_integer(m->offset));
    json_object_set_new(line, "timestamp", json_integer(m->timestamp_ms));
    for (size_t i = 0; i < m->nheaders; i++)
        json_object_set_new(hdrs, m->headers[i].name,
                            m->headers[i].value
                                ? safe_string(m->headers[i].value, m->headers[i].len)
                                : json_null());
    json_object_set_new(line, "headers", hdrs);
    json_object_set_new(line, "key", payload_json(format, true, m->key, m->keylen));
    json_object_set_new(line, "value", payload_json(format, false, m->value, m->valuelen));
    char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(line);
    if (s == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc = cdc_buf_puts(out, s) < 0 || cdc_buf_putc(out, '\n') < 0 ? CDC_ENOMEM : 0;
    free(s);
    return rc < 0 ? cdc_err(err, rc, "out of memory") : 0;
}
