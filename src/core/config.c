/* config.c - the configuration key table, file parsing, overrides and printing */
#include "pgcdc/config.h"
#include "pgcdc/buf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------
 * The key table
 * ------------------------------------------------------------------------ */

typedef enum key_type {
    KT_STRING,
    KT_BOOL,
    KT_INT,           /* plain integer */
    KT_SIZE,          /* bytes, optional k/M/G suffix (powers of 1024) */
    KT_DURATION,      /* milliseconds, optional ms/s/m/h suffix; bare number = ms */
    KT_AUTO_DURATION, /* "auto" (stored as -1) or a KT_DURATION */
    KT_ENUM,          /* index into choices */
} key_type;

typedef struct key_def {
    const char *name;
    key_type type;
    size_t offset;       /* into cdc_config */
    const char *defval;  /* default, as text */
    const char *choices; /* KT_ENUM: "a|b|c" */
    int64_t min, max;    /* KT_INT/SIZE/DURATION bounds */
    const char *desc;    /* one line */
} key_def;

#define OFF(f) offsetof(cdc_config, f)
#define I64MAX INT64_MAX

static const key_def keys[] = {
    {"source.dsn", KT_STRING, OFF(source_dsn), "", NULL, 0, 0,
     "libpq connection string of the source database (PG* variables and .pgpass apply)"},
    {"slot.name", KT_STRING, OFF(slot_name), "pgcdc", NULL, 0, 0,
     "logical replication slot to read (created by setup)"},
    {"publication.name", KT_STRING, OFF(publication_name), "pgcdc", NULL, 0, 0,
     "publication that selects the tables to capture"},
    {"publication.tables", KT_STRING, OFF(publication_tables), "", NULL, 0, 0,
     "comma-separated schema.table list for setup; empty means all tables"},
    {"publication.via_root", KT_BOOL, OFF(publication_via_root), "false", NULL, 0, 0,
     "publish partition changes under the partitioned root table"},
    {"topic.prefix", KT_STRING, OFF(topic_prefix), "pgcdc", NULL, 0, 0,
     "topic name prefix: <prefix>.<schema>.<table>; also source.name in events"},
    {"format", KT_ENUM, OFF(format), "json", "json|protobuf", 0, 0,
     "message value encoding: Debezium JSON envelope or protobuf"},
    {"checkpoint.path", KT_STRING, OFF(checkpoint_path), "pgcdc.checkpoint", NULL, 0, 0,
     "file that holds the durable LSN checkpoint"},
    {"checkpoint.interval", KT_DURATION, OFF(checkpoint_interval), "1s", NULL, 0, 3600000,
     "longest time between checkpoint writes while changes are delivered"},
    {"status.interval", KT_DURATION, OFF(status_interval), "10s", NULL, 100, 3600000,
     "longest time between standby status updates sent to the server; also how often a "
     "snapshot logs its progress and snapshot.new.tables looks for tables"},
    {"snapshot.mode", KT_ENUM, OFF(snapshot_mode), "initial",
     "initial|initial_only|no_data|when_needed|never", 0, 0,
     "existing rows as op r events: initial (once, then stream), initial_only (then stop), "
     "no_data (stream only; never is the same), when_needed (also when the checkpoint is "
     "unusable)"},
    {"snapshot.chunk.size", KT_INT, OFF(snapshot_chunk_size), "10240", NULL, 1, 1000000,
     "rows a snapshot reads per query; a crash reads at most "
     "snapshot.max.inflight.chunks chunks again"},
    {"snapshot.max.inflight.chunks", KT_INT, OFF(snapshot_max_inflight_chunks), "2", NULL, 1, 64,
     "chunks a snapshot places in the stream before the earlier ones are delivered; a crash "
     "reads at most this many again"},
    {"snapshot.max.threads", KT_INT, OFF(snapshot_max_threads), "1", NULL, 1, 16,
     "connections that read a snapshot's rows at once, each a key range of the table being "
     "read"},
    {"snapshot.new.tables", KT_BOOL, OFF(snapshot_new_tables), "true", NULL, 0, 0,
     "read the rows of a table added to the publication (checked at start and every "
     "status.interval; not with snapshot.mode = no_data)"},
    {"signal.data.collection", KT_STRING, OFF(signal_data_collection), "", NULL, 0, 0,
     "schema.table of Debezium's signal table (id, type, data): an execute-snapshot row "
     "inserted there reads the tables it names again while streaming; it must be published"},
    {"tombstones", KT_BOOL, OFF(tombstones), "true", NULL, 0, 0,
     "follow every delete with a null-value tombstone for compacted topics"},
    {"publish.truncate", KT_BOOL, OFF(publish_truncate), "true", NULL, 0, 0,
     "publish TRUNCATE as op t events"},
    {"publish.messages", KT_BOOL, OFF(publish_messages), "true", NULL, 0, 0,
     "publish logical decoding messages (pg_logical_emit_message) as op m events"},
    {"inflight.max.messages", KT_INT, OFF(inflight_max_messages), "20000", NULL, 1, 1000000,
     "most messages awaiting a delivery report before reading pauses"},
    {"inflight.max.bytes", KT_SIZE, OFF(inflight_max_bytes), "16M", NULL, 65536, 1073741824,
     "most bytes awaiting a delivery report before reading pauses (key, value, ~512 overhead)"},
    {"shutdown.timeout", KT_DURATION, OFF(shutdown_timeout), "30s", NULL, 0, 86400000,
     "how long a clean stop waits for outstanding deliveries"},
    {"crash.recovery.wait", KT_AUTO_DURATION, OFF(crash_recovery_wait), "auto", NULL, 0, 3600000,
     "after a run that did not stop cleanly, how long from the start to wait before reading "
     "the last message of each partition (auto: 1.5 x the brokers' replica.lag.time.max.ms "
     "+ 2s, and none when every partition has one replica)"},
    {"reconnect.backoff.min", KT_DURATION, OFF(reconnect_backoff_min), "500ms", NULL, 1, 3600000,
     "first delay before reconnecting to postgresql after a transient error (at most reconnect.backoff.max)"},
    {"reconnect.backoff.max", KT_DURATION, OFF(reconnect_backoff_max), "30s", NULL, 1, 3600000,
     "largest delay between reconnection attempts (exponential, with jitter)"},
    {"log.level", KT_ENUM, OFF(log_level), "info", "error|warning|info|debug", 0, 0,
     "least severe log level written to stderr"},
    {"log.format", KT_ENUM, OFF(log_format), "text", "text|json", 0, 0,
     "log line format: text, or one JSON object per line"},
    {"unavailable.value.placeholder", KT_STRING, OFF(unavailable_value_placeholder),
     "__debezium_unavailable_value", NULL, 0, 0,
     "value reported for an unchanged TOAST column whose old value is unknown"},
    {"decimal.handling.mode", KT_ENUM, OFF(decimal_handling_mode), "string",
     "string|double|precise", 0, 0, "JSON encoding of numeric (as Debezium's option)"},
    {"time.precision.mode", KT_ENUM, OFF(time_precision_mode), "adaptive",
     "adaptive|adaptive_time_microseconds|connect|isostring|microseconds|nanoseconds", 0, 0,
     "JSON encoding of date and time types (as Debezium's option)"},
    {"binary.handling.mode", KT_ENUM, OFF(binary_handling_mode), "base64",
     "base64|hex|bytes|base64-url-safe", 0, 0, "JSON encoding of bytea (as Debezium's option)"},
    {"interval.handling.mode", KT_ENUM, OFF(interval_handling_mode), "numeric", "numeric|string", 0,
     0, "JSON encoding of interval (as Debezium's option)"},
    {"hstore.handling.mode", KT_ENUM, OFF(hstore_handling_mode), "json", "json|map", 0, 0,
     "JSON encoding of hstore (as Debezium's option)"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= CDC_CONFIG_MAX_KEYS, "raise CDC_CONFIG_MAX_KEYS");
#define KAFKA_PREFIX "kafka."

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* ------------------------------------------------------------------------
 * Value parsing
 * ------------------------------------------------------------------------ */

static int parse_bool(const char *s, bool *ret)
{
    static const char *const t[] = {"true", "on", "yes", "1"};
    static const char *const f[] = {"false", "off", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -1;
}

/* Parse an integer with an optional unit suffix from units[] (NULL-terminated). */
static int parse_scaled(const char *s, const char *const *units, const int64_t *mult, int64_t *ret)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s) && *s != '-')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    while (*end == ' ')
        end++;
    int64_t m = 1;
    if (*end != '\0') {
        int found = 0;
        for (int i = 0; units && units[i]; i++) {
            if (strcasecmp(end, units[i]) == 0) {
                m = mult[i];
                found = 1;
                break;
            }
        }
        if (!found)
            return -1;
    }
    if (m != 1 && (v > INT64_MAX / m || v < INT64_MIN / m))
        return -1;
    *ret = (int64_t)v * m;
    return 0;
}

static const char *const size_units[] = {"b", "k", "kb", "m", "mb", "g", "gb", NULL};
static const int64_t size_mult[] = {1, 1024, 1024, 1048576, 1048576, 1073741824, 1073741824};
static const char *const dur_units[] = {"ms", "s", "m", "min", "h", NULL};
static const int64_t dur_mult[] = {1, 1000, 60000, 60000, 3600000};

/* Index of value in "a|b|c", or -1. */
static int enum_index(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    int idx = 0;
    for (const char *p = choices;; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vlen && strncmp(p, value, n) == 0)
            return idx;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

static void choices_list(const char *choices, char *out, size_t outsz)
{
    size_t o = 0;
    for (const char *p = choices; *p && o + 3 < outsz; p++) {
        if (*p == '|') {
            out[o++] = ',';
            out[o++] = ' ';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static int set_value(cdc_config *cfg, const key_def *k, const char *value, const char *origin,
                     cdc_error *err)
{
    char *base = (char *)cfg + k->offset;
    int64_t n;
    bool b;
    char list[256];

    switch (k->type) {
    case KT_STRING: {
        char *copy = strdup(value);
        if (copy == NULL)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        free(*(char **)base);
        *(char **)base = copy;
        return 0;
    }
    case KT_BOOL:
        if (parse_bool(value, &b) < 0) {
            cdc_err(err, CDC_ECONFIG, "%s: invalid value \"%s\" for key \"%s\"", origin, value,
                    k->name);
            cdc_err_hint(err, "use true or false");
            return CDC_ECONFIG;
        }
        *(bool *)base = b;
        return 0;
    case KT_ENUM: {
        int i = enum_index(k->choices, value);
        if (i < 0) {
            choices_list(k->choices, list, sizeof(list));
            cdc_err(err, CDC_ECONFIG, "%s: invalid value \"%s\" for key \"%s\"", origin, value,
                    k->name);
            cdc_err_hint(err, "valid values are: %s", list);
            return CDC_ECONFIG;
        }
        if (k->offset == OFF(snapshot_mode) && i == CDC_SNAPSHOT_NEVER_ALIAS)
            i = CDC_SNAPSHOT_NO_DATA; /* Debezium's old name */
        *(int *)base = i;
        return 0;
    }
    case KT_AUTO_DURATION:
        if (strcmp(value, "auto") == 0) {
            *(int64_t *)base = -1;
            return 0;
        }
        /* fall through */
    case KT_INT:
    case KT_SIZE:
    case KT_DURATION: {
        bool dur = k->type == KT_DURATION || k->type == KT_AUTO_DURATION;
        const char *const *units = k->type == KT_SIZE ? size_units : dur ? dur_units : NULL;
        const int64_t *mult = k->type == KT_SIZE ? size_mult : dur_mult;
        const char *what = k->type == KT_SIZE ? "a size such as 65536, 512k or 32M"
                           : k->type == KT_AUTO_DURATION
                               ? "auto, or a duration such as 500ms, 10s or 5m"
                           : dur ? "a duration such as 500ms, 10s or 5m"
                                 : "an integer";
        if (parse_scaled(value, units, mult, &n) < 0) {
            cdc_err(err, CDC_ECONFIG, "%s: invalid value \"%s\" for key \"%s\"", origin, value,
                    k->name);
            cdc_err_hint(err, "expected %s", what);
            return CDC_ECONFIG;
        }
        if (n < k->min || n > k->max) {
            cdc_err(err, CDC_ECONFIG,
                    "%s: value \"%s\" for key \"%s\" is out of range (%" PRId64 " to %" PRId64
                    "%s)",
                    origin, value, k->name, k->min, k->max,
                    k->type == KT_SIZE ? " bytes"
                    : dur              ? " ms"
                                       : "");
            return CDC_ECONFIG;
        }
        *(int64_t *)base = n;
        return 0;
    }
    }
    return cdc_err(err, CDC_EINTERNAL, "unknown key type");
}

/* ------------------------------------------------------------------------
 * Suggestions for misspelt keys
 * ------------------------------------------------------------------------ */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 64;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(size_t) * (lb + 1));
    }
    return prev[lb];
}

static int unknown_key(const char *key, const char *origin, cdc_error *err)
{
    char sugg[512] = "";
    size_t o = 0;
    size_t klen = strlen(key);
    size_t limit = klen < 8 ? 2 : 3;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *name = keys[i].name;
        size_t d = edit_distance(key, name);
        /* also match a key given without its section, e.g. "name" for "slot.name" */
        const char *dot = strrchr(name, '.');
        bool tail = dot && strcmp(dot + 1, key) == 0;
        if (d <= limit || tail) {
            int w = snprintf(sugg + o, sizeof(sugg) - o, "%s\"%s\"", o ? ", " : "", name);
            if (w < 0 || (size_t)w >= sizeof(sugg) - o)
                break;
            o += (size_t)w;
        }
    }
    cdc_err(err, CDC_ECONFIG, "%s: unknown key \"%s\"", origin, key);
    if (o)
        cdc_err_hint(err, "did you mean %s? \"pgcdc config --list\" shows every key", sugg);
    else
        cdc_err_hint(err, "\"pgcdc config --list\" shows every key; librdkafka properties take "
                          "the prefix \"kafka.\"");
    return CDC_ECONFIG;
}

/* ------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------ */

int cdc_config_init(cdc_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        cdc_error e = {0};
        if (set_value(cfg, &keys[i], keys[i].defval, "default", &e) < 0) {
            cdc_config_free(cfg);
            return e.code;
        }
    }
    return 0;
}

void cdc_config_free(cdc_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].type == KT_STRING) {
            char **p = (char **)((char *)cfg + keys[i].offset);
            free(*p);
            *p = NULL;
        }
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
        free(cfg->kafka[i].origin);
    }
    for (size_t i = 0; i < CDC_CONFIG_MAX_KEYS; i++) {
        free(cfg->origins[i]);
        cfg->origins[i] = NULL;
    }
    free(cfg->kafka);
    cfg->kafka = NULL;
    cfg->n_kafka = 0;
}

static int set_kafka(cdc_config *cfg, const char *key, const char *value, const char *origin,
                     cdc_error *err)
{
    if (*key == '\0')
        return cdc_err(err, CDC_ECONFIG, "%s: empty librdkafka property name after \"kafka.\"",
                       origin);
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            char *v = strdup(value), *o = strdup(origin);
            if (!v || !o) {
                free(v);
                free(o);
                return cdc_err(err, CDC_ENOMEM, "out of memory");
            }
            free(cfg->kafka[i].value);
            free(cfg->kafka[i].origin);
            cfg->kafka[i].value = v;
            cfg->kafka[i].origin = o;
            return 0;
        }
    }
    cdc_config_kv *n = realloc(cfg->kafka, sizeof(*n) * (cfg->n_kafka + 1));
    if (n == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    cfg->kafka = n;
    cdc_config_kv *kv = &cfg->kafka[cfg->n_kafka];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->origin = strdup(origin);
    if (!kv->key || !kv->value || !kv->origin) {
        free(kv->key);
        free(kv->value);
        free(kv->origin);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    cfg->n_kafka++;
    return 0;
}

int cdc_config_set(cdc_config *cfg, const char *key, const char *value, const char *origin,
                   cdc_error *err)
{
    if (strncmp(key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return set_kafka(cfg, key + strlen(KAFKA_PREFIX), value, origin, err);
    const key_def *k = find_key(key);
    if (k == NULL)
        return unknown_key(key, origin, err);
    int rc = set_value(cfg, k, value, origin, err);
    if (rc == 0) {
        size_t i = (size_t)(k - keys);
        char *o = strdup(origin);
        if (o == NULL)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        free(cfg->origins[i]);
        cfg->origins[i] = o;
    }
    return rc;
}

/* Where key was set: its origin, or "the default". */
static const char *origin_of(const cdc_config *cfg, const char *key)
{
    const key_def *k = find_key(key);
    const char *o = k ? cfg->origins[k - keys] : NULL;
    return o ? o : "the default";
}

/* PostgreSQL's rule for replication slot names (ReplicationSlotValidateName). */
static bool slot_name_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 63)
        return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
            return false;
    return true;
}

/* Kafka's topic name characters; the prefix leaves room for ".schema.table". */
static bool topic_prefix_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 200)
        return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '.' || *n == '_' || *n == '-'))
            return false;
    return true;
}

int cdc_config_check(const cdc_config *cfg, cdc_error *err)
{
    if (!slot_name_valid(cfg->slot_name)) {
        cdc_err(err, CDC_ECONFIG, "%s: invalid slot.name \"%s\"", origin_of(cfg, "slot.name"),
                cfg->slot_name);
        cdc_err_hint(err, "PostgreSQL's replication slot names are 1 to 63 lower-case letters, "
                          "digits and underscores");
        return CDC_ECONFIG;
    }
    if (!topic_prefix_valid(cfg->topic_prefix)) {
        cdc_err(err, CDC_ECONFIG, "%s: invalid topic.prefix \"%s\"", origin_of(cfg, "topic.prefix"),
                cfg->topic_prefix);
        cdc_err_hint(err, "Kafka topic names use only A-Z a-z 0-9 . _ -; the prefix may be up "
                          "to 200 of them, leaving room for \".schema.table\"");
        return CDC_ECONFIG;
    }
    if (cfg->reconnect_backoff_min > cfg->reconnect_backoff_max) {
        cdc_err(err, CDC_ECONFIG,
                "%s: reconnect.backoff.min (%lld ms) is greater than reconnect.backoff.max "
                "(%lld ms, %s)",
                origin_of(cfg, "reconnect.backoff.min"), (long long)cfg->reconnect_backoff_min,
                (long long)cfg->reconnect_backoff_max, origin_of(cfg, "reconnect.backoff.max"));
        cdc_err_hint(err, "the first delay before reconnecting cannot exceed the largest one: "
                          "lower reconnect.backoff.min or raise reconnect.backoff.max");
        return CDC_ECONFIG;
    }
    return 0;
}

const char *cdc_config_kafka_get(const cdc_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (strcmp(cfg->kafka[i].key, key) == 0)
            return cfg->kafka[i].value;
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Split "key = value" in place; returns 0, or -1 when there is no '=' or no key. */
static int split_kv(char *line, char **ret_key, char **ret_value)
{
    char *eq = strchr(line, '=');
    if (eq == NULL)
        return -1;
    *eq = '\0';
    char *k = trim(line);
    if (*k == '\0')
        return -1;
    for (char *p = k; *p; p++)
        if (isspace((unsigned char)*p))
            return -1;
    *ret_key = k;
    *ret_value = trim(eq + 1);
    return 0;
}

int cdc_config_load_file(cdc_config *cfg, const char *path, cdc_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cdc_err(err, CDC_ECONFIG, "configuration file \"%s\" is a directory", path);
        cdc_err_hint(err, "-c takes the configuration file itself, e.g. %s/pgcdc.conf", path);
        return CDC_ECONFIG;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        cdc_err(err, errno == ENOENT ? CDC_ECONFIG : CDC_EIO,
                "cannot open configuration file \"%s\": %s", path, strerror(errno));
        return err ? err->code : CDC_EIO;
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    /* keys seen in this file and their line, to reject duplicates */
    struct seen {
        char *key;
        int line;
    } *seen = NULL;
    size_t nseen = 0;

    while ((len = getline(&line, &cap, f)) >= 0) {
        char origin[600], *key, *value;
        lineno++;
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        if (memchr(line, '\0', (size_t)len) != NULL) {
            rc = cdc_err(err, CDC_ECONFIG, "%s: the line holds a NUL byte", origin);
            cdc_err_hint(err, "configuration files are text: remove the NUL byte");
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char text[160]; /* the line as written: split_kv() cuts it up */
        snprintf(text, sizeof(text), "%s", s);
        if (split_kv(s, &key, &value) < 0) {
            char shown[160];
            /* the first word may name a secret: then its value is not shown */
            size_t w = strcspn(text, " \t:");
            char first[128];
            snprintf(first, sizeof(first), "%.*s", (int)(w < sizeof(first) ? w : sizeof(first) - 1),
                     text);
            if (cdc_config_is_secret_key(first) || strstr(text, "password") != NULL ||
                strstr(text, "://") != NULL)
                snprintf(shown, sizeof(shown), "%s ...", first);
            else
                snprintf(shown, sizeof(shown), "%.79s", text);
            rc = cdc_err(err, CDC_ECONFIG, "%s: malformed line \"%s\"", origin, shown);
            cdc_err_hint(err, "each line is \"key = value\", a \"# comment\" or empty");
            break;
        }
        for (size_t i = 0; i < nseen; i++) {
            if (strcmp(seen[i].key, key) == 0) {
                rc = cdc_err(err, CDC_ECONFIG, "%s: key \"%s\" is set twice (first at line %d)",
                             origin, key, seen[i].line);
                cdc_err_hint(err, "remove one of the two lines");
                goto done;
            }
        }
        struct seen *ns = realloc(seen, sizeof(*seen) * (nseen + 1));
        if (ns == NULL || (ns[nseen].key = strdup(key)) == NULL) {
            seen = ns ? ns : seen;
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            break;
        }
        seen = ns;
        seen[nseen++].line = lineno;
        if ((rc = cdc_config_set(cfg, key, value, origin, err)) < 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = cdc_err(err, CDC_EIO, "cannot read configuration file \"%s\": %s", path,
                     strerror(errno));
done:
    for (size_t i = 0; i < nseen; i++)
        free(seen[i].key);
    free(seen);
    free(line);
    fclose(f);
    return rc;
}

int cdc_config_apply_override(cdc_config *cfg, const char *kv, cdc_error *err)
{
    char *copy = strdup(kv), *key, *value;
    if (copy == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    int rc;
    if (split_kv(copy, &key, &value) < 0) {
        rc = cdc_err(err, CDC_EUSAGE, "-o %s: expected key=value", kv);
    } else {
        char origin[300];
        snprintf(origin, sizeof(origin), "-o %s", key);
        rc = cdc_config_set(cfg, key, value, origin, err);
    }
    free(copy);
    return rc;
}

/* ------------------------------------------------------------------------
 * Secrets and printing
 * ------------------------------------------------------------------------ */

bool cdc_config_is_secret_key(const char *key)
{
    return strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
           strstr(key, "sasl.oauthbearer.config") != NULL || strstr(key, "ssl.key.pem") != NULL;
}

/* Parameters whose value is a secret: password and sslpassword. */
static bool secret_param(const char *k, size_t n)
{
    return (n == 8 && strncmp(k, "password", 8) == 0) ||
           (n == 11 && strncmp(k, "sslpassword", 11) == 0);
}

#define MASK "********"

/* URI form: the password in user:password@ and every secret query parameter. */
static int redact_uri(const char *dsn, cdc_buf *out)
{
    const char *p = strstr(dsn, "://") + 3;
    int rc = cdc_buf_append(out, dsn, (size_t)(p - dsn));
    size_t authlen = strcspn(p, "/?");
    const char *at = NULL;
    for (size_t i = 0; i < authlen; i++)
        if (p[i] == '@')
            at = p + i; /* the last @ ends the user info */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            rc |= cdc_buf_append(out, p, (size_t)(colon - p) + 1);
            rc |= cdc_buf_puts(out, MASK);
            p = at;
        }
    }
    const char *q = strchr(p, '?');
    if (q == NULL)
        return rc | cdc_buf_puts(out, p);
    rc |= cdc_buf_append(out, p, (size_t)(q - p) + 1);
    for (p = q + 1; *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        if (eq && secret_param(p, (size_t)(eq - p))) {
            rc |= cdc_buf_append(out, p, (size_t)(eq - p) + 1);
            rc |= cdc_buf_puts(out, MASK);
        } else {
            rc |= cdc_buf_append(out, p, len);
        }
        p += len;
        if (*p == '&')
            rc |= cdc_buf_putc(out, *p++);
    }
    return rc;
}

/* key = value form: values may be quoted ('...' with backslash escapes). */
static int redact_kv(const char *p, cdc_buf *out)
{
    int rc = 0;
    while (*p) {
        if (isspace((unsigned char)*p)) {
            rc |= cdc_buf_putc(out, *p++);
            continue;
        }
        const char *key = p;
        while (*p && !isspace((unsigned char)*p) && *p != '=')
            p++;
        size_t keylen = (size_t)(p - key);
        rc |= cdc_buf_append(out, key, keylen);
        while (isspace((unsigned char)*p))
            rc |= cdc_buf_putc(out, *p++);
        if (*p != '=')
            continue;
        rc |= cdc_buf_putc(out, *p++);
        while (isspace((unsigned char)*p))
            rc |= cdc_buf_putc(out, *p++);
        const char *val = p;
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
        } else {
            while (*p && !isspace((unsigned char)*p))
                p++;
        }
        if (secret_param(key, keylen))
            rc |= cdc_buf_puts(out, MASK);
        else
            rc |= cdc_buf_append(out, val, (size_t)(p - val));
    }
    return rc;
}

char *cdc_config_redact_dsn(const char *dsn)
{
    cdc_buf out = CDC_BUF_INIT;
    bool uri = strncmp(dsn, "postgresql://", 13) == 0 || strncmp(dsn, "postgres://", 11) == 0;
    int rc = uri ? redact_uri(dsn, &out) : redact_kv(dsn, &out);
    if (rc == 0 && out.data == NULL)
        rc = cdc_buf_puts(&out, "");
    if (rc != 0) {
        cdc_buf_free(&out);
        return NULL;
    }
    return out.data; /* the caller frees it */
}

static void print_value(const cdc_config *cfg, const key_def *k, FILE *out)
{
    const char *base = (const char *)cfg + k->offset;
    switch (k->type) {
    case KT_STRING: {
        const char *s = *(char *const *)base;
        if (strcmp(k->name, "source.dsn") == 0) {
            char *r = cdc_config_redact_dsn(s);
            fprintf(out, "%s", r ? r : "");
            free(r);
        } else {
            fprintf(out, "%s", s);
        }
        break;
    }
    case KT_BOOL: fprintf(out, "%s", *(const bool *)base ? "true" : "false"); break;
    case KT_ENUM: {
        int idx = *(const int *)base;
        const char *p = k->choices;
        for (int i = 0; i < idx; i++)
            p = strchr(p, '|') + 1;
        const char *bar = strchr(p, '|');
        fprintf(out, "%.*s", bar ? (int)(bar - p) : (int)strlen(p), p);
        break;
    }
    case KT_INT: fprintf(out, "%" PRId64, *(const int64_t *)base); break;
    case KT_SIZE: fprintf(out, "%" PRId64, *(const int64_t *)base); break;
    case KT_DURATION: fprintf(out, "%" PRId64 "ms", *(const int64_t *)base); break;
    case KT_AUTO_DURATION:
        if (*(const int64_t *)base < 0)
            fprintf(out, "auto");
        else
            fprintf(out, "%" PRId64 "ms", *(const int64_t *)base);
        break;
    }
}

void cdc_config_print_keys(FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def *k = &keys[i];
        fprintf(out, "%-31s default: %s\n", k->name, *k->defval ? k->defval : "(empty)");
        if (k->type == KT_ENUM) {
            char list[256];
            choices_list(k->choices, list, sizeof(list));
            fprintf(out, "    %s (one of: %s)\n", k->desc, list);
        } else {
            fprintf(out, "    %s\n", k->desc);
        }
    }
    fprintf(out, "%-31s default: see below\n", "kafka.<property>");
    fprintf(out, "    any librdkafka property, passed through unchanged (checked when loaded);\n"
                 "    pgcdc sets enable.idempotence=true, acks=all, message.timeout.ms=0,\n"
                 "    enable.gapless.guarantee=true and a Java-compatible murmur2 partitioner\n"
                 "    unless given (docs/CONFIGURATION.md)\n");
}

void cdc_config_print(const cdc_config *cfg, FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++) {
        fprintf(out, "%s = ", keys[i].name);
        print_value(cfg, &keys[i], out);
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->n_kafka; i++)
        fprintf(out, "kafka.%s = %s\n", cfg->kafka[i].key,
                cdc_config_is_secret_key(cfg->kafka[i].key) ? "********" : cfg->kafka[i].value);
}
