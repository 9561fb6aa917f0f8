using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>
/// compress=hedgehog for one (batch, KV head), token by token: the window's exact scores and the linear memory of the
/// evicted tokens share one normaliser (LoLCATs), y = (sum_win e^(s_j - c) v_j + alpha_h phi(q)^T mu) /
/// (sum_win e^(s_j - c) + alpha_h phi(q) . nu + epsilon), c the window's largest score, phi the learned feature maps.
/// A token leaving the window adds phi(k) to nu and phi(k)^T v to mu, exactly as across decode calls.
/// </summary>
internal static unsafe class HybridAttentionHedgehog
{
    private const int StackScratchLimit = 4096;

    public static void RunItem(HybridAttentionCpu.Job* job, int b, int kvHead)
    {
        ref readonly var a = ref *job;
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, w = a.Window, m = a.Projections, f = 2 * m;
        var head = (long)b * a.KvHeads + kvHead;
        var keyRing = a.KeyCache + head * w * dk;
        var valueRing = a.ValueCache + head * w * dv;
        var nu = a.CompressedKey + head * f;
        var mu = a.CompressedValue + head * f * dv;
        var past = a.PastPosition[b];

        var scratchLength = w + f + dv;
        float[]? rented = null;
        var scratchSpan = scratchLength <= StackScratchLimit
            ? stackalloc float[scratchLength]
            : (rented = ArrayPool<float>.Shared.Rent(scratchLength)).AsSpan(0, scratchLength);
        try
        {
            fixed (float* scratch = scratchSpan)
            {
                var scores = scratch;
                var phi = scratch + w;
                var linearOut = phi + f;
                var phiSpan = new Span<float>(phi, f);
                long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
                long yStride = (long)a.QueryHeads * dv;
                for (var i = 0; i < t; i++)
                {
                    var row = (long)b * t + i;
                    var position = past + i;
                    var slot = (int)(position % w);
                    var keyRow = keyRing + (long)slot * dk;
                    var valueRow = valueRing + (long)slot * dv;
                    if (position >= w)
                    {
                        // The row holds position - w, which leaves the window now.
                        HybridAttentionFeatures.Apply(a.FeatureKeyWeight, a.FeatureKeyBias, kvHead, dk, m, keyRow, phiSpan);
                        TensorPrimitives.Add(new ReadOnlySpan<float>(nu, f), phiSpan, new Span<float>(nu, f));
                        Rank1.Add(phi, f, valueRow, dv, mu);
                    }
                    new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk).CopyTo(new Span<float>(keyRow, dk));
                    new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv).CopyTo(new Span<float>(valueRow, dv));
                    var inWindow = (int)Math.Min(position + 1, w);

                    for (var g = 0; g < a.GroupSize; g++)
                    {
                        var qHead = kvHead * a.GroupSize + g;
                        var q = a.Query + row * qStride + (long)qHead * dk;
                        var y = a.Output + row * yStride + (long)qHead * dv;
                        // Rows [0, inWindow) are exactly the window: positions fill rows in order until the ring wraps.
                        Gemv.Dots(q, dk, keyRing, dk, inWindow, scores);
                        var max = Exponentials.ScaleAndMax(scores, inWindow, a.Scale);
                        var total = Exponentials.ExpSum(scores, inWindow, max);
                        Gemv.WeightedSum(scores, valueRing, dv, inWindow, dv, y, accumulate: false);
                        var yHead = new Span<float>(y, dv);
                        var alpha = a.Mix[qHead];
                        HybridAttentionFeatures.Apply(a.FeatureQueryWeight, a.FeatureQueryBias, qHead, dk, m, q, phiSpan);
                        Gemv.WeightedSum(phi, mu, dv, f, dv, linearOut, accumulate: false);
                        total += alpha * TensorPrimitives.Dot(phiSpan, new ReadOnlySpan<float>(nu, f)) + a.Epsilon;
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(linearOut, dv), alpha, yHead, yHead);
                        TensorPrimitives.Multiply(yHead, 1f / total, yHead);
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
}
