/* event_int.h - helpers shared by the files of src/event, not part of the public API */
#ifndef PGCDC_EVENT_INT_H
#define PGCDC_EVENT_INT_H

#include <stddef.h>

#include "pgcdc/utf8.h"

#endif
