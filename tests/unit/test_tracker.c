/* test_tracker.c - the delivery watermark never passes an undelivered transaction */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "pgcdc/tracker.h"

static void test_in_order_watermark(void **state)
{
    (void)state;
    cdc_tracker *t = cdc_tracker_new(100);
    uint64_t a = cdc_tracker_open(t);
    cdc_tracker_add(t, a);
    cdc_tracker_add(t, a);
    cdc_tracker_close(t, a, 200);
    uint64_t b = cdc_tracker_open(t);
    cdc_tracker_add(t, b);
    cdc_tracker_close(t, b, 300);
    assert_true(cdc_tracker_watermark(t) == 100);
    assert_true(cdc_tracker_inflight(t) == 3);

    /* b delivered first: the watermark must wait for a */
    cdc_tracker_ack(t, b);
    assert_true(cdc_tracker_watermark(t) == 100);
    cdc_tracker_ack(t, a);
    assert_true(cdc_tracker_watermark(t) == 100);
    cdc_tracker_ack(t, a);
    assert_true(cdc_tracker_watermark(t) == 300);
    assert_true(cdc_tracker_idle(t));
    assert_true(cdc_tracker_inflight(t) == 0);
    cdc_tracker_free(t);
}

static void test_open_transaction_holds(void **state)
{
    (void)state;
    cdc_tracker *t = cdc_tracker_new(0);
    uint64_t a = cdc_tracker_open(t);
    cdc_tracker_add(t, a);
    cdc_tracker_ack(t, a); /* all delivered but not closed: commit not seen yet */
    assert_true(cdc_tracker_watermark(t) == 0);
    assert_false(cdc_tracker_advance_idle(t, 500)); /* a keepalive must not skip it */
    cdc_tracker_close(t, a, 50);
    assert_true(cdc_tracker_watermark(t) == 50);
    assert_true(cdc_tracker_advance_idle(t, 500));
    assert_true(cdc_tracker_watermark(t) == 500);
    assert_false(cdc_tracker_advance_idle(t, 400)); /* never backwards */
    cdc_tracker_free(t);
}

static void test_empty_transactions_and_growth(void **state)
{
    (void)state;
    cdc_tracker *t = cdc_tracker_new(0);
    uint64_t first = cdc_tracker_open(t);
    cdc_tracker_add(t, first);
    cdc_tracker_close(t, first, 10);
    /* thousands of transactions queue behind the first undelivered one */
    uint64_t seqs[5000];
    for (int i = 0; i < 5000; i++) {
        seqs[i] = cdc_tracker_open(t);
        if (i % 2)
            cdc_tracker_add(t, seqs[i]);
        cdc_tracker_close(t, seqs[i], (cdc_lsn)(20 + i));
    }
    assert_true(cdc_tracker_watermark(t) == 0);
    for (int i = 0; i < 5000; i++)
        if (i % 2)
            cdc_tracker_ack(t, seqs[i]);
    assert_true(cdc_tracker_watermark(t) == 0);
    cdc_tracker_ack(t, first);
    assert_true(cdc_tracker_watermark(t) == 20 + 4999);
    cdc_tracker_free(t);
}

static void test_random_acks_never_pass_gap(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 50; round++) {
        enum { N = 200 };
        cdc_tracker *t = cdc_tracker_new(0);
        uint64_t seq[N];
        int left[N];
        for (int i = 0; i < N; i++) {
            seq[i] = cdc_tracker_open(t);
            left[i] = rand() % 4;
            for (int k = 0; k < left[i]; k++)
                cdc_tracker_add(t, seq[i]);
            cdc_tracker_close(t, seq[i], (cdc_lsn)(i + 1) * 10);
        }
        for (int step = 0; step < N * 4; step++) {
            int i = rand() % N;
            if (left[i] > 0) {
                cdc_tracker_ack(t, seq[i]);
                left[i]--;
            }
            /* the watermark is the end of the longest fully delivered prefix */
            int prefix = 0;
            while (prefix < N && left[prefix] == 0)
                prefix++;
            assert_true(cdc_tracker_watermark(t) == (cdc_lsn)prefix * 10);
        }
        cdc_tracker_free(t);
    }
}

static void test_failed_message_pins_watermark(void **state)
{
    (void)state;
    cdc_tracker *t = cdc_tracker_new(0);
    uint64_t a = cdc_tracker_open(t);
    cdc_tracker_add(t, a);
    cdc_tracker_close(t, a, 10);
    uint64_t b = cdc_tracker_open(t);
    cdc_tracker_add(t, b);
    cdc_tracker_add(t, b);
    cdc_tracker_close(t, b, 20);
    uint64_t c = cdc_tracker_open(t);
    cdc_tracker_add(t, c);
    cdc_tracker_close(t, c, 30);
    cdc_tracker_ack(t, a);
    cdc_tracker_fail(t, b); /* refused for good */
    cdc_tracker_ack(t, b);
    cdc_tracker_ack(t, c);
    assert_true(cdc_tracker_inflight(t) == 0);   /* nothing left to wait for */
    assert_true(cdc_tracker_watermark(t) == 10); /* but never past the failed one */
    assert_false(cdc_tracker_advance_idle(t, 100));
    cdc_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_watermark),
        cmocka_unit_test(test_open_transaction_holds),
        cmocka_unit_test(test_empty_transactions_and_growth),
        cmocka_unit_test(test_random_acks_never_pass_gap),
        cmocka_unit_test(test_failed_message_pins_watermark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
