/* buf.h - a growable byte buffer that is always NUL-terminated */
#ifndef PGCDC_BUF_H
#define PGCDC_BUF_H

#include <stddef.h>

typedef struct cdc_buf {
    char *data; /* owned; NUL-terminated; NULL until the first append */
    size_t len; /* bytes used, excluding the terminating NUL */
    size_t cap; /* bytes allocated */
} cdc_buf;

#define CDC_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* All return 0 or CDC_ENOMEM; on failure the buffer keeps its old content. */
int cdc_buf_reserve(cdc_buf *b, size_t extra);
int cdc_buf_append(cdc_buf *b, const void *p, size_t n);
int cdc_buf_puts(cdc_buf *b, const char *s);
int cdc_buf_putc(cdc_buf *b, char c);
int cdc_buf_printf(cdc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empty the buffer, keeping its memory. */
void cdc_buf_reset(cdc_buf *b);
/* Free the memory; the buffer is then empty and reusable. Accepts NULL. */
void cdc_buf_free(cdc_buf *b);

#endif
