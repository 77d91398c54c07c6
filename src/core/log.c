/* log.c - leveled logging to stderr in text or JSON lines */
#include "pgcdc/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static cdc_log_level cur_level = CDC_LOG_INFO;
static cdc_log_format cur_format = CDC_LOG_TEXT;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

/* The status line (cdc_log_status): shown on a terminal only, under the log lines. */
static int status_tty = -1; /* -1: not looked yet */
static char status_line[512];

static bool status_on(void)
{
    if (status_tty < 0) {
        const char *term = getenv("TERM");
        status_tty = isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
    }
    return status_tty == 1 && cur_format == CDC_LOG_TEXT && cur_level >= CDC_LOG_INFO;
}

/* Columns of the terminal (a line longer than that would wrap and not be redrawn). */
static size_t status_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
        return ws.ws_col - 1;
    return 79;
}

/* Under flockfile(stderr). Cut at a character's start (UTF-8), control bytes shown as '?'
 * (a quoted table name may hold any). */
static void status_draw(void)
{
    size_t n = strlen(status_line), w = status_width();
    if (n > w) {
        n = w;
        while (n > 0 && ((unsigned char)status_line[n] & 0xC0) == 0x80)
            n--;
    }
    fputc('\r', stderr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)status_line[i];
        fputc(c < 0x20 || c == 0x7f ? '?' : c, stderr);
    }
    fputs("\033[K", stderr);
}

int cdc_log_level_parse(const char *s, cdc_log_level *ret)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (cdc_log_level)i;
            return 0;
        }
    }
    return CDC_EINVAL;
}

int cdc_log_format_parse(const char *s, cdc_log_format *ret)
{
    if (strcmp(s, "text") == 0)
        *ret = CDC_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *ret = CDC_LOG_JSON;
    else
        return CDC_EINVAL;
    return 0;
}

void cdc_log_set_level(cdc_log_level level)
{
    cur_level = level;
}

void cdc_log_set_format(cdc_log_format format)
{
    cur_format = format;
}

int cdc_log_enabled(cdc_log_level level)
{
    return level <= cur_level;
}

/* Append s to out as a JSON string body (without quotes). */
static void json_escape(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
}

static void vlog(cdc_log_level level, const char *detail, const char *hint, const char *fmt,
                 va_list ap)
{
    char msg[4096], ts[64];
    struct timeval tv;
    struct tm tm;

    if (!cdc_log_enabled(level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    flockfile(stderr);
    bool status = status_line[0] != '\0' && status_on();
    if (status)
        fputs("\r\033[K", stderr); /* the log line takes the status line's place */
    if (cur_format == CDC_LOG_JSON) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"msg\":\"", ts,
                level_names[level], (int)getpid());
        json_escape(stderr, msg);
        fputc('"', stderr);
        if (detail && *detail) {
            fputs(",\"detail\":\"", stderr);
            json_escape(stderr, detail);
            fputc('"', stderr);
        }
        if (hint && *hint) {
            fputs(",\"hint\":\"", stderr);
            json_escape(stderr, hint);
            fputc('"', stderr);
        }
        fputs("}\n", stderr);
    } else {
        fprintf(stderr, "%s pgcdc[%d] %s: %s\n", ts, (int)getpid(), level_names[level], msg);
        if (detail && *detail)
            fprintf(stderr, "  detail: %s\n", detail);
        if (hint && *hint)
            fprintf(stderr, "  hint: %s\n", hint);
    }
    if (status)
        status_draw(); /* and it comes back under it */
    funlockfile(stderr);
    fflush(stderr);
}

void cdc_log_msg(cdc_log_level level, const char *detail, const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, detail, hint, fmt, ap);
    va_end(ap);
}

void cdc_log_err(cdc_log_level level, const cdc_error *err)
{
    if (err == NULL || err->code == 0)
        return;
    cdc_log_msg(level, err->detail, err->hint, "%s", err->msg);
}

void cdc_log_status(const char *fmt, ...)
{
    if (!status_on())
        return;
    flockfile(stderr);
    if (fmt == NULL) {
        if (status_line[0] != '\0')
            fputs("\r\033[K", stderr);
        status_line[0] = '\0';
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(status_line, sizeof(status_line), fmt, ap);
        va_end(ap);
        status_draw();
    }
    funlockfile(stderr);
    fflush(stderr);
}
