#pragma once
#include <cstring>
#include <cstdint>
#if ACT_TYPE == 0
inline float emu_to_float(float x) { return x; }
inline float emu_from_float(float x) { return x; }
#elif ACT_TYPE == 1
inline float emu_to_float(unsigned short h) { _Float16 f; std::memcpy(&f, &h, 2); return (float)f; }
inline unsigned short emu_from_float(float x) { _Float16 f = (_Float16)x; unsigned short h; std::memcpy(&h, &f, 2); return h; }
inline float emu_elem(unsigned short h) { return emu_to_float(h); }
#else
inline float emu_to_float(unsigned short h) { unsigned u = (unsigned)h << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned short emu_from_float(float x)
{
    unsigned u; std::memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
inline float emu_elem(unsigned short h) { return emu_to_float(h); }
#endif
#if ACT_TYPE != 0
struct MmaScratch { unsigned a[32][4]; unsigned b[32][2]; };
inline MmaScratch g_mma[32];
// D += A B per the PTX ISA fragment formulas for mma.m16n8k16 (.f16/.bf16), g = lane >> 2, t = lane & 3.
inline void emu_mma(float d[4], const unsigned a[4], const unsigned b[2])
{
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    for (int r = 0; r < 4; ++r) g_mma[warp].a[lane][r] = a[r];
    for (int r = 0; r < 2; ++r) g_mma[warp].b[lane][r] = b[r];
    g_sync->warps[warp]->arrive_and_wait();
    float A[16][16], B[16][8];
    for (int L = 0; L < 32; ++L) {
        const int g = L >> 2, t = L & 3;
        const unsigned* ra = g_mma[warp].a[L];
        for (int e = 0; e < 8; ++e) {  // elements a0..a7, two per register, low half first
            const int row = (e < 2 || (e >= 4 && e < 6)) ? g : g + 8;
            const int col = t * 2 + (e & 1) + (e >= 4 ? 8 : 0);
            A[row][col] = emu_elem((unsigned short)(ra[e / 2] >> (16 * (e & 1))));
        }
        const unsigned* rb = g_mma[warp].b[L];
        for (int e = 0; e < 4; ++e) {
            const int row = t * 2 + (e & 1) + (e >= 2 ? 8 : 0);
            B[row][g] = emu_elem((unsigned short)(rb[e / 2] >> (16 * (e & 1))));
        }
    }
    const int g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; ++e) {
        const int row = e < 2 ? g : g + 8;
        const int col = t * 2 + (e & 1);
        double s = 0;
        for (int k = 0; k < 16; ++k) s += (double)A[row][k] * B[k][col];
        d[e] += (float)s;
    }
    g_sync->warps[warp]->arrive_and_wait();
}
#endif
