/* pgo_fixture.h - load the captured pgoutput fixtures of tests/fixtures/pgoutput for the tests */
#ifndef PGCDC_TEST_PGO_FIXTURE_H
#define PGCDC_TEST_PGO_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "pgcdc/lsn.h"

/* One captured XLogData message. */
typedef struct pgo_msg {
    cdc_lsn lsn;   /* XLogData dataStart */
    uint8_t *data; /* payload (owned) */
    size_t len;    /* bytes in data */
} pgo_msg;

/* A fixture file: its messages in stream order. */
typedef struct pgo_fixture {
    pgo_msg *msgs; /* nmsgs messages (owned) */
    size_t nmsgs;  /* messages */
} pgo_fixture;

/*
 * Parse a fixture: '#' comment lines, blank lines, and "<lsn> <hex>" lines.
 * Returns 0, or -1 with a message on stderr (bad syntax, i/o).
 */
int pgo_fixture_load(const char *path, pgo_fixture *ret);
void pgo_fixture_free(pgo_fixture *f);

/* Read a whole file into a NUL-terminated malloc'd string; NULL when unreadable. */
char *pgo_read_file(const char *path, size_t *ret_len);

#endif
