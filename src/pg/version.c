/* pg/version.c - the run-time libpq version */
#include <libpq-fe.h>
#include <stdio.h>

#include "pgcdc/version.h"

const char *cdc_version_libpq(void)
{
    static char buf[32];
    int v = PQlibVersion();
    /* 150020 -> "15.20"; before 10, 90624 -> "9.6.24" */
    if (v >= 100000)
        snprintf(buf, sizeof(buf), "%d.%d", v / 10000, v % 10000);
    else
        snprintf(buf, sizeof(buf), "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
    return buf;
}
