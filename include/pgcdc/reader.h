/* reader.h - bounds-checked big-endian reader over a borrowed byte range */
#ifndef PGCDC_READER_H
#define PGCDC_READER_H

#include <stddef.h>
#include <stdint.h>

/*
 * A cursor over bytes the caller owns; the reader never allocates and never
 * reads outside [data, data + len). Every read either consumes exactly the
 * bytes it needs and returns 0, or returns CDC_EPROTO and leaves both the
 * position and the output untouched, so the caller can name the field that
 * was short in its own error message.
 */
typedef struct cdc_reader {
    const uint8_t *data; /* first byte (borrowed) */
    size_t len;          /* bytes in data */
    size_t pos;          /* offset of the next byte to read, <= len */
} cdc_reader;

/* Start reading len bytes at data (data may be NULL when len is 0). */
void cdc_reader_init(cdc_reader *r, const void *data, size_t len);
/* Bytes left to read. */
size_t cdc_reader_remaining(const cdc_reader *r);

/* Fixed-width network-order integers. 0, or CDC_EPROTO on a short read. */
int cdc_reader_u8(cdc_reader *r, uint8_t *ret);
int cdc_reader_i16(cdc_reader *r, int16_t *ret);
int cdc_reader_u32(cdc_reader *r, uint32_t *ret);
int cdc_reader_i32(cdc_reader *r, int32_t *ret);
int cdc_reader_u64(cdc_reader *r, uint64_t *ret);
int cdc_reader_i64(cdc_reader *r, int64_t *ret);

/*
 * A NUL-terminated string. *ret points into the reader's bytes (borrowed,
 * terminated in place); *ret_len (may be NULL) gets its length without the
 * NUL. CDC_EPROTO when no NUL occurs before the end.
 */
int cdc_reader_str(cdc_reader *r, const char **ret, size_t *ret_len);

/* n bytes; *ret points into the reader's bytes. CDC_EPROTO if fewer remain. */
int cdc_reader_bytes(cdc_reader *r, size_t n, const uint8_t **ret);

#endif
