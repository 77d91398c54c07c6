/* json.c - the Debezium JSON envelope (JSON converter, schemas.enable=false), written by hand */
#include <stdio.h>
#include <string.h>

#include "pgcdc/encode.h"

#include "encode_int.h"

/*
 * The JSON is written straight into the caller's buffer rather than built as
 * a jansson tree and dumped: a tree costs an allocation per value and a hash
 * table per object, which is most of the time spent per event (measured on a
 * 10-column row: about 75k values/s through jansson against about 700k
 * key + value pairs/s here, no allocation once the buffers have grown).
 * Strings are escaped here with the
 * same rules jansson applies, and invalid UTF-8 becomes U+FFFD, so every
 * message is valid UTF-8 JSON. Keys come out in Debezium's schema order.
 */

/* ---------------------------------------------------------------------------
 * Writer: appends to a cdc_buf, remembers the first failure
 * ------------------------------------------------------------------------- */

typedef struct cdc_enc_jw {
    cdc_buf *b;
    int rc; /* 0, or CDC_ENOMEM once an append failed; later writes are no-ops */
} cdc_enc_jw;

/*
 * The writer appends without NUL-terminating after every token (the buffer
 * always keeps one spare byte for it); jw_end() writes the NUL.
 */
static bool jw_grow(cdc_enc_jw *w, size_t n)
{
    if (w->rc == 0 && cdc_buf_reserve(w->b, n) < 0)
        w->rc = CDC_ENOMEM;
    return w->rc == 0;
}

static inline void jw_raw(cdc_enc_jw *w, const void *p, size_t n)
{
    cdc_buf *b = w->b;
    if (b->len + n >= b->cap && !jw_grow(w, n))
        return;
    if (w->rc == 0) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

#define JW_LIT(w, s) jw_raw((w), (s), sizeof(s) - 1)

static inline void jw_putc(cdc_enc_jw *w, char c)
{
    jw_raw(w, &c, 1);
}

/* Terminate the buffer; returns the writer's status. */
static int jw_end(cdc_enc_jw *w)
{
    if (w->rc == 0 && jw_grow(w, 0))
        w->b->data[w->b->len] = '\0';
    return w->rc;
}

/* Append the decimal form of v. */
static void jw_u64(cdc_enc_jw *w, uint64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jw_raw(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void jw_i64(cdc_enc_jw *w, int64_t v)
{
    if (v < 0) {
        jw_putc(w, '-');
        jw_u64(w, (uint64_t)0 - (uint64_t)v);
    } else
        jw_u64(w, (uint64_t)v);
}

/*
 * Whether byte c needs more than a copy inside a JSON string: control
 * characters, '"', '\\' and every non-ASCII byte (checked as UTF-8).
 */
static inline bool jw_special(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

/* Whether any of the 8 bytes at p is special (SWAR: no per-byte branch). */
static inline bool jw_special8(const unsigned char *p)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
    uint64_t any = (x - ones * 0x20) | (q - ones) | (bs - ones) | x;
    return (any & high) != 0;
}

/*
 * Append s[0..n) as a JSON string: quotes, escapes for '"', '\\' and control
 * characters (\b \f \n \r \t, \u00XX for the rest), well-formed UTF-8 copied
 * as is, and U+FFFD for every byte that does not start a well-formed UTF-8
 * sequence.
 */
static void jw_str(cdc_enc_jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    if (w->b->len + n + 2 >= w->b->cap)
        jw_grow(w, n + 2);
    jw_putc(w, '"');
    while (i < n) {
        /* skip 8 plain ASCII bytes at a time */
        while (i + 8 <= n && !jw_special8(p + i))
            i += 8;
        if (i == n)
            break;
        unsigned char c = p[i];
        if (!jw_special(c)) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = cdc_enc__utf8_seq(p + i, n - i);
            if (k) {
                i += k;
                continue;
            }
        }
        jw_raw(w, p + run, i - run);
        switch (c) {
        case '"': JW_LIT(w, "\\\""); break;
        case '\\': JW_LIT(w, "\\\\"); break;
        case '\b': JW_LIT(w, "\\b"); break;
        case '\f': JW_LIT(w, "\\f"); break;
        case '\n': JW_LIT(w, "\\n"); break;
        case '\r': JW_LIT(w, "\\r"); break;
        case '\t': JW_LIT(w, "\\t"); break;
        default:
            if (c < 0x20) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                jw_raw(w, u, sizeof(u));
            } else
                JW_LIT(w, "\xEF\xBF\xBD"); /* U+FFFD for a byte that is not UTF-8 */
            break;
        }
        run = ++i;
    }
    jw_raw(w, p + run, i - run);
    jw_putc(w, '"');
}

static void jw_cstr(cdc_enc_jw *w, const char *s)
{
    if (s == NULL)
        s = "";
    jw_str(w, s, strlen(s));
}

/* Append n bytes as a base64 (RFC 4648, padded) JSON string. */
static void jw_base64(cdc_enc_jw *w, const unsigned char *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t outlen = (n + 2) / 3 * 4;

    if (!jw_grow(w, outlen + 2))
        return;
    char *o = w->b->data + w->b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = '=';
    }
    *o++ = '"';
    w->b->len += outlen + 2;
    *o = '\0';
}

/* Append n bytes as a lower-case hex JSON string (Debezium's HexConverter). */
static void jw_hex(cdc_enc_jw *w, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    if (!jw_grow(w, 2 * n + 2))
        return;
    char *o = w->b->data + w->b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        *o++ = hex[p[i] >> 4];
        *o++ = hex[p[i] & 15];
    }
    *o++ = '"';
    w->b->len += 2 * n + 2;
    *o = '\0';
}

/* Append bytes the way binary.handling.mode says. */
static void jw_bytes(cdc_enc_jw *w, const cdc_encoder *e, const void *p, size_t n)
{
    if (e->binary_mode == CDC_BINARY_HEX)
        jw_hex(w, p, n);
    else
        jw_base64(w, p, n);
}

/* ---------------------------------------------------------------------------
 * Column values
 * ------------------------------------------------------------------------- */

static int cdc_enc_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decode bytea's text output into out (replacing its content): the hex
 * format "\x0a0b" (bytea_output = hex, the default) or the escape format
 * (backslash-octal "\ooo" and "\\", anything else literal). Returns 0,
 * CDC_EINVAL for malformed text, or CDC_ENOMEM.
 */
static int cdc_enc_bytea_decode(const char *s, size_t n, cdc_buf *out)
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
            int hi = cdc_enc_hexval(p[i]), lo = cdc_enc_hexval(p[i + 1]);
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

/* Whether s[0..n) is an integer as PostgreSQL prints one: -?[0-9]+, at most 20 digits. */
static bool cdc_enc_is_int(const char *s, size_t n)
{
    size_t i = (n > 0 && s[0] == '-') ? 1 : 0;
    if (i == n || n - i > 20)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Whether s[0..n) is a number by the JSON grammar (RFC 8259 section 6). */
static bool cdc_enc_is_json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i == n)
        return false;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/*
 * A float8/float4 (or numeric in double mode): the text as a JSON number when
 * it is one (PostgreSQL prints the shortest exact form, so nothing is lost),
 * else a string: "NaN", "Infinity", "-Infinity" as Jackson writes them.
 */
static void jw_float(cdc_enc_jw *w, const char *s, size_t n)
{
    if (cdc_enc_is_json_number(s, n))
        jw_raw(w, s, n);
    else
        jw_str(w, s, n);
}

/*
 * numeric in precise mode, as Kafka Connect's Decimal: the unscaled value as
 * big-endian two's complement bytes, shortest form (Java's
 * BigInteger.toByteArray), base64 / hex. A numeric(p,s) column (typmod set,
 * s >= 0) gives just those bytes at scale s; an unconstrained numeric gives
 * Debezium's VariableScaleDecimal {"scale":s,"value":bytes}. NaN and the
 * infinities have no such form: null.
 */
static void jw_numeric_precise(cdc_enc_jw *w, cdc_encoder *e, int32_t typmod, const char *s,
                               size_t n)
{
    size_t i = 0, ndig = 0, nfrac = 0;
    bool neg = false, dot = false;

    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n) {
        JW_LIT(w, "null");
        return;
    }
    for (size_t j = i; j < n; j++) {
        if (s[j] == '.' && !dot)
            dot = true;
        else if (s[j] >= '0' && s[j] <= '9') {
            ndig++;
            nfrac += dot;
        } else {
            JW_LIT(w, "null"); /* NaN, Infinity, -Infinity */
            return;
        }
    }
    if (ndig == 0) {
        JW_LIT(w, "null");
        return;
    }

    /* scale: the column's when it is declared and covers the value, else the value's own */
    int32_t scale = -1;
    if (typmod >= 4) {
        int32_t ts = ((((typmod - 4) & 0x7ff) ^ 1024) - 1024);
        if (ts >= 0 && (size_t)ts >= nfrac)
            scale = ts;
    }
    bool variable = scale < 0;
    size_t pad = variable ? 0 : (size_t)scale - nfrac;
    if (variable)
        scale = (int32_t)nfrac;

    /*
     * Unscaled magnitude in base 10^9 limbs, then as base-2^32 words by
     * schoolbook multiply-add, least significant word first; in e->scratch.
     */
    size_t total = ndig + pad;
    size_t maxw = total / 9 + 2;
    cdc_buf *sc = &e->scratch;
    cdc_buf_reset(sc);
    if (cdc_buf_reserve(sc, maxw * sizeof(uint32_t) + (maxw * 4 + 1)) < 0) {
        w->rc = CDC_ENOMEM;
        return;
    }
    uint32_t *words = (uint32_t *)(void *)sc->data;
    size_t nw = 0;
    uint32_t chunk = 0, mul = 1;
    size_t seen = 0, first = total % 9 ? total % 9 : 9;
    for (size_t j = i; j < n + pad; j++) {
        char c = j < n ? s[j] : '0';
        if (c == '.')
            continue;
        chunk = chunk * 10 + (uint32_t)(c - '0');
        mul *= 10;
        seen++;
        if (seen == first || (seen > first && (seen - first) % 9 == 0)) {
            uint64_t carry = chunk;
            for (size_t k = 0; k < nw; k++) {
                uint64_t t = (uint64_t)words[k] * mul + carry;
                words[k] = (uint32_t)t;
                carry = t >> 32;
            }
            if (carry)
                words[nw++] = (uint32_t)carry;
            chunk = 0;
            mul = 1;
        }
    }

    /* big-endian magnitude bytes, then two's complement, then shortest form */
    unsigned char *bytes = (unsigned char *)(words + maxw);
    size_t nb = 1 + nw * 4; /* one spare leading byte for the sign */
    bytes[0] = 0;
    for (size_t k = 0; k < nw; k++) {
        uint32_t v = words[nw - 1 - k];
        bytes[1 + 4 * k] = (unsigned char)(v >> 24);
        bytes[2 + 4 * k] = (unsigned char)(v >> 16);
        bytes[3 + 4 * k] = (unsigned char)(v >> 8);
        bytes[4 + 4 * k] = (unsigned char)v;
    }
    bool zero = true;
    for (size_t k = 0; k < nb; k++)
        zero = zero && bytes[k] == 0;
    if (neg && !zero) {
        unsigned carry = 1;
        for (size_t k = nb; k-- > 0;) {
            unsigned v = (unsigned)(unsigned char)~bytes[k] + carry;
            bytes[k] = (unsigned char)v;
            carry = v >> 8;
        }
    }
    unsigned char fill = (neg && !zero) ? 0xFF : 0x00;
    size_t start = 0;
    while (start + 1 < nb && bytes[start] == fill && ((bytes[start + 1] & 0x80) == (fill & 0x80)))
        start++;

    if (variable) {
        JW_LIT(w, "{\"scale\":");
        jw_i64(w, scale);
        JW_LIT(w, ",\"value\":");
    }
    jw_bytes(w, e, bytes + start, nb - start);
    if (variable)
        jw_putc(w, '}');
}

/* Append one column value: the per-kind mapping documented in docs/MESSAGES.md. */
static void jw_value(cdc_enc_jw *w, cdc_encoder *e, const cdc_event_column *col,
                     const cdc_event_value *v)
{
    cdc_enc_kind kind = cdc_enc__kind(col->type_oid);

    switch (v->state) {
    case CDC_EVENT_NULL: JW_LIT(w, "null"); return;
    case CDC_EVENT_UNCHANGED_TOAST:
        if (kind == CDC_ENC_KIND_BYTEA)
            jw_raw(w, e->json_toast_bin.data, e->json_toast_bin.len);
        else
            jw_raw(w, e->json_toast_text.data, e->json_toast_text.len);
        return;
    case CDC_EVENT_BINARY:
        /* binary send form: only bytea's is the bytes themselves; others are opaque */
        jw_bytes(w, e, v->data, v->len);
        return;
    case CDC_EVENT_TEXT: break;
    default: JW_LIT(w, "null"); return;
    }

    const char *s = v->data ? v->data : "";
    size_t n = v->len;
    switch (kind) {
    case CDC_ENC_KIND_BOOL:
        if (n == 1 && s[0] == 't')
            JW_LIT(w, "true");
        else if (n == 1 && s[0] == 'f')
            JW_LIT(w, "false");
        else
            jw_str(w, s, n);
        return;
    case CDC_ENC_KIND_INT:
        if (cdc_enc_is_int(s, n))
            jw_raw(w, s, n);
        else
            jw_str(w, s, n);
        return;
    case CDC_ENC_KIND_FLOAT: jw_float(w, s, n); return;
    case CDC_ENC_KIND_NUMERIC:
        if (e->decimal_mode == CDC_DECIMAL_DOUBLE)
            jw_float(w, s, n);
        else if (e->decimal_mode == CDC_DECIMAL_PRECISE)
            jw_numeric_precise(w, e, col->typmod, s, n);
        else
            jw_str(w, s, n);
        return;
    case CDC_ENC_KIND_BYTEA: {
        int rc = cdc_enc_bytea_decode(s, n, &e->scratch);
        if (rc == CDC_ENOMEM)
            w->rc = rc;
        else if (rc < 0)
            jw_str(w, s, n); /* not bytea output after all: keep the text */
        else
            jw_bytes(w, e, e->scratch.data, e->scratch.len);
        return;
    }
    case CDC_ENC_KIND_TEXT:
    default: jw_str(w, s, n); return;
    }
}

/* Whether column i is one of the event's key columns (keys are ascending). */
static bool cdc_enc_is_key_index(const cdc_event *ev, size_t i, size_t *cursor)
{
    while (*cursor < ev->nkeys && ev->keys[*cursor] < i)
        (*cursor)++;
    return *cursor < ev->nkeys && ev->keys[*cursor] == i;
}

/* Append a row image as {"col":value,...}; key_only lists the key columns alone. */
static void jw_row(cdc_enc_jw *w, cdc_encoder *e, const cdc_event *ev, const cdc_event_value *row,
                   bool key_only)
{
    size_t cursor = 0;
    bool first = true;

    jw_putc(w, '{');
    for (size_t i = 0; i < ev->ncols; i++) {
        if (key_only && !cdc_enc_is_key_index(ev, i, &cursor))
            continue;
        if (!first)
            jw_putc(w, ',');
        first = false;
        jw_cstr(w, ev->columns[i].name);
        jw_putc(w, ':');
        jw_value(w, e, &ev->columns[i], cdc_enc__value(ev, row, i));
    }
    jw_putc(w, '}');
}

/* ---------------------------------------------------------------------------
 * Envelope
 * ------------------------------------------------------------------------- */

static int64_t cdc_enc_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * Append "source":{...}. ts_us is the event time (commit time); schema and
 * table may be "" (messages); txid 0 and LSN 0 print as null.
 */
static void jw_source(cdc_enc_jw *w, const cdc_encoder *e, const cdc_event *ev, int64_t ts_us,
                      uint32_t txid, cdc_lsn lsn)
{
    jw_raw(w, e->json_src_head.data, e->json_src_head.len);
    jw_i64(w, cdc_enc_floor_div(ts_us, 1000));
    if (ev->op == CDC_EVENT_READ)
        JW_LIT(w, ",\"snapshot\":\"true\"");
    else
        JW_LIT(w, ",\"snapshot\":\"false\"");
    jw_raw(w, e->json_src_db.data, e->json_src_db.len);
    /* sequence: a string holding ["<commit lsn>","<event lsn>"], decimal */
    if (ev->commit_lsn != CDC_INVALID_LSN) {
        JW_LIT(w, "\\\"");
        jw_u64(w, ev->commit_lsn);
        JW_LIT(w, "\\\"");
    } else
        JW_LIT(w, "null");
    jw_putc(w, ',');
    if (lsn != CDC_INVALID_LSN) {
        JW_LIT(w, "\\\"");
        jw_u64(w, lsn);
        JW_LIT(w, "\\\"");
    } else
        JW_LIT(w, "null");
    JW_LIT(w, "]\",\"ts_us\":");
    jw_i64(w, ts_us);
    JW_LIT(w, ",\"ts_ns\":");
    jw_i64(w, ts_us * 1000);
    JW_LIT(w, ",\"schema\":");
    jw_cstr(w, ev->op == CDC_EVENT_MESSAGE ? "" : ev->schema);
    JW_LIT(w, ",\"table\":");
    jw_cstr(w, ev->op == CDC_EVENT_MESSAGE ? "" : ev->table);
    JW_LIT(w, ",\"txId\":");
    if (txid != 0)
        jw_u64(w, txid);
    else
        JW_LIT(w, "null");
    JW_LIT(w, ",\"lsn\":");
    if (lsn != CDC_INVALID_LSN)
        jw_u64(w, lsn);
    else
        JW_LIT(w, "null");
    JW_LIT(w, ",\"xmin\":null}");
}

int cdc_enc__json_value(cdc_encoder *e, const cdc_event *ev, int64_t now_us, cdc_buf *out,
                        cdc_error *err)
{
    cdc_enc_jw w = {out, 0};
    int64_t ts_us = ev->commit_ts_us != 0 ? ev->commit_ts_us : now_us;
    cdc_lsn lsn = ev->lsn;

    /* rough size so the common event needs one reservation */
    if (cdc_buf_reserve(out, 512 + ev->ncols * 48) < 0)
        return cdc_err(err, CDC_ENOMEM, "out of memory encoding an event");

    if (ev->op == CDC_EVENT_MESSAGE) {
        /* Debezium's logical decoding message value: op, ts_ms, source, transaction, message */
        if (lsn == CDC_INVALID_LSN)
            lsn = ev->message.lsn;
        JW_LIT(&w, "{\"op\":\"m\",\"ts_ms\":");
        jw_i64(&w, cdc_enc_floor_div(now_us, 1000));
        jw_putc(&w, ',');
        jw_source(&w, e, ev, ts_us, ev->message.transactional ? ev->xid : 0, lsn);
        JW_LIT(&w, ",\"transaction\":null,\"message\":{\"prefix\":");
        jw_cstr(&w, ev->message.prefix);
        JW_LIT(&w, ",\"content\":");
        jw_bytes(&w, e, ev->message.content ? ev->message.content : "", ev->message.len);
        JW_LIT(&w, "}}");
    } else {
        JW_LIT(&w, "{\"before\":");
        if (ev->before != NULL && ev->op != CDC_EVENT_TRUNCATE && ev->op != CDC_EVENT_INSERT &&
            ev->op != CDC_EVENT_READ)
            jw_row(&w, e, ev, ev->before, ev->before_image == CDC_EVENT_IMAGE_KEY);
        else
            JW_LIT(&w, "null");
        JW_LIT(&w, ",\"after\":");
        if (ev->after != NULL && ev->op != CDC_EVENT_TRUNCATE && ev->op != CDC_EVENT_DELETE)
            jw_row(&w, e, ev, ev->after, false);
        else
            JW_LIT(&w, "null");
        jw_putc(&w, ',');
        jw_source(&w, e, ev, ts_us, ev->xid, lsn);
        JW_LIT(&w, ",\"op\":\"");
        jw_putc(&w, (char)ev->op);
        JW_LIT(&w, "\",\"ts_ms\":");
        jw_i64(&w, cdc_enc_floor_div(now_us, 1000));
        JW_LIT(&w, ",\"ts_us\":");
        jw_i64(&w, now_us);
        JW_LIT(&w, ",\"ts_ns\":");
        jw_i64(&w, now_us * 1000);
        JW_LIT(&w, ",\"transaction\":null}");
    }
    if (jw_end(&w) < 0)
        return cdc_err(err, w.rc, "out of memory encoding an event");
    return 0;
}

/* ---------------------------------------------------------------------------
 * Key
 * ------------------------------------------------------------------------- */

int cdc_enc__json_key(cdc_encoder *e, const cdc_event *ev, const cdc_event_value *img,
                      const cdc_event_value *other, cdc_buf *out, cdc_error *err)
{
    cdc_enc_jw w = {out, 0};

    if (ev->op == CDC_EVENT_MESSAGE) {
        JW_LIT(&w, "{\"prefix\":");
        jw_cstr(&w, ev->message.prefix);
        jw_putc(&w, '}');
    } else {
        jw_putc(&w, '{');
        for (size_t k = 0; k < ev->nkeys; k++) {
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
            if (k)
                jw_putc(&w, ',');
            jw_cstr(&w, ev->columns[i].name);
            jw_putc(&w, ':');
            jw_value(&w, e, &ev->columns[i], v);
        }
        jw_putc(&w, '}');
    }
    if (jw_end(&w) < 0)
        return cdc_err(err, w.rc, "out of memory encoding a key");
    return 0;
}

/* ---------------------------------------------------------------------------
 * Set-up
 * ------------------------------------------------------------------------- */

int cdc_enc__json_init(cdc_encoder *e, cdc_error *err)
{
    cdc_enc_jw w = {&e->json_src_head, 0};
    JW_LIT(&w, "\"source\":{\"version\":");
    jw_cstr(&w, e->version);
    JW_LIT(&w, ",\"connector\":\"postgresql\",\"name\":");
    jw_cstr(&w, e->name);
    JW_LIT(&w, ",\"ts_ms\":");
    int rc = jw_end(&w);

    w = (cdc_enc_jw){&e->json_src_db, 0};
    JW_LIT(&w, ",\"db\":");
    jw_cstr(&w, e->db);
    JW_LIT(&w, ",\"sequence\":\"[");
    rc = rc ? rc : jw_end(&w);

    w = (cdc_enc_jw){&e->json_toast_text, 0};
    jw_str(&w, e->placeholder, e->placeholder_len);
    rc = rc ? rc : jw_end(&w);

    w = (cdc_enc_jw){&e->json_toast_bin, 0};
    jw_bytes(&w, e, e->placeholder, e->placeholder_len);
    rc = rc ? rc : jw_end(&w);

    if (rc < 0)
        return cdc_err(err, rc, "out of memory creating the json encoder");
    return 0;
}
