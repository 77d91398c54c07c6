/* crashpoint.c - test-only SIGKILL at named points (PGCDC_CRASHPOINT=name[:N]) */
#include "pgcdc/crashpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cdc_crashpoint(const char *name)
{
    static const char *spec;
    static int loaded;
    static long passes;
    if (!loaded) {
        spec = getenv("PGCDC_CRASHPOINT");
        loaded = 1;
    }
    if (spec == NULL)
        return;
    size_t n = strlen(name);
    if (strncmp(spec, name, n) != 0 || (spec[n] != '\0' && spec[n] != ':'))
        return;
    long want = spec[n] == ':' ? strtol(spec + n + 1, NULL, 10) : 1;
    if (++passes >= want)
        kill(getpid(), SIGKILL);
}
