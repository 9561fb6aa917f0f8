// Shared helpers of the OnnxAttention CUDA kernels. NOT RUN ON A GPU YET: compiled with NVRTC in the tests only.
//
// Header-free on purpose: NVRTC from the distribution packages ships no CUDA headers (no cuda_fp16.h, no mma.h),
// so half and bfloat16 travel as their raw 16-bit patterns, converted with PTX cvt instructions, and tensor-core
// products use mma.sync through inline PTX. Everything here needs sm_80 or newer (bf16 cvt and bf16 mma).
//
// Defines read here:
//   ACT_TYPE     activation element type of query/key/value/output (and of decay/beta): 0 float32, 1 float16,
//                2 bfloat16. States and caches are float32 whatever ACT_TYPE says; arithmetic is float32.
#pragma once

#define ACT_F32 0
#define ACT_F16 1
#define ACT_BF16 2

#ifndef ACT_TYPE
#error "ACT_TYPE must be defined: 0 (float32), 1 (float16) or 2 (bfloat16)"
#endif
#if ACT_TYPE != ACT_F32 && ACT_TYPE != ACT_F16 && ACT_TYPE != ACT_BF16
#error "ACT_TYPE must be 0 (float32), 1 (float16) or 2 (bfloat16)"
#endif

#if ACT_TYPE == ACT_F32
typedef float act_t;
#else
// The raw bits of a float16 or bfloat16 value.
typedef unsigned short act_t;
#endif

#define OA_FULL_MASK 0xffffffffu
#define OA_NEG_INF (-__int_as_float(0x7f800000))

namespace oa {

__device__ __forceinline__ float to_float(act_t x)
{
#if ACT_TYPE == ACT_F32
    return x;
#elif ACT_TYPE == ACT_F16
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x));
    return f;
#else
    // bfloat16 is the upper half of a float32: widening is exact.
    return __uint_as_float(static_cast<unsigned int>(x) << 16);
#endif
}

__device__ __forceinline__ act_t from_float(float f)
{
#if ACT_TYPE == ACT_F32
    return f;
#elif ACT_TYPE == ACT_F16
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#else
    unsigned short h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#endif
}

__device__ __forceinline__ float load(const act_t* p, long long index) { return to_float(p[index]); }

__device__ __forceinline__ void store(act_t* p, long long index, float value) { p[index] = from_float(value); }

// Sum and max over the `width` lanes of an aligned lane group (width a power of two, at most 32).
template <int Width = 32>
__device__ __forceinline__ float group_sum(float x)
{
#pragma unroll
    for (int offset = Width / 2; offset > 0; offset >>= 1) {
        x += __shfl_xor_sync(OA_FULL_MASK, x, offset, Width);
    }
    return x;
}

template <int Width = 32>
__device__ __forceinline__ float group_max(float x)
{
#pragma unroll
    for (int offset = Width / 2; offset > 0; offset >>= 1) {
        x = fmaxf(x, __shfl_xor_sync(OA_FULL_MASK, x, offset, Width));
    }
    return x;
}

// exp(a - b) that is 0 (not NaN) when both are -inf: the rescale factor of an online softmax whose running
// maximum is still -inf (nothing attended yet).
__device__ __forceinline__ float exp_diff(float a, float b)
{
    return a == OA_NEG_INF ? 0.0f : expf(a - b);
}

__host__ __device__ constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }
__host__ __device__ constexpr int round_up(int a, int b) { return ceil_div(a, b) * b; }
__host__ __device__ constexpr int min_int(int a, int b) { return a < b ? a : b; }
__host__ __device__ constexpr int max_int(int a, int b) { return a > b ? a : b; }

#if ACT_TYPE != ACT_F32
// Two activation values packed into one 32-bit register, the lower index in the low half (the order mma expects).
__device__ __forceinline__ unsigned int pack2(act_t lo, act_t hi)
{
    return static_cast<unsigned int>(lo) | (static_cast<unsigned int>(hi) << 16);
}

__device__ __forceinline__ unsigned int pack2(float lo, float hi) { return pack2(from_float(lo), from_float(hi)); }

// D = A * B + D for one 16x8 tile: A 16x16 row-major, B 16x8 column-major, float32 accumulators.
// Fragment ownership (PTX ISA, mma.m16n8k16 for .f16/.bf16), with g = lane / 4 and t = lane % 4:
//   a[0]: A[g][2t..2t+1]    a[1]: A[g+8][2t..2t+1]    a[2]: A[g][2t+8..2t+9]    a[3]: A[g+8][2t+8..2t+9]
//   b[0]: B[2t..2t+1][g]    b[1]: B[2t+8..2t+9][g]
//   d[0..1]: D[g][2t..2t+1] d[2..3]: D[g+8][2t..2t+1]
__device__ __forceinline__ void mma_16816(float d[4], const unsigned int a[4], const unsigned int b[2])
{
#if ACT_TYPE == ACT_F16
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
#endif

}  // namespace oa
