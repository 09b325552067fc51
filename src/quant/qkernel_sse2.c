/* The SSE2 kernels (every x86-64 CPU): qkernel_simd.h over 4-lane vectors.
 * No FMA, and nothing is contracted into one: each product and sum rounds on
 * its own, as in the portable kernels. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "quant/qkernel.h"

#ifdef UQ_QK_X86

#include <emmintrin.h>
#include <math.h>
#include <string.h>

static inline float hmin_sse2(__m128 v)
{
    v = _mm_min_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_min_ss(v, _mm_shuffle_ps(v, v, 1)));
}

static inline float hmax_sse2(__m128 v)
{
    v = _mm_max_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_max_ss(v, _mm_shuffle_ps(v, v, 1)));
}

static inline __m128i ld_u8_sse2(const uint8_t *p)
{
    int32_t x;
    memcpy(&x, p, 4);
    __m128i z = _mm_setzero_si128();
    return _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(x), z), z);
}

static inline void st_codes_sse2(uint8_t *p, __m128i a, __m128i b, __m128i c, __m128i d)
{
    __m128i v = _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d));
    _mm_storeu_si128((__m128i *)(void *)p, v);
}

static inline void st_bits_sse2(uint8_t *p, __m128i x)
{
    uint16_t m = (uint16_t)_mm_movemask_epi8(_mm_slli_epi16(x, 7));
    memcpy(p, &m, 2);
}

/* 4 bits: dwords 0 and 2 hold the two lanes' bytes; 2 bits: words 0 and 4. */
static inline __attribute__((always_inline)) void st_folded_sse2(uint8_t *p, __m128i x, int b)
{
    if (b == 4) {
        _mm_storel_epi64((__m128i *)(void *)p, _mm_shuffle_epi32(x, _MM_SHUFFLE(3, 1, 2, 0)));
    } else if (b == 2) {
        __m128i v = _mm_shufflelo_epi16(_mm_shuffle_epi32(x, _MM_SHUFFLE(3, 1, 2, 0)),
                                        _MM_SHUFFLE(3, 1, 2, 0));
        int32_t w = _mm_cvtsi128_si32(v);
        memcpy(p, &w, 4);
    } else {
        uint64_t lo = (uint64_t)_mm_cvtsi128_si64(x);
        uint64_t hi = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(x, x));
        memcpy(p, &lo, (size_t)b);
        memcpy(p + b, &hi, (size_t)b);
    }
}

#define KN(name) name##_sse2
#define KATTR
#define VW 4
#define VF __m128
#define VI __m128i
#define vf_set1 _mm_set1_ps
#define vf_zero _mm_setzero_ps
#define vf_loadu(p) _mm_loadu_ps((const float *)(const void *)(p))
#define vf_storeu(p, v) _mm_storeu_ps((p), (v))
#define vf_max _mm_max_ps
#define vf_min _mm_min_ps
#define vf_add _mm_add_ps
#define vf_sub _mm_sub_ps
#define vf_mul _mm_mul_ps
#define vf_div _mm_div_ps
#define vf_and _mm_and_ps
#define vf_or _mm_or_ps
#define vf_xor _mm_xor_ps
#define vf_andnot _mm_andnot_ps
#define vf_lt _mm_cmplt_ps
#define vf_gt _mm_cmpgt_ps
#define vf_neq _mm_cmpneq_ps
#define vf_unord(a) _mm_cmpunord_ps((a), (a))
#define vf_ord(a) _mm_cmpord_ps((a), (a))
#define vf_sel(m, a, b) _mm_or_ps(_mm_and_ps((m), (a)), _mm_andnot_ps((m), (b)))
#define vf_any(m) (_mm_movemask_ps(m) != 0)
#define vf_all(m) (_mm_movemask_ps(m) == 0xf)
#define vf_hmin hmin_sse2
#define vf_hmax hmax_sse2
#define vf_round _mm_cvtps_epi32
#define vf_as_i _mm_castps_si128
#define vi_as_f _mm_castsi128_ps
#define vi_to_f _mm_cvtepi32_ps
#define vi_loadu(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define vi_storeu(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))
#define vi8_set1 _mm_set1_epi8
#define vi16_set1 _mm_set1_epi16
#define vi_set1 _mm_set1_epi32
#define vi64_set1(x) _mm_set1_epi64x((long long)(x))
#define vi_add _mm_add_epi32
#define vi_sub _mm_sub_epi32
#define vi_and _mm_and_si128
#define vi_or _mm_or_si128
#define vi_cmpeq _mm_cmpeq_epi32
#define vi_sel(m, a, b) _mm_or_si128(_mm_and_si128((m), (a)), _mm_andnot_si128((m), (b)))
#define vi16_slli _mm_slli_epi16
#define vi16_srli _mm_srli_epi16
#define vi_slli _mm_slli_epi32
#define vi_srli _mm_srli_epi32
#define vi64_slli _mm_slli_epi64
#define vi64_srli _mm_srli_epi64
#define ld_u16(p) \
    _mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(p)), _mm_setzero_si128())
#define ld_bf16(p)                                            \
    _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), \
                                        _mm_loadl_epi64((const __m128i *)(const void *)(p))))
#define ld_u8 ld_u8_sse2
#define st_codes st_codes_sse2
#define st_bits st_bits_sse2
#define st_folded st_folded_sse2

#include "quant/qkernel_simd.h"

#else
/* Not x86-64: the portable kernels only. */
typedef int uq_qkernel_sse2_unused;
#endif
