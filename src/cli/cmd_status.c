/* cmd_status.c - pgcdc status: slot, lag, publication, replica identity and checkpoint health */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_int.h"
#include "pgcdc/admin.h"
#include "pgcdc/checkpoint.h"
#include "pgcdc/snapread.h"
#include "pgcdc/snapshot.h"
#include "pgcdc/stream.h"

#define MAX_NOTES 16

/* Findings: problems make status unhealthy, warnings do not. */
typedef struct notes {
    char text[MAX_NOTES][640];
    size_t n;
} notes;

/* Everything status found, gathered before anything is printed. */
typedef struct status {
    const cdc_config *cfg;
    char *dsn_shown;          /* redacted source.dsn, owned */
    cdc_admin_server srv;     /* server and role */
    cdc_admin_slot slot;      /* the configured slot */
    cdc_admin_pub pub;        /* the configured publication, owned */
    cdc_admin_ri_problem *ri; /* replica identity problems, owned */
    size_t n_ri;
    bool ri_checked;        /* false when the published tables are unknown */
    int ckpt_rc;            /* cdc_ckpt_read() result */
    cdc_checkpoint ckpt;    /* valid when ckpt_rc == 0 */
    cdc_error ckpt_err;     /* why the checkpoint cannot be read */
    const char *ckpt_state; /* absent, ok, corrupt, unreadable, mismatch */
    /* the snapshot the checkpoint records */
    const char *snap_state;        /* none, running, done (NULL without a checkpoint) */
    char snap_table[300];          /* running: "schema.table" being read, "" when unknown */
    uint64_t snap_rows;            /* running: its rows delivered */
    int64_t snap_est;              /* running: its estimated rows, -1 unknown */
    double snap_rate;              /* running: rows/s since its read began, 0 unknown */
    size_t snap_done, snap_tables; /* running: tables done, of (those of the round) */
    bool snap_incremental;         /* the round reads the tables asked for, not all */
    size_t snap_next;              /* tables asked for again, for the round after it */
    notes problems;
    notes warnings;
} status;

static void note(notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(notes *n, const char *fmt, ...)
{
    if (n->n >= MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->text[n->n++], sizeof(n->text[0]), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------
 * Gathering and judging
 * ------------------------------------------------------------------------ */

static void judge_slot(status *st)
{
    const cdc_admin_slot *s = &st->slot;
    const char *name = st->cfg->slot_name;
    if (!s->exists) {
        note(&st->problems, "replication slot \"%s\" does not exist (run pgcdc setup)", name);
        return;
    }
    if (!s->logical)
        note(&st->problems, "replication slot \"%s\" is a physical slot", name);
    else if (strcmp(s->plugin, "pgoutput") != 0)
        note(&st->problems, "replication slot \"%s\" uses plugin \"%s\", not \"pgoutput\"", name,
             s->plugin);
    else if (strcmp(s->database, st->srv.database) != 0)
        note(&st->problems, "replication slot \"%s\" belongs to database \"%s\", not \"%s\"", name,
             s->database, st->srv.database);
    if (strcmp(s->wal_status, "lost") == 0)
        note(&st->problems,
             "replication slot \"%s\" has lost WAL it needs (wal_status = lost): it cannot be "
             "used any more",
             name);
    else if (strcmp(s->wal_status, "unreserved") == 0)
        note(&st->warnings,
             "replication slot \"%s\" is about to lose WAL (wal_status = unreserved, "
             "max_slot_wal_keep_size reached)",
             name);
}

static void judge_publication(status *st, cdc_admin *a)
{
    const char *name = st->cfg->publication_name;
    if (!st->pub.exists) {
        note(&st->problems, "publication \"%s\" does not exist (run pgcdc setup)", name);
        return;
    }
    cdc_admin_names want = {0};
    cdc_error e = {0};
    if (cdc_admin_resolve_tables(a, st->cfg->publication_tables, &want, &e) < 0) {
        note(&st->warnings, "%s", e.msg);
        return;
    }
    bool want_all = want.n == 0;
    if (st->pub.schemas.n > 0 || want_all != st->pub.all_tables ||
        (!want_all && !cdc_admin_names_equal(&want, &st->pub.tables)))
        note(&st->warnings,
             "publication \"%s\" publishes other tables than publication.tables names", name);
    cdc_admin_names_free(&want);
}

/* The published tables for the replica identity check; *ret_all true means all tables. */
static int published_tables(status *st, cdc_admin *a, cdc_admin_names *ret, bool *ret_all,
                            cdc_error *err)
{
    *ret_all = false;
    if (st->pub.exists) {
        if (st->pub.all_tables) {
            *ret_all = true;
            return 0;
        }
        for (size_t i = 0; i < st->pub.published.n; i++) {
            char *s = strdup(st->pub.published.v[i]);
            char **v = s ? realloc(ret->v, sizeof(*v) * (ret->n + 1)) : NULL;
            if (v == NULL) {
                free(s);
                return cdc_err(err, CDC_ENOMEM, "out of memory");
            }
            v[ret->n++] = s;
            ret->v = v;
        }
        return 0;
    }
    int rc = cdc_admin_resolve_tables(a, st->cfg->publication_tables, ret, err);
    if (rc == 0 && ret->n == 0)
        *ret_all = true;
    return rc;
}

/* What the checkpoint says of the snapshot, with the table names and sizes from the
 * server. A failure to look them up leaves them out (the rest of status stands). */
static void gather_snapshot(status *st)
{
    cdc_snapshot_info info;
    if (cdc_snapshot_parse_progress(st->ckpt.snapshot, &info) < 0) {
        st->snap_state = "unreadable";
        note(&st->problems, "the checkpoint's snapshot progress is unreadable: \"%s\"",
             st->ckpt.snapshot);
        return;
    }
    st->snap_state = info.none ? "none" : info.done ? "done" : "running";
    if (info.none || info.done) {
        cdc_snapshot_info_free(&info);
        return;
    }
    st->snap_incremental = info.nonly > 0;
    st->snap_next = info.nthen;
    st->snap_rows = info.table_rows;
    st->snap_est = -1;
    int64_t secs_ms = st->ckpt.written_at_ms - info.table_started_ms;
    if (secs_ms > 0 && info.table_rows > 0)
        st->snap_rate = (double)info.table_rows * 1000.0 / (double)secs_ms;
    cdc_snapread *r = NULL;
    cdc_snap_table *t = NULL;
    size_t n = 0;
    cdc_error err = {0};
    if (cdc_snapread_open(st->cfg->source_dsn, &r, &err) < 0 ||
        cdc_snapread_tables(r, st->cfg->publication_name, &t, &n, &err) < 0) {
        note(&st->warnings, "snapshot tables not looked up: %s", err.msg);
        cdc_snapread_close(r);
        cdc_snapshot_info_free(&info);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bool in_round = info.nonly == 0;
        for (size_t k = 0; k < info.nonly && !in_round; k++)
            in_round = info.only[k] == t[i].relid;
        if (!in_round)
            continue;
        st->snap_tables++;
        if (t[i].relid < info.relid)
            st->snap_done++;
        else if (st->snap_table[0] == '\0') {
            snprintf(st->snap_table, sizeof(st->snap_table), "%s.%s", t[i].schema, t[i].table);
            st->snap_est = t[i].est_rows;
            if (t[i].relid != info.relid)
                st->snap_rows = 0; /* the one it was reading is gone: the next one */
        }
    }
    cdc_snap_tables_free(t, n);
    cdc_snapread_close(r);
    cdc_snapshot_info_free(&info);
}

static void judge_checkpoint(status *st)
{
    const cdc_checkpoint *c = &st->ckpt;
    const char *path = st->cfg->checkpoint_path;
    if (st->ckpt_rc == CDC_ENOTFOUND) {
        st->ckpt_state = "absent";
        return;
    }
    if (st->ckpt_rc < 0) {
        st->ckpt_state = st->ckpt_rc == CDC_EPROTO ? "corrupt" : "unreadable";
        note(&st->problems, "%s", st->ckpt_err.msg);
        return;
    }
    st->ckpt_state = "ok";
    if (strcmp(c->slot, st->cfg->slot_name) != 0) {
        st->ckpt_state = "mismatch";
        note(&st->problems, "checkpoint \"%s\" belongs to slot \"%s\", not \"%s\"", path, c->slot,
             st->cfg->slot_name);
    }
    if (c->system_id != st->srv.system_id) {
        st->ckpt_state = "mismatch";
        note(&st->problems,
             "checkpoint \"%s\" comes from another server: system identifier %" PRIu64
             ", the server's is %" PRIu64,
             path, c->system_id, st->srv.system_id);
    }
    if (strcmp(c->database, st->srv.database) != 0) {
        st->ckpt_state = "mismatch";
        note(&st->problems, "checkpoint \"%s\" belongs to database \"%s\", not \"%s\"", path,
             c->database, st->srv.database);
    }
    if (strcmp(st->ckpt_state, "ok") != 0)
        return;
    if (c->lsn > st->srv.current_lsn)
        note(&st->warnings,
             "checkpoint LSN " CDC_LSN_FMT " is ahead of the server's WAL position " CDC_LSN_FMT
             " (was the server restored from a backup?)",
             CDC_LSN_ARGS(c->lsn), CDC_LSN_ARGS(st->srv.current_lsn));
    else if (st->slot.exists && st->slot.confirmed_flush_lsn != CDC_INVALID_LSN &&
             c->lsn < st->slot.confirmed_flush_lsn)
        note(&st->warnings,
             "checkpoint LSN " CDC_LSN_FMT " is behind the slot's confirmed_flush_lsn " CDC_LSN_FMT
             ": changes in between cannot be replayed",
             CDC_LSN_ARGS(c->lsn), CDC_LSN_ARGS(st->slot.confirmed_flush_lsn));
}

/* Collect everything; returns 0 or an error that stops status (connection, query). */
static int gather(status *st, cdc_admin *a, cdc_error *err)
{
    const cdc_config *cfg = st->cfg;
    int rc;
    if ((rc = cdc_admin_server_info(a, &st->srv, err)) < 0)
        return rc;
    if (st->srv.version_num < CDC_ADMIN_MIN_SERVER_VERSION) {
        rc = cdc_err(err, CDC_EPGSETUP, "postgresql %s is too old: pgcdc needs version 10 or later",
                     st->srv.version);
        return rc;
    }
    if ((rc = cdc_admin_slot_get(a, cfg->slot_name, &st->slot, err)) < 0)
        return rc;
    if ((rc = cdc_admin_pub_get(a, cfg->publication_name, &st->pub, err)) < 0)
        return rc;

    cdc_admin_names tables = {0};
    bool all = false;
    cdc_error terr = {0};
    if (published_tables(st, a, &tables, &all, &terr) < 0) {
        if (terr.code == CDC_ENOMEM)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        note(&st->warnings, "replica identities not checked: %s", terr.msg);
    } else {
        rc = cdc_admin_ri_problems(a, all ? NULL : &tables, &st->ri, &st->n_ri, err);
        cdc_admin_names_free(&tables);
        if (rc < 0)
            return rc;
        st->ri_checked = true;
    }

    st->ckpt_rc = cdc_ckpt_read(cfg->checkpoint_path, &st->ckpt, &st->ckpt_err);
    if (strcmp(st->srv.wal_level, "logical") != 0)
        note(&st->problems,
             "wal_level is \"%s\": logical decoding needs \"logical\" (ALTER SYSTEM SET "
             "wal_level = logical; then restart the server)",
             st->srv.wal_level);
    judge_slot(st);
    judge_publication(st, a);
    if (st->n_ri > 0)
        note(&st->warnings, "%zu published table%s cannot produce keyed updates and deletes",
             st->n_ri, st->n_ri == 1 ? "" : "s");
    judge_checkpoint(st);
    if (st->ckpt_rc == 0)
        gather_snapshot(st);
    return 0;
}

/* ------------------------------------------------------------------------
 * Text output
 * ------------------------------------------------------------------------ */

/* "12 of about 100 rows (12%), 30000 rows/s, about 3 s to go" */
static const char *snapshot_line(const status *st, char *buf, size_t sz)
{
    int n = snprintf(buf, sz, "%llu", (unsigned long long)st->snap_rows);
    if (st->snap_est >= 0 && (size_t)n < sz)
        n += snprintf(
            buf + n, sz - (size_t)n, " of about %lld rows (%.0f%%)", (long long)st->snap_est,
            st->snap_est > 0 ? 100.0 * (double)st->snap_rows / (double)st->snap_est : 100.0);
    else if ((size_t)n < sz)
        n += snprintf(buf + n, sz - (size_t)n, " rows (size unknown: never analysed)");
    if (st->snap_rate > 0 && (size_t)n < sz) {
        n += snprintf(buf + n, sz - (size_t)n, ", %.0f rows/s", st->snap_rate);
        if (st->snap_est > (int64_t)st->snap_rows && (size_t)n < sz)
            snprintf(buf + n, sz - (size_t)n, ", about %.0f s to go",
                     (double)((uint64_t)st->snap_est - st->snap_rows) / st->snap_rate);
    }
    return buf;
}

/* "16.0 MB (16777216 bytes)" */
static const char *human_bytes(int64_t b, char *buf, size_t sz)
{
    static const char *const units[] = {"kB", "MB", "GB", "TB"};
    if (b < 0) {
        snprintf(buf, sz, "unknown");
        return buf;
    }
    if (b < 1024) {
        snprintf(buf, sz, "%" PRId64 " bytes", b);
        return buf;
    }
    double v = (double)b;
    int u = -1;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, sz, "%.1f %s (%" PRId64 " bytes)", v, units[u], b);
    return buf;
}

/* ISO 8601 UTC with milliseconds. */
static const char *format_ms(int64_t ms, char *buf, size_t sz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sz, "%s.%03dZ", base, (int)(ms % 1000));
    return buf;
}

static const char *lsn_text(cdc_lsn lsn, char *buf)
{
    if (lsn == CDC_INVALID_LSN)
        return "none";
    return cdc_lsn_format(lsn, buf);
}

static void print_text(const status *st)
{
    const cdc_config *cfg = st->cfg;
    const cdc_admin_slot *s = &st->slot;
    char b1[CDC_LSN_STRLEN], b2[64];

    printf("source:                %s\n", st->dsn_shown);
    printf("server:                postgresql %s, database \"%s\", system identifier %" PRIu64 "\n",
           st->srv.version, st->srv.database, st->srv.system_id);
    printf("current WAL position:  %s\n", lsn_text(st->srv.current_lsn, b1));
    printf("wal_level:             %s\n", st->srv.wal_level);
    cdc_pgoutput_options po = cdc_stream_pgoutput_options(st->srv.version_num);
    printf("pgoutput:              proto_version %d, logical decoding messages %s\n",
           po.proto_version, po.messages ? "on" : "off (PostgreSQL 14 and later send them)");

    printf("\nreplication slot \"%s\":\n", cfg->slot_name);
    if (!s->exists) {
        printf("  state:               missing\n");
    } else {
        if (s->active)
            printf("  state:               active (pid %d)\n", s->active_pid);
        else
            printf("  state:               inactive\n");
        printf("  type:                %s%s\n", s->logical ? "logical" : "physical",
               s->temporary ? ", temporary" : "");
        printf("  plugin:              %s\n", s->plugin[0] ? s->plugin : "-");
        printf("  database:            %s\n", s->database[0] ? s->database : "-");
        printf("  restart_lsn:         %s\n", lsn_text(s->restart_lsn, b1));
        printf("  confirmed_flush_lsn: %s\n", lsn_text(s->confirmed_flush_lsn, b1));
        printf("  retained WAL:        %s\n", human_bytes(s->retained_bytes, b2, sizeof(b2)));
        printf("  lag:                 %s\n", human_bytes(s->lag_bytes, b2, sizeof(b2)));
        if (s->wal_status[0])
            printf("  wal_status:          %s\n", s->wal_status);
    }

    printf("\npublication \"%s\":\n", cfg->publication_name);
    if (!st->pub.exists) {
        printf("  state:               missing\n");
    } else {
        char *list = cdc_admin_names_join(&st->pub.tables, ", ");
        char *schemas = cdc_admin_names_join(&st->pub.schemas, ", ");
        if (st->pub.all_tables)
            printf("  tables:              ALL TABLES\n");
        else
            printf("  tables:              %s\n", list && list[0] ? list : "(none)");
        if (schemas && schemas[0])
            printf("  schemas:             %s\n", schemas);
        printf("  via root:            %s\n", st->pub.via_root ? "true" : "false");
        printf("  publishes:           %s%s%s%s\n", st->pub.pub_insert ? "insert " : "",
               st->pub.pub_update ? "update " : "", st->pub.pub_delete ? "delete " : "",
               st->pub.pub_truncate ? "truncate" : "");
        free(list);
        free(schemas);
    }

    printf("\nreplica identity:      ");
    if (!st->ri_checked)
        printf("not checked\n");
    else if (st->n_ri == 0)
        printf("ok\n");
    else
        printf("%zu table%s cannot produce keyed updates and deletes\n", st->n_ri,
               st->n_ri == 1 ? "" : "s");
    for (size_t i = 0; i < st->n_ri; i++)
        printf("  %s: %s\n    fix: %s\n", st->ri[i].table, st->ri[i].reason, st->ri[i].fix);

    printf("\ncheckpoint \"%s\":\n", cfg->checkpoint_path);
    printf("  state:               %s\n", st->ckpt_state);
    if (st->ckpt_rc == 0) {
        printf("  lsn:                 %s\n", cdc_lsn_format(st->ckpt.lsn, b1));
        printf("  slot:                %s\n", st->ckpt.slot);
        printf("  database:            %s\n", st->ckpt.database);
        printf("  system identifier:   %" PRIu64 "\n", st->ckpt.system_id);
        printf("  written at:          %s\n", format_ms(st->ckpt.written_at_ms, b2, sizeof(b2)));
        printf("  last run:            %s\n",
               st->ckpt.stopped_cleanly
                   ? "stopped cleanly (everything it sent was acknowledged)"
                   : "running, or did not stop cleanly (the next start waits for replicated "
                     "topics: crash.recovery.wait)");
        if (st->snap_state && strcmp(st->snap_state, "running") == 0) {
            char line[256];
            printf("  snapshot:            running%s, %zu of %zu tables done%s\n",
                   st->snap_incremental ? " (tables asked for while streaming)" : "", st->snap_done,
                   st->snap_tables, st->snap_next ? "; more asked for, read after it" : "");
            if (st->snap_table[0])
                printf("    %s: %s\n", st->snap_table, snapshot_line(st, line, sizeof(line)));
        } else if (st->snap_state) {
            printf("  snapshot:            %s\n",
                   strcmp(st->snap_state, "done") == 0   ? "done (every table read)"
                   : strcmp(st->snap_state, "none") == 0 ? "none (streaming only)"
                                                         : st->snap_state);
        }
    } else if (st->ckpt_rc == CDC_ENOTFOUND) {
        printf("  (none yet: pgcdc start begins at the slot's position)\n");
    }

    if (st->warnings.n > 0) {
        printf("\nwarnings:\n");
        for (size_t i = 0; i < st->warnings.n; i++)
            printf("  - %s\n", st->warnings.text[i]);
    }
    if (st->problems.n == 0) {
        printf("\nstatus: healthy\n");
    } else {
        printf("\nstatus: unhealthy\n");
        for (size_t i = 0; i < st->problems.n; i++)
            printf("  - %s\n", st->problems.text[i]);
    }
}

/* ------------------------------------------------------------------------
 * JSON output
 * ------------------------------------------------------------------------ */

/* Write s as a JSON string with quotes; control characters and non-ASCII-safe escapes. */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

/* "key": (the value is written by the caller) */
static void json_key(const char *key, bool *first)
{
    if (!*first)
        putchar(',');
    *first = false;
    json_str(key);
    putchar(':');
}

static void json_kv_str(const char *key, const char *val, bool *first)
{
    json_key(key, first);
    if (val)
        json_str(val);
    else
        fputs("null", stdout);
}

static void json_kv_bool(const char *key, bool val, bool *first)
{
    json_key(key, first);
    fputs(val ? "true" : "false", stdout);
}

static void json_kv_int(const char *key, int64_t val, bool null_if_negative, bool *first)
{
    json_key(key, first);
    if (null_if_negative && val < 0)
        fputs("null", stdout);
    else
        printf("%" PRId64, val);
}

static void json_kv_lsn(const char *key, cdc_lsn lsn, bool *first)
{
    char b[CDC_LSN_STRLEN];
    json_kv_str(key, lsn == CDC_INVALID_LSN ? NULL : cdc_lsn_format(lsn, b), first);
}

static void json_names(const char *key, const cdc_admin_names *l, bool *first)
{
    json_key(key, first);
    putchar('[');
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            putchar(',');
        json_str(l->v[i]);
    }
    putchar(']');
}

static void json_notes(const char *key, const notes *n, bool *first)
{
    json_key(key, first);
    putchar('[');
    for (size_t i = 0; i < n->n; i++) {
        if (i > 0)
            putchar(',');
        json_str(n->text[i]);
    }
    putchar(']');
}

static void print_json(const status *st)
{
    const cdc_config *cfg = st->cfg;
    const cdc_admin_slot *s = &st->slot;
    char buf[64];
    bool f = true, g;

    putchar('{');
    json_kv_bool("healthy", st->problems.n == 0, &f);
    json_notes("problems", &st->problems, &f);
    json_notes("warnings", &st->warnings, &f);

    json_key("source", &f);
    g = true;
    putchar('{');
    json_kv_str("dsn", st->dsn_shown, &g);
    json_kv_str("server_version", st->srv.version, &g);
    json_kv_int("server_version_num", st->srv.version_num, false, &g);
    snprintf(buf, sizeof(buf), "%" PRIu64, st->srv.system_id);
    json_kv_str("system_identifier", buf, &g);
    json_kv_str("database", st->srv.database, &g);
    json_kv_str("user", st->srv.user, &g);
    json_kv_str("wal_level", st->srv.wal_level, &g);
    cdc_pgoutput_options po = cdc_stream_pgoutput_options(st->srv.version_num);
    json_kv_int("pgoutput_proto_version", po.proto_version, false, &g);
    json_kv_bool("pgoutput_messages", po.messages, &g);
    json_kv_lsn("current_lsn", st->srv.current_lsn, &g);
    putchar('}');

    json_key("slot", &f);
    g = true;
    putchar('{');
    json_kv_str("name", cfg->slot_name, &g);
    json_kv_bool("exists", s->exists, &g);
    if (s->exists) {
        json_kv_str("type", s->logical ? "logical" : "physical", &g);
        json_kv_bool("temporary", s->temporary, &g);
        json_kv_bool("active", s->active, &g);
        json_kv_int("active_pid", s->active ? s->active_pid : -1, true, &g);
        json_kv_str("plugin", s->plugin[0] ? s->plugin : NULL, &g);
        json_kv_str("database", s->database[0] ? s->database : NULL, &g);
        json_kv_lsn("restart_lsn", s->restart_lsn, &g);
        json_kv_lsn("confirmed_flush_lsn", s->confirmed_flush_lsn, &g);
        json_kv_int("retained_wal_bytes", s->retained_bytes, true, &g);
        json_kv_int("lag_bytes", s->lag_bytes, true, &g);
        json_kv_str("wal_status", s->wal_status[0] ? s->wal_status : NULL, &g);
    }
    putchar('}');

    json_key("publication", &f);
    g = true;
    putchar('{');
    json_kv_str("name", cfg->publication_name, &g);
    json_kv_bool("exists", st->pub.exists, &g);
    if (st->pub.exists) {
        json_kv_bool("all_tables", st->pub.all_tables, &g);
        json_names("tables", &st->pub.tables, &g);
        json_names("schemas", &st->pub.schemas, &g);
        json_names("published_tables", &st->pub.published, &g);
        json_kv_bool("via_root", st->pub.via_root, &g);
        json_kv_bool("insert", st->pub.pub_insert, &g);
        json_kv_bool("update", st->pub.pub_update, &g);
        json_kv_bool("delete", st->pub.pub_delete, &g);
        json_kv_bool("truncate", st->pub.pub_truncate, &g);
    }
    putchar('}');

    json_key("replica_identity_problems", &f);
    if (!st->ri_checked) {
        fputs("null", stdout);
    } else {
        putchar('[');
        for (size_t i = 0; i < st->n_ri; i++) {
            g = true;
            if (i > 0)
                putchar(',');
            putchar('{');
            json_kv_str("table", st->ri[i].table, &g);
            json_kv_str("reason", st->ri[i].reason, &g);
            json_kv_str("fix", st->ri[i].fix, &g);
            putchar('}');
        }
        putchar(']');
    }

    json_key("checkpoint", &f);
    g = true;
    putchar('{');
    json_kv_str("path", cfg->checkpoint_path, &g);
    json_kv_str("state", st->ckpt_state, &g);
    if (st->ckpt_rc == 0) {
        json_kv_lsn("lsn", st->ckpt.lsn, &g);
        json_kv_str("slot", st->ckpt.slot, &g);
        json_kv_str("database", st->ckpt.database, &g);
        snprintf(buf, sizeof(buf), "%" PRIu64, st->ckpt.system_id);
        json_kv_str("system_identifier", buf, &g);
        json_kv_int("timeline", st->ckpt.timeline, false, &g);
        json_kv_str("written_at", format_ms(st->ckpt.written_at_ms, buf, sizeof(buf)), &g);
        json_kv_int("written_at_ms", st->ckpt.written_at_ms, false, &g);
        json_kv_bool("stopped_cleanly", st->ckpt.stopped_cleanly, &g);
        json_key("snapshot", &g);
        bool h = true;
        putchar('{');
        json_kv_str("state", st->snap_state ? st->snap_state : "none", &h);
        if (st->snap_state && strcmp(st->snap_state, "running") == 0) {
            json_kv_int("tables_done", (int64_t)st->snap_done, false, &h);
            json_kv_int("tables", (int64_t)st->snap_tables, false, &h);
            json_kv_bool("incremental", st->snap_incremental, &h);
            json_kv_int("tables_asked_next", (int64_t)st->snap_next, false, &h);
            if (st->snap_table[0])
                json_kv_str("table", st->snap_table, &h);
            json_kv_int("rows", (int64_t)st->snap_rows, false, &h);
            json_kv_int("estimated_rows", st->snap_est, true, &h);
            json_kv_int("rows_per_s", (int64_t)st->snap_rate, false, &h);
            json_kv_int(
                "eta_s",
                st->snap_rate > 0 && st->snap_est > (int64_t)st->snap_rows
                    ? (int64_t)((double)((uint64_t)st->snap_est - st->snap_rows) / st->snap_rate)
                    : -1,
                true, &h);
        }
        putchar('}');
    } else if (st->ckpt_rc != CDC_ENOTFOUND) {
        json_kv_str("error", st->ckpt_err.msg, &g);
    }
    putchar('}');
    fputs("}\n", stdout);
}

/* With --json, a failure before anything was gathered is still one JSON object. */
static void print_json_error(const cdc_error *err)
{
    bool f = true, g = true;
    putchar('{');
    json_kv_bool("healthy", false, &f);
    json_key("error", &f);
    putchar('{');
    json_kv_str("code", cdc_strerror_name(err->code), &g);
    json_kv_str("message", err->msg, &g);
    json_kv_str("detail", err->detail[0] ? err->detail : NULL, &g);
    json_kv_str("hint", err->hint[0] ? err->hint : NULL, &g);
    putchar('}');
    fputs("}\n", stdout);
}

int cdc_cmd_status(const cdc_cli_args *args, const cdc_config *cfg, cdc_error *err)
{
    status st = {.cfg = cfg, .ckpt_state = "unknown"};
    cdc_admin *a = NULL;
    int rc;

    if (cfg->source_dsn[0] == '\0') {
        rc = cdc_err(err, CDC_ECONFIG, "source.dsn is not set");
        cdc_err_hint(err, "set source.dsn to a libpq connection string");
    } else if ((st.dsn_shown = cdc_config_redact_dsn(cfg->source_dsn)) == NULL) {
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    } else if ((rc = cdc_admin_open(cfg->source_dsn, &a, err)) == 0) {
        rc = gather(&st, a, err);
    }
    if (rc < 0) {
        if (args->json)
            print_json_error(err);
        goto out;
    }

    if (args->json)
        print_json(&st);
    else
        print_text(&st);
    fflush(stdout);
    if (st.problems.n > 0) {
        rc = cdc_err(err, CDC_EUNHEALTHY, "unhealthy: %s", st.problems.text[0]);
        if (st.problems.n > 1)
            cdc_err_detail(err, "%zu problems, see the status output", st.problems.n);
    }

out:
    cdc_admin_ri_free(st.ri, st.n_ri);
    cdc_admin_pub_free(&st.pub);
    cdc_admin_close(a);
    free(st.dsn_shown);
    return rc;
}
