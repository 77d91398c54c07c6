/* config.h - pgcdc configuration: key table, file + -o override loading, typed values */
#ifndef PGCDC_CONFIG_H
#define PGCDC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pgcdc/error.h"

typedef enum cdc_format { CDC_FORMAT_JSON = 0, CDC_FORMAT_PROTOBUF = 1 } cdc_format;
/* Debezium's snapshot.mode names; "never" is read as no_data. */
typedef enum cdc_snapshot_mode {
    CDC_SNAPSHOT_INITIAL = 0,      /* snapshot once (no checkpoint yet), then stream */
    CDC_SNAPSHOT_INITIAL_ONLY = 1, /* snapshot, then stop */
    CDC_SNAPSHOT_NO_DATA = 2,      /* stream only */
    CDC_SNAPSHOT_WHEN_NEEDED = 3,  /* as initial, and again when the checkpoint is unusable */
    CDC_SNAPSHOT_NEVER_ALIAS = 4,  /* the choice "never"; stored as NO_DATA */
} cdc_snapshot_mode;
typedef enum cdc_decimal_mode {
    CDC_DECIMAL_STRING = 0,
    CDC_DECIMAL_DOUBLE = 1,
    CDC_DECIMAL_PRECISE = 2,
} cdc_decimal_mode;
typedef enum cdc_time_mode {
    CDC_TIME_ADAPTIVE = 0,
    CDC_TIME_ADAPTIVE_MICROS = 1,
    CDC_TIME_CONNECT = 2,
    CDC_TIME_ISOSTRING = 3,
    CDC_TIME_MICROS = 4, /* microseconds: every time and timestamp in µs */
    CDC_TIME_NANOS = 5,  /* nanoseconds: in ns */
} cdc_time_mode;
typedef enum cdc_binary_mode {
    CDC_BINARY_BASE64 = 0,
    CDC_BINARY_HEX = 1,
    CDC_BINARY_BYTES = 2,      /* Debezium's default: the JSON converter's base64 */
    CDC_BINARY_BASE64_URL = 3, /* base64-url-safe */
} cdc_binary_mode;
typedef enum cdc_interval_mode {
    CDC_INTERVAL_NUMERIC = 0,
    CDC_INTERVAL_STRING = 1
} cdc_interval_mode;
typedef enum cdc_hstore_mode { CDC_HSTORE_JSON = 0, CDC_HSTORE_MAP = 1 } cdc_hstore_mode;

/* At least the number of pgcdc's own keys (config.c checks). */
#define CDC_CONFIG_MAX_KEYS 64

/* A pass-through property (kafka.* with the prefix removed) and where it came from. */
typedef struct cdc_config_kv {
    char *key;    /* librdkafka property name, owned */
    char *value;  /* owned */
    char *origin; /* "FILE:LINE" or "-o", owned */
} cdc_config_kv;

/*
 * The loaded configuration. Strings are owned by the struct and never NULL
 * after cdc_config_init(). Durations are milliseconds, sizes bytes.
 */
typedef struct cdc_config {
    char *source_dsn;                     /* libpq conninfo */
    char *slot_name;                      /* logical replication slot */
    char *publication_name;               /* publication */
    char *publication_tables;             /* comma separated schema.table list, "" = all */
    bool publication_via_root;            /* publish_via_partition_root */
    char *topic_prefix;                   /* topic = prefix.schema.table */
    int format;                           /* cdc_format */
    char *checkpoint_path;                /* checkpoint file */
    int64_t checkpoint_interval;          /* ms between checkpoint writes */
    int64_t status_interval;              /* ms between standby status updates */
    int snapshot_mode;                    /* cdc_snapshot_mode */
    int64_t snapshot_chunk_size;          /* rows per snapshot chunk */
    int64_t snapshot_max_inflight_chunks; /* chunks placed before earlier ones are delivered */
    int64_t snapshot_max_threads;         /* sessions reading a window at once */
    bool snapshot_new_tables;             /* read tables added to the publication */
    char *signal_data_collection;         /* signal table schema.table, "" = none */
    bool tombstones;                      /* tombstone after delete */
    bool publish_truncate;                /* publish op t */
    bool publish_messages;                /* publish op m */
    int64_t inflight_max_messages;        /* backpressure bound, messages */
    int64_t inflight_max_bytes;           /* backpressure bound, bytes */
    int64_t shutdown_timeout;             /* ms to wait for deliveries on stop */
    int64_t crash_recovery_wait;          /* ms, or -1 for auto (see kafka.h) */
    int64_t reconnect_backoff_min;        /* ms, first reconnect delay */
    int64_t reconnect_backoff_max;        /* ms, largest reconnect delay */
    int log_level;                        /* cdc_log_level */
    int log_format;                       /* cdc_log_format */
    char *unavailable_value_placeholder;  /* stands in for unchanged TOAST */
    int decimal_handling_mode;            /* cdc_decimal_mode */
    int time_precision_mode;              /* cdc_time_mode */
    int binary_handling_mode;             /* cdc_binary_mode */
    int interval_handling_mode;           /* cdc_interval_mode */
    int hstore_handling_mode;             /* cdc_hstore_mode */
    cdc_config_kv *kafka;                 /* kafka.* properties, in file order, owned */
    size_t n_kafka;
    char *origins[CDC_CONFIG_MAX_KEYS]; /* per pgcdc key: "FILE:LINE" or "-o KEY", or NULL
                                           when it has its default; owned */
} cdc_config;

/* Fill cfg with every key's default. Returns 0 or CDC_ENOMEM. */
int cdc_config_init(cdc_config *cfg);
/* Free everything cfg owns; cfg may then be initialised again. Accepts NULL. */
void cdc_config_free(cdc_config *cfg);

/*
 * Read a key = value file into cfg. Errors (CDC_ECONFIG or CDC_EIO) name the
 * file, the line and the key, and suggest close key names for a misspelt
 * one. On error cfg keeps whatever was set before the bad line.
 */
int cdc_config_load_file(cdc_config *cfg, const char *path, cdc_error *err);
/* Apply one "key=value" override as given to -o. */
int cdc_config_apply_override(cdc_config *cfg, const char *kv, cdc_error *err);
/*
 * Checks across keys, once everything is loaded (reconnect.backoff.min not above
 * reconnect.backoff.max). The error names where the keys were set. CDC_ECONFIG or 0.
 */
int cdc_config_check(const cdc_config *cfg, cdc_error *err);
/*
 * Set one key from text. origin ("FILE:LINE" or "-o") is used in error
 * messages. kafka.* keys are stored for the Kafka layer to validate.
 */
int cdc_config_set(cdc_config *cfg, const char *key, const char *value, const char *origin,
                   cdc_error *err);

/* Value of a kafka.* property (name without prefix), or NULL. Borrowed. */
const char *cdc_config_kafka_get(const cdc_config *cfg, const char *key);

/* Print every key with its default and description (pgcdc config --list). */
void cdc_config_print_keys(FILE *out);
/* Print the effective configuration with secrets masked (pgcdc config --show). */
void cdc_config_print(const cdc_config *cfg, FILE *out);
/*
 * Copy a libpq conninfo with any password masked, for logs and status.
 * Returns a new string (caller frees) or NULL when out of memory.
 */
char *cdc_config_redact_dsn(const char *dsn);
/* True when a kafka.* property holds a secret and must be masked. */
bool cdc_config_is_secret_key(const char *key);

#endif
