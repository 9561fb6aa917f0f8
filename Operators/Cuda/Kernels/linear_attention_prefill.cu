// com.onnxattention.LinearAttention, chunked prefill for update_rule=linear. NOT RUN ON A GPU YET.
//
// Same maths as the recurrence (docs/operators/LinearAttention.md; a_i = gamma for every key row), regrouped by
// chunks of C tokens. With S0, nu0 the state before a chunk and t, u token offsets inside it:
//   A[t][u] = phi(q_t) . phi(k_u) * gamma^(t-u)  for u <= t, 0 otherwise
//   y_t     = gamma^(t+1) phi(q_t)^T S0 + sum_u A[t][u] v_u                  (inter-chunk + intra-chunk)
//   den_t   = gamma^(t+1) phi(q_t) . nu0 + sum_u A[t][u] + epsilon           (NORMALIZE)
//   S       = gamma^n S0 + sum_{u<n} gamma^(n-1-u) phi(k_u) v_u^T,  nu = gamma^n nu0 + sum_u gamma^(n-1-u) phi(k_u)
// which is what the token-by-token rule computes, summed in another order.
//
// Precision: the state stays float32 and its products (phi(q)^T S0 and the state update) are float32 FMAs. With
// float16/bfloat16 activations the intra-chunk products phi(Q) phi(K)^T and A V run on tensor cores (mma.sync
// m16n8k16, float32 accumulation); phi(q), phi(k) and A are rounded to the activation type for them, each row first
// divided by a power of two at least its largest magnitude (then multiplied back exactly), so nothing overflows
// float16 whatever the magnitudes. phi(k) is kept in float32 for the state update, so the state gets no rounding
// the recurrence would not have. With float32 activations every product is a float32 FMA.
//
// Required defines: HEAD_DIM (d_k, [1, 256]), VALUE_DIM (d_v, [1, 4096]), GROUP ([1, 64]), FEATURE_MAP, NORMALIZE,
// ACT_TYPE. Optional: RULE (only 0, linear, is implemented here), CHUNK (tokens per chunk, 16, 32 or 64; default 64
// for 16-bit activations, 32 for float32), BLOCK_COLS (value columns per block: 16, 32, 64 or 128; default
// the smallest of 16, 32, 64 holding d_v, else 64), EXPECTED_THREADS / EXPECTED_SHARED_BYTES (compile-time checks of the host's formulas).
//
// Launch contract (entry point linear_attention_prefill):
//   grid   (batch * kv_heads, ceil(d_v / BLOCK_COLS), 1)
//   block  (128, 1, 1)
//   dynamic shared memory SHARED_BYTES (kSharedBytes below; the sum of 16-byte-aligned arrays: state tile,
//          nu, gamma powers, four row-scale/weight vectors, A, the intra-chunk result, phi(K), phi(Q), V^T). Above
//          48 KiB the host must raise CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES first; at most 227 KiB.
//   arguments, in order:
//     const act_t* query [batch, seq_len, kv_heads * GROUP * d_k]
//     const act_t* key   [batch, seq_len, kv_heads * d_k]
//     const act_t* value [batch, seq_len, kv_heads * d_v]
//     const float* past_state [batch, kv_heads, d_k, d_v] or null      const float* past_normalizer [batch, kv_heads, d_k] or null
//     act_t* output [batch, seq_len, kv_heads * GROUP * d_v]
//     float* present_state or null      float* present_normalizer or null
//     int seq_len, int kv_heads, float scale (resolved), float gamma, float epsilon
//   present_state may alias past_state (a block reads its tile before writing it); present_normalizer may alias
//   past_normalizer only when gridDim.y == 1.
#include "onnx_attention_common.cuh"
#include "onnx_attention_feature_map.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP) || !defined(NORMALIZE)
#error "linear_attention_prefill needs HEAD_DIM, VALUE_DIM, GROUP, FEATURE_MAP, NORMALIZE and ACT_TYPE"
#endif
#if defined(RULE) && RULE != 0
#error "linear_attention_prefill implements RULE 0 (linear) only; run the other rules with linear_attention_decode"
#endif
#ifndef CHUNK
#if ACT_TYPE == ACT_F32
#define CHUNK 32
#else
#define CHUNK 64
#endif
#endif
#ifndef BLOCK_COLS
#define BLOCK_COLS (VALUE_DIM <= 16 ? 16 : VALUE_DIM <= 32 ? 32 : 64)
#endif

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kHeadDim = HEAD_DIM;
constexpr int kValueDim = VALUE_DIM;
constexpr int kGroup = GROUP;
constexpr int kChunk = CHUNK;
constexpr int kBlockCols = BLOCK_COLS;

#if ACT_TYPE == ACT_F32
constexpr int kKeyPad = kHeadDim;          // no tensor cores: no padding of the key dimension
constexpr int kQkStride = kHeadDim + 1;    // odd strides keep column walks free of bank conflicts
constexpr int kVtStride = kChunk + 1;
#else
constexpr int kKeyPad = oa::round_up(kHeadDim, 16);  // mma's k step
constexpr int kQkStride = kKeyPad + 8;               // +16 bytes: the 8 row groups of a fragment hit distinct banks
constexpr int kVtStride = kChunk + 8;
#endif
constexpr int kAStride = kChunk + 8;
constexpr int kYStride = kBlockCols + 8;
constexpr int kKeyPerLane = oa::ceil_div(kKeyPad, 32);
constexpr int kColRowGroups = kThreads / kBlockCols;       // column-per-thread phases: threads per column
constexpr int kRowsPerThread = kChunk / kColRowGroups;     // and chunk rows per thread
#if ACT_TYPE == ACT_F32
constexpr int kScoreRowGroups = kThreads / kChunk;         // float32 scores: threads per key column u
constexpr int kScoreRowsPerThread = kChunk / kScoreRowGroups;
#endif

static_assert(kHeadDim >= 1 && kHeadDim <= 256, "HEAD_DIM must be in [1, 256]");
static_assert(kValueDim >= 1 && kValueDim <= 4096, "VALUE_DIM must be in [1, 4096]");
static_assert(kGroup >= 1 && kGroup <= 64, "GROUP must be in [1, 64]");
static_assert(kChunk == 16 || kChunk == 32 || kChunk == 64, "CHUNK must be 16, 32 or 64");
static_assert(kBlockCols == 16 || kBlockCols == 32 || kBlockCols == 64 || kBlockCols == 128,
    "BLOCK_COLS must be 16, 32, 64 or 128");
static_assert(kChunk % kColRowGroups == 0, "CHUNK must be a multiple of 128 / BLOCK_COLS");

__host__ __device__ constexpr int align16(int bytes) { return oa::round_up(bytes, 16); }

// Shared memory layout, byte offsets.
constexpr int kOffState = 0;                                                        // float [d_k][BLOCK_COLS]
constexpr int kOffNu = kOffState + align16(4 * kHeadDim * kBlockCols);              // float [d_k]
constexpr int kOffPow = kOffNu + align16(4 * kHeadDim);                             // float [C + 1]: gamma^d
constexpr int kOffDen = kOffPow + align16(4 * (kChunk + 1));                        // float [C]
constexpr int kOffQScale = kOffDen + align16(4 * kChunk);                           // float [C]
constexpr int kOffKScale = kOffQScale + align16(4 * kChunk);                        // float [C]
constexpr int kOffAScale = kOffKScale + align16(4 * kChunk);                        // float [C]
constexpr int kOffKWeight = kOffAScale + align16(4 * kChunk);                       // float [C]: gamma^(n-1-u)
constexpr int kOffA = kOffKWeight + align16(4 * kChunk);                            // float [C][kAStride]
constexpr int kOffY = kOffA + align16(4 * kChunk * kAStride);                       // float [C][kYStride]
constexpr int kOffK = kOffY + align16(4 * kChunk * kYStride);                       // float [C][kQkStride]: phi(K)
constexpr int kOffQ = kOffK + align16(4 * kChunk * kQkStride);                      // act [C][kQkStride]: phi(Q) / q_scale
constexpr int kOffVt = kOffQ + align16(static_cast<int>(sizeof(act_t)) * kChunk * kQkStride); // act [BLOCK_COLS][kVtStride]
constexpr int kSharedBytes = kOffVt + align16(static_cast<int>(sizeof(act_t)) * kBlockCols * kVtStride);

static_assert(kSharedBytes <= 227 * 1024, "linear_attention_prefill: shared memory over 227 KiB; lower BLOCK_COLS or CHUNK");
#ifdef EXPECTED_THREADS
static_assert(kThreads == EXPECTED_THREADS, "the host's THREADS disagrees with linear_attention_prefill.cu");
#endif
#ifdef EXPECTED_SHARED_BYTES
static_assert(kSharedBytes == EXPECTED_SHARED_BYTES, "the host's SHARED_BYTES formula disagrees with linear_attention_prefill.cu");
#endif

// A power of two >= |x| (1 for 0): dividing a row by it keeps every element within float16's range, exactly.
__device__ __forceinline__ float pow2_above(float max_abs)
{
#if ACT_TYPE == ACT_F32
    (void)max_abs;
    return 1.0f;
#else
    if (!(max_abs > 0.0f) || isinf(max_abs)) {
        return 1.0f;
    }
    int exponent;
    frexpf(max_abs, &exponent);  // max_abs = m * 2^exponent, m in [0.5, 1)
    return ldexpf(1.0f, exponent);
#endif
}

// phi of `valid` rows of a [rows, stride] activation matrix into a chunk buffer, one warp per row (rows past
// `valid` become zeros), with each row's power-of-two scale in row_scale. Queries are stored divided by it, in
// the activation type (they only feed products); keys are stored as they are, in float32 (they also feed the
// float32 state update), and divided by their scale when packed into mma fragments.
template <class T, bool Scaled>
__device__ __forceinline__ void load_phi_rows(T* dst, float* row_scale, const act_t* src, long long src_row_stride,
    int valid, float scale, int warp, int lane)
{
    for (int u = warp; u < kChunk; u += kWarps) {
        const bool is_valid = u < valid;
        float x[kKeyPerLane];
#pragma unroll
        for (int m = 0; m < kKeyPerLane; ++m) {
            const int i = lane + 32 * m;
            x[m] = is_valid && i < kHeadDim ? oa::to_float(src[u * src_row_stride + i]) : 0.0f;
        }
        if (is_valid) {
            oa::phi_vector<kKeyPerLane>(x, scale);
        }
        float max_abs = 0.0f;
#pragma unroll
        for (int m = 0; m < kKeyPerLane; ++m) {
            if (lane + 32 * m < kHeadDim) {
                max_abs = fmaxf(max_abs, fabsf(x[m]));
            }
        }
        const float s = pow2_above(oa::group_max(max_abs));
        const float factor = Scaled ? 1.0f / s : 1.0f;
#pragma unroll
        for (int m = 0; m < kKeyPerLane; ++m) {
            const int i = lane + 32 * m;
            if (i < kKeyPad) {
                const float stored = is_valid && i < kHeadDim ? x[m] * factor : 0.0f;
                if constexpr (Scaled) {
                    dst[u * kQkStride + i] = oa::from_float(stored);
                } else {
                    dst[u * kQkStride + i] = stored;
                }
            }
        }
        if (lane == 0) {
            row_scale[u] = s;
        }
    }
}

#if ACT_TYPE != ACT_F32
__device__ __forceinline__ unsigned int load_pair(const act_t* p) { return *reinterpret_cast<const unsigned int*>(p); }
#endif

}  // namespace

extern "C" __global__ void __launch_bounds__(kThreads) linear_attention_prefill(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* past_state, const float* past_normalizer,
    act_t* __restrict__ output, float* present_state, float* present_normalizer,
    int seq_len, int kv_heads, float scale, float gamma, float epsilon)
{
    extern __shared__ float4 shared_raw[];
    unsigned char* base = reinterpret_cast<unsigned char*>(shared_raw);
    float* s_state = reinterpret_cast<float*>(base + kOffState);
    float* s_nu = reinterpret_cast<float*>(base + kOffNu);
    float* s_pow = reinterpret_cast<float*>(base + kOffPow);
#if NORMALIZE
    float* s_den = reinterpret_cast<float*>(base + kOffDen);
#endif
    float* s_q_scale = reinterpret_cast<float*>(base + kOffQScale);
    float* s_k_scale = reinterpret_cast<float*>(base + kOffKScale);
#if ACT_TYPE != ACT_F32
    float* s_a_scale = reinterpret_cast<float*>(base + kOffAScale);  // float32 activations need no row scales
#endif
    float* s_k_weight = reinterpret_cast<float*>(base + kOffKWeight);
    float* s_a = reinterpret_cast<float*>(base + kOffA);
    float* s_y = reinterpret_cast<float*>(base + kOffY);
    float* s_k = reinterpret_cast<float*>(base + kOffK);
    act_t* s_q = reinterpret_cast<act_t*>(base + kOffQ);
    act_t* s_vt = reinterpret_cast<act_t*>(base + kOffVt);

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const int col0 = blockIdx.y * kBlockCols;
    const int q_heads = kv_heads * kGroup;
    const long long state_base = static_cast<long long>(bh) * kHeadDim * kValueDim;
    const bool track_normalizer = NORMALIZE != 0 || present_normalizer != nullptr;
    // Column-per-thread phases: column c of the tile, chunk rows rg, rg + kColRowGroups, ...
    const int my_col = tid % kBlockCols;
    const int my_row_group = tid / kBlockCols;
    const int my_j = col0 + my_col;

    for (int idx = tid; idx < kHeadDim * kBlockCols; idx += kThreads) {
        const int i = idx / kBlockCols;
        const int c = idx - i * kBlockCols;
        const int j = col0 + c;
        s_state[idx] = past_state != nullptr && j < kValueDim
            ? past_state[state_base + static_cast<long long>(i) * kValueDim + j]
            : 0.0f;
    }
    for (int i = tid; i < kHeadDim; i += kThreads) {
        s_nu[i] = past_normalizer != nullptr ? past_normalizer[static_cast<long long>(bh) * kHeadDim + i] : 0.0f;
    }
    for (int d = tid; d <= kChunk; d += kThreads) {
        s_pow[d] = d == 0 ? 1.0f : powf(gamma, static_cast<float>(d));
    }
    __syncthreads();

    for (int chunk0 = 0; chunk0 < seq_len; chunk0 += kChunk) {
        const int n = min(kChunk, seq_len - chunk0);
        const long long token0 = static_cast<long long>(b) * seq_len + chunk0;  // first token's row of [B, T]

        // Phase 1: phi(K) of the chunk, V^T of this block's columns, and the state-update weights.
        load_phi_rows<float, false>(s_k, s_k_scale, key + (token0 * kv_heads + h) * kHeadDim,
            static_cast<long long>(kv_heads) * kHeadDim, n, 1.0f, warp, lane);
        for (int idx = tid; idx < kChunk * kBlockCols; idx += kThreads) {
            const int u = idx / kBlockCols;
            const int c = idx - u * kBlockCols;
            const int j = col0 + c;
            s_vt[c * kVtStride + u] = u < n && j < kValueDim
                ? value[((token0 + u) * kv_heads + h) * kValueDim + j]
                : oa::from_float(0.0f);
        }

        for (int g = 0; g < kGroup; ++g) {
            const int qh = h * kGroup + g;
            // Phase 2: phi(Q) of query head qh.
            load_phi_rows<act_t, true>(s_q, s_q_scale, query + (token0 * q_heads + qh) * kHeadDim,
                static_cast<long long>(q_heads) * kHeadDim, n, scale, warp, lane);
            __syncthreads();
            if (g == 0) {
                // Read in phase 6, after later barriers.
                for (int u = tid; u < kChunk; u += kThreads) {
                    s_k_weight[u] = u < n ? s_pow[n - 1 - u] : 0.0f;
                }
            }

            // Phase 3: A = mask(phi(Q) phi(K)^T * gamma^(t-u)).
#if ACT_TYPE == ACT_F32
            {
                const int u = tid % kChunk;
                const int rg = tid / kChunk;
                float acc[kScoreRowsPerThread];
#pragma unroll
                for (int r = 0; r < kScoreRowsPerThread; ++r) {
                    acc[r] = 0.0f;
                }
                for (int i = 0; i < kHeadDim; ++i) {
                    const float k = s_k[u * kQkStride + i];
#pragma unroll
                    for (int r = 0; r < kScoreRowsPerThread; ++r) {
                        acc[r] += s_q[(rg + kScoreRowGroups * r) * kQkStride + i] * k;
                    }
                }
#pragma unroll
                for (int r = 0; r < kScoreRowsPerThread; ++r) {
                    const int t = rg + kScoreRowGroups * r;
                    s_a[t * kAStride + u] = u <= t ? acc[r] * s_pow[t - u] : 0.0f;
                }
            }
#else
            {
                const int gr = lane >> 2;  // fragment row group
                const int tq = lane & 3;   // thread in group
                for (int rb = warp; rb < kChunk / 16; rb += kWarps) {
                    const int t0 = rb * 16 + gr;
                    const int t1 = t0 + 8;
                    float row_max0 = 0.0f;
                    float row_max1 = 0.0f;
                    for (int nb = 0; nb < kChunk / 8; ++nb) {
                        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                        if (nb * 8 <= rb * 16 + 15) {  // tiles wholly above the diagonal are masked out
#pragma unroll
                            for (int kb = 0; kb < kKeyPad / 16; ++kb) {
                                const act_t* q0 = s_q + t0 * kQkStride + kb * 16 + 2 * tq;
                                const act_t* q1 = q0 + 8 * kQkStride;
                                const unsigned int a[4] = {load_pair(q0), load_pair(q1), load_pair(q0 + 8), load_pair(q1 + 8)};
                                const float* k0 = s_k + (nb * 8 + gr) * kQkStride + kb * 16 + 2 * tq;
                                const float k_inverse = 1.0f / s_k_scale[nb * 8 + gr];
                                const unsigned int bf[2] = {oa::pack2(k0[0] * k_inverse, k0[1] * k_inverse),
                                    oa::pack2(k0[8] * k_inverse, k0[9] * k_inverse)};
                                oa::mma_16816(d, a, bf);
                            }
                        }
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int t = e < 2 ? t0 : t1;
                            const int u = nb * 8 + 2 * tq + (e & 1);
                            const float v = u <= t ? d[e] * s_q_scale[t] * s_k_scale[u] * s_pow[t - u] : 0.0f;
                            s_a[t * kAStride + u] = v;
                            if (e < 2) {
                                row_max0 = fmaxf(row_max0, fabsf(v));
                            } else {
                                row_max1 = fmaxf(row_max1, fabsf(v));
                            }
                        }
                    }
                    // The four lanes of a row group hold all of rows t0 and t1 between them.
                    row_max0 = oa::group_max<4>(row_max0);
                    row_max1 = oa::group_max<4>(row_max1);
                    if (tq == 0) {
                        s_a_scale[t0] = pow2_above(row_max0);
                        s_a_scale[t1] = pow2_above(row_max1);
                    }
                }
            }
#endif
            __syncthreads();

            // Phase 4: denominators and the intra-chunk part Y = A V.
#if NORMALIZE
            for (int t = tid; t < kChunk; t += kThreads) {
                float dot = 0.0f;
                for (int i = 0; i < kHeadDim; ++i) {
                    dot += oa::to_float(s_q[t * kQkStride + i]) * s_nu[i];
                }
                float row_sum = 0.0f;
                for (int u = 0; u <= t; ++u) {
                    row_sum += s_a[t * kAStride + u];
                }
                s_den[t] = s_pow[t + 1] * s_q_scale[t] * dot + row_sum + epsilon;
            }
#endif
#if ACT_TYPE == ACT_F32
            {
                float acc[kRowsPerThread];
#pragma unroll
                for (int r = 0; r < kRowsPerThread; ++r) {
                    acc[r] = 0.0f;
                }
                for (int u = 0; u < kChunk; ++u) {
                    const float v = s_vt[my_col * kVtStride + u];
#pragma unroll
                    for (int r = 0; r < kRowsPerThread; ++r) {
                        acc[r] += s_a[(my_row_group + kColRowGroups * r) * kAStride + u] * v;
                    }
                }
#pragma unroll
                for (int r = 0; r < kRowsPerThread; ++r) {
                    s_y[(my_row_group + kColRowGroups * r) * kYStride + my_col] = acc[r];
                }
            }
#else
            {
                const int gr = lane >> 2;
                const int tq = lane & 3;
                for (int tile = warp; tile < (kChunk / 16) * (kBlockCols / 8); tile += kWarps) {
                    const int rb = tile / (kBlockCols / 8);
                    const int nb = tile - rb * (kBlockCols / 8);
                    const int t0 = rb * 16 + gr;
                    const int t1 = t0 + 8;
                    const float inverse0 = 1.0f / s_a_scale[t0];
                    const float inverse1 = 1.0f / s_a_scale[t1];
                    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                    for (int kb = 0; kb <= rb; ++kb) {  // key blocks past the diagonal are all zero
                        const float* a0 = s_a + t0 * kAStride + kb * 16 + 2 * tq;
                        const float* a1 = a0 + 8 * kAStride;
                        const unsigned int a[4] = {
                            oa::pack2(a0[0] * inverse0, a0[1] * inverse0), oa::pack2(a1[0] * inverse1, a1[1] * inverse1),
                            oa::pack2(a0[8] * inverse0, a0[9] * inverse0), oa::pack2(a1[8] * inverse1, a1[9] * inverse1)};
                        const act_t* v0 = s_vt + (nb * 8 + gr) * kVtStride + kb * 16 + 2 * tq;
                        const unsigned int bf[2] = {load_pair(v0), load_pair(v0 + 8)};
                        oa::mma_16816(d, a, bf);
                    }
                    const int c = nb * 8 + 2 * tq;
                    s_y[t0 * kYStride + c] = d[0] * s_a_scale[t0];
                    s_y[t0 * kYStride + c + 1] = d[1] * s_a_scale[t0];
                    s_y[t1 * kYStride + c] = d[2] * s_a_scale[t1];
                    s_y[t1 * kYStride + c + 1] = d[3] * s_a_scale[t1];
                }
            }
#endif
            __syncthreads();

            // Phase 5: y = gamma^(t+1) phi(q_t)^T S0 + Y, normalised, written out.
            {
                float acc[kRowsPerThread];
#pragma unroll
                for (int r = 0; r < kRowsPerThread; ++r) {
                    acc[r] = 0.0f;
                }
                for (int i = 0; i < kHeadDim; ++i) {
                    const float s = s_state[i * kBlockCols + my_col];
#pragma unroll
                    for (int r = 0; r < kRowsPerThread; ++r) {
                        acc[r] += oa::to_float(s_q[(my_row_group + kColRowGroups * r) * kQkStride + i]) * s;
                    }
                }
                if (my_j < kValueDim) {
#pragma unroll
                    for (int r = 0; r < kRowsPerThread; ++r) {
                        const int t = my_row_group + kColRowGroups * r;
                        if (t < n) {
                            float y = s_pow[t + 1] * s_q_scale[t] * acc[r] + s_y[t * kYStride + my_col];
#if NORMALIZE
                            y /= s_den[t];
#endif
                            output[((token0 + t) * q_heads + qh) * kValueDim + my_j] = oa::from_float(y);
                        }
                    }
                }
            }
            __syncthreads();
        }

        // Phase 6: S = gamma^n S0 + phi(K)^T diag(w) V, nu = gamma^n nu0 + phi(K)^T w (float32).
        {
            float wv[kChunk];
#pragma unroll
            for (int u = 0; u < kChunk; ++u) {
                wv[u] = s_k_weight[u] * oa::to_float(s_vt[my_col * kVtStride + u]);
            }
            const float decay_n = s_pow[n];
            for (int i = my_row_group; i < kHeadDim; i += kColRowGroups) {
                float acc = 0.0f;
#pragma unroll
                for (int u = 0; u < kChunk; ++u) {
                    acc += s_k[u * kQkStride + i] * wv[u];
                }
                s_state[i * kBlockCols + my_col] = decay_n * s_state[i * kBlockCols + my_col] + acc;
            }
            if (track_normalizer) {
                for (int i = tid; i < kHeadDim; i += kThreads) {
                    float acc = 0.0f;
                    for (int u = 0; u < n; ++u) {
                        acc += s_k[u * kQkStride + i] * s_k_weight[u];
                    }
                    s_nu[i] = decay_n * s_nu[i] + acc;
                }
            }
        }
        __syncthreads();
    }

    if (present_state != nullptr) {
        for (int idx = tid; idx < kHeadDim * kBlockCols; idx += kThreads) {
            const int i = idx / kBlockCols;
            const int c = idx - i * kBlockCols;
            const int j = col0 + c;
            if (j < kValueDim) {
                present_state[state_base + static_cast<long long>(i) * kValueDim + j] = s_state[idx];
            }
        }
    }
    if (present_normalizer != nullptr && blockIdx.y == 0) {
        for (int i = tid; i < kHeadDim; i += kThreads) {
            present_normalizer[static_cast<long long>(bh) * kHeadDim + i] = s_nu[i];
        }
    }
}
