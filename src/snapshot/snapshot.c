/* snapshot.c - chunked snapshot reads merged into the stream at watermarks (docs/DESIGN.md) */
#include "pgcdc/snapshot.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "pgcdc/buf.h"
#include "pgcdc/crashpoint.h"
#include "pgcdc/log.h"
#include "pgcdc/signal.h"
#include "pgcdc/snapread.h"
#include "window.h"

/*
 * Streamed transactions that may still be listed as running (xid, commit
 * LSN, tables). A transaction can be invisible to a chunk's snapshot although
 * its commit record lies before the low watermark: it wrote the record, and
 * had not yet left the server's list of running transactions when the
 * snapshot was taken (for as long as it waits for a synchronous standby). The
 * stream has already carried its changes, so the chunk must not overwrite
 * them: a chunk whose snapshot lists such a transaction (one that changed its
 * table) as running is read again. Each read's snapshot prunes the set: a
 * transaction it does not list, below its xmax, has left the list for good.
 * So the set holds what was streamed since the last read, plus the few that
 * linger; past SEEN_MAX entries pgcdc reads again every chunk whose snapshot
 * lists a committed transaction (safe, and slower).
 */
#define SEEN_MAX 1048576

typedef struct seen_txn {
    uint32_t xid;  /* 0: free slot */
    cdc_lsn lsn;   /* commit LSN */
    uint64_t rels; /* relid_bit() of each table it changed */
} seen_txn;

typedef enum wstate {
    W_NONE = 0, /* no chunk in the air */
    W_READ,     /* low watermark written, rows read; high watermark not yet written */
    W_WAIT_H,   /* high watermark written; the stream has not reached it */
    W_EMIT,     /* at the high watermark: rows go to the sink */
} wstate;

/* A chunk row brought up to an update the read did not see (patch_row). */
typedef struct patched_row {
    uint64_t set[25];    /* which columns v holds (1,600 fit: PostgreSQL's most) */
    cdc_event_value v[]; /* owned data */
} patched_row;

typedef struct pending {
    cdc_lsn h;  /* the chunk's rows are delivered once the watermark passes h */
    char *text; /* progress after the chunk */
} pending;

/*
 * The next chunk of the table being read, read ahead on the read session by a
 * thread of its own while the stream goes to this chunk's high watermark and
 * its rows are handed over: its low watermark is written (by the pipeline's
 * thread) after this chunk's high one, so the windows stay apart and in order,
 * and it is taken up (adopt_prefetch) when this chunk is done, before the
 * stream reads past this chunk's high watermark. The thread touches only what
 * is in here and the read session, which nobody else uses until it is joined.
 */
typedef struct prefetch {
    bool running; /* a thread was started: join it */
    pthread_t thread;
    /* what to read */
    cdc_snapread *r[CDC_SNAP_MAX_READERS];
    size_t nr;
    const char *publication;
    uint32_t relid;
    size_t ti;
    char **after; /* nafter chunk key values (owned) */
    size_t nafter;
    size_t chunk; /* rows per range */
    uint64_t seq;
    cdc_lsn low;
    /* what was read */
    int rc;
    cdc_error err;
    bool gone; /* no longer published */
    bool have_fresh;
    cdc_snap_table fresh;
    cdc_snap_rows *rows;
    size_t nrows;
    bool more;
    int64_t read_ms;
} prefetch;

/* No read-ahead after a window whose rows hold more than this per reader: memory would
 * hold two such windows (2 KB rows at the default chunk size are 20 MB a chunk). */
#define PREFETCH_MAX_BYTES (8u << 20)

/* Rows a one-pass read of a table without a chunk key fetches at a time. */
#define PASS_BATCH 1000

struct cdc_snapshot {
    size_t chunk_size;
    size_t inflight;     /* chunks whose rows may be undelivered when the next H is written */
    cdc_snapread *r;     /* reads */
    cdc_snapread *marks; /* watermarks (a one-pass read keeps r in its transaction) */
    size_t nreaders;     /* snapshot.max.threads: r and nreaders - 1 more read a window */
    cdc_snapread *more_r[CDC_SNAP_MAX_READERS - 1];
    cdc_snap_table *tables;
    size_t ntables;

    /* progress: durable (in a checkpoint), and where the next read starts */
    char *durable;
    bool done;
    uint32_t cur_relid;
    char **after; /* chunk key values of the last row read of cur_relid, NULL: from start */
    size_t nafter;
    pending *pend;
    size_t npend, cappend;
    char *progress_buf;
    /* the tables of this round (an incremental snapshot: sorted relids) and of the next;
     * only == NULL: every published table */
    uint32_t *only, *then;
    size_t nonly, nthen;
    /* the published tables with a key the snapshot knows of: one that appears later is read
     * (snapshot.new.tables); known_set false until the first look */
    uint32_t *known;
    size_t nknown;
    bool known_set;
    bool new_tables;
    int64_t poll_every_ms, next_poll_ms;
    char *slot;                   /* requests name it */
    char *sig_schema, *sig_table; /* signal.data.collection, NULL when not set */
    char *dsn; /* sessions open when a request comes after the snapshot was done */
    int server_version;

    /* the chunk in the air, and the one after it read ahead */
    wstate ws;
    uint64_t run_id, seq, last_seq;
    prefetch pf;
    bool seen_low;
    cdc_lsn low, high;
    size_t ti;                         /* table index, ntables for the closing marker chunk */
    cdc_snap_rows *rows;               /* NULL for the closing marker chunk; a pass: its snapshot */
    bool pass;                         /* a one-pass read of a table without a chunk key */
    cdc_snap_rows *batch, *next_batch; /* a pass: rows being handed over, and the next ones */
    size_t batch_i;
    size_t nrows; /* rows to hand over (the read asks for one more) */
    bool more;    /* the table has rows after this chunk */
    bool conflict;
    bool *dropped;
    patched_row **patch; /* nrows, NULL or lazily per row */
    uint32_t *hash;      /* open addressing: row index + 1, 0 empty */
    size_t hcap;
    size_t emit_i;
    uint64_t ordinal;
    int64_t read_us;
    cdc_event_value *vals; /* room for nvals values: the widest table read */
    size_t nvals;
    /* a streamed table's chunk key column indexes, per columns array seen */
    const cdc_event_column *map_cols;
    const cdc_event_column *shape_cols; /* the last columns compared with a table's */
    bool stale;                         /* a table to read changed shape: read them again */
    char *publication;
    uint32_t map_relid;
    size_t map_ncols;
    int *map; /* nchunk indexes into the event's columns, -1 missing */
    size_t map_n;

    seen_txn *seen; /* open addressing by xid */
    size_t seen_cap, seen_n;
    bool seen_full;    /* a transaction was not recorded: be conservative */
    bool seeded;       /* a read since this session began recorded what lingered before */
    seen_txn *cur_txn; /* the streamed transaction being recorded, NULL if none */

    /* chunks read again in a row, and when the next may start */
    unsigned retries_in_row;
    int64_t retry_at_ms, last_retry_log_ms;
    uint32_t behind_xid; /* the transaction that made the last chunk be read again */

    bool first_row_sent;
    size_t empty_from; /* tables from this index on were empty when looked at (ended_last) */
    bool empty_known;
    uint32_t announced; /* the table whose read the log announced last */
    int64_t table_start_ms, last_log_ms;
    int64_t log_every_ms;   /* a progress line in the log this often (status.interval) */
    int64_t last_status_ms; /* the terminal's progress line was drawn then */
    uint64_t table_rows;    /* rows of the table read so far (handed over or dropped) */
    bool table_marked;      /* its first row went out (first_in_data_collection) */
    cdc_snapshot_stats st;
};

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ------------------------------------------------------------------------
 * Progress text
 * ------------------------------------------------------------------------ */

static void free_after(cdc_snapshot *s)
{
    for (size_t i = 0; i < s->nafter; i++)
        free(s->after[i]);
    free(s->after);
    s->after = NULL;
    s->nafter = 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Sorted sets of relids. */
static bool set_has(const uint32_t *set, size_t n, uint32_t relid)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == relid)
            return true;
    return false;
}

static int set_add(uint32_t **set, size_t *n, uint32_t relid)
{
    if (set_has(*set, *n, relid))
        return 0;
    uint32_t *a = realloc(*set, (*n + 1) * sizeof(*a));
    if (a == NULL)
        return -1;
    size_t i = *n;
    while (i > 0 && a[i - 1] > relid) {
        a[i] = a[i - 1];
        i--;
    }
    a[i] = relid;
    *set = a;
    (*n)++;
    return 0;
}

/* Parse "a,b,c" (relids) into a new set. */
static int parse_set(const char *p, const char **end, uint32_t **set, size_t *n)
{
    free(*set);
    *set = NULL;
    *n = 0;
    for (;;) {
        char *e;
        unsigned long v = strtoul(p, &e, 10);
        if (e == p || v > UINT32_MAX || set_add(set, n, (uint32_t)v) < 0)
            return -1;
        p = e;
        if (*p != ',')
            break;
        p++;
    }
    *end = p;
    return 0;
}

static int parse_head(cdc_snapshot *s, const char *text);

/* Parse progress text into done / cur_relid / after. -1 when malformed. */
static int parse_progress(cdc_snapshot *s, const char *text)
{
    free_after(s);
    free(s->only);
    free(s->then);
    s->only = s->then = NULL;
    s->nonly = s->nthen = 0;
    s->done = false;
    s->cur_relid = 0;
    free(s->known);
    s->known = NULL;
    s->nknown = 0;
    s->known_set = false;
    /* " known <relids>", last: the tables the snapshot knows of (snapshot.new.tables) */
    const char *kn = strstr(text, " known ");
    char *head = strndup(text, kn ? (size_t)(kn - text) : strlen(text));
    if (head == NULL)
        return -1;
    if (kn != NULL) {
        const char *e;
        if (parse_set(kn + 7, &e, &s->known, &s->nknown) < 0 || *e != '\0') {
            free(head);
            return -1;
        }
        s->known_set = true;
    }
    int rc = parse_head(s, head);
    free(head);
    return rc;
}

/* parse_progress without the known set. */
static int parse_head(cdc_snapshot *s, const char *text)
{
    if (strcmp(text, "done") == 0 || text[0] == '\0') {
        s->done = true;
        return 0;
    }
    unsigned long relid;
    char *end;
    if (strncmp(text, "running ", 8) != 0)
        return -1;
    relid = strtoul(text + 8, &end, 10);
    if (*end != ' ' || relid > UINT32_MAX)
        return -1;
    s->cur_relid = (uint32_t)relid;
    const char *p = end + 1;
    /* optional: rows of the table handed over so far, and when its read began */
    const char *sp = strchr(p, ' ');
    s->table_rows = 0;
    s->table_start_ms = now_ms();
    if (sp != NULL) {
        char *e;
        s->table_rows = strtoull(sp + 1, &e, 10);
        if (*e != ' ')
            return -1;
        s->table_start_ms = strtoll(e + 1, &e, 10);
        const char *q = e;
        /* then " only <relids>" (an incremental round) and " then <relids>" (the next) */
        while (*q == ' ') {
            if (strncmp(q, " only ", 6) == 0 && parse_set(q + 6, &q, &s->only, &s->nonly) == 0)
                continue;
            if (strncmp(q, " then ", 6) == 0 && parse_set(q + 6, &q, &s->then, &s->nthen) == 0)
                continue;
            return -1;
        }
        if (*q != '\0')
            return -1;
    }
    s->first_row_sent = relid != 0 || s->table_rows > 0;
    s->table_marked = s->table_rows > 0;
    size_t plen = sp ? (size_t)(sp - p) : strlen(p);
    if (plen == 1 && p[0] == '-')
        return 0;
    size_t n = 1;
    for (const char *q = p; q < p + plen; q++)
        n += *q == ',';
    s->after = calloc(n, sizeof(*s->after));
    if (s->after == NULL)
        return -1;
    const char *stop = p + plen;
    /* each part is "x" + hex, so that an empty value is a part too */
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(stop - p));
        size_t len = comma ? (size_t)(comma - p) : (size_t)(stop - p);
        if (len < 1 || p[0] != 'x' || (len - 1) % 2)
            return -1;
        p++;
        len--;
        char *v = malloc(len / 2 + 1);
        if (v == NULL)
            return -1;
        for (size_t i = 0; i < len / 2; i++) {
            int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                free(v);
                return -1;
            }
            v[i] = (char)(hi << 4 | lo);
        }
        v[len / 2] = '\0';
        s->after[s->nafter++] = v;
        p += len;
        if (p >= stop)
            break;
        p++; /* the comma */
    }
    return 0;
}

/* The progress text of the in-memory state (malloc'd), NULL when out of memory. */
static char *render_head(const cdc_snapshot *s);

static char *render_progress(const cdc_snapshot *s)
{
    char *head = render_head(s);
    if (head == NULL || !s->known_set)
        return head;
    cdc_buf b = {0};
    int rc = cdc_buf_puts(&b, head);
    free(head);
    rc |= cdc_buf_puts(&b, " known ");
    for (size_t i = 0; i < s->nknown && rc == 0; i++)
        rc |= cdc_buf_printf(&b, "%s%" PRIu32, i ? "," : "", s->known[i]);
    if (s->nknown == 0)
        rc |= cdc_buf_puts(&b, "0"); /* an empty set: relid 0 is no table */
    if (rc != 0) {
        cdc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static char *render_head(const cdc_snapshot *s)
{
    if (s->done)
        return strdup("done");
    size_t len = 80;
    for (size_t i = 0; i < s->nafter; i++)
        len += strlen(s->after[i]) * 2 + 2;
    char *t = malloc(len);
    if (t == NULL)
        return NULL;
    int o = snprintf(t, len, "running %" PRIu32 " ", s->cur_relid);
    if (s->nafter == 0) {
        t[o++] = '-';
    } else {
        static const char hx[] = "0123456789abcdef";
        for (size_t i = 0; i < s->nafter; i++) {
            if (i)
                t[o++] = ',';
            t[o++] = 'x';
            for (const unsigned char *p = (const unsigned char *)s->after[i]; *p; p++) {
                t[o++] = hx[*p >> 4];
                t[o++] = hx[*p & 15];
            }
        }
    }
    o += snprintf(t + o, len - (size_t)o, " %llu %lld", (unsigned long long)s->table_rows,
                  (long long)s->table_start_ms);
    t[o] = '\0';
    cdc_buf b = {0};
    int rc = cdc_buf_puts(&b, t);
    for (int k = 0; k < 2 && rc == 0; k++) {
        const uint32_t *set = k == 0 ? s->only : s->then;
        size_t n = k == 0 ? s->nonly : s->nthen;
        if (set == NULL || n == 0)
            continue;
        rc |= cdc_buf_puts(&b, k == 0 ? " only " : " then ");
        for (size_t i = 0; i < n && rc == 0; i++)
            rc |= cdc_buf_printf(&b, "%s%" PRIu32, i ? "," : "", set[i]);
    }
    free(t);
    if (rc != 0 || cdc_buf_append(&b, "", 1) < 0) {
        cdc_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

int cdc_snapshot_parse_progress(const char *text, cdc_snapshot_info *ret)
{
    cdc_snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CDC_ENOMEM;
    int rc = parse_progress(s, text);
    *ret = (cdc_snapshot_info){.done = s->done && strncmp(text, "done", 4) == 0,
                               .none = s->done && strncmp(text, "done", 4) != 0,
                               .relid = s->cur_relid,
                               .table_rows = s->table_rows,
                               .table_started_ms = s->table_start_ms,
                               .only = rc < 0 ? NULL : s->only,
                               .nonly = rc < 0 ? 0 : s->nonly,
                               .nthen = s->nthen};
    if (rc == 0)
        s->only = NULL; /* the caller's now */
    free_after(s);
    free(s->only);
    free(s->then);
    free(s->known);
    free(s->sig_schema);
    free(s->sig_table);
    free(s);
    return rc < 0 ? CDC_EPROTO : 0;
}

void cdc_snapshot_info_free(cdc_snapshot_info *info)
{
    free(info->only);
    info->only = NULL;
    info->nonly = 0;
}

int cdc_snapshot_new(const char *progress, size_t chunk_size, const char *slot,
                     int64_t new_tables_every_ms, cdc_snapshot **ret, cdc_error *err)
{
    cdc_snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    s->chunk_size = chunk_size ? chunk_size : 1;
    s->log_every_ms = 10000;
    s->inflight = 1;
    s->nreaders = 1;
    s->new_tables = new_tables_every_ms > 0;
    s->poll_every_ms = new_tables_every_ms;
    s->durable = strdup(progress);
    s->slot = strdup(slot);
    if (s->durable == NULL || s->slot == NULL) {
        free(s->slot);
        free(s->durable);
        free(s);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    if (parse_progress(s, progress) < 0) {
        cdc_err(err, CDC_EPROTO, "unreadable snapshot progress \"%s\" in the checkpoint", progress);
        cdc_snapshot_free(s);
        return CDC_EPROTO;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    s->run_id = ((uint64_t)tv.tv_sec << 20) ^ (uint64_t)tv.tv_usec ^ ((uint64_t)rand() << 32);
    *ret = s;
    return 0;
}

static void free_patches(cdc_snapshot *s)
{
    if (s->patch == NULL)
        return;
    const cdc_snap_table *t = s->ti < s->ntables ? &s->tables[s->ti] : NULL;
    for (size_t i = 0; i < s->nrows; i++) {
        if (s->patch[i] == NULL)
            continue;
        for (size_t c = 0; t && c < t->ncols; c++)
            free((char *)s->patch[i]->v[c].data);
        free(s->patch[i]);
    }
    free(s->patch);
    s->patch = NULL;
}

static void drop_window(cdc_snapshot *s)
{
    free_patches(s);
    s->map_cols = NULL; /* a relation cache entry may be freed and its address reused */
    if (s->pass)
        cdc_snapread_pass_end(s->r);
    s->pass = false;
    cdc_snap_rows_free(s->batch);
    cdc_snap_rows_free(s->next_batch);
    s->batch = s->next_batch = NULL;
    s->batch_i = 0;
    cdc_snap_rows_free(s->rows);
    s->rows = NULL;
    free(s->dropped);
    s->dropped = NULL;
    free(s->hash);
    s->hash = NULL;
    s->hcap = 0;
    s->ws = W_NONE;
    s->seen_low = false;
    s->conflict = false;
}

static void prefetch_drop(cdc_snapshot *s);

static void close_sessions(cdc_snapshot *s)
{
    cdc_snapread_close(s->r);
    cdc_snapread_close(s->marks);
    s->r = s->marks = NULL;
    for (size_t k = 0; k + 1 < CDC_SNAP_MAX_READERS; k++) {
        cdc_snapread_close(s->more_r[k]);
        s->more_r[k] = NULL;
    }
}

/* The read sessions, r first, in rs; how many. */
static size_t readers(const cdc_snapshot *s, cdc_snapread **rs)
{
    rs[0] = s->r;
    size_t n = 1;
    while (n < s->nreaders && s->more_r[n - 1] != NULL) {
        rs[n] = s->more_r[n - 1];
        n++;
    }
    return n;
}

void cdc_snapshot_disconnect(cdc_snapshot *s)
{
    if (s == NULL)
        return;
    prefetch_drop(s);
    drop_window(s);
    close_sessions(s);
}

void cdc_snapshot_free(cdc_snapshot *s)
{
    if (s == NULL)
        return;
    cdc_snapshot_disconnect(s);
    cdc_snap_tables_free(s->tables, s->ntables);
    free_after(s);
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].text);
    free(s->pend);
    free(s->durable);
    free(s->progress_buf);
    free(s->vals);
    free(s->map);
    free(s->seen);
    free(s->publication);
    free(s->only);
    free(s->then);
    free(s->known);
    free(s->slot);
    free(s->dsn);
    free(s);
}

bool cdc_snapshot_active(const cdc_snapshot *s)
{
    return s != NULL && strncmp(s->durable, "running ", 8) == 0;
}

/* (Re)read the publication's tables, their columns and keys. */
static int load_tables(cdc_snapshot *s, cdc_error *err)
{
    prefetch_drop(s); /* it holds the read session and reads a table of the old list */
    cdc_snap_tables_free(s->tables, s->ntables);
    s->tables = NULL;
    s->ntables = 0;
    s->map_cols = s->shape_cols = NULL;
    s->stale = false;
    s->empty_known = false;
    int rc = cdc_snapread_tables(s->r, s->publication, &s->tables, &s->ntables, err);
    if (rc < 0)
        return rc;
    size_t maxcols = 1;
    for (size_t i = 0; i < s->ntables; i++)
        if (s->tables[i].ncols > maxcols)
            maxcols = s->tables[i].ncols;
    free(s->vals);
    s->nvals = 0;
    if ((s->vals = calloc(maxcols, sizeof(*s->vals))) == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    s->nvals = maxcols;
    s->st.tables = s->ntables;
    s->st.tables_done = 0;
    for (size_t i = 0; i < s->ntables; i++)
        if (s->tables[i].relid < s->cur_relid)
            s->st.tables_done++;
    return 0;
}

static int open_sessions(cdc_snapshot *s, cdc_error *err);

int cdc_snapshot_connect(cdc_snapshot *s, const char *dsn, const char *publication,
                         int server_version, cdc_error *err)
{
    cdc_snapshot_disconnect(s);
    /* back to what a checkpoint holds: rows handed over since may not be delivered */
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].text);
    s->npend = 0;
    if (parse_progress(s, s->durable) < 0)
        return cdc_err(err, CDC_EPROTO, "unreadable snapshot progress \"%s\"", s->durable);
    s->seeded = false; /* what lingers from before this session is not recorded */
    free(s->dsn);
    free(s->publication);
    s->dsn = strdup(dsn);
    s->publication = strdup(publication);
    s->server_version = server_version;
    if (s->dsn == NULL || s->publication == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    s->next_poll_ms = 0; /* look at once: tables added while pgcdc was stopped */
    if (!cdc_snapshot_active(s))
        return 0; /* sessions open if a request comes (open_sessions) */
    return open_sessions(s, err);
}

/* Open the read and watermark sessions and list the tables. */
static int open_sessions(cdc_snapshot *s, cdc_error *err)
{
    s->seeded = false; /* what was streamed while none was open is not recorded */
    int server_version = s->server_version;
    if (server_version < 140000) {
        cdc_err(err, CDC_ECONFIG,
                "snapshot.mode needs PostgreSQL 14 or later to read existing rows (this server "
                "is %d.%d)",
                server_version / 10000, server_version % 10000 / 100);
        cdc_err_detail(err, "a snapshot places its rows in the stream with logical decoding "
                            "messages, which pgoutput sends from PostgreSQL 14 on");
        cdc_err_hint(err, "set snapshot.mode = no_data to stream changes only");
        return CDC_ECONFIG;
    }
    int rc = s->r ? 0 : cdc_snapread_open(s->dsn, &s->r, err);
    if (rc == 0 && s->marks == NULL)
        rc = cdc_snapread_open(s->dsn, &s->marks, err);
    for (size_t k = 0; rc == 0 && k + 1 < s->nreaders; k++)
        if (s->more_r[k] == NULL && (rc = cdc_snapread_open(s->dsn, &s->more_r[k], err)) < 0)
            cdc_err_hint(err,
                         "snapshot.max.threads = %zu opens %zu SQL sessions besides the "
                         "replication one: lower it, or raise the server's max_connections",
                         s->nreaders, s->nreaders + 2);
    if (rc < 0)
        return rc;
    return load_tables(s, err);
}

/*
 * snapshot.new.tables: every poll_every_ms, compare the publication's tables (those with a
 * key) with the ones known; for the new ones, write a request as pgcdc snapshot does, so
 * that they are read in the stream's order and the request survives a crash. A failure
 * here is logged, never fatal: streaming goes on, and the next look tries again.
 */
static int push_pending(cdc_snapshot *s, cdc_lsn h, char *text);
static void show_progress(cdc_snapshot *s, bool force);

static void poll_new_tables(cdc_snapshot *s)
{
    if (!s->new_tables || s->dsn == NULL || now_ms() < s->next_poll_ms)
        return;
    s->next_poll_ms = now_ms() + s->poll_every_ms;
    cdc_error e = {0};
    uint32_t *ids = NULL;
    size_t n = 0;
    if ((s->marks == NULL && cdc_snapread_open(s->dsn, &s->marks, &e) < 0) ||
        cdc_snapread_table_ids(s->marks, s->publication, &ids, &n, &e) < 0) {
        cdc_log_warning("snapshot.new.tables: cannot list the publication's tables: %s", e.msg);
        cdc_snapread_close(s->marks);
        s->marks = NULL;
        return;
    }
    cdc_buf req = {0};
    size_t added = 0;
    int rc = s->known_set ? cdc_buf_printf(&req, "execute-snapshot %s ", s->slot) : 0;
    for (size_t i = 0; s->known_set && i < n && rc == 0; i++)
        if (!set_has(s->known, s->nknown, ids[i]))
            rc = cdc_buf_printf(&req, "%s%" PRIu32, added++ ? "," : "", ids[i]);
    cdc_lsn at = 0;
    if (rc == 0 && added > 0 &&
        cdc_snapread_message(s->marks, CDC_SIGNAL_PREFIX, req.data, &at, &e) < 0) {
        cdc_log_warning("snapshot.new.tables: cannot ask for the new tables: %s", e.msg);
        rc = -1;
    }
    cdc_buf_free(&req);
    if (rc != 0) {
        free(ids);
        return;
    }
    if (added > 0)
        cdc_log_info("snapshot.new.tables: %zu table%s added to the publication: reading %s "
                     "(request at " CDC_LSN_FMT ")",
                     added, added == 1 ? "" : "s", added == 1 ? "it" : "them", CDC_LSN_ARGS(at));
    bool first = !s->known_set;
    free(s->known);
    s->known = ids;
    s->nknown = n;
    s->known_set = true;
    /* With nothing in flight the progress is what the checkpoint holds, plus the tables
     * now known: record them (position 0: the next checkpoint). A request's own progress,
     * and every chunk's, carries them otherwise. */
    if ((first || added == 0) && s->done && s->npend == 0) {
        char *text = render_progress(s);
        if (text && strcmp(text, s->durable) != 0 && push_pending(s, 0, text) == 0)
            text = NULL;
        free(text);
    }
}

/* ------------------------------------------------------------------------
 * Reading a chunk
 * ------------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211u;
    }
    return h;
}

/* Hash of the chunk key of row i of the chunk. */
static uint64_t row_hash(const cdc_snapshot *s, size_t i)
{
    const cdc_snap_table *t = &s->tables[s->ti];
    uint64_t h = 1469598103934665603u;
    for (size_t k = 0; k < t->nchunk; k++) {
        cdc_event_value v = cdc_snap_rows_value(s->rows, i, t->chunk[k]);
        uint32_t len = v.len;
        h = fnv(h, (const char *)&len, sizeof(len));
        h = fnv(h, v.data, v.len);
    }
    return h;
}

static int build_hash(cdc_snapshot *s)
{
    size_t cap = 16;
    while (cap < s->nrows * 2)
        cap <<= 1;
    s->hash = calloc(cap, sizeof(*s->hash));
    s->dropped = calloc(s->nrows ? s->nrows : 1, sizeof(*s->dropped));
    if (s->hash == NULL || s->dropped == NULL)
        return CDC_ENOMEM;
    s->hcap = cap;
    for (size_t i = 0; i < s->nrows; i++) {
        size_t b = (size_t)row_hash(s, i) & (cap - 1);
        while (s->hash[b])
            b = (b + 1) & (cap - 1);
        s->hash[b] = (uint32_t)i + 1;
    }
    return 0;
}

/* The table the next chunk reads: the first not done at or after cur_relid. */
static size_t next_table(cdc_snapshot *s)
{
    for (size_t i = 0; i < s->ntables; i++) {
        if (s->tables[i].relid < s->cur_relid ||
            (s->only && !set_has(s->only, s->nonly, s->tables[i].relid)))
            continue;
        if (s->only && s->tables[i].nchunk == 0) {
            /* pgcdc snapshot refuses these: read again, its rows could not be told from the
             * ones consumers have */
            cdc_log_warning("snapshot: \"%s.%s\" has no key: not read again", s->tables[i].schema,
                            s->tables[i].table);
            continue;
        }
        if (s->tables[i].relid != s->cur_relid) {
            /* a table we had not started: from its start */
            free_after(s);
            s->cur_relid = s->tables[i].relid;
            s->table_rows = 0;
            s->table_marked = false;
        }
        if (s->after != NULL && s->nafter != s->tables[i].nchunk) {
            /* its key changed since the progress was written: read it again from its start */
            cdc_log_warning("snapshot: the key of \"%s.%s\" changed since the checkpoint; "
                            "reading it again from its start",
                            s->tables[i].schema, s->tables[i].table);
            free_after(s);
            s->table_rows = 0;
            s->table_marked = false;
        }
        return i;
    }
    return s->ntables;
}

/* Read table ti's columns again before each chunk of it: a column added, dropped or
 * retyped since is read as it is now (the stream's events carry it from their next
 * change). 1 when the table is no longer published (it is skipped), 0, or an error. */
/* Write a watermark on the watermark session, opening it again when a failed look at the
 * tables (snapshot.new.tables, a signal) closed it. */
static int mark(cdc_snapshot *s, const char *content, cdc_lsn *ret, cdc_error *err)
{
    int rc = s->marks ? 0 : cdc_snapread_open(s->dsn, &s->marks, err);
    return rc < 0 ? rc : cdc_snapread_mark(s->marks, content, ret, err);
}

/* Room in s->vals for a row of n columns; it only grows (it serves every table). */
static int vals_room(cdc_snapshot *s, size_t n)
{
    if (n <= s->nvals)
        return 0;
    cdc_event_value *v = realloc(s->vals, n * sizeof(*v));
    if (v == NULL)
        return -1;
    s->vals = v;
    s->nvals = n;
    return 0;
}

static int refresh_table(cdc_snapshot *s, size_t ti, cdc_error *err)
{
    cdc_snap_table fresh;
    int rc = cdc_snapread_table(s->r, s->publication, s->tables[ti].relid, &fresh, err);
    if (rc == CDC_ENOTFOUND) {
        cdc_log_info("snapshot: \"%s.%s\" is no longer published: not read", s->tables[ti].schema,
                     s->tables[ti].table);
        return 1;
    }
    if (rc < 0)
        return rc;
    if (vals_room(s, fresh.ncols) < 0) {
        cdc_snap_table *tmp = malloc(sizeof(*tmp));
        if (tmp)
            *tmp = fresh;
        cdc_snap_tables_free(tmp, tmp ? 1 : 0);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    cdc_snap_table *old = malloc(sizeof(*old));
    if (old == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    *old = s->tables[ti];
    bool same_key = old->nchunk == fresh.nchunk;
    for (size_t k = 0; same_key && k < fresh.nchunk; k++)
        same_key = strcmp(old->cols[old->chunk[k]].name, fresh.cols[fresh.chunk[k]].name) == 0;
    if (!same_key && s->after != NULL && s->cur_relid == fresh.relid) {
        cdc_log_warning("snapshot: the key of \"%s.%s\" changed during its read; reading it "
                        "again from its start",
                        fresh.schema, fresh.table);
        free_after(s);
        s->table_rows = 0;
        s->table_marked = false;
    }
    s->tables[ti] = fresh;
    cdc_snap_tables_free(old, 1);
    s->shape_cols = NULL;
    return 0;
}

static int start_chunk(cdc_snapshot *s, cdc_error *err)
{
    prefetch_drop(s); /* not taken up when its chunk was done: its rows are not the next */
    if (s->stale) {
        int lrc = load_tables(s, err);
        if (lrc < 0)
            return lrc;
    }
    size_t ti;
    for (;;) {
        ti = next_table(s);
        if (ti >= s->ntables)
            break;
        int frc = refresh_table(s, ti, err);
        if (frc < 0)
            return frc;
        if (frc == 0)
            break;
        /* no longer published: the next table */
        if (s->tables[ti].relid == UINT32_MAX) {
            ti = s->ntables;
            break;
        }
        s->cur_relid = s->tables[ti].relid + 1;
        free_after(s);
        s->table_rows = 0;
        s->table_marked = false;
    }
    s->ti = ti;
    s->seq = ++s->last_seq;
    char content[64];
    snprintf(content, sizeof(content), "%016" PRIx64 ":%" PRIu64 " low", s->run_id, s->seq);
    int rc = mark(s, content, &s->low, err);
    if (rc < 0)
        return rc;
    s->nrows = 0;
    s->more = false;
    if (ti < s->ntables) {
        cdc_snap_table *t = &s->tables[ti];
        if (s->table_rows == 0 && s->after == NULL && s->announced != t->relid) {
            s->announced = t->relid; /* once, not again for a chunk read again */
            s->table_start_ms = now_ms();
            s->last_log_ms = s->table_start_ms;
            if (t->est_rows < 0)
                cdc_log_info("snapshot: reading \"%s.%s\" (never analysed: size unknown)",
                             t->schema, t->table);
            else
                cdc_log_info("snapshot: reading \"%s.%s\" (about %lld rows)", t->schema, t->table,
                             (long long)t->est_rows);
            if (t->nchunk == 0)
                cdc_log_info("snapshot: \"%s.%s\" has no primary key or replica identity "
                             "index: it is read in one pass, in one transaction",
                             t->schema, t->table);
        }
        if (t->nchunk == 0) {
            /* the read starts at the high watermark, under a snapshot taken before it */
            if ((rc = cdc_snapread_pass_begin(s->r, t, &s->rows, err)) < 0)
                return rc;
            s->pass = true;
            s->read_us = now_ms() * 1000;
            s->ws = W_READ;
            s->seen_low = false;
            s->conflict = false;
            return 0;
        }
        cdc_snapread *rs[CDC_SNAP_MAX_READERS];
        size_t nr = readers(s, rs);
        rc = cdc_snap_window_read(rs, nr, t, (const char *const *)s->after, s->chunk_size, &s->rows,
                                  &s->nrows, &s->more, err);
        if (rc < 0)
            return rc;
        if (build_hash(s) < 0)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    s->read_us = now_ms() * 1000;
    s->ws = W_READ;
    s->seen_low = false;
    s->conflict = false;
    return 0;
}

/* ------------------------------------------------------------------------
 * Reading ahead
 * ------------------------------------------------------------------------ */

static void *prefetch_main(void *arg)
{
    prefetch *p = arg;
    p->rc = cdc_snapread_table(p->r[0], p->publication, p->relid, &p->fresh, &p->err);
    if (p->rc == CDC_ENOTFOUND) {
        p->gone = true;
        p->rc = 0;
        return NULL;
    }
    if (p->rc < 0)
        return NULL;
    p->have_fresh = true;
    if (p->fresh.nchunk != p->nafter)
        return NULL; /* its key changed: not taken up, read as start_chunk reads it */
    p->rc = cdc_snap_window_read(p->r, p->nr, &p->fresh, (const char *const *)p->after, p->chunk,
                                 &p->rows, &p->nrows, &p->more, &p->err);
    p->read_ms = now_ms();
    return NULL;
}

static void prefetch_join(cdc_snapshot *s)
{
    if (s->pf.running) {
        pthread_join(s->pf.thread, NULL);
        s->pf.running = false;
    }
}

static void prefetch_drop(cdc_snapshot *s)
{
    prefetch *p = &s->pf;
    prefetch_join(s);
    for (size_t k = 0; k < p->nafter; k++)
        free(p->after[k]);
    free(p->after);
    cdc_snap_rows_free(p->rows);
    if (p->have_fresh) {
        cdc_snap_table *t = malloc(sizeof(*t));
        if (t != NULL)
            *t = p->fresh;
        cdc_snap_tables_free(t, t ? 1 : 0); /* (frees t) */
    }
    memset(p, 0, sizeof(*p));
}

/*
 * The high watermark of a chunk with more rows of its table after it was just written:
 * write the next chunk's low watermark, and read its rows on a thread while the stream
 * goes to the high watermark and the rows are handed over. Not for a one-pass read, the
 * closing chunk, or when the tables are to be listed again. A thread that cannot be
 * started leaves the read to start_chunk (the low watermark written is ignored).
 */
static int prefetch_start(cdc_snapshot *s, cdc_error *err)
{
    if (s->pass || s->conflict || s->ti >= s->ntables || !s->more || s->stale || s->nrows == 0 ||
        s->pf.running || s->r == NULL ||
        cdc_snap_rows_bytes(s->rows) > PREFETCH_MAX_BYTES * s->nreaders)
        return 0;
    prefetch_drop(s);
    prefetch *p = &s->pf;
    const cdc_snap_table *t = &s->tables[s->ti];
    if ((p->after = calloc(t->nchunk, sizeof(*p->after))) == NULL)
        return 0;
    for (size_t k = 0; k < t->nchunk; k++) {
        cdc_event_value v = cdc_snap_rows_value(s->rows, s->nrows - 1, t->chunk[k]);
        if ((p->after[k] = strndup(v.data ? v.data : "", v.len)) == NULL) {
            prefetch_drop(s);
            return 0;
        }
        p->nafter++;
    }
    p->nr = readers(s, p->r);
    p->publication = s->publication;
    p->relid = t->relid;
    p->ti = s->ti;
    p->chunk = s->chunk_size;
    p->seq = ++s->last_seq;
    char content[64];
    snprintf(content, sizeof(content), "%016" PRIx64 ":%" PRIu64 " low", s->run_id, p->seq);
    int rc = mark(s, content, &p->low, err);
    if (rc < 0) {
        prefetch_drop(s);
        return rc;
    }
    if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
        prefetch_drop(s);
        return 0;
    }
    p->running = true;
    return 0;
}

/*
 * A chunk is done (its rows handed over, the stream at its high watermark): take up the
 * chunk read ahead when it is the one start_chunk would read now (same table, right after
 * the chunk's last row, same key, tables not to be listed again), waiting for its read if
 * need be. Otherwise it is dropped and start_chunk reads the next chunk itself.
 */
static void adopt_prefetch(cdc_snapshot *s)
{
    prefetch *p = &s->pf;
    if (!p->running && p->rows == NULL && !p->have_fresh)
        return;
    prefetch_join(s);
    bool ok = p->rc == 0 && !p->gone && p->have_fresh && p->rows != NULL && !s->stale && !s->done &&
              p->ti < s->ntables && s->tables[p->ti].relid == p->relid &&
              s->cur_relid == p->relid && s->after != NULL && s->nafter == p->nafter;
    for (size_t k = 0; ok && k < p->nafter; k++)
        ok = strcmp(s->after[k], p->after[k]) == 0;
    const cdc_snap_table *old = ok ? &s->tables[p->ti] : NULL;
    ok = ok && old->nchunk == p->fresh.nchunk;
    for (size_t k = 0; ok && k < p->fresh.nchunk; k++)
        ok = strcmp(old->cols[old->chunk[k]].name, p->fresh.cols[p->fresh.chunk[k]].name) == 0;
    ok = ok && vals_room(s, p->fresh.ncols) == 0;
    if (!ok) {
        if (p->rc < 0)
            cdc_log_debug("snapshot: the chunk read ahead is read again: %s", p->err.msg);
        prefetch_drop(s);
        return;
    }
    cdc_snap_table *was = malloc(sizeof(*was));
    if (was == NULL) {
        prefetch_drop(s);
        return;
    }
    *was = s->tables[p->ti];
    s->tables[p->ti] = p->fresh;
    cdc_snap_tables_free(was, 1);
    s->shape_cols = NULL;
    p->have_fresh = false;
    s->ti = p->ti;
    s->seq = p->seq;
    s->low = p->low;
    s->rows = p->rows;
    p->rows = NULL;
    s->more = p->more;
    s->nrows = p->nrows;
    s->read_us = p->read_ms * 1000;
    prefetch_drop(s);
    if (build_hash(s) < 0) {
        drop_window(s); /* out of memory: start_chunk reads it again */
        return;
    }
    s->ws = W_READ;
    s->seen_low = false;
    s->conflict = false;
}

int cdc_snapshot_work(cdc_snapshot *s, cdc_lsn durable, cdc_error *err)
{
    if (s == NULL)
        return 0;
    poll_new_tables(s);
    if (s->done)
        return 0;
    if (s->r == NULL) {
        int orc = open_sessions(s, err); /* a request after the snapshot was done */
        if (orc < 0)
            return orc;
    }
    if (s->ws == W_NONE) {
        if (now_ms() < s->retry_at_ms)
            return 0;
        int rc = start_chunk(s, err);
        return rc < 0 ? rc : 1;
    }
    if (s->ws == W_READ) {
        /* the chunks before this one, but inflight - 1 of them, must be in a checkpoint
         * first: a crash then repeats at most inflight chunks (this one included). Waiting
         * for each chunk's delivery before the next is placed (inflight 1) leaves the
         * stream idle for a delivery round trip per chunk. */
        if (s->npend > 0)
            (void)cdc_snapshot_progress(s, durable); /* leaves the undelivered ones */
        if (s->npend >= s->inflight)
            return 0;
        char content[64];
        snprintf(content, sizeof(content), "%016" PRIx64 ":%" PRIu64 " high", s->run_id, s->seq);
        int rc = mark(s, content, &s->high, err);
        if (rc < 0)
            return rc;
        s->ws = W_WAIT_H;
        if ((rc = prefetch_start(s, err)) < 0)
            return rc;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The stream
 * ------------------------------------------------------------------------ */

static seen_txn *seen_find(const cdc_snapshot *s, uint32_t xid)
{
    if (s->seen_cap == 0)
        return NULL;
    for (size_t b = (xid * 2654435761u) & (s->seen_cap - 1); s->seen[b].xid;
         b = (b + 1) & (s->seen_cap - 1))
        if (s->seen[b].xid == xid)
            return &s->seen[b];
    return NULL;
}

static int seen_grow(cdc_snapshot *s, size_t cap)
{
    seen_txn *old = s->seen;
    size_t oldcap = s->seen_cap;
    seen_txn *n = calloc(cap, sizeof(*n));
    if (n == NULL)
        return -1;
    s->seen = n;
    s->seen_cap = cap;
    s->seen_n = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].xid == 0)
            continue;
        size_t b = (old[i].xid * 2654435761u) & (cap - 1);
        while (n[b].xid)
            b = (b + 1) & (cap - 1);
        n[b] = old[i];
        s->seen_n++;
    }
    free(old);
    return 0;
}

/* Keep only the transactions snapshot (xmax, xip) still lists as running, or that began
 * after it. */
static void seen_prune(cdc_snapshot *s, uint64_t xmax, const uint32_t *xip, size_t nxip)
{
    for (size_t i = 0; i < s->seen_cap; i++) {
        seen_txn *e = &s->seen[i];
        if (e->xid == 0)
            continue;
        bool running = (int32_t)(e->xid - (uint32_t)xmax) >= 0;
        for (size_t k = 0; !running && k < nxip; k++)
            running = xip[k] == e->xid;
        if (!running)
            e->xid = 0;
    }
    s->cur_txn = NULL;
    /* rehash what is left (removals break probe chains); without memory for it nothing
     * can be trusted to be found: be conservative until the next read */
    size_t live = 0;
    for (size_t i = 0; i < s->seen_cap; i++)
        live += s->seen[i].xid != 0;
    size_t cap = 1024;
    while (cap < live * 4)
        cap <<= 1;
    if (s->seen_cap > 0 && seen_grow(s, cap < s->seen_cap ? cap : s->seen_cap) < 0) {
        memset(s->seen, 0, s->seen_cap * sizeof(*s->seen));
        s->seen_n = 0;
        s->seen_full = true;
        return;
    }
    if (s->seen_full)
        s->seeded = false; /* transactions went unrecorded: seed again from this read */
    s->seen_full = false;
}

void cdc_snapshot_txn(cdc_snapshot *s, uint32_t xid, cdc_lsn commit_lsn)
{
    if (s == NULL)
        return;
    s->cur_txn = NULL;
    if (s->r == NULL || s->done)
        return; /* nothing to protect */
    if (s->seen_n + 1 > s->seen_cap / 2 &&
        (s->seen_cap * 2 > SEEN_MAX * 2 ||
         seen_grow(s, s->seen_cap ? s->seen_cap * 2 : 1024) < 0)) {
        s->seen_full = true;
        return;
    }
    size_t b = (xid * 2654435761u) & (s->seen_cap - 1);
    while (s->seen[b].xid && s->seen[b].xid != xid)
        b = (b + 1) & (s->seen_cap - 1);
    if (s->seen[b].xid == 0)
        s->seen_n++;
    s->seen[b] = (seen_txn){xid, commit_lsn, 0};
    s->cur_txn = &s->seen[b];
}

/* Whether the snapshot of part of the rows (one read) sees transaction xid (32-bit, as
 * pgoutput sends it). */
static bool visible(const cdc_snapshot *s, size_t part, uint32_t xid)
{
    uint64_t xmin, xmax;
    const uint32_t *xip;
    size_t nxip;
    cdc_snap_rows_snapshot(s->rows, part, &xmin, &xmax, &xip, &nxip);
    if ((int32_t)(xid - (uint32_t)xmax) >= 0)
        return false; /* started after the snapshot */
    for (size_t i = 0; i < nxip; i++)
        if (xip[i] == xid)
            return false;
    return true;
}

/* Which tables a streamed transaction touched, as 64 bits of relid: enough to tell
 * that it did not touch a given one. */
static uint64_t relid_bit(uint32_t relid)
{
    return UINT64_C(1) << (relid % 64);
}

/* True when a transaction the snapshot of one of the window's reads saw as running had
 * committed before the low watermark (the stream carried it already). */
static bool part_behind_stream(cdc_snapshot *s, size_t part)
{
    uint64_t xmin, xmax;
    const uint32_t *xip, *committed;
    size_t nxip, ncommitted;
    cdc_snap_rows_snapshot(s->rows, part, &xmin, &xmax, &xip, &nxip);
    cdc_snap_rows_committed(s->rows, part, &committed, &ncommitted);
    uint64_t bit = relid_bit(s->tables[s->ti].relid);
    bool behind = false;
    for (size_t k = 0; k < nxip && !behind; k++) {
        const seen_txn *e = seen_find(s, xip[k]);
        if (e != NULL) {
            behind = e->lsn < s->low && (e->rels & bit);
        } else if (!s->seeded || s->seen_full) {
            /* Not recorded: streamed before this session's records began (or they
             * overflowed). If the server had marked it committed by the end of the
             * read, it may have been streamed before L (a commit waits for a standby for
             * as long as it takes): read again. */
            for (size_t c = 0; c < ncommitted && !behind; c++)
                behind = committed[c] == xip[k];
        }
        if (behind)
            s->behind_xid = xip[k];
    }
    return behind;
}

/* part_behind_stream for any read of the window; then what the reads' snapshots tell of
 * the transactions recorded. */
static bool snapshot_behind_stream(cdc_snapshot *s)
{
    size_t nparts = cdc_snap_rows_parts(s->rows);
    bool behind = false;
    for (size_t p = 0; p < nparts && !behind; p++)
        behind = part_behind_stream(s, p);
    /* Each snapshot was taken after L and before any later window's. What one does not
     * list has left the list for good; those it lists and were not recorded are the ones
     * that lingered from before: record them as streamed before L, to every table (their
     * changes are not known). */
    bool seeding = !s->seeded;
    for (size_t p = 0; p < nparts; p++) {
        uint64_t xmin, xmax;
        const uint32_t *xip, *committed;
        size_t nxip, ncommitted;
        cdc_snap_rows_snapshot(s->rows, p, &xmin, &xmax, &xip, &nxip);
        seen_prune(s, xmax, xip, nxip);
        if (!seeding)
            continue;
        cdc_snap_rows_committed(s->rows, p, &committed, &ncommitted);
        for (size_t c = 0; c < ncommitted; c++) {
            if (seen_find(s, committed[c]) != NULL)
                continue;
            cdc_snapshot_txn(s, committed[c], 0);
            if (s->cur_txn)
                s->cur_txn->rels = ~UINT64_C(0);
        }
        s->cur_txn = NULL;
    }
    if (seeding)
        s->seeded = true;
    return behind;
}

static int push_pending(cdc_snapshot *s, cdc_lsn h, char *text);

/*
 * A request (pgcdc snapshot) at position at: tables not yet reached in this round join it
 * (an incremental round) or are read anyway (a round of every table); the others are
 * read again in a round after this one. The progress a checkpoint past at records
 * includes the request, so a crash does not lose it, and one at at does not (it replays
 * the request).
 */
static void request(cdc_snapshot *s, const char *list, size_t len, cdc_lsn at)
{
    uint32_t *want = NULL;
    size_t nwant = 0;
    char *copy = strndup(list, len);
    const char *end = NULL;
    if (copy == NULL || parse_set(copy, &end, &want, &nwant) < 0 || *end != '\0') {
        cdc_log_warning("ignoring an unreadable snapshot request at " CDC_LSN_FMT,
                        CDC_LSN_ARGS(at));
        free(copy);
        free(want);
        return;
    }
    free(copy);
    int rc = 0;
    if (s->done) {
        free(s->only);
        s->only = want;
        s->nonly = nwant;
        want = NULL;
        s->done = false;
        s->cur_relid = s->only[0];
        free_after(s);
        s->table_rows = 0;
        s->table_marked = false;
        s->table_start_ms = now_ms();
    } else {
        /* once the round's closing chunk is in the air, it ends the round: everything asked
         * for now is the next round's */
        bool closing = s->ws != W_NONE && s->ti >= s->ntables;
        /* the table due next, not yet begun (no chunk of it in the air) */
        bool cur_unread = s->ws == W_NONE && s->table_rows == 0 && s->after == NULL;
        for (size_t i = 0; i < nwant && rc == 0; i++) {
            bool ahead =
                !closing && (want[i] > s->cur_relid || (want[i] == s->cur_relid && cur_unread));
            if (ahead && (s->only == NULL || set_has(s->only, s->nonly, want[i])))
                continue; /* read in this round anyway */
            rc = ahead ? set_add(&s->only, &s->nonly, want[i])
                       : set_add(&s->then, &s->nthen, want[i]);
        }
    }
    /* a table published since the tables were listed: list them again before the next chunk */
    const uint32_t *asked = want ? want : s->only;
    for (size_t i = 0; asked && i < nwant && !s->stale; i++) {
        bool listed = false;
        for (size_t k = 0; k < s->ntables && !listed; k++)
            listed = s->tables[k].relid == asked[i];
        s->stale = !listed;
    }
    if (s->only && s->r == NULL)
        s->stale = true; /* opened by open_sessions, which lists them */
    free(want);
    char *text = rc == 0 ? render_progress(s) : NULL;
    /* at + 1: a checkpoint at at itself replays the request (the message, or the
     * transaction whose commit record starts there), which would ask again */
    if (text == NULL || push_pending(s, at + 1, text) < 0) {
        free(text);
        cdc_log_warning("out of memory recording a snapshot request; it is read again after a "
                        "restart");
        return;
    }
    cdc_log_info("snapshot requested at " CDC_LSN_FMT ": %s", CDC_LSN_ARGS(at), text);
}

bool cdc_snapshot_mark(cdc_snapshot *s, const cdc_event *ev)
{
    if (ev->op != CDC_EVENT_MESSAGE || ev->message.prefix == NULL)
        return false;
    if (strcmp(ev->message.prefix, CDC_SIGNAL_PREFIX) == 0) {
        /* "execute-snapshot <slot> <relids>" for this pgcdc's slot */
        static const char verb[] = "execute-snapshot ";
        size_t vl = sizeof(verb) - 1, sl = s ? strlen(s->slot) : 0;
        const char *c = ev->message.content;
        size_t n = ev->message.len;
        if (s != NULL && n > vl + sl + 1 && memcmp(c, verb, vl) == 0 &&
            memcmp(c + vl, s->slot, sl) == 0 && c[vl + sl] == ' ')
            request(s, c + vl + sl + 1, n - vl - sl - 1,
                    ev->message.lsn ? ev->message.lsn : ev->commit_lsn);
        return true;
    }
    if (strcmp(ev->message.prefix, CDC_SNAPSHOT_PREFIX) != 0)
        return false;
    if (s == NULL || (s->ws != W_WAIT_H && s->ws != W_READ))
        return true; /* an earlier run's, or another pgcdc's */
    char want[64];
    int n = snprintf(want, sizeof(want), "%016" PRIx64 ":%" PRIu64 " ", s->run_id, s->seq);
    if (ev->message.len <= (size_t)n || memcmp(ev->message.content, want, (size_t)n) != 0)
        return true;
    const char *what = ev->message.content + n;
    size_t wlen = ev->message.len - (size_t)n;
    if (wlen == 3 && memcmp(what, "low", 3) == 0) {
        s->seen_low = true;
    } else if (wlen == 4 && memcmp(what, "high", 4) == 0 && s->ws == W_WAIT_H) {
        bool behind = s->rows && !s->conflict && snapshot_behind_stream(s);
        if (s->conflict || behind) {
            /* read the same rows again, in a new window; back off while it keeps happening
             * (a transaction that stays listed as running after its commit was streamed:
             * one waiting for a synchronous standby) */
            s->st.retries++;
            s->retries_in_row++;
            unsigned d = s->retries_in_row * 10;
            s->retry_at_ms = now_ms() + (d > 1000 ? 1000 : d);
            const cdc_snap_table *t = &s->tables[s->ti < s->ntables ? s->ti : 0];
            if (behind && now_ms() - s->last_retry_log_ms >= 10000 && s->retries_in_row > 5) {
                cdc_log_warning("snapshot: \"%s.%s\" waits for transaction %" PRIu32
                                ": its commit was streamed, but the server still lists it as "
                                "running (waiting for a synchronous standby?); read again "
                                "%u times",
                                t->schema, t->table, s->behind_xid, s->retries_in_row);
                s->last_retry_log_ms = now_ms();
            } else {
                cdc_log_debug("snapshot: a chunk of \"%s.%s\" is read again: %s", t->schema,
                              t->table,
                              behind ? "a transaction its read did not see was streamed before "
                                       "its window"
                                     : "a change in its window cannot be matched to its rows");
            }
            prefetch_drop(s); /* it starts after this chunk's last row, which is read again */
            drop_window(s);
        } else {
            s->retries_in_row = 0;
            s->ws = W_EMIT;
            s->emit_i = 0;
            s->ordinal = 0;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------
 * The signal table (signal.data.collection)
 * ------------------------------------------------------------------------ */

int cdc_snapshot_set_signal_table(cdc_snapshot *s, const char *name, cdc_error *err)
{
    const char *dot = name ? strchr(name, '.') : NULL;
    if (dot == NULL || dot == name || dot[1] == '\0' || strchr(dot + 1, '.') != NULL) {
        cdc_err(err, CDC_ECONFIG, "signal.data.collection \"%s\" is not schema.table",
                name ? name : "");
        cdc_err_hint(err, "name the signal table as Debezium's PostgreSQL connector does, "
                          "e.g. signal.data.collection = public.debezium_signal");
        return CDC_ECONFIG;
    }
    free(s->sig_schema);
    free(s->sig_table);
    s->sig_schema = strndup(name, (size_t)(dot - name));
    s->sig_table = strdup(dot + 1);
    if (s->sig_schema == NULL || s->sig_table == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    return 0;
}

static const char *signal_text(const cdc_event *ev, size_t col, size_t *len)
{
    *len = 0;
    if (col >= ev->ncols || ev->after == NULL || ev->after[col].state != CDC_EVENT_TEXT)
        return NULL;
    *len = ev->after[col].len;
    return ev->after[col].data;
}

/*
 * The tables an execute-snapshot signal names, as a request's relid list: 0, 1 when the
 * signal is ignored (logged), or an error when the tables cannot be listed (the stream
 * then reconnects and the row, not yet in a checkpoint, comes again).
 */
static int signal_tables(cdc_snapshot *s, const cdc_signal *sig, const char *id, cdc_buf *ids,
                         cdc_buf *names, cdc_error *err)
{
    cdc_error e = {0};
    cdc_snap_table *t = NULL;
    uint32_t *got = NULL;
    size_t n = 0, count = 0, ngot = 0;
    int lrc = s->marks ? 0 : cdc_snapread_open(s->dsn, &s->marks, &e);
    if (lrc == 0)
        lrc = cdc_snapread_tables(s->marks, s->publication, &t, &n, &e);
    if (lrc < 0) {
        cdc_snapread_close(s->marks); /* mark() opens it again */
        s->marks = NULL;
        cdc_err(err, lrc == CDC_EPGCONN ? CDC_EPGCONN : CDC_EPG, "signal \"%s\": %s", id, e.msg);
        cdc_err_detail(err, "the signal's tables are listed when its row is streamed");
        cdc_err_hint(err, "pgcdc reconnects and reads the signal again");
        return err->code;
    }
    int rc = 0;
    for (size_t k = 0; k < sig->ncollections && rc == 0; k++) {
        cdc_signal_pattern *p = NULL;
        if (cdc_signal_pattern_new(sig->collections[k], &p, &e) < 0) {
            cdc_log_warning("signal \"%s\": %s; the signal is ignored", id, e.msg);
            rc = 1;
            break;
        }
        size_t matched = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (!cdc_signal_pattern_match(p, t[i].schema, t[i].table))
                continue;
            matched++;
            if (t[i].nchunk == 0) {
                cdc_log_warning("signal \"%s\": \"%s.%s\" has no primary key or replica "
                                "identity index: it cannot be read again while streaming; "
                                "not read",
                                id, t[i].schema, t[i].table);
                continue;
            }
            if (set_has(got, ngot, t[i].relid))
                continue; /* named by an earlier expression too */
            if (set_add(&got, &ngot, t[i].relid) < 0 ||
                cdc_buf_printf(ids, "%s%" PRIu32, count ? "," : "", t[i].relid) < 0 ||
                cdc_buf_printf(names, "%s%s.%s", count ? ", " : "", t[i].schema, t[i].table) < 0)
                rc = cdc_err(err, CDC_ENOMEM, "out of memory");
            count++;
        }
        if (matched == 0)
            cdc_log_warning("signal \"%s\": \"%s\" matches no table of publication \"%s\"", id,
                            sig->collections[k], s->publication);
        cdc_signal_pattern_free(p);
    }
    cdc_snap_tables_free(t, n);
    free(got);
    if (rc == 0 && count > 1000) {
        cdc_log_warning("signal \"%s\" names %zu tables; at most 1000 at once: the signal is "
                        "ignored",
                        id, count);
        rc = 1;
    }
    if (rc == 0 && count == 0)
        rc = 1; /* each expression was named in a warning */
    else if (rc == 0 && (cdc_buf_append(ids, "", 1) < 0 || cdc_buf_append(names, "", 1) < 0))
        rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    return rc;
}

/*
 * A row inserted into the signal table, in stream order: an execute-snapshot becomes a
 * request at its transaction's commit, exactly as pgcdc snapshot's message does (a crash
 * before a checkpoint passes the commit streams the row, and so the request, again).
 */
static int signal_row(cdc_snapshot *s, const cdc_event *ev, cdc_error *err)
{
    size_t idlen, tlen, dlen;
    const char *idp = signal_text(ev, 0, &idlen);
    const char *type = signal_text(ev, 1, &tlen);
    const char *data = signal_text(ev, 2, &dlen);
    char id[128];
    snprintf(id, sizeof(id), "%.*s", idp ? (int)(idlen < 100 ? idlen : 100) : 0, idp ? idp : "");
    if (ev->ncols < 3) {
        cdc_log_warning("signal.data.collection \"%s.%s\" has %zu column%s; a signal needs "
                        "three (id, type, data): the row is ignored",
                        s->sig_schema, s->sig_table, ev->ncols, ev->ncols == 1 ? "" : "s");
        return 0;
    }
    cdc_signal sig;
    cdc_error e = {0};
    int rc = 0;
    if (cdc_signal_parse(type, tlen, data, dlen, &sig, &e) < 0) {
        cdc_log_msg(CDC_LOG_WARNING, e.detail, e.hint, "signal \"%s\" (%s) is ignored: %s", id,
                    sig.type ? sig.type : "no type", e.msg);
        cdc_signal_free(&sig);
        return 0;
    }
    if (sig.kind == CDC_SIGNAL_LOG) {
        cdc_log_info("signal \"%s\": %s", id, sig.message);
    } else if (sig.kind == CDC_SIGNAL_UNSUPPORTED) {
        cdc_log_warning("signal \"%s\" of type \"%s\" is ignored: pgcdc acts on "
                        "execute-snapshot and log",
                        id, sig.type);
    } else {
        cdc_buf ids = {0}, names = {0};
        rc = signal_tables(s, &sig, id, &ids, &names, err);
        if (rc == 0) {
            cdc_log_info("signal \"%s\": execute-snapshot of %s%s", id, (const char *)names.data,
                         sig.blocking ? " (blocking asked: read incrementally, the stream goes "
                                        "on)"
                                      : "");
            request(s, (const char *)ids.data, ids.len - 1, ev->commit_lsn);
        }
        cdc_buf_free(&ids);
        cdc_buf_free(&names);
    }
    cdc_signal_free(&sig);
    return rc < 0 ? rc : 0;
}

/* Index into s->map for the columns of ev (the chunk table's key by name). */
static int map_columns(cdc_snapshot *s, const cdc_event *ev)
{
    /* computed for every event: a relation's columns can be freed and their address
     * reused for the next description (the FULL-table key map does so), so no cache by
     * address can be trusted */
    const cdc_snap_table *t = &s->tables[s->ti];
    if (s->map_n < t->nchunk || s->map == NULL) {
        free(s->map);
        s->map = calloc(t->nchunk ? t->nchunk : 1, sizeof(*s->map));
        if (s->map == NULL)
            return -1;
    }
    for (size_t k = 0; k < t->nchunk; k++) {
        s->map[k] = -1;
        for (size_t c = 0; c < ev->ncols; c++)
            if (strcmp(ev->columns[c].name, t->cols[t->chunk[k]].name) == 0)
                s->map[k] = (int)c;
    }
    s->map_n = s->map_n > t->nchunk ? s->map_n : t->nchunk;
    return 0;
}

/* Drop the chunk row whose key the values vals (an image of ev) hold; a key that cannot
 * be read from them makes the chunk read again. */
/* The chunk row whose key the values vals (an image of ev) hold: its index, -1 when the
 * chunk has none, -2 when the key cannot be read from them. */
static long find_row(cdc_snapshot *s, const cdc_event_value *vals)
{
    const cdc_snap_table *t = &s->tables[s->ti];
    uint64_t h = 1469598103934665603u;
    for (size_t k = 0; k < t->nchunk; k++) {
        int c = s->map[k];
        if (c < 0 || vals[c].state != CDC_EVENT_TEXT)
            return -2;
        uint32_t len = vals[c].len;
        h = fnv(h, (const char *)&len, sizeof(len));
        h = fnv(h, vals[c].data, vals[c].len);
    }
    for (size_t b = (size_t)h & (s->hcap - 1); s->hash[b]; b = (b + 1) & (s->hcap - 1)) {
        size_t i = s->hash[b] - 1;
        bool same = true;
        for (size_t k = 0; k < t->nchunk && same; k++) {
            cdc_event_value v = cdc_snap_rows_value(s->rows, i, t->chunk[k]);
            const cdc_event_value *e = &vals[s->map[k]];
            same =
                v.state == CDC_EVENT_TEXT && v.len == e->len && memcmp(v.data, e->data, v.len) == 0;
        }
        if (same)
            return (long)i;
    }
    return -1;
}

/* Drop the chunk row whose key vals hold; a key that cannot be read from them makes the
 * chunk read again. */
static void drop_key(cdc_snapshot *s, const cdc_event_value *vals)
{
    long i = find_row(s, vals);
    if (i == -2)
        s->conflict = true;
    else if (i >= 0 && !s->dropped[i]) {
        s->dropped[i] = true;
        s->st.dropped++;
    }
}

/*
 * An update the read did not see, whose new row leaves a TOASTed column out (unchanged):
 * bring the chunk row up to it, the values it carries over the row's, the columns it
 * leaves out kept (the update did not change them, and the read has them). The row then
 * holds the key's whole state after the update.
 */
static void patch_row(cdc_snapshot *s, const cdc_event *ev)
{
    long i = find_row(s, ev->after);
    if (i == -2) {
        /* which row is not known: fine if every read saw the update */
        for (size_t p = 0; p < cdc_snap_rows_parts(s->rows) && !s->conflict; p++)
            s->conflict = !visible(s, p, ev->xid);
        return;
    }
    /* a new key is not in the chunk, and a row whose read saw the update has it */
    if (i < 0 || s->dropped[i] || visible(s, cdc_snap_rows_part_of(s->rows, (size_t)i), ev->xid))
        return;
    const cdc_snap_table *t = &s->tables[s->ti];
    if (s->patch == NULL && (s->patch = calloc(s->nrows, sizeof(*s->patch))) == NULL) {
        s->conflict = true; /* out of memory: read it again */
        return;
    }
    patched_row *pr = s->patch[i];
    if (pr == NULL) {
        pr = calloc(1, sizeof(*pr) + t->ncols * sizeof(pr->v[0]));
        if (pr == NULL) {
            s->conflict = true;
            return;
        }
        s->patch[i] = pr;
    }
    for (size_t c = 0; c < ev->ncols && c < t->ncols; c++) {
        const cdc_event_value *v = &ev->after[c];
        if (v->state == CDC_EVENT_UNCHANGED_TOAST)
            continue;
        char *copy = v->len ? malloc(v->len) : NULL;
        if (v->len && copy == NULL) {
            s->conflict = true;
            return;
        }
        if (v->len)
            memcpy(copy, v->data, v->len);
        free((char *)pr->v[c].data);
        pr->v[c] = (cdc_event_value){.state = v->state, .len = v->len, .data = copy};
        pr->set[c / 64] |= UINT64_C(1) << (c % 64);
    }
}

/* Whether ev describes table t as it was read: the same name and published columns. */
static bool same_shape(const cdc_snap_table *t, const cdc_event *ev)
{
    if (ev->ncols != t->ncols || strcmp(ev->schema, t->schema) != 0 ||
        strcmp(ev->table, t->table) != 0)
        return false;
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(ev->columns[c].name, t->cols[c].name) != 0 ||
            ev->columns[c].type_oid != t->cols[c].type_oid ||
            ev->columns[c].typmod != t->cols[c].typmod)
            return false;
    return true;
}

int cdc_snapshot_change(cdc_snapshot *s, const cdc_event *ev, cdc_error *err)
{
    if (s == NULL)
        return 0;
    if (s->sig_table != NULL && ev->op == CDC_EVENT_INSERT &&
        strcmp(ev->table, s->sig_table) == 0 && strcmp(ev->schema, s->sig_schema) == 0) {
        int rc = signal_row(s, ev, err);
        if (rc < 0)
            return rc;
    }
    if (s->cur_txn != NULL && s->cur_txn->xid == ev->xid) {
        s->cur_txn->rels |= relid_bit(ev->relid);
        for (size_t i = 0; ev->op == CDC_EVENT_TRUNCATE && i < ev->truncate.nrels; i++)
            s->cur_txn->rels |= relid_bit(ev->truncate.rels[i].relid);
    }
    if (s->done)
        return 0;
    if (ev->columns != s->shape_cols && ev->relid >= s->cur_relid && ev->op != CDC_EVENT_TRUNCATE) {
        /* a new relation description (one per schema change, and after each reconnect):
         * if a table still to be read changed shape or name, read its columns again, and
         * read again a chunk of it in the air (its rows have the old shape) */
        s->shape_cols = ev->columns;
        for (size_t i = 0; i < s->ntables; i++)
            if (s->tables[i].relid == ev->relid && !same_shape(&s->tables[i], ev)) {
                s->stale = true;
                if (s->rows != NULL && s->ti == i && s->ws != W_EMIT)
                    s->conflict = true;
            }
    }
    if (!s->seen_low || s->rows == NULL || s->conflict || (s->ws != W_READ && s->ws != W_WAIT_H))
        return 0;
    const cdc_snap_table *t = &s->tables[s->ti];
    if (s->pass) {
        /* the pass reads the table as its snapshot saw it; a change in the window that
         * snapshot did not see would be undone by the rows that follow: read again */
        bool touches = ev->relid == t->relid;
        for (size_t i = 0; ev->op == CDC_EVENT_TRUNCATE && i < ev->truncate.nrels; i++)
            touches |= ev->truncate.rels[i].relid == t->relid;
        if (touches && !visible(s, 0, ev->xid))
            s->conflict = true;
        return 0;
    }
    if (ev->op == CDC_EVENT_TRUNCATE) {
        for (size_t i = 0; i < ev->truncate.nrels; i++)
            if (ev->truncate.rels[i].relid == t->relid)
                for (size_t r = 0; r < s->nrows; r++)
                    s->dropped[r] = true;
        return 0;
    }
    if (ev->relid != t->relid || t->nchunk == 0)
        return 0;
    if (map_columns(s, ev) < 0) {
        s->conflict = true;
        return 0;
    }
    /* A new row with an unchanged TOAST value does not carry the whole row: a consumer that
     * never had the row cannot complete it. If the read saw the change, its row has every
     * value and stays; if not, the chunk is read again. */
    bool whole = true;
    for (size_t c = 0; ev->after && c < ev->ncols; c++)
        whole &= ev->after[c].state != CDC_EVENT_UNCHANGED_TOAST;
    bool key_changed = cdc_event_key_changed(ev);
    if (ev->after) {
        if (whole)
            drop_key(s, ev->after);
        else
            patch_row(s, ev); /* when the read did not see it */
    }
    if (ev->before && ev->before_image != CDC_EVENT_IMAGE_NONE) {
        if (ev->op == CDC_EVENT_DELETE || key_changed || whole)
            drop_key(s, ev->before); /* the old key's row is gone, or the new row is whole */
    } else if (ev->op == CDC_EVENT_DELETE) {
        s->conflict = true; /* a delete without its key: cannot tell which row */
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Handing rows over
 * ------------------------------------------------------------------------ */

bool cdc_snapshot_emitting(const cdc_snapshot *s)
{
    return s != NULL && s->ws == W_EMIT;
}

/*
 * Whether the table being read is the last with rows, so that its last row is the
 * snapshot's last (Debezium marks the last row it sends "last"): the tables after it are
 * looked at once, from the end, on the watermark session, when the first table ends. A
 * table after it that gets rows later still marks its own last row "last"; a look that
 * fails counts the table as having rows.
 */
static bool ends_snapshot(cdc_snapshot *s)
{
    if (!s->empty_known) {
        s->empty_known = true;
        s->empty_from = s->ntables;
        while (s->empty_from > s->ti + 1) {
            bool has = true;
            cdc_error e = {0};
            if ((s->marks == NULL && cdc_snapread_open(s->dsn, &s->marks, &e) < 0) ||
                cdc_snapread_has_rows(s->marks, &s->tables[s->empty_from - 1], &has, &e) < 0) {
                cdc_log_debug("snapshot: cannot tell whether a table is empty: %s", e.msg);
                has = true;
            }
            if (has)
                break;
            s->empty_from--;
        }
    }
    return s->ti + 1 >= s->empty_from;
}

/* The snapshot marker of a row: first overall, first/last of its table, last overall. */
static const char *marker(cdc_snapshot *s, bool last_of_table)
{
    if (s->only != NULL)
        return "incremental"; /* Debezium marks every row of an incremental snapshot so */
    const char *mark = "true";
    if (!s->first_row_sent)
        mark = "first";
    else if (!s->table_marked)
        mark = "first_in_data_collection";
    if (last_of_table)
        mark = ends_snapshot(s) ? "last" : "last_in_data_collection";
    s->first_row_sent = true;
    return mark;
}

/* A pass: make s->batch hold a row to hand over (fetching), keeping the next batch read
 * ahead so that the table's last row is known. 1: a row at batch_i; 0: the table is read. */
static int pass_row(cdc_snapshot *s, cdc_error *err)
{
    int rc;
    if (s->batch == NULL && (rc = cdc_snapread_fetch(s->r, PASS_BATCH, &s->batch, err)) < 0)
        return rc;
    if (s->batch_i >= cdc_snap_rows_count(s->batch)) {
        if (cdc_snap_rows_count(s->batch) < PASS_BATCH && s->next_batch == NULL)
            return 0; /* a short batch ends the cursor */
        cdc_snap_rows_free(s->batch);
        s->batch = s->next_batch;
        s->next_batch = NULL;
        s->batch_i = 0;
        if (s->batch == NULL && (rc = cdc_snapread_fetch(s->r, PASS_BATCH, &s->batch, err)) < 0)
            return rc;
        if (cdc_snap_rows_count(s->batch) == 0)
            return 0;
    }
    if (s->batch_i + 1 == cdc_snap_rows_count(s->batch) &&
        cdc_snap_rows_count(s->batch) == PASS_BATCH && s->next_batch == NULL &&
        (rc = cdc_snapread_fetch(s->r, PASS_BATCH, &s->next_batch, err)) < 0)
        return rc;
    return 1;
}

int cdc_snapshot_next(cdc_snapshot *s, cdc_event *ev, cdc_error *err)
{
    if (s->rows == NULL)
        return 0;
    const cdc_snap_table *t = &s->tables[s->ti];
    const cdc_snap_rows *from;
    size_t i;
    bool last_of_table;
    if (s->pass) {
        int rc = pass_row(s, err);
        if (rc <= 0)
            return rc;
        cdc_crashpoint("snapshot-pass-row"); /* "snapshot-pass-row:N": inside a one-pass read */
        from = s->batch;
        i = s->batch_i++;
        size_t n = cdc_snap_rows_count(s->batch);
        last_of_table = s->batch_i == n &&
                        (n < PASS_BATCH || (s->next_batch && !cdc_snap_rows_count(s->next_batch)));
    } else {
        while (s->emit_i < s->nrows && s->dropped[s->emit_i])
            s->emit_i++;
        if (s->emit_i >= s->nrows)
            return 0;
        from = s->rows;
        i = s->emit_i++;
        last_of_table = !s->more;
        for (size_t j = s->emit_i; j < s->nrows && last_of_table; j++)
            last_of_table = s->dropped[j];
    }
    for (size_t c = 0; c < t->ncols; c++)
        s->vals[c] = cdc_snap_rows_value(from, i, c);
    if (!s->pass && s->patch && s->patch[i])
        for (size_t c = 0; c < t->ncols; c++)
            if (s->patch[i]->set[c / 64] >> (c % 64) & 1)
                s->vals[c] = s->patch[i]->v[c];
    *ev = (cdc_event){
        .op = CDC_EVENT_READ,
        .commit_lsn = s->high - 1,
        .end_lsn = s->high,
        .lsn = s->high - 1,
        .ordinal = s->ordinal++,
        .commit_ts_us = s->read_us,
        .relid = t->relid,
        .schema = t->schema,
        .table = t->table,
        .replident = (cdc_event_replident)t->replident,
        .ncols = t->ncols,
        .columns = t->cols,
        .nkeys = t->nkeys,
        .keys = t->keys,
        .after = s->vals,
        .snapshot = marker(s, last_of_table),
    };
    s->table_marked = true;
    if (s->pass && (++s->table_rows & 4095) == 0)
        show_progress(s, false);
    s->st.rows++;
    return 1;
}

/*
 * The progress line on a terminal (cdc_log_status draws it only there), at most every
 * 250 ms unless forced: the table being read, its rows, rate and time to go, and the
 * tables done. Between tables it names the ones done.
 */
static void show_progress(cdc_snapshot *s, bool force)
{
    int64_t now = now_ms();
    if (!force && now - s->last_status_ms < 250)
        return;
    s->last_status_ms = now;
    /* the round's tables: every published one, or those asked for */
    size_t done = s->st.tables_done, total = s->st.tables;
    if (s->only != NULL) {
        done = 0;
        total = s->nonly;
        for (size_t k = 0; k < s->nonly; k++)
            done += s->only[k] < s->cur_relid;
    }
    const cdc_snap_table *t = s->ti < s->ntables ? &s->tables[s->ti] : NULL;
    if (t == NULL || s->table_rows == 0) {
        cdc_log_status("snapshot: %zu of %zu tables done, %llu rows", done, total,
                       (unsigned long long)s->st.rows);
        return;
    }
    double secs = (double)(now - s->table_start_ms) / 1000.0;
    double rate = secs > 0 ? (double)s->table_rows / secs : 0;
    char size[96] = "";
    if (t->est_rows > 0)
        snprintf(size, sizeof(size), " of about %lld rows (%.0f%%)", (long long)t->est_rows,
                 100.0 * (double)s->table_rows / (double)t->est_rows);
    else
        snprintf(size, sizeof(size), " rows");
    char eta[64] = "";
    if (t->est_rows > (int64_t)s->table_rows && rate > 0)
        snprintf(eta, sizeof(eta), ", about %.0f s to go",
                 (double)((uint64_t)t->est_rows - s->table_rows) / rate);
    cdc_log_status("snapshot: table %zu of %zu, \"%s.%s\": %llu%s, %.0f rows/s%s",
                   done + 1 > total ? total : done + 1, total, t->schema, t->table,
                   (unsigned long long)s->table_rows, size, rate, eta);
}

void cdc_snapshot_set_inflight(cdc_snapshot *s, size_t chunks)
{
    s->inflight = chunks ? chunks : 1;
}

void cdc_snapshot_set_threads(cdc_snapshot *s, size_t n)
{
    s->nreaders = n < 1 ? 1 : n > CDC_SNAP_MAX_READERS ? CDC_SNAP_MAX_READERS : n;
}

void cdc_snapshot_set_log_every(cdc_snapshot *s, int64_t ms)
{
    s->log_every_ms = ms > 0 ? ms : 10000;
}

static int push_pending(cdc_snapshot *s, cdc_lsn h, char *text)
{
    if (s->npend == s->cappend) {
        size_t cap = s->cappend ? s->cappend * 2 : 4;
        pending *p = realloc(s->pend, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        s->pend = p;
        s->cappend = cap;
    }
    s->pend[s->npend++] = (pending){h, text};
    return 0;
}

cdc_lsn cdc_snapshot_chunk_done(cdc_snapshot *s)
{
    cdc_lsn h = s->high;
    s->st.chunks++;
    if (s->rows == NULL) {
        /* the closing chunk: every table of the round is read */
        cdc_log_status(NULL);
        cdc_log_info("snapshot: every table read (%llu rows; %llu dropped for changes streamed "
                     "during their read)",
                     (unsigned long long)s->st.rows, (unsigned long long)s->st.dropped);
        free(s->only);
        s->only = s->then; /* tables asked for again meanwhile: the next round */
        s->nonly = s->nthen;
        s->then = NULL;
        s->nthen = 0;
        s->done = s->only == NULL;
        if (!s->done) {
            s->cur_relid = s->only[0];
            s->table_rows = 0;
            s->table_marked = false;
            s->table_start_ms = now_ms();
            cdc_log_info("snapshot: %zu table%s asked for again during the snapshot: reading "
                         "them now",
                         s->nonly, s->nonly == 1 ? "" : "s");
        }
    } else {
        const cdc_snap_table *t = &s->tables[s->ti];
        if (!s->pass)
            s->table_rows += s->nrows;
        if (s->more && !s->pass) {
            /* continue after the last row read (dropped or not) */
            free_after(s);
            s->after = calloc(t->nchunk, sizeof(*s->after));
            for (size_t k = 0; s->after && k < t->nchunk; k++) {
                cdc_event_value v = cdc_snap_rows_value(s->rows, s->nrows - 1, t->chunk[k]);
                s->after[k] = strndup(v.data ? v.data : "", v.len);
                if (s->after[k] == NULL)
                    break;
                s->nafter++;
            }
            if (s->after == NULL || s->nafter != t->nchunk) {
                /* out of memory: the table's read starts over (repeats rows, loses none) */
                free_after(s);
                s->table_rows = 0;
                s->table_marked = false;
            }
            int64_t now = now_ms();
            show_progress(s, false);
            if (now - s->last_log_ms >= s->log_every_ms) {
                double secs = (double)(now - s->table_start_ms) / 1000.0;
                double rate = secs > 0 ? (double)s->table_rows / secs : 0;
                double left = t->est_rows > (int64_t)s->table_rows
                                  ? (double)((uint64_t)t->est_rows - s->table_rows)
                                  : 0;
                cdc_log_info("snapshot: \"%s.%s\" %llu of about %lld rows, %.0f rows/s, about "
                             "%.0f s to go",
                             t->schema, t->table, (unsigned long long)s->table_rows,
                             (long long)(t->est_rows < 0 ? 0 : t->est_rows), rate,
                             rate > 0 ? left / rate : 0);
                s->last_log_ms = now;
            }
        } else {
            double secs = (double)(now_ms() - s->table_start_ms) / 1000.0;
            cdc_log_info("snapshot: \"%s.%s\" done, %llu rows in %.1f s", t->schema, t->table,
                         (unsigned long long)s->table_rows, secs);
            free_after(s);
            s->table_rows = 0;
            s->table_marked = false;
            s->st.tables_done++;
            show_progress(s, true);
            if (t->relid == UINT32_MAX)
                s->done = true;
            else
                s->cur_relid = t->relid + 1;
        }
    }
    char *text = render_progress(s);
    if (text == NULL || push_pending(s, h, text) < 0) {
        free(text); /* progress stays where it was: a crash reads more again, loses nothing */
        cdc_log_warning("out of memory recording snapshot progress");
    }
    drop_window(s);
    adopt_prefetch(s);
    if (s->done) {
        /* nothing more to read: give the server its sessions back */
        close_sessions(s);
    }
    return h;
}

const char *cdc_snapshot_progress(cdc_snapshot *s, cdc_lsn lsn)
{
    size_t k = 0;
    while (k < s->npend && s->pend[k].h <= lsn)
        k++;
    if (k > 0) {
        free(s->durable);
        s->durable = s->pend[k - 1].text;
        for (size_t i = 0; i + 1 < k; i++)
            free(s->pend[i].text);
        memmove(s->pend, s->pend + k, (s->npend - k) * sizeof(*s->pend));
        s->npend -= k;
    }
    return s->durable;
}

const char *cdc_snapshot_progress_compact(cdc_snapshot *s)
{
    const char *kn = strstr(s->durable, " known ");
    if (kn == NULL)
        return s->durable;
    free(s->progress_buf);
    s->progress_buf = strndup(s->durable, (size_t)(kn - s->durable));
    return s->progress_buf ? s->progress_buf : s->durable;
}

bool cdc_snapshot_progress_waiting(const cdc_snapshot *s, cdc_lsn lsn)
{
    return s != NULL && s->npend > 0 && s->pend[0].h <= lsn;
}

void cdc_snapshot_get_stats(const cdc_snapshot *s, cdc_snapshot_stats *ret)
{
    *ret = s->st;
}
