/* signal.h - Debezium's signal table rows (signal.data.collection), parsed */
#ifndef PGCDC_SIGNAL_H
#define PGCDC_SIGNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "pgcdc/error.h"

/*
 * A row inserted into the signal table asks pgcdc to do something, as it asks
 * Debezium: its three columns, by position, are id, type and data (JSON).
 * pgcdc acts on "execute-snapshot" (an incremental snapshot of the tables
 * whose "schema.table" names the data-collections regular expressions match
 * in full) and "log" (a log line); any other type is named in a warning.
 */
typedef enum cdc_signal_kind {
    CDC_SIGNAL_EXECUTE_SNAPSHOT = 1,
    CDC_SIGNAL_LOG = 2,
    CDC_SIGNAL_UNSUPPORTED = 3, /* a type pgcdc does not act on (type names it) */
} cdc_signal_kind;

typedef struct cdc_signal {
    cdc_signal_kind kind;
    char *type;         /* as written */
    char **collections; /* execute-snapshot: ncollections regular expressions */
    size_t ncollections;
    bool blocking; /* execute-snapshot: "type": "blocking" (read incrementally here) */
    char *message; /* log: the message */
} cdc_signal;

/*
 * Parse a row's type and data (each NULL for SQL NULL; not NUL-terminated,
 * len bytes). 0, or CDC_EINVAL with err naming what is wrong in the row
 * (unreadable JSON, no data-collections, additional-conditions, which pgcdc
 * does not apply, ...). Free with cdc_signal_free either way.
 */
int cdc_signal_parse(const char *type, size_t type_len, const char *data, size_t data_len,
                     cdc_signal *ret, cdc_error *err);
void cdc_signal_free(cdc_signal *sig);

/*
 * A compiled data-collections expression: matches "schema.table" in full, as
 * Debezium's do (POSIX extended syntax, which simple Java expressions share).
 */
typedef struct cdc_signal_pattern cdc_signal_pattern;
int cdc_signal_pattern_new(const char *expr, cdc_signal_pattern **ret, cdc_error *err);
bool cdc_signal_pattern_match(const cdc_signal_pattern *p, const char *schema, const char *table);
void cdc_signal_pattern_free(cdc_signal_pattern *p);

#endif
