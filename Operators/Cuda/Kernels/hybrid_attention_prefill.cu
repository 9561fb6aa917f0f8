// com.onnxattention.HybridAttention, a call of T tokens in three launches (onnx_attention_cache_prefill.cuh); also the
// decode step when the host updates the state in place. NOT RUN ON A GPU YET.
//
// Maths: docs/operators/HybridAttention.md. Token t of batch row b sits at p = P + t (P = past_position). Its window
// is max(0, p - W + 1) .. p; the tokens evicted by then are 0 .. p - W, of which the past compressed state holds
// 0 .. P - 1 - W and the rest, e0 = max(0, P - W) .. p - W, are in the past ring (e < P, row e mod W) or in this
// call (e >= P). A position j < P is read from the past ring at row j mod W (it holds P - W .. P - 1), j >= P from
// this call's key/value.
//   compress = mean (COMPRESS 1): the block sums the evicted keys and values (past sums + positions e0 .. p - W) into
//     shared memory, and the mean (sum / n_e, n_e = p + 1 - W > 0) is one more row of the softmax.
//   compress = linear (COMPRESS 0): the block first computes, with phi = elu + 1 of the unscaled query and keys,
//     num = phi(q)^T mu_0 + sum_e (phi(q) . phi(k_e)) v_e and den = phi(q) . nu_0 + sum_e phi(q) . phi(k_e) + epsilon
//     over e = e0 .. p - W (the recurrence's mu and nu at p, read out without forming them), then the window softmax,
//     and writes (1 - g) y_window + g num / den, g = n_e / (p + 1).
// Then hybrid_attention_compress folds the positions evicted by the call, e0 .. P + T - 1 - W, into the compressed
// state, and hybrid_attention_store writes the ring (the last W positions) and the position. Each present element is
// read then written by one thread (compress reads the past ring before store overwrites it: stream order), so every
// present buffer but the position may be the past one.
//
// Required defines: HEAD_DIM (d_k, [1, 512]), VALUE_DIM (d_v, [1, 512]), GROUP ([1, 64]), COMPRESS (0 linear, 1 mean),
// ACT_TYPE. Optional: EXPECTED_THREADS.
//
// Launch contract (the three entry points, same stream, this order; block (128, 1, 1); static shared memory < 48 KiB):
// Entry point hybrid_attention_prefill:
//   grid (batch * kv_heads * T, 1, 1)  (block x = (b * kv_heads + h) * T + t)
//   arguments: const act_t* query [batch, T, kv_heads * GROUP * d_k], const act_t* key [batch, T, kv_heads * d_k],
//     const act_t* value [batch, T, kv_heads * d_v], const float* past_key [batch, kv_heads, W, d_k] or null,
//     const float* past_value or null, const long long* past_position [batch] or null,
//     const float* past_compressed_key [batch, kv_heads, d_k] or null, const float* past_compressed_value
//     (linear [batch, kv_heads, d_k, d_v], mean [batch, kv_heads, 1, d_v]) or null,
//     act_t* output [batch, T, kv_heads * GROUP * d_v], int seq_len (T >= 1), int kv_heads, int window (W),
//     float scale (resolved), float epsilon
//   Writes nothing but the output.
// Entry point hybrid_attention_compress:
//   grid (batch * kv_heads, COMPRESS 0: d_k; COMPRESS 1: ceil((d_k + d_v) / 128), 1)
//   arguments: const act_t* key, const act_t* value, const float* past_key, const float* past_value,
//     const long long* past_position, const float* past_compressed_key, const float* past_compressed_value,
//     float* present_compressed_key, float* present_compressed_value (null: not written; may be the past ones),
//     int seq_len, int kv_heads, int window
// Entry point hybrid_attention_store:
//   grid (batch * kv_heads, min(ceil(W / 16), 65535), 1)  (blocks stride over the rows)
//   arguments: const act_t* key, const act_t* value, const float* past_key, const float* past_value,
//     const long long* past_position, float* present_key, float* present_value (null: not written; may be the past
//     ones), long long* present_position (null, or NOT the past one: the host copies it aside), int seq_len,
//     int kv_heads, int window
#include "onnx_attention_common.cuh"
#include "onnx_attention_cache_decode.cuh"
#include "onnx_attention_cache_prefill.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP) || !defined(COMPRESS)
#error "hybrid_attention_prefill needs HEAD_DIM, VALUE_DIM, GROUP, COMPRESS and ACT_TYPE"
#endif
#if COMPRESS != 0 && COMPRESS != 1
#error "COMPRESS must be 0 (linear) or 1 (mean)"
#endif

namespace {

namespace cd = oa::cache_decode;
namespace cp = oa::cache_prefill;
using Shared = cd::Shared<HEAD_DIM, VALUE_DIM, GROUP>;
using Layout = cd::Layout<HEAD_DIM, VALUE_DIM, GROUP>;

struct PrefillShared {
    Shared base;
    float denominator[GROUP];
};

static_assert(HEAD_DIM >= 1 && HEAD_DIM <= 512, "HEAD_DIM must be in [1, 512]");
static_assert(VALUE_DIM >= 1 && VALUE_DIM <= 512, "VALUE_DIM must be in [1, 512]");
static_assert(GROUP >= 1 && GROUP <= 64, "GROUP must be in [1, 64]");
static_assert(sizeof(PrefillShared) <= 48 * 1024, "hybrid_attention_prefill: static shared memory over 48 KiB; lower GROUP");
#ifdef EXPECTED_THREADS
static_assert(cd::kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with hybrid_attention_prefill.cu");
#endif

#if COMPRESS == 0
__device__ __forceinline__ float elu_plus_one(float x) { return x > 0.0f ? x + 1.0f : expf(x); }
#endif

// Position j (< P + T) of one (batch row, KV head): this call's activations when j >= P, else past ring row j mod W.
struct RingSource {
    const float* past_key;    // offset to the (b, h) ring, or null
    const float* past_value;
    const act_t* key;
    const act_t* value;
    long long p0;
    int b, h, seq_len, kv_heads, window;

    __device__ float key_at(long long j, int i) const
    {
        if (j >= p0) {
            return cp::chunk<HEAD_DIM>(key, b, static_cast<int>(j - p0), seq_len, kv_heads, h, i);
        }
        return past_key != nullptr ? past_key[(j % window) * HEAD_DIM + i] : 0.0f;
    }

    __device__ float value_at(long long j, int e) const
    {
        if (j >= p0) {
            return cp::chunk<VALUE_DIM>(value, b, static_cast<int>(j - p0), seq_len, kv_heads, h, e);
        }
        return past_value != nullptr ? past_value[(j % window) * VALUE_DIM + e] : 0.0f;
    }
};

__device__ __forceinline__ RingSource ring_source(const float* past_key, const float* past_value, const act_t* key,
    const act_t* value, long long p0, int b, int h, int seq_len, int kv_heads, int window)
{
    const long long bh = static_cast<long long>(b) * kv_heads + h;
    RingSource s;
    s.past_key = past_key != nullptr ? past_key + bh * window * HEAD_DIM : nullptr;
    s.past_value = past_value != nullptr ? past_value + bh * window * VALUE_DIM : nullptr;
    s.key = key;
    s.value = value;
    s.p0 = p0;
    s.b = b;
    s.h = h;
    s.seq_len = seq_len;
    s.kv_heads = kv_heads;
    s.window = window;
    return s;
}

// The window positions first .. first + n_w - 1, then (mean, when `slot`) the mean of the evicted tokens, whose key
// and value the block has put in sh.new_key / sh.new_value.
struct HybridPrefillRows {
    RingSource src;
    long long first;
    int n_w;
    const float* slot_key;
    const float* slot_value;

    __device__ cd::RowKind kind(int) const { return cd::RowKind{true, false}; }
    __device__ float key(int v, int i, cd::RowKind) const { return v < n_w ? src.key_at(first + v, i) : slot_key[i]; }
    __device__ void store_key(int, int, cd::RowKind, float) const {}
    __device__ float value(int v, int j, cd::RowKind) const { return v < n_w ? src.value_at(first + v, j) : slot_value[j]; }
    __device__ void store_value(int, int, cd::RowKind, float) const {}
};

#if COMPRESS == 0
// Linear part (sh.q holds phi(q)): num (this thread's value columns, summed over the value splits into the
// value_split 0 threads) and denominator[g] = phi(q) . nu_0 + sum_e phi(q) . phi(k_e) (without epsilon), over the
// evicted positions e_begin .. e_begin + count - 1.
__device__ void linear_part(PrefillShared& psh, const RingSource& src, long long e_begin, int count, const float* mu0,
    const float* nu0, float (&num)[GROUP][Layout::kValuePerThread])
{
    Shared& sh = psh.base;
    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int row_group = tid >> 3;
    const int sub = tid & 7;
    const int value_col = tid % Layout::kValueColThreads;
    const int value_split = tid / Layout::kValueColThreads;
#pragma unroll
    for (int g = 0; g < GROUP; ++g) {
#pragma unroll
        for (int m = 0; m < Layout::kValuePerThread; ++m) {
            num[g][m] = 0.0f;
        }
    }
    for (int g = tid; g < GROUP; g += cd::kThreads) {
        psh.denominator[g] = 0.0f;
    }
    __syncthreads();

    for (int tile0 = 0; tile0 < count; tile0 += cd::kTile) {
        for (int local = row_group; local < cd::kTile; local += cd::kRowGroups) {
            const int row = tile0 + local;
            const bool in_range = row < count;
            float x[Layout::kKeyPerLane];
#pragma unroll
            for (int e = 0; e < Layout::kKeyPerLane; ++e) {
                const int i = e * 8 + sub;
                x[e] = in_range && i < HEAD_DIM ? elu_plus_one(src.key_at(e_begin + row, i)) : 0.0f;
            }
            for (int g = 0; g < GROUP; ++g) {
                float dot = 0.0f;
#pragma unroll
                for (int e = 0; e < Layout::kKeyPerLane; ++e) {
                    const int i = e * 8 + sub;
                    if (i < HEAD_DIM) {
                        dot += sh.q[g][i] * x[e];
                    }
                }
                dot = oa::group_sum<8>(dot);
                if (sub == 0) {
                    sh.score[g][local] = in_range ? dot : 0.0f;
                }
            }
        }
        __syncthreads();
        for (int g = warp; g < GROUP; g += cd::kWarps) {
            const float s = oa::group_sum(sh.score[g][lane] + sh.score[g][lane + 32]);
            if (lane == 0) {
                psh.denominator[g] += s;
            }
        }
        for (int local = value_split; local < cd::kTile; local += Layout::kValueRowSplits) {
            const int row = tile0 + local;
            if (row >= count) {
                break;
            }
#pragma unroll
            for (int m = 0; m < Layout::kValuePerThread; ++m) {
                const int j = value_col + Layout::kValueColThreads * m;
                if (j < VALUE_DIM) {
                    const float v = src.value_at(e_begin + row, j);
#pragma unroll
                    for (int g = 0; g < GROUP; ++g) {
                        num[g][m] += sh.score[g][local] * v;
                    }
                }
            }
        }
        __syncthreads();
    }

    // The past state: phi(q)^T mu_0 (rows split like the tiles) and phi(q) . nu_0 (a warp per query head; the same
    // lane 0 that added the tiles' sums above).
    if (mu0 != nullptr) {
        for (int i = value_split; i < HEAD_DIM; i += Layout::kValueRowSplits) {
#pragma unroll
            for (int m = 0; m < Layout::kValuePerThread; ++m) {
                const int j = value_col + Layout::kValueColThreads * m;
                if (j < VALUE_DIM) {
                    const float mu = mu0[static_cast<long long>(i) * VALUE_DIM + j];
#pragma unroll
                    for (int g = 0; g < GROUP; ++g) {
                        num[g][m] += sh.q[g][i] * mu;
                    }
                }
            }
        }
    }
    if (nu0 != nullptr) {
        for (int g = warp; g < GROUP; g += cd::kWarps) {
            float d = 0.0f;
            for (int i = lane; i < HEAD_DIM; i += 32) {
                d += sh.q[g][i] * nu0[i];
            }
            d = oa::group_sum(d);
            if (lane == 0) {
                psh.denominator[g] += d;
            }
        }
    }
    cd::reduce_value_splits(sh, num);
    __syncthreads();  // sh.q is reloaded next
}
#endif

}  // namespace

extern "C" __global__ void __launch_bounds__(cd::kThreads) hybrid_attention_prefill(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* __restrict__ past_key, const float* __restrict__ past_value, const long long* __restrict__ past_position,
    const float* __restrict__ past_compressed_key, const float* __restrict__ past_compressed_value,
    act_t* __restrict__ output, int seq_len, int kv_heads, int window, float scale, float epsilon)
{
    __shared__ PrefillShared psh;
    Shared& sh = psh.base;
    const cp::Token k = cp::token_of_block(kv_heads, seq_len);
    const long long p0 = past_position != nullptr ? past_position[k.b] : 0;
    const long long p = p0 + k.t;
    const RingSource src = ring_source(past_key, past_value, key, value, p0, k.b, k.h, seq_len, kv_heads, window);
    const long long evicted = p + 1 > window ? p + 1 - window : 0;  // n_e
    const long long e0 = p0 > window ? p0 - window : 0;
    const int fresh_evicted = static_cast<int>(evicted > e0 ? evicted - e0 : 0);  // positions e0 .. p - W
    const float* nu0 = past_compressed_key != nullptr ? past_compressed_key + static_cast<long long>(k.bh) * HEAD_DIM : nullptr;

    HybridPrefillRows rows;
    rows.src = src;
    rows.first = p - window + 1 > 0 ? p - window + 1 : 0;
    rows.n_w = static_cast<int>(p - rows.first + 1);
    rows.slot_key = sh.new_key;
    rows.slot_value = sh.new_value;
    int count = rows.n_w;

#if COMPRESS == 0
    float num[GROUP][Layout::kValuePerThread];
    const bool mixes = evicted > 0;
    if (mixes) {
        cd::load_query(sh, query, k.row, k.h, kv_heads, 1.0f, true);
        const float* mu0 = past_compressed_value != nullptr
            ? past_compressed_value + static_cast<long long>(k.bh) * HEAD_DIM * VALUE_DIM : nullptr;
        linear_part(psh, src, e0, fresh_evicted, mu0, nu0, num);
    }
#else
    if (evicted > 0) {
        // The mean slot: (past sums + the evicted positions not in them) / n_e.
        const float inverse = static_cast<float>(1.0 / static_cast<double>(evicted));
        const float* sum_v = past_compressed_value != nullptr
            ? past_compressed_value + static_cast<long long>(k.bh) * VALUE_DIM : nullptr;
        for (int i = threadIdx.x; i < HEAD_DIM; i += cd::kThreads) {
            float s = nu0 != nullptr ? nu0[i] : 0.0f;
            for (int e = 0; e < fresh_evicted; ++e) {
                s += src.key_at(e0 + e, i);
            }
            sh.new_key[i] = s * inverse;
        }
        for (int j = threadIdx.x; j < VALUE_DIM; j += cd::kThreads) {
            float s = sum_v != nullptr ? sum_v[j] : 0.0f;
            for (int e = 0; e < fresh_evicted; ++e) {
                s += src.value_at(e0 + e, j);
            }
            sh.new_value[j] = s * inverse;
        }
        count += 1;
    }
#endif

    cd::load_query(sh, query, k.row, k.h, kv_heads, scale);
    float acc[GROUP][Layout::kValuePerThread];
    cd::attend(rows, sh, 0, count, 0.0f, acc);

#if COMPRESS == 0
    if (threadIdx.x < Layout::kValueColThreads) {
        const float gate = static_cast<float>(static_cast<double>(evicted) / static_cast<double>(p + 1));
#pragma unroll
        for (int g = 0; g < GROUP; ++g) {
            const long long head_row = k.row * kv_heads * GROUP + k.h * GROUP + g;
#pragma unroll
            for (int m = 0; m < Layout::kValuePerThread; ++m) {
                const int j = threadIdx.x + Layout::kValueColThreads * m;
                if (j < VALUE_DIM) {
                    float y = acc[g][m] / sh.running_sum[g];
                    if (mixes) {
                        y = y * (1.0f - gate) + num[g][m] * (gate / (psh.denominator[g] + epsilon));
                    }
                    output[head_row * VALUE_DIM + j] = oa::from_float(y);
                }
            }
        }
    }
#else
    (void)epsilon;
    cp::write_output(sh, acc, output, k, kv_heads);
#endif
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) hybrid_attention_compress(
    const act_t* __restrict__ key, const act_t* __restrict__ value, const float* past_key, const float* past_value,
    const long long* past_position, const float* past_compressed_key, const float* past_compressed_value,
    float* present_compressed_key, float* present_compressed_value, int seq_len, int kv_heads, int window)
{
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const long long p0 = past_position != nullptr ? past_position[b] : 0;
    const long long end = p0 + seq_len;
    const long long e0 = p0 > window ? p0 - window : 0;
    const long long e1 = end > window ? end - window : 0;  // positions e0 .. e1 - 1 leave the window in this call
    const int count = static_cast<int>(e1 - e0);
    const RingSource src = ring_source(past_key, past_value, key, value, p0, b, h, seq_len, kv_heads, window);
#if COMPRESS == 0
    // Block (bh, i): nu[i] += sum phi(k_e[i]); mu[i][j] += sum phi(k_e[i]) v_e[j].
    const int i = blockIdx.y;
    const long long nu_at = static_cast<long long>(bh) * HEAD_DIM + i;
    if (threadIdx.x == 0 && present_compressed_key != nullptr) {
        float s = past_compressed_key != nullptr ? past_compressed_key[nu_at] : 0.0f;
        for (int e = 0; e < count; ++e) {
            s += elu_plus_one(src.key_at(e0 + e, i));
        }
        present_compressed_key[nu_at] = s;
    }
    if (present_compressed_value != nullptr) {
        for (int j = threadIdx.x; j < VALUE_DIM; j += blockDim.x) {
            const long long at = nu_at * VALUE_DIM + j;
            float s = past_compressed_value != nullptr ? past_compressed_value[at] : 0.0f;
            for (int e = 0; e < count; ++e) {
                s += elu_plus_one(src.key_at(e0 + e, i)) * src.value_at(e0 + e, j);
            }
            present_compressed_value[at] = s;
        }
    }
#else
    // Element x of [keys (d_k) | values (d_v)]: the plain sums.
    const int x = blockIdx.y * blockDim.x + threadIdx.x;
    if (x < HEAD_DIM) {
        const long long at = static_cast<long long>(bh) * HEAD_DIM + x;
        if (present_compressed_key != nullptr) {
            float s = past_compressed_key != nullptr ? past_compressed_key[at] : 0.0f;
            for (int e = 0; e < count; ++e) {
                s += src.key_at(e0 + e, x);
            }
            present_compressed_key[at] = s;
        }
    } else if (x < HEAD_DIM + VALUE_DIM) {
        const int j = x - HEAD_DIM;
        const long long at = static_cast<long long>(bh) * VALUE_DIM + j;
        if (present_compressed_value != nullptr) {
            float s = past_compressed_value != nullptr ? past_compressed_value[at] : 0.0f;
            for (int e = 0; e < count; ++e) {
                s += src.value_at(e0 + e, j);
            }
            present_compressed_value[at] = s;
        }
    }
#endif
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) hybrid_attention_store(
    const act_t* __restrict__ key, const act_t* __restrict__ value, const float* past_key, const float* past_value,
    const long long* past_position, float* present_key, float* present_value, long long* present_position,
    int seq_len, int kv_heads, int window)
{
    const int b = blockIdx.x / kv_heads;
    const long long p0 = past_position != nullptr ? past_position[b] : 0;
    cp::store_cache<HEAD_DIM, VALUE_DIM>(key, value, past_key, past_value, present_key, present_value, p0, seq_len,
        kv_heads, window, 0);
    if (present_position != nullptr && blockIdx.x % kv_heads == 0 && blockIdx.y == 0 && threadIdx.x == 0) {
        present_position[b] = p0 + seq_len;
    }
}
