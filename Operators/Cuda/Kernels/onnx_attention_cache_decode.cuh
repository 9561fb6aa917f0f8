// The decode step shared by the softmax-over-a-cache operators (WindowAttention, SegmentAttention, HybridAttention):
// one query token per (batch row, KV head) attends, with one softmax, to a set of cache rows. NOT RUN ON A GPU YET.
//
// A kernel defines a Rows policy (which rows exist, which are attended, where a row's key and value come from, and
// which present-state elements a row is responsible for writing) and calls, in order:
//   load_query_and_token -> attend(rows, row range of this block) -> finish (output, or a split's partial).
// Blocks own one (batch row, KV head) and a contiguous slice of the rows (split-K over gridDim.y, as in
// flash-decoding, so a long cache keeps every SM busy even at batch 1); `combine` merges the splits.
//
// Per tile of 64 rows: phase 1 scores the rows for all GROUP query heads (8 lanes a row, 4 rows a warp, keys read
// once and written to the present state on the way), phase 2 does the online-softmax bookkeeping (a warp per query
// head), phase 3 accumulates p * v with a thread per value column (values read once, written on the way). Scores
// are scale * q.k (scale folded into q), optionally capped to c tanh(s / c), all in float32.
//
// Rows policy (a struct passed by const reference; all members __device__):
//   RowKind kind(int row) const                        attended? holds the current token?
//   float key(int row, int i, RowKind k) const         the row's key element (also when not attended)
//   void store_key(int row, int i, RowKind k, float key) const      present-state key writes this row owns
//   float value(int row, int j, RowKind k) const
//   void store_value(int row, int j, RowKind k, float value) const
#pragma once
#include "onnx_attention_common.cuh"

namespace oa {
namespace cache_decode {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 64;                // rows scored per round
constexpr int kRowGroups = kThreads / 8; // 8 lanes score one row

struct RowKind {
    bool attended;
    bool is_new;  // holds the current token: its content comes from this call's key/value
};

template <int HeadDim, int ValueDim, int Group>
struct Layout {
    static constexpr int kKeyPerLane = ceil_div(HeadDim, 8);
    static constexpr int kValueColThreads = min_int(round_up(ValueDim, 32), kThreads);
    static constexpr int kValueRowSplits = kThreads / kValueColThreads;  // threads sharing a column, on different rows
    static constexpr int kValuePerThread = ceil_div(ValueDim, kValueColThreads);
};

template <int HeadDim, int ValueDim, int Group>
struct Shared {
    using L = Layout<HeadDim, ValueDim, Group>;
    float q[Group][HeadDim];  // scale * q
    float new_key[HeadDim];
    float new_value[ValueDim];
    float score[Group][kTile];  // scores, then exp(score - running max)
    float running_max[Group];
    float running_sum[Group];
    float rescale[Group];
    float reduce[max_int(L::kValueRowSplits - 1, 1)][Group][L::kValueColThreads * L::kValuePerThread];
};

// scale * q for the group's query heads of one token (query_row: the token's index in [batch * seq]; the
// activations are [batch, seq, q_heads * d_k]) into sh.q, or phi(q) = elu(q) + 1 of the unscaled query when `phi`
// (HybridAttention's linear part); resets the running maximum and sum. Ends with a barrier.
template <int HeadDim, int ValueDim, int Group>
__device__ void load_query(Shared<HeadDim, ValueDim, Group>& sh, const act_t* query, long long query_row, int h,
    int kv_heads, float scale, bool phi = false)
{
    const int q_heads = kv_heads * Group;
    for (int idx = threadIdx.x; idx < Group * HeadDim; idx += kThreads) {
        const int g = idx / HeadDim;
        const int i = idx - g * HeadDim;
        const float x = to_float(query[(query_row * q_heads + h * Group + g) * HeadDim + i]);
        sh.q[g][i] = phi ? (x > 0.0f ? x + 1.0f : expf(x)) : scale * x;
    }
    for (int g = threadIdx.x; g < Group; g += kThreads) {
        sh.running_max[g] = OA_NEG_INF;
        sh.running_sum[g] = 0.0f;
    }
    __syncthreads();
}

// load_query for a decode step (one token per batch row), plus the current token's key and value into shared
// memory. Ends with a barrier.
template <int HeadDim, int ValueDim, int Group>
__device__ void load_query_and_token(Shared<HeadDim, ValueDim, Group>& sh, const act_t* query, const act_t* key,
    const act_t* value, int b, int h, int kv_heads, float scale)
{
    const long long bh = static_cast<long long>(b) * kv_heads + h;
    for (int i = threadIdx.x; i < HeadDim; i += kThreads) {
        sh.new_key[i] = to_float(key[bh * HeadDim + i]);
    }
    for (int j = threadIdx.x; j < ValueDim; j += kThreads) {
        sh.new_value[j] = to_float(value[bh * ValueDim + j]);
    }
    load_query(sh, query, b, h, kv_heads, scale);
}

// Adds the partial sums of the threads sharing a value column (value_split > 0) into the value_split 0 threads.
// Every thread of the block must call it (it has barriers).
template <int HeadDim, int ValueDim, int Group>
__device__ void reduce_value_splits(Shared<HeadDim, ValueDim, Group>& sh,
    float (&acc)[Group][Layout<HeadDim, ValueDim, Group>::kValuePerThread])
{
    using L = Layout<HeadDim, ValueDim, Group>;
    if (L::kValueRowSplits > 1) {
        const int value_col = threadIdx.x % L::kValueColThreads;
        const int value_split = threadIdx.x / L::kValueColThreads;
        if (value_split > 0) {
#pragma unroll
            for (int g = 0; g < Group; ++g) {
#pragma unroll
                for (int m = 0; m < L::kValuePerThread; ++m) {
                    sh.reduce[value_split - 1][g][value_col + L::kValueColThreads * m] = acc[g][m];
                }
            }
        }
        __syncthreads();
        if (value_split == 0) {
            for (int rs = 1; rs < L::kValueRowSplits; ++rs) {
#pragma unroll
                for (int g = 0; g < Group; ++g) {
#pragma unroll
                    for (int m = 0; m < L::kValuePerThread; ++m) {
                        acc[g][m] += sh.reduce[rs - 1][g][value_col + L::kValueColThreads * m];
                    }
                }
            }
        }
        __syncthreads();
    }
}

// The rows [row_begin, row_end) of `rows`, accumulated into acc (this thread's value columns, unnormalised; rows
// of a column spread over kValueRowSplits threads are added up at the end, into the threads with value_split 0).
template <int HeadDim, int ValueDim, int Group, class Rows>
__device__ void attend(const Rows& rows, Shared<HeadDim, ValueDim, Group>& sh, int row_begin, int row_end, float softcap,
    float (&acc)[Group][Layout<HeadDim, ValueDim, Group>::kValuePerThread])
{
    using L = Layout<HeadDim, ValueDim, Group>;
    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int row_group = tid >> 3;
    const int sub = tid & 7;
    const int value_col = tid % L::kValueColThreads;
    const int value_split = tid / L::kValueColThreads;

#pragma unroll
    for (int g = 0; g < Group; ++g) {
#pragma unroll
        for (int m = 0; m < L::kValuePerThread; ++m) {
            acc[g][m] = 0.0f;
        }
    }

    for (int tile0 = row_begin; tile0 < row_end; tile0 += kTile) {
        // Phase 1: scores. Every lane runs the same trip count, so the 8-lane reductions never diverge.
        for (int local = row_group; local < kTile; local += kRowGroups) {
            const int row = tile0 + local;
            const bool in_range = row < row_end;
            const RowKind kind = in_range ? rows.kind(row) : RowKind{false, false};
            float x[L::kKeyPerLane];
#pragma unroll
            for (int e = 0; e < L::kKeyPerLane; ++e) {
                const int i = e * 8 + sub;
                float k = 0.0f;
                if (in_range && i < HeadDim) {
                    k = rows.key(row, i, kind);
                    rows.store_key(row, i, kind, k);
                }
                x[e] = k;
            }
            for (int g = 0; g < Group; ++g) {
                float dot = 0.0f;
#pragma unroll
                for (int e = 0; e < L::kKeyPerLane; ++e) {
                    const int i = e * 8 + sub;
                    if (i < HeadDim) {
                        dot += sh.q[g][i] * x[e];
                    }
                }
                dot = group_sum<8>(dot);
                if (softcap > 0.0f) {
                    dot = softcap * tanhf(dot / softcap);
                }
                if (sub == 0) {
                    sh.score[g][local] = kind.attended ? dot : OA_NEG_INF;
                }
            }
        }
        __syncthreads();

        // Phase 2: running maximum and sum per query head; scores become exp(score - new maximum).
        for (int g = warp; g < Group; g += kWarps) {
            const float s0 = sh.score[g][lane];
            const float s1 = sh.score[g][lane + 32];
            const float old_max = sh.running_max[g];
            const float new_max = fmaxf(old_max, group_max(fmaxf(s0, s1)));
            const float p0 = exp_diff(s0, new_max);
            const float p1 = exp_diff(s1, new_max);
            sh.score[g][lane] = p0;
            sh.score[g][lane + 32] = p1;
            const float tile_sum = group_sum(p0 + p1);
            if (lane == 0) {
                const float alpha = exp_diff(old_max, new_max);
                sh.rescale[g] = alpha;
                sh.running_max[g] = new_max;
                sh.running_sum[g] = sh.running_sum[g] * alpha + tile_sum;
            }
        }
        __syncthreads();

        // Phase 3: acc = acc * alpha + sum over rows of p * v.
#pragma unroll
        for (int g = 0; g < Group; ++g) {
            const float alpha = sh.rescale[g];
#pragma unroll
            for (int m = 0; m < L::kValuePerThread; ++m) {
                acc[g][m] *= alpha;
            }
        }
        for (int local = value_split; local < kTile; local += L::kValueRowSplits) {
            const int row = tile0 + local;
            if (row >= row_end) {
                break;
            }
            const RowKind kind = rows.kind(row);
#pragma unroll
            for (int m = 0; m < L::kValuePerThread; ++m) {
                const int j = value_col + L::kValueColThreads * m;
                if (j < ValueDim) {
                    const float v = rows.value(row, j, kind);
                    rows.store_value(row, j, kind, v);
#pragma unroll
                    for (int g = 0; g < Group; ++g) {
                        acc[g][m] += sh.score[g][local] * v;
                    }
                }
            }
        }
        __syncthreads();
    }

    reduce_value_splits(sh, acc);
}

// With one split: y = acc / sum into `output` (activation type) or `float_output` (whichever is not null). With
// several: the unnormalised partial (acc, running max, running sum) of this split, for `combine`.
template <int HeadDim, int ValueDim, int Group>
__device__ void finish(const Shared<HeadDim, ValueDim, Group>& sh,
    const float (&acc)[Group][Layout<HeadDim, ValueDim, Group>::kValuePerThread], int b, int h, int kv_heads,
    act_t* output, float* float_output, float* partial_acc, float* partial_max, float* partial_sum)
{
    using L = Layout<HeadDim, ValueDim, Group>;
    const int tid = threadIdx.x;
    if (tid >= L::kValueColThreads) {
        return;  // value_split > 0: already added into the first split's threads
    }
    const int splits = gridDim.y;
#pragma unroll
    for (int g = 0; g < Group; ++g) {
        const long long head_row = static_cast<long long>(b) * kv_heads * Group + h * Group + g;  // (b, query head)
#pragma unroll
        for (int m = 0; m < L::kValuePerThread; ++m) {
            const int j = tid + L::kValueColThreads * m;
            if (j < ValueDim) {
                if (splits == 1) {
                    const float y = acc[g][m] / sh.running_sum[g];
                    if (output != nullptr) {
                        output[head_row * ValueDim + j] = from_float(y);
                    } else {
                        float_output[head_row * ValueDim + j] = y;
                    }
                } else {
                    partial_acc[(head_row * splits + blockIdx.y) * ValueDim + j] = acc[g][m];
                }
            }
        }
        if (splits > 1 && tid == 0) {
            partial_max[head_row * splits + blockIdx.y] = sh.running_max[g];
            partial_sum[head_row * splits + blockIdx.y] = sh.running_sum[g];
        }
    }
}

// Merges the splits of one (batch row, query head) = blockIdx.x: y = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
// A split that attended nothing has m_s = -inf and adds 0; the split holding the current token always attends it.
template <int ValueDim>
__device__ void combine(const float* partial_acc, const float* partial_max, const float* partial_sum, act_t* output,
    float* float_output, int splits)
{
    const long long head_row = blockIdx.x;
    float global_max = OA_NEG_INF;
    for (int s = 0; s < splits; ++s) {
        global_max = fmaxf(global_max, partial_max[head_row * splits + s]);
    }
    float total = 0.0f;
    for (int s = 0; s < splits; ++s) {
        total += exp_diff(partial_max[head_row * splits + s], global_max) * partial_sum[head_row * splits + s];
    }
    for (int j = threadIdx.x; j < ValueDim; j += blockDim.x) {
        float y = 0.0f;
        for (int s = 0; s < splits; ++s) {
            y += exp_diff(partial_max[head_row * splits + s], global_max) * partial_acc[(head_row * splits + s) * ValueDim + j];
        }
        y /= total;
        if (output != nullptr) {
            output[head_row * ValueDim + j] = from_float(y);
        } else {
            float_output[head_row * ValueDim + j] = y;
        }
    }
}

// The rows [begin, end) of split blockIdx.y when `rows` rows are cut into gridDim.y pieces of `granularity`-row units.
__device__ __forceinline__ void split_range(int rows, int granularity, int& begin, int& end)
{
    const int units = ceil_div(rows, granularity);
    const int per_split = ceil_div(units, static_cast<int>(gridDim.y)) * granularity;
    begin = min(rows, static_cast<int>(blockIdx.y) * per_split);
    end = min(rows, begin + per_split);
}

}  // namespace cache_decode
}  // namespace oa
