/* json.c - the Debezium JSON envelope (JSON converter, schemas.enable=false), written by hand */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/encode.h"

#include "encode_int.h"
#include "pgcdc/hex.h"

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
            size_t k = cdc_utf8_seq(p + i, n - i);
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
static const char base64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char base64_url[] = /* RFC 4648's URL-safe alphabet, padded as Java's */
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void jw_base64_with(cdc_enc_jw *w, const unsigned char *p, size_t n, const char *tbl)
{
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

static void jw_base64(cdc_enc_jw *w, const unsigned char *p, size_t n)
{
    jw_base64_with(w, p, n, base64_std);
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
    else if (e->binary_mode == CDC_BINARY_BASE64_URL)
        jw_base64_with(w, p, n, base64_url);
    else
        jw_base64(w, p, n); /* base64, and bytes as the JSON converter writes them */
}

/* Append n ASCII bytes that need no escaping between quotes. */
static void jw_quoted(cdc_enc_jw *w, const char *s, size_t n)
{
    jw_putc(w, '"');
    jw_raw(w, s, n);
    jw_putc(w, '"');
}

/* ---------------------------------------------------------------------------
 * Column values
 *
 * Every writer gets the value in PostgreSQL's text output form and appends
 * its JSON representation (docs/MESSAGES.md, "Column values"). A value that
 * does not parse as its type expects is sent as a JSON string of the text:
 * a column is never dropped and never made up.
 * ------------------------------------------------------------------------- */

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
 * real / double precision: the text as a JSON number when it is one
 * (PostgreSQL prints the shortest exact form, so nothing is lost), else a
 * string: "NaN", "Infinity", "-Infinity" as Jackson writes them.
 */
static void jw_float(cdc_enc_jw *w, const char *s, size_t n)
{
    if (cdc_enc_is_json_number(s, n))
        jw_raw(w, s, n);
    else
        jw_str(w, s, n);
}

/*
 * A decimal (numeric, money) as a double (decimal.handling.mode = double):
 * PostgreSQL's exact digits as the JSON number, which every parser rounds
 * to the double Debezium would send; a magnitude beyond the double range
 * becomes "Infinity" / "-Infinity" as Debezium's overflowing double does.
 */
static void jw_decimal_double(cdc_enc_jw *w, cdc_encoder *e, const char *s, size_t n)
{
    if (!cdc_enc_is_json_number(s, n)) {
        jw_str(w, s, n); /* NaN, Infinity, -Infinity */
        return;
    }
    size_t intdig = 0;
    for (size_t i = s[0] == '-'; i < n && s[i] != '.'; i++)
        intdig++;
    if (intdig >= 309) {
        cdc_buf *sc = &e->scratch;
        cdc_buf_reset(sc);
        if (cdc_buf_append(sc, s, n) < 0) {
            w->rc = CDC_ENOMEM;
            return;
        }
        if (isinf(strtod(sc->data, NULL))) {
            if (s[0] == '-')
                JW_LIT(w, "\"-Infinity\"");
            else
                JW_LIT(w, "\"Infinity\"");
            return;
        }
    }
    jw_raw(w, s, n);
}

/*
 * A decimal as Kafka Connect's Decimal: the unscaled value as big-endian
 * two's complement bytes, shortest form (Java's BigInteger.toByteArray),
 * base64 as the JSON converter writes BYTES, at the given scale (numeric(p,s),
 * money; negative for numeric(p,-s)). CDC_ENC_VARIABLE_SCALE gives Debezium's
 * VariableScaleDecimal {"scale":s,"value":bytes} with the value's own scale,
 * trailing fraction zeros stripped; so does a value that does not fit the
 * fixed scale. NaN and the infinities have no such form: null. Text that is
 * not a decimal is sent as a string.
 */
#define CDC_ENC_VARIABLE_SCALE INT32_MIN

static void jw_decimal_precise(cdc_enc_jw *w, cdc_encoder *e, int32_t scale, const char *s,
                               size_t n)
{
    size_t i = 0, ndig = 0, nfrac = 0;
    bool neg = false, dot = false;

    if ((n == 3 && memcmp(s, "NaN", 3) == 0) || (n == 8 && memcmp(s, "Infinity", 8) == 0) ||
        (n == 9 && memcmp(s, "-Infinity", 9) == 0)) {
        JW_LIT(w, "null");
        return;
    }
    if (!cdc_enc__is_decimal(s, n)) {
        jw_str(w, s, n); /* not a decimal */
        return;
    }
    if (s[0] == '-')
        neg = s[i++] == '-';
    for (size_t j = i; j < n; j++) {
        if (s[j] == '.')
            dot = true;
        else {
            ndig++;
            nfrac += dot;
        }
    }

    /* the digits of the unscaled value, in e->scratch */
    bool variable = scale == CDC_ENC_VARIABLE_SCALE;
    size_t pad = variable || scale <= (int32_t)nfrac ? 0 : (size_t)scale - nfrac;
    size_t maxw = (ndig + pad) / 9 + 2;
    cdc_buf *sc = &e->scratch;
    cdc_buf_reset(sc);
    if (cdc_buf_reserve(sc, ndig + pad + 8 + maxw * sizeof(uint32_t) + maxw * 4 + 1) < 0) {
        w->rc = CDC_ENOMEM;
        return;
    }
    char *dig = sc->data;
    size_t nd = 0;
    for (size_t j = i; j < n; j++)
        if (s[j] != '.')
            dig[nd++] = s[j];
    if (variable) {
        while (nfrac > 0 && dig[nd - 1] == '0') {
            nd--;
            nfrac--;
        }
        scale = (int32_t)nfrac;
    } else {
        /* drop fraction (or, for a negative scale, integer) zeros below the scale */
        int32_t drop = (int32_t)nfrac - scale;
        size_t nz = 0;
        while (nz < nd && dig[nz] == '0')
            nz++;
        if (nz == nd) { /* zero: unscaled 0 at any scale */
            nd = 1;
            drop = 0;
            pad = 0;
        }
        for (; drop > 0; drop--) {
            if (nd == 0 || dig[nd - 1] != '0') {
                jw_decimal_precise(w, e, CDC_ENC_VARIABLE_SCALE, s, n);
                return;
            }
            nd--;
        }
        memset(dig + nd, '0', pad);
        nd += pad;
    }

    /* base 10^9 chunks into base-2^32 words by schoolbook multiply-add, least significant first */
    uint32_t *words = (uint32_t *)(void *)(sc->data + ((nd + 7) & ~(size_t)7));
    size_t nw = 0;
    uint32_t chunk = 0, mul = 1;
    size_t first = nd % 9 ? nd % 9 : 9;
    for (size_t j = 0; j < nd; j++) {
        chunk = chunk * 10 + (uint32_t)(dig[j] - '0');
        mul *= 10;
        if (j + 1 == first || (j + 1 > first && (j + 1 - first) % 9 == 0)) {
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
    jw_base64(w, bytes + start, nb - start);
    if (variable)
        jw_putc(w, '}');
}

/* Scale of a numeric(p,s) column: s (PostgreSQL 15 allows -1000..1000), or variable. */
static int32_t cdc_enc_numeric_scale(int32_t typmod)
{
    if (typmod < 4)
        return CDC_ENC_VARIABLE_SCALE;
    return ((((typmod - 4) & 0x7ff) ^ 1024) - 1024);
}

/* numeric: as decimal.handling.mode says; in string mode NaN and the infinities are
 * Debezium's names for them ("NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY") */
static void jw_numeric(cdc_enc_jw *w, cdc_encoder *e, int32_t typmod, const char *s, size_t n)
{
    if (e->decimal_mode == CDC_DECIMAL_DOUBLE)
        jw_decimal_double(w, e, s, n);
    else if (e->decimal_mode == CDC_DECIMAL_PRECISE)
        jw_decimal_precise(w, e, cdc_enc_numeric_scale(typmod), s, n);
    else if (n == 3 && memcmp(s, "NaN", 3) == 0)
        JW_LIT(w, "\"NAN\"");
    else if (n == 8 && memcmp(s, "Infinity", 8) == 0)
        JW_LIT(w, "\"POSITIVE_INFINITY\"");
    else if (n == 9 && memcmp(s, "-Infinity", 9) == 0)
        JW_LIT(w, "\"NEGATIVE_INFINITY\"");
    else
        jw_str(w, s, n);
}

/* money: the amount as a plain decimal ("-1234.56"), as decimal.handling.mode says */
static void jw_money(cdc_enc_jw *w, cdc_encoder *e, const char *s, size_t n)
{
    char dec[32];
    size_t k = cdc_enc__parse_money(s, n, dec);
    if (k == 0) {
        jw_str(w, s, n);
        return;
    }
    if (e->decimal_mode == CDC_DECIMAL_DOUBLE)
        jw_decimal_double(w, e, dec, k);
    else if (e->decimal_mode == CDC_DECIMAL_PRECISE) {
        const char *dot = memchr(dec, '.', k);
        jw_decimal_precise(w, e, dot ? (int32_t)(dec + k - dot - 1) : 0, dec, k);
    } else
        jw_quoted(w, dec, k);
}

static void jw_bytea(cdc_enc_jw *w, cdc_encoder *e, const char *s, size_t n)
{
    int rc = cdc_enc__bytea_decode(s, n, &e->scratch);
    if (rc == CDC_ENOMEM)
        w->rc = rc;
    else if (rc < 0)
        jw_str(w, s, n); /* not bytea output after all: keep the text */
    else
        jw_bytes(w, e, e->scratch.data, e->scratch.len);
}

/* "infinity" / "-infinity" */
static void jw_infinity_str(cdc_enc_jw *w, int inf)
{
    if (inf == CDC_ENC_INF_POS)
        JW_LIT(w, "\"infinity\"");
    else
        JW_LIT(w, "\"-infinity\"");
}

/* Fractional digits of a time or timestamp column: its typmod, 6 when it has none. */
static int cdc_enc_precision(int32_t typmod)
{
    return typmod < 0 || typmod > 6 ? 6 : (int)typmod;
}

/* date: days since the epoch (io.debezium.time.Date / Connect Date), or "2024-05-01Z" */
static void jw_date(cdc_enc_jw *w, cdc_encoder *e, const char *s, size_t n)
{
    cdc_enc_ts t;
    int r = cdc_enc__parse_date(s, n, &t);
    if (r < 0) {
        jw_str(w, s, n);
    } else if (e->time_mode == CDC_TIME_ISOSTRING) {
        char buf[32];
        size_t k = 0;
        if (r != CDC_ENC_FINITE) {
            /* Debezium's: its day-number sentinels (below) as dates; infinity is the smaller */
            if (r == CDC_ENC_INF_POS)
                JW_LIT(w, "\"-5877611-06-21Z\"");
            else
                JW_LIT(w, "\"-5877611-06-22Z\"");
            return;
        }
        k = cdc_enc__fmt_date(buf, t.days);
        buf[k++] = 'Z';
        jw_quoted(w, buf, k);
    } else if (r == CDC_ENC_INF_POS) {
        JW_LIT(w, "-2147472692"); /* Debezium's: the epoch day of -5877611-06-21 */
    } else if (r == CDC_ENC_INF_NEG) {
        JW_LIT(w, "-2147472691"); /* and of -5877611-06-22 */
    } else {
        jw_i64(w, t.days);
    }
}

/* time: ms or µs past midnight by time.precision.mode, or "12:00:00.5Z" */
static void jw_time(cdc_enc_jw *w, cdc_encoder *e, int32_t typmod, const char *s, size_t n)
{
    cdc_enc_ts t;
    if (cdc_enc__parse_time(s, n, &t) < 0) {
        jw_str(w, s, n);
        return;
    }
    switch (e->time_mode) {
    case CDC_TIME_ISOSTRING: {
        /* Debezium's ISO time is a java.time.LocalTime, where 24:00:00 is the midnight
         * that starts the day (no ISO time parser reads "24:00:00") */
        char buf[24];
        size_t k = cdc_enc__fmt_time(buf, t.us % CDC_ENC_US_PER_DAY, -1);
        buf[k++] = 'Z';
        jw_quoted(w, buf, k);
        return;
    }
    case CDC_TIME_CONNECT: jw_i64(w, t.us / 1000); return;
    case CDC_TIME_ADAPTIVE: jw_i64(w, cdc_enc_precision(typmod) <= 3 ? t.us / 1000 : t.us); return;
    case CDC_TIME_NANOS: jw_i64(w, t.us * 1000); return; /* io.debezium.time.NanoTime */
    default: jw_i64(w, t.us); return;
    }
}

/* timetz: io.debezium.time.ZonedTime, the time in UTC within the day, as Debezium's
 * OffsetTime has it: "06:30:00.5Z"; 24:00:00+00 is "00:00:00Z" */
static void jw_timetz(cdc_enc_jw *w, const char *s, size_t n)
{
    cdc_enc_ts t;
    int32_t off;
    if (cdc_enc__parse_timetz(s, n, &t, &off) < 0) {
        jw_str(w, s, n);
        return;
    }
    int64_t us = (t.us - (int64_t)off * 1000000) % CDC_ENC_US_PER_DAY;
    if (us < 0)
        us += CDC_ENC_US_PER_DAY;
    char buf[24];
    size_t k = cdc_enc__fmt_time(buf, us, -1);
    buf[k++] = 'Z';
    jw_quoted(w, buf, k);
}

/* "YYYY-MM-DDTHH:MM:SS[.f]Z" of a UTC time; digits as cdc_enc__fmt_time */
static void jw_iso_timestamp(cdc_enc_jw *w, const cdc_enc_ts *t, int digits)
{
    char buf[48];
    size_t k = cdc_enc__fmt_date(buf, t->days);
    buf[k++] = 'T';
    k += cdc_enc__fmt_time(buf + k, t->us, digits);
    buf[k++] = 'Z';
    jw_quoted(w, buf, k);
}

/*
 * timestamp: ms (io.debezium.time.Timestamp, Connect Timestamp) or µs
 * (MicroTimestamp) since the epoch, the wall clock read as UTC; or
 * "2024-05-01T12:00:00.5Z" (isostring). ±infinity: Debezium's sentinels.
 */
static void jw_timestamp(cdc_enc_jw *w, cdc_encoder *e, int32_t typmod, const char *s, size_t n)
{
    cdc_enc_ts t;
    int r = cdc_enc__parse_timestamp(s, n, false, &t);
    if (r < 0) {
        jw_str(w, s, n);
        return;
    }
    if (e->time_mode == CDC_TIME_ISOSTRING) {
        /* Debezium's: its microsecond sentinels (below) as ISO timestamps */
        if (r == CDC_ENC_INF_POS)
            JW_LIT(w, "\"+294247-01-10T04:00:25.2Z\"");
        else if (r == CDC_ENC_INF_NEG)
            JW_LIT(w, "\"-290308-12-21T19:59:27.6Z\"");
        else
            jw_iso_timestamp(w, &t, -1);
        return;
    }
    if (e->time_mode == CDC_TIME_NANOS) { /* io.debezium.time.NanoTimestamp */
        __int128 ns = ((__int128)t.days * CDC_ENC_US_PER_DAY + t.us) * 1000;
        if (r == CDC_ENC_INF_POS) /* Debezium clamps them */
            JW_LIT(w, "9223372036854775807");
        else if (r == CDC_ENC_INF_NEG)
            JW_LIT(w, "-9223372036854775808");
        else if (ns > INT64_MAX || ns < INT64_MIN)
            jw_iso_timestamp(w, &t, -1); /* before 1677 or after 2262: no int64 holds it */
        else
            jw_i64(w, (int64_t)ns);
        return;
    }
    bool ms = e->time_mode == CDC_TIME_CONNECT ||
              (e->time_mode != CDC_TIME_MICROS && cdc_enc_precision(typmod) <= 3);
    if (r == CDC_ENC_INF_POS)
        ms ? JW_LIT(w, "9223372036825200") : JW_LIT(w, "9223372036825200000");
    else if (r == CDC_ENC_INF_NEG)
        ms ? JW_LIT(w, "-9223372036832400") : JW_LIT(w, "-9223372036832400000");
    else if (ms)
        jw_i64(w, t.days * 86400000 + t.us / 1000);
    else {
        __int128 us = (__int128)t.days * CDC_ENC_US_PER_DAY + t.us;
        if (us > INT64_MAX || us < INT64_MIN)
            jw_iso_timestamp(w, &t, -1); /* past 294247-01-10: no int64 holds it */
        else
            jw_i64(w, (int64_t)us);
    }
}

/*
 * timestamptz: io.debezium.time.ZonedTimestamp, the instant in UTC with as
 * many fractional digits as the column's precision (6 when none):
 * "2024-05-01T10:00:00.500000Z"; "infinity" / "-infinity".
 */
static void jw_timestamptz(cdc_enc_jw *w, int32_t typmod, const char *s, size_t n)
{
    cdc_enc_ts t;
    int r = cdc_enc__parse_timestamp(s, n, true, &t);
    if (r < 0)
        jw_str(w, s, n);
    else if (r != CDC_ENC_FINITE)
        jw_infinity_str(w, r);
    else
        jw_iso_timestamp(w, &t, cdc_enc_precision(typmod));
}

/*
 * interval: io.debezium.time.MicroDuration, µs with 30.4375-day months,
 * computed exactly and clamped to int64; or (interval.handling.mode =
 * string) io.debezium.time.Interval "P1Y2M3DT4H5M6.78S".
 */
static void jw_interval(cdc_enc_jw *w, cdc_encoder *e, const char *s, size_t n)
{
    cdc_enc_interval iv;
    int r = cdc_enc__parse_interval(s, n, &iv);
    if (r < 0) {
        jw_str(w, s, n);
        return;
    }
    if (e->interval_mode == CDC_INTERVAL_STRING) {
        if (r != CDC_ENC_FINITE) {
            jw_infinity_str(w, r);
            return;
        }
        int64_t us = iv.us, sec = us % 60000000;
        uint64_t asec = (uint64_t)(sec < 0 ? -sec : sec), frac = asec % 1000000;
        jw_putc(w, '"');
        jw_putc(w, 'P');
        jw_i64(w, iv.months / 12);
        jw_putc(w, 'Y');
        jw_i64(w, iv.months % 12);
        jw_putc(w, 'M');
        jw_i64(w, iv.days);
        JW_LIT(w, "DT");
        jw_i64(w, us / INT64_C(3600000000));
        jw_putc(w, 'H');
        jw_i64(w, us % INT64_C(3600000000) / 60000000);
        jw_putc(w, 'M');
        if (sec < 0)
            jw_putc(w, '-');
        jw_u64(w, asec / 1000000);
        if (frac) {
            char f[8];
            int k = 6;
            while (frac % 10 == 0) {
                frac /= 10;
                k--;
            }
            for (int j = k - 1; j >= 0; j--, frac /= 10)
                f[j] = (char)('0' + frac % 10);
            jw_putc(w, '.');
            jw_raw(w, f, (size_t)k);
        }
        JW_LIT(w, "S\"");
        return;
    }
    if (r == CDC_ENC_INF_POS) {
        jw_i64(w, INT64_MAX);
        return;
    }
    if (r == CDC_ENC_INF_NEG) {
        jw_i64(w, INT64_MIN);
        return;
    }
    __int128 us = (__int128)iv.months * INT64_C(2629800000000) +
                  (__int128)iv.days * CDC_ENC_US_PER_DAY + iv.us;
    jw_i64(w, us > INT64_MAX ? INT64_MAX : us < INT64_MIN ? INT64_MIN : (int64_t)us);
}

/*
 * bit, varbit: bit(1) and varbit(1) as a boolean; otherwise io.debezium.data.Bits,
 * the bits as a little-endian number in as few bytes as it needs, base64.
 */
static void jw_bit(cdc_enc_jw *w, cdc_encoder *e, int32_t typmod, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0' && s[i] != '1') {
            jw_str(w, s, n);
            return;
        }
    if (typmod == 1 && n == 1) {
        if (s[0] == '1')
            JW_LIT(w, "true");
        else
            JW_LIT(w, "false");
        return;
    }
    size_t f = 0;
    while (f < n && s[f] == '0')
        f++;
    size_t nbits = n - f, nbytes = (nbits + 7) / 8;
    cdc_buf *sc = &e->scratch;
    cdc_buf_reset(sc);
    if (cdc_buf_reserve(sc, nbytes) < 0) {
        w->rc = CDC_ENOMEM;
        return;
    }
    unsigned char *b = (unsigned char *)sc->data;
    memset(b, 0, nbytes);
    for (size_t j = 0; j < nbits; j++)
        if (s[n - 1 - j] == '1')
            b[j / 8] |= (unsigned char)(1u << (j % 8));
    jw_base64(w, b, nbytes);
}

/* Parse a float8 in its text form, the whole of s[0..n). */
static bool cdc_enc_strtod(const char *s, size_t n, double *ret)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    *ret = strtod(buf, &end);
    return end == buf + n;
}

static void cdc_enc_put_le_double(unsigned char *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

/* point: io.debezium.data.geometry.Point {"x":..,"y":..,"wkb":"<base64 WKB>","srid":null} */
static void jw_point(cdc_enc_jw *w, const char *s, size_t n)
{
    const char *comma = n >= 5 && s[0] == '(' && s[n - 1] == ')' ? memchr(s, ',', n) : NULL;
    double x, y;
    if (comma == NULL || !cdc_enc_strtod(s + 1, (size_t)(comma - s - 1), &x) ||
        !cdc_enc_strtod(comma + 1, (size_t)(s + n - 1 - comma - 1), &y)) {
        jw_str(w, s, n);
        return;
    }
    unsigned char wkb[21] = {1, 1, 0, 0, 0}; /* little-endian, type 1 (Point) */
    cdc_enc_put_le_double(wkb + 5, x);
    cdc_enc_put_le_double(wkb + 13, y);
    JW_LIT(w, "{\"x\":");
    jw_float(w, s + 1, (size_t)(comma - s - 1));
    JW_LIT(w, ",\"y\":");
    jw_float(w, comma + 1, (size_t)(s + n - 1 - comma - 1));
    JW_LIT(w, ",\"wkb\":");
    jw_base64(w, wkb, sizeof(wkb));
    JW_LIT(w, ",\"srid\":null}");
}

/*
 * The double-quoted string at s[*i] ('"' ... '"', backslash escapes the next
 * character) unescaped into out. Returns false when it is not one.
 */
static bool cdc_enc_unquote(const char *s, size_t n, size_t *i, cdc_buf *out, int *rc)
{
    cdc_buf_reset(out);
    if (*i >= n || s[*i] != '"')
        return false;
    size_t j = *i + 1, run = j;
    for (; j < n && s[j] != '"'; j++) {
        if (s[j] != '\\')
            continue;
        if (cdc_buf_append(out, s + run, j - run) < 0 || j + 1 >= n ||
            cdc_buf_append(out, s + j + 1, 1) < 0) {
            if (j + 1 < n)
                *rc = CDC_ENOMEM;
            return false;
        }
        run = ++j + 1;
    }
    if (j >= n || cdc_buf_append(out, s + run, j - run) < 0 || cdc_buf_reserve(out, 0) < 0) {
        if (j < n)
            *rc = CDC_ENOMEM;
        return false;
    }
    *i = j + 1;
    return true;
}

/* The pairs of an hstore ("k"=>"v", "n"=>NULL) as a JSON object into d. */
static bool jw_hstore_object(cdc_enc_jw *d, cdc_encoder *e, const char *s, size_t n)
{
    size_t i = 0;
    jw_putc(d, '{');
    while (i < n) {
        if (i > 0) {
            if (i + 2 > n || s[i] != ',' || s[i + 1] != ' ')
                return false;
            jw_putc(d, ',');
            i += 2;
        }
        if (!cdc_enc_unquote(s, n, &i, &e->hs, &d->rc))
            return false;
        jw_str(d, e->hs.data ? e->hs.data : "", e->hs.len);
        if (i + 2 > n || s[i] != '=' || s[i + 1] != '>')
            return false;
        i += 2;
        jw_putc(d, ':');
        if (i + 4 <= n && memcmp(s + i, "NULL", 4) == 0) {
            JW_LIT(d, "null");
            i += 4;
        } else if (cdc_enc_unquote(s, n, &i, &e->hs, &d->rc)) {
            jw_str(d, e->hs.data ? e->hs.data : "", e->hs.len);
        } else
            return false;
    }
    jw_putc(d, '}');
    return true;
}

/*
 * hstore: a JSON object (hstore.handling.mode = map) or that object as a
 * JSON string (json, io.debezium.data.Json), in PostgreSQL's key order.
 */
static void jw_hstore(cdc_enc_jw *w, cdc_encoder *e, const char *s, size_t n)
{
    size_t len0 = w->b->len;
    if (e->hstore_mode == CDC_HSTORE_MAP) {
        if (!jw_hstore_object(w, e, s, n) && w->rc == 0) {
            w->b->len = len0;
            jw_str(w, s, n);
        }
        return;
    }
    cdc_buf_reset(&e->nested);
    cdc_enc_jw nw = {&e->nested, 0};
    bool ok = jw_hstore_object(&nw, e, s, n);
    if (nw.rc)
        w->rc = nw.rc;
    else if (ok)
        jw_str(w, e->nested.data, e->nested.len);
    else
        jw_str(w, s, n);
}

static void jw_text_value(cdc_enc_jw *w, cdc_encoder *e, cdc_enc_type t, int32_t typmod,
                          const char *s, size_t n);

/* One level of an array literal at s[*i] ('{' ... '}') as a JSON array. */
static bool jw_array_level(cdc_enc_jw *w, cdc_encoder *e, cdc_enc_type t, int32_t typmod,
                           const char *s, size_t n, size_t *i, int depth)
{
    cdc_enc_type et = {t.elem, CDC_ENC_KIND_TEXT, ','};
    if (depth > 6 || *i >= n || s[*i] != '{')
        return false;
    (*i)++;
    jw_putc(w, '[');
    if (*i < n && s[*i] == '}') {
        (*i)++;
        jw_putc(w, ']');
        return true;
    }
    for (bool first = true;; first = false) {
        if (!first)
            jw_putc(w, ',');
        if (*i >= n)
            return false;
        if (s[*i] == '{') {
            if (!jw_array_level(w, e, t, typmod, s, n, i, depth + 1))
                return false;
        } else if (s[*i] == '"') {
            if (!cdc_enc_unquote(s, n, i, &e->elem, &w->rc))
                return false;
            jw_text_value(w, e, et, typmod, e->elem.data ? e->elem.data : "", e->elem.len);
        } else {
            size_t j = *i;
            while (j < n && s[j] != t.delim && s[j] != '}')
                j++;
            if (j == *i)
                return false;
            if (j - *i == 4 && memcmp(s + *i, "NULL", 4) == 0)
                JW_LIT(w, "null");
            else
                jw_text_value(w, e, et, typmod, s + *i, j - *i);
            *i = j;
        }
        if (*i < n && s[*i] == t.delim) {
            (*i)++;
            continue;
        }
        if (*i < n && s[*i] == '}') {
            (*i)++;
            jw_putc(w, ']');
            return true;
        }
        return false;
    }
}

/*
 * An array as a JSON array of its elements, each mapped as a column of the
 * element type would be; NULL elements are null, a multi-dimensional array
 * nests. Explicit bounds ("[0:1]={...}") are not kept.
 */
static void jw_array(cdc_enc_jw *w, cdc_encoder *e, cdc_enc_type t, int32_t typmod, const char *s,
                     size_t n)
{
    size_t len0 = w->b->len, i = 0;
    if (n > 0 && s[0] == '[') {
        const char *eq = memchr(s, '=', n);
        i = eq ? (size_t)(eq - s) + 1 : n;
    }
    if (!jw_array_level(w, e, t, typmod, s, n, &i, 1) || i != n) {
        if (w->rc == 0) {
            w->b->len = len0;
            jw_str(w, s, n);
        }
    }
}

/* A value in its text form, mapped by its type (t.kind is never ARRAY inside an array). */
static void jw_text_value(cdc_enc_jw *w, cdc_encoder *e, cdc_enc_type t, int32_t typmod,
                          const char *s, size_t n)
{
    switch ((cdc_enc_kind)t.kind) {
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
    case CDC_ENC_KIND_FLOAT4:
    case CDC_ENC_KIND_FLOAT8: jw_float(w, s, n); return;
    case CDC_ENC_KIND_NUMERIC: jw_numeric(w, e, typmod, s, n); return;
    case CDC_ENC_KIND_MONEY: jw_money(w, e, s, n); return;
    case CDC_ENC_KIND_BYTEA: jw_bytea(w, e, s, n); return;
    case CDC_ENC_KIND_DATE: jw_date(w, e, s, n); return;
    case CDC_ENC_KIND_TIME: jw_time(w, e, typmod, s, n); return;
    case CDC_ENC_KIND_TIMETZ: jw_timetz(w, s, n); return;
    case CDC_ENC_KIND_TIMESTAMP: jw_timestamp(w, e, typmod, s, n); return;
    case CDC_ENC_KIND_TIMESTAMPTZ: jw_timestamptz(w, typmod, s, n); return;
    case CDC_ENC_KIND_INTERVAL: jw_interval(w, e, s, n); return;
    case CDC_ENC_KIND_BIT: jw_bit(w, e, typmod, s, n); return;
    case CDC_ENC_KIND_POINT: jw_point(w, s, n); return;
    case CDC_ENC_KIND_HSTORE: jw_hstore(w, e, s, n); return;
    case CDC_ENC_KIND_ARRAY: jw_array(w, e, t, typmod, s, n); return;
    case CDC_ENC_KIND_TEXT:
    default: jw_str(w, s, n); return;
    }
}

/* Whether elements of kind k are JSON numbers (so a TOAST placeholder array lists bytes). */
static bool cdc_enc_numeric_elem(const cdc_encoder *e, cdc_enc_kind k)
{
    switch (k) {
    case CDC_ENC_KIND_INT:
    case CDC_ENC_KIND_FLOAT4:
    case CDC_ENC_KIND_FLOAT8: return true;
    case CDC_ENC_KIND_DATE:
    case CDC_ENC_KIND_TIME:
    case CDC_ENC_KIND_TIMESTAMP: return e->time_mode != CDC_TIME_ISOSTRING;
    case CDC_ENC_KIND_INTERVAL: return e->interval_mode == CDC_INTERVAL_NUMERIC;
    case CDC_ENC_KIND_NUMERIC:
    case CDC_ENC_KIND_MONEY: return e->decimal_mode == CDC_DECIMAL_DOUBLE;
    default: return false;
    }
}

/* The unavailable.value.placeholder in the shape of the column's type. */
static void jw_toast(cdc_enc_jw *w, const cdc_encoder *e, cdc_enc_type t)
{
    const cdc_buf *b = &e->json_toast_text;
    if (t.kind == CDC_ENC_KIND_BYTEA)
        b = &e->json_toast_bin;
    else if (t.kind == CDC_ENC_KIND_HSTORE)
        b = &e->json_toast_hstore;
    else if (t.kind == CDC_ENC_KIND_ARRAY) {
        if (t.elem == CDC_ENC_KIND_BOOL)
            b = &e->json_toast_arr_bool;
        else if (t.elem == CDC_ENC_KIND_BYTEA)
            b = &e->json_toast_arr_bin;
        else if (cdc_enc_numeric_elem(e, (cdc_enc_kind)t.elem))
            b = &e->json_toast_arr_num;
        else
            b = &e->json_toast_arr_str;
    }
    jw_raw(w, b->data, b->len);
}

/* Append one column value: the per-type mapping documented in docs/MESSAGES.md. */
static void jw_value(cdc_enc_jw *w, cdc_encoder *e, const cdc_event_column *col,
                     const cdc_event_value *v)
{
    switch (v->state) {
    case CDC_EVENT_NULL: JW_LIT(w, "null"); return;
    case CDC_EVENT_UNCHANGED_TOAST:
        jw_toast(w, e, cdc_enc__type(col->type_oid, col->type_name));
        return;
    case CDC_EVENT_BINARY:
        /* binary send form: only bytea's is the bytes themselves; others are opaque */
        jw_bytes(w, e, v->data, v->len);
        return;
    case CDC_EVENT_TEXT: break;
    default: JW_LIT(w, "null"); return;
    }
    jw_text_value(w, e, cdc_enc__type(col->type_oid, col->type_name), col->typmod,
                  v->data ? v->data : "", v->len);
}

/* Whether column i is one of the event's key columns (keys are ascending). */
static bool cdc_enc_is_key_index(const cdc_event *ev, size_t i, size_t *cursor)
{
    while (*cursor < ev->nkeys && ev->keys[*cursor] < i)
        (*cursor)++;
    return *cursor < ev->nkeys && ev->keys[*cursor] == i;
}

/*
 * Append a row image as {"col":value,...}. key_only: the image holds the key columns
 * alone (a delete's before image under REPLICA IDENTITY DEFAULT or USING INDEX); as
 * Debezium's JSON has every column, the others get their fill (cdc_event_column.fill:
 * the column's constant default, or its type's zero when NOT NULL) or null.
 */
static void jw_row(cdc_enc_jw *w, cdc_encoder *e, const cdc_event *ev, const cdc_event_value *row,
                   bool key_only)
{
    size_t cursor = 0;

    jw_putc(w, '{');
    for (size_t i = 0; i < ev->ncols; i++) {
        const cdc_event_column *col = &ev->columns[i];
        if (i)
            jw_putc(w, ',');
        jw_cstr(w, col->name);
        jw_putc(w, ':');
        if (key_only && !cdc_enc_is_key_index(ev, i, &cursor)) {
            if (col->fill == NULL) {
                JW_LIT(w, "null");
                continue;
            }
            cdc_event_value fill = {CDC_EVENT_TEXT, (uint32_t)strlen(col->fill), col->fill};
            jw_value(w, e, col, &fill);
            continue;
        }
        jw_value(w, e, col, cdc_enc__value(ev, row, i));
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
    if (ev->op == CDC_EVENT_READ) {
        JW_LIT(w, ",\"snapshot\":\"");
        jw_raw(w, ev->snapshot ? ev->snapshot : "true",
               strlen(ev->snapshot ? ev->snapshot : "true"));
        jw_putc(w, '"');
    } else
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
    /* Debezium's replication origin of the transaction (pgoutput's Origin message) */
    JW_LIT(w, ",\"xmin\":null,\"origin\":");
    if (ev->origin != NULL) {
        jw_cstr(w, ev->origin);
        JW_LIT(w, ",\"origin_lsn\":");
        jw_u64(w, ev->origin_lsn);
        jw_putc(w, '}');
    } else
        JW_LIT(w, "null,\"origin_lsn\":null}");
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
            const cdc_event_value *v;
            int krc = cdc_enc__key_value(ev, img, other, k, &v, err);
            if (krc < 0)
                return krc;
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

    /* arrays: Debezium's placeholder lists, by the JSON type of the elements */
    w = (cdc_enc_jw){&e->json_toast_arr_str, 0};
    jw_putc(&w, '[');
    jw_str(&w, e->placeholder, e->placeholder_len);
    jw_putc(&w, ']');
    rc = rc ? rc : jw_end(&w);

    w = (cdc_enc_jw){&e->json_toast_arr_bin, 0};
    jw_putc(&w, '[');
    jw_bytes(&w, e, e->placeholder, e->placeholder_len);
    jw_putc(&w, ']');
    rc = rc ? rc : jw_end(&w);

    w = (cdc_enc_jw){&e->json_toast_arr_num, 0};
    jw_putc(&w, '[');
    for (size_t i = 0; i < e->placeholder_len; i++) {
        if (i)
            jw_putc(&w, ',');
        jw_i64(&w, (signed char)e->placeholder[i]); /* Java bytes are signed */
    }
    jw_putc(&w, ']');
    rc = rc ? rc : jw_end(&w);

    w = (cdc_enc_jw){&e->json_toast_arr_bool, 0};
    jw_putc(&w, '[');
    for (size_t i = 0; i < e->placeholder_len; i++) {
        if (i)
            jw_putc(&w, ',');
        if (e->placeholder[i])
            JW_LIT(&w, "true");
        else
            JW_LIT(&w, "false");
    }
    jw_putc(&w, ']');
    rc = rc ? rc : jw_end(&w);

    /* hstore: {"<placeholder>":"<placeholder>"}, as an object or a JSON string */
    cdc_buf_reset(&e->nested);
    w = (cdc_enc_jw){&e->nested, 0};
    jw_putc(&w, '{');
    jw_str(&w, e->placeholder, e->placeholder_len);
    jw_putc(&w, ':');
    jw_str(&w, e->placeholder, e->placeholder_len);
    jw_putc(&w, '}');
    rc = rc ? rc : jw_end(&w);
    w = (cdc_enc_jw){&e->json_toast_hstore, 0};
    if (e->hstore_mode == CDC_HSTORE_MAP)
        jw_raw(&w, e->nested.data, e->nested.len);
    else
        jw_str(&w, e->nested.data, e->nested.len);
    rc = rc ? rc : jw_end(&w);

    if (rc < 0)
        return cdc_err(err, rc, "out of memory creating the json encoder");
    return 0;
}
