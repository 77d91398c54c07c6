/* log.h - leveled logging to stderr, text or one JSON object per line */
#ifndef PGCDC_LOG_H
#define PGCDC_LOG_H

#include "pgcdc/error.h"

typedef enum cdc_log_level {
    CDC_LOG_ERROR = 0,
    CDC_LOG_WARNING = 1,
    CDC_LOG_INFO = 2,
    CDC_LOG_DEBUG = 3,
} cdc_log_level;

typedef enum cdc_log_format {
    CDC_LOG_TEXT = 0,
    CDC_LOG_JSON = 1,
} cdc_log_format;

/* Parse "error|warning|info|debug" / "text|json"; 0 or CDC_EINVAL. */
int cdc_log_level_parse(const char *s, cdc_log_level *ret);
int cdc_log_format_parse(const char *s, cdc_log_format *ret);

void cdc_log_set_level(cdc_log_level level);
void cdc_log_set_format(cdc_log_format format);
int cdc_log_enabled(cdc_log_level level);

/*
 * Log one message. Style: lower case, no trailing period, names quoted as
 * \"%s\", LSNs as CDC_LSN_FMT. detail and hint may be NULL or "".
 */
void cdc_log_msg(cdc_log_level level, const char *detail, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define cdc_log_error(...)   cdc_log_msg(CDC_LOG_ERROR, NULL, NULL, __VA_ARGS__)
#define cdc_log_warning(...) cdc_log_msg(CDC_LOG_WARNING, NULL, NULL, __VA_ARGS__)
#define cdc_log_info(...)    cdc_log_msg(CDC_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define cdc_log_debug(...)                                                                         \
    do {                                                                                           \
        if (cdc_log_enabled(CDC_LOG_DEBUG))                                                        \
            cdc_log_msg(CDC_LOG_DEBUG, NULL, NULL, __VA_ARGS__);                                   \
    } while (0)

/* Log an error struct at the given level: message, then its detail and hint. */
void cdc_log_err(cdc_log_level level, const cdc_error *err);

/*
 * A status line (progress of long work): on a terminal (stderr a tty, text
 * format, TERM not dumb, level info or more) it is drawn in place at the
 * bottom, cut to the terminal's width, and log lines are written above it;
 * elsewhere nothing is written (the log has its own progress lines).
 * fmt NULL clears it.
 */
void cdc_log_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
