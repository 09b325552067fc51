/* Bit packing in MLX's layout: round trips, the bitstream definition, and
 * known vectors. */
#include "testutil.h"
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>

static const size_t lengths[] = {1, 2, 3, 5, 7, 8, 9, 15, 31, 32, 33, 63, 64, 65, 100, 127, 257, 1001};

/* Bit `pos` of a little-endian byte stream. */
static int stream_bit(const unsigned char *bytes, size_t pos)
{
    return (bytes[pos / 8] >> (pos % 8)) & 1;
}

static void test_words(void **state)
{
    (void)state;
    assert_int_equal(uq_pack_words(0, 4), 0);
    assert_int_equal(uq_pack_words(1, 1), 1);
    assert_int_equal(uq_pack_words(32, 1), 1);
    assert_int_equal(uq_pack_words(33, 1), 2);
    assert_int_equal(uq_pack_words(8, 3), 1);  /* 24 bits */
    assert_int_equal(uq_pack_words(11, 3), 2); /* 33 bits */
    assert_int_equal(uq_pack_words(32, 3), 3);
    assert_int_equal(uq_pack_words(64, 5), 10);
    assert_int_equal(uq_pack_words(4096, 4), 512);
    assert_int_equal(uq_pack_words(172, 6), 33); /* 1032 bits */
}

static void test_round_trip_all_widths(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    for (int bits = 1; bits <= 8; bits++) {
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            size_t n = lengths[li];
            size_t nw = uq_pack_words(n, bits);
            uint8_t *codes = malloc(n), *back = malloc(n), *back2 = malloc(n);
            /* one guard word on each side, and an odd offset for alignment */
            unsigned char *buf = malloc(4 * nw + 9), *buf2 = malloc(4 * nw + 9);
            assert_non_null(codes);
            assert_non_null(back);
            assert_non_null(back2);
            assert_non_null(buf);
            assert_non_null(buf2);
            for (size_t k = 0; k < n; k++) codes[k] = (uint8_t)(tu_rand_u64(&rng) & ((1u << bits) - 1));
            memset(buf, 0xA5, 4 * nw + 9);
            memset(buf2, 0x5A, 4 * nw + 9);
            unsigned char *dst = buf + 5, *dst2 = buf2 + 5;
            uq_pack_row(codes, n, bits, dst);
            uq_pack_row_generic(codes, n, bits, dst2);

            /* exactly nw words written */
            for (int i = 0; i < 5; i++) assert_int_equal(buf[i], 0xA5);
            for (int i = 0; i < 4; i++) assert_int_equal(dst[4 * nw + (size_t)i], 0xA5);
            /* fast and bit-serial paths give the same bytes */
            assert_memory_equal(dst, dst2, 4 * nw);
            /* the definition: bit j of code k is bit k*bits + j of the stream */
            for (size_t k = 0; k < n; k++)
                for (int j = 0; j < bits; j++)
                    assert_int_equal(stream_bit(dst, k * (size_t)bits + (size_t)j),
                                     (codes[k] >> j) & 1);
            /* tail bits zero */
            for (size_t pos = n * (size_t)bits; pos < 32 * nw; pos++)
                assert_int_equal(stream_bit(dst, pos), 0);

            uq_unpack_row(dst, n, bits, back);
            uq_unpack_row_generic(dst, n, bits, back2);
            assert_memory_equal(back, codes, n);
            assert_memory_equal(back2, codes, n);
            for (size_t k = 0; k < n; k++) assert_int_equal(uq_unpack_at(dst, k, bits), codes[k]);
            free(codes);
            free(back);
            free(back2);
            free(buf);
            free(buf2);
        }
    }
}

static void check_bytes(const uint8_t *codes, size_t n, int bits, const unsigned char *want,
                        size_t want_len)
{
    unsigned char out[64];
    memset(out, 0xEE, sizeof out);
    size_t nw = uq_pack_words(n, bits);
    assert_int_equal(4 * nw, want_len);
    uq_pack_row(codes, n, bits, out);
    assert_memory_equal(out, want, want_len);
    memset(out, 0xEE, sizeof out);
    uq_pack_row_generic(codes, n, bits, out);
    assert_memory_equal(out, want, want_len);
}

static void test_known_vectors(void **state)
{
    (void)state;
    /* 3 bits: 8 values fill exactly 3 bytes; 0..7 -> 0xFAC688 */
    static const uint8_t c3[] = {0, 1, 2, 3, 4, 5, 6, 7};
    static const unsigned char w3[] = {0x88, 0xC6, 0xFA, 0x00};
    check_bytes(c3, 8, 3, w3, sizeof w3);

    /* 4 bits: element i of a word at shift 4i */
    static const uint8_t c4[] = {1, 2, 3, 4, 5, 6, 7, 8, 0xF};
    static const unsigned char w4[] = {0x21, 0x43, 0x65, 0x87, 0x0F, 0, 0, 0};
    check_bytes(c4, 9, 4, w4, sizeof w4);

    /* 2 bits */
    static const uint8_t c2[] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    static const unsigned char w2[] = {0xE4, 0xE4, 0xE4, 0xE4};
    check_bytes(c2, 16, 2, w2, sizeof w2);

    /* 8 bits: plain bytes */
    static const uint8_t c8[] = {0x11, 0x22, 0x33, 0x44, 0x55};
    static const unsigned char w8[] = {0x11, 0x22, 0x33, 0x44, 0x55, 0, 0, 0};
    check_bytes(c8, 5, 8, w8, sizeof w8);

    /* 5 bits: 8 values = 5 bytes */
    static const uint8_t c5[] = {31, 0, 31, 0, 31, 0, 31, 0};
    static const unsigned char w5[] = {0x1F, 0x7C, 0xF0, 0xC1, 0x07, 0, 0, 0};
    check_bytes(c5, 8, 5, w5, sizeof w5);

    /* 6 bits: 4 values = 3 bytes; 1 | 2<<6 | 3<<12 | 4<<18 = 0x103081 */
    static const uint8_t c6[] = {1, 2, 3, 4};
    static const unsigned char w6[] = {0x81, 0x30, 0x10, 0x00};
    check_bytes(c6, 4, 6, w6, sizeof w6);

    /* 1 bit */
    uint8_t c1[32];
    for (int i = 0; i < 32; i++) c1[i] = (uint8_t)(i % 2 == 0);
    static const unsigned char w1[] = {0x55, 0x55, 0x55, 0x55};
    check_bytes(c1, 32, 1, w1, sizeof w1);

    /* 7 bits, straddling a word: code 4 covers bits 28..34 */
    static const uint8_t c7[] = {127, 1, 0, 0, 0x7F};
    static const unsigned char w7[] = {0xFF, 0x00, 0x00, 0xF0, 0x07, 0, 0, 0};
    check_bytes(c7, 5, 7, w7, sizeof w7);
}

static void test_codes_are_masked(void **state)
{
    (void)state;
    for (int bits = 1; bits <= 7; bits++) {
        uint8_t codes[40], masked[40], back[40];
        unsigned char a[40], b[40];
        for (int i = 0; i < 40; i++) {
            codes[i] = (uint8_t)(0xF0 | i);
            masked[i] = (uint8_t)(codes[i] & ((1u << bits) - 1));
        }
        size_t nw = uq_pack_words(40, bits);
        uq_pack_row(codes, 40, bits, a);
        uq_pack_row(masked, 40, bits, b);
        assert_memory_equal(a, b, 4 * nw);
        uq_pack_row_generic(codes, 40, bits, a);
        assert_memory_equal(a, b, 4 * nw);
        uq_unpack_row(a, 40, bits, back);
        assert_memory_equal(back, masked, 40);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_round_trip_all_widths),
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_codes_are_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
