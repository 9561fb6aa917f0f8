// The multi-token (prefill) pass shared by WindowAttention, SegmentAttention and HybridAttention. NOT RUN ON A GPU YET.
//
// A call of T tokens runs as one attention launch and one or two state launches, whatever T is:
//   1. <op>_prefill: one block per (batch row, KV head, token), blockIdx.x = (b * kv_heads + h) * T + t. The block
//      answers token t's GROUP query heads with onnx_attention_cache_decode.cuh's `attend`, over a Rows policy whose
//      row v is the v-th position the token sees: a position before the call (< past_position) is read from the
//      PAST state, a position inside the call from this call's key/value activations. Nothing is written but the
//      output, so every block sees the past state intact, and the state may be updated in place afterwards.
//   2. the state launches (<op>_store, and hybrid_attention_compress): each present-state element is computed from
//      the past state and this call's keys/values by the one thread that writes it, after reading everything it
//      needs; so present buffers may alias past ones (in place), and with aliasing only changed rows are written.
// Kernel boundaries order the passes: the state launches run after the attention launch on the same stream.
//
// Cost: O(T * rows seen per token * (d_k + d_v)); no tensor cores; each block reads its keys once for the
// group's query heads. A reasoned design, never timed (no GPU here).
#pragma once
#include "onnx_attention_common.cuh"
#include "onnx_attention_cache_decode.cuh"

namespace oa {
namespace cache_prefill {

namespace cd = cache_decode;

// The (batch row, KV head, token) of this attention block.
struct Token {
    int b;
    int h;
    int bh;
    int t;
    long long row;  // b * T + t: the token's index in [batch, T, ...] activations
};

__device__ __forceinline__ Token token_of_block(int kv_heads, int seq_len)
{
    Token k;
    const long long x = blockIdx.x;
    k.bh = static_cast<int>(x / seq_len);
    k.t = static_cast<int>(x - static_cast<long long>(k.bh) * seq_len);
    k.b = k.bh / kv_heads;
    k.h = k.bh - k.b * kv_heads;
    k.row = static_cast<long long>(k.b) * seq_len + k.t;
    return k;
}

// Element e of KV head h of token u (0-based within the call) of batch row b in a [batch, T, kv_heads * dim]
// activation.
template <int Dim>
__device__ __forceinline__ float chunk(const act_t* x, int b, int u, int seq_len, int kv_heads, int h, int e)
{
    return to_float(x[((static_cast<long long>(b) * seq_len + u) * kv_heads + h) * Dim + e]);
}

// y = acc / running sum for the group's query heads of one token: output [batch, T, q_heads * d_v].
template <int HeadDim, int ValueDim, int Group>
__device__ void write_output(const cd::Shared<HeadDim, ValueDim, Group>& sh,
    const float (&acc)[Group][cd::Layout<HeadDim, ValueDim, Group>::kValuePerThread], act_t* output, const Token& k,
    int kv_heads)
{
    using L = cd::Layout<HeadDim, ValueDim, Group>;
    if (threadIdx.x >= L::kValueColThreads) {
        return;
    }
#pragma unroll
    for (int g = 0; g < Group; ++g) {
        const long long head_row = k.row * kv_heads * Group + k.h * Group + g;
#pragma unroll
        for (int m = 0; m < L::kValuePerThread; ++m) {
            const int j = threadIdx.x + L::kValueColThreads * m;
            if (j < ValueDim) {
                output[head_row * ValueDim + j] = from_float(acc[g][m] / sh.running_sum[g]);
            }
        }
    }
}

// The latest position j < end with j mod W == ring_index, or -1 when there is none.
__device__ __forceinline__ long long latest_in_ring(long long end, int window, int ring_index)
{
    if (end <= ring_index) {
        return -1;
    }
    return end - 1 - ((end - 1 - ring_index) % window);
}

// The ring part of a present cache after a call (WindowAttention's rows S.. S+W-1 with first_row = S; HybridAttention's
// ring with first_row = 0): ring row i holds the latest position j < P + T with j mod W == i. A position of this call
// comes from its key/value; an older one is already in the past ring at the same row (copied when the present is
// another buffer; skipped in place). Sink rows (WindowAttention only, first_row = S > 0): row r < S takes position r
// when this call covers it. Blocks walk rows blockIdx.y, blockIdx.y + gridDim.y, ...; threads walk the elements.
template <int HeadDim, int ValueDim>
__device__ void store_cache(const act_t* key, const act_t* value, const float* past_key, const float* past_value,
    float* present_key, float* present_value, long long p0, int seq_len, int kv_heads, int window, int first_row)
{
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const int rows = first_row + window;
    const long long slice = static_cast<long long>(bh) * rows;
    const long long end = p0 + seq_len;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        long long j;
        if (r < first_row) {
            j = r >= p0 && r < end ? r : -1;
        } else {
            j = latest_in_ring(end, window, r - first_row);
        }
        const bool fresh = j >= p0;  // from this call's activations
        const int u = fresh ? static_cast<int>(j - p0) : 0;
        const long long at = slice + r;
        if (present_key != nullptr && (fresh || present_key != past_key)) {
            for (int i = threadIdx.x; i < HeadDim; i += blockDim.x) {
                present_key[at * HeadDim + i] = fresh ? chunk<HeadDim>(key, b, u, seq_len, kv_heads, h, i)
                    : past_key != nullptr ? past_key[at * HeadDim + i] : 0.0f;
            }
        }
        if (present_value != nullptr && (fresh || present_value != past_value)) {
            for (int i = threadIdx.x; i < ValueDim; i += blockDim.x) {
                present_value[at * ValueDim + i] = fresh ? chunk<ValueDim>(value, b, u, seq_len, kv_heads, h, i)
                    : past_value != nullptr ? past_value[at * ValueDim + i] : 0.0f;
            }
        }
    }
}

}  // namespace cache_prefill
}  // namespace oa
