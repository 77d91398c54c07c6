/* fuzz_pgoutput.c - libFuzzer target: a sequence of pgoutput messages through one decoder */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgcdc/buf.h"
#include "pgcdc/error.h"
#include "pgcdc/event.h"
#include "pgcdc/pgoutput.h"

/*
 * Input: records of a 2-byte big-endian length followed by that many payload
 * bytes (the last record takes what is left when the length overshoots).
 * Each payload is one XLogData message fed to the same decoder, so the
 * relation and type caches and the transaction state carry over from one
 * message to the next; record i has WAL start 0/1000000 + 0x100 * i. Errors
 * are expected and do not stop the sequence.
 *
 * Besides memory safety (ASan, UBSan) the target checks the decoder's
 * contract and aborts when it is broken:
 * - a protocol error sets err and makes no callback;
 * - ordinals count 0, 1, 2, ... inside each transaction and a Commit reports
 *   the number of events; non-transactional messages have ordinal 0;
 * - every event renders as exactly one line of well-formed UTF-8 JSON.
 *
 * tests/fuzz/seed-corpus.py writes this format from the captured fixtures.
 * Run (a scratch directory first, so new inputs stay out of the repository):
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *       -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
 *   ninja -C build-fuzz tests/fuzz/fuzz_pgoutput
 *   mkdir -p /tmp/fz && build-fuzz/tests/fuzz/fuzz_pgoutput -runs=1000000 \
 *       -dict=tests/fuzz/pgoutput.dict /tmp/fz tests/fuzz/corpus/pgoutput
 *
 * A crash input goes into tests/fuzz/corpus/pgoutput/regress-<what>.bin once
 * fixed; the unit test "pgoutput_corpus" replays the corpus with any compiler.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_ctx {
    cdc_buf line;     /* scratch for rendering */
    uint64_t ordinal; /* next expected ordinal in the transaction */
    int callbacks;    /* callbacks during the current feed */
} fuzz_ctx;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_pgoutput: check failed: %s (%s:%d)\n", #cond, __FILE__,          \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_line(const cdc_buf *b)
{
    CHECK(b->len > 2 && b->data[0] == '{' && b->data[b->len - 1] == '\n');
    CHECK(memchr(b->data, '\n', b->len - 1) == NULL);
    CHECK(cdc_utf8_valid(b->data, b->len));
}

static int on_begin(const cdc_event_txn *txn, void *arg)
{
    fuzz_ctx *c = arg;
    c->callbacks++;
    CHECK(txn->nevents == 0 && txn->end_lsn == CDC_INVALID_LSN);
    c->ordinal = 0;
    return 0;
}

static int on_event(const cdc_event *ev, void *arg)
{
    fuzz_ctx *c = arg;
    c->callbacks++;
    if (ev->op == CDC_EVENT_MESSAGE && !ev->message.transactional)
        CHECK(ev->ordinal == 0 && ev->xid == 0);
    else
        CHECK(ev->ordinal == c->ordinal++);
    (void)cdc_event_key_changed(ev);
    cdc_buf_reset(&c->line);
    CHECK(cdc_event_to_json_line(ev, &c->line) == 0);
    check_line(&c->line);
    return 0;
}

static int on_commit(const cdc_event_txn *txn, void *arg)
{
    fuzz_ctx *c = arg;
    c->callbacks++;
    CHECK(txn->nevents == c->ordinal);
    CHECK(txn->end_lsn > txn->commit_lsn);
    cdc_buf_reset(&c->line);
    CHECK(cdc_event_txn_to_json_line(txn, "commit", &c->line) == 0);
    check_line(&c->line);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ctx c = {CDC_BUF_INIT, 0, 0};
    cdc_pgo_handler h = {on_begin, on_event, on_commit, &c};
    cdc_pgo_decoder *dec = NULL;
    size_t pos = 0;
    cdc_lsn lsn = 0x1000000;

    if (cdc_pgo_decoder_new(&h, &dec, NULL) < 0)
        abort();
    while (pos + 2 <= size) {
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        /* a copy of exactly len bytes, so reading past the message is caught */
        uint8_t *msg = malloc(len ? len : 1);
        if (msg == NULL)
            abort();
        memcpy(msg, data + pos, len);
        pos += len;

        cdc_error err = {0};
        c.callbacks = 0;
        int rc = cdc_pgo_decoder_feed(dec, msg, len, lsn, &err);
        free(msg);
        lsn += 0x100;
        if (rc < 0) {
            CHECK(err.code == rc && err.msg[0] != '\0');
            if (rc == CDC_EPROTO)
                CHECK(c.callbacks == 0);
        } else {
            CHECK(rc == 0 && err.code == 0);
        }
        const cdc_event_txn *txn = cdc_pgo_decoder_txn(dec);
        if (txn)
            CHECK(txn->nevents == c.ordinal);
    }
    cdc_pgo_decoder_free(dec);
    cdc_buf_free(&c.line);
    return 0;
}
