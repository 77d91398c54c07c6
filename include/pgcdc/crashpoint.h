/* crashpoint.h - named points where tests can make pgcdc die with SIGKILL */
#ifndef PGCDC_CRASHPOINT_H
#define PGCDC_CRASHPOINT_H

/*
 * When the environment variable PGCDC_CRASHPOINT equals name (optionally
 * "name:N" to die at the N-th pass), the process kills itself with SIGKILL
 * here. Costs one string compare when unset. For crash tests only.
 */
void cdc_crashpoint(const char *name);

#endif
