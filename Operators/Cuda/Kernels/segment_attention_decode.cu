// com.onnxattention.SegmentAttention, decode step (one query token per batch row). NOT RUN ON A GPU YET.
//
// Maths and state layout: docs/operators/SegmentAttention.md. With p = past_position, L = segment_length,
// s = p / L and r = p mod L, the token attends with one softmax to the previous segment (all L memory rows, when
// s >= 1) and to its own segment's rows 0 .. r (row r being the token itself). Its key and value go into segment
// row r; when r = L - 1 the segment is full and moves to the memory (present memory = the segment with the token,
// present segment = zeros). Rows that hold no token are never read and are written as zeros.
//
// The scoring, online softmax and split-K machinery is onnx_attention_cache_decode.cuh. Rows 0 .. L-1 are the
// memory, L .. 2L-1 the segment. Because a full segment's rows are copied into the memory rows, the present
// buffers must NOT alias the past ones (another block may still be reading a row that would be overwritten).
// NOT in-place safe: a host that binds the state in place gets segment_attention_prefill.cu's pair instead
// (attention, then an in-place-safe store), which the launch plan picks for one token as for a prompt.
//
// Required defines: HEAD_DIM (d_k, [1, 512]), VALUE_DIM (d_v, [1, 512]), GROUP ([1, 64]), ACT_TYPE.
// Optional: EXPECTED_THREADS.
//
// Launch contract.
// Entry point segment_attention_decode:
//   grid   (batch * kv_heads, splits, 1), splits in [1, 2L]; split y owns rows [y R, min((y + 1) R, 2L)),
//          R = ceil(2L / splits)
//   block  (128, 1, 1); dynamic shared memory 0 (static, < 48 KiB)
//   arguments, in order:
//     const act_t* query [batch, 1, kv_heads * GROUP * d_k]   const act_t* key [batch, 1, kv_heads * d_k]
//     const act_t* value [batch, 1, kv_heads * d_v]
//     const float* past_memory_key [batch, kv_heads, L, d_k] or null    const float* past_memory_value [.., d_v] or null
//     const float* past_segment_key [batch, kv_heads, L, d_k] or null   const float* past_segment_value or null
//     const long long* past_position [batch] or null (position 0)
//     act_t* output [batch, 1, kv_heads * GROUP * d_v] (written when splits == 1)
//     float* present_memory_key, float* present_memory_value, float* present_segment_key, float* present_segment_value
//          (required, distinct from the past buffers)
//     long long* present_position [batch] or null: p + 1
//     float* partial_acc [batch * kv_heads * GROUP, splits, d_v], float* partial_max, float* partial_sum
//          [batch * kv_heads * GROUP, splits] (only when splits > 1)
//     int kv_heads, int segment_length (L), float scale (resolved)
// Entry point segment_attention_combine (only when splits > 1, after segment_attention_decode on the same stream):
//   grid (batch * kv_heads * GROUP, 1, 1), block (128, 1, 1)
//   arguments: const float* partial_acc, const float* partial_max, const float* partial_sum, act_t* output, int splits
#include "onnx_attention_common.cuh"
#include "onnx_attention_cache_decode.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP)
#error "segment_attention_decode needs HEAD_DIM, VALUE_DIM, GROUP and ACT_TYPE"
#endif

namespace {

namespace cd = oa::cache_decode;
using Shared = cd::Shared<HEAD_DIM, VALUE_DIM, GROUP>;
using Layout = cd::Layout<HEAD_DIM, VALUE_DIM, GROUP>;

static_assert(HEAD_DIM >= 1 && HEAD_DIM <= 512, "HEAD_DIM must be in [1, 512]");
static_assert(VALUE_DIM >= 1 && VALUE_DIM <= 512, "VALUE_DIM must be in [1, 512]");
static_assert(GROUP >= 1 && GROUP <= 64, "GROUP must be in [1, 64]");
static_assert(sizeof(Shared) <= 48 * 1024, "segment_attention_decode: static shared memory over 48 KiB; lower GROUP");
#ifdef EXPECTED_THREADS
static_assert(cd::kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with segment_attention_decode.cu");
#endif

// One (batch row, KV head)'s buffers, offset to its slice; rows [0, L) memory, [L, 2L) segment.
struct SegmentRows {
    const float* past_memory[2];   // [0] keys, [1] values; null = zeros
    const float* past_segment[2];
    float* present_memory[2];
    float* present_segment[2];
    const float* new_row[2];       // the current token's key and value (shared memory)
    int length;                    // L
    int offset;                    // r = p mod L
    bool has_memory;               // p >= L: the previous segment exists

    __device__ cd::RowKind kind(int row) const
    {
        if (row < length) {
            return cd::RowKind{has_memory, false};
        }
        const int i = row - length;
        return cd::RowKind{i <= offset, i == offset};
    }

    // The row's content, or 0 for a row that holds no token (its input may contain anything).
    template <int Dim>
    __device__ float content(int which, int row, int e, cd::RowKind k) const
    {
        if (k.is_new) {
            return new_row[which][e];
        }
        if (!k.attended) {
            return 0.0f;
        }
        const float* buffer = row < length ? past_memory[which] : past_segment[which];
        const int i = row < length ? row : row - length;
        return buffer != nullptr ? buffer[static_cast<long long>(i) * Dim + e] : 0.0f;
    }

    // What this row's index holds after the token. A full segment (offset == L - 1) becomes the memory, so memory
    // row i takes segment row i (the token itself for i = L - 1) and the segment row is cleared.
    template <int Dim>
    __device__ void store(int which, int row, int e, float x) const
    {
        const bool full = offset == length - 1;
        if (row < length) {
            float kept = x;
            if (full) {
                kept = row == offset ? new_row[which][e]
                    : past_segment[which] != nullptr ? past_segment[which][static_cast<long long>(row) * Dim + e] : 0.0f;
            }
            present_memory[which][static_cast<long long>(row) * Dim + e] = kept;
        } else {
            present_segment[which][static_cast<long long>(row - length) * Dim + e] = full ? 0.0f : x;
        }
    }

    __device__ float key(int row, int i, cd::RowKind k) const { return content<HEAD_DIM>(0, row, i, k); }
    __device__ void store_key(int row, int i, cd::RowKind, float x) const { store<HEAD_DIM>(0, row, i, x); }
    __device__ float value(int row, int j, cd::RowKind k) const { return content<VALUE_DIM>(1, row, j, k); }
    __device__ void store_value(int row, int j, cd::RowKind, float x) const { store<VALUE_DIM>(1, row, j, x); }
};

__device__ __forceinline__ const float* slice(const float* p, long long offset) { return p != nullptr ? p + offset : nullptr; }

}  // namespace

extern "C" __global__ void __launch_bounds__(cd::kThreads) segment_attention_decode(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* past_memory_key, const float* past_memory_value,
    const float* past_segment_key, const float* past_segment_value, const long long* past_position,
    act_t* __restrict__ output, float* present_memory_key, float* present_memory_value,
    float* present_segment_key, float* present_segment_value, long long* present_position,
    float* __restrict__ partial_acc, float* __restrict__ partial_max, float* __restrict__ partial_sum,
    int kv_heads, int segment_length, float scale)
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

    const long long key_slice = static_cast<long long>(bh) * segment_length * HEAD_DIM;
    const long long value_slice = static_cast<long long>(bh) * segment_length * VALUE_DIM;
    SegmentRows rows;
    rows.past_memory[0] = slice(past_memory_key, key_slice);
    rows.past_memory[1] = slice(past_memory_value, value_slice);
    rows.past_segment[0] = slice(past_segment_key, key_slice);
    rows.past_segment[1] = slice(past_segment_value, value_slice);
    rows.present_memory[0] = present_memory_key + key_slice;
    rows.present_memory[1] = present_memory_value + value_slice;
    rows.present_segment[0] = present_segment_key + key_slice;
    rows.present_segment[1] = present_segment_value + value_slice;
    rows.new_row[0] = sh.new_key;
    rows.new_row[1] = sh.new_value;
    rows.length = segment_length;
    rows.offset = static_cast<int>(p % segment_length);
    rows.has_memory = p >= segment_length;

    int row_begin, row_end;
    cd::split_range(2 * segment_length, 1, row_begin, row_end);
    float acc[GROUP][Layout::kValuePerThread];
    cd::attend(rows, sh, row_begin, row_end, 0.0f, acc);
    cd::finish(sh, acc, b, h, kv_heads, output, nullptr, partial_acc, partial_max, partial_sum);
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) segment_attention_combine(
    const float* __restrict__ partial_acc, const float* __restrict__ partial_max, const float* __restrict__ partial_sum,
    act_t* __restrict__ output, int splits)
{
    cd::combine<VALUE_DIM>(partial_acc, partial_max, partial_sum, output, nullptr, splits);
}
