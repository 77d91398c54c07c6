/* encode/version.c - run-time versions of the encoder libraries */
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "pgcdc/version.h"

const char *cdc_version_jansson(void)
{
    return jansson_version_str();
}

const char *cdc_version_protobuf_c(void)
{
    return protobuf_c_version();
}
