// com.onnxattention.WindowAttention, a call of T tokens in two launches. NOT RUN ON A GPU YET.
// (The pattern: onnx_attention_cache_prefill.cuh.)
//
// Maths: docs/operators/WindowAttention.md. Token t of batch row b sits at p = P + t (P = past_position) and attends
// to A(p): the sink positions that have left its window, 0 .. min(S, p - W + 1) - 1, then its window
// max(0, p - W + 1) .. p (a sink inside the window counts once, through the window). Row v of the Rows policy is the
// v-th of those positions. A position j < P comes from the past cache (a sink from sink row j, a window position from
// ring row S + j mod W, which still holds it since j > p - W >= P - W); j >= P from this call's key/value.
// window_attention_store then writes the present cache: the ring holds the last W positions, sink rows the sink
// positions this call covered; each element is read then written by one thread, so the present cache may be the past
// one (only rows this call changed are written then).
//
// Required defines: HEAD_DIM (d_k, [1, 512]), VALUE_DIM (d_v, [1, 512]), GROUP ([1, 64]), ACT_TYPE.
// Optional: EXPECTED_THREADS.
//
// Launch contract (both entry points, on the same stream, in this order; block (128, 1, 1), static shared memory
// only, < 48 KiB):
// Entry point window_attention_prefill:
//   grid (batch * kv_heads * T, 1, 1)  (block x = (b * kv_heads + h) * T + t; at most 2^31 - 1)
//   arguments: const act_t* query [batch, T, kv_heads * GROUP * d_k], const act_t* key [batch, T, kv_heads * d_k],
//     const act_t* value [batch, T, kv_heads * d_v],
//     const float* past_key_cache [batch, kv_heads, S + W, d_k] or null (zeros), const float* past_value_cache or null,
//     const long long* past_position [batch] (position_stride 1) or [1] (position_stride 0) or null (0),
//     int position_stride, act_t* output [batch, T, kv_heads * GROUP * d_v],
//     int seq_len (T >= 1), int kv_heads, int window (W), int sinks (S), float scale (resolved), float softcap (0 = off)
//   Reads only the past state: writes nothing but the output.
// Entry point window_attention_store:
//   grid (batch * kv_heads, min(ceil((S + W) / 16), 65535), 1)  (blocks stride over the rows)
//   arguments: const act_t* key, const act_t* value, const float* past_key_cache, const float* past_value_cache,
//     const long long* past_position, int position_stride, float* present_key_cache, float* present_value_cache,
//     long long* present_position (each present may be null: not written; the caches may be the past ones; the
//     position must NOT be the past one: the host copies it aside), int seq_len, int kv_heads, int window, int sinks
#include "onnx_attention_common.cuh"
#include "onnx_attention_cache_decode.cuh"
#include "onnx_attention_cache_prefill.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP)
#error "window_attention_prefill needs HEAD_DIM, VALUE_DIM, GROUP and ACT_TYPE"
#endif

namespace {

namespace cd = oa::cache_decode;
namespace cp = oa::cache_prefill;
using Shared = cd::Shared<HEAD_DIM, VALUE_DIM, GROUP>;
using Layout = cd::Layout<HEAD_DIM, VALUE_DIM, GROUP>;

static_assert(HEAD_DIM >= 1 && HEAD_DIM <= 512, "HEAD_DIM must be in [1, 512]");
static_assert(VALUE_DIM >= 1 && VALUE_DIM <= 512, "VALUE_DIM must be in [1, 512]");
static_assert(GROUP >= 1 && GROUP <= 64, "GROUP must be in [1, 64]");
static_assert(sizeof(Shared) <= 48 * 1024, "window_attention_prefill: static shared memory over 48 KiB; lower GROUP");
#ifdef EXPECTED_THREADS
static_assert(cd::kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with window_attention_prefill.cu");
#endif

struct WindowPrefillRows {
    const float* past_key;    // this (b, h)'s S + W rows, or null
    const float* past_value;
    const act_t* current_key;    // this call's key/value activations
    const act_t* current_value;
    long long p0;             // P
    long long first_window;   // max(0, p - W + 1)
    int sink_rows;            // sinks attended as sinks
    int b, h, seq_len, kv_heads, window, sinks;

    __device__ long long position(int v) const { return v < sink_rows ? v : first_window + (v - sink_rows); }

    __device__ cd::RowKind kind(int) const { return cd::RowKind{true, false}; }

    template <int Dim>
    __device__ float content(const float* past, const act_t* current, int v, int e) const
    {
        const long long j = position(v);
        if (j >= p0) {
            return cp::chunk<Dim>(current, b, static_cast<int>(j - p0), seq_len, kv_heads, h, e);
        }
        const long long row = v < sink_rows ? j : sinks + j % window;
        return past != nullptr ? past[row * Dim + e] : 0.0f;
    }

    __device__ float key(int v, int i, cd::RowKind) const { return content<HEAD_DIM>(past_key, current_key, v, i); }
    __device__ void store_key(int, int, cd::RowKind, float) const {}
    __device__ float value(int v, int j, cd::RowKind) const { return content<VALUE_DIM>(past_value, current_value, v, j); }
    __device__ void store_value(int, int, cd::RowKind, float) const {}
};

__device__ __forceinline__ long long past_position_of(const long long* past_position, int b, int position_stride)
{
    return past_position != nullptr ? past_position[static_cast<long long>(b) * position_stride] : 0;
}

}  // namespace

extern "C" __global__ void __launch_bounds__(cd::kThreads) window_attention_prefill(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* __restrict__ past_key_cache, const float* __restrict__ past_value_cache,
    const long long* __restrict__ past_position, int position_stride, act_t* __restrict__ output,
    int seq_len, int kv_heads, int window, int sinks, float scale, float softcap)
{
    __shared__ Shared sh;
    const cp::Token k = cp::token_of_block(kv_heads, seq_len);
    const long long p0 = past_position_of(past_position, k.b, position_stride);
    const long long p = p0 + k.t;
    cd::load_query(sh, query, k.row, k.h, kv_heads, scale);

    const long long rows = static_cast<long long>(sinks) + window;
    WindowPrefillRows r;
    r.past_key = past_key_cache != nullptr ? past_key_cache + k.bh * rows * HEAD_DIM : nullptr;
    r.past_value = past_value_cache != nullptr ? past_value_cache + k.bh * rows * VALUE_DIM : nullptr;
    r.current_key = key;
    r.current_value = value;
    r.p0 = p0;
    r.first_window = p - window + 1 > 0 ? p - window + 1 : 0;
    const long long left = p - window + 1;  // sink positions below this have left the window
    r.sink_rows = left <= 0 ? 0 : static_cast<int>(left < sinks ? left : sinks);
    r.b = k.b;
    r.h = k.h;
    r.seq_len = seq_len;
    r.kv_heads = kv_heads;
    r.window = window;
    r.sinks = sinks;
    const int count = r.sink_rows + static_cast<int>(p - r.first_window + 1);

    float acc[GROUP][Layout::kValuePerThread];
    cd::attend(r, sh, 0, count, softcap, acc);
    cp::write_output(sh, acc, output, k, kv_heads);
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) window_attention_store(
    const act_t* __restrict__ key, const act_t* __restrict__ value, const float* past_key_cache,
    const float* past_value_cache, const long long* past_position, int position_stride, float* present_key_cache,
    float* present_value_cache, long long* present_position, int seq_len, int kv_heads, int window, int sinks)
{
    const int b = blockIdx.x / kv_heads;
    const long long p0 = past_position_of(past_position, b, position_stride);
    cp::store_cache<HEAD_DIM, VALUE_DIM>(key, value, past_key_cache, past_value_cache, present_key_cache,
        present_value_cache, p0, seq_len, kv_heads, window, sinks);
    if (present_position != nullptr && blockIdx.x % kv_heads == 0 && blockIdx.y == 0 && threadIdx.x == 0
        && (position_stride != 0 || b == 0)) {
        present_position[static_cast<long long>(b) * position_stride] = p0 + seq_len;
    }
}
