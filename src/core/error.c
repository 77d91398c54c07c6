/* error.c - error table lookups and the first-error-wins error struct */
#include "pgcdc/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct errinfo {
    const char *name;
    const char *msg;
    int exit_status;
};

static const struct errinfo errtab[] = {[0] = {"OK", "ok", 0},
#define CDC__ERRNO_TAB(name, exit, msg) [CDC__E_##name] = {#name, msg, exit},
                                        CDC_ERRNO_MAP(CDC__ERRNO_TAB)
#undef CDC__ERRNO_TAB
};

#define NERR ((int)(sizeof(errtab) / sizeof(errtab[0])))

static const struct errinfo *lookup(int code)
{
    int i = code < 0 ? -code : code;
    if (i >= NERR)
        return NULL;
    return &errtab[i];
}

const char *cdc_strerror_name(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->name : "UNKNOWN";
}

const char *cdc_strerror(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->msg : "unknown error";
}

int cdc_error_exit_status(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->exit_status : 1;
}

int cdc_verr(cdc_error *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL || err->code != 0)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    err->detail[0] = '\0';
    err->hint[0] = '\0';
    return code;
}

int cdc_err(cdc_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    int saved = errno; /* keep %m meaningful */
    va_start(ap, fmt);
    errno = saved;
    cdc_verr(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void cdc_err_detail(cdc_error *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err->code == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
}

void cdc_err_hint(cdc_error *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err->code == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
    va_end(ap);
}

void cdc_err_clear(cdc_error *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = err->detail[0] = err->hint[0] = '\0';
}
