using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>
/// The float32 CPU recurrence, token by token so that tokens leave the window inside a prefill exactly as they
/// do across decode calls. Work is split by (batch, KV head): each item owns its slice of the cache and of the
/// compressed state, so items never write the same memory. A query's window is two vector passes over the ring
/// (<see cref="Gemv"/>), the linear part one more over mu, and an eviction one rank-1 update. Long prefills with
/// long windows and linear compression go by blocks of queries instead (<see cref="HybridAttentionBlocks"/>).
/// </summary>
internal static unsafe class HybridAttentionCpu
{
    /// <summary>Scratch up to this many floats lives on the stack.</summary>
    private const int StackScratchLimit = 4096;

    public struct Job
    {
        // Copied out of the attributes record: the job is reached through a pointer, so it must be unmanaged.
        public int QueryHeads, KvHeads, Window;
        public CompressKind Compress;
        public float Scale, Epsilon;
        public QkvShapes Shapes;
        public float* Query, Key, Value, Output;
        // Present state, already holding the past state (or zeros) when the items start.
        public float* KeyCache, ValueCache, CompressedKey, CompressedValue;
        public long* PastPosition;
        // compress=hedgehog: m, the feature maps and the per-head mix (see HybridAttentionFeatures); null otherwise.
        public int Projections;
        public float* FeatureQueryWeight, FeatureQueryBias, FeatureKeyWeight, FeatureKeyBias, Mix;
        // No past: the cache was not cleared, so each item zeroes the ring rows its call leaves unwritten.
        public bool ClearUnwrittenRows;
        // Auto and null in production; a test or benchmark's forced form otherwise (KernelForms).
        public RecurrentKernel Form;
        public delegate*<void*, nint, void> OtherItem;

        public readonly int GroupSize => QueryHeads / KvHeads;
    }

    public static void Run(in KernelContext context, ref Job job)
    {
        var items = (nint)job.Shapes.Batch * job.KvHeads;
        fixed (Job* p = &job)
        {
            var forms = context.Forms;
            job.Form = forms?.RecurrentKernel ?? RecurrentKernel.Auto;
            job.OtherItem = forms is null ? null : forms.HybridItem;
            OrtParallel.For(context, items, p, &RunItem);
        }
    }

    private static void RunItem(void* state, nint item)
    {
        var job = (Job*)state;
        ref readonly var a = ref *job;
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, w = a.Window;
        var linear = a.Compress == CompressKind.Linear;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        if (a.ClearUnwrittenRows)
        {
            // From position 0 the call writes rows [0, min(T, W)); the rest must read as zeros.
            var head0 = (long)b * a.KvHeads + kvHead;
            var written = Math.Min(t, w);
            new Span<float>(a.KeyCache + (head0 * w + written) * dk, (w - written) * dk).Clear();
            new Span<float>(a.ValueCache + (head0 * w + written) * dv, (w - written) * dv).Clear();
        }
        if (a.OtherItem != null)
        {
            a.OtherItem(state, item);
            return;
        }
        if (a.Compress == CompressKind.Hedgehog)
        {
            HybridAttentionHedgehog.RunItem(job, b, kvHead);
            return;
        }
        if (HybridAttentionBlocks.Applies(a, a.PastPosition[b]))
        {
            HybridAttentionBlocks.Run(job, b, kvHead);
            return;
        }
        var head = (long)b * a.KvHeads + kvHead;
        var rows = linear ? dk : 1;

        var keyRing = a.KeyCache + head * w * dk;
        var valueRing = a.ValueCache + head * w * dv;
        // linear: nu = sum phi(k) and mu = sum phi(k)^T v; mean: the key sum and the value sum.
        var compressedKey = a.CompressedKey + head * dk;
        var compressedValue = a.CompressedValue + head * rows * dv;
        var past = a.PastPosition[b];

        // Scores for the window plus the mean slot; phi(k) or phi(q); the linear part's output.
        var scratchLength = w + 1 + dk + dv;
        float[]? rented = null;
        var scratchSpan = scratchLength <= StackScratchLimit
            ? stackalloc float[scratchLength]
            : (rented = ArrayPool<float>.Shared.Rent(scratchLength)).AsSpan(0, scratchLength);
        try
        {
            fixed (float* scratch = scratchSpan)
            {
                var scores = scratch;
                var phi = scratch + w + 1;
                var linearOut = phi + dk;
                long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
                long yStride = (long)a.QueryHeads * dv;
                for (var i = 0; i < t; i++)
                {
                    var row = (long)b * t + i;
                    var k = a.Key + row * kStride + (long)kvHead * dk;
                    var v = a.Value + row * vStride + (long)kvHead * dv;
                    var position = past + i;
                    var slot = (int)(position % w);
                    var keyRow = keyRing + (long)slot * dk;
                    var valueRow = valueRing + (long)slot * dv;
                    if (position >= w)
                    {
                        // The row holds position - w, which leaves the window now.
                        Evict(linear, keyRow, dk, valueRow, dv, compressedKey, compressedValue, phi);
                    }
                    new ReadOnlySpan<float>(k, dk).CopyTo(new Span<float>(keyRow, dk));
                    new ReadOnlySpan<float>(v, dv).CopyTo(new Span<float>(valueRow, dv));
                    var inWindow = (int)Math.Min(position + 1, w);
                    var evicted = position + 1 - inWindow;

                    for (var g = 0; g < a.GroupSize; g++)
                    {
                        var qHead = kvHead * a.GroupSize + g;
                        var q = a.Query + row * qStride + (long)qHead * dk;
                        var y = a.Output + row * yStride + (long)qHead * dv;
                        // Rows [0, inWindow) are exactly the window: positions fill rows in order until the ring wraps.
                        Gemv.Dots(q, dk, keyRing, dk, inWindow, scores);
                        var slots = inWindow;
                        var meanScale = 0f;
                        if (!linear && evicted > 0)
                        {
                            meanScale = (float)(1.0 / evicted);
                            scores[slots++] = meanScale * TensorPrimitives.Dot(new ReadOnlySpan<float>(q, dk), new ReadOnlySpan<float>(compressedKey, dk));
                        }
                        var max = Exponentials.ScaleAndMax(scores, slots, a.Scale);
                        var total = Exponentials.ExpSum(scores, slots, max);
                        Gemv.WeightedSum(scores, valueRing, dv, inWindow, dv, y, accumulate: false);
                        var yHead = new Span<float>(y, dv);
                        if (evicted == 0)
                        {
                            TensorPrimitives.Multiply(yHead, 1f / total, yHead);
                            continue;
                        }
                        if (!linear)
                        {
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(compressedValue, dv), scores[inWindow] * meanScale, yHead, yHead);
                            TensorPrimitives.Multiply(yHead, 1f / total, yHead);
                            continue;
                        }
                        // Gate by token counts: the window speaks for inWindow tokens, the linear part for the evicted ones.
                        FeatureMaps.Apply(FeatureMap.EluPlusOne, new ReadOnlySpan<float>(q, dk), 1f, new Span<float>(phi, dk));
                        Gemv.WeightedSum(phi, compressedValue, dv, dk, dv, linearOut, accumulate: false);
                        var normaliser = TensorPrimitives.Dot(new ReadOnlySpan<float>(phi, dk), new ReadOnlySpan<float>(compressedKey, dk)) + a.Epsilon;
                        var gate = (float)((double)evicted / (position + 1));
                        // One pass: y = (1 - gate) * window / total + gate * linear / normaliser.
                        TensorPrimitives.Multiply(yHead, (1f - gate) / total, yHead);
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(linearOut, dv), gate / normaliser, yHead, yHead);
                    }
                }
            }
        }
        finally
        {
            if (rented != null)
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Folds the evicted token (key, value) into the compressed state.</summary>
    private static void Evict(bool linear, float* key, int dk, float* value, int dv, float* compressedKey, float* compressedValue, float* phi)
    {
        var nu = new Span<float>(compressedKey, dk);
        if (!linear)
        {
            TensorPrimitives.Add(nu, new ReadOnlySpan<float>(key, dk), nu);
            var sum = new Span<float>(compressedValue, dv);
            TensorPrimitives.Add(sum, new ReadOnlySpan<float>(value, dv), sum);
            return;
        }
        FeatureMaps.Apply(FeatureMap.EluPlusOne, new ReadOnlySpan<float>(key, dk), 1f, new Span<float>(phi, dk));
        TensorPrimitives.Add(nu, new ReadOnlySpan<float>(phi, dk), nu);
        Rank1.Add(phi, dk, value, dv, compressedValue);
    }
}
