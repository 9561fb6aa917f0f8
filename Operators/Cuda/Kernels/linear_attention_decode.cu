// com.onnxattention.LinearAttention, recurrent form: one fused kernel per decode step. NOT RUN ON A GPU YET.
//
// The maths is docs/operators/LinearAttention.md exactly: per token, a_i = gamma * exp(g_i) (g = 0 without a gate),
// S' = diag(a) S, nu' = a * nu; linear/gated: S = S' + phi(k) v^T, nu = nu' + phi(k); delta/gated_delta:
// S = S' + phi(k) (beta (v - S'^T phi(k)))^T, nu = nu' + phi(k) beta (1 - phi(k) . nu'); then for every query head of
// the group y = phi(q)^T S, divided by phi(q) . nu + epsilon when NORMALIZE. Arithmetic is float32.
//
// The block keeps its tile of S in registers for the whole call, so the state is read once and written once
// however many tokens the call has (seq_len 1 is the decode step; longer calls run the same recurrence token by
// token). Warps own 32 value columns each (a lane one column j, so state rows are read coalesced) and, when the
// key dimension is long, a slice of the key rows; reductions over key rows go through shared memory. Warp 0
// also carries the normaliser nu (one key row per lane and 32-row stride) in registers.
//
// Required defines:
//   HEAD_DIM      d_k, in [1, 256]              VALUE_DIM   d_v, in [1, 4096]
//   GROUP         query heads per KV head (q_num_heads / kv_num_heads), in [1, 64]
//   RULE          0 linear, 1 gated, 2 delta, 3 gated_delta (the C# UpdateRule order)
//   FEATURE_MAP   see onnx_attention_feature_map.cuh       NORMALIZE   0 or 1       ACT_TYPE   see common header
// Optional defines:
//   GATE_PER_KEY  gated rules: 1 = decay is [B, T, H_kv * d_k] (default), 0 = [B, T, H_kv]
//   BETA_PER_HEAD delta rules: 1 = beta is [B, T, H_kv] (default), 0 = [B, T, 1] shared by all heads
//   BLOCK_COLS    value columns per block, a multiple of 32 (default min(round_up(d_v, 32), 128))
//   EXPECTED_THREADS  when given, a compile-time check that the host's block size formula agrees with this file
//
// Launch contract (entry point linear_attention_decode):
//   grid   (batch * kv_heads, ceil(d_v / BLOCK_COLS), 1)
//   block  (THREADS, 1, 1) with THREADS = 32 * (BLOCK_COLS / 32) * ROW_SPLITS,
//          ROW_SPLITS = min(ceil(d_k / 32), max(1, 16 / (BLOCK_COLS / 32)))   (so THREADS <= 512)
//   dynamic shared memory 0 (all shared memory is static, < 48 KiB, checked at compile time)
//   arguments, in order:
//     const act_t* query        [batch, seq_len, kv_heads * GROUP * d_k]
//     const act_t* key          [batch, seq_len, kv_heads * d_k]
//     const act_t* value        [batch, seq_len, kv_heads * d_v]
//     const float* past_state   [batch, kv_heads, d_k, d_v], or null for zeros
//     const float* past_normalizer  [batch, kv_heads, d_k], or null for zeros
//     const act_t* decay        gated rules: see GATE_PER_KEY; ignored (may be null) otherwise
//     const act_t* beta         delta rules: see BETA_PER_HEAD; ignored (may be null) otherwise
//     act_t*       output       [batch, seq_len, kv_heads * GROUP * d_v]
//     float*       present_state      as past_state, or null when not wanted
//     float*       present_normalizer as past_normalizer, or null when not wanted
//     int seq_len (>= 0; 0 passes the state through), int kv_heads, float scale (resolved, never the attribute's 0),
//     float gamma (the decay attribute), float epsilon
//   present_state may be the same buffer as past_state (each element is read and written by one thread).
//   present_normalizer may alias past_normalizer only when gridDim.y == 1 (every column block reads nu, block
//   y = 0 writes it).
#include "onnx_attention_common.cuh"
#include "onnx_attention_feature_map.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP) || !defined(RULE) || !defined(NORMALIZE)
#error "linear_attention_decode needs HEAD_DIM, VALUE_DIM, GROUP, RULE, FEATURE_MAP, NORMALIZE and ACT_TYPE"
#endif
#if RULE < 0 || RULE > 3
#error "RULE must be 0 (linear), 1 (gated), 2 (delta) or 3 (gated_delta)"
#endif
#ifndef GATE_PER_KEY
#define GATE_PER_KEY 1
#endif
#ifndef BETA_PER_HEAD
#define BETA_PER_HEAD 1
#endif
#ifndef BLOCK_COLS
#define BLOCK_COLS (((VALUE_DIM + 31) / 32 * 32) < 128 ? ((VALUE_DIM + 31) / 32 * 32) : 128)
#endif

#define LA_GATED (RULE == 1 || RULE == 3)
#define LA_DELTA (RULE == 2 || RULE == 3)

namespace {

constexpr int kHeadDim = HEAD_DIM;
constexpr int kValueDim = VALUE_DIM;
constexpr int kGroup = GROUP;
constexpr int kBlockCols = BLOCK_COLS;
constexpr int kColGroups = kBlockCols / 32;
constexpr int kRowSplits = oa::min_int(oa::ceil_div(kHeadDim, 32), oa::max_int(1, 16 / kColGroups));
constexpr int kRowsPerThread = oa::ceil_div(kHeadDim, kRowSplits);
constexpr int kWarps = kColGroups * kRowSplits;
constexpr int kThreads = 32 * kWarps;
constexpr int kKeyPerLane = oa::ceil_div(kHeadDim, 32);

static_assert(kHeadDim >= 1 && kHeadDim <= 256, "HEAD_DIM must be in [1, 256]");
static_assert(kValueDim >= 1 && kValueDim <= 4096, "VALUE_DIM must be in [1, 4096]");
static_assert(kGroup >= 1 && kGroup <= 64, "GROUP must be in [1, 64]");
static_assert(kBlockCols >= 32 && kBlockCols % 32 == 0 && kBlockCols <= 512, "BLOCK_COLS must be a multiple of 32 in [32, 512]");
static_assert(kThreads <= 1024, "block too large");
#ifdef EXPECTED_THREADS
static_assert(kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with linear_attention_decode.cu");
#endif

struct Shared {
    float phi_k[kHeadDim];
    float gate[kHeadDim];                       // a_i = gamma * exp(g_i)
    float phi_q[kGroup][kHeadDim];
    float value[kBlockCols];
    float readout[kGroup][kRowSplits][kBlockCols];  // partial phi(q)^T S over this thread's key rows
#if LA_DELTA
    float retrieval[kRowSplits][kBlockCols];    // partial S'^T phi(k)
    float beta;
#endif
    float denominator[kGroup];
};
static_assert(sizeof(Shared) <= 48 * 1024,
    "linear_attention_decode: static shared memory over 48 KiB; use a smaller BLOCK_COLS or GROUP");

}  // namespace

extern "C" __global__ void __launch_bounds__(kThreads) linear_attention_decode(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* past_state, const float* past_normalizer,
    const act_t* __restrict__ decay, const act_t* __restrict__ beta,
    act_t* __restrict__ output, float* present_state, float* present_normalizer,
    int seq_len, int kv_heads, float scale, float gamma, float epsilon)
{
    __shared__ Shared sh;

    const int bh = blockIdx.x;  // b * kv_heads + h
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const int col0 = blockIdx.y * kBlockCols;
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const int col_group = warp % kColGroups;
    const int row_split = warp / kColGroups;
    const int c = col_group * 32 + lane;  // this thread's column inside the block's tile
    const int j = col0 + c;               // and in the value dimension
    const bool owns_column = j < kValueDim;
    const int row0 = row_split * kRowsPerThread;
    const long long state_base = static_cast<long long>(bh) * kHeadDim * kValueDim;
    const int q_heads = kv_heads * kGroup;

    float s[kRowsPerThread];
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
        const int i = row0 + r;
        s[r] = past_state != nullptr && owns_column && i < kHeadDim
            ? past_state[state_base + static_cast<long long>(i) * kValueDim + j]
            : 0.0f;
    }

    const bool track_normalizer = NORMALIZE != 0 || present_normalizer != nullptr;
    float nu[kKeyPerLane];
#pragma unroll
    for (int m = 0; m < kKeyPerLane; ++m) {
        const int i = lane + 32 * m;
        nu[m] = warp == 0 && past_normalizer != nullptr && i < kHeadDim
            ? past_normalizer[static_cast<long long>(bh) * kHeadDim + i]
            : 0.0f;
    }

    for (int t = 0; t < seq_len; ++t) {
        const long long token = static_cast<long long>(b) * seq_len + t;  // row of [batch, seq_len]
        const long long token_kv = token * kv_heads + h;                  // (b, t, h) over [B, T, H_kv]

        // phi(k) and phi(q) of the group: one warp per vector, so l2norm's reduction stays inside a warp.
        for (int vec = warp; vec <= kGroup; vec += kWarps) {
            const act_t* src = vec == 0
                ? key + token_kv * kHeadDim
                : query + (token * q_heads + static_cast<long long>(h) * kGroup + (vec - 1)) * kHeadDim;
            float* dst = vec == 0 ? sh.phi_k : sh.phi_q[vec - 1];
            float x[kKeyPerLane];
#pragma unroll
            for (int m = 0; m < kKeyPerLane; ++m) {
                const int i = lane + 32 * m;
                x[m] = i < kHeadDim ? oa::to_float(src[i]) : 0.0f;
            }
            oa::phi_vector<kKeyPerLane>(x, vec == 0 ? 1.0f : scale);
#pragma unroll
            for (int m = 0; m < kKeyPerLane; ++m) {
                const int i = lane + 32 * m;
                if (i < kHeadDim) {
                    dst[i] = x[m];
                }
            }
        }
        for (int i = threadIdx.x; i < kHeadDim; i += kThreads) {
#if LA_GATED
#if GATE_PER_KEY
            const float g = oa::to_float(decay[token_kv * kHeadDim + i]);
#else
            const float g = oa::to_float(decay[token_kv]);
#endif
            sh.gate[i] = gamma * expf(g);
#else
            sh.gate[i] = gamma;
#endif
        }
        for (int cc = threadIdx.x; cc < kBlockCols; cc += kThreads) {
            const int jj = col0 + cc;
            sh.value[cc] = jj < kValueDim ? oa::to_float(value[token_kv * kValueDim + jj]) : 0.0f;
        }
#if LA_DELTA
        if (threadIdx.x == 0) {
            sh.beta = oa::to_float(beta[BETA_PER_HEAD ? token_kv : token]);
        }
#endif
        __syncthreads();

        // The normaliser: S's column for a value channel that is always 1, under the same rule.
        if (warp == 0 && track_normalizer) {
            float retrieved = 0.0f;
#pragma unroll
            for (int m = 0; m < kKeyPerLane; ++m) {
                const int i = lane + 32 * m;
                if (i < kHeadDim) {
                    nu[m] *= sh.gate[i];
                    retrieved += nu[m] * sh.phi_k[i];
                }
            }
#if LA_DELTA
            retrieved = oa::group_sum(retrieved);
            const float write = sh.beta * (1.0f - retrieved);
#else
            const float write = 1.0f;
#endif
#pragma unroll
            for (int m = 0; m < kKeyPerLane; ++m) {
                const int i = lane + 32 * m;
                if (i < kHeadDim) {
                    nu[m] += sh.phi_k[i] * write;
                }
            }
#if NORMALIZE
            for (int g = 0; g < kGroup; ++g) {
                float d = 0.0f;
#pragma unroll
                for (int m = 0; m < kKeyPerLane; ++m) {
                    const int i = lane + 32 * m;
                    if (i < kHeadDim) {
                        d += sh.phi_q[g][i] * nu[m];
                    }
                }
                d = oa::group_sum(d);
                if (lane == 0) {
                    sh.denominator[g] = d + epsilon;
                }
            }
#endif
        }

        // Decay, then (delta rules) the retrieval from the decayed state.
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) {
            const int i = row0 + r;
            if (i < kHeadDim) {
                s[r] *= sh.gate[i];
            }
        }
        float write = sh.value[c];
#if LA_DELTA
        {
            float part = 0.0f;
#pragma unroll
            for (int r = 0; r < kRowsPerThread; ++r) {
                const int i = row0 + r;
                if (i < kHeadDim) {
                    part += s[r] * sh.phi_k[i];
                }
            }
            sh.retrieval[row_split][c] = part;
        }
        __syncthreads();
        {
            float retrieved = 0.0f;
#pragma unroll
            for (int rs = 0; rs < kRowSplits; ++rs) {
                retrieved += sh.retrieval[rs][c];
            }
            write = sh.beta * (write - retrieved);
        }
#endif
        // Write, then the group's read-outs of the updated state (partial over this thread's rows).
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) {
            const int i = row0 + r;
            if (i < kHeadDim) {
                s[r] += sh.phi_k[i] * write;
            }
        }
        for (int g = 0; g < kGroup; ++g) {
            float part = 0.0f;
#pragma unroll
            for (int r = 0; r < kRowsPerThread; ++r) {
                const int i = row0 + r;
                if (i < kHeadDim) {
                    part += sh.phi_q[g][i] * s[r];
                }
            }
            sh.readout[g][row_split][c] = part;
        }
        __syncthreads();

        for (int idx = threadIdx.x; idx < kGroup * kBlockCols; idx += kThreads) {
            const int g = idx / kBlockCols;
            const int cc = idx - g * kBlockCols;
            const int jj = col0 + cc;
            if (jj < kValueDim) {
                float y = 0.0f;
#pragma unroll
                for (int rs = 0; rs < kRowSplits; ++rs) {
                    y += sh.readout[g][rs][cc];
                }
#if NORMALIZE
                y /= sh.denominator[g];
#endif
                output[(token * q_heads + static_cast<long long>(h) * kGroup + g) * kValueDim + jj] = oa::from_float(y);
            }
        }
        // The next token overwrites phi, gate, value and the partial sums.
        __syncthreads();
    }

    if (present_state != nullptr && owns_column) {
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) {
            const int i = row0 + r;
            if (i < kHeadDim) {
                present_state[state_base + static_cast<long long>(i) * kValueDim + j] = s[r];
            }
        }
    }
    if (present_normalizer != nullptr && warp == 0 && blockIdx.y == 0) {
#pragma unroll
        for (int m = 0; m < kKeyPerLane; ++m) {
            const int i = lane + 32 * m;
            if (i < kHeadDim) {
                present_normalizer[static_cast<long long>(bh) * kHeadDim + i] = nu[m];
            }
        }
    }
}
