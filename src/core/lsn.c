/* lsn.c - LSN text conversions in PostgreSQL's %X/%X form */
#include "pgcdc/lsn.h"
#include "pgcdc/error.h"
#include "pgcdc/hex.h"

#include <stdio.h>

/* Read 1..8 hex digits from *p; advance *p. Returns 0 or -1. */
static int read_half(const char **p, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0, d;
    while ((d = cdc_hex_digit(**p)) >= 0) {
        if (++n > 8)
            return -1;
        v = (v << 4) | (uint32_t)d;
        (*p)++;
    }
    if (n == 0)
        return -1;
    *out = v;
    return 0;
}

int cdc_lsn_parse(const char *s, cdc_lsn *ret_lsn)
{
    uint32_t hi, lo;
    const char *p = s;
    if (s == NULL || read_half(&p, &hi) < 0 || *p++ != '/' || read_half(&p, &lo) < 0 || *p != '\0')
        return CDC_EINVAL;
    *ret_lsn = ((cdc_lsn)hi << 32) | lo;
    return 0;
}

char *cdc_lsn_format(cdc_lsn lsn, char *buf)
{
    snprintf(buf, CDC_LSN_STRLEN, CDC_LSN_FMT, CDC_LSN_ARGS(lsn));
    return buf;
}
