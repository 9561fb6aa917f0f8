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
//   compress = hedgehog (COMPRESS 2, PROJECTIONS = m, F = 2m features): phi(x) = [softmax(x W + b), softmax(-(x W + b))]
//     with the learned maps (W_q, b_q per query head, W_k, b_k per KV head) on the unscaled query and keys. First
//     hybrid_attention_features writes phi(k_e) of every position the call evicts (e0 .. P + T - 1 - W) to the scratch
//     key_features [batch * kv_heads, T, F] (row e - e0). The attention block computes phi(q), num and den as for
//     linear (den without epsilon) from nu_0, mu_0 and those features, then the window softmax (acc, sum relative to
//     the window's largest score c), and writes ONE normaliser for both: (acc + a num) / (sum + a den + epsilon),
//     a = mix[query head] (docs/operators/HybridAttention.md, compress = hedgehog).
// Then hybrid_attention_compress folds the positions evicted by the call, e0 .. P + T - 1 - W, into the compressed
// state, and hybrid_attention_store writes the ring (the last W positions) and the position. Each present element is
// read then written by one thread (compress reads the past ring before store overwrites it: stream order), so every
// present buffer but the position may be the past one.
//
// Required defines: HEAD_DIM (d_k, [1, 512]), VALUE_DIM (d_v, [1, 512]), GROUP ([1, 64]), COMPRESS (0 linear, 1 mean,
// 2 hedgehog: the C# CompressKind order), ACT_TYPE; PROJECTIONS (m, GROUP * m <= 2048) with COMPRESS 2.
// Optional: EXPECTED_THREADS.
//
// Launch contract (same stream, this order; block (128, 1, 1); static shared memory < 48 KiB):
// Entry point hybrid_attention_features (COMPRESS 2 only; defined, empty, for the others):
//   grid (batch * kv_heads, min(T, 65535), 1)  (blocks stride over the call's evictions)
//   arguments: const act_t* key, const act_t* value (not read), const float* past_key, const float* past_value
//     (not read), const long long* past_position, const float* feature_key_weight [kv_heads, d_k, m],
//     const float* feature_key_bias [kv_heads, m], float* key_features [batch * kv_heads, T, F] (scratch),
//     int seq_len, int kv_heads, int window
//   Reads only the past ring and the call's keys.
// Entry point hybrid_attention_prefill:
//   grid (batch * kv_heads * T, 1, 1)  (block x = (b * kv_heads + h) * T + t)
//   arguments: const act_t* query [batch, T, kv_heads * GROUP * d_k], const act_t* key [batch, T, kv_heads * d_k],
//     const act_t* value [batch, T, kv_heads * d_v], const float* past_key [batch, kv_heads, W, d_k] or null,
//     const float* past_value or null, const long long* past_position [batch] or null,
//     const float* past_compressed_key [batch, kv_heads, d_k] (hedgehog [batch, kv_heads, F]) or null,
//     const float* past_compressed_value (linear [batch, kv_heads, d_k, d_v], mean [batch, kv_heads, 1, d_v],
//     hedgehog [batch, kv_heads, F, d_v]) or null, then for COMPRESS 2 (null otherwise): const float* key_features
//     (hybrid_attention_features' output), const float* feature_query_weight [q_heads, d_k, m],
//     const float* feature_query_bias [q_heads, m], const float* mix [q_heads]; act_t* output [batch, T, kv_heads * GROUP * d_v], int seq_len (T >= 1), int kv_heads, int window (W),
//     float scale (resolved), float epsilon
//   Writes nothing but the output.
// Entry point hybrid_attention_compress:
//   grid (batch * kv_heads, COMPRESS 0: d_k; COMPRESS 1: ceil((d_k + d_v) / 128); COMPRESS 2: F, 1)
//   arguments: const act_t* key, const act_t* value, const float* past_key, const float* past_value,
//     const long long* past_position, const float* past_compressed_key, const float* past_compressed_value,
//     const float* key_features (COMPRESS 2; null otherwise), float* present_compressed_key, float* present_compressed_value (null: not written; may be the past ones),
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
#if COMPRESS != 0 && COMPRESS != 1 && COMPRESS != 2
#error "COMPRESS must be 0 (linear), 1 (mean) or 2 (hedgehog)"
#endif
#if COMPRESS == 2 && !defined(PROJECTIONS)
#error "COMPRESS 2 (hedgehog) needs PROJECTIONS"
#endif

namespace {

namespace cd = oa::cache_decode;
namespace cp = oa::cache_prefill;
using Shared = cd::Shared<HEAD_DIM, VALUE_DIM, GROUP>;
using Layout = cd::Layout<HEAD_DIM, VALUE_DIM, GROUP>;

// Features of the compressed memory: nu has kFeatures values, mu kFeatures rows (mean: the key sum, d_k values).
#if COMPRESS == 2
constexpr int kProjections = PROJECTIONS;
constexpr int kFeatures = 2 * PROJECTIONS;
static_assert(PROJECTIONS >= 1 && GROUP * PROJECTIONS <= 2048, "hedgehog: GROUP * PROJECTIONS must be in [1, 2048]");
#else
constexpr int kFeatures = HEAD_DIM;
#endif

struct PrefillShared {
    Shared base;
    float denominator[GROUP];
#if COMPRESS == 2
    float phi_q[GROUP][kFeatures];  // phi(q) of the group's query heads (the unscaled query)
#endif
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

#if COMPRESS == 2
// phi[0 .. m) holds u = x W + b; one warp makes phi = [softmax(u), softmax(-u)] (2m values). Each lane touches only
// its own elements, so no barrier is needed inside.
__device__ void hedgehog_softmax_warp(float* phi, int m)
{
    const int lane = threadIdx.x & 31;
    float high = OA_NEG_INF, low = -OA_NEG_INF;
    for (int j = lane; j < m; j += 32) {
        high = fmaxf(high, phi[j]);
        low = fminf(low, phi[j]);
    }
    high = oa::group_max(high);
    low = -oa::group_max(-low);
    float sum_pos = 0.0f, sum_neg = 0.0f;
    for (int j = lane; j < m; j += 32) {
        const float u = phi[j];
        const float a = expf(u - high);
        const float n = expf(low - u);  // exp(-u - max(-u))
        phi[j] = a;
        phi[m + j] = n;
        sum_pos += a;
        sum_neg += n;
    }
    const float inv_pos = 1.0f / oa::group_sum(sum_pos);
    const float inv_neg = 1.0f / oa::group_sum(sum_neg);
    for (int j = lane; j < m; j += 32) {
        phi[j] *= inv_pos;
        phi[m + j] *= inv_neg;
    }
}
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
// phi(k_e) for linear: elu + 1 of the unscaled evicted key, computed where it is read.
struct EluKeyFeatures {
    const RingSource* src;
    long long e_begin;
    __device__ float operator()(int row, int i) const { return elu_plus_one(src->key_at(e_begin + row, i)); }
};

#elif COMPRESS == 2
// phi(k_e) for hedgehog: hybrid_attention_features' rows for this (batch row, KV head).
struct StoredKeyFeatures {
    const float* rows;  // [count, kFeatures]
    __device__ float operator()(int row, int i) const { return rows[static_cast<long long>(row) * kFeatures + i]; }
};
#endif

// The linear memory's read-out (linear and hedgehog; phi_q holds phi(q) of the group's query heads, Dim features):
// num (this thread's value columns, summed over the value splits into the value_split 0 threads) and
// denominator[g] = phi(q) . nu_0 + sum_e phi(q) . phi(k_e) (without epsilon), over the evicted positions
// e_begin .. e_begin + count - 1 (phi(k_e) = features(e - e_begin, i)).
template <int Dim, class Features>
__device__ void memory_part(PrefillShared& psh, const float (*phi_q)[Dim], const Features& features, const RingSource& src,
    long long e_begin, int count, const float* mu0, const float* nu0, float (&num)[GROUP][Layout::kValuePerThread])
{
    constexpr int kFeaturePerLane = oa::ceil_div(Dim, 8);
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
            float x[kFeaturePerLane];
#pragma unroll
            for (int e = 0; e < kFeaturePerLane; ++e) {
                const int i = e * 8 + sub;
                x[e] = in_range && i < Dim ? features(row, i) : 0.0f;
            }
            for (int g = 0; g < GROUP; ++g) {
                float dot = 0.0f;
#pragma unroll
                for (int e = 0; e < kFeaturePerLane; ++e) {
                    const int i = e * 8 + sub;
                    if (i < Dim) {
                        dot += phi_q[g][i] * x[e];
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
        for (int i = value_split; i < Dim; i += Layout::kValueRowSplits) {
#pragma unroll
            for (int m = 0; m < Layout::kValuePerThread; ++m) {
                const int j = value_col + Layout::kValueColThreads * m;
                if (j < VALUE_DIM) {
                    const float mu = mu0[static_cast<long long>(i) * VALUE_DIM + j];
#pragma unroll
                    for (int g = 0; g < GROUP; ++g) {
                        num[g][m] += phi_q[g][i] * mu;
                    }
                }
            }
        }
    }
    if (nu0 != nullptr) {
        for (int g = warp; g < GROUP; g += cd::kWarps) {
            float d = 0.0f;
            for (int i = lane; i < Dim; i += 32) {
                d += phi_q[g][i] * nu0[i];
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

#if COMPRESS == 2
// phi(q) of the group's query heads of one token into psh.phi_q: u = q W_q + b_q (m values a head), then the two
// softmaxes, a warp per head. Ends with a barrier.
__device__ void hedgehog_query(PrefillShared& psh, const act_t* query, long long query_row, int h, int kv_heads,
    const float* weight, const float* bias)
{
    const int q_heads = kv_heads * GROUP;
    for (int idx = threadIdx.x; idx < GROUP * kProjections; idx += cd::kThreads) {
        const int g = idx / kProjections;
        const int j = idx - g * kProjections;
        const int qh = h * GROUP + g;
        const act_t* q = query + (query_row * q_heads + qh) * HEAD_DIM;
        const float* w = weight + static_cast<long long>(qh) * HEAD_DIM * kProjections + j;
        float u = bias[qh * kProjections + j];
        for (int i = 0; i < HEAD_DIM; ++i) {
            u += oa::to_float(q[i]) * w[static_cast<long long>(i) * kProjections];
        }
        psh.phi_q[g][j] = u;
    }
    __syncthreads();
    for (int g = threadIdx.x >> 5; g < GROUP; g += cd::kWarps) {
        hedgehog_softmax_warp(psh.phi_q[g], kProjections);
    }
    __syncthreads();
}
#endif

}  // namespace

extern "C" __global__ void __launch_bounds__(cd::kThreads) hybrid_attention_features(
    const act_t* __restrict__ key, const act_t* __restrict__ value, const float* __restrict__ past_key,
    const float* __restrict__ past_value, const long long* __restrict__ past_position,
    const float* __restrict__ feature_key_weight, const float* __restrict__ feature_key_bias,
    float* __restrict__ key_features, int seq_len, int kv_heads, int window)
{
#if COMPRESS == 2
    __shared__ float phi[kFeatures];
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const long long p0 = past_position != nullptr ? past_position[b] : 0;
    const long long end = p0 + seq_len;
    const long long e0 = p0 > window ? p0 - window : 0;
    const long long e1 = end > window ? end - window : 0;
    const int count = static_cast<int>(e1 - e0);
    const RingSource src = ring_source(past_key, past_value, key, value, p0, b, h, seq_len, kv_heads, window);
    const float* w = feature_key_weight + static_cast<long long>(h) * HEAD_DIM * kProjections;
    for (int r = blockIdx.y; r < count; r += gridDim.y) {
        // u = k W_k + b_k, the bias first and then the key's elements in order (as the CPU kernel sums).
        for (int j = threadIdx.x; j < kProjections; j += cd::kThreads) {
            float u = feature_key_bias[h * kProjections + j];
            for (int i = 0; i < HEAD_DIM; ++i) {
                u += src.key_at(e0 + r, i) * w[static_cast<long long>(i) * kProjections + j];
            }
            phi[j] = u;
        }
        __syncthreads();
        if (threadIdx.x < 32) {
            hedgehog_softmax_warp(phi, kProjections);
        }
        __syncthreads();
        float* out = key_features + (static_cast<long long>(bh) * seq_len + r) * kFeatures;
        for (int i = threadIdx.x; i < kFeatures; i += cd::kThreads) {
            out[i] = phi[i];
        }
        __syncthreads();  // phi is rewritten by the next row
    }
#else
    (void)key, (void)value, (void)past_key, (void)past_value, (void)past_position, (void)feature_key_weight;
    (void)feature_key_bias, (void)key_features, (void)seq_len, (void)kv_heads, (void)window;
#endif
}

extern "C" __global__ void __launch_bounds__(cd::kThreads) hybrid_attention_prefill(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* __restrict__ past_key, const float* __restrict__ past_value, const long long* __restrict__ past_position,
    const float* __restrict__ past_compressed_key, const float* __restrict__ past_compressed_value,
    const float* __restrict__ key_features, const float* __restrict__ feature_query_weight,
    const float* __restrict__ feature_query_bias, const float* __restrict__ mix,
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
    const float* nu0 = past_compressed_key != nullptr ? past_compressed_key + static_cast<long long>(k.bh) * kFeatures : nullptr;
    const float* mu0 = past_compressed_value != nullptr
        ? past_compressed_value + static_cast<long long>(k.bh) * (COMPRESS == 1 ? 1 : kFeatures) * VALUE_DIM : nullptr;

    HybridPrefillRows rows;
    rows.src = src;
    rows.first = p - window + 1 > 0 ? p - window + 1 : 0;
    rows.n_w = static_cast<int>(p - rows.first + 1);
    rows.slot_key = sh.new_key;
    rows.slot_value = sh.new_value;
    int count = rows.n_w;

#if COMPRESS == 0
    (void)key_features, (void)feature_query_weight, (void)feature_query_bias, (void)mix;
    float num[GROUP][Layout::kValuePerThread];
    const bool mixes = evicted > 0;
    if (mixes) {
        cd::load_query(sh, query, k.row, k.h, kv_heads, 1.0f, true);
        memory_part<HEAD_DIM>(psh, sh.q, EluKeyFeatures{&src, e0}, src, e0, fresh_evicted, mu0, nu0, num);
    }
#elif COMPRESS == 2
    // The memory is read out even before the first eviction: the shared normaliser always has its epsilon, and a
    // given past memory counts whatever the position.
    float num[GROUP][Layout::kValuePerThread];
    hedgehog_query(psh, query, k.row, k.h, kv_heads, feature_query_weight, feature_query_bias);
    const StoredKeyFeatures features{key_features + static_cast<long long>(k.bh) * seq_len * kFeatures};
    memory_part<kFeatures>(psh, psh.phi_q, features, src, e0, fresh_evicted, mu0, nu0, num);
#else
    (void)key_features, (void)feature_query_weight, (void)feature_query_bias, (void)mix;
    if (evicted > 0) {
        // The mean slot: (past sums + the evicted positions not in them) / n_e.
        const float inverse = static_cast<float>(1.0 / static_cast<double>(evicted));
        for (int i = threadIdx.x; i < HEAD_DIM; i += cd::kThreads) {
            float s = nu0 != nullptr ? nu0[i] : 0.0f;
            for (int e = 0; e < fresh_evicted; ++e) {
                s += src.key_at(e0 + e, i);
            }
            sh.new_key[i] = s * inverse;
        }
        for (int j = threadIdx.x; j < VALUE_DIM; j += cd::kThreads) {
            float s = mu0 != nullptr ? mu0[j] : 0.0f;
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
#elif COMPRESS == 2
    if (threadIdx.x < Layout::kValueColThreads) {
#pragma unroll
        for (int g = 0; g < GROUP; ++g) {
            const int qh = k.h * GROUP + g;
            const long long head_row = k.row * kv_heads * GROUP + qh;
            const float alpha = mix[qh];
            // One normaliser: the window's exp-sum (relative to its largest score) plus the memory's.
            const float inverse = 1.0f / (sh.running_sum[g] + (alpha * psh.denominator[g] + epsilon));
#pragma unroll
            for (int m = 0; m < Layout::kValuePerThread; ++m) {
                const int j = threadIdx.x + Layout::kValueColThreads * m;
                if (j < VALUE_DIM) {
                    output[head_row * VALUE_DIM + j] = oa::from_float((acc[g][m] + alpha * num[g][m]) * inverse);
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
    const float* key_features, float* present_compressed_key, float* present_compressed_value, int seq_len,
    int kv_heads, int window)
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
#if COMPRESS == 2
    // Block (bh, i): nu[i] += sum phi(k_e)[i]; mu[i][j] += sum phi(k_e)[i] v_e[j], phi(k_e) from hybrid_attention_features.
    const int i = blockIdx.y;
    const float* phi = key_features + static_cast<long long>(bh) * seq_len * kFeatures + i;
    const long long nu_at = static_cast<long long>(bh) * kFeatures + i;
    if (threadIdx.x == 0 && present_compressed_key != nullptr) {
        float s = past_compressed_key != nullptr ? past_compressed_key[nu_at] : 0.0f;
        for (int e = 0; e < count; ++e) {
            s += phi[static_cast<long long>(e) * kFeatures];
        }
        present_compressed_key[nu_at] = s;
    }
    if (present_compressed_value != nullptr) {
        for (int j = threadIdx.x; j < VALUE_DIM; j += blockDim.x) {
            const long long at = nu_at * VALUE_DIM + j;
            float s = past_compressed_value != nullptr ? past_compressed_value[at] : 0.0f;
            for (int e = 0; e < count; ++e) {
                s += phi[static_cast<long long>(e) * kFeatures] * src.value_at(e0 + e, j);
            }
            present_compressed_value[at] = s;
        }
    }
#elif COMPRESS == 0
    (void)key_features;
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
    (void)key_features;
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
