// com.onnxattention.SegmentAttention, a call of T tokens in two launches (onnx_attention_cache_prefill.cuh); also the
// decode step when the host updates the state in place. NOT RUN ON A GPU YET.
//
// Maths: docs/operators/SegmentAttention.md. Token t of batch row b sits at p = P + t (P = past_position) and sees
// the contiguous positions max(0, (s(p) - 1) L) .. p, s(p) = p / L: row v of the Rows policy is position
// start + v. A position j < P is in the past state (the past memory holds segment s(P) - 1, the past segment buffer
// positions s(P) L .. P - 1, both at row j mod L; every position a token of this call sees is >= (s(P) - 1) L), a
// position j >= P comes from this call's key/value. segment_attention_store then writes the state after P + T
// tokens: memory row i = position (s' - 1) L + i (zeros when s' = 0), segment row i = position s' L + i for
// i < r' (zeros beyond), s' = (P + T) / L, r' = (P + T) mod L. The memory row i and segment row i of one element are
// read, then written, by one thread, so the present buffers may be the past ones (in place; rows that keep their
// content are not rewritten then).
//
// Required defines: HEAD_DIM (d_k, [1, 512]), VALUE_DIM (d_v, [1, 512]), GROUP ([1, 64]), ACT_TYPE.
// Optional: EXPECTED_THREADS.
//
// Launch contract (both entry points, same stream, this order; block (128, 1, 1); static shared memory < 48 KiB):
// Entry point segment_attention_prefill:
//   grid (batch * kv_heads * T, 1, 1)  (block x = (b * kv_heads + h) * T + t)
//   arguments: const act_t* query [batch, T, kv_heads * GROUP * d_k], const act_t* key [batch, T, kv_heads * d_k],
//     const act_t* value [batch, T, kv_heads * d_v], const float* past_memory_key [batch, kv_heads, L, d_k] or null,
//     const float* past_memory_value or null, const float* past_segment_key or null, const float* past_segment_value
//     or null, const long long* past_position [batch] or null, act_t* output [batch, T, kv_heads * GROUP * d_v],
//     int seq_len (T >= 1), int kv_heads, int segment_length (L), float scale (resolved)
//   Writes nothing but the output.
// Entry point segment_attention_store:
//   grid (batch * kv_heads, min(ceil(L / 16), 65535), 1)  (blocks stride over the rows)
//   arguments: const act_t* key, const act_t* value, const float* past_memory_key, const float* past_memory_value,
//     const float* past_segment_key, const float* past_segment_value, const long long* past_position,
//     float* present_memory_key, float* present_memory_value, float* present_segment_key,
//     float* present_segment_value, long long* present_position (each present may be null: not written; state
//     buffers may be the past ones; the position must NOT be: the host copies it aside), int seq_len, int kv_heads,
//     int segment_length
#include "onnx_attention_common.cuh"
#include "onnx_attention_cache_decode.cuh"
#include "onnx_attention_cache_prefill.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP)
#error "segment_attention_prefill needs HEAD_DIM, VALUE_DIM, GROUP and ACT_TYPE"
#endif

namespace {

namespace cd = oa::cache_decode;
namespace cp = oa::cache_prefill;
using Shared = cd::Shared<HEAD_DIM, VALUE_DIM, GROUP>;
using Layout = cd::Layout<HEAD_DIM, VALUE_DIM, GROUP>;

static_assert(HEAD_DIM >= 1 && HEAD_DIM <= 512, "HEAD_DIM must be in [1, 512]");
static_assert(VALUE_DIM >= 1 && VALUE_DIM <= 512, "VALUE_DIM must be in [1, 512]");
static_assert(GROUP >= 1 && GROUP <= 64, "GROUP must be in [1, 64]");
static_assert(sizeof(Shared) <= 48 * 1024, "segment_attention_prefill: static shared memory over 48 KiB; lower GROUP");
#ifdef EXPECTED_THREADS
static_assert(cd::kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with segment_attention_prefill.cu");
#endif

__device__ __forceinline__ const float* slice(const float* p, long long offset) { return p != nullptr ? p + offset : nullptr; }

// Where position j (< P + T) of one (batch row, KV head) lives: this call's activations (j >= P), else the past
// segment buffer (j >= s(P) L) or the past memory, at row j mod L. Pointers are offset to the (b, h) slice.
struct SegmentSource {
    const float* past_memory;
    const float* past_segment;
    const act_t* current;
    long long p0;
    long long segment_start;  // s(P) L
    int b, h, seq_len, kv_heads, length;

    template <int Dim>
    __device__ float at(long long j, int e) const
    {
        if (j >= p0) {
            return cp::chunk<Dim>(current, b, static_cast<int>(j - p0), seq_len, kv_heads, h, e);
        }
        const float* buffer = j >= segment_start ? past_segment : past_memory;
        return buffer != nullptr ? buffer[(j % length) * Dim + e] : 0.0f;
    }
};

struct SegmentPrefillRows {
    SegmentSource keys;
    SegmentSource values;
    long long start;  // the first visible position

    __device__ cd::RowKind kind(int) const { return cd::RowKind{true, false}; }
    __device__ float key(int v, int i, cd::RowKind) const { return keys.at<HEAD_DIM>(start + v, i); }
    __device__ void store_key(int, int, cd::RowKind, float) const {}
    __device__ float value(int v, int j, cd::RowKind) const { return values.at<VALUE_DIM>(start + v, j); }
    __device__ void store_value(int, int, cd::RowKind, float) const {}
};

__device__ __forceinline__ SegmentSource source(const float* memory, const float* segment, const act_t* current,
    long long p0, int b, int h, int seq_len, int kv_heads, int length, int dim)
{
    const long long offset = (static_cast<long long>(b) * kv_heads + h) * length * dim;
    SegmentSource s;
    s.past_memory = slice(memory, offset);
    s.past_segment = slice(segment, offset);
    s.current = current;
    s.p0 = p0;
    s.segment_start = p0 / length * length;
    s.b = b;
    s.h = h;
    s.seq_len = seq_len;
    s.kv_heads = kv_heads;
    s.length = length;
    return s;
}

// Memory row i and segment row i of one state tensor after P + T tokens, elements e = threadIdx.x, +128, ...
template <int Dim>
__device__ void store_rows(const SegmentSource& src, float* present_memory, float* present_segment, long long end, int i)
{
    const long long s_end = end / src.length;
    const long long r_end = end % src.length;
    const long long memory_position = s_end >= 1 ? (s_end - 1) * src.length + i : -1;
    const long long segment_position = i < r_end ? s_end * src.length + i : -1;
    // In place, a row whose content stays where it is needs no write.
    const bool memory_stays = memory_position >= 0 && memory_position < src.p0 && memory_position < src.segment_start
        && present_memory == src.past_memory;
    const bool segment_stays = segment_position >= 0 && segment_position < src.p0 && segment_position >= src.segment_start
        && present_segment == src.past_segment;
    for (int e = threadIdx.x; e < Dim; e += blockDim.x) {
        const float m = memory_position >= 0 ? src.at<Dim>(memory_position, e) : 0.0f;
        const float s = segment_position >= 0 ? src.at<Dim>(segment_position, e) : 0.0f;
        if (present_memory != nullptr && !memory_stays) {
            present_memory[static_cast<long long>(i) * Dim + e] = m;
        }
        if (present_segment != nullptr && !segment_stays) {
            present_segment[static_cast<long long>(i) * Dim + e] = s;
        }
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(cd::kThreads) segment_attention_prefill(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* __restrict__ past_memory_key, const float* __restrict__ past_memory_value,
    const float* __restrict__ past_segment_key, const float* __restrict__ past_segment_value,
    const long long* __restrict__ past_position, act_t* __restrict__ output,
    int seq_len, int kv_heads, int segment_length, float scale)
{
    __shared__ Shared sh;
    const cp::Token k = cp::token_of_block(kv_heads, seq_len);
    const long long p0 = past_position != nullptr ? past_position[k.b] : 0;
    const long long p = p0 + k.t;
    cd::load_query(sh, query, k.row, k.h, kv_heads, scale);

    SegmentPrefillRows r;
    r.keys = source(past_memory_key, past_segment_key, key, p0, k.b, k.h, seq_len, kv_heads, segment_length, HEAD_DIM);
    r.values = source(past_memory_value, past_segment_value, value, p0, k.b, k.h, seq_len, kv_heads, segment_length, VALUE_DIM);
    const long long segment = p / segment_length;
    r.start = segment >= 1 ? (segment - 1) * segment_length : 0;
    const int count = static_cast<int>(p - r.start + 1);

    float acc[GROUP][Layout::kValuePerThread];
    cd::attend(r, sh, 0, count, 0.0f, acc);
    cp::write_output(sh, acc, output, k, kv_heads);
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) segment_attention_store(
    const act_t* __restrict__ key, const act_t* __restrict__ value, const float* past_memory_key,
    const float* past_memory_value, const float* past_segment_key, const float* past_segment_value,
    const long long* past_position, float* present_memory_key, float* present_memory_value, float* present_segment_key,
    float* present_segment_value, long long* present_position, int seq_len, int kv_heads, int segment_length)
{
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const long long p0 = past_position != nullptr ? past_position[b] : 0;
    const long long end = p0 + seq_len;
    const SegmentSource keys = source(past_memory_key, past_segment_key, key, p0, b, h, seq_len, kv_heads, segment_length, HEAD_DIM);
    const SegmentSource values = source(past_memory_value, past_segment_value, value, p0, b, h, seq_len, kv_heads, segment_length, VALUE_DIM);
    const long long key_slice = static_cast<long long>(bh) * segment_length * HEAD_DIM;
    const long long value_slice = static_cast<long long>(bh) * segment_length * VALUE_DIM;
    float* memory_key = present_memory_key != nullptr ? present_memory_key + key_slice : nullptr;
    float* segment_key = present_segment_key != nullptr ? present_segment_key + key_slice : nullptr;
    float* memory_value = present_memory_value != nullptr ? present_memory_value + value_slice : nullptr;
    float* segment_value = present_segment_value != nullptr ? present_segment_value + value_slice : nullptr;
    for (int i = blockIdx.y; i < segment_length; i += gridDim.y) {
        store_rows<HEAD_DIM>(keys, memory_key, segment_key, end, i);
        store_rows<VALUE_DIM>(values, memory_value, segment_value, end, i);
    }
    if (present_position != nullptr && h == 0 && blockIdx.y == 0 && threadIdx.x == 0) {
        present_position[b] = end;
    }
}
