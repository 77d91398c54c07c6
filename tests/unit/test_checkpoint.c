/* test_checkpoint.c - checkpoint store: round trip, atomic replace, corruption and I/O errors */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcdc/checkpoint.h"

static char dir[] = "/tmp/pgcdc-test-ckpt-XXXXXX";
static char path[300];

static cdc_checkpoint sample(cdc_lsn lsn)
{
    cdc_checkpoint c = {.version = CDC_CKPT_FORMAT_VERSION,
                        .system_id = 7312345678901234567ULL,
                        .timeline = 1,
                        .lsn = lsn,
                        .written_at_ms = 1700000000123};
    strcpy(c.database, "shop");
    strcpy(c.slot, "pgcdc_slot");
    return c;
}

static void test_missing_is_notfound(void **state)
{
    (void)state;
    cdc_checkpoint c = sample(1);
    cdc_error err = {0};
    assert_int_equal(cdc_ckpt_read(path, &c, &err), CDC_ENOTFOUND);
    assert_true(c.lsn == 1);
}

static void test_round_trip_and_replace(void **state)
{
    (void)state;
    cdc_error err = {0};
    cdc_checkpoint w = sample(0x16B3748ULL), r;
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), 0);
    assert_true(r.lsn == w.lsn);
    assert_true(r.system_id == w.system_id);
    assert_string_equal(r.database, "shop");
    assert_string_equal(r.slot, "pgcdc_slot");
    assert_true(r.written_at_ms == w.written_at_ms);

    w.lsn = 0xFFFFFFFF00000010ULL;
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), 0);
    assert_true(r.lsn == 0xFFFFFFFF00000010ULL);
    /* no temporary file is left behind */
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);
}

static void test_stopped_cleanly_round_trip(void **state)
{
    (void)state;
    cdc_error err = {0};
    cdc_checkpoint w = sample(0x2000), r;
    w.stopped_cleanly = true;
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), 0);
    assert_true(r.stopped_cleanly);
    w.stopped_cleanly = false;
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), 0);
    assert_false(r.stopped_cleanly);
}

static uint32_t crc32_of(const char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n--) {
        crc ^= (unsigned char)*p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* A file written by a pgcdc before format 2 (no stopped_cleanly line) still reads, as a run
 * that did not stop cleanly; a version-2 file without the line is corrupt. */
static void test_version_1_reads_as_not_stopped_cleanly(void **state)
{
    (void)state;
    const char *bodies[] = {"pgcdc-checkpoint 1\nsystem_identifier = 7\ntimeline = 1\n"
                            "database = shop\nslot = s\nlsn = 0/3000\nwritten_at_ms = 5\n",
                            "pgcdc-checkpoint 2\nsystem_identifier = 7\ntimeline = 1\n"
                            "database = shop\nslot = s\nlsn = 0/3000\nwritten_at_ms = 5\n"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "%scrc32 = %08x\n", bodies[i], crc32_of(bodies[i], strlen(bodies[i])));
        fclose(f);
        cdc_error err = {0};
        cdc_checkpoint r = {0};
        r.stopped_cleanly = true;
        int rc = cdc_ckpt_read(path, &r, &err);
        if (i == 0) {
            assert_int_equal(rc, 0);
            assert_true(r.lsn == 0x3000);
            assert_false(r.stopped_cleanly);
        } else {
            assert_int_equal(rc, CDC_EPROTO);
        }
    }
}

/* Format 3 carries the snapshot's progress; a checkpoint without it (formats 1 and 2, or a
 * run that took none) reads as "" and writes no line. */
static void test_snapshot_progress_round_trip(void **state)
{
    (void)state;
    cdc_error err = {0};
    cdc_checkpoint w = sample(0x2000), r;
    strcpy(w.snapshot, "running 16385 3432,6b");
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), 0);
    assert_string_equal(r.snapshot, "running 16385 3432,6b");
    w.snapshot[0] = '\0';
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    FILE *f = fopen(path, "r");
    char text[1024] = {0};
    assert_non_null(f);
    assert_true(fread(text, 1, sizeof(text) - 1, f) > 0);
    fclose(f);
    assert_null(strstr(text, "snapshot"));
    strcpy(r.snapshot, "stale");
    assert_int_equal(cdc_ckpt_read(path, &r, &err), 0);
    assert_string_equal(r.snapshot, "");

    /* a snapshot line in a format 2 file is not a format 2 file */
    const char *v2 = "pgcdc-checkpoint 2\nsystem_identifier = 7\ntimeline = 1\n"
                     "database = shop\nslot = s\nlsn = 0/3000\nwritten_at_ms = 5\n"
                     "stopped_cleanly = 1\nsnapshot = done\n";
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%scrc32 = %08x\n", v2, crc32_of(v2, strlen(v2)));
    fclose(f);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), CDC_EPROTO);
}

static void test_corruption_detected(void **state)
{
    (void)state;
    cdc_error err = {0};
    cdc_checkpoint w = sample(0x1000), r;
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf), f);
    char *lsn = strstr(buf, "lsn = 0/1000");
    assert_non_null(lsn);
    lsn[8] = '2'; /* 0/1000 -> 0/2000: a silent change the checksum must catch */
    rewind(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), CDC_EPROTO);
    assert_non_null(strstr(err.msg, "corrupt"));

    /* a truncated file */
    cdc_err_clear(&err);
    assert_int_equal(truncate(path, 20), 0);
    assert_int_equal(cdc_ckpt_read(path, &r, &err), CDC_EPROTO);
}

static void test_unwritable_dir_keeps_old(void **state)
{
    (void)state;
    if (geteuid() == 0) {
        /* root ignores directory permissions; use a path whose parent is a file instead */
        cdc_error err = {0};
        cdc_checkpoint w = sample(5);
        char bad[400];
        snprintf(bad, sizeof(bad), "%s/ckpt/inside", path);
        assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
        assert_int_equal(cdc_ckpt_write(bad, &w, &err), CDC_EIO);
        assert_non_null(strstr(err.msg, "cannot create checkpoint file"));
        return;
    }
    cdc_error err = {0};
    cdc_checkpoint w = sample(5), r;
    assert_int_equal(cdc_ckpt_write(path, &w, &err), 0);
    chmod(dir, 0500);
    w.lsn = 6;
    assert_int_equal(cdc_ckpt_write(path, &w, &err), CDC_EIO);
    chmod(dir, 0700);
    assert_int_equal(cdc_ckpt_read(path, &r, NULL), 0);
    assert_true(r.lsn == 5);
}

static int setup_dir(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/pgcdc.checkpoint", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_is_notfound),
        cmocka_unit_test(test_round_trip_and_replace),
        cmocka_unit_test(test_stopped_cleanly_round_trip),
        cmocka_unit_test(test_version_1_reads_as_not_stopped_cleanly),
        cmocka_unit_test(test_snapshot_progress_round_trip),
        cmocka_unit_test(test_corruption_detected),
        cmocka_unit_test(test_unwritable_dir_keeps_old),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
