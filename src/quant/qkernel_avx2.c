/* The AVX2 kernels, chosen at run time on CPUs that have AVX2:
 * qkernel_simd.h over 8-lane vectors, compiled for AVX2 function by function
 * (target attribute), so the library itself needs no -m flag. No FMA, and
 * nothing is contracted into one: each product and sum rounds on its own, as
 * in the portable kernels. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant/qkernel.h"

#ifdef UQ_QK_X86

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define KATTR __attribute__((target("avx2")))

KATTR static inline float hmin_avx2(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_min_ss(m, _mm_shuffle_ps(m, m, 1)));
}

KATTR static inline float hmax_avx2(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

/* Packs work within 128-bit halves; the permutation puts the dwords back in
 * element order. */
KATTR static inline void st_codes_avx2(uint8_t *p, __m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i v = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)p, v);
}

KATTR static inline void st_bits_avx2(uint8_t *p, __m256i x)
{
    uint32_t m = (uint32_t)_mm256_movemask_epi8(_mm256_slli_epi16(x, 7));
    memcpy(p, &m, 4);
}

/* 4 bits: dwords 0, 2, 4, 6 hold the four lanes' bytes; 2 bits: bytes 0-1
 * and 8-9 of each half, gathered into dword 0 of each half first. */
KATTR static inline __attribute__((always_inline)) void st_folded_avx2(uint8_t *p, __m256i x,
                                                                         int b)
{
    if (b == 4) {
        __m256i v = _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
        _mm_storeu_si128((__m128i *)(void *)p, _mm256_castsi256_si128(v));
    } else if (b == 2) {
        const __m256i g = _mm256_setr_epi8(0, 1, 8, 9, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           -1, -1, 0, 1, 8, 9, -1, -1, -1, -1, -1, -1, -1, -1,
                                           -1, -1, -1, -1);
        __m256i v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(x, g),
                                                _mm256_setr_epi32(0, 4, 1, 2, 3, 5, 6, 7));
        _mm_storel_epi64((__m128i *)(void *)p, _mm256_castsi256_si128(v));
    } else {
        uint64_t l0 = (uint64_t)_mm256_extract_epi64(x, 0);
        uint64_t l1 = (uint64_t)_mm256_extract_epi64(x, 1);
        uint64_t l2 = (uint64_t)_mm256_extract_epi64(x, 2);
        uint64_t l3 = (uint64_t)_mm256_extract_epi64(x, 3);
        memcpy(p, &l0, (size_t)b);
        memcpy(p + b, &l1, (size_t)b);
        memcpy(p + 2 * b, &l2, (size_t)b);
        memcpy(p + 3 * b, &l3, (size_t)b);
    }
}

#define KN(name) name##_avx2
#define VW 8
#define VF __m256
#define VI __m256i
#define vf_set1 _mm256_set1_ps
#define vf_zero _mm256_setzero_ps
#define vf_loadu(p) _mm256_loadu_ps((const float *)(const void *)(p))
#define vf_storeu(p, v) _mm256_storeu_ps((p), (v))
#define vf_max _mm256_max_ps
#define vf_min _mm256_min_ps
#define vf_add _mm256_add_ps
#define vf_sub _mm256_sub_ps
#define vf_mul _mm256_mul_ps
#define vf_div _mm256_div_ps
#define vf_and _mm256_and_ps
#define vf_or _mm256_or_ps
#define vf_xor _mm256_xor_ps
#define vf_andnot _mm256_andnot_ps
#define vf_lt(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define vf_gt(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define vf_neq(a, b) _mm256_cmp_ps((a), (b), _CMP_NEQ_UQ)
#define vf_unord(a) _mm256_cmp_ps((a), (a), _CMP_UNORD_Q)
#define vf_ord(a) _mm256_cmp_ps((a), (a), _CMP_ORD_Q)
#define vf_sel(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define vf_any(m) (_mm256_movemask_ps(m) != 0)
#define vf_all(m) (_mm256_movemask_ps(m) == 0xff)
#define vf_hmin hmin_avx2
#define vf_hmax hmax_avx2
#define vf_round _mm256_cvtps_epi32
#define vf_as_i _mm256_castps_si256
#define vi_as_f _mm256_castsi256_ps
#define vi_to_f _mm256_cvtepi32_ps
#define vi_loadu(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define vi_storeu(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))
#define vi8_set1 _mm256_set1_epi8
#define vi16_set1 _mm256_set1_epi16
#define vi_set1 _mm256_set1_epi32
#define vi64_set1(x) _mm256_set1_epi64x((long long)(x))
#define vi_add _mm256_add_epi32
#define vi_sub _mm256_sub_epi32
#define vi_and _mm256_and_si256
#define vi_or _mm256_or_si256
#define vi_cmpeq _mm256_cmpeq_epi32
#define vi_sel(m, a, b) _mm256_blendv_epi8((b), (a), (m))
#define vi16_slli _mm256_slli_epi16
#define vi16_srli _mm256_srli_epi16
#define vi_slli _mm256_slli_epi32
#define vi_srli _mm256_srli_epi32
#define vi64_slli _mm256_slli_epi64
#define vi64_srli _mm256_srli_epi64
#define ld_u16(p) _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define ld_bf16(p) _mm256_castsi256_ps(_mm256_slli_epi32(ld_u16(p), 16))
#define ld_u8(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p)))
#define st_codes st_codes_avx2
#define st_bits st_bits_avx2
#define st_folded st_folded_avx2

#include "quant/qkernel_simd.h"

#else
/* Not x86-64: the portable kernels only. */
typedef int uq_qkernel_avx2_unused;
#endif
