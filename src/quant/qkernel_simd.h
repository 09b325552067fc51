/* The x86 SIMD kernels, written once over a small set of vector macros and
 * included by qkernel_sse2.c and qkernel_avx2.c. The includer defines:
 *
 *   KN(name)   the name with the set's suffix     KATTR  the target attribute
 *   VF, VI     float / int32 vectors of VW lanes (VI also as 4 * VW bytes)
 *   vf_*       float operations with the semantics of the SSE instructions:
 *              vf_max(a, b) = a > b ? a : b, vf_min(a, b) = a < b ? a : b
 *              (so a NaN in a gives b); vf_round: to int32, nearest even;
 *              comparisons give all-ones lanes (vf_neq also for NaN);
 *              vf_sel(m, a, b) = m ? a : b; vf_hmin / vf_hmax: over lanes
 *   vi_*       integer operations (vi16_ / vi64_: on 16 / 64-bit lanes)
 *   ld_bf16(p) VW bf16 values at p as floats; ld_u16(p) VW uint16 as int32
 *   ld_u8(p)   VW bytes at p as int32
 *   st_codes(p, a, b, c, d)  4 * VW int32 values in 0..255 as bytes at p
 *   st_bits(p, x)            4 * VW bytes of 0 / 1 as 4 * VW bits at p
 *   st_folded(p, x, b)       the low b bytes of each 64-bit lane of x, in
 *                            order, at p (4 * VW * b / 8 bytes)
 *
 * Every element goes through the same fp32 operations as in the portable
 * kernels (qkernel.c); tails are done one element at a time with those. */

#define KAI KATTR static inline __attribute__((always_inline))

/* f16 -> f32 for the int32 lanes h (zero-extended halves), exact: normal
 * numbers by rebiasing, subnormals as mantissa * 2^-24, Inf / NaN by
 * widening the exponent. */
KAI VF KN(f16_vec)(VI h)
{
    VI e = vi_and(h, vi_set1(0x7c00));
    VI a = vi_slli(vi_and(h, vi_set1(0x7fff)), 13);
    VI sign = vi_slli(vi_and(h, vi_set1(0x8000)), 16);
    VI normal = vi_add(a, vi_set1(0x38000000));
    VI sub = vf_as_i(vf_mul(vi_to_f(vi_and(h, vi_set1(0x3ff))), vf_set1(0x1p-24f)));
    VI special = vi_or(a, vi_set1(0x7f800000));
    VI is_sub = vi_cmpeq(e, vi_set1(0));
    VI is_special = vi_cmpeq(e, vi_set1(0x7c00));
    VI r = vi_sel(is_sub, sub, vi_sel(is_special, special, normal));
    return vi_as_f(vi_or(r, sign));
}

/* VW elements of dtype t starting at element i of p, as f32. */
KAI VF KN(load_vec)(uq_dtype t, const unsigned char *p, size_t i)
{
    if (t == UQ_BF16) return ld_bf16(p + 2 * i);
    if (t == UQ_F16) return KN(f16_vec)(ld_u16(p + 2 * i));
    return vf_loadu(p + 4 * i);
}

/* ------------------------------------------------------------ extremes */

#define KN_ES(t) ((t) == UQ_F32 ? (size_t)4 : (size_t)2)

/* Which of +0 and -0 comes out of a min / max does not change the fit. */
KAI int KN(minmax_t)(uq_dtype t, const unsigned char *src, size_t g, size_t ng, float *pmin,
                     float *pmax)
{
    VF bad = vf_zero();
    int nan = 0;
    for (size_t j = 0; j < ng; j++) {
        const unsigned char *s = src + j * g * KN_ES(t);
        VF mn0 = vf_set1(INFINITY), mn1 = mn0, mx0 = vf_set1(-INFINITY), mx1 = mx0;
        size_t i = 0;
        for (; i + 2 * VW <= g; i += 2 * VW) {
            VF a = KN(load_vec)(t, s, i), b = KN(load_vec)(t, s, i + VW);
            mx0 = vf_max(a, mx0);
            mn0 = vf_min(a, mn0);
            mx1 = vf_max(b, mx1);
            mn1 = vf_min(b, mn1);
            bad = vf_or(bad, vf_or(vf_unord(a), vf_unord(b)));
        }
        for (; i + VW <= g; i += VW) {
            VF a = KN(load_vec)(t, s, i);
            mx0 = vf_max(a, mx0);
            mn0 = vf_min(a, mn0);
            bad = vf_or(bad, vf_unord(a));
        }
        float mn = vf_hmin(vf_min(mn0, mn1)), mx = vf_hmax(vf_max(mx0, mx1));
        for (; i < g; i++) {
            float v = uq_qk_load(t, s, i);
            if (mx < v) mx = v;
            if (v < mn) mn = v;
            nan |= v != v;
        }
        pmin[j] = mn;
        pmax[j] = mx;
    }
    return nan | vf_any(bad);
}

KAI int KN(absmax_t)(uq_dtype t, const unsigned char *src, size_t g, size_t ng, float *pamax)
{
    const VF abs_mask = vi_as_f(vi_set1(0x7fffffff));
    VF bad = vf_zero();
    int nan = 0;
    for (size_t j = 0; j < ng; j++) {
        const unsigned char *s = src + j * g * KN_ES(t);
        VF m0 = vf_zero(), m1 = m0;
        size_t i = 0;
        for (; i + 2 * VW <= g; i += 2 * VW) {
            VF a = KN(load_vec)(t, s, i), b = KN(load_vec)(t, s, i + VW);
            m0 = vf_max(vf_and(a, abs_mask), m0);
            m1 = vf_max(vf_and(b, abs_mask), m1);
            bad = vf_or(bad, vf_or(vf_unord(a), vf_unord(b)));
        }
        for (; i + VW <= g; i += VW) {
            VF a = KN(load_vec)(t, s, i);
            m0 = vf_max(vf_and(a, abs_mask), m0);
            bad = vf_or(bad, vf_unord(a));
        }
        float m = vf_hmax(vf_max(m0, m1));
        for (; i < g; i++) {
            float a = fabsf(uq_qk_load(t, s, i));
            if (a > m) m = a;
            nan |= a != a;
        }
        pamax[j] = m;
    }
    return nan | vf_any(bad);
}

KATTR static int KN(minmax)(uq_dtype t, const void *src, size_t g, size_t ng, float *mn,
                            float *mx)
{
    switch (t) {
    case UQ_BF16: return KN(minmax_t)(UQ_BF16, src, g, ng, mn, mx);
    case UQ_F16: return KN(minmax_t)(UQ_F16, src, g, ng, mn, mx);
    default: return KN(minmax_t)(UQ_F32, src, g, ng, mn, mx);
    }
}

KATTR static int KN(absmax)(uq_dtype t, const void *src, size_t g, size_t ng, float *amax)
{
    switch (t) {
    case UQ_BF16: return KN(absmax_t)(UQ_BF16, src, g, ng, amax);
    case UQ_F16: return KN(absmax_t)(UQ_F16, src, g, ng, amax);
    default: return KN(absmax_t)(UQ_F32, src, g, ng, amax);
    }
}

/* ---------------------------------------------------------------- fits */

/* uq_affine_fit_extremes on VW groups at once, for finite extremes with a
 * finite range: the same divisions, with the branches as selects. rint is
 * (|x| + 2^23) - 2^23 with x's sign for |x| < 2^23, and x itself above
 * (already an integer, or Inf). */
KATTR static int KN(affine_fit)(const float *mn, const float *mx, size_t ng, float n_bins,
                                float *scale, float *bias)
{
    const VF abs_mask = vi_as_f(vi_set1(0x7fffffff)), sign = vf_set1(-0.0f);
    const VF inf = vf_set1(INFINITY), big = vf_set1(0x1p23f), eps = vf_set1(UQ_AFFINE_EPS);
    const VF nb = vf_set1(n_bins), zero = vf_zero();
    VF ok = vi_as_f(vi_set1(-1));
    size_t j = 0;
    for (; j + VW <= ng; j += VW) {
        VF lo = vf_loadu(mn + j), hi = vf_loadu(mx + j);
        VF alo = vf_and(lo, abs_mask), ahi = vf_and(hi, abs_mask);
        VF range = vf_sub(hi, lo);
        ok = vf_and(ok, vf_and(vf_and(vf_lt(alo, inf), vf_lt(ahi, inf)),
                               vf_lt(vf_and(range, abs_mask), inf)));
        VF mask = vf_gt(alo, ahi);
        VF s = vf_max(eps, vf_div(range, nb)); /* eps > s ? eps : s: NaN stays */
        s = vf_xor(s, vf_andnot(mask, sign));  /* -s where !mask */
        VF edge = vf_sel(mask, lo, hi);
        VF q = vf_div(edge, s);
        VF aq = vf_and(q, abs_mask);
        VF r = vf_or(vf_sub(vf_add(aq, big), big), vf_and(q, sign));
        VF q0 = vf_sel(vf_lt(aq, big), r, q);
        VF nz = vf_neq(q0, zero);
        VF finite_q0 = vf_lt(vf_and(q0, abs_mask), inf);
        s = vf_sel(vf_and(nz, finite_q0), vf_div(edge, q0), s);
        vf_storeu(scale + j, s);
        vf_storeu(bias + j, vf_and(nz, edge));
    }
    int other = !vf_all(ok);
    for (; j < ng; j++) {
        if (!isfinite(mn[j]) || !isfinite(mx[j]) || isinf(mx[j] - mn[j])) {
            other = 1;
            continue;
        }
        uq_affine_param p = uq_affine_fit_extremes(mn[j], mx[j], n_bins);
        scale[j] = p.scale;
        bias[j] = p.bias;
    }
    return other;
}

/* --------------------------------------------------------------- codes */

/* clamp((x - bias) / scale, 0, n_bins), rounded: max(t, 0) turns NaN into 0. */
KAI VI KN(affine_code)(VF x, VF bias, VF scale, VF zero, VF n_bins)
{
    VF t = vf_div(vf_sub(x, bias), scale);
    return vf_round(vf_min(vf_max(t, zero), n_bins));
}

KAI void KN(affine_codes_t)(uq_dtype t, const unsigned char *src, size_t g, size_t ng,
                            const float *scale, const float *bias, float n_bins,
                            uint8_t *codes)
{
    const VF vz = vf_zero(), vn = vf_set1(n_bins);
    for (size_t j = 0; j < ng; j++) {
        const unsigned char *s = src + j * g * KN_ES(t);
        uint8_t *c = codes + j * g;
        const float fb = bias[j], fs = scale[j];
        const VF vb = vf_set1(fb), vs = vf_set1(fs);
        size_t i = 0;
        for (; i + 4 * VW <= g; i += 4 * VW) {
            VI a = KN(affine_code)(KN(load_vec)(t, s, i), vb, vs, vz, vn);
            VI b = KN(affine_code)(KN(load_vec)(t, s, i + VW), vb, vs, vz, vn);
            VI cc = KN(affine_code)(KN(load_vec)(t, s, i + 2 * VW), vb, vs, vz, vn);
            VI d = KN(affine_code)(KN(load_vec)(t, s, i + 3 * VW), vb, vs, vz, vn);
            st_codes(c + i, a, b, cc, d);
        }
        for (; i < g; i++) {
            float q = rintf((uq_qk_load(t, s, i) - fb) / fs);
            c[i] = !(q > 0.0f) ? 0 : q >= n_bins ? (uint8_t)n_bins : (uint8_t)q;
        }
    }
}

KATTR static void KN(affine_codes)(uq_dtype t, const void *src, size_t g, size_t ng,
                                   const float *scale, const float *bias, float n_bins,
                                   uint8_t *codes)
{
    switch (t) {
    case UQ_BF16: KN(affine_codes_t)(UQ_BF16, src, g, ng, scale, bias, n_bins, codes); break;
    case UQ_F16: KN(affine_codes_t)(UQ_F16, src, g, ng, scale, bias, n_bins, codes); break;
    default: KN(affine_codes_t)(UQ_F32, src, g, ng, scale, bias, n_bins, codes); break;
    }
}

/* clamp(x / scale, lo, hi) rounded, plus the offset; NaN is zeroed first. */
KAI VI KN(sym_code)(VF x, VF scale, VF lo, VF hi, VI offset)
{
    VF t = vf_div(x, scale);
    t = vf_and(t, vf_ord(t));
    return vi_add(vf_round(vf_min(vf_max(t, lo), hi)), offset);
}

KAI void KN(sym_codes_t)(uq_dtype t, const unsigned char *src, size_t g, size_t ng,
                         const float *scale, int offset, uint8_t *codes)
{
    const float hi = (float)(offset - 1), lo = (float)-offset;
    const VF vlo = vf_set1(lo), vhi = vf_set1(hi);
    const VI vo = vi_set1(offset);
    for (size_t j = 0; j < ng; j++) {
        const unsigned char *s = src + j * g * KN_ES(t);
        uint8_t *c = codes + j * g;
        const float fs = scale[j];
        if (fs == 0.0f) {
            memset(c, offset, g);
            continue;
        }
        const VF vs = vf_set1(fs);
        size_t i = 0;
        for (; i + 4 * VW <= g; i += 4 * VW) {
            VI a = KN(sym_code)(KN(load_vec)(t, s, i), vs, vlo, vhi, vo);
            VI b = KN(sym_code)(KN(load_vec)(t, s, i + VW), vs, vlo, vhi, vo);
            VI cc = KN(sym_code)(KN(load_vec)(t, s, i + 2 * VW), vs, vlo, vhi, vo);
            VI d = KN(sym_code)(KN(load_vec)(t, s, i + 3 * VW), vs, vlo, vhi, vo);
            st_codes(c + i, a, b, cc, d);
        }
        for (; i < g; i++) {
            float q = rintf(uq_qk_load(t, s, i) / fs);
            int v = q != q ? 0 : q >= hi ? offset - 1 : q <= lo ? -offset : (int)q;
            c[i] = (uint8_t)(v + offset);
        }
    }
}

KATTR static void KN(sym_codes)(uq_dtype t, const void *src, size_t g, size_t ng,
                                const float *scale, int offset, uint8_t *codes)
{
    switch (t) {
    case UQ_BF16: KN(sym_codes_t)(UQ_BF16, src, g, ng, scale, offset, codes); break;
    case UQ_F16: KN(sym_codes_t)(UQ_F16, src, g, ng, scale, offset, codes); break;
    default: KN(sym_codes_t)(UQ_F32, src, g, ng, scale, offset, codes); break;
    }
}

/* ------------------------------------------------------------- packing */

/* One byte per code -> the b-bit stream of each 64-bit lane's eight codes
 * (pack.c's fold8, on every lane at once). */
KAI VI KN(fold)(VI x, int b)
{
    x = vi_or(vi_and(x, vi16_set1(0x00ff)), vi16_slli(vi16_srli(x, 8), b));
    x = vi_or(vi_and(x, vi_set1(0xffff)), vi_slli(vi_srli(x, 16), 2 * b));
    return vi_or(vi_and(x, vi64_set1(0xffffffff)), vi64_slli(vi64_srli(x, 32), 4 * b));
}

KAI void KN(pack_b)(const uint8_t *codes, size_t nblk, int b, unsigned char *dst)
{
    const size_t per = 4 * VW; /* codes in one vector of bytes */
    const VI mask = vi8_set1((char)((1 << b) - 1));
    const size_t nc = nblk * 8;
    size_t i = 0;
    for (; i + per <= nc; i += per) {
        VI x = vi_loadu(codes + i);
        unsigned char *d = dst + i / 8 * (size_t)b;
        if (b == 8) {
            vi_storeu(d, x);
        } else if (b == 1) {
            st_bits(d, vi_and(x, mask));
        } else {
            st_folded(d, KN(fold)(vi_and(x, mask), b), b);
        }
    }
    if (i < nc) uq_pack_blocks_swar(codes + i, (nc - i) / 8, b, dst + i / 8 * (size_t)b);
}

KATTR static void KN(pack)(const uint8_t *codes, size_t nblk, int bits, void *dst)
{
    switch (bits) {
    case 1: KN(pack_b)(codes, nblk, 1, dst); break;
    case 2: KN(pack_b)(codes, nblk, 2, dst); break;
    case 3: KN(pack_b)(codes, nblk, 3, dst); break;
    case 4: KN(pack_b)(codes, nblk, 4, dst); break;
    case 5: KN(pack_b)(codes, nblk, 5, dst); break;
    case 6: KN(pack_b)(codes, nblk, 6, dst); break;
    case 7: KN(pack_b)(codes, nblk, 7, dst); break;
    default: KN(pack_b)(codes, nblk, 8, dst); break;
    }
}

/* 4 bits (16 codes from 8 bytes: low nibble first, with SSE2 operations at
 * either level) and 8 bits here, the other widths eight codes at a time in
 * plain C. */
KATTR static void KN(unpack)(const void *src, size_t nblk, int bits, uint8_t *codes)
{
    const unsigned char *s = src;
    const size_t nc = nblk * 8;
    size_t i = 0;
    if (bits == 8) {
        memcpy(codes, s, nc);
        return;
    }
    if (bits == 4) {
        const __m128i m = _mm_set1_epi8(0x0f);
        for (; i + 16 <= nc; i += 16) {
            __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)(s + i / 2));
            __m128i lo = _mm_and_si128(x, m), hi = _mm_and_si128(_mm_srli_epi16(x, 4), m);
            _mm_storeu_si128((__m128i *)(void *)(codes + i), _mm_unpacklo_epi8(lo, hi));
        }
    }
    if (i < nc) uq_unpack_blocks_swar(s + i / 8 * (size_t)bits, (nc - i) / 8, bits, codes + i);
}

/* ------------------------------------------------------- dequantization */

KATTR static void KN(affine_deq)(const uint8_t *codes, size_t n, float s, float b, float *out)
{
    const VF vs = vf_set1(s), vb = vf_set1(b);
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vf_storeu(out + i, vf_add(vf_mul(vi_to_f(ld_u8(codes + i)), vs), vb));
    for (; i < n; i++) {
        float prod = (float)codes[i] * s;
        out[i] = prod + b;
    }
}

KATTR static void KN(sym_deq)(const uint8_t *codes, size_t n, int offset, float s, float *out)
{
    const VF vs = vf_set1(s);
    const VI vo = vi_set1(offset);
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vf_storeu(out + i, vf_mul(vi_to_f(vi_sub(ld_u8(codes + i), vo)), vs));
    for (; i < n; i++) out[i] = (float)((int)codes[i] - offset) * s;
}

const uq_qkernels KN(uq_qk) = {
    .minmax = KN(minmax),
    .absmax = KN(absmax),
    .affine_fit = KN(affine_fit),
    .affine_codes = KN(affine_codes),
    .sym_codes = KN(sym_codes),
    .pack = KN(pack),
    .unpack = KN(unpack),
    .affine_deq = KN(affine_deq),
    .sym_deq = KN(sym_deq),
};

#undef KAI
#undef KN_ES
