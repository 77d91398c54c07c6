/* test_kafka.c - Java-compatible murmur2 partitioning and producer configuration defaults */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pgcdc/kafka.h"

/* Java: Utils.toPositive(Utils.murmur2(bytes)), values from Kafka's UtilsTest. */
static int32_t java_positive(int32_t murmur)
{
    return murmur & 0x7fffffff;
}

static void test_murmur2_matches_java(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int32_t java;
    } v[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        int32_t want = java_positive(v[i].java);
        assert_int_equal(cdc_kafka_murmur2_partition(v[i].key, strlen(v[i].key), INT32_MAX),
                         want % INT32_MAX);
        assert_int_equal(cdc_kafka_murmur2_partition(v[i].key, strlen(v[i].key), 12), want % 12);
    }
    assert_int_equal(cdc_kafka_murmur2_partition("x", 1, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_matches_java),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
