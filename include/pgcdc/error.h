/* error.h - one table of error codes and the error struct every fallible function fills */
#ifndef PGCDC_ERROR_H
#define PGCDC_ERROR_H

#include <stdarg.h>

/*
 * X(NAME, exit status, message). Codes are negative (CDC_E<NAME>), 0 is
 * success. The exit status is what the CLI returns when the error ends the
 * program: 1 runtime failure, 2 usage or configuration error, 3 not yet
 * implemented, 4 refused to run because state does not match (checkpoint or
 * slot), 5 unhealthy (status found a problem).
 */
#define CDC_ERRNO_MAP(X)                                                                           \
    X(NOMEM, 1, "out of memory")                                                                   \
    X(INVAL, 2, "invalid argument")                                                                \
    X(USAGE, 2, "usage error")                                                                     \
    X(CONFIG, 2, "configuration error")                                                            \
    X(IO, 1, "i/o error")                                                                          \
    X(PROTO, 1, "protocol error")                                                                  \
    X(PG, 1, "postgresql error")                                                                   \
    X(PGCONN, 1, "cannot connect to postgresql")                                                   \
    X(PGSETUP, 1, "postgresql is not set up for logical replication")                              \
    X(KAFKA, 1, "kafka error")                                                                     \
    X(KAFKAFATAL, 1, "kafka refused a message for good")                                           \
    X(NOTFOUND, 1, "not found")                                                                    \
    X(EXISTS, 1, "already exists")                                                                 \
    X(MISMATCH, 4, "state does not match")                                                         \
    X(UNHEALTHY, 5, "unhealthy")                                                                   \
    X(TIMEOUT, 1, "timed out")                                                                     \
    X(AGAIN, 1, "try again later")                                                                 \
    X(INTERRUPTED, 1, "interrupted")                                                               \
    X(NOTIMPL, 3, "not implemented yet")                                                           \
    X(INTERNAL, 1, "internal error")                                                               \
    X(KAFKARESET, 1, "the kafka producer failed and must be replaced")

typedef enum cdc_errno {
    CDC_OK = 0,
#define CDC__ERRNO_ENUM(name, exit, msg) CDC__E_##name,
    CDC__E_FIRST_ = 0,
    CDC_ERRNO_MAP(CDC__ERRNO_ENUM)
#undef CDC__ERRNO_ENUM
} cdc_errno_base;

/* Public codes are the negated enum positions: CDC_ENOMEM == -1, ... */
#define CDC__ERRNO_DEF(name, exit, msg) CDC_E##name = -CDC__E_##name,
enum { CDC_ERRNO_MAP(CDC__ERRNO_DEF) };
#undef CDC__ERRNO_DEF

/*
 * An error: the code, a one-line message (lower case, no trailing period),
 * and optional detail and hint lines in PostgreSQL's style. Caller allocated;
 * the first error set wins, later ones are ignored so the root cause stays.
 */
typedef struct cdc_error {
    int code;          /* CDC_E* or 0 */
    char msg[1024];    /* primary line */
    char detail[1024]; /* optional, "" when absent */
    char hint[512];    /* optional, "" when absent */
} cdc_error;

/* The name ("CONFIG") and the generic message of a code; never NULL. */
const char *cdc_strerror_name(int code);
const char *cdc_strerror(int code);
/* The exit status the CLI uses for a code (0 for CDC_OK). */
int cdc_error_exit_status(int code);

/*
 * Set err (may be NULL) unless it already holds an error. Returns code, so
 * a caller writes `return cdc_err(err, CDC_EIO, "cannot open \"%s\": %m", p);`.
 */
int cdc_err(cdc_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int cdc_verr(cdc_error *err, int code, const char *fmt, va_list ap);
/* Add a detail or hint line to an error already set (no-op on NULL or unset). */
void cdc_err_detail(cdc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cdc_err_hint(cdc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget any error held. */
void cdc_err_clear(cdc_error *err);

#endif
