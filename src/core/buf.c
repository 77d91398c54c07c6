/* buf.c - growable NUL-terminated byte buffer */
#include "pgcdc/buf.h"
#include "pgcdc/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cdc_buf_reserve(cdc_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return CDC_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cdc_buf_append(cdc_buf *b, const void *p, size_t n)
{
    if (cdc_buf_reserve(b, n) < 0)
        return CDC_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cdc_buf_puts(cdc_buf *b, const char *s)
{
    return cdc_buf_append(b, s, strlen(s));
}

int cdc_buf_putc(cdc_buf *b, char c)
{
    return cdc_buf_append(b, &c, 1);
}

int cdc_buf_printf(cdc_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return CDC_EINVAL;
    if ((size_t)n < sizeof(small))
        return cdc_buf_append(b, small, (size_t)n);
    if (cdc_buf_reserve(b, (size_t)n) < 0)
        return CDC_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void cdc_buf_reset(cdc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void cdc_buf_free(cdc_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
