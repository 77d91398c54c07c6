/* hex.h - hexadecimal digits, for LSNs, bytea text and fixtures */
#ifndef PGCDC_HEX_H
#define PGCDC_HEX_H

/* Value of hex digit c (0-9, a-f, A-F), or -1. */
static inline int cdc_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
