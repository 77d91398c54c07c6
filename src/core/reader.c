/* reader.c - bounds-checked big-endian reads for wire protocol decoding */
#include "pgcdc/reader.h"
#include "pgcdc/error.h"

#include <string.h>

void cdc_reader_init(cdc_reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = data ? len : 0;
    r->pos = 0;
}

size_t cdc_reader_remaining(const cdc_reader *r)
{
    return r->len - r->pos;
}

/* Big-endian value of the next n (<= 8) bytes, advancing on success. */
static int read_be(cdc_reader *r, size_t n, uint64_t *ret)
{
    uint64_t v = 0;
    if (cdc_reader_remaining(r) < n)
        return CDC_EPROTO;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | r->data[r->pos + i];
    r->pos += n;
    *ret = v;
    return 0;
}

int cdc_reader_u8(cdc_reader *r, uint8_t *ret)
{
    uint64_t v;
    if (read_be(r, 1, &v) < 0)
        return CDC_EPROTO;
    *ret = (uint8_t)v;
    return 0;
}

int cdc_reader_i16(cdc_reader *r, int16_t *ret)
{
    uint64_t v;
    if (read_be(r, 2, &v) < 0)
        return CDC_EPROTO;
    *ret = (int16_t)(uint16_t)v; /* two's complement on every supported target */
    return 0;
}

int cdc_reader_u32(cdc_reader *r, uint32_t *ret)
{
    uint64_t v;
    if (read_be(r, 4, &v) < 0)
        return CDC_EPROTO;
    *ret = (uint32_t)v;
    return 0;
}

int cdc_reader_i32(cdc_reader *r, int32_t *ret)
{
    uint64_t v;
    if (read_be(r, 4, &v) < 0)
        return CDC_EPROTO;
    *ret = (int32_t)(uint32_t)v;
    return 0;
}

int cdc_reader_u64(cdc_reader *r, uint64_t *ret)
{
    return read_be(r, 8, ret);
}

int cdc_reader_i64(cdc_reader *r, int64_t *ret)
{
    uint64_t v;
    if (read_be(r, 8, &v) < 0)
        return CDC_EPROTO;
    *ret = (int64_t)v;
    return 0;
}

int cdc_reader_str(cdc_reader *r, const char **ret, size_t *ret_len)
{
    size_t left = cdc_reader_remaining(r);
    if (left == 0)
        return CDC_EPROTO;
    const uint8_t *start = r->data + r->pos;
    const uint8_t *nul = memchr(start, '\0', left);
    if (nul == NULL)
        return CDC_EPROTO;
    *ret = (const char *)start;
    if (ret_len)
        *ret_len = (size_t)(nul - start);
    r->pos += (size_t)(nul - start) + 1;
    return 0;
}

int cdc_reader_bytes(cdc_reader *r, size_t n, const uint8_t **ret)
{
    if (cdc_reader_remaining(r) < n)
        return CDC_EPROTO;
    *ret = r->data ? r->data + r->pos : NULL; /* no arithmetic on a NULL pointer */
    r->pos += n;
    return 0;
}
