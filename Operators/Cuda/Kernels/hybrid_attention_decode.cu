// com.onnxattention.HybridAttention, decode step (one query token per batch row). NOT RUN ON A GPU YET.
//
// Maths and state layout: docs/operators/HybridAttention.md. With p = past_position and W = window, ring row
// p mod W holds position p - W when p >= W: that token is evicted into the compressed state, then overwritten by
// the current token. n_e = max(0, p + 1 - W) tokens have been evicted after this step.
//   compress = mean (COMPRESS 1): the evicted tokens are one extra softmax slot with key sum_k / n_e and value
//     sum_v / n_e, present when n_e > 0 (row W of the policy below, scored like any ring row).
//   compress = linear (COMPRESS 0): mu = sum phi(k_e) v_e^T, nu = sum phi(k_e) with phi = elu + 1 of the unscaled
//     key; y = (1 - g) y_window + g phi(q)^T mu / (phi(q) . nu + epsilon), g = n_e / (p + 1), phi(q) unscaled.
//     hybrid_attention_decode writes y_window (float32) to a scratch buffer; hybrid_attention_linear then updates
//     mu and nu and writes the mixed output.
//
// The window part uses onnx_attention_cache_decode.cuh. The evicted row is read from the past ring while the
// current token is written into the present one, so the present buffers must NOT alias the past ones.
// NOT in-place safe: a host that binds the state in place gets hybrid_attention_prefill.cu's launches instead
// (attention, compress, store: each in-place safe), which the launch plan picks for one token as for a prompt.
//
// Required defines: HEAD_DIM (d_k, [1, 512]), VALUE_DIM (d_v, [1, 512]), GROUP ([1, 64]), COMPRESS (0 linear,
// 1 mean: the C# CompressKind order), ACT_TYPE. Optional: EXPECTED_THREADS.
//
// Launch contract.
// Entry point hybrid_attention_decode:
//   grid   (batch * kv_heads, splits, 1); the rows are the W ring rows (+ the mean slot as row W for COMPRESS 1),
//          split y owning [y R, min((y + 1) R, rows)), R = ceil(rows / splits)
//   block  (128, 1, 1); dynamic shared memory 0 (static, < 48 KiB)
//   arguments, in order:
//     const act_t* query [batch, 1, kv_heads * GROUP * d_k]   const act_t* key [batch, 1, kv_heads * d_k]
//     const act_t* value [batch, 1, kv_heads * d_v]
//     const float* past_key [batch, kv_heads, W, d_k] or null   const float* past_value [batch, kv_heads, W, d_v] or null
//     const long long* past_position [batch] or null (position 0)
//     const float* past_compressed_key   [batch, kv_heads, d_k] or null
//     const float* past_compressed_value mean: [batch, kv_heads, 1, d_v]; linear: not read here (null is fine)
//     act_t* output [batch, 1, kv_heads * GROUP * d_v]   COMPRESS 1 with splits == 1; otherwise null
//     float* window_output [batch * kv_heads * GROUP, d_v]  COMPRESS 0 with splits == 1 (y_window); otherwise null
//     float* present_key, float* present_value (required, distinct from the past buffers)
//     long long* present_position [batch] or null: p + 1
//     float* present_compressed_key, float* present_compressed_value: COMPRESS 1 only (the sums after eviction);
//          null for COMPRESS 0 (hybrid_attention_linear writes them)
//     float* partial_acc [batch * kv_heads * GROUP, splits, d_v], float* partial_max, float* partial_sum
//          [batch * kv_heads * GROUP, splits] (only when splits > 1)
//     int kv_heads, int window (W), float scale (resolved)
// Entry point hybrid_attention_combine (only when splits > 1): grid (batch * kv_heads * GROUP), block 128;
//   arguments: const float* partial_acc, const float* partial_max, const float* partial_sum,
//   act_t* output (COMPRESS 1) or null, float* window_output (COMPRESS 0) or null, int splits
// Entry point hybrid_attention_linear (launched for COMPRESS 0 only, after the window part and its combine):
//   grid (batch * kv_heads, ceil(d_v / 32), 1), block (128, 1, 1) (4 warps over key rows, a lane per value column)
//   arguments: const act_t* query, const float* past_key, const float* past_value, const long long* past_position,
//   const float* past_compressed_key (nu) or null, const float* past_compressed_value (mu, [batch, kv_heads, d_k,
//   d_v]) or null, const float* window_output, act_t* output, float* present_compressed_key,
//   float* present_compressed_value, int kv_heads, int window, float epsilon
//   (present_compressed_key may alias past_compressed_key only when gridDim.y == 1; present_compressed_value may
//   alias past_compressed_value: each element is read, then written, by one thread)
#include "onnx_attention_common.cuh"
#include "onnx_attention_cache_decode.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP) || !defined(COMPRESS)
#error "hybrid_attention_decode needs HEAD_DIM, VALUE_DIM, GROUP, COMPRESS and ACT_TYPE"
#endif
#if COMPRESS != 0 && COMPRESS != 1
#error "COMPRESS must be 0 (linear) or 1 (mean)"
#endif

namespace {

namespace cd = oa::cache_decode;
using Shared = cd::Shared<HEAD_DIM, VALUE_DIM, GROUP>;
using Layout = cd::Layout<HEAD_DIM, VALUE_DIM, GROUP>;

static_assert(HEAD_DIM >= 1 && HEAD_DIM <= 512, "HEAD_DIM must be in [1, 512]");
static_assert(VALUE_DIM >= 1 && VALUE_DIM <= 512, "VALUE_DIM must be in [1, 512]");
static_assert(GROUP >= 1 && GROUP <= 64, "GROUP must be in [1, 64]");
static_assert(sizeof(Shared) <= 48 * 1024, "hybrid_attention_decode: static shared memory over 48 KiB; lower GROUP");
#ifdef EXPECTED_THREADS
static_assert(cd::kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with hybrid_attention_decode.cu");
#endif

__device__ __forceinline__ const float* slice(const float* p, long long offset) { return p != nullptr ? p + offset : nullptr; }

struct HybridRows {
    const float* past[2];       // ring keys / values, null = zeros
    float* present[2];
    const float* new_row[2];    // shared memory
    const float* past_sum[2];   // mean: evicted key / value sums, null = zeros
    float* present_sum[2];
    long long p;
    int window;
    int slot;                   // p mod W: the current token's ring row (and the evicted token's, when p >= W)
    bool evicts;                // p >= W
    float mean_scale;           // 1 / n_e (0 when nothing was evicted)

    __device__ cd::RowKind kind(int row) const
    {
        if (row == window) {
            return cd::RowKind{mean_scale > 0.0f, false};  // the mean slot
        }
        const bool is_new = row == slot;
        return cd::RowKind{is_new || p >= window || row < p, is_new};
    }

    template <int Dim>
    __device__ float ring(int which, int row, int e) const
    {
        return past[which] != nullptr ? past[which][static_cast<long long>(row) * Dim + e] : 0.0f;
    }

    // The evicted sum after this step: the past sum plus the token leaving the window.
    template <int Dim>
    __device__ float sum_after(int which, int e) const
    {
        const float sum = past_sum[which] != nullptr ? past_sum[which][e] : 0.0f;
        return evicts ? sum + ring<Dim>(which, slot, e) : sum;
    }

    template <int Dim>
    __device__ float content(int which, int row, int e, cd::RowKind k) const
    {
        if (row == window) {
            return sum_after<Dim>(which, e) * mean_scale;
        }
        return k.is_new ? new_row[which][e] : ring<Dim>(which, row, e);
    }

    template <int Dim>
    __device__ void store(int which, int row, int e, float x) const
    {
        if (row == window) {
            present_sum[which][e] = sum_after<Dim>(which, e);  // the numerator, not the mean
        } else {
            present[which][static_cast<long long>(row) * Dim + e] = x;
        }
    }

    __device__ float key(int row, int i, cd::RowKind k) const { return content<HEAD_DIM>(0, row, i, k); }
    __device__ void store_key(int row, int i, cd::RowKind, float x) const { store<HEAD_DIM>(0, row, i, x); }
    __device__ float value(int row, int j, cd::RowKind k) const { return content<VALUE_DIM>(1, row, j, k); }
    __device__ void store_value(int row, int j, cd::RowKind, float x) const { store<VALUE_DIM>(1, row, j, x); }
};

}  // namespace

extern "C" __global__ void __launch_bounds__(cd::kThreads) hybrid_attention_decode(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* past_key, const float* past_value, const long long* past_position,
    const float* past_compressed_key, const float* past_compressed_value,
    act_t* __restrict__ output, float* __restrict__ window_output,
    float* present_key, float* present_value, long long* present_position,
    float* present_compressed_key, float* present_compressed_value,
    float* __restrict__ partial_acc, float* __restrict__ partial_max, float* __restrict__ partial_sum,
    int kv_heads, int window, float scale)
{
    __shared__ Shared sh;
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const long long p = past_position != nullptr ? past_position[b] : 0;
    if (present_position != nullptr && h == 0 && blockIdx.y == 0 && threadIdx.x == 0) {
        present_position[b] = p + 1;
    }
    cd::load_query_and_token(sh, query, key, value, b, h, kv_heads, scale);

    HybridRows rows;
    rows.past[0] = slice(past_key, static_cast<long long>(bh) * window * HEAD_DIM);
    rows.past[1] = slice(past_value, static_cast<long long>(bh) * window * VALUE_DIM);
    rows.present[0] = present_key + static_cast<long long>(bh) * window * HEAD_DIM;
    rows.present[1] = present_value + static_cast<long long>(bh) * window * VALUE_DIM;
    rows.new_row[0] = sh.new_key;
    rows.new_row[1] = sh.new_value;
#if COMPRESS == 1
    rows.past_sum[0] = slice(past_compressed_key, static_cast<long long>(bh) * HEAD_DIM);
    rows.past_sum[1] = slice(past_compressed_value, static_cast<long long>(bh) * VALUE_DIM);
    rows.present_sum[0] = present_compressed_key + static_cast<long long>(bh) * HEAD_DIM;
    rows.present_sum[1] = present_compressed_value + static_cast<long long>(bh) * VALUE_DIM;
    const long long evicted = p + 1 > window ? p + 1 - window : 0;
    rows.mean_scale = evicted > 0 ? static_cast<float>(1.0 / static_cast<double>(evicted)) : 0.0f;
    const int row_count = window + 1;
#else
    (void)past_compressed_key;
    (void)past_compressed_value;
    (void)present_compressed_key;
    (void)present_compressed_value;
    rows.past_sum[0] = rows.past_sum[1] = nullptr;
    rows.present_sum[0] = rows.present_sum[1] = nullptr;
    rows.mean_scale = 0.0f;
    const int row_count = window;
#endif
    rows.p = p;
    rows.window = window;
    rows.slot = static_cast<int>(p % window);
    rows.evicts = p >= window;

    int row_begin, row_end;
    cd::split_range(row_count, 1, row_begin, row_end);
    float acc[GROUP][Layout::kValuePerThread];
    cd::attend(rows, sh, row_begin, row_end, 0.0f, acc);
    cd::finish(sh, acc, b, h, kv_heads, output, window_output, partial_acc, partial_max, partial_sum);
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) hybrid_attention_combine(
    const float* __restrict__ partial_acc, const float* __restrict__ partial_max, const float* __restrict__ partial_sum,
    act_t* __restrict__ output, float* __restrict__ window_output, int splits)
{
    cd::combine<VALUE_DIM>(partial_acc, partial_max, partial_sum, output, window_output, splits);
}

// Defined for every COMPRESS (so each specialisation has the same entry points); launched only for linear.
namespace {

constexpr int kLinearThreads = 128;
constexpr int kLinearWarps = kLinearThreads / 32;
constexpr int kKeyPerLane = oa::ceil_div(HEAD_DIM, 32);

struct LinearShared {
    float phi_q[GROUP][HEAD_DIM];
    float phi_k[HEAD_DIM];             // phi of the evicted key (zeros when nothing is evicted)
    float evicted_value[32];
    float readout[GROUP][kLinearWarps][32];
    float denominator[GROUP];
};
static_assert(sizeof(LinearShared) <= 48 * 1024, "hybrid_attention_linear: static shared memory over 48 KiB; lower GROUP");

// The linear part's phi, on unscaled queries and keys.
__device__ __forceinline__ float elu_plus_one(float x) { return x > 0.0f ? x + 1.0f : expf(x); }

}  // namespace

extern "C" __global__ void __launch_bounds__(kLinearThreads) hybrid_attention_linear(
    const act_t* __restrict__ query, const float* past_key, const float* past_value, const long long* past_position,
    const float* past_compressed_key, const float* past_compressed_value, const float* __restrict__ window_output,
    act_t* __restrict__ output, float* present_compressed_key, float* present_compressed_value,
    int kv_heads, int window, float epsilon)
{
    __shared__ LinearShared sh;
    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const int q_heads = kv_heads * GROUP;
    const int j = blockIdx.y * 32 + lane;
    const long long p = past_position != nullptr ? past_position[b] : 0;
    const bool evicts = p >= window;
    const int slot = static_cast<int>(p % window);
    const long long evicted = p + 1 > window ? p + 1 - window : 0;

    for (int idx = tid; idx < GROUP * HEAD_DIM; idx += kLinearThreads) {
        const int g = idx / HEAD_DIM;
        const int i = idx - g * HEAD_DIM;
        sh.phi_q[g][i] = elu_plus_one(oa::to_float(query[(static_cast<long long>(b) * q_heads + h * GROUP + g) * HEAD_DIM + i]));
    }
    const long long ring_row = static_cast<long long>(bh) * window + slot;
    for (int i = tid; i < HEAD_DIM; i += kLinearThreads) {
        sh.phi_k[i] = evicts && past_key != nullptr ? elu_plus_one(past_key[ring_row * HEAD_DIM + i])
            : evicts ? 1.0f  // a missing past cache reads as zeros, and phi(0) = 1
            : 0.0f;
    }
    if (tid < 32) {
        sh.evicted_value[tid] = evicts && past_value != nullptr && j < VALUE_DIM ? past_value[ring_row * VALUE_DIM + j] : 0.0f;
    }
    __syncthreads();

    // nu after the eviction, and the denominators phi(q) . nu + epsilon (warp 0).
    if (warp == 0) {
        float nu[kKeyPerLane];
#pragma unroll
        for (int m = 0; m < kKeyPerLane; ++m) {
            const int i = lane + 32 * m;
            nu[m] = 0.0f;
            if (i < HEAD_DIM) {
                const float past = past_compressed_key != nullptr ? past_compressed_key[static_cast<long long>(bh) * HEAD_DIM + i] : 0.0f;
                nu[m] = past + sh.phi_k[i];
            }
        }
        for (int g = 0; g < GROUP; ++g) {
            float d = 0.0f;
#pragma unroll
            for (int m = 0; m < kKeyPerLane; ++m) {
                const int i = lane + 32 * m;
                if (i < HEAD_DIM) {
                    d += sh.phi_q[g][i] * nu[m];
                }
            }
            d = oa::group_sum(d);
            if (lane == 0) {
                sh.denominator[g] = d + epsilon;
            }
        }
        if (blockIdx.y == 0) {
#pragma unroll
            for (int m = 0; m < kKeyPerLane; ++m) {
                const int i = lane + 32 * m;
                if (i < HEAD_DIM) {
                    present_compressed_key[static_cast<long long>(bh) * HEAD_DIM + i] = nu[m];
                }
            }
        }
    }

    // mu after the eviction (rows split over the warps, a lane per column), and the partial read-outs.
    float part[GROUP];
#pragma unroll
    for (int g = 0; g < GROUP; ++g) {
        part[g] = 0.0f;
    }
    if (j < VALUE_DIM) {
        const float v = sh.evicted_value[lane];
        for (int i = warp; i < HEAD_DIM; i += kLinearWarps) {
            const long long at = (static_cast<long long>(bh) * HEAD_DIM + i) * VALUE_DIM + j;
            const float mu = (past_compressed_value != nullptr ? past_compressed_value[at] : 0.0f) + sh.phi_k[i] * v;
            present_compressed_value[at] = mu;
#pragma unroll
            for (int g = 0; g < GROUP; ++g) {
                part[g] += sh.phi_q[g][i] * mu;
            }
        }
    }
#pragma unroll
    for (int g = 0; g < GROUP; ++g) {
        sh.readout[g][warp][lane] = part[g];
    }
    __syncthreads();

    const float gate = static_cast<float>(static_cast<double>(evicted) / static_cast<double>(p + 1));
    for (int idx = tid; idx < GROUP * 32; idx += kLinearThreads) {
        const int g = idx / 32;
        const int c = idx - g * 32;
        const int jj = blockIdx.y * 32 + c;
        if (jj < VALUE_DIM) {
            const long long head_row = static_cast<long long>(b) * q_heads + h * GROUP + g;
            float y = window_output[head_row * VALUE_DIM + jj];
            if (evicted > 0) {
                float linear = 0.0f;
#pragma unroll
                for (int w = 0; w < kLinearWarps; ++w) {
                    linear += sh.readout[g][w][c];
                }
                y = y * (1.0f - gate) + linear * (gate / sh.denominator[g]);
            }
            output[head_row * VALUE_DIM + jj] = oa::from_float(y);
        }
    }
}
