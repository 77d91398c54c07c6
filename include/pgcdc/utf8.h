/* utf8.h - strict UTF-8 validation (RFC 3629: no overlongs, surrogates or code points > U+10FFFF)
 */
#ifndef PGCDC_UTF8_H
#define PGCDC_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the well-formed sequence at p (left bytes available), or 0 if malformed. */
size_t cdc_utf8_seq(const unsigned char *p, size_t left);
/* Whether n bytes at s are well-formed UTF-8 (fast on ASCII runs). */
bool cdc_utf8_valid(const char *s, size_t n);

#endif
