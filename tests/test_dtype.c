/* f16 / bf16 <-> f32 conversions over all 65,536 values of each, plus the
 * rounding of every midpoint between neighbours (round to nearest even). */
#include "testutil.h"

#include <math.h>
#include <string.h>

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

typedef float (*to_f32_fn)(uint16_t);
typedef uint16_t (*from_f32_fn)(float);

/* For every finite non-negative 16-bit value h and its successor: the exact
 * midpoint rounds to the even one of the two, and one f32 ulp to either side
 * rounds to the nearer. Negative values mirror through the sign bit. */
static void check_all(to_f32_fn to, from_f32_fn from, uint16_t inf_bits)
{
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = to(h);
        int is_nan = (h & 0x7fff) > inf_bits;
        if (is_nan) {
            assert_true(isnan(f));
            assert_true((from(f) & 0x7fff) > inf_bits); /* NaN stays NaN */
            continue;
        }
        assert_int_equal(from(f), h); /* exact round trip, also -0, subnormals, Inf */
        assert_int_equal(signbit(f) != 0, (h & 0x8000) != 0);
    }
    for (uint32_t i = 0; i < inf_bits; i++) {
        for (int neg = 0; neg < 2; neg++) {
            uint16_t lo = (uint16_t)(i | (neg ? 0x8000 : 0)), hi = (uint16_t)((i + 1) | (neg ? 0x8000 : 0));
            double a = to(lo), b = to(hi);
            if (isinf(b)) {
                /* above the largest finite value: the midpoint to "next" rounds to Inf */
                double ulp = fabs(a - (double)to((uint16_t)(lo - 1)));
                float mid = (float)(a + (neg ? -ulp / 2 : ulp / 2));
                assert_int_equal(from(mid), hi);
                assert_int_equal(from(from_bits(bits(mid) - 1)), lo);
                continue;
            }
            float mid = (float)((a + b) / 2); /* exact: needs one bit more than 16-bit formats have */
            assert_true((double)mid == (a + b) / 2);
            uint16_t even = (lo & 1) ? hi : lo;
            assert_int_equal(from(mid), even);
            /* one f32 ulp towards lo / hi */
            float toward_lo = from_bits(fabs(a) < fabs(b) ? bits(mid) - 1 : bits(mid) + 1);
            float toward_hi = from_bits(fabs(a) < fabs(b) ? bits(mid) + 1 : bits(mid) - 1);
            if (mid != 0) {
                assert_int_equal(from(toward_lo), lo);
                assert_int_equal(from(toward_hi), hi);
            }
        }
    }
}

static void test_f16_all(void **state)
{
    (void)state;
    check_all(uq_f16_to_f32, uq_f32_to_f16, 0x7c00);
    /* known values */
    assert_true(uq_f16_to_f32(0x3c00) == 1.0f);
    assert_true(uq_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(uq_f16_to_f32(0x0001) == 0x1p-24f);
    assert_int_equal(uq_f32_to_f16(65520.0f), 0x7c00);      /* rounds up to Inf */
    assert_int_equal(uq_f32_to_f16(65519.996f), 0x7bff);
    assert_int_equal(uq_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(uq_f32_to_f16(-1e-30f), 0x8000);
    assert_int_equal(uq_f32_to_f16(0x1p-25f), 0x0000);       /* tie to even: 0 */
    assert_int_equal(uq_f32_to_f16(0x1.8p-24f), 0x0002);     /* 1.5 ulp: tie to even 2 */
    assert_int_equal(uq_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(uq_f32_to_f16(-INFINITY), 0xfc00);
    assert_true((uq_f32_to_f16(NAN) & 0x7fff) > 0x7c00);
    assert_int_equal(uq_f32_to_f16(1e10f), 0x7c00);
}

static void test_bf16_all(void **state)
{
    (void)state;
    check_all(uq_bf16_to_f32, uq_f32_to_bf16, 0x7f80);
    assert_int_equal(uq_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(uq_f32_to_bf16(3.4028235e38f), 0x7f80); /* FLT_MAX rounds to Inf */
    assert_true((uq_f32_to_bf16(NAN) & 0x7fff) > 0x7f80);
    /* a NaN whose payload sits only in the low bits must not become Inf */
    assert_true((uq_f32_to_bf16(from_bits(0x7f800001u)) & 0x7fff) > 0x7f80);
    assert_int_equal(uq_f32_to_bf16(from_bits(0x00000001u)), 0x0000);
}

static void test_bulk(void **state)
{
    (void)state;
    float src[7] = {0.5f, -1.25f, 3.0f, 1e-3f, -0.0f, 65504.0f, 2.0f};
    unsigned char buf[1 + 7 * 4];
    float back[7];
    /* deliberately unaligned destination and source */
    assert_int_equal(uq_from_f32(UQ_BF16, src, buf + 1, 7), UQ_OK);
    assert_int_equal(uq_to_f32(UQ_BF16, buf + 1, back, 7), UQ_OK);
    for (int i = 0; i < 7; i++) assert_true(back[i] == uq_bf16_to_f32(uq_f32_to_bf16(src[i])));
    assert_int_equal(uq_from_f32(UQ_F16, src, buf + 1, 7), UQ_OK);
    assert_int_equal(uq_to_f32(UQ_F16, buf + 1, back, 7), UQ_OK);
    for (int i = 0; i < 7; i++) assert_true(back[i] == src[i] || i == 3);
    assert_int_equal(uq_from_f32(UQ_F32, src, buf + 1, 7), UQ_OK);
    assert_int_equal(uq_to_f32(UQ_F32, buf + 1, back, 7), UQ_OK);
    assert_memory_equal(back, src, sizeof src);
    assert_int_equal(uq_to_f32(UQ_I32, buf, back, 1), UQ_ERR_DTYPE);
    assert_int_equal(uq_from_f32(UQ_U8, src, buf, 1), UQ_ERR_DTYPE);
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < UQ_DTYPE_COUNT; i++) {
        uq_dtype t;
        assert_int_equal(uq_dtype_parse(uq_dtype_name((uq_dtype)i), &t), UQ_OK);
        assert_int_equal(t, i);
    }
    uq_dtype t;
    assert_int_equal(uq_dtype_parse("F128", &t), UQ_ERR_DTYPE);
    for (int s = 0; s < UQ_STATUS_COUNT; s++) {
        assert_non_null(uq_status_name((uq_status)s));
        assert_true(strncmp(uq_status_name((uq_status)s), "UQ_", 3) == 0);
        assert_true(strlen(uq_status_string((uq_status)s)) > 0);
    }
    assert_string_equal(uq_status_name(UQ_STATUS_COUNT), "UQ_ERR_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_all),
        cmocka_unit_test(test_bf16_all),
        cmocka_unit_test(test_bulk),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
