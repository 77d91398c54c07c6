/* lsn.h - PostgreSQL log sequence numbers: parse and format as %X/%X */
#ifndef PGCDC_LSN_H
#define PGCDC_LSN_H

#include <stdint.h>

typedef uint64_t cdc_lsn;

#define CDC_INVALID_LSN ((cdc_lsn)0)
/* Longest text form: "FFFFFFFF/FFFFFFFF" plus NUL. */
#define CDC_LSN_STRLEN 18
/* printf helpers: printf("at " CDC_LSN_FMT, CDC_LSN_ARGS(lsn)) */
#define CDC_LSN_FMT       "%X/%X"
#define CDC_LSN_ARGS(lsn) (unsigned)((uint64_t)(lsn) >> 32), (unsigned)((uint64_t)(lsn)&0xFFFFFFFFu)

/*
 * Parse "16/B374D848" (1 to 8 hex digits each side, case-insensitive, no
 * surrounding space). Returns 0 and sets *ret_lsn, or CDC_EINVAL leaving
 * *ret_lsn unchanged.
 */
int cdc_lsn_parse(const char *s, cdc_lsn *ret_lsn);
/* Format into buf (at least CDC_LSN_STRLEN bytes); returns buf. */
char *cdc_lsn_format(cdc_lsn lsn, char *buf);

#endif
