// com.onnxattention.WindowAttention, decode step (one query token per batch row). NOT RUN ON A GPU YET.
//
// Maths and state layout: docs/operators/WindowAttention.md. The token at absolute position p (= past_position)
// is written into the cache (ring row S + p mod W, and sink row p when p < S), then each query head of the group
// attends, with one softmax, to A(p) = window positions max(0, p-W+1)..p united with sink positions 0..min(S,p+1)-1:
//   ring row r' = r - S is attended when p >= W or r' <= p (it then holds a window position); sink row r is
//   attended when r <= p - W (a sink that has left the window; inside the window its ring copy counts).
// Scores are scale * q.k, capped to c tanh(s / c) when softcap c > 0, and the softmax is online (running maximum
// and sum, rescaled per tile of 64 rows), in float32.
//
// The scoring, online softmax and split-K machinery is onnx_attention_cache_decode.cuh; this file says which rows
// exist and where their contents come from. In-place safe (caches). Every row a block owns is copied to the present cache on the way when
// that is a different buffer (the present cache may also be the past one: each element is read, then written, by
// one thread). With gridDim.y == 1 the block writes the output itself; otherwise it writes an unnormalised partial
// and window_attention_combine merges the splits.
//
// Required defines: HEAD_DIM (d_k, [1, 512]), VALUE_DIM (d_v, [1, 512]), GROUP ([1, 64]), ACT_TYPE.
// Optional: EXPECTED_THREADS (compile-time check of the host's block size).
//
// Launch contract.
// Entry point window_attention_decode:
//   grid   (batch * kv_heads, splits, 1), splits in [1, S + W]; each split owns rows
//          [y * R, min((y + 1) * R, S + W)) with R = ceil((S + W) / splits)
//   block  (128, 1, 1); dynamic shared memory 0 (static, < 48 KiB)
//   arguments, in order:
//     const act_t* query [batch, 1, kv_heads * GROUP * d_k]   const act_t* key [batch, 1, kv_heads * d_k]
//     const act_t* value [batch, 1, kv_heads * d_v]
//     const float* past_key_cache [batch, kv_heads, S + W, d_k] or null (zeros)
//     const float* past_value_cache [batch, kv_heads, S + W, d_v] or null
//     const long long* past_position [batch] or [1], or null (position 0)    int position_stride (1 for [batch], 0 for [1])
//     act_t* output [batch, 1, kv_heads * GROUP * d_v] (written when splits == 1)
//     float* present_key_cache, float* present_value_cache (as the past caches; may be the same buffers)
//     long long* present_position (as past_position's shape, or null): p + 1
//     float* partial_acc [batch * kv_heads * GROUP, splits, d_v], float* partial_max, float* partial_sum
//          [batch * kv_heads * GROUP, splits] (only when splits > 1; may be null otherwise)
//     int kv_heads, int window (W), int sinks (S), float scale (resolved), float softcap (0 = off)
// Entry point window_attention_combine (only when splits > 1, after window_attention_decode on the same stream):
//   grid (batch * kv_heads * GROUP, 1, 1), block (128, 1, 1), no dynamic shared memory
//   arguments: const float* partial_acc, const float* partial_max, const float* partial_sum, act_t* output, int splits
#include "onnx_attention_common.cuh"
#include "onnx_attention_cache_decode.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP)
#error "window_attention_decode needs HEAD_DIM, VALUE_DIM, GROUP and ACT_TYPE"
#endif

namespace {

namespace cd = oa::cache_decode;
using Shared = cd::Shared<HEAD_DIM, VALUE_DIM, GROUP>;
using Layout = cd::Layout<HEAD_DIM, VALUE_DIM, GROUP>;

static_assert(HEAD_DIM >= 1 && HEAD_DIM <= 512, "HEAD_DIM must be in [1, 512]");
static_assert(VALUE_DIM >= 1 && VALUE_DIM <= 512, "VALUE_DIM must be in [1, 512]");
static_assert(GROUP >= 1 && GROUP <= 64, "GROUP must be in [1, 64]");
static_assert(sizeof(Shared) <= 48 * 1024, "window_attention_decode: static shared memory over 48 KiB; lower GROUP");
#ifdef EXPECTED_THREADS
static_assert(cd::kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with window_attention_decode.cu");
#endif

// Rows 0 .. S-1 are the sink rows, S .. S+W-1 the ring (docs/operators/WindowAttention.md, "State layout").
struct WindowRows {
    const float* past_key;
    const float* past_value;
    float* present_key;
    float* present_value;
    const float* new_key;    // shared memory
    const float* new_value;  // shared memory
    long long p;
    int window;
    int sinks;
    bool copy_keys;
    bool copy_values;

    __device__ cd::RowKind kind(int row) const
    {
        cd::RowKind k;
        if (row < sinks) {
            k.is_new = p < sinks && row == p;
            k.attended = static_cast<long long>(row) + window <= p;  // a sink that has left the window
        } else {
            const int ring = row - sinks;
            k.is_new = ring == static_cast<int>(p % window);
            k.attended = k.is_new || p >= window || ring < p;      // written, hence inside the window
        }
        return k;
    }

    __device__ float key(int row, int i, cd::RowKind k) const
    {
        return k.is_new ? new_key[i] : past_key != nullptr ? past_key[static_cast<long long>(row) * HEAD_DIM + i] : 0.0f;
    }

    __device__ void store_key(int row, int i, cd::RowKind k, float x) const
    {
        if (copy_keys || k.is_new) {
            present_key[static_cast<long long>(row) * HEAD_DIM + i] = x;
        }
    }

    __device__ float value(int row, int j, cd::RowKind k) const
    {
        return k.is_new ? new_value[j] : past_value != nullptr ? past_value[static_cast<long long>(row) * VALUE_DIM + j] : 0.0f;
    }

    __device__ void store_value(int row, int j, cd::RowKind k, float x) const
    {
        if (copy_values || k.is_new) {
            present_value[static_cast<long long>(row) * VALUE_DIM + j] = x;
        }
    }
};

}  // namespace

extern "C" __global__ void __launch_bounds__(cd::kThreads) window_attention_decode(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* past_key_cache, const float* past_value_cache,
    const long long* past_position, int position_stride,
    act_t* __restrict__ output, float* present_key_cache, float* present_value_cache, long long* present_position,
    float* __restrict__ partial_acc, float* __restrict__ partial_max, float* __restrict__ partial_sum,
    int kv_heads, int window, int sinks, float scale, float softcap)
{
    __shared__ Shared sh;
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const int rows = sinks + window;
    const long long p = past_position != nullptr ? past_position[static_cast<long long>(b) * position_stride] : 0;
    if (present_position != nullptr && h == 0 && blockIdx.y == 0 && threadIdx.x == 0 && (position_stride != 0 || b == 0)) {
        present_position[static_cast<long long>(b) * position_stride] = p + 1;
    }
    cd::load_query_and_token(sh, query, key, value, b, h, kv_heads, scale);

    const long long head = static_cast<long long>(bh) * rows;
    WindowRows cache;
    cache.past_key = past_key_cache != nullptr ? past_key_cache + head * HEAD_DIM : nullptr;
    cache.past_value = past_value_cache != nullptr ? past_value_cache + head * VALUE_DIM : nullptr;
    cache.present_key = present_key_cache + head * HEAD_DIM;
    cache.present_value = present_value_cache + head * VALUE_DIM;
    cache.new_key = sh.new_key;
    cache.new_value = sh.new_value;
    cache.p = p;
    cache.window = window;
    cache.sinks = sinks;
    cache.copy_keys = present_key_cache != past_key_cache;
    cache.copy_values = present_value_cache != past_value_cache;

    int row_begin, row_end;
    cd::split_range(rows, 1, row_begin, row_end);
    float acc[GROUP][Layout::kValuePerThread];
    cd::attend(cache, sh, row_begin, row_end, softcap, acc);
    cd::finish(sh, acc, b, h, kv_heads, output, nullptr, partial_acc, partial_max, partial_sum);
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) window_attention_combine(
    const float* __restrict__ partial_acc, const float* __restrict__ partial_max, const float* __restrict__ partial_sum,
    act_t* __restrict__ output, int splits)
{
    cd::combine<VALUE_DIM>(partial_acc, partial_max, partial_sum, output, nullptr, splits);
}
