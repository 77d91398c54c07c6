/* version.h - run-time versions of the libraries pgcdc links, for pgcdc version */
#ifndef PGCDC_VERSION_H
#define PGCDC_VERSION_H

/* Each returns a static string such as "15.20"; never NULL. */
const char *cdc_version_libpq(void);
const char *cdc_version_jansson(void);
const char *cdc_version_protobuf_c(void);

#endif
