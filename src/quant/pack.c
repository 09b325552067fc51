/* Bit packing in MLX's layout: each row is one little-endian, LSB-first
 * bitstream of b-bit codes, read as uint32 words.
 *
 * Eight codes of b bits fill exactly b bytes, so a row is packed eight codes
 * at a time: the codes are gathered into one 64-bit integer and folded
 * together in three steps (pairs, quads, all eight), and the low b bytes are
 * stored. Unpacking runs the steps backwards. */
#include "quant/qkernel.h"

#include <string.h>

/* Words are written and read byte by byte so the layout is little-endian on
 * any host and the buffers may be unaligned; compilers merge these into
 * single loads and stores where that is allowed. */
static inline void store_le32(void *dst, size_t i, uint32_t v)
{
    unsigned char *p = (unsigned char *)dst + 4 * i;
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t load_le32(const void *src, size_t i)
{
    const unsigned char *p = (const unsigned char *)src + 4 * i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t code_mask(int bits) { return (1u << bits) - 1u; }

size_t uq_pack_words(size_t n, int bits) { return (n * (size_t)bits + 31) / 32; }

void uq_pack_row_generic(const uint8_t *codes, size_t n, int bits, void *dst)
{
    uint32_t mask = code_mask(bits);
    uint64_t acc = 0; /* pending bits, the oldest in the low end */
    int have = 0;
    size_t wi = 0;
    for (size_t k = 0; k < n; k++) {
        acc |= (uint64_t)(codes[k] & mask) << have;
        have += bits;
        if (have >= 32) {
            store_le32(dst, wi++, (uint32_t)acc);
            acc >>= 32;
            have -= 32;
        }
    }
    if (have > 0) store_le32(dst, wi, (uint32_t)acc);
}

uint8_t uq_unpack_at(const void *src, size_t k, int bits)
{
    size_t bit = k * (size_t)bits;
    size_t wi = bit / 32;
    unsigned off = (unsigned)(bit % 32);
    uint64_t v = load_le32(src, wi) >> off;
    if (off + (unsigned)bits > 32) v |= (uint64_t)load_le32(src, wi + 1) << (32 - off);
    return (uint8_t)(v & code_mask(bits));
}

void uq_unpack_row_generic(const void *src, size_t n, int bits, uint8_t *codes)
{
    for (size_t k = 0; k < n; k++) codes[k] = uq_unpack_at(src, k, bits);
}

/* ------------------------------------------------- eight codes at a time */

#if defined(__GNUC__) || defined(__clang__)
#define UQ_AI static inline __attribute__((always_inline))
#else
#define UQ_AI static inline
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define UQ_HOST_LE 1
#else
#define UQ_HOST_LE 0
#endif

/* nb (1..8) bytes at p as a little-endian integer, and back. */
UQ_AI uint64_t load_bytes(const unsigned char *p, int nb)
{
    uint64_t x = 0;
    if (UQ_HOST_LE) {
        memcpy(&x, p, (size_t)nb);
        return x;
    }
    for (int i = 0; i < nb; i++) x |= (uint64_t)p[i] << (8 * i);
    return x;
}

UQ_AI void store_bytes(unsigned char *p, uint64_t x, int nb)
{
    if (UQ_HOST_LE) {
        memcpy(p, &x, (size_t)nb);
        return;
    }
    for (int i = 0; i < nb; i++) p[i] = (unsigned char)(x >> (8 * i));
}

#define LO8 0x00ff00ff00ff00ffull
#define LO16 0x0000ffff0000ffffull
#define LO32 0x00000000ffffffffull

/* Eight b-bit codes, one per byte of x (byte i = code i, already masked),
 * as the 8b-bit stream code0 | code1 << b | ... */
UQ_AI uint64_t fold8(uint64_t x, int b)
{
    x = (x & LO8) | ((x >> 8) & LO8) << b;
    x = (x & LO16) | ((x >> 16) & LO16) << (2 * b);
    return (x & LO32) | (x >> 32) << (4 * b);
}

/* The inverse of fold8. */
UQ_AI uint64_t unfold8(uint64_t x, int b)
{
    const uint64_t m4 = (1ull << (4 * b)) - 1;
    const uint64_t m2 = ((1ull << (2 * b)) - 1) * 0x0000000100000001ull;
    const uint64_t m1 = ((1ull << b) - 1) * 0x0001000100010001ull;
    x = (x & m4) | ((x >> (4 * b)) & m4) << 32;
    x = (x & m2) | ((x >> (2 * b)) & m2) << 16;
    return (x & m1) | ((x >> b) & m1) << 8;
}

UQ_AI void pack_blocks(const uint8_t *codes, size_t nblk, int b, unsigned char *dst)
{
    const uint64_t mask = (uint64_t)code_mask(b) * 0x0101010101010101ull;
    for (size_t j = 0; j < nblk; j++)
        store_bytes(dst + (size_t)b * j, fold8(load_bytes(codes + 8 * j, 8) & mask, b), b);
}

UQ_AI void unpack_blocks(const unsigned char *src, size_t nblk, int b, uint8_t *codes)
{
    for (size_t j = 0; j < nblk; j++)
        store_bytes(codes + 8 * j, unfold8(load_bytes(src + (size_t)b * j, b), b), 8);
}

/* One copy per width, so shifts and byte counts are constants. */
void uq_pack_blocks_swar(const uint8_t *codes, size_t nblk, int bits, void *dst)
{
    switch (bits) {
    case 1: pack_blocks(codes, nblk, 1, dst); break;
    case 2: pack_blocks(codes, nblk, 2, dst); break;
    case 3: pack_blocks(codes, nblk, 3, dst); break;
    case 4: pack_blocks(codes, nblk, 4, dst); break;
    case 5: pack_blocks(codes, nblk, 5, dst); break;
    case 6: pack_blocks(codes, nblk, 6, dst); break;
    case 7: pack_blocks(codes, nblk, 7, dst); break;
    default: pack_blocks(codes, nblk, 8, dst); break;
    }
}

void uq_unpack_blocks_swar(const void *src, size_t nblk, int bits, uint8_t *codes)
{
    switch (bits) {
    case 1: unpack_blocks(src, nblk, 1, codes); break;
    case 2: unpack_blocks(src, nblk, 2, codes); break;
    case 3: unpack_blocks(src, nblk, 3, codes); break;
    case 4: unpack_blocks(src, nblk, 4, codes); break;
    case 5: unpack_blocks(src, nblk, 5, codes); break;
    case 6: unpack_blocks(src, nblk, 6, codes); break;
    case 7: unpack_blocks(src, nblk, 7, codes); break;
    default: unpack_blocks(src, nblk, 8, codes); break;
    }
}

void uq_pack_span(const uq_qkernels *k, const uint8_t *codes, size_t k0, size_t n, int bits,
                  void *packed)
{
    unsigned char *d = (unsigned char *)packed + k0 / 8 * (size_t)bits;
    size_t nblk = n / 8;
    k->pack(codes, nblk, bits, d);
    if (n % 8 == 0) return;
    /* the last n % 8 codes, at most 56 bits, in the bytes they touch */
    const uint32_t mask = code_mask(bits);
    uint64_t acc = 0;
    for (size_t i = nblk * 8; i < n; i++)
        acc |= (uint64_t)(codes[i] & mask) << ((i - nblk * 8) * (size_t)bits);
    size_t nb = ((n % 8) * (size_t)bits + 7) / 8;
    for (size_t i = 0; i < nb; i++) d[nblk * (size_t)bits + i] = (unsigned char)(acc >> (8 * i));
}

void uq_pack_pad(size_t n, int bits, void *packed)
{
    size_t used = (n * (size_t)bits + 7) / 8, total = uq_pack_words(n, bits) * 4;
    if (total > used) memset((unsigned char *)packed + used, 0, total - used);
}

void uq_pack_row(const uint8_t *codes, size_t n, int bits, void *dst)
{
    uq_pack_span(uq_qk(), codes, 0, n, bits, dst);
    uq_pack_pad(n, bits, dst);
}

void uq_unpack_span(const uq_qkernels *k, const void *src, size_t k0, size_t n, int bits,
                    uint8_t *codes)
{
    size_t done = 0;
    if (k0 % 8 == 0) {
        size_t nblk = n / 8;
        k->unpack((const unsigned char *)src + k0 / 8 * (size_t)bits, nblk, bits, codes);
        done = nblk * 8;
    }
    for (size_t i = done; i < n; i++) codes[i] = uq_unpack_at(src, k0 + i, bits);
}

void uq_unpack_row(const void *src, size_t n, int bits, uint8_t *codes)
{
    uq_unpack_span(uq_qk(), src, 0, n, bits, codes);
}
