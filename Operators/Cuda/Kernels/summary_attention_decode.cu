// com.onnxattention.SummaryAttention, recurrent form (seq_len 1 is the decode step). NOT RUN ON A GPU YET.
//
// Maths and state layout: docs/operators/SummaryAttention.md. Per token at absolute position p (n = p + 1):
//   cumulative: sums += k, v; divisor 1 / n.
//   moving:     ring row p mod M replaces the token M places back (its row is subtracted from the sums once p >= M),
//               then the sums add the token; after each full lap ((p + 1) mod M == 0) the sums are recomputed from
//               the ring; divisor 1 / min(n, M).
//   ema:        e_s = a_s e_s + (1 - a_s) x for every slot s, a_s = alpha^(2^-s) (double, rounded to float32);
//               divisor 1 / (1 - a_s^n) (double).
// then for each query head, softmax over the S summaries (key = divisor * sum) and the token itself:
//   z_s = scale * divisor_s * q . ksum_s, z_S = scale * q . k;  y = sum_s softmax(z)_s divisor_s vsum_s + softmax(z)_S v.
//
// One block per (batch row, KV head) works directly in the present state: it first copies the past state over
// (unless the buffers are the same), then runs the tokens in order. Threads own key and value columns (i = tid +
// 128 m), so every summary and ring element is read and written by one thread, and no barrier is needed between
// the copy and the updates; the scores are warp reductions, one warp per (query head, slot).
//
// Required defines: HEAD_DIM (d_k, [1, 1024]), VALUE_DIM (d_v, [1, 1024]), GROUP ([1, 64]), SUMMARY_KIND (0 cumulative,
// 1 moving, 2 ema: the C# SummaryKind order), SLOTS (S: 1, or [1, 16] for ema), ACT_TYPE. Optional: EXPECTED_THREADS.
//
// Launch contract (entry point summary_attention_decode):
//   grid (batch * kv_heads, 1, 1), block (128, 1, 1), dynamic shared memory 0 (static, < 48 KiB)
//   arguments, in order:
//     const act_t* query [batch, seq_len, kv_heads * GROUP * d_k]   const act_t* key [batch, seq_len, kv_heads * d_k]
//     const act_t* value [batch, seq_len, kv_heads * d_v]
//     const float* past_key_summary [batch, kv_heads, S, d_k] or null   const float* past_value_summary [.., d_v] or null
//     const long long* past_count [batch] or null (0)
//     const float* past_key_window [batch, kv_heads, M, d_k] or null    const float* past_value_window or null (moving)
//     act_t* output [batch, seq_len, kv_heads * GROUP * d_v]
//     float* present_key_summary, float* present_value_summary (required; may alias the past buffers)
//     long long* present_count [batch] or null: past + seq_len
//     float* present_key_window, float* present_value_window (moving: required, may alias; otherwise ignored)
//     int seq_len, int kv_heads, int window (M; moving only), float alpha (ema), float scale (resolved)
#include "onnx_attention_common.cuh"

#if !defined(HEAD_DIM) || !defined(VALUE_DIM) || !defined(GROUP) || !defined(SUMMARY_KIND) || !defined(SLOTS)
#error "summary_attention_decode needs HEAD_DIM, VALUE_DIM, GROUP, SUMMARY_KIND, SLOTS and ACT_TYPE"
#endif
#if SUMMARY_KIND < 0 || SUMMARY_KIND > 2
#error "SUMMARY_KIND must be 0 (cumulative), 1 (moving) or 2 (ema)"
#endif

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kHeadDim = HEAD_DIM;
constexpr int kValueDim = VALUE_DIM;
constexpr int kGroup = GROUP;
constexpr int kSlots = SLOTS;
constexpr int kKeyPerThread = oa::ceil_div(kHeadDim, kThreads);
constexpr int kValuePerThread = oa::ceil_div(kValueDim, kThreads);

static_assert(kHeadDim >= 1 && kHeadDim <= 1024, "HEAD_DIM must be in [1, 1024]");
static_assert(kValueDim >= 1 && kValueDim <= 1024, "VALUE_DIM must be in [1, 1024]");
static_assert(kGroup >= 1 && kGroup <= 64, "GROUP must be in [1, 64]");
static_assert(kSlots >= 1 && kSlots <= 16, "SLOTS must be in [1, 16]");
static_assert(SUMMARY_KIND == 2 || kSlots == 1, "only ema has more than one slot");
#ifdef EXPECTED_THREADS
static_assert(kThreads == EXPECTED_THREADS, "the host's THREADS formula disagrees with summary_attention_decode.cu");
#endif

struct Shared {
    float q[kGroup][kHeadDim];
    float k[kHeadDim];
    float divisor[kSlots];
    float weight[kGroup][kSlots + 1];  // scores, then softmax weights (times the divisor for the summaries)
    float slot_alpha[kSlots];
};
static_assert(sizeof(Shared) <= 48 * 1024, "summary_attention_decode: static shared memory over 48 KiB; lower GROUP");

// One column of one summary kind's state: the sums (slots x dim, row stride dim) and, for moving, the ring.
__device__ __forceinline__ void absorb(float x, long long position, int window, const float* slot_alpha,
    float* sums, float* ring, int dim)
{
#if SUMMARY_KIND == 0
    (void)position; (void)window; (void)slot_alpha; (void)ring; (void)dim;
    sums[0] += x;
#elif SUMMARY_KIND == 1
    (void)slot_alpha;
    float* row = ring + (position % window) * dim;
    if (position >= window) {
        sums[0] -= *row;
    }
    *row = x;
    if ((position + 1) % window == 0) {
        // A lap is complete: recompute from the ring so add/subtract rounding never builds up.
        float sum = 0.0f;
        for (int r = 0; r < window; ++r) {
            sum += ring[static_cast<long long>(r) * dim];
        }
        sums[0] = sum;
    } else {
        sums[0] += x;
    }
#else
    (void)position; (void)window; (void)ring;
    for (int s = 0; s < kSlots; ++s) {
        const float a = slot_alpha[s];
        float* e = sums + s * dim;
        *e = *e * a + (1.0f - a) * x;
    }
#endif
}

__device__ __forceinline__ void copy_state(const float* from, float* to, long long count_per_column, int dim, int column)
{
    if (from == to) {
        return;
    }
    for (long long r = 0; r < count_per_column; ++r) {
        to[r * dim + column] = from != nullptr ? from[r * dim + column] : 0.0f;
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(kThreads) summary_attention_decode(
    const act_t* __restrict__ query, const act_t* __restrict__ key, const act_t* __restrict__ value,
    const float* past_key_summary, const float* past_value_summary, const long long* past_count,
    const float* past_key_window, const float* past_value_window,
    act_t* __restrict__ output, float* present_key_summary, float* present_value_summary, long long* present_count,
    float* present_key_window, float* present_value_window,
    int seq_len, int kv_heads, int window, float alpha, float scale)
{
    __shared__ Shared sh;
    const int tid = threadIdx.x;
    const int warp = tid >> 5;
    const int lane = tid & 31;
    const int bh = blockIdx.x;
    const int b = bh / kv_heads;
    const int h = bh - b * kv_heads;
    const int q_heads = kv_heads * kGroup;
    const long long past = past_count != nullptr ? past_count[b] : 0;

    float* key_sums = present_key_summary + static_cast<long long>(bh) * kSlots * kHeadDim;
    float* value_sums = present_value_summary + static_cast<long long>(bh) * kSlots * kValueDim;
#if SUMMARY_KIND == 1
    float* key_ring = present_key_window + static_cast<long long>(bh) * window * kHeadDim;
    float* value_ring = present_value_window + static_cast<long long>(bh) * window * kValueDim;
    const long long ring_rows = window;
#else
    (void)past_key_window; (void)past_value_window; (void)present_key_window; (void)present_value_window;
    float* key_ring = nullptr;
    float* value_ring = nullptr;
#endif

    // The past state into the present buffers, column by column (each column stays with its thread).
    for (int i = tid; i < kHeadDim; i += kThreads) {
        copy_state(past_key_summary != nullptr ? past_key_summary + static_cast<long long>(bh) * kSlots * kHeadDim : nullptr,
            key_sums, kSlots, kHeadDim, i);
#if SUMMARY_KIND == 1
        copy_state(past_key_window != nullptr ? past_key_window + static_cast<long long>(bh) * window * kHeadDim : nullptr,
            key_ring, ring_rows, kHeadDim, i);
#endif
    }
    for (int j = tid; j < kValueDim; j += kThreads) {
        copy_state(past_value_summary != nullptr ? past_value_summary + static_cast<long long>(bh) * kSlots * kValueDim : nullptr,
            value_sums, kSlots, kValueDim, j);
#if SUMMARY_KIND == 1
        copy_state(past_value_window != nullptr ? past_value_window + static_cast<long long>(bh) * window * kValueDim : nullptr,
            value_ring, ring_rows, kValueDim, j);
#endif
    }
    if (tid < kSlots) {
        sh.slot_alpha[tid] = static_cast<float>(pow(static_cast<double>(alpha), exp2(-static_cast<double>(tid))));
    }
    if (present_count != nullptr && h == 0 && tid == 0) {
        present_count[b] = past + seq_len;
    }
    __syncthreads();

    for (int t = 0; t < seq_len; ++t) {
        const long long token = static_cast<long long>(b) * seq_len + t;
        const long long position = past + t;
        const long long n = position + 1;

        // Absorb the token (a thread per column) and stage q and k for the scores.
        float v_mine[kValuePerThread];
#pragma unroll
        for (int m = 0; m < kKeyPerThread; ++m) {
            const int i = tid + kThreads * m;
            if (i < kHeadDim) {
                const float k = oa::to_float(key[(token * kv_heads + h) * kHeadDim + i]);
                sh.k[i] = k;
                absorb(k, position, window, sh.slot_alpha, key_sums + i, key_ring != nullptr ? key_ring + i : nullptr, kHeadDim);
            }
        }
#pragma unroll
        for (int m = 0; m < kValuePerThread; ++m) {
            const int j = tid + kThreads * m;
            v_mine[m] = 0.0f;
            if (j < kValueDim) {
                v_mine[m] = oa::to_float(value[(token * kv_heads + h) * kValueDim + j]);
                absorb(v_mine[m], position, window, sh.slot_alpha, value_sums + j, value_ring != nullptr ? value_ring + j : nullptr, kValueDim);
            }
        }
        for (int idx = tid; idx < kGroup * kHeadDim; idx += kThreads) {
            const int g = idx / kHeadDim;
            const int i = idx - g * kHeadDim;
            sh.q[g][i] = oa::to_float(query[(token * q_heads + h * kGroup + g) * kHeadDim + i]);
        }
        if (tid < kSlots) {
#if SUMMARY_KIND == 0
            sh.divisor[tid] = static_cast<float>(1.0 / static_cast<double>(n));
#elif SUMMARY_KIND == 1
            sh.divisor[tid] = static_cast<float>(1.0 / static_cast<double>(n < window ? n : window));
#else
            sh.divisor[tid] = static_cast<float>(1.0 / (1.0 - pow(static_cast<double>(sh.slot_alpha[tid]), static_cast<double>(n))));
#endif
        }
        // The sums every warp reads below were just written by other threads.
        __syncthreads();

        // Scores: a warp per (query head, slot); slot kSlots is the token itself.
        for (int pair = warp; pair < kGroup * (kSlots + 1); pair += kWarps) {
            const int g = pair / (kSlots + 1);
            const int s = pair - g * (kSlots + 1);
            float dot = 0.0f;
            for (int i = lane; i < kHeadDim; i += 32) {
                dot += sh.q[g][i] * (s < kSlots ? key_sums[s * kHeadDim + i] : sh.k[i]);
            }
            dot = oa::group_sum(dot);
            if (lane == 0) {
                sh.weight[g][s] = s < kSlots ? scale * sh.divisor[s] * dot : scale * dot;
            }
        }
        __syncthreads();

        // Softmax per query head (a thread each: S + 1 <= 17 values); summary weights carry their divisor.
        for (int g = tid; g < kGroup; g += kThreads) {
            float max_score = OA_NEG_INF;
            for (int s = 0; s <= kSlots; ++s) {
                max_score = fmaxf(max_score, sh.weight[g][s]);
            }
            float total = 0.0f;
            for (int s = 0; s <= kSlots; ++s) {
                const float e = expf(sh.weight[g][s] - max_score);
                sh.weight[g][s] = e;
                total += e;
            }
            for (int s = 0; s <= kSlots; ++s) {
                sh.weight[g][s] = s < kSlots ? sh.weight[g][s] / total * sh.divisor[s] : sh.weight[g][s] / total;
            }
        }
        __syncthreads();

#pragma unroll
        for (int m = 0; m < kValuePerThread; ++m) {
            const int j = tid + kThreads * m;
            if (j < kValueDim) {
                for (int g = 0; g < kGroup; ++g) {
                    float y = sh.weight[g][kSlots] * v_mine[m];
                    for (int s = 0; s < kSlots; ++s) {
                        y += sh.weight[g][s] * value_sums[s * kValueDim + j];
                    }
                    output[(token * q_heads + h * kGroup + g) * kValueDim + j] = oa::from_float(y);
                }
            }
        }
        // The next token rewrites q, k, the divisors and the weights.
        __syncthreads();
    }
}
