using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>
/// Prefill by blocks of queries for one (batch, KV head), linear compression only. The window part is exactly
/// WindowAttention's without sinks, and its ring has the same layout, so <see cref="WindowAttentionBlocks"/> computes
/// it, block by block, into the output. Between a block's outputs and the moment its tokens go into the ring, the
/// tokens the block evicts (positions p - W of its rows, all before the block since it is no longer than the window,
/// so their ring rows still hold them) are folded in as matrix products: with A = phi(Q) of the rows that evict,
/// E = phi(K) and V of the evicted tokens, and M the causal mask (row j sees evictions 0..j), the linear part is
/// A·mu + (A Eᵀ ∘ M)·V over A·nu + (A Eᵀ ∘ M)·1, then gated into the window's output as the per-token loop does; the
/// state takes mu += Eᵀ V and nu += Σ E. Only summation orders differ from the per-token loop.
/// </summary>
internal static unsafe class HybridAttentionBlocks
{
    /// <summary>
    /// The shortest call, and the fewest keys its last query sees, that the blocks take by default: the window part's
    /// thresholds (<see cref="WindowAttentionBlocks.MinTokens"/>), measured there for the same products.
    /// </summary>
    public const int MinTokens = WindowAttentionBlocks.MinTokens, MinKeys = WindowAttentionBlocks.MinKeys;

    private const int BlockTokens = WindowAttentionBlocks.BlockTokens;

    public static bool Applies(in HybridAttentionCpu.Job a, long past) =>
        a.Compress == CompressKind.Linear && a.Window >= BlockTokens && a.Form switch
        {
            RecurrentKernel.PerToken => false,
            RecurrentKernel.Blocks => a.Shapes.SequenceLength > 1,
            _ => a.Shapes.SequenceLength >= MinTokens && Math.Min(a.Window, past + a.Shapes.SequenceLength) >= MinKeys,
        };

    /// <summary>What the per-block fold needs: the item, its compressed state and scratch for one block.</summary>
    private struct Fold
    {
        public HybridAttentionCpu.Job* Job;
        public int Batch, KvHead;
        public float* KeyRing, ValueRing, Nu, Mu;
        // phi(K) of the evicted tokens [n, dk], its transpose [dk, n], their values [n, dv], phi(Q) of the evicting rows
        // [n, dk], the rows' linear parts [n, dv], A Eᵀ [n, n] and the rows' normalisers [n].
        public float* PhiE, PhiET, ValuesE, PhiQ, Linear, Cross, Norm;
    }

    public static void Run(HybridAttentionCpu.Job* job, int b, int kvHead)
    {
        ref readonly var a = ref *job;
        int dk = a.Shapes.KeyDim, dv = a.Shapes.ValueDim, w = a.Window, n = BlockTokens;
        var head = (long)b * a.KvHeads + kvHead;
        var window = new WindowAttentionCpu.Job
        {
            QueryHeads = a.QueryHeads,
            KvHeads = a.KvHeads,
            Window = w,
            Sinks = 0,
            Scale = a.Scale,
            Softcap = 0f,
            Shapes = a.Shapes,
            Query = a.Query,
            Key = a.Key,
            Value = a.Value,
            Output = a.Output,
            KeyCache = a.KeyCache,
            ValueCache = a.ValueCache,
            PastPosition = a.PastPosition,
        };
        var floats = (long)n * (3 * dk + 2 * dv + n + 1);
        var scratch = (float*)NativeMemory.Alloc((nuint)floats, sizeof(float));
        try
        {
            var fold = new Fold
            {
                Job = job,
                Batch = b,
                KvHead = kvHead,
                KeyRing = a.KeyCache + head * w * dk,
                ValueRing = a.ValueCache + head * w * dv,
                Nu = a.CompressedKey + head * dk,
                Mu = a.CompressedValue + head * dk * dv,
            };
            fold.PhiE = scratch;
            fold.PhiET = fold.PhiE + n * dk;
            fold.PhiQ = fold.PhiET + n * dk;
            fold.ValuesE = fold.PhiQ + n * dk;
            fold.Linear = fold.ValuesE + n * dv;
            fold.Cross = fold.Linear + n * dv;
            fold.Norm = fold.Cross + n * n;
            WindowAttentionBlocks.Run(window, b, kvHead, &FoldBlock, &fold);
        }
        finally
        {
            NativeMemory.Free(scratch);
        }
    }

    /// <summary>The block of <paramref name="m"/> call tokens from <paramref name="i0"/>: its evictions, into its outputs and the state.</summary>
    private static void FoldBlock(void* state, int i0, int m)
    {
        var f = (Fold*)state;
        ref readonly var a = ref *f->Job;
        int dk = a.Shapes.KeyDim, dv = a.Shapes.ValueDim, w = a.Window, t = a.Shapes.SequenceLength, b = f->Batch;
        var first = a.PastPosition[b] + i0;
        // Rows at positions p >= W evict p - W; they are the block's last `evicting` rows, from row `skip` on.
        var evictStart = Math.Max(0, first - w);
        var evicting = (int)Math.Max(0, first + m - w - evictStart);
        if (evicting == 0)
        {
            return;
        }
        var skip = m - evicting;
        for (var j = 0; j < evicting; j++)
        {
            var ring = (int)((evictStart + j) % w);
            FeatureMaps.Apply(FeatureMap.EluPlusOne, new ReadOnlySpan<float>(f->KeyRing + (long)ring * dk, dk), 1f, new Span<float>(f->PhiE + j * dk, dk));
            new ReadOnlySpan<float>(f->ValueRing + (long)ring * dv, dv).CopyTo(new Span<float>(f->ValuesE + j * dv, dv));
        }
        Transpose.Rows(f->PhiE, dk, evicting, dk, f->PhiET, evicting);

        long qStride = (long)a.QueryHeads * dk, yStride = (long)a.QueryHeads * dv;
        for (var g = 0; g < a.GroupSize; g++)
        {
            var qHead = f->KvHead * a.GroupSize + g;
            var rowBase = (long)b * t + i0 + skip;
            for (var j = 0; j < evicting; j++)
            {
                FeatureMaps.Apply(FeatureMap.EluPlusOne, new ReadOnlySpan<float>(a.Query + (rowBase + j) * qStride + (long)qHead * dk, dk), 1f,
                    new Span<float>(f->PhiQ + j * dk, dk));
            }
            Gemm.Multiply(evicting, dv, dk, f->PhiQ, dk, f->Mu, dv, f->Linear, dv, accumulate: false);
            Gemv.Dots(f->Nu, dk, f->PhiQ, dk, evicting, f->Norm);
            Gemm.Multiply(evicting, evicting, dk, f->PhiQ, dk, f->PhiET, evicting, f->Cross, evicting, accumulate: false);
            for (var j = 0; j < evicting; j++)
            {
                // Row j has evicted tokens 0..j of the block by its own step.
                var cross = new Span<float>(f->Cross + j * evicting, evicting);
                cross[(j + 1)..].Clear();
                f->Norm[j] += TensorPrimitives.Sum(cross[..(j + 1)]);
            }
            Gemm.Multiply(evicting, dv, evicting, f->Cross, evicting, f->ValuesE, dv, f->Linear, dv, accumulate: true);
            for (var j = 0; j < evicting; j++)
            {
                var position = first + skip + j;
                var gate = (float)((double)(position + 1 - w) / (position + 1));
                var y = new Span<float>(a.Output + (rowBase + j) * yStride + (long)qHead * dv, dv);
                TensorPrimitives.Multiply(y, 1f - gate, y);
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(f->Linear + j * dv, dv), gate / (f->Norm[j] + a.Epsilon), y, y);
            }
        }

        Gemm.Multiply(dk, dv, evicting, f->PhiET, evicting, f->ValuesE, dv, f->Mu, dv, accumulate: true);
        var nu = new Span<float>(f->Nu, dk);
        for (var j = 0; j < evicting; j++)
        {
            TensorPrimitives.Add(nu, new ReadOnlySpan<float>(f->PhiE + j * dk, dk), nu);
        }
    }
}
