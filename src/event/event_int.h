/* event_int.h - helpers shared by the files of src/event, not part of the public API */
#ifndef PGCDC_EVENT_INT_H
#define PGCDC_EVENT_INT_H

#include <stddef.h>

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0 when the
 * bytes there are not one. left >= 1 bytes are readable at p.
 */
size_t cdc_event__utf8_seq(const unsigned char *p, size_t left);

#endif
