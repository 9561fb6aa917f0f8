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
// Blocks own one (batch row, KV head) and a contiguous slice of the S + W cache rows (split-K over gridDim.y, as in
// flash-decoding, so a long window keeps every SM busy even at batch 1). Each block reads its rows once, scores
// them for all GROUP query heads (8 lanes a row, 4 rows a warp), accumulates p * v with a lane per value column,
// and copies every row it owns to the present cache when that is a different buffer. With gridDim.y == 1 the block
// writes the output itself; otherwise it writes an unnormalised partial (acc, running max, running sum) and
// window_attention_combine merges the splits.
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

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP)
#error "window_attention_decode needs HEAD_DIM, VALUE_DIM, GROUP and ACT_TYPE"
#endif

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kHeadDim = HEAD_DIM;
constexpr int kValueDim = VALUE_DIM;
constexpr int kGroup = GROUP;
constexpr int kTile = 64;                                   // rows scored per round
constexpr int kRowGroups = kThreads / 8;                    // 8 lanes score one row
constexpr int kKeyPerLane = oa::ceil_div(kHeadDim, 8);
constexpr int kValueColThreads = oa::min_int(oa::round_up(kValueDim, 32), kThreads);
constexpr int kValueRowSplits = kThreads / kValueColThreads;  // threads sharing a value column, on different rows
constexpr int kValuePerThread = oa::ceil_div(kValueDim, kValueColThreads);

static_assert(kHeadDim >= 1 && kHeadDim <= 512, "HEAD_DIM must be in [1, 512]");
static_assert(kValueDim >= 1 && kValueDim <= 512, "VALUE_DIM must be in [1, 512]");
static_assert(kGroup >= 1 && kGroup <= 64, "GROUP must be in [1, 64]");
#ifdef EXPECTED_THREADS
static_assert(kThreads == EXPECTED_THREADS, "the host's THREADS disagrees with window_attention_decode.cu");
#endif

struct Shared {
    float q[kGroup][kHeadDim];   // scale * q
    float new_key[kHeadDim];
    float new_value[kValueDim];
    float score[kGroup][kTile];  // scores, then exp(score - running max)
    float running_max[kGroup];
    float running_sum[kGroup];
    float rescale[kGroup];
    float reduce[oa::max_int(kValueRowSplits - 1, 1)][kGroup][kValueColThreads * kValuePerThread];
};
static_assert(sizeof(Shared) <= 48 * 1024, "window_attention_decode: static shared memory over 48 KiB; lower GROUP");

struct RowKind {
    bool is_new;    // holds the current token (its content comes from this call's key/value)
    bool attended;  // in A(p)
};

__device__ __forceinline__ RowKind classify(int row, long long p, int window, int sinks)
{
    RowKind kind;
    if (row < sinks) {
        kind.is_new = p < sinks && row == p;
        kind.attended = static_cast<long long>(row) + window <= p;
    } else {
        const int ring = row - sinks;
        kind.is_new = ring == static_cast<int>(p % window);
        kind.attended = kind.is_new || p >= window || ring < p;
    }
    return kind;
}

}  // namespace

extern "C" __global__ void __launch_bounds__(kThreads) window_attention_decode(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* past_key_cache, const float* past_value_cache,
    const long long* past_position, int position_stride,
    act_t* __restrict__ output, float* present_key_cache, float* present_value_cache, long long* present_position,
    float* __restrict__ partial_acc, float* __restrict__ partial_max, float* __restrict__ partial_sum,
    int kv_heads, int window, int sinks, float scale, float softcap)
{
    __shared__ Shared sh;

    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const int q_heads = kv_heads * kGroup;
    const int rows = sinks + window;
    const int rows_per_split = (rows + gridDim.y - 1) / gridDim.y;
    const int row_begin = blockIdx.y * rows_per_split;
    const int row_end = min(rows, row_begin + rows_per_split);
    const long long p = past_position != nullptr ? past_position[static_cast<long long>(b) * position_stride] : 0;
    const long long key_base = static_cast<long long>(bh) * rows * kHeadDim;
    const long long value_base = static_cast<long long>(bh) * rows * kValueDim;
    const bool copy_keys = present_key_cache != past_key_cache;
    const bool copy_values = present_value_cache != past_value_cache;

    for (int idx = tid; idx < kGroup * kHeadDim; idx += kThreads) {
        const int g = idx / kHeadDim;
        const int i = idx - g * kHeadDim;
        sh.q[g][i] = scale * oa::to_float(query[(static_cast<long long>(b) * q_heads + h * kGroup + g) * kHeadDim + i]);
    }
    for (int i = tid; i < kHeadDim; i += kThreads) {
        sh.new_key[i] = oa::to_float(key[static_cast<long long>(bh) * kHeadDim + i]);
    }
    for (int j = tid; j < kValueDim; j += kThreads) {
        sh.new_value[j] = oa::to_float(value[static_cast<long long>(bh) * kValueDim + j]);
    }
    for (int g = tid; g < kGroup; g += kThreads) {
        sh.running_max[g] = OA_NEG_INF;
        sh.running_sum[g] = 0.0f;
    }
    if (present_position != nullptr && h == 0 && blockIdx.y == 0 && tid == 0 && (position_stride != 0 || b == 0)) {
        present_position[static_cast<long long>(b) * position_stride] = p + 1;
    }
    __syncthreads();

    // Value-side ownership: columns c + kValueColThreads * m, rows of the tile congruent to value_split.
    const int value_col = tid % kValueColThreads;
    const int value_split = tid / kValueColThreads;
    float acc[kGroup][kValuePerThread];
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
#pragma unroll
        for (int m = 0; m < kValuePerThread; ++m) {
            acc[g][m] = 0.0f;
        }
    }

    const int row_group = tid >> 3;
    const int sub = tid & 7;
    for (int tile0 = row_begin; tile0 < row_end; tile0 += kTile) {
        // Phase 1: scores of the tile's rows (8 lanes a row); keys copied to the present cache on the way.
        for (int local = row_group; local < kTile; local += kRowGroups) {
            const int row = tile0 + local;
            const bool in_range = row < row_end;
            const RowKind kind = in_range ? classify(row, p, window, sinks) : RowKind{false, false};
            float x[kKeyPerLane];
#pragma unroll
            for (int e = 0; e < kKeyPerLane; ++e) {
                const int i = e * 8 + sub;
                float k = 0.0f;
                if (in_range && i < kHeadDim) {
                    k = kind.is_new ? sh.new_key[i]
                        : past_key_cache != nullptr ? past_key_cache[key_base + static_cast<long long>(row) * kHeadDim + i]
                        : 0.0f;
                    if (copy_keys || kind.is_new) {
                        present_key_cache[key_base + static_cast<long long>(row) * kHeadDim + i] = k;
                    }
                }
                x[e] = k;
            }
            for (int g = 0; g < kGroup; ++g) {
                float dot = 0.0f;
#pragma unroll
                for (int e = 0; e < kKeyPerLane; ++e) {
                    const int i = e * 8 + sub;
                    if (i < kHeadDim) {
                        dot += sh.q[g][i] * x[e];
                    }
                }
                dot = oa::group_sum<8>(dot);
                if (softcap > 0.0f) {
                    dot = softcap * tanhf(dot / softcap);
                }
                if (sub == 0) {
                    sh.score[g][local] = kind.attended ? dot : OA_NEG_INF;
                }
            }
        }
        __syncthreads();

        // Phase 2: online-softmax bookkeeping, a warp per query head.
        for (int g = warp; g < kGroup; g += kWarps) {
            const float s0 = sh.score[g][lane];
            const float s1 = sh.score[g][lane + 32];
            const float old_max = sh.running_max[g];
            const float new_max = fmaxf(old_max, oa::group_max(fmaxf(s0, s1)));
            const float p0 = oa::exp_diff(s0, new_max);
            const float p1 = oa::exp_diff(s1, new_max);
            sh.score[g][lane] = p0;
            sh.score[g][lane + 32] = p1;
            const float tile_sum = oa::group_sum(p0 + p1);
            if (lane == 0) {
                const float alpha = oa::exp_diff(old_max, new_max);
                sh.rescale[g] = alpha;
                sh.running_max[g] = new_max;
                sh.running_sum[g] = sh.running_sum[g] * alpha + tile_sum;
            }
        }
        __syncthreads();

        // Phase 3: acc = acc * alpha + sum_rows p * v; values copied to the present cache on the way.
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
            const float alpha = sh.rescale[g];
#pragma unroll
            for (int m = 0; m < kValuePerThread; ++m) {
                acc[g][m] *= alpha;
            }
        }
        for (int local = value_split; local < kTile; local += kValueRowSplits) {
            const int row = tile0 + local;
            if (row >= row_end) {
                break;
            }
            const RowKind kind = classify(row, p, window, sinks);
#pragma unroll
            for (int m = 0; m < kValuePerThread; ++m) {
                const int j = value_col + kValueColThreads * m;
                if (j < kValueDim) {
                    const float v = kind.is_new ? sh.new_value[j]
                        : past_value_cache != nullptr ? past_value_cache[value_base + static_cast<long long>(row) * kValueDim + j]
                        : 0.0f;
                    if (copy_values || kind.is_new) {
                        present_value_cache[value_base + static_cast<long long>(row) * kValueDim + j] = v;
                    }
#pragma unroll
                    for (int g = 0; g < kGroup; ++g) {
                        acc[g][m] += sh.score[g][local] * v;
                    }
                }
            }
        }
        __syncthreads();
    }

    // Threads that shared a column on different rows add up.
    if (kValueRowSplits > 1) {
        if (value_split > 0) {
#pragma unroll
            for (int g = 0; g < kGroup; ++g) {
#pragma unroll
                for (int m = 0; m < kValuePerThread; ++m) {
                    sh.reduce[value_split - 1][g][value_col + kValueColThreads * m] = acc[g][m];
                }
            }
        }
        __syncthreads();
        if (value_split == 0) {
            for (int rs = 1; rs < kValueRowSplits; ++rs) {
#pragma unroll
                for (int g = 0; g < kGroup; ++g) {
#pragma unroll
                    for (int m = 0; m < kValuePerThread; ++m) {
                        acc[g][m] += sh.reduce[rs - 1][g][value_col + kValueColThreads * m];
                    }
                }
            }
        }
    }
    if (value_split != 0) {
        return;
    }
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
        const long long head_row = static_cast<long long>(b) * q_heads + h * kGroup + g;  // (b, query head)
#pragma unroll
        for (int m = 0; m < kValuePerThread; ++m) {
            const int j = value_col + kValueColThreads * m;
            if (j < kValueDim) {
                if (gridDim.y == 1) {
                    output[head_row * kValueDim + j] = oa::from_float(acc[g][m] / sh.running_sum[g]);
                } else {
                    partial_acc[(head_row * gridDim.y + blockIdx.y) * kValueDim + j] = acc[g][m];
                }
            }
        }
        if (gridDim.y > 1 && tid == 0) {
            partial_max[head_row * gridDim.y + blockIdx.y] = sh.running_max[g];
            partial_sum[head_row * gridDim.y + blockIdx.y] = sh.running_sum[g];
        }
    }
}

// Merges the splits of one (batch row, query head): y = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s. A split
// that attended nothing has m_s = -inf and contributes 0; the split holding the current token always attends it.
extern "C" __global__ void __launch_bounds__(kThreads) window_attention_combine(
    const float* __restrict__ partial_acc, const float* __restrict__ partial_max, const float* __restrict__ partial_sum,
    act_t* __restrict__ output, int splits)
{
    const long long head_row = blockIdx.x;
    float global_max = OA_NEG_INF;
    for (int s = 0; s < splits; ++s) {
        global_max = fmaxf(global_max, partial_max[head_row * splits + s]);
    }
    float total = 0.0f;
    for (int s = 0; s < splits; ++s) {
        total += oa::exp_diff(partial_max[head_row * splits + s], global_max) * partial_sum[head_row * splits + s];
    }
    for (int j = threadIdx.x; j < kValueDim; j += blockDim.x) {
        float y = 0.0f;
        for (int s = 0; s < splits; ++s) {
            y += oa::exp_diff(partial_max[head_row * splits + s], global_max) * partial_acc[(head_row * splits + s) * kValueDim + j];
        }
        output[head_row * kValueDim + j] = oa::from_float(y / total);
    }
}
